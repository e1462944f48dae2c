// The settings of a `tessera lora` run: each value from its flag when given,
// else from the config file (mlx-lm's key), else mlx-lm's default; each
// checked, an error naming the flag and the key.

import ArgumentParser
import Tessera
import TesseraLM
import TesseraNN
import TesseraOptimizers

struct LoRASettings {
    var model: String?
    var train: Bool
    var test: Bool
    var data: String
    var fineTuneType: FineTuneType
    var numLayers: Int
    var batchSize: Int
    var iters: Int
    var learningRate: Float
    var schedule: ScheduleSpec?
    var optimizer: OptimizerChoice
    var optimizerSettings: JSONObject
    var stepsPerReport: Int
    var stepsPerEval: Int
    var valBatches: Int
    var saveEvery: Int
    var adapterPath: String
    var maxSeqLength: Int
    var maskPrompt: Bool
    var testBatches: Int
    var seed: UInt64
    var lora: LoRAParameters
    var keys: [String]?
    var resumeAdapterFile: String?
    var gradCheckpoint: Bool
    var gradAccumulationSteps: Int

    init(_ c: LoRACommand, _ file: LoRAConfigFile) throws {
        func name(_ flag: String, _ key: String) -> String { c.config == nil ? flag : "\(flag) (\(key))" }
        func atLeast(_ value: Int, _ minimum: Int, _ flag: String, _ key: String) throws -> Int {
            guard value >= minimum else {
                throw ValidationError("\(name(flag, key)) must be at least \(minimum), got \(value)")
            }
            return value
        }
        func positiveOrAll(_ value: Int, _ flag: String, _ key: String) throws -> Int {
            guard value == -1 || value >= 1 else {
                throw ValidationError("\(name(flag, key)) must be positive or -1 (all), got \(value)")
            }
            return value
        }
        model = try file.string("model")
        train = try c.train || file.bool("train") ?? false
        test = try c.test || file.bool("test") ?? false
        maskPrompt = try c.maskPrompt || file.bool("mask_prompt") ?? false
        data = try c.data ?? file.string("data") ?? "data"
        if let text = try file.string("fine_tune_type"), c.fineTuneType == nil {
            guard let type = FineTuneType(rawValue: text) else {
                throw ValidationError(
                    "\(name("--fine-tune-type", "fine_tune_type")) must be lora, dora or full, got \(text)")
            }
            fineTuneType = type
        } else {
            fineTuneType = c.fineTuneType ?? .lora
        }
        if let text = try file.string("optimizer"), c.optimizer == nil {
            guard let choice = OptimizerChoice(rawValue: text) else {
                throw ValidationError(
                    "\(name("--optimizer", "optimizer")) must be adam, adamw, sgd or adafactor, got \(text)")
            }
            optimizer = choice
        } else {
            optimizer = c.optimizer ?? .adam
        }
        optimizerSettings = try file.optimizerSettings(optimizer.rawValue)
        numLayers = try c.numLayers ?? file.int("num_layers") ?? 16
        if numLayers == 0 || numLayers < -1 {
            throw ValidationError(
                "\(name("--num-layers", "num_layers")) must be positive or -1 (all), got \(numLayers)")
        }
        batchSize = try atLeast(c.batchSize ?? file.int("batch_size") ?? 4, 1, "--batch-size", "batch_size")
        iters = try atLeast(c.iters ?? file.int("iters") ?? 1000, 1, "--iters", "iters")
        stepsPerReport = try atLeast(
            c.stepsPerReport ?? file.int("steps_per_report") ?? 10, 1, "--steps-per-report", "steps_per_report")
        stepsPerEval = try atLeast(
            c.stepsPerEval ?? file.int("steps_per_eval") ?? 200, 1, "--steps-per-eval", "steps_per_eval")
        saveEvery = try atLeast(c.saveEvery ?? file.int("save_every") ?? 100, 1, "--save-every", "save_every")
        maxSeqLength = try atLeast(
            c.maxSeqLength ?? file.int("max_seq_length") ?? 2048, 2, "--max-seq-length", "max_seq_length")
        valBatches = try positiveOrAll(c.valBatches ?? file.int("val_batches") ?? 25, "--val-batches", "val_batches")
        testBatches = try positiveOrAll(
            c.testBatches ?? file.int("test_batches") ?? 500, "--test-batches", "test_batches")
        adapterPath = try c.adapterPath ?? file.string("adapter_path") ?? "adapters"
        if let s = c.seed {
            seed = s
        } else if let s = try file.int("seed") {
            guard s >= 0 else { throw ValidationError("\(name("--seed", "seed")) must be 0 or more, got \(s)") }
            seed = UInt64(s)
        } else {
            seed = 0
        }
        let rate = try c.learningRate ?? file.double("learning_rate").map(Float.init) ?? 1e-5
        guard rate.isFinite && rate > 0 else {
            throw ValidationError("\(name("--learning-rate", "learning_rate")) must be a positive number, got \(rate)")
        }
        learningRate = rate
        schedule = try file.schedule()
        if let schedule { _ = try schedule.learningRate() }  // its arguments checked now, at parse time
        let (rank, scale, dropout, keys) = try file.loraParameters()
        lora = LoRAParameters(
            rank: try atLeast(c.loraRank ?? rank ?? 8, 1, "--lora-rank", "lora_parameters.rank"),
            scale: c.loraScale ?? scale.map(Float.init) ?? 20, dropout: c.loraDropout ?? dropout.map(Float.init) ?? 0)
        guard lora.scale.isFinite else {
            throw ValidationError(
                "\(name("--lora-scale", "lora_parameters.scale")) must be a number, got \(lora.scale)")
        }
        guard lora.dropout >= 0 && lora.dropout < 1 else {
            throw ValidationError(
                "\(name("--lora-dropout", "lora_parameters.dropout")) must be in [0, 1), got \(lora.dropout)")
        }
        self.keys = keys
        resumeAdapterFile = try c.resumeAdapterFile ?? file.string("resume_adapter_file")
        if c.resume {
            if c.resumeAdapterFile != nil { throw ValidationError("give --resume or --resume-adapter-file, not both") }
            resumeAdapterFile = adapterPath + "/" + TrainingCheckpoint.fileName
        }
        gradCheckpoint = try c.gradCheckpoint || file.bool("grad_checkpoint") ?? false
        gradAccumulationSteps = try atLeast(
            c.gradAccumulationSteps ?? file.int("grad_accumulation_steps") ?? 1, 1, "--grad-accumulation-steps",
            "grad_accumulation_steps")
        _ = try makeOptimizer()  // optimizer_config checked at parse time
    }

    var adapterConfig: AdapterConfig {
        var extra = JSONObject()
        extra["model"] = .string(model ?? DefaultModel.fileName)
        extra["data"] = .string(data)
        extra["batch_size"] = .int(batchSize)
        extra["iters"] = .int(iters)
        extra["learning_rate"] = .double(Double("\(learningRate)") ?? Double(learningRate))  // 0.0002, not 0.000199999…
        extra["optimizer"] = .string(optimizer.rawValue)
        extra["max_seq_length"] = .int(maxSeqLength)
        extra["mask_prompt"] = .bool(maskPrompt)
        extra["seed"] = .int(Int(truncatingIfNeeded: seed))
        extra["adapter_path"] = .string(adapterPath)
        if let schedule {
            extra["lr_schedule"] = .object(
                JSONObject([
                    ("name", .string(schedule.name)), ("arguments", .array(schedule.arguments.map { .double($0) })),
                    ("warmup", .int(schedule.warmup)), ("warmup_init", .double(schedule.warmupInit))
                ]))
        }
        return AdapterConfig(
            fineTuneType: fineTuneType, numLayers: numLayers, parameters: lora, keys: keys, extra: extra)
    }

    var trainingOptions: TrainingOptions {
        var o = TrainingOptions()
        (o.iterations, o.batchSize, o.maxSequenceLength) = (iters, batchSize, maxSeqLength)
        (o.stepsPerReport, o.stepsPerEval, o.validationBatches) = (stepsPerReport, stepsPerEval, valBatches)
        (o.saveEvery, o.adapterPath, o.seed) = (saveEvery, adapterPath, seed)
        o.gradientAccumulationSteps = gradAccumulationSteps
        return o
    }

    /// The learning rate: the schedule when the config has one, else constant.
    func rate() throws -> LearningRate {
        try schedule?.learningRate() ?? .constant(learningRate)
    }

    /// The optimizer with `optimizer_config.<name>`'s settings (mlx-lm's
    /// names: betas, eps, weight_decay, bias_correction; sgd: momentum,
    /// weight_decay, dampening, nesterov); an unknown setting is an error.
    func makeOptimizer() throws -> Optimizer {
        let key = "optimizer_config.\(optimizer.rawValue)"
        let allowed: Set<String> =
            switch optimizer {
            case .adam: ["betas", "eps", "bias_correction"]
            case .adamw: ["betas", "eps", "weight_decay", "bias_correction"]
            case .sgd: ["momentum", "weight_decay", "dampening", "nesterov"]
            case .adafactor:
                [
                    "eps", "clip_threshold", "decay_rate", "beta_1", "weight_decay", "scale_parameter", "relative_step",
                    "warmup_init"
                ]
            }
        for name in optimizerSettings.map(\.key) where !allowed.contains(name) {
            throw LoRAConfigError.unknownKey(key + "." + name)
        }
        func number(_ name: String, _ fallback: Float) throws -> Float {
            guard let v = optimizerSettings[name] else { return fallback }
            guard let d = v.double, d.isFinite, d >= 0 else {
                throw LoRAConfigError.wrongType(key: "\(key).\(name)", expected: "a number, 0 or more")
            }
            return Float(d)
        }
        func flag(_ name: String, _ fallback: Bool = false) throws -> Bool {
            guard let v = optimizerSettings[name] else { return fallback }
            guard let b = v.bool else {
                throw LoRAConfigError.wrongType(key: "\(key).\(name)", expected: "true or false")
            }
            return b
        }
        var betas: (Float, Float) = (0.9, 0.999)
        if let v = optimizerSettings["betas"] {
            guard let pair = v.array?.compactMap(\.double), pair.count == 2, pair.allSatisfy({ $0 >= 0 && $0 < 1 })
            else {
                throw LoRAConfigError.wrongType(key: key + ".betas", expected: "two numbers in [0, 1)")
            }
            betas = (Float(pair[0]), Float(pair[1]))
        }
        let rate = try rate()
        switch optimizer {
        case .adam:
            return Adam(
                learningRate: rate, betas: betas, eps: try number("eps", 1e-8),
                biasCorrection: try flag("bias_correction"))
        case .adamw:
            return AdamW(
                learningRate: rate, betas: betas, eps: try number("eps", 1e-8),
                weightDecay: try number("weight_decay", 0.01),
                biasCorrection: try flag("bias_correction"))
        case .sgd:
            let momentum = try number("momentum", 0), dampening = try number("dampening", 0),
                nesterov = try flag("nesterov")
            if nesterov && (momentum <= 0 || dampening != 0) {
                throw LoRAConfigError.invalid(key: key + ".nesterov", reason: "needs momentum > 0 and dampening 0")
            }
            return SGD(
                learningRate: rate, momentum: momentum, weightDecay: try number("weight_decay", 0),
                dampening: dampening,
                nesterov: nesterov)
        case .adafactor:
            var eps: (Float, Float) = (1e-30, 1e-3)
            if let v = optimizerSettings["eps"] {
                guard let pair = v.array?.compactMap(\.double), pair.count == 2,
                    pair.allSatisfy({ $0.isFinite && $0 >= 0 })
                else {
                    throw LoRAConfigError.wrongType(key: key + ".eps", expected: "two numbers, 0 or more")
                }
                eps = (Float(pair[0]), Float(pair[1]))
            }
            // decay_rate is negative (MLX's default -0.8): t^decay_rate < 1 is the running average's weight.
            var decay: Float = -0.8
            if let v = optimizerSettings["decay_rate"] {
                guard let d = v.double, d.isFinite, d < 0 else {
                    throw LoRAConfigError.wrongType(key: key + ".decay_rate", expected: "a negative number")
                }
                decay = Float(d)
            }
            var beta1: Float? = nil
            if let v = optimizerSettings["beta_1"], v != .null {
                guard let b = v.double, b >= 0, b < 1 else {
                    throw LoRAConfigError.wrongType(key: key + ".beta_1", expected: "a number in [0, 1) or null")
                }
                beta1 = Float(b)
            }
            let clip = try number("clip_threshold", 1)
            guard clip > 0 else {
                throw LoRAConfigError.invalid(key: key + ".clip_threshold", reason: "must be above 0")
            }
            // mlx-lm passes its learning rate, so relative_step false always has one.
            return Adafactor(
                learningRate: rate, eps: eps, clipThreshold: clip, decayRate: decay, beta1: beta1,
                weightDecay: try number("weight_decay", 0), scaleParameter: try flag("scale_parameter", true),
                relativeStep: try flag("relative_step", true), warmupInit: try flag("warmup_init"))
        }
    }
}
