// Options that choose and load the model: --model (or $TESSERA_MODEL, else the
// default model), --precision, --verbose.

import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tessera
import TesseraLM

/// How finely the CPU's quantized decode products round activations.
enum PrecisionChoice: String, ExpressibleByArgument, CaseIterable {
    case high, highest
}

struct ModelOptions: ParsableArguments {
    @Option(
        name: [.short, .long],
        help: ArgumentHelp(
            "A GGUF file, or a Hugging Face / mlx-community model folder. Default: $TESSERA_MODEL, else "
                + "SmolLM2-135M-Instruct, fetched once into $TESSERA_CACHE/models.",
            valueName: "path"))
    var model: String?

    @Option(
        help: ArgumentHelp(
            "How finely quantized decode products round activations on CPUs with AVX-512 VNNI: "
                + "high (16 bits) or highest (24, float32's level).",
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

    func validate() throws {
        guard let path = requestedModel() else { return }
        guard FileManager.default.fileExists(atPath: path) else {
            let source = model == nil ? "$\(EnvironmentVariables.model)" : "--model"
            throw ValidationError("\(source): no model file or folder at \(path)")
        }
    }

    /// Loads the model (fetching the default one when none was asked for).
    func load() throws -> (generator: TextGenerator, loaded: LoadedModel, path: String) {
        switch precision {
        case .high: QuantizedMatmulPrecision.current = .high
        case .highest: QuantizedMatmulPrecision.current = .highest
        }
        let path = try requestedModel() ?? DefaultModel.locateOrFetch(log: printError)
        let clock = ContinuousClock()
        let start = clock.now
        let loaded = try ModelLoader.load(path)
        let generator = try TextGenerator(loaded: loaded)
        if verbose {
            let seconds = (clock.now - start).seconds
            printError(
                "loaded \(path): \(loaded.modelType), context \(loaded.model.contextLength) tokens, "
                    + "vocabulary \(loaded.model.vocabularySize), in \(formatted(seconds)) s on \(Stream.current.device)")
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
