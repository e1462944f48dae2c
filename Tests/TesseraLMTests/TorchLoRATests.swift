// The fine-tuning loss of a padded, prompt-masked batch at step 0 and the
// adapters' gradients against torch/transformers (Tools/gen_lora_fixtures.py):
// the tiny llama fixture with a LoRA and a DoRA adapter of fixed values, read
// from adapter folders in mlx-lm's layout written by that script (which the
// real mlx-lm loads: Tools/check_mlx_lm_adapters.py), and an adapter made by
// mlx-lm giving mlx-lm's logits here.

import Foundation
import Tessera
import TesseraNN
import XCTest

@testable import TesseraLM

final class TorchLoRATests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures").standardizedFileURL.path

    func check(_ name: String) throws {
        let folder = Self.fixtures + "/lora-torch/" + name
        let expected = try JSONValue(
            parsing: Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json"))))
        guard let model = try ModelLoader.load(Self.fixtures + "/lm/llama").model as? TransformerModel else {
            return XCTFail("not a module tree")
        }
        try Adapters.load(folder, into: model)
        let rows = (expected["rows"]?.array ?? []).map {
            TokenizedExample(tokens: ($0["tokens"]?.array ?? []).compactMap(\.int), offset: $0["offset"]?.int ?? 0)
        }
        // The rows in the fixture's order (not length-sorted) as one batch.
        let batch = BatchIterator(rows, batchSize: rows.count, maxSequenceLength: 100, shuffle: false).batch(
            Array(rows.indices))
        let mask = FineTuningLoss.mask(offsets: batch.offsets, lengths: batch.lengths, width: batch.tokens.dim(1))
        let (values, grads) = valueAndGrad(model: model) { (m: TransformerModel, args: [Tensor]) in
            [FineTuningLoss.loss(m, tokens: args[0], mask: args[1])]
        }(model, [batch.tokens, mask])
        let loss = Double(values[0].item(Float.self)), reference = expected["loss"]?.double ?? .nan
        XCTAssertEqual(loss, reference, accuracy: 1e-4 * abs(reference), name)

        let gradients = grads.flatDictionary
        guard case .object(let stats)? = expected["gradients"] else { return XCTFail("no gradients") }
        XCTAssertEqual(Set(gradients.keys), Set(stats.map(\.key)), name)
        for (key, json) in stats {
            guard let g = gradients[key] else { continue }
            let got = TransformersGradientTests.Statistics(g)
            let want = [json["sum"]?.double, json["norm"]?.double, json["projection"]?.double].map { $0 ?? .nan }
            for (a, b, what) in zip3([got.sum, got.norm, got.projection], want, ["sum", "norm", "projection"]) {
                XCTAssertEqual(a, b, accuracy: 1e-3 * abs(b) + 1e-5, "\(name) \(key) \(what)")
            }
        }
    }

    func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] {
        zip(a, zip(b, c)).map { ($0, $1.0, $1.1) }
    }

    /// An adapter made and saved by mlx-lm (Tools/check_mlx_lm_adapters.py)
    /// gives mlx-lm's logits here.
    func testAnAdapterMadeByMLXLMGivesItsLogits() throws {
        let folder = Self.fixtures + "/lora-mlx"
        let expected = try JSONValue(
            parsing: Array(try Data(contentsOf: URL(fileURLWithPath: folder + "/expected.json"))))
        guard let model = try ModelLoader.load(Self.fixtures + "/lm/llama").model as? TransformerModel else {
            return XCTFail("not a module tree")
        }
        let base = try ModelLoader.load(Self.fixtures + "/lm/llama").model
        try Adapters.load(folder, into: model)
        let tokens = (expected["tokens"]?.array ?? []).compactMap(\.int)
        let rows = (expected["logits"]?.array ?? []).map { ($0.array ?? []).compactMap(\.double).map(Float.init) }
        let want = Tensor(rows.flatMap { $0 }, shape: [rows.count, rows.first?.count ?? 0])
        let ids = Tensor(tokens.map(Int32.init), shape: [1, tokens.count])
        let got = model(ids, cache: model.makeCache())[0]
        XCTAssertLessThan(abs(got - want).max().item(Float.self), 1e-4)
        // The adapter changes the logits: the check above is not the base model's.
        XCTAssertGreaterThan(abs(base(ids, cache: base.makeCache())[0] - want).max().item(Float.self), 1e-3)
    }

    func testLoRALossAndGradientsMatchTorch() throws { try check("lora") }
    func testDoRALossAndGradientsMatchTorch() throws { try check("dora") }
}
