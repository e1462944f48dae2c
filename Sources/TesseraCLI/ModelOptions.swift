// Options that choose and load the model: --model (or $TESSERA_MODEL, else the
// default model), --gguf-file, --precision, --verbose. A --model that is not a
// file or folder here but reads as ORG/NAME[@REVISION] comes from the Hugging
// Face Hub, through its shared cache (TesseraHub).

import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera
import TesseraHub
import TesseraLM

/// How finely the CPU's quantized decode products round activations.
enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable {
    case high, highest
}

struct ModelOptions: ParsableArguments {
    @Option(
        name: [.short, .long],
        help: ArgumentHelp(
            "A GGUF file, a Hugging Face / mlx-community model folder, or a Hub repo ORG/NAME[@REVISION] "
                + "(downloaded into the Hugging Face cache). Default: $TESSERA_MODEL, else "
                + "SmolLM2-135M-Instruct, fetched once into $TESSERA_CACHE/models.",
            valueName: "path|org/name"))
    var model: String?

    @Option(
        help: ArgumentHelp(
            "For a Hub repo of GGUF files: the file to use, or a pattern its name contains such as Q4_K_M "
                + "(also written ORG/NAME:Q4_K_M).",
            valueName: "name|pattern"))
    var ggufFile: String?

    @Option(
        help: ArgumentHelp(
            "How finely quantized decode products round activations on CPUs with AVX-512 VNNI: "
                + "high (16 bits) or highest (24, float32's level); at high, a bfloat16 model's prefill "
                + "also rounds them to bfloat16 for AVX512-BF16 dot products.",
            valueName: "high|highest"))
    var precision: PrecisionChoice = .high

    @Flag(name: .shortAndLong, help: "Print load and timing details to stderr.")
    var verbose = false

    /// The model path asked for: --model, else $TESSERA_MODEL; nil: the default model.
    func requestedModel(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let model { return model }
        if let path = environment[EnvironmentVariables.model], !path.isEmpty { return path }
        return nil
    }

    /// The hub repo asked for: a --model (or $TESSERA_MODEL) that is no file or folder here
    /// and reads as ORG/NAME[@REVISION][:QUANT]; nil for a local path or the default model.
    func hubReference(environment: [String: String] = ProcessInfo.processInfo.environment) -> RepoReference? {
        guard let requested = requestedModel(environment: environment),
            !FileManager.default.fileExists(atPath: requested)
        else { return nil }
        return RepoReference.parse(requested)
    }

    func validate() throws {
        if let ggufFile, ggufFile.isEmpty || ggufFile.contains("..") || ggufFile.hasPrefix("/") {
            throw ValidationError("--gguf-file: give a .gguf file name in the repo, or a pattern such as Q4_K_M")
        }
        guard let path = requestedModel() else { return }
        guard FileManager.default.fileExists(atPath: path) || hubReference() != nil else {
            let source = model == nil ? "$\(EnvironmentVariables.model)" : "--model"
            throw ValidationError(
                "\(source): no model file or folder at \(path) (nor a Hugging Face repo id ORG/NAME[@REVISION])")
        }
        if ggufFile != nil && hubReference() == nil {
            throw ValidationError("--gguf-file applies to a Hugging Face repo given as --model ORG/NAME")
        }
    }

    /// The local path of the model: the file or folder asked for, the hub repo's
    /// snapshot (downloading what is missing), or the default model (fetched once).
    func resolvePath() async throws -> String {
        if let ref = hubReference() {
            let configuration = HubConfiguration.fromEnvironment()
            let progress = DownloadProgress(
                label: ref.repo, terminal: standardErrorIsTerminal(), write: { writeStandardError($0) })
            let resolved = try await HubModels.resolve(
                ref, ggufFile: ggufFile, configuration: configuration, progress: progress)
            if resolved.fromCacheOnly { printError("warning: the hub could not be reached; using the cached \(ref)") }
            if verbose {
                printError(
                    "\(ref) at commit \(resolved.commit): \(resolved.files.count) files in \(resolved.snapshot)"
                        + (resolved.downloaded.isEmpty ? " (all cached)" : " (\(resolved.downloaded.count) downloaded)")
                )
            }
            return resolved.path
        }
        return try requestedModel() ?? Self.defaultModel()
    }

    /// The default model, fetched when missing with the progress display of Hub downloads.
    static func defaultModel() throws -> String {
        if let path = DefaultModel.cachedPath() { return path }
        let display = DownloadProgress(
            label: "default model", terminal: standardErrorIsTerminal(), write: { writeStandardError($0) })
        let file = DefaultModel.fileName
        var begun = false, shown: Int64 = 0
        do {
            let path = try DefaultModel.locateOrFetch(log: printError) { received, total in
                if !begun { display.begin(file: file, total: total, resumedFrom: 0) }
                begun = true
                display.advance(file: file, bytes: received - shown)
                shown = received
            }
            if begun { display.finish(file: file, downloaded: true) }
            display.end(completed: begun)
            return path
        } catch {
            display.end(completed: false)
            throw error
        }
    }

    /// Loads the model (fetching the default one, or the hub repo's files, when
    /// needed); with `tensorParallel`, this rank's block of it.
    func load(tensorParallel: TensorParallel? = nil) async throws -> (
        generator: TextGenerator, loaded: LoadedModel, path: String
    ) {
        switch precision {
        case .high:
            QuantizedMatmulPrecision.current = .high
            BFloat16MatmulPrecision.current = .high
        case .highest:
            QuantizedMatmulPrecision.current = .highest
            BFloat16MatmulPrecision.current = .highest
        }
        let path = try await resolvePath()
        let clock = ContinuousClock()
        let start = clock.now
        // The tokenizer is built before the weights come in (loadWithTokenizer), and
        // the code that only loading ran then leaves the resident set (CodePages.swift),
        // with the pages the load's freed temporaries leave inside the malloc arenas.
        let (loaded, tokenizer) = try ModelLoader.loadWithTokenizer(path, tensorParallel: tensorParallel)
        let generator = TextGenerator(model: loaded.model, tokenizer: tokenizer)
        let codeBytes = CodePages.release()
        Memory.releaseFreeMallocPages()
        if verbose {
            let seconds = (clock.now - start).seconds
            printError("released \(codeBytes >> 20) MiB of resident start-up code pages")
            printError(
                "loaded \(path): \(loaded.modelType), context \(loaded.model.contextLength) tokens, "
                    + "vocabulary \(loaded.model.vocabularySize), in \(formatted(seconds)) s on \(Stream.current.device)"
                    + (tensorParallel.map { ", rank \($0.group.rank) of \($0.group.size) (\($0.group.backendName))" }
                        ?? ""))
        }
        return (generator, loaded, path)
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) * 1e-18
    }
}
