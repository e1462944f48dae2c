// LoRALinear and DoRALinear: equal to the wrapped layer at initialisation
// (dense and 4-bit bases), gradients only for the adapter's parameters,
// mlx-lm's parameter names, DoRA's magnitude initialised to the row norms.

import Tessera
import TesseraNN
import XCTest

final class LoRATests: XCTestCase {
    func maxDifference(_ a: Tensor, _ b: Tensor) -> Float { abs(a - b).max().item(Float.self) }

    func testOutputAtInitEqualsTheBase() throws {
        let x = Random.normal([2, 3, 64], key: Random.key(1))
        let dense = Linear(64, 32)
        let quantized = QuantizedLinear(64, 32, groupSize: 32, bits: 4)
        for base in [dense, quantized] {
            let lora = try LoRALinear(base, LoRAParameters(rank: 4, scale: 20))
            XCTAssertEqual(maxDifference(lora(x), base(x)), 0)
            let dora = try DoRALinear(base, LoRAParameters(rank: 4, scale: 20))
            XCTAssertLessThan(maxDifference(dora(x), base(x)), 1e-4)
        }
    }

    func testNamesAreMLXLMsAndOnlyTheAdapterTrains() throws {
        let lora = try LoRALinear(Linear(16, 8), LoRAParameters(rank: 2))
        XCTAssertEqual(Set(lora.parameters().flatDictionary.keys), ["linear.weight", "linear.bias", "lora_a", "lora_b"])
        XCTAssertEqual(Set(lora.trainableParameters().flatDictionary.keys), ["lora_a", "lora_b"])
        XCTAssertEqual(lora.loraA.shape, [16, 2])
        XCTAssertEqual(lora.loraB.shape, [2, 8])
        let dora = try DoRALinear(QuantizedLinear(64, 8, groupSize: 32, bits: 8), LoRAParameters(rank: 2))
        XCTAssertEqual(Set(dora.trainableParameters().flatDictionary.keys), ["lora_a", "lora_b", "m"])
        XCTAssertEqual(
            Set(dora.parameters().flatDictionary.keys),
            ["linear.weight", "linear.scales", "linear.biases", "linear.bias", "lora_a", "lora_b", "m"])
    }

    func testGradientsReachOnlyTheAdapter() throws {
        let base = Linear(16, 8)
        let lora = try LoRALinear(base, LoRAParameters(rank: 4, scale: 2))
        // A nonzero B, so that A gets a gradient too.
        lora.loraB = Random.normal([4, 8], key: Random.key(3))
        let x = Random.normal([5, 16], key: Random.key(2))
        let (_, grads) = valueAndGrad(model: lora) { (m: LoRALinear, x: Tensor) in (m(x) * m(x)).sum() }(lora, x)
        let g = grads.flatDictionary
        XCTAssertEqual(Set(g.keys), ["lora_a", "lora_b"])
        // d/dB of sum((y + s·xAB)²) = s·(xA)ᵀ·2(y + s·xAB)
        let y = lora(x)
        let expected = 2 * lora.scale * matmul(matmul(x, lora.loraA).T, y)
        XCTAssertLessThan(maxDifference(g["lora_b"] ?? Tensor(0), expected), 1e-3)
    }

    func testDoRAMagnitudeIsTheRowNormOfTheBase() throws {
        let base = Linear(32, 8)
        let dora = try DoRALinear(base, LoRAParameters(rank: 2))
        let norms = sqrt((base.weight * base.weight).sum(axis: 1))
        XCTAssertEqual(dora.m.shape, [8])
        XCTAssertLessThan(maxDifference(dora.m, norms), 1e-5)
        let q = QuantizedLinear(base, groupSize: 32, bits: 8)
        let qNorms = Linalg.norm(q.denseWeight, axes: [1])
        XCTAssertLessThan(maxDifference(try DoRALinear(q).m, qNorms), 1e-5)
    }

    func testFusedEqualsTheAdapter() throws {
        let lora = try LoRALinear(Linear(16, 8), LoRAParameters(rank: 2, scale: 3))
        lora.loraB = Random.normal([2, 8], key: Random.key(5))
        let dora = try DoRALinear(Linear(16, 8), LoRAParameters(rank: 2, scale: 3))
        dora.loraB = Random.normal([2, 8], key: Random.key(6))
        let x = Random.normal([3, 16], key: Random.key(4))
        XCTAssertLessThan(maxDifference(lora.fused()(x), lora(x)), 1e-4)
        XCTAssertLessThan(maxDifference(dora.fused()(x), dora(x)), 1e-4)
    }

    func testBadParametersThrow() {
        XCTAssertThrowsError(try LoRALinear(Linear(4, 4), LoRAParameters(rank: 0)))
        XCTAssertThrowsError(try LoRALinear(Linear(4, 4), LoRAParameters(rank: 2, dropout: 1)))
    }
}

/// mlx-lm's LoRAEmbedding: equal to the table at init (dense and 4-bit), rows
/// and the tied output equal to the formula and to the fused table, gradients
/// only to A and B.
final class LoRAEmbeddingTests: XCTestCase {
    func testRowsTiedOutputAndFusedTable() throws {
        let table = Embedding(weight: Random.normal([40, 32], key: Random.key(1)))
        let quantized = QuantizedEmbedding(
            Embedding(weight: Random.normal([40, 32], key: Random.key(2))), groupSize: 32, bits: 4)
        let ids = Tensor([Int32(3), 0, 39, 17, 3], shape: [1, 5])
        let x = Random.normal([2, 3, 32], key: Random.key(3))
        for base in [table, quantized as Embedding] {
            let lora = try LoRAEmbedding(base, LoRAParameters(rank: 4, scale: 3), key: Random.key(4))
            XCTAssertEqual(lora.dimensions.count, 40)
            XCTAssertEqual(lora.dimensions.dimensions, 32)
            // B = 0: the table itself.
            XCTAssertEqual(abs(lora(ids) - base(ids)).max().item(Float.self), 0)
            XCTAssertEqual(abs(lora.asLinear(x) - base.asLinear(x)).max().item(Float.self), 0)
            lora.loraB = Random.normal([4, 32], scale: 0.5, key: Random.key(5))
            let dense = base.denseWeight.asType(.float32)
            let merged = dense + 3 * matmul(lora.loraA, lora.loraB)
            XCTAssertLessThan(abs(lora(ids).asType(.float32) - merged.take(ids, axis: 0)).max().item(Float.self), 1e-4)
            XCTAssertLessThan(abs(lora.asLinear(x).asType(.float32) - matmul(x, merged.T)).max().item(Float.self), 1e-4)
            let fused = lora.fused(dequantize: true)
            XCTAssertLessThan(abs(fused(ids) - lora(ids)).max().item(Float.self), 1e-4)
            XCTAssertLessThan(abs(fused.asLinear(x) - lora.asLinear(x)).max().item(Float.self), 1e-4)
            XCTAssertEqual(lora.fused() is QuantizedEmbedding, base is QuantizedEmbedding)
            XCTAssertEqual(Set(lora.trainableParameters().flatDictionary.keys), ["lora_a", "lora_b"])
            let (_, grads) = valueAndGrad(model: lora) { (m: LoRAEmbedding, args: [Tensor]) in
                [(m(ids) * m(ids)).sum() + m.asLinear(args[0]).sum()]
            }(lora, [x])
            let g = grads.flatDictionary
            XCTAssertEqual(Set(g.keys), ["lora_a", "lora_b"])
            XCTAssertTrue(g.values.allSatisfy { abs($0).max().item(Float.self) > 0 })
        }
    }
}
