// A prefill's logits of the last position only (`lastLogits`, what
// TokenGenerator asks for) against the last row of the full logits, on a
// small random 4-bit model: the same values within float rounding (the head
// runs on one row instead of all), the same cached positions after.

import Tessera
import TesseraLMSelfTest
import XCTest

@testable import TesseraLM

final class LastLogitsTests: XCTestCase {
    func testLastLogitsAreTheFullLogitsLastRow() throws {
        let config = """
            {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 300,
             "rms_norm_eps": 1e-05, "rope_theta": 10000, "max_position_embeddings": 64, "tie_word_embeddings": true}
            """
        let model = try SyntheticModel.llama(config: config, bits: 4, groupSize: 32)
        for length in [1, 5, 24] {
            let tokens = Tensor((0..<length).map { Int32(($0 * 37 + 11) % 300) }, shape: [1, length])
            let fullCache = model.makeCache(), lastCache = model.makeCache()
            let full = model(tokens, cache: fullCache)
            let last = model.lastLogits(tokens, cache: lastCache)
            XCTAssertEqual(last.shape, [1, 1, 300], "length \(length)")
            let want = full[0, -1].toArray(Float.self), got = last[0, 0].toArray(Float.self)
            let scale = want.map { Swift.abs($0) }.max() ?? 0
            XCTAssertGreaterThan(scale, 0)
            for (g, w) in zip(got, want) { XCTAssertEqual(g, w, accuracy: 1e-4 * scale, "length \(length)") }
            XCTAssertEqual(fullCache.map(\.offset), lastCache.map(\.offset))
            // The filled positions (the room past them is not set: KVCache.append).
            for (a, b) in zip(fullCache, lastCache) {
                for (x, y) in zip(a.state, b.state) {
                    XCTAssertEqual(x.toArray(Float.self), y.toArray(Float.self), "length \(length)")
                }
            }
        }
    }
}
