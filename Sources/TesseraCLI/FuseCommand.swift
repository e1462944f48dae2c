// `tessera fuse`: adapters merged into the model's weights (mlx-lm's
// mlx_lm.fuse flags), saved as a model folder and optionally a GGUF that
// llama.cpp loads.

import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import TesseraLM

extension GGUFExport.FileType: ExpressibleByArgument {}

struct FuseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuse",
        abstract: "Merge adapters into a model and save it (mlx-lm's mlx_lm.fuse flags).",
        discussion: """
            Reads --model (a GGUF file or a model folder) and the adapter folder --adapter-path \
            (adapters.safetensors + adapter_config.json from tessera lora or mlx-lm), merges the \
            LoRA/DoRA layers into the weights and writes --save-path: model.safetensors, config.json \
            and the tokenizer files. A quantized base is quantized again in its own format, or saved \
            dense with --dequantize. --export-gguf also writes a GGUF (--gguf-type f16, q8_0 or q4_1) \
            that llama.cpp loads; a relative --gguf-path is inside --save-path, as mlx-lm's.

            \(EnvironmentVariables.help)
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("The folder to write (must not exist yet).", valueName: "dir"))
    var savePath = "fused_model"
    @Option(help: ArgumentHelp("The adapter folder.", valueName: "dir"))
    var adapterPath = "adapters"
    @Flag(
        name: [.customLong("dequantize"), .customLong("de-quantize")],
        help: "Save a quantized base dense (in the dtype of its scales).")
    var dequantize = false
    @Flag(help: "Also write a GGUF file.") var exportGGUF = false
    @Option(help: ArgumentHelp("The GGUF file (relative: inside --save-path).", valueName: "file"))
    var ggufPath = "ggml-model-f16.gguf"
    @Option(help: ArgumentHelp("How the GGUF stores the 2-D weights.", valueName: "f16|q8_0|q4_1"))
    var ggufType: GGUFExport.FileType = .f16

    init() {}

    func validate() throws {
        guard FileManager.default.fileExists(atPath: adapterPath + "/" + Adapters.configFile) else {
            throw ValidationError("--adapter-path: no \(Adapters.configFile) in \(adapterPath)")
        }
        guard !FileManager.default.fileExists(atPath: savePath) else {
            throw ValidationError("--save-path: \(savePath) already exists")
        }
        if exportGGUF, ggufPath.hasPrefix("/"), FileManager.default.fileExists(atPath: ggufPath) {
            throw ValidationError("--gguf-path: \(ggufPath) already exists")
        }
    }

    /// Where the GGUF goes: an absolute --gguf-path as given, a relative one inside --save-path.
    var resolvedGGUFPath: String { ggufPath.hasPrefix("/") ? ggufPath : savePath + "/" + ggufPath }

    func run() throws {
        let path = try modelOptions.requestedModel() ?? DefaultModel.locateOrFetch(log: printError)
        printError("fusing \(adapterPath) into \(path) ...")
        let gguf = exportGGUF ? (path: resolvedGGUFPath, type: ggufType) : nil
        let (_, count) = try Fusion.run(
            model: path, adapterPath: adapterPath, savePath: savePath, dequantize: dequantize, gguf: gguf)
        print("fused \(count) layers; wrote \(savePath)")
        if let gguf { print("wrote \(gguf.path) (\(gguf.type.rawValue))") }
    }
}
