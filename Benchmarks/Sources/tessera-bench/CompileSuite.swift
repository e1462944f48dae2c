// The compile suite: compiled (fused, generated C) against eager evaluation
// of the same function on 16M float32 elements, one run, the median of
// several repetitions each (the machine is shared: medians, not minima).
// Prints a markdown table: case, eager median, compiled median, speedup.

import Foundation
import Tessera

private func compileMedian(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Median seconds of `body` over `reps` runs after `warmup` runs.
private func compileTime(_ reps: Int, warmup: Int = 1, _ body: () -> Void) -> Double {
    for _ in 0..<warmup { body() }
    var ts: [Double] = []
    for _ in 0..<reps {
        let t = DispatchTime.now().uptimeNanoseconds
        body()
        ts.append(Double(DispatchTime.now().uptimeNanoseconds - t) * 1e-9)
    }
    return compileMedian(ts)
}

private func uniform(_ shape: [Int], seed: UInt64, range: ClosedRange<Float> = -1...1) -> Tensor {
    var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    let n = shape.reduce(1, *)
    let values = (0..<n).map { _ -> Float in
        s ^= s << 13
        s ^= s >> 7
        s ^= s << 17
        return range.lowerBound + (range.upperBound - range.lowerBound) * Float(s >> 40) / Float(1 << 24)
    }
    let t = Tensor(values, shape: shape)
    eval(t)
    return t
}

private func gelu(_ x: Tensor) -> Tensor {
    0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x * x * x)))
}

private func layerNorm(_ a: [Tensor]) -> [Tensor] {
    let x = a[0], w = a[1], b = a[2]
    let mean = x.mean(axis: -1, keepDims: true)
    let centered = x - mean
    let variance = (centered * centered).mean(axis: -1, keepDims: true)
    return [centered * rsqrt(variance + 1e-5) * w + b]
}

private func chain(_ x: Tensor) -> Tensor {
    var y = x * 1.1
    y = y + 0.3
    y = y * y
    y = y - x
    y = maximum(y, 0)
    y = y * 0.7
    y = y + x
    y = abs(y)
    y = y / 2
    return minimum(y, 3)
}

private func adam(_ a: [Tensor]) -> [Tensor] {
    let p = a[0], m = a[1], v = a[2], g = a[3]
    let b1: Float = 0.9, b2: Float = 0.999, lr: Float = 1e-3, eps: Float = 1e-8, t: Float = 10
    let m1 = b1 * m + (1 - b1) * g
    let v1 = b2 * v + (1 - b2) * g * g
    let mHat = m1 / (1 - pow(b1, t))
    let vHat = v1 / (1 - pow(b2, t))
    return [p - lr * mHat / (sqrt(vHat) + eps), m1, v1]
}

func runCompileSuite() {
    let n = 1 << 24
    let reps = Int(ProcessInfo.processInfo.environment["TESSERA_BENCH_REPS"] ?? "") ?? 7
    let x = uniform([n], seed: 1, range: -3...3)
    let rows = uniform([4096, 4096], seed: 2)
    let w = uniform([4096], seed: 3), b = uniform([4096], seed: 4)
    let adamInputs = [
        uniform([n], seed: 5), uniform([n], seed: 6), uniform([n], seed: 7, range: 0...1), uniform([n], seed: 8)
    ]

    let cases: [(String, [Tensor], ([Tensor]) -> [Tensor])] = [
        ("approximate GELU, 16M", [x], { [gelu($0[0])] }),
        ("layerNorm from primitives, 4096x4096", [rows, w, b], layerNorm),
        ("10-op element-wise chain, 16M", [x], { [chain($0[0])] }),
        ("Adam update (p, m, v), 16M each", adamInputs, adam)
    ]
    print("compile suite: \(reps) repetitions, medians; threads: \(ProcessInfo.processInfo.activeProcessorCount)")
    print("| case | eager | compiled | speedup |")
    print("|---|---:|---:|---:|")
    for (name, inputs, f) in cases {
        let compiled = compile(f)
        let eager = compileTime(reps) { eval(f(inputs)) }
        let fused = compileTime(reps) { eval(compiled(inputs)) }
        print(String(format: "| %@ | %.1f ms | %.1f ms | %.2fx |", name, eager * 1e3, fused * 1e3, eager / fused))
    }
}
