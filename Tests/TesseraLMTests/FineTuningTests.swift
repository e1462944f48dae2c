// Fine-tuning: the three data formats through SmolLM2's chat template with
// the prompt masked, batches sorted and cut, the masked loss against a
// per-example computation, and the trainer lowering the loss of a tiny
// model with LoRA while saving adapters atomically.

import Foundation
import Tessera
import TesseraNN
import TesseraOptimizers
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class FineTuningTests: XCTestCase {
    func tokenizer() throws -> Tokenizer { try Tokenizer(directory: TokenizerTests.directory("smollm2")) }

    func testFormatsAndPromptMasking() throws {
        let t = try tokenizer()
        let lines = """
            {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}
            {"prompt": "2+2?", "completion": "4"}

            {"text": "plain text"}
            """
        let masked = try FineTuningData.parse(lines, tokenizer: t, maskPrompt: true)
        XCTAssertEqual(masked.count, 3)
        XCTAssertEqual(masked[0], masked[1])
        let prompt = try t.applyChatTemplate(messages: [["role": "user", "content": "2+2?"]], addGenerationPrompt: true)
        let promptTokens = t.encode(prompt, addSpecialTokens: false)
        XCTAssertEqual(masked[0].offset, promptTokens.count)
        XCTAssertEqual(Array(masked[0].tokens.prefix(promptTokens.count)), promptTokens)
        XCTAssertEqual(t.decode(Array(masked[0].tokens.dropFirst(promptTokens.count))), "4<|im_end|>\n")
        XCTAssertEqual(masked[2].offset, 0)
        XCTAssertEqual(masked[2].tokens.last, t.eosTokenID)
        let unmasked = try FineTuningData.parse(lines, tokenizer: t, maskPrompt: false)
        XCTAssertEqual(unmasked[0].offset, 0)
        XCTAssertEqual(unmasked[0].tokens, masked[0].tokens)
    }

    func testBadLinesNameTheLine() throws {
        let t = try tokenizer()
        for (text, line) in [("{\"text\": \"a\"}\n{\"x\": 1}", 2), ("not json", 1), ("{\"messages\": []}", 1)] {
            XCTAssertThrowsError(try FineTuningData.parse(text, file: "f", tokenizer: t, maskPrompt: false)) { error in
                XCTAssertEqual(
                    (error as? DatasetError).map { if case .invalidLine(_, let l, _) = $0 { l } else { -1 } }, line,
                    text)
            }
        }
        XCTAssertThrowsError(try FineTuningData.parse("\n\n", tokenizer: t, maskPrompt: false))
        XCTAssertThrowsError(
            try FineTuningData.load(folder: "/nonexistent", split: "train", tokenizer: t, maskPrompt: false))
    }

    func testBatchesGroupSimilarLengthsAndCut() {
        let examples = [5, 1, 9, 3, 7, 2].map { TokenizedExample(tokens: Array(1...$0 + 1), offset: 1) }
        var batches = BatchIterator(examples, batchSize: 2, maxSequenceLength: 8, shuffle: false)
        XCTAssertEqual(batches.batchCount, 3)
        let lengths = (0..<3).map { _ in batches.next().lengths }
        XCTAssertEqual(lengths, [[2, 3], [4, 6], [8, 8]])
        var shuffled = BatchIterator(examples, batchSize: 2, maxSequenceLength: 8, shuffle: true, seed: 3)
        XCTAssertEqual(Set((0..<3).map { _ in shuffled.next().lengths }), Set(lengths))
    }

    func testMaskedLossEqualsThePerExampleLoss() throws {
        let model = try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: true), bits: nil, dtype: .float32, scale: 0.3, seed: 2)
        let a = TokenizedExample(tokens: [3, 9, 27, 17, 50, 2], offset: 3),
            b = TokenizedExample(tokens: [5, 8, 13, 21], offset: 0)
        var iterator = BatchIterator([a, b], batchSize: 2, maxSequenceLength: 100, shuffle: false)
        let batch = iterator.next()
        XCTAssertEqual(batch.targetCount, 3 + 3)
        let mask = FineTuningLoss.mask(offsets: batch.offsets, lengths: batch.lengths, width: batch.tokens.dim(1))
        let loss = FineTuningLoss.loss(model, tokens: batch.tokens, mask: mask).item(Float.self)
        // Each example alone: the sum of -log p over its counted targets.
        var total: Float = 0
        for e in [a, b] {
            let ids = Tensor(e.tokens.map(Int32.init), shape: [1, e.tokens.count])
            let ce = crossEntropy(model(ids[0..., 0..<(e.tokens.count - 1)]), ids[0..., 1...])
            let values = ce.reshaped([-1]).toArray(Float.self)
            total += values.enumerated().filter { $0.offset + 1 >= e.offset }.map(\.element).reduce(0, +)
        }
        XCTAssertEqual(loss, total / 6, accuracy: 1e-4)
    }

    func testTrainingWithLoRALowersTheLossAndSavesAtomically() throws {
        let model = try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: false), bits: 4, dtype: .float32, scale: 0.3, seed: 5)
        let adapter = AdapterConfig(numLayers: 2, parameters: LoRAParameters(rank: 4, scale: 10))
        try Adapters.apply(to: model, adapter)
        // A fixed pattern to learn: n, n+1, n+2, ...
        let examples = (0..<16).map { start in TokenizedExample(tokens: (0..<10).map { (start + $0) % 64 }, offset: 2) }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-train-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = TrainingOptions()
        (options.iterations, options.batchSize, options.stepsPerReport, options.stepsPerEval) = (30, 4, 10, 15)
        (options.saveEvery, options.adapterPath, options.validationBatches) = (20, folder, -1)
        var validation: [Float] = [], reports = 0
        try Trainer.train(
            model: model, optimizer: Adam(learningRate: 1e-2), adapter: adapter, train: examples, valid: examples,
            options: options
        ) { event in
            switch event {
            case .validation(_, let loss, _): validation.append(loss)
            case .train(_, let loss, _, _, let tokensPerSecond, let trained, _):
                reports += 1
                XCTAssertTrue(loss.isFinite && tokensPerSecond > 0 && trained > 0)
            case .saved, .stopped, .communication: break
            }
        }
        XCTAssertEqual(reports, 3)
        XCTAssertEqual(validation.count, 3)
        XCTAssertLessThan(validation.last ?? .infinity, 0.7 * (validation.first ?? 0))
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        XCTAssertEqual(
            files,
            [
                "0000020_adapters.safetensors", "adapter_config.json", "adapters.safetensors",
                "training_state.safetensors"
            ])
        let fresh = try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: false), bits: 4, dtype: .float32, scale: 0.3, seed: 5)
        try Adapters.load(folder, into: fresh)
        // The last validation ran before the last step; the saved adapters are after it.
        let trained = Trainer.evaluate(model: model, examples, batchSize: 4, maxSequenceLength: 100, batches: -1)
        let loaded = Trainer.evaluate(model: fresh, examples, batchSize: 4, maxSequenceLength: 100, batches: -1)
        XCTAssertEqual(loaded, trained, accuracy: 1e-4)
    }

    /// The model (seeded 4-bit llama with DoRA adapters), examples and options
    /// that `run` and `runStopping` train, the same for both.
    func resumeSetup(iterations: Int, resume: String? = nil, folder: String) throws -> (
        TransformerModel, AdapterConfig, [TokenizedExample], TrainingOptions
    ) {
        Random.seed(42)
        let model = try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: false), bits: 4, dtype: .float32, scale: 0.3, seed: 5)
        let adapter = AdapterConfig(
            fineTuneType: .dora, numLayers: 2, parameters: LoRAParameters(rank: 4, scale: 10, dropout: 0.2))
        try Adapters.apply(to: model, adapter, seed: 9)
        let examples = (0..<10).map { start in
            TokenizedExample(tokens: (0..<(6 + start % 4)).map { (start * 3 + $0) % 64 }, offset: 1)
        }
        var options = TrainingOptions()
        (options.iterations, options.batchSize, options.stepsPerReport, options.stepsPerEval) = (iterations, 3, 5, 4)
        (options.saveEvery, options.adapterPath, options.validationBatches, options.seed) = (7, folder, -1, 3)
        options.resumeFrom = resume
        return (model, adapter, examples, options)
    }

    /// A run of `iterations` steps (DoRA with dropout, AdamW on a warm-up +
    /// cosine schedule, shuffled batches over more than one epoch), stopped
    /// after `stopAfter` steps when given; returns the adapter tensors and the folder.
    func run(
        iterations: Int, resume: String? = nil, folder: String, optimizer: () -> Optimizer = FineTuningTests.adamW
    ) throws -> [String: Tensor] {
        let (model, adapter, examples, options) = try resumeSetup(
            iterations: iterations, resume: resume, folder: folder)
        try Trainer.train(
            model: model, optimizer: optimizer(), adapter: adapter, train: examples,
            valid: Array(examples.prefix(4)), options: options
        ) { _ in }
        return model.trainableParameters().flatDictionary
    }

    /// 16 steps straight equal 8 steps, a stop (as Ctrl-C: state saved), and 8
    /// more resumed in a fresh model: every adapter value bit for bit.
    func testResumeContinuesBitForBit() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-resume-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let straight = try run(iterations: 16, folder: base + "/straight")
        let stopped = try runStopping(after: 8, iterations: 16, folder: base + "/resumed")
        XCTAssertEqual(stopped, 8)
        let state = base + "/resumed/" + TrainingCheckpoint.fileName
        XCTAssertTrue(TrainingCheckpoint.isTrainingState(state))
        XCTAssertFalse(TrainingCheckpoint.isTrainingState(base + "/resumed/" + Adapters.weightsFile))
        let resumed = try run(iterations: 16, resume: state, folder: base + "/resumed")
        XCTAssertEqual(Set(straight.keys), Set(resumed.keys))
        for (name, t) in straight {
            XCTAssertEqual(t.bytes(), resumed[name]?.bytes(), name)
        }
        // And the files saved at the end are the same bytes.
        let a = try Safetensors.load(base + "/straight/" + Adapters.weightsFile).tensors
        let b = try Safetensors.load(base + "/resumed/" + Adapters.weightsFile).tensors
        for (name, t) in a { XCTAssertEqual(t.bytes(), b[name]?.bytes(), name) }
        // Another batch size: a typed error, not a silently different order.
        let model = try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: false), bits: 4, dtype: .float32, scale: 0.3, seed: 5)
        try Adapters.apply(
            to: model,
            AdapterConfig(
                fineTuneType: .dora, numLayers: 2, parameters: LoRAParameters(rank: 4, scale: 10, dropout: 0.2)),
            seed: 9)
        XCTAssertThrowsError(
            try TrainingCheckpoint.load(state, model: model, optimizer: AdamW(learningRate: 1e-3), batchCount: 5)
        ) {
            XCTAssertTrue("\($0)".contains("--batch-size"), "\($0)")
        }
        // Without the resume the second half differs (the check can fail).
        let restarted = try run(iterations: 8, folder: base + "/restarted")
        XCTAssertNotEqual(restarted.values.first?.bytes(), straight[restarted.keys.first ?? ""]?.bytes())
    }

    /// AdamW on a warm-up + cosine schedule.
    static func adamW() -> Optimizer {
        let schedule = Schedules.join(
            [Schedules.linear(from: 0, to: 1e-2, steps: 3), Schedules.cosineDecay(1e-2, decaySteps: 20)],
            boundaries: [4])
        return AdamW(learningRate: schedule, weightDecay: 0.1)
    }

    /// Adafactor as `tessera lora --optimizer adafactor` makes it (relative
    /// steps that depend on the restored step count, factored second moments
    /// of the A/B matrices) with a first moment too, so every kind of state
    /// goes through the checkpoint: 10 steps straight equal 5 + stop + 5
    /// resumed bit for bit. With optimizer_config's relative_step and
    /// scale_parameter false, the learning rate drives it and the loss falls.
    func testAdafactorTrainsAndResumesBitForBit() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-adafactor-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: base) }
        let adafactor = { Adafactor(learningRate: 1e-3, beta1: 0.9) as Optimizer }  // relative steps: the rate is unused
        let straight = try run(iterations: 10, folder: base + "/straight", optimizer: adafactor)
        XCTAssertEqual(try runStopping(after: 5, iterations: 10, folder: base + "/resumed", optimizer: adafactor), 5)
        let state = try Safetensors.load(base + "/resumed/" + TrainingCheckpoint.fileName).tensors
        XCTAssertTrue(state.keys.contains { $0.hasSuffix("/exp_avg_sq_row") }, "\(state.keys.sorted().prefix(8))")
        XCTAssertTrue(state.keys.contains { $0.hasSuffix("/exp_avg") })
        let resumed = try run(
            iterations: 10, resume: base + "/resumed/" + TrainingCheckpoint.fileName, folder: base + "/resumed",
            optimizer: adafactor)
        XCTAssertEqual(Set(straight.keys), Set(resumed.keys))
        for (name, t) in straight { XCTAssertEqual(t.bytes(), resumed[name]?.bytes(), name) }

        // It learns: the validation loss of a plain LoRA run falls.
        let model = try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: false), bits: 4, dtype: .float32, scale: 0.3, seed: 5)
        let adapter = AdapterConfig(numLayers: 2, parameters: LoRAParameters(rank: 4, scale: 10))
        try Adapters.apply(to: model, adapter)
        let examples = (0..<16).map { start in TokenizedExample(tokens: (0..<10).map { (start + $0) % 64 }, offset: 2) }
        var options = TrainingOptions()
        (options.iterations, options.batchSize, options.stepsPerReport, options.stepsPerEval) = (30, 4, 10, 30)
        options.validationBatches = -1
        var validation: [Float] = []
        try Trainer.train(
            model: model, optimizer: Adafactor(learningRate: 1e-2, scaleParameter: false, relativeStep: false),
            adapter: adapter,
            train: examples, valid: examples,
            options: options
        ) { event in
            if case .validation(_, let loss, _) = event { validation.append(loss) }
        }
        XCTAssertEqual(validation.count, 2)
        XCTAssertLessThan(validation.last ?? .infinity, 0.8 * (validation.first ?? 0), "\(validation)")
    }

    /// Runs until `after` steps are done, then stops as Ctrl-C would; returns the steps done.
    func runStopping(
        after: Int, iterations: Int, folder: String, optimizer: () -> Optimizer = FineTuningTests.adamW
    ) throws -> Int {
        let (model, adapter, examples, options) = try resumeSetup(iterations: iterations, folder: folder)
        // Asked once before each step: the (after + 1)-th ask comes after `after` steps.
        var asks = 0
        var stoppedAt: Int? = nil
        try Trainer.train(
            model: model, optimizer: optimizer(), adapter: adapter, train: examples,
            valid: Array(examples.prefix(4)), options: options,
            shouldStop: {
                asks += 1; return asks > after
            }
        ) { event in
            if case .stopped(let step, let path) = event {
                stoppedAt = step
                XCTAssertEqual(path, folder + "/" + TrainingCheckpoint.fileName)
            }
        }
        return stoppedAt ?? -1
    }
}
