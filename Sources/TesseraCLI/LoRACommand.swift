// `tessera lora`: fine-tunes a model with LoRA, DoRA or all its float
// weights on a data folder, with mlx-lm's `mlx_lm.lora` flag names and
// defaults, and/or reports the test loss and perplexity.

import ArgumentParser
import Synchronization
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
    case adam, adamw, sgd, adafactor
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

            -c/--config reads mlx-lm's lora_config.yaml keys (model, train, data, fine_tune_type, \
            num_layers, batch_size, iters, learning_rate, lr_schedule {name, arguments, warmup, \
            warmup_init}, optimizer, optimizer_config, lora_parameters {keys, rank, scale, dropout}, \
            ...); flags given on the command line override it. An unknown key is an error.

            \(EnvironmentVariables.help)
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(
        name: [.customShort("c"), .long],
        help: ArgumentHelp("A YAML file of mlx-lm lora_config keys.", valueName: "file"))
    var config: String?
    @Flag(help: "Train.") var train = false
    @Option(
        help: ArgumentHelp("The data folder (train.jsonl, valid.jsonl, test.jsonl). Default: data.", valueName: "dir"))
    var data: String?
    @Option(help: ArgumentHelp("What to train. Default: lora.", valueName: "lora|dora|full")) var fineTuneType:
        FineTuneType?
    @Option(parsing: .unconditional, help: "Adapt the last N layers (-1: all). Default: 16.") var numLayers: Int?
    @Option(help: "Examples per step. Default: 4.") var batchSize: Int?
    @Option(help: "Training steps. Default: 1000.") var iters: Int?
    @Option(help: "The optimizer's learning rate (the schedule's, with lr_schedule). Default: 1e-5.") var learningRate:
        Float?
    @Option(
        help: ArgumentHelp(
            "The optimizer. Default: adam. adafactor, as mlx-lm, takes relative steps (min(1e-2, 1/√t)) and ignores "
                + "--learning-rate unless optimizer_config.adafactor.relative_step is false.",
            valueName: "adam|adamw|sgd|adafactor"))
    var optimizer: OptimizerChoice?
    @Option(help: "Steps between progress lines. Default: 10.") var stepsPerReport: Int?
    @Option(help: "Steps between validation losses. Default: 200.") var stepsPerEval: Int?
    @Option(parsing: .unconditional, help: "Validation batches per evaluation (-1: all). Default: 25.") var valBatches:
        Int?
    @Option(help: "Steps between adapter saves. Default: 100.") var saveEvery: Int?
    @Option(
        help: ArgumentHelp(
            "Where adapters are saved (and, without --train, read). Default: adapters.", valueName: "dir"))
    var adapterPath: String?
    @Option(help: "Cut sequences to this many tokens. Default: 2048.") var maxSeqLength: Int?
    @Flag(help: "Train only on completions: mask the prompt out of the loss.") var maskPrompt = false
    @Flag(help: "Report the loss and perplexity on test.jsonl.") var test = false
    @Option(parsing: .unconditional, help: "Test batches (-1: all). Default: 500.") var testBatches: Int?
    @Option(help: "The random seed (adapter initialisation, dropout, batch order). Default: 0.") var seed: UInt64?
    @Option(help: "The adapters' rank. Default: 8.") var loraRank: Int?
    @Option(help: "The adapters' scale (mlx-lm's scale, alpha). Default: 20.") var loraScale: Float?
    @Option(help: "Dropout on the adapters' input. Default: 0.") var loraDropout: Float?
    @Option(
        help: ArgumentHelp(
            "Start from these adapters: a training_state.safetensors continues that run exactly (weights, optimizer, "
                + "step, data order, random state); an adapters.safetensors loads the weights only, as mlx-lm.",
            valueName: "file"))
    var resumeAdapterFile: String?
    @Flag(
        help: "Recompute each transformer block in the backward pass instead of keeping its activations (less memory).")
    var gradCheckpoint = false
    @Option(help: "Average the gradients of this many batches into one update. Default: 1.") var gradAccumulationSteps:
        Int?
    @Flag(help: "Continue the run saved in --adapter-path (its training_state.safetensors) exactly where it stopped.")
    var resume = false

    init() {}

    func validate() throws {
        let s = try settings()
        guard s.train || s.test else { throw ValidationError("nothing to do: give --train, --test or both") }
        var required: [String] = []
        if s.train { required += ["train", "valid"] }
        if s.test { required.append("test") }
        for split in required where !FineTuningData.has(folder: s.data, split: split) {
            throw ValidationError("--data: no \(split).jsonl in \(s.data)")
        }
        if let path = s.resumeAdapterFile, !FileManager.default.fileExists(atPath: path) {
            throw ValidationError(resume ? "--resume: no \(path)" : "--resume-adapter-file: no file at \(path)")
        }
        if s.test && !s.train && !FileManager.default.fileExists(atPath: s.adapterPath + "/" + Adapters.configFile) {
            throw ValidationError(
                "--adapter-path: no \(Adapters.configFile) in \(s.adapterPath) to test (or give --train)")
        }
    }

    /// The run's settings: each flag given, else the config file's value, else mlx-lm's default;
    /// every value checked, an error naming the flag (and the config key).
    func settings() throws -> LoRASettings {
        let file: LoRAConfigFile
        if let config {
            do { file = try LoRAConfigFile.load(config) } catch {
                throw ValidationError("-c/--config \(config): \(error)")
            }
        } else {
            file = LoRAConfigFile(values: [:])
        }
        do { return try LoRASettings(self, file) } catch let error as LoRAConfigError {
            throw ValidationError("-c/--config \(config ?? ""): \(error)")
        }
    }

    var adapterConfig: AdapterConfig { (try? settings())?.adapterConfig ?? AdapterConfig() }

    func run() async throws {
        let s = try settings()
        // Under `tessera launch -n N`: data parallel, each rank on its rows of
        // every batch; rank 0 prints and saves.
        let ranks = try LaunchedRanks.start()
        Random.seed(s.seed)
        var options = modelOptions
        if options.model == nil, let model = s.model { options.model = model }
        let (generator, loaded, _) = try await options.load()
        // At --precision high, a tied 8-bit head's forward product runs on integer dot products too.
        QuantizedMatmulPrecision.integerEightBitProducts = QuantizedMatmulPrecision.current == .high
        guard let model = loaded.model as? TransformerModel else { throw AdapterError.notAModuleTree }
        let tokenizer = generator.tokenizer
        if s.train {
            let config = s.adapterConfig
            try Adapters.apply(to: model, config, seed: s.seed)
            model.gradientCheckpointing = s.gradCheckpoint
            let trainable = model.trainableParameters().flattened().reduce(0) { $0 + $1.value.size }
            let total = model.parameters().flattened().reduce(0) { $0 + $1.value.size }
            print("Trainable parameters: \(trainable) of \(total) stored values (\(percent(trainable, total))%)")
            let trainSet = try FineTuningData.load(
                folder: s.data, split: "train", tokenizer: tokenizer, maskPrompt: s.maskPrompt)
            let validSet = try FineTuningData.load(
                folder: s.data, split: "valid", tokenizer: tokenizer, maskPrompt: s.maskPrompt)
            print("Training: \(trainSet.count) examples, \(validSet.count) validation examples")
            var trainingOptions = s.trainingOptions
            trainingOptions.group = ranks.group
            if ranks.isParallel {
                print("Data parallel over \(ranks.group.size) ranks (\(ranks.group.backendName))")
            }
            if let path = s.resumeAdapterFile {
                if TrainingCheckpoint.isTrainingState(path) {
                    trainingOptions.resumeFrom = path
                    print("Resuming the run saved in \(path)")
                } else {
                    // mlx-lm's resume: the adapter weights only.
                    try model.update(parameters: try Safetensors.load(path).tensors, strict: false)
                    print("Loaded adapter weights from \(path)")
                }
            }
            // Ctrl-C: the state is saved after the current step and the run ends (a second Ctrl-C ends it at once).
            // Under launch every rank gets the signal at a different step: it ends the run instead.
            if !ranks.isParallel { TrainingInterrupt.install() }
            try Trainer.train(
                model: model, optimizer: try s.makeOptimizer(), adapter: config, train: trainSet, valid: validSet,
                options: trainingOptions, shouldStop: { TrainingInterrupt.requested }, report: Self.printEvent)
        } else {
            try Adapters.load(s.adapterPath, into: model)
        }
        if s.test {
            let testSet = try FineTuningData.load(
                folder: s.data, split: "test", tokenizer: tokenizer, maskPrompt: s.maskPrompt)
            let loss = Trainer.evaluate(
                model: model, testSet, batchSize: s.batchSize, maxSequenceLength: s.maxSeqLength, batches: s.testBatches
            )
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
        case let .communication(step, seconds):
            print("Iter \(step): Gradient averaging \(fixed(seconds * 1000, 3)) ms/step")
        case let .saved(step, path):
            print("Iter \(step): Saved adapter weights to \(path).")
        case let .stopped(step, path):
            if let path {
                print("Stopped after iter \(step); saved the training state to \(path) (continue with --resume).")
            } else {
                print("Stopped after iter \(step).")
            }
        }
        flushStandardOutput()
    }
}

private func percent(_ part: Int, _ whole: Int) -> String {
    fixed(whole == 0 ? 0 : 100 * Double(part) / Double(whole), 3)
}

/// `x` with `digits` decimals.
func fixed(_ x: Double, _ digits: Int) -> String {
    guard x.isFinite else { return String(x) }
    let scale = (0..<digits).reduce(1.0) { a, _ in a * 10 }
    let rounded = (Swift.abs(x) * scale).rounded()
    let whole = Int(rounded / scale), fraction = Int(rounded.truncatingRemainder(dividingBy: scale))
    let text = String(fraction)
    let sign = x < 0 && rounded > 0 ? "-" : ""
    return digits == 0
        ? sign + String(whole) : sign + "\(whole)." + String(repeating: "0", count: digits - text.count) + text
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

/// Ctrl-C during training: the first asks the loop to save and stop after
/// the step it is in; a second ends the process at once.
enum TrainingInterrupt {
    private static let count = Atomic<Int>(0)

    static func install() {
        signal(SIGINT) { _ in TrainingInterrupt.received() }
    }

    static var requested: Bool { count.load(ordering: .sequentiallyConsistent) > 0 }

    /// Only atomics and write(2), which are async-signal-safe.
    private static func received() {
        if count.add(1, ordering: .sequentiallyConsistent).newValue > 1 { _exit(130) }
        let note = "\nStopping after this step; the training state will be saved (Ctrl-C again quits at once).\n"
        _ = note.withCString { write(2, $0, strlen($0)) }
    }
}
