// `tessera convert`: a model to an MLX-format quantized folder.

import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import TesseraLM

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a model as an MLX-format quantized folder (mlx-lm and Tessera load it).")

    @Option(name: .shortAndLong, help: ArgumentHelp("The model to convert: a GGUF file or a model folder.", valueName: "path"))
    var model: String

    @Option(name: .shortAndLong, help: ArgumentHelp("The folder to write (must not exist yet).", valueName: "dir"))
    var output: String

    @Option(help: "Bits per quantized weight (\(listed(Self.supportedBits))).")
    var bits = 4

    @Option(help: "Weights per quantization group (32, 64 or 128). Default: 64; 32 from a GGUF.")
    var groupSize: Int?

    /// The widths ModelConverter writes (MLX's affine quantization).
    static let supportedBits = [2, 3, 4, 5, 6, 8]

    init() {}

    func validate() throws {
        guard FileManager.default.fileExists(atPath: model) else {
            throw ValidationError("--model: no model file or folder at \(model)")
        }
        guard !FileManager.default.fileExists(atPath: output) else {
            throw ValidationError("--output: \(output) already exists")
        }
        guard Self.supportedBits.contains(bits) else {
            throw ValidationError("--bits must be one of \(listed(Self.supportedBits)), got \(bits)")
        }
        if let groupSize, ![32, 64, 128].contains(groupSize) {
            throw ValidationError("--group-size must be 32, 64 or 128, got \(groupSize)")
        }
    }

    func run() throws {
        printError("converting \(model) to \(bits)-bit MLX format in \(output) ...")
        try ModelConverter.convert(model: model, output: output, bits: bits, groupSize: groupSize)
        print("wrote \(output)")
    }
}
