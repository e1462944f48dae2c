// `tessera lora -c config.yaml`: mlx-lm's lora_config keys read with Yams,
// flags overriding them, unknown keys and wrong types rejected by name, and
// the lr_schedule equal to MLX's own schedulers (Tools/gen_lr_schedule_fixtures.py).

import ArgumentParser
import Foundation
import Tessera
import TesseraNN
import TesseraOptimizers
import XCTest

@testable import TesseraCLI
@testable import TesseraLM

final class LoRAConfigTests: XCTestCase {
    var folder = ""

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-lora-config-\(UUID())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for split in ["train", "valid", "test"] {
            _ = FileManager.default.createFile(
                atPath: "\(folder)/\(split).jsonl", contents: Data("{\"text\": \"a\"}\n".utf8))
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    func write(_ yaml: String) -> String {
        let path = folder + "/config-\(UUID()).yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data(yaml.utf8))
        return path
    }

    func message(_ arguments: [String]) -> String {
        do {
            _ = try LoRACommand.parse(arguments)
            return "parsed"
        } catch {
            return LoRACommand.message(for: error)
        }
    }

    /// mlx-lm's example lora_config.yaml (its keys and layout), with our data folder.
    var mlxExample: String {
        """
        model: "mlx_model"
        train: true
        fine_tune_type: dora
        optimizer: adamw
        optimizer_config:
          adamw:
            betas: [0.9, 0.98]
            eps: 1e-6
            weight_decay: 0.05
        data: "\(folder)"
        seed: 7
        num_layers: 8
        batch_size: 2
        iters: 300
        val_batches: 5
        learning_rate: 1e-5
        steps_per_report: 10
        steps_per_eval: 100
        resume_adapter_file: null
        adapter_path: "my_adapters"
        save_every: 50
        test: false
        test_batches: 20
        max_seq_length: 512
        grad_checkpoint: false
        lr_schedule:
          name: cosine_decay
          warmup: 10
          warmup_init: 1e-7
          arguments: [1e-5, 300, 1e-7]
        lora_parameters:
          keys: ["self_attn.q_proj", "self_attn.v_proj"]
          rank: 16
          scale: 10.0
          dropout: 0.05
        wandb: null
        """
    }

    func testTheMLXLMExampleConfigIsRead() throws {
        let command = try LoRACommand.parse(["-c", write(mlxExample)])
        let s = try command.settings()
        XCTAssertEqual(s.model, "mlx_model")
        XCTAssertTrue(s.train)
        XCTAssertFalse(s.test)
        XCTAssertEqual(s.fineTuneType, .dora)
        XCTAssertEqual(s.optimizer, .adamw)
        XCTAssertEqual(
            [
                s.numLayers, s.batchSize, s.iters, s.valBatches, s.stepsPerReport, s.stepsPerEval, s.saveEvery,
                s.testBatches, s.maxSeqLength
            ], [8, 2, 300, 5, 10, 100, 50, 20, 512])
        XCTAssertEqual(s.learningRate, 1e-5)  // "1e-5": a number, as mlx-lm's loader reads it
        XCTAssertEqual(s.seed, 7)
        XCTAssertEqual(s.adapterPath, "my_adapters")
        XCTAssertEqual(s.lora, LoRAParameters(rank: 16, scale: 10, dropout: 0.05))
        XCTAssertEqual(s.keys, ["self_attn.q_proj", "self_attn.v_proj"])
        XCTAssertEqual(
            s.schedule, ScheduleSpec(name: "cosine_decay", arguments: [1e-5, 300, 1e-7], warmup: 10, warmupInit: 1e-7))
        let optimizer = try XCTUnwrap(try s.makeOptimizer() as? AdamW)
        XCTAssertEqual(optimizer.weightDecay, 0.05)
        XCTAssertEqual(optimizer.eps, 1e-6)
        XCTAssertEqual(optimizer.betas.0, 0.9)
        XCTAssertEqual(optimizer.betas.1, 0.98)
        // The optimizer follows the schedule: warm-up from warmup_init, the peak at step 10.
        XCTAssertEqual(optimizer.learningRate.value(at: 0), 1e-7, accuracy: 1e-12)
        XCTAssertEqual(optimizer.learningRate.value(at: 10), 1e-5, accuracy: 1e-11)
        let config = s.adapterConfig
        XCTAssertEqual(config.keys, ["self_attn.q_proj", "self_attn.v_proj"])
        XCTAssertEqual(config.extra["lr_schedule"]?["name"]?.string, "cosine_decay")
    }

    func testFlagsOverrideTheFile() throws {
        let path = write(mlxExample)
        let s = try LoRACommand.parse([
            "-c", path, "--batch-size", "3", "--fine-tune-type", "lora", "--optimizer", "sgd", "--lora-rank", "4",
            "--adapter-path", "elsewhere", "--seed", "1", "--test", "--iters", "20"
        ]).settings()
        XCTAssertEqual(s.batchSize, 3)
        XCTAssertEqual(s.fineTuneType, .lora)
        XCTAssertEqual(s.optimizer, .sgd)
        XCTAssertEqual(s.lora.rank, 4)
        XCTAssertEqual(s.lora.scale, 10)  // not given: the file's
        XCTAssertEqual(s.adapterPath, "elsewhere")
        XCTAssertEqual(s.seed, 1)
        XCTAssertTrue(s.test)
        XCTAssertEqual(s.iters, 20)
        XCTAssertEqual(s.numLayers, 8)
        XCTAssertFalse(s.gradCheckpoint)
        XCTAssertEqual(s.gradAccumulationSteps, 1)
        let accumulating = try LoRACommand.parse(["-c", path, "--grad-checkpoint", "--grad-accumulation-steps", "4"])
            .settings()
        XCTAssertTrue(accumulating.gradCheckpoint)
        XCTAssertEqual(accumulating.trainingOptions.gradientAccumulationSteps, 4)
        XCTAssertTrue(message(["-c", path, "--grad-accumulation-steps", "0"]).contains("--grad-accumulation-steps"))
        let fromFile = try LoRACommand.parse(["-c", write(mlxExample + "\ngrad_accumulation_steps: 3\n")]).settings()
        XCTAssertEqual(fromFile.gradAccumulationSteps, 3)
        // Without a file: mlx-lm's defaults.
        let plain = try LoRACommand.parse(["--train", "--data", folder]).settings()
        XCTAssertEqual([plain.batchSize, plain.iters, plain.numLayers, plain.stepsPerEval], [4, 1000, 16, 200])
        XCTAssertNil(plain.schedule)
    }

    /// `--optimizer adafactor` / `optimizer: adafactor` as mlx-lm builds it:
    /// MLX's Adafactor given the learning rate, MLX's defaults (relative
    /// steps), optimizer_config.adafactor's keys passed through, bad ones named.
    func testAdafactorAsMLXLMBuildsIt() throws {
        let flag = try XCTUnwrap(
            try LoRACommand.parse(["--train", "--data", folder, "--optimizer", "adafactor", "--learning-rate", "3e-4"])
                .settings().makeOptimizer() as? Adafactor)
        XCTAssertTrue(flag.relativeStep && flag.scaleParameter && !flag.warmupInit)
        XCTAssertEqual(
            [flag.eps.0, flag.eps.1, flag.clipThreshold, flag.decayRate, flag.weightDecay], [1e-30, 1e-3, 1, -0.8, 0])
        XCTAssertNil(flag.beta1)
        XCTAssertEqual(flag.learningRate.value(at: 0), 3e-4)
        let yaml = """
            train: true
            data: \(folder)
            optimizer: adafactor
            learning_rate: 2e-3
            optimizer_config:
              adafactor:
                relative_step: false
                scale_parameter: false
                beta_1: 0.9
                eps: [1e-29, 2e-3]
                clip_threshold: 2.0
                decay_rate: -0.5
                weight_decay: 0.01
            """
        let s = try LoRACommand.parse(["-c", write(yaml)]).settings()
        XCTAssertEqual(s.optimizer, .adafactor)
        XCTAssertEqual(s.adapterConfig.extra["optimizer"]?.string, "adafactor")
        let file = try XCTUnwrap(try s.makeOptimizer() as? Adafactor)
        XCTAssertFalse(file.relativeStep || file.scaleParameter)
        XCTAssertEqual(file.beta1, 0.9)
        XCTAssertEqual(
            [file.eps.0, file.eps.1, file.clipThreshold, file.decayRate, file.weightDecay], [1e-29, 2e-3, 2, -0.5, 0.01]
        )
        XCTAssertEqual(file.learningRate.value(at: 0), 2e-3)
        // Flags override the file's optimizer.
        XCTAssertEqual(try LoRACommand.parse(["-c", write(yaml), "--optimizer", "sgd"]).settings().optimizer, .sgd)
        let head = "train: true\ndata: \(folder)\noptimizer: adafactor\noptimizer_config:\n  adafactor:\n"
        for (setting, needle) in [
            ("    betas: [0.9, 0.99]\n", "optimizer_config.adafactor.betas"),
            ("    decay_rate: 0.8\n", "optimizer_config.adafactor.decay_rate"),
            ("    beta_1: 1.5\n", "optimizer_config.adafactor.beta_1"),
            ("    eps: [1e-30]\n", "optimizer_config.adafactor.eps"),
            ("    clip_threshold: 0\n", "optimizer_config.adafactor.clip_threshold"),
            ("    relative_step: sometimes\n", "optimizer_config.adafactor.relative_step")
        ] {
            let text = message(["-c", write(head + setting)])
            XCTAssertTrue(text.contains(needle), "\(setting) -> \(text)")
        }
        XCTAssertTrue(message(["-c", write("train: true\ndata: \(folder)\noptimizer: lamb\n")]).contains("adafactor"))
    }

    func testUnknownKeysAndWrongTypesAreNamed() {
        // A "billion laughs": aliases that repeat into 10^6 values.
        let laughs =
            "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        let cases: [(String, String)] = [
            ("train: true\ndata: \(folder)\nbatchsize: 4\n", "\"batchsize\""),
            ("train: true\ndata: \(folder)\nlora_parameters:\n  rnk: 4\n", "lora_parameters.rnk"),
            (
                "train: true\ndata: \(folder)\nlr_schedule:\n  name: cosine_decay\n  arguments: [1e-5, 10]\n  warm: 3\n",
                "lr_schedule.warm"
            ),
            (
                "train: true\ndata: \(folder)\noptimizer: adam\noptimizer_config:\n  adam:\n    weight_decay: 0.1\n",
                "optimizer_config.adam.weight_decay"
            ),
            ("train: true\ndata: \(folder)\nbatch_size: four\n", "batch_size"),
            ("train: true\ndata: \(folder)\nbatch_size: 0\n", "--batch-size (batch_size)"),
            ("train: true\ndata: \(folder)\nlearning_rate: -1e-5\n", "learning_rate"),
            ("train: true\ndata: \(folder)\nfine_tune_type: qlora\n", "fine_tune_type"),
            (
                "train: true\ndata: \(folder)\nlr_schedule:\n  name: cosine_warm\n  arguments: [1e-5, 10]\n",
                "lr_schedule.name"
            ),
            (
                "train: true\ndata: \(folder)\nlr_schedule:\n  name: cosine_decay\n  arguments: [1e-5, 0]\n",
                "lr_schedule.arguments"
            ),
            (
                "train: true\ndata: \(folder)\nlr_schedule:\n  name: step_decay\n  arguments: [1e-5]\n",
                "lr_schedule.arguments"
            ),
            ("train: true\ndata: \(folder)\nwandb: my-project\n", "wandb"),
            ("train: true\ndata: \(folder)\nlora_parameters: [1, 2]\n", "lora_parameters"),
            ("- just\n- a list\n", "mapping"),
            ("\(laughs)", "more than 100000 values"),
            ("train: [unclosed\n", "config")
        ]
        for (yaml, needle) in cases {
            let text = message(["-c", write(yaml)])
            XCTAssertTrue(text.contains(needle), "\(yaml) -> \(text)")
            XCTAssertNotEqual(text, "parsed", yaml)
        }
        XCTAssertTrue(message(["-c", folder + "/missing.yaml"]).contains("-c/--config"))
    }

    /// Each lr_schedule equals MLX's scheduler joined with mlx-lm's warm-up, step by step.
    func testSchedulesEqualMLX() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Fixtures/lora/lr_schedules.json").standardizedFileURL
        let fixture = try JSONValue(parsing: Array(try Data(contentsOf: url)))
        let cases = fixture.array ?? []
        XCTAssertEqual(cases.count, 5)
        for entry in cases {
            let schedule = entry["schedule"]
            let spec = ScheduleSpec(
                name: schedule?["name"]?.string ?? "",
                arguments: (schedule?["arguments"]?.array ?? []).compactMap(\.double),
                warmup: schedule?["warmup"]?.int ?? 0, warmupInit: schedule?["warmup_init"]?.double ?? 0)
            let rate = try spec.learningRate()
            for (step, value) in (entry["values"]?.array ?? []).enumerated() {
                let want = value.double ?? .nan
                // float32 arithmetic in a different order: within 1e-6 of the initial rate.
                XCTAssertEqual(
                    Double(rate.value(at: step)), want, accuracy: 1e-6 * (spec.arguments[0] + abs(want)),
                    "\(spec.name) step \(step)")
            }
        }
    }
}
