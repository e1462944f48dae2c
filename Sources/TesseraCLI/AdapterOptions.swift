// --adapter-path for generate and chat: an adapter folder (mlx-lm's
// adapters.safetensors + adapter_config.json) applied to the model at load.

import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TesseraLM

struct AdapterOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "A folder with adapters.safetensors and adapter_config.json (from tessera lora or mlx-lm) to apply.",
            valueName: "dir"))
    var adapterPath: String?

    func validate() throws {
        guard let adapterPath else { return }
        guard FileManager.default.fileExists(atPath: adapterPath + "/" + Adapters.configFile) else {
            throw ValidationError("--adapter-path: no \(Adapters.configFile) in \(adapterPath)")
        }
    }

    /// Applies the adapter, if any, to `loaded`'s model; returns the identity
    /// prompt caches should use (the model's, with the adapter named).
    func apply(to loaded: LoadedModel, verbose: Bool) throws -> String {
        guard let adapterPath else { return loaded.identity }
        guard let model = loaded.model as? TransformerModel else { throw AdapterError.notAModuleTree }
        let config = try Adapters.load(adapterPath, into: model)
        if verbose {
            printError(
                "adapter \(adapterPath): \(config.fineTuneType.rawValue), \(config.numLayers) layers, "
                    + "rank \(config.parameters.rank), scale \(config.parameters.scale)")
        }
        return loaded.identity + " adapter " + adapterPath
    }
}
