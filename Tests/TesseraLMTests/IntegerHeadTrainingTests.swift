// The training step with 8-bit weights on integer dot products
// (`QuantizedMatmulPrecision.high` with `integerEightBitProducts`, what
// `tessera lora --precision high` runs: a tied 8-bit head's forward on the
// VNNI kernel of the 4-bit prefill product) against the float path
// (`.highest`, dequantized weights and the float32 GEMM): the loss of a
// batch within 1e-4 relative and every LoRA gradient within 1e-3 of its
// largest value, the tolerances TorchLoRATests holds the float path to
// against torch+peft. A tiny llama with every weight 8-bit (the blocks too,
// so all its products take the switch) and a tied head, 4 × 32 tokens.

import Foundation
import Tessera
import TesseraLMSelfTest
import TesseraNN
import XCTest

@testable import TesseraLM

final class IntegerHeadTrainingTests: XCTestCase {
    func testIntegerEightBitProductsKeepLossAndGradients() throws {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 320,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 128, "tie_word_embeddings": true}
            """
        let model = try SyntheticModel.llama(
            config: config, bits: 8, groupSize: 32, dtype: .float32, scale: 0.1, seed: 9)
        try Adapters.apply(to: model, AdapterConfig(numLayers: 2, parameters: LoRAParameters(rank: 4, scale: 10)))
        // Non-zero adapters (B starts at zero), so that every gradient is.
        let trainable = model.trainableParameters().flatDictionary
        var values: [String: Tensor] = [:]
        for (i, key) in trainable.keys.sorted().enumerated() {
            values[key] = Random.normal(
                trainable[key]!.shape, dtype: .float32, scale: 0.05, key: Random.key(UInt64(40 + i)))
        }
        try model.update(parameters: values, strict: false)
        var ids: [Int32] = []
        for i in 0..<132 {
            let id: Int = (i * 97 + 13) % 320
            ids.append(Int32(id))
        }
        let tokens = Tensor(ids, shape: [4, 33])
        let mask = Tensor.ones([4, 32], dtype: .float32)
        let step = valueAndGrad(model: model) { (m: TransformerModel, args: [Tensor]) in
            [FineTuningLoss.loss(m, tokens: args[0], mask: args[1])]
        }
        defer {
            QuantizedMatmulPrecision.current = .highest
            QuantizedMatmulPrecision.integerEightBitProducts = false
        }
        func run(_ precision: QuantizedMatmulPrecision, integer: Bool) -> (Double, [String: [Float]]) {
            QuantizedMatmulPrecision.current = precision
            QuantizedMatmulPrecision.integerEightBitProducts = integer
            let (loss, grads) = step(model, [tokens, mask])
            return (
                Double(loss[0].item(Float.self)), grads.flatDictionary.mapValues { $0.toArray(Float.self) }
            )
        }
        let (floatLoss, floatGrads) = run(.highest, integer: false)
        let (loss, grads) = run(.high, integer: true)
        XCTAssertTrue(floatLoss.isFinite && floatLoss > 0)
        XCTAssertEqual(loss, floatLoss, accuracy: 1e-4 * abs(floatLoss))
        XCTAssertEqual(Set(grads.keys), Set(floatGrads.keys))
        XCTAssertGreaterThanOrEqual(grads.count, 4, "lora_a and lora_b of the adapted projections")
        for (key, want) in floatGrads {
            let got = grads[key] ?? []
            XCTAssertEqual(got.count, want.count, key)
            let largest = want.map { abs(Double($0)) }.max() ?? 0
            XCTAssertGreaterThan(largest, 0, key)
            let worst = zip(got, want).map { abs(Double($0) - Double($1)) }.max() ?? .infinity
            XCTAssertLessThanOrEqual(worst, 1e-3 * largest, key)
        }
    }
}
