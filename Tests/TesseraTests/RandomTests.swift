import XCTest

@testable import Tessera

/// Random draws equal MLX's bit for bit (fixtures from MLX,
/// Tools/gen_ops_numerics_fixtures.py).
final class RandomTests: XCTestCase {
    private func key(_ c: NumericsCase) -> Tensor {
        Random.key((c.params["seed"] as! NSNumber).uint64Value)
    }

    private func shape(_ c: NumericsCase) -> [Int] { c.params["shape"] as! [Int] }
    private func dtype(_ c: NumericsCase) -> DType { DType(name: c.string("dtype") ?? "float32")! }

    private func draw(_ c: NumericsCase) -> [Tensor] {
        switch c.op {
        case "key": return [key(c)]
        case "split": return [Random.split(key(c), count: c.int("num"))]
        case "uniform":
            return [
                Random.uniform(
                    low: c.double("low"), high: c.double("high"), shape(c), dtype: dtype(c), key: key(c))
            ]
        case "normal":
            return [
                Random.normal(shape(c), dtype: dtype(c), loc: c.double("loc"), scale: c.double("scale"), key: key(c))
            ]
        case "truncatedNormal":
            return [Random.truncatedNormal(lower: c.double("lower"), upper: c.double("upper"), shape(c), key: key(c))]
        case "bernoulli":
            if c.inputs.isEmpty { return [Random.bernoulli(c.double("p"), shape(c), key: key(c))] }
            return [Random.bernoulli(c.inputs[0], shape(c), key: key(c))]
        case "randInt":
            return [
                Random.randInt(low: c.int("low"), high: c.int("high"), shape(c), dtype: dtype(c), key: key(c))
            ]
        case "gumbel": return [Random.gumbel(shape(c), key: key(c))]
        case "laplace":
            return [Random.laplace(shape(c), loc: c.double("loc"), scale: c.double("scale"), key: key(c))]
        case "categorical":
            if c.params["count"] != nil {
                return [Random.categorical(c.inputs[0], axis: c.int("axis"), count: c.int("count"), key: key(c))]
            }
            return [Random.categorical(c.inputs[0], axis: c.int("axis"), key: key(c))]
        case "permutation":
            if c.inputs.isEmpty { return [Random.permutation(c.int("n"), key: key(c))] }
            return [Random.permutation(c.inputs[0], axis: c.int("axis"), key: key(c))]
        case "sequence":
            Random.seed(UInt64(c.int("seed")))
            let a = Random.uniform([3])
            let b = Random.normal([3])
            let d = Random.randInt(low: 0, high: 100, [4])
            return [a, b, d]
        default:
            fatalError("unknown op \(c.op)")
        }
    }

    func testBitsEqualMLX() throws {
        let cases = try NumericsFixtures.load("random.json")
        XCTAssertGreaterThanOrEqual(cases.count, 50)
        for c in cases {
            let got = draw(c)
            XCTAssertEqual(got.count, c.expected.count, c.name)
            for (g, e) in zip(got, c.expected) { assertBitsEqual(g, e, c.name) }
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
