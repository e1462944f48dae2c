// `tessera convert`: a model to an MLX-format quantized folder.

import ArgumentParser
#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
import Tessera
import TesseraLM

struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Write a model as an MLX-format quantized folder (mlx-lm and Tessera load it).",
        discussion: """
            mlx_lm.convert's flags are understood too: -q (quantizing is the default), --q-bits, \
            --q-group-size, --quant-predicate, --dtype.
            """)

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("The model to convert: a GGUF file or a model folder.", valueName: "path"))
    var model: String

    @Option(
        name: .shortAndLong,
        help: ArgumentHelp("The folder to write (must not exist yet, unless --force).", valueName: "dir"))
    var output: String

    @Flag(help: "Replace an existing model folder at --output (the new one is written beside it, then swapped in).")
    var force = false

    @Option(
        name: [.customLong("bits"), .customLong("q-bits")],
        help: "Bits per quantized weight (\(listed(Self.supportedBits))). Default: 4.")
    var bits: Int?

    @Option(
        name: [.customLong("group-size"), .customLong("q-group-size")],
        help: "Weights per quantization group (32, 64 or 128). Default: 64; 32 from a GGUF.")
    var groupSize: Int?

    @Flag(name: [.customShort("q"), .customLong("quantize")], help: "Quantize (the default; as mlx_lm.convert -q).")
    var quantize = false

    @Option(
        help: ArgumentHelp(
            "Write every weight unquantized in this dtype (float32, float16 or bfloat16) instead of quantizing, "
                + "as mlx_lm.convert --dtype without -q (a quantized input is dequantized).",
            valueName: "dtype"))
    var dtype: String?

    @Option(
        help: ArgumentHelp(
            "Bits for the token embedding and LM head (\(listed(Self.supportedBits))). Default: 8 from a GGUF, else --bits.",
            valueName: "bits"))
    var embeddingBits: Int?

    @Option(
        help: ArgumentHelp(
            "An mlx-lm mixed-precision recipe (\(QuantizationRecipe.allCases.map(\.rawValue).joined(separator: ", "))): "
                + "more bits for the LM head and some v_proj/down_proj layers; sets the bits.",
            valueName: "recipe"))
    var quantPredicate: String?

    /// The widths ModelConverter writes (MLX's affine quantization).
    static let supportedBits = [2, 3, 4, 5, 6, 8]

    init() {}

    func validate() throws {
        guard FileManager.default.fileExists(atPath: model) else {
            throw ValidationError("--model: no model file or folder at \(model)")
        }
        if !force && FileManager.default.fileExists(atPath: output) {
            throw ValidationError("--output: \(output) already exists (add --force to replace it)")
        }
        if let bits, !Self.supportedBits.contains(bits) {
            throw ValidationError("--bits must be one of \(listed(Self.supportedBits)), got \(bits)")
        }
        if let embeddingBits, !Self.supportedBits.contains(embeddingBits) {
            throw ValidationError("--embedding-bits must be one of \(listed(Self.supportedBits)), got \(embeddingBits)")
        }
        if let groupSize, ![32, 64, 128].contains(groupSize) {
            throw ValidationError("--group-size must be 32, 64 or 128, got \(groupSize)")
        }
        if let quantPredicate {
            guard QuantizationRecipe(rawValue: quantPredicate) != nil else {
                throw ValidationError(
                    "--quant-predicate must be one of \(QuantizationRecipe.allCases.map(\.rawValue).joined(separator: ", ")), got \(quantPredicate)"
                )
            }
            if bits != nil {
                throw ValidationError("--bits and --quant-predicate: the recipe sets the bits; give one of them")
            }
        }
        if let dtype {
            guard Self.denseTypes[dtype] != nil else {
                throw ValidationError("--dtype must be float32, float16 or bfloat16, got \(dtype)")
            }
            if quantize || bits != nil || groupSize != nil || embeddingBits != nil || quantPredicate != nil {
                throw ValidationError(
                    "--dtype writes an unquantized folder; it takes none of -q, --bits, --group-size, --embedding-bits, --quant-predicate"
                )
            }
        }
    }

    static let denseTypes: [String: DType] = ["float32": .float32, "float16": .float16, "bfloat16": .bfloat16]

    func run() throws {
        let recipe = quantPredicate.flatMap(QuantizationRecipe.init(rawValue:))
        let dense = dtype.flatMap { Self.denseTypes[$0] }
        let width = dtype ?? recipe.map { "\($0.rawValue)" } ?? "\(bits ?? 4)-bit"
        printError("converting \(model) to \(width) MLX format in \(output) ...")
        let clock = ContinuousClock(), start = clock.now
        let display = ConvertProgress(terminal: standardErrorIsTerminal(), write: { writeStandardError($0) })
        let report: ModelConverter.Report
        do {
            report = try ModelConverter.convert(
                model: model, output: output, bits: bits ?? 4, groupSize: groupSize, dense: dense,
                embeddingBits: embeddingBits,
                recipe: recipe, replace: force, progress: display.update)
        } catch {
            display.end()
            throw error
        }
        display.end()
        for warning in report.warnings { printError("warning: " + warning) }
        let seconds = (clock.now - start) / .milliseconds(100)
        print(
            "\(report.replacedExisting ? "replaced" : "wrote") \(output) (\(report.tensorCount) tensors, "
                + "\(ConvertProgress.megabytes(report.byteCount)), \(Double(Int(seconds.rounded())) / 10) s)")
    }
}
