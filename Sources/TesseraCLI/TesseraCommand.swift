// The `tessera` command: its subcommands, version and environment. Each
// subcommand parses and validates its options, then calls the libraries.

import ArgumentParser
import Tessera

/// The root command; `tessera <subcommand> --help` describes each one.
public struct TesseraCommand: AsyncParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "tessera",
        abstract: "Tessera: machine-learning arrays in Swift, and LLM text generation on top.",
        discussion: EnvironmentVariables.help,
        version: "tessera \(version)",
        subcommands: [
            GenerateCommand.self, ChatCommand.self, ServeCommand.self, LoRACommand.self, FuseCommand.self,
            TokenizeCommand.self, ConvertCommand.self, ModelsCommand.self, LaunchCommand.self, DevicesCommand.self,
            SelfTestCommand.self, DemoCommand.self, VersionCommand.self
        ]
    )

    public init() {}

    /// Process set-up for `arguments` (the command line), to run on the main
    /// thread before any other thread starts, i.e. before the first `await`.
    ///
    /// One malloc arena for a command's few threads (the pool's, one per core, and
    /// Swift's executor): freed memory is reused by every thread instead of lying in
    /// each thread's own arena (docs/PERFORMANCE.md: with the threshold below,
    /// 151.3 → 146.6 MiB peak for a `generate` of the default model, and no more
    /// spread between runs). glibc fixes its arena limit at a thread's
    /// first allocation, so this must come before the executor's first thread
    /// (which an `async` function's body already runs on). `serve` keeps glibc's
    /// default for its many concurrently allocating connection threads, and
    /// `lora` for its training step's large temporaries on both pool threads
    /// (its speed was measured with glibc's defaults, not with these settings).
    ///
    /// Blocks of 1 MiB or more get mappings of their own, at a threshold that
    /// stays fixed: glibc would raise it to the largest block freed (the
    /// embedding's 27 MiB load-time temporary) and put the later load
    /// temporaries in the arena, where their freed pages stay resident (−1.5 MiB
    /// of the default model's peak, measured with the glibc tunables). 1 MiB keeps the per-token arrays (a logits
    /// row of up to 262,144 floats) in the arena, off the mmap path.
    public static func prepareProcess(arguments: [String] = CommandLine.arguments) {
        let keepDefaults = [ServeCommand.configuration.commandName, LoRACommand.configuration.commandName]
        if !keepDefaults.contains(arguments.dropFirst().first) {
            Memory.limitMallocArenas(1)
            Memory.setMallocMappingThreshold(1 << 20)
        }
    }

    /// Parses the command line, runs the command it names, and exits with an
    /// error message and status when parsing or running fails.
    public static func runFromCommandLine() async {
        do {
            if let suggestion = subcommandSuggestion(Array(CommandLine.arguments.dropFirst())) {
                throw ValidationError(suggestion)
            }
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

extension TesseraCommand {
    /// "Unknown command 'genrate'. Did you mean 'generate'?" when the first
    /// argument is no subcommand but near one (ArgumentParser suggests options only).
    static func subcommandSuggestion(_ arguments: [String]) -> String? {
        guard let word = arguments.first, !word.hasPrefix("-") else { return nil }
        let names = configuration.subcommands.flatMap {
            [$0.configuration.commandName].compactMap { $0 } + $0.configuration.aliases
        }
        guard !names.contains(word), word != "help" else { return nil }
        let nearest = names.map { (name: $0, distance: editDistance(word, $0)) }.min { $0.distance < $1.distance }
        guard let nearest, nearest.distance <= min(2, nearest.name.count / 2) else { return nil }
        return "Unknown command '\(word)'. Did you mean '\(nearest.name)'?"
    }

    /// Levenshtein distance (insertions, deletions, substitutions) between two words.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var row = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = row
        }
        return previous[b.count]
    }
}

/// The environment variables the CLI reads, as the help lists them.
enum EnvironmentVariables {
    static let model = "TESSERA_MODEL"
    static let cache = "TESSERA_CACHE"

    static let help = """
        Environment variables:
          TESSERA_MODEL           the model when --model is not given
          TESSERA_CACHE           the default model's cache (~/.cache/tessera)
          TESSERA_DEFAULT_DEVICE  cpu or gpu: where arrays are computed
          TESSERA_NUM_THREADS     CPU threads for the kernels (default: cores)
          HF_ENDPOINT             the Hub for --model ORG/NAME (huggingface.co)
          HF_HUB_CACHE            the Hub cache (default $HF_HOME/hub)
          HF_HOME                 default ~/.cache/huggingface
          HF_TOKEN                for private or gated repos ($HF_HOME/token)
          HF_TOKEN_PATH           the token file (default $HF_HOME/token)
          HF_HUB_OFFLINE          1: Hub models from the cache only
        """
}

/// `tessera version`: the same as `tessera --version` (kept from the first CLI).
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print the version.", shouldDisplay: false)

    func run() {
        print("tessera \(TesseraCommand.version)")
    }
}
