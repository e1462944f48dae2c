// `tessera generate`: one prompt in, streamed text out, statistics on stderr.

import ArgumentParser
import Foundation
import Tessera
import TesseraLM

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt.",
        discussion: """
            The prompt is --prompt's text; with `--prompt -`, or with no --prompt and input piped in, \
            it is read from standard input. Sampling defaults come from the model folder's \
            generation_config.json when it has one. Text goes to stdout; statistics (and, with \
            --verbose, load details) to stderr.

            \(EnvironmentVariables.help)
            """)

    @Option(name: .shortAndLong, help: ArgumentHelp("The prompt; - reads it from standard input.", valueName: "text"))
    var prompt: String?

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var adapter: AdapterOptions
    @OptionGroup var sampling: SamplingOptions

    @Flag(help: "Send the prompt as it is, without the model's chat template.")
    var noChatTemplate = false

    @Option(
        help: ArgumentHelp(
            "Reuse the prompt's keys/values from this file when the prompt starts with the tokens it holds; "
                + "else compute them and save them there.",
            valueName: "file"))
    var promptCache: String?

    init() {}

    func validate() throws {
        if prompt == nil && standardInputIsTerminal() {
            throw ValidationError(
                "missing --prompt TEXT (or pipe the prompt in, or --prompt - to read it from standard input)")
        }
    }

    func run() async throws {
        // Under `tessera launch -n N`: the model split over the ranks, rank 0 reading and printing.
        let ranks = try LaunchedRanks.start()
        try ranks.refuse(adapter: adapter.adapterPath, promptCache: promptCache)
        let text =
            try ranks.shared {
                try PromptInput.resolve(
                    option: prompt, inputIsTerminal: standardInputIsTerminal(), readInput: PromptInput.readStandardInput
                )
            } ?? ""
        let (generator, loaded, path) = try await modelOptions.load(tensorParallel: ranks.tensorParallel)
        if ranks.group.rank == 0, let advice = loaded.quantizationAdvice(path: path) { printError(advice) }
        let identity = try adapter.apply(to: loaded, verbose: modelOptions.verbose)
        var parameters = try GenerationSetup.parameters(sampling, modelPath: path, verbose: modelOptions.verbose)
        parameters.sampling.seed = try ranks.sharedSeed(parameters.sampling.seed)
        let tokens: [Int]
        if noChatTemplate {
            tokens = generator.tokenizer.encode(text, addSpecialTokens: true)
        } else {
            var messages: [ChatMessage] = []
            if let system = sampling.system { messages.append(ChatMessage(role: "system", content: system)) }
            messages.append(ChatMessage(role: "user", content: text))
            tokens = try generator.promptTokens(messages: messages)
        }
        let cacheFile = promptCache.map { PromptCacheFile(path: $0, modelIdentity: identity) }
        var printer = ReplyPrinter(promptTokens: tokens.count, cachePath: promptCache)
        // The code that only building the prompt ran (the chat template, the
        // tokenizer's encoder) leaves the resident set as loading's did, and once
        // the prompt is in, the prefill's (its matrix kernels): decoding faults
        // back what it runs.
        CodePages.release()
        var promptDone = false
        for try await event in generator.generate(prompt: tokens, parameters: parameters, promptCache: cacheFile) {
            if !promptDone, case .token = event {
                promptDone = true
                CodePages.release()
                Memory.releaseFreeMallocPages()
            }
            printer.handle(event)
        }
        printer.finish()
        printError(printer.summary)
        if modelOptions.verbose, let malloc = Memory.mallocStatistics() { printError(Self.describe(malloc)) }
    }

    /// One line on the C allocator's state for `--verbose`: "malloc: 1 arena, …".
    static func describe(_ malloc: MallocStatistics) -> String {
        let mib = { (bytes: Int) in String(format: "%.1f", Double(bytes) / 1_048_576) }
        return "malloc: \(malloc.arenas) arena\(malloc.arenas == 1 ? "" : "s"), heaps \(mib(malloc.heapBytes)) MiB "
            + "(\(mib(malloc.inUseBytes)) in use, \(mib(malloc.freeBytes)) free), "
            + "\(mib(malloc.mappedBytes)) MiB in blocks of their own mapping"
    }
}

/// Turning sampling options into parameters, with the model's defaults.
enum GenerationSetup {
    static func parameters(_ sampling: SamplingOptions, modelPath: String, verbose: Bool) throws -> GenerateParameters {
        let (defaults, warnings) = SamplingDefaults.forModel(at: modelPath)
        for warning in warnings { printError("warning: \(warning)") }
        let parameters = try sampling.parameters(defaults: defaults)
        if verbose {
            let s = parameters.sampling
            printError(
                "sampling: temperature \(s.temperature), top-p \(s.topP), top-k \(s.topK), min-p \(s.minP), "
                    + "repetition penalty \(s.repetitionPenalty) (defaults from \(defaults.source ?? "tessera's built-in values"))"
                    + "; at most \(parameters.maxTokens) tokens")
        }
        return parameters
    }
}
