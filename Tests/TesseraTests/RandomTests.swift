// Random bits equal MLX's; implicit keys differ under concurrency; sampler ranges.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// Random draws equal MLX's bit for bit (fixtures from MLX,
/// Tools/gen_ops_numerics_fixtures.py).
final class RandomTests: XCTestCase {
    private func key(_ c: FixtureCase) throws -> Tensor { Random.key(try c.params.uint64("seed")) }
    private func shape(_ c: FixtureCase) throws -> [Int] { try c.params.ints("shape") }
    private func dtype(_ c: FixtureCase) throws -> DType { try c.params.optionalDType("dtype") ?? .float32 }

    private func draw(_ c: FixtureCase) throws -> [Tensor] {
        switch c.op {
        case "key": return try [key(c)]
        case "split": return try [Random.split(key(c), count: c.params.int("num"))]
        case "uniform":
            return try [
                Random.uniform(
                    low: c.params.double("low"), high: c.params.double("high"), shape(c), dtype: dtype(c), key: key(c))
            ]
        case "normal":
            return try [
                Random.normal(
                    shape(c), dtype: dtype(c), loc: c.params.double("loc"), scale: c.params.double("scale"), key: key(c)
                )
            ]
        case "truncatedNormal":
            return try [
                Random.truncatedNormal(
                    lower: c.params.double("lower"), upper: c.params.double("upper"), shape(c), key: key(c))
            ]
        case "bernoulli":
            if c.inputs.isEmpty { return try [Random.bernoulli(c.params.double("p"), shape(c), key: key(c))] }
            return try [Random.bernoulli(c.inputs[0], shape(c), key: key(c))]
        case "randInt":
            return try [
                Random.randInt(
                    low: c.params.int("low"), high: c.params.int("high"), shape(c), dtype: dtype(c), key: key(c))
            ]
        case "gumbel": return try [Random.gumbel(shape(c), key: key(c))]
        case "laplace":
            return try [
                Random.laplace(shape(c), loc: c.params.double("loc"), scale: c.params.double("scale"), key: key(c))
            ]
        case "categorical":
            if c.params.has("count") {
                return try [
                    Random.categorical(
                        c.inputs[0], axis: c.params.int("axis"), count: c.params.int("count"), key: key(c))
                ]
            }
            return try [Random.categorical(c.inputs[0], axis: c.params.int("axis"), key: key(c))]
        case "permutation":
            if c.inputs.isEmpty { return try [Random.permutation(c.params.int("n"), key: key(c))] }
            return try [Random.permutation(c.inputs[0], axis: c.params.int("axis"), key: key(c))]
        case "sequence":
            Random.seed(UInt64(try c.params.int("seed")))
            let a = Random.uniform([3])
            let b = Random.normal([3])
            let d = Random.randInt(low: 0, high: 100, [4])
            return [a, b, d]
        default:
            fatalError("unknown op \(c.op)")
        }
    }

    func testBitsEqualMLX() throws {
        let cases = try loadFixtureCases("random.json")
        XCTAssertGreaterThanOrEqual(cases.count, 50)
        for c in cases {
            let got = try draw(c)
            XCTAssertEqual(got.count, c.expected.count, c.name)
            for (g, e) in zip(got, c.expected) { assertMatches(g, e, c.name, .bitwise) }
        }
    }

    func testImplicitKeysAreDistinctUnderConcurrency() async {
        Random.seed(3)
        let draws = await withTaskGroup(of: [UInt32].self) { group in
            for _ in 0..<16 { group.addTask { Random.bits([4]).toArray(UInt32.self) } }
            var all: [[UInt32]] = []
            for await d in group { all.append(d) }
            return all
        }
        XCTAssertEqual(Set(draws).count, 16)
    }

    func testSamplerRanges() {
        let k = Random.key(99)
        let u = Random.uniform(low: -1, high: 1, [2000], dtype: .float16, key: k)
        XCTAssertGreaterThanOrEqual(u.min().item(Float.self), -1)
        XCTAssertLessThan(u.max().item(Float.self), 1)
        let n = Random.normal([20000], key: k)
        XCTAssertEqual(n.mean().item(Float.self), 0, accuracy: 0.05)
        XCTAssertEqual(n.std().item(Float.self), 1, accuracy: 0.05)
        let t = Random.truncatedNormal(lower: -0.5, upper: 0.5, [1000], key: k)
        XCTAssertLessThanOrEqual(abs(t).max().item(Float.self), 0.5)
        let r = Random.randInt(low: 3, high: 7, [1000], key: k)
        XCTAssertEqual(r.min().item(Int.self), 3)
        XCTAssertEqual(r.max().item(Int.self), 6)
    }
}
