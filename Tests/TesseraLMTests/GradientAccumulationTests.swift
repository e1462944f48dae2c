// --grad-accumulation-steps and --grad-checkpoint: two batches of 2 averaged
// into one update equal one batch of 4 (SGD, so a wrong scale shows); a
// checkpointed model (blocks recomputed in backward, dropout included) gives
// the gradients of the plain one and leaves the random sequence where the
// plain one leaves it; and it holds less memory at its peak.

import Foundation
import Tessera
import TesseraNN
import TesseraOptimizers
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class GradientAccumulationTests: XCTestCase {
    func model(dropout: Float = 0) throws -> TransformerModel {
        let m = try SyntheticModel.llama(
            config: ModuleTreeTests.config(tied: false), bits: 4, dtype: .float32, scale: 0.3, seed: 5)
        try Adapters.apply(
            to: m, AdapterConfig(numLayers: 2, parameters: LoRAParameters(rank: 4, scale: 10, dropout: dropout)),
            seed: 2)
        // Nonzero B, so both A and B get gradients.
        var moved: [String: Tensor] = [:]
        for (i, (name, t)) in m.trainableParameters().flatDictionary.sorted(by: { $0.key < $1.key }).enumerated() {
            moved[name] = t + Random.normal(t.shape, scale: 0.05, key: Random.key(UInt64(50 + i)))
        }
        try m.update(parameters: moved, strict: false)
        return m
    }

    /// Equal-length examples, so every batch's mean loss weighs tokens alike.
    let examples = (0..<4).map { s in TokenizedExample(tokens: (0..<9).map { (s * 11 + $0 * 3) % 64 }, offset: 2) }

    func train(batchSize: Int, accumulation: Int, iterations: Int) throws -> [String: Tensor] {
        let m = try model()
        var options = TrainingOptions()
        (options.iterations, options.batchSize, options.stepsPerReport, options.stepsPerEval) = (
            iterations, batchSize, 100, 100
        )
        options.gradientAccumulationSteps = accumulation
        try Trainer.train(
            model: m, optimizer: SGD(learningRate: 0.5), adapter: AdapterConfig(), train: examples, valid: nil,
            options: options
        ) { _ in }
        return m.trainableParameters().flatDictionary
    }

    func testTwoAccumulatedBatchesOfTwoEqualOneBatchOfFour() throws {
        let big = try train(batchSize: 4, accumulation: 1, iterations: 2)
        let accumulated = try train(batchSize: 2, accumulation: 2, iterations: 4)
        let start = try model().trainableParameters().flatDictionary
        var moved: Float = 0
        for (name, want) in big {
            guard let got = accumulated[name], let initial = start[name] else { return XCTFail(name) }
            // float32 sums in another order, carried through a second step whose
            // gradient depends on the first: 5e-5 of the update's size (a clean
            // clone's CI run measured 1.01e-5 on one LoRA B; a wrong scale of the
            // averaged gradient would be off by a large part of the update).
            let update = abs(want - initial).max().item(Float.self)
            moved = max(moved, update)
            XCTAssertLessThanOrEqual(abs(got - want).max().item(Float.self), 5e-5 * max(update, 1e-3), name)
        }
        XCTAssertGreaterThan(moved, 1e-3)  // the updates are not negligible
        // Not averaging (the sum of two batches) would be a different update.
        let summed = try train(batchSize: 2, accumulation: 1, iterations: 2)
        XCTAssertGreaterThan(abs(summed.values.first! - big[summed.keys.first!]!).max().item(Float.self), 1e-5)
    }

    func gradients(_ m: TransformerModel, checkpointing: Bool) -> (ModuleParameters, Tensor, [Tensor]) {
        m.gradientCheckpointing = checkpointing
        m.train(true)
        Random.seed(17)
        let batch = BatchIterator(examples, batchSize: 4, maxSequenceLength: 64, shuffle: false).batch([0, 1, 2, 3])
        let mask = FineTuningLoss.mask(offsets: batch.offsets, lengths: batch.lengths, width: batch.tokens.dim(1))
        let (values, grads) = valueAndGrad(model: m) { (m: TransformerModel, args: [Tensor]) in
            [FineTuningLoss.loss(m, tokens: args[0], mask: args[1])]
        }(m, [batch.tokens, mask])
        eval(grads, values[0])
        return (grads, values[0], Random.state.innerState)
    }

    func testCheckpointedBlocksGiveTheSameGradients() throws {
        for dropout in [Float(0), 0.3] {
            let m = try model(dropout: dropout)
            let (plain, plainLoss, plainState) = gradients(m, checkpointing: false)
            let (checked, checkedLoss, checkedState) = gradients(m, checkpointing: true)
            XCTAssertEqual(
                plainLoss.item(Float.self), checkedLoss.item(Float.self), accuracy: 1e-6, "dropout \(dropout)")
            let a = plain.flatDictionary, b = checked.flatDictionary
            XCTAssertEqual(Set(a.keys), Set(b.keys))
            for (name, g) in a {
                let scale = max(abs(g).max().item(Float.self), 1e-6)
                XCTAssertLessThanOrEqual(
                    abs(g - b[name]!).max().item(Float.self), 1e-5 * scale, "dropout \(dropout) \(name)")
            }
            // The random sequence continues from the same place (the recompute does not move it).
            XCTAssertEqual(
                plainState[0].toArray(UInt32.self), checkedState[0].toArray(UInt32.self), "dropout \(dropout)")
        }
    }

    /// Peak memory of one step of a 6-layer model on 4 × 128 tokens, with and without checkpointing.
    func testCheckpointingLowersThePeakMemory() throws {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 6,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 64,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 512, "tie_word_embeddings": true}
            """
        let long = (0..<4).map { s in TokenizedExample(tokens: (0..<128).map { (s * 7 + $0 * 5) % 64 }, offset: 1) }
        var peaks: [Bool: Int] = [:]
        for checkpointing in [false, true] {
            let m = try SyntheticModel.llama(config: config, bits: 4, dtype: .float32, scale: 0.1, seed: 1)
            try Adapters.apply(to: m, AdapterConfig(numLayers: 6, parameters: LoRAParameters(rank: 8)))
            m.gradientCheckpointing = checkpointing
            let batch = BatchIterator(long, batchSize: 4, maxSequenceLength: 256, shuffle: false).batch([0, 1, 2, 3])
            let mask = FineTuningLoss.mask(offsets: batch.offsets, lengths: batch.lengths, width: batch.tokens.dim(1))
            eval(m, batch.tokens, mask)
            Memory.resetPeak()
            let before = Memory.activeBytes
            let (values, grads) = valueAndGrad(model: m) { (m: TransformerModel, args: [Tensor]) in
                [FineTuningLoss.loss(m, tokens: args[0], mask: args[1])]
            }(m, [batch.tokens, mask])
            eval(grads, values[0])
            peaks[checkpointing] = Memory.peakBytes - before
        }
        let plain = peaks[false] ?? 0, checkpointed = peaks[true] ?? 0
        print("peak memory of a training step above the model: \(plain) bytes plain, \(checkpointed) checkpointed")
        XCTAssertLessThan(checkpointed, plain)
    }
}
