// `tessera lora`: fine-tunes a model with LoRA, DoRA or all its float
// weights on a data folder, with mlx-lm's `mlx_lm.lora` flag names and
// defaults, and/or reports the test loss and perplexity.

import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Tessera
import TesseraLM
import TesseraNN
import TesseraOptimizers

#if canImport(Glibc)
import Glibc
#endif

enum OptimizerChoice: String, ExpressibleByArgument, CaseIterable {
    case adam, adamw, sgd
}

extension FineTuneType: ExpressibleByArgument {}

struct LoRACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lora",
        abstract: "Fine-tune a model with LoRA, DoRA or all weights (mlx-lm's mlx_lm.lora flags).",
        discussion: """
            --data names a folder with train.jsonl and valid.jsonl (and test.jsonl for --test): one \
            JSON object per line, {"messages": [...]}, {"prompt": ..., "completion": ...} or \
            {"text": ...}; chat and completions go through the model's chat template. Adapters are \
            saved to --adapter-path as adapters.safetensors and adapter_config.json, which mlx-lm \
            and `tessera generate --adapter-path` load.

            \(EnvironmentVariables.help)
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Train.") var train = false
    @Option(help: ArgumentHelp("The data folder (train.jsonl, valid.jsonl, test.jsonl).", valueName: "dir"))
    var data = "data"
    @Option(help: ArgumentHelp("What to train.", valueName: "lora|dora|full")) var fineTuneType: FineTuneType = .lora
    @Option(parsing: .unconditional, help: "Adapt the last N layers (-1: all).") var numLayers = 16
    @Option(help: "Examples per step.") var batchSize = 4
    @Option(help: "Training steps.") var iters = 1000
    @Option(help: "The optimizer's learning rate.") var learningRate: Float = 1e-5
    @Option(help: ArgumentHelp("The optimizer.", valueName: "adam|adamw|sgd")) var optimizer: OptimizerChoice = .adam
    @Option(help: "Steps between progress lines.") var stepsPerReport = 10
    @Option(help: "Steps between validation losses.") var stepsPerEval = 200
    @Option(parsing: .unconditional, help: "Validation batches per evaluation (-1: all).") var valBatches = 25
    @Option(help: "Steps between adapter saves.") var saveEvery = 100
    @Option(help: ArgumentHelp("Where adapters are saved (and, without --train, read).", valueName: "dir"))
    var adapterPath = "adapters"
    @Option(help: "Cut sequences to this many tokens.") var maxSeqLength = 2048
    @Flag(help: "Train only on completions: mask the prompt out of the loss.") var maskPrompt = false
    @Flag(help: "Report the loss and perplexity on test.jsonl.") var test = false
    @Option(parsing: .unconditional, help: "Test batches (-1: all).") var testBatches = 500
    @Option(help: "The random seed (adapter initialisation, dropout, batch order).") var seed: UInt64 = 0
    @Option(help: "The adapters' rank.") var loraRank = 8
    @Option(help: "The adapters' scale (mlx-lm's scale, alpha).") var loraScale: Float = 20
    @Option(help: "Dropout on the adapters' input.") var loraDropout: Float = 0

    init() {}

    func validate() throws {
        guard train || test else { throw ValidationError("nothing to do: give --train, --test or both") }
        if numLayers == 0 || numLayers < -1 { throw ValidationError("--num-layers must be positive or -1 (all), got \(numLayers)") }
        for (name, value) in [
            ("--batch-size", batchSize), ("--iters", iters), ("--steps-per-report", stepsPerReport),
            ("--steps-per-eval", stepsPerEval), ("--save-every", saveEvery), ("--lora-rank", loraRank),
        ] where value < 1 {
            throw ValidationError("\(name) must be at least 1, got \(value)")
        }
        if maxSeqLength < 2 { throw ValidationError("--max-seq-length must be at least 2, got \(maxSeqLength)") }
        for (name, value) in [("--val-batches", valBatches), ("--test-batches", testBatches)] where value == 0 || value < -1 {
            throw ValidationError("\(name) must be positive or -1 (all), got \(value)")
        }
        guard learningRate.isFinite && learningRate > 0 else {
            throw ValidationError("--learning-rate must be a positive number, got \(learningRate)")
        }
        guard loraScale.isFinite else { throw ValidationError("--lora-scale must be a number, got \(loraScale)") }
        guard loraDropout >= 0 && loraDropout < 1 else { throw ValidationError("--lora-dropout must be in [0, 1), got \(loraDropout)") }
        var required: [String] = []
        if train { required += ["train", "valid"] }
        if test { required.append("test") }
        for split in required where !FineTuningData.has(folder: data, split: split) {
            throw ValidationError("--data: no \(split).jsonl in \(data)")
        }
        if test && !train && !FileManager.default.fileExists(atPath: adapterPath + "/" + Adapters.configFile) {
            throw ValidationError("--adapter-path: no \(Adapters.configFile) in \(adapterPath) to test (or give --train)")
        }
    }

    var adapterConfig: AdapterConfig {
        var extra = JSONObject()
        extra["model"] = .string(modelOptions.requestedModel() ?? DefaultModel.fileName)
        extra["data"] = .string(data)
        extra["batch_size"] = .int(batchSize)
        extra["iters"] = .int(iters)
        extra["learning_rate"] = .double(Double("\(learningRate)") ?? Double(learningRate))  // 0.0002, not 0.000199999…
        extra["optimizer"] = .string(optimizer.rawValue)
        extra["max_seq_length"] = .int(maxSeqLength)
        extra["mask_prompt"] = .bool(maskPrompt)
        extra["seed"] = .int(Int(truncatingIfNeeded: seed))
        extra["adapter_path"] = .string(adapterPath)
        return AdapterConfig(
            fineTuneType: fineTuneType, numLayers: numLayers,
            parameters: LoRAParameters(rank: loraRank, scale: loraScale, dropout: loraDropout), extra: extra)
    }

    func makeOptimizer() -> Optimizer {
        let rate = LearningRate.constant(learningRate)
        switch optimizer {
        case .adam: return Adam(learningRate: rate)
        case .adamw: return AdamW(learningRate: rate)
        case .sgd: return SGD(learningRate: rate)
        }
    }

    func run() async throws {
        Random.seed(seed)
        let (generator, loaded, _) = try await modelOptions.load()
        guard let model = loaded.model as? TransformerModel else { throw AdapterError.notAModuleTree }
        let tokenizer = generator.tokenizer
        if train {
            let config = adapterConfig
            try Adapters.apply(to: model, config, seed: seed)
            let trainable = model.trainableParameters().flattened().reduce(0) { $0 + $1.value.size }
            let total = model.parameters().flattened().reduce(0) { $0 + $1.value.size }
            print("Trainable parameters: \(trainable) of \(total) stored values (\(percent(trainable, total))%)")
            let trainSet = try FineTuningData.load(folder: data, split: "train", tokenizer: tokenizer, maskPrompt: maskPrompt)
            let validSet = try FineTuningData.load(folder: data, split: "valid", tokenizer: tokenizer, maskPrompt: maskPrompt)
            print("Training: \(trainSet.count) examples, \(validSet.count) validation examples")
            var options = TrainingOptions()
            (options.iterations, options.batchSize, options.maxSequenceLength) = (iters, batchSize, maxSeqLength)
            (options.stepsPerReport, options.stepsPerEval, options.validationBatches) = (stepsPerReport, stepsPerEval, valBatches)
            (options.saveEvery, options.adapterPath, options.seed) = (saveEvery, adapterPath, seed)
            try Trainer.train(
                model: model, optimizer: makeOptimizer(), adapter: config, train: trainSet, valid: validSet,
                options: options, report: Self.printEvent)
        } else {
            try Adapters.load(adapterPath, into: model)
        }
        if test {
            let testSet = try FineTuningData.load(folder: data, split: "test", tokenizer: tokenizer, maskPrompt: maskPrompt)
            let loss = Trainer.evaluate(
                model: model, testSet, batchSize: batchSize, maxSequenceLength: maxSeqLength, batches: testBatches)
            print("Test loss \(fixed(Double(loss), 3)), Test ppl \(fixed(Glibc.exp(Double(loss)), 3)).")
        }
    }

    static func printEvent(_ event: TrainingEvent) {
        switch event {
        case let .train(step, loss, rate, itPerSecond, tokensPerSecond, trained, peak):
            print(
                "Iter \(step): Train loss \(fixed(Double(loss), 3)), Learning Rate \(scientific(Double(rate))), "
                    + "It/sec \(fixed(itPerSecond, 3)), Tokens/sec \(fixed(tokensPerSecond, 1)), "
                    + "Trained Tokens \(trained), Peak mem \(fixed(Double(peak) / 1e9, 3)) GB")
        case let .validation(step, loss, seconds):
            print("Iter \(step): Val loss \(fixed(Double(loss), 3)), Val took \(fixed(seconds, 3))s")
        case let .saved(step, path):
            print("Iter \(step): Saved adapter weights to \(path).")
        }
        flushStandardOutput()
    }
}

private func percent(_ part: Int, _ whole: Int) -> String { fixed(whole == 0 ? 0 : 100 * Double(part) / Double(whole), 3) }

/// `x` with `digits` decimals.
func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return String(x) }
    let scale = (0..<digits).reduce(1.0) { a, _ in a * 10 }
    let rounded = (Swift.abs(x) * scale).rounded()
    let whole = Int(rounded / scale), fraction = Int(rounded.truncatingRemainder(dividingBy: scale))
    let text = String(fraction)
    let sign = x < 0 && rounded > 0 ? "-" : ""
    return digits == 0 ? sign + String(whole) : sign + "\(whole)." + String(repeating: "0", count: digits - text.count) + text
}

/// `x` as `1.000e-05`.
func scientific(_ x: Double) -> String {
    guard x.isFinite, x != 0 else { return String(x) }
    var exponent = Int(Glibc.log10(Swift.abs(x)).rounded(.down))
    var mantissa = x / Glibc.pow(10, Double(exponent))
    if Swift.abs(mantissa) >= 9.9995 { (mantissa, exponent) = (mantissa / 10, exponent + 1) }
    let sign = exponent < 0 ? "-" : "+"
    let e = String(abs(exponent))
    return fixed(mantissa, 3) + "e" + sign + (e.count < 2 ? "0" + e : e)
}
