// CPU random bits: MLX's counter-based generator (threefry-2x32, 20 rounds,
// as in JAX), with MLX's layout of the counters over the output words, so a
// key draws the same bits as in MLX. Also MLX's float32 approximations of
// exp, erf and erfinv, which its samplers go through (bit-exact samples need
// the same functions).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Threefry {
    /// The threefry-2x32 hash of `counter` under `key`.
    @inline(__always)
    static func hash(key: (UInt32, UInt32), counter: (UInt32, UInt32)) -> (UInt32, UInt32) {
        let rotations: [[UInt32]] = [[13, 15, 26, 6], [17, 29, 16, 24]]
        let ks: [UInt32] = [key.0, key.1, key.0 ^ key.1 ^ 0x1BD1_1BDA]
        var x0 = counter.0 &+ ks[0], x1 = counter.1 &+ ks[1]
        for i in 0..<5 {
            for r in rotations[i % 2] {
                x0 = x0 &+ x1
                x1 = (x1 << r) | (x1 >> (32 - r))
                x1 ^= x0
            }
            x0 = x0 &+ ks[(i + 1) % 3]
            x1 = x1 &+ ks[(i + 2) % 3] &+ UInt32(i + 1)
        }
        return (x0, x1)
    }

    /// The `words` 32-bit words MLX draws from one key: word j < half takes
    /// the first half of hash(j, j + half + odd), word j + half + odd the
    /// second; an odd middle word takes hash(half, 0).first.
    static func words(key: (UInt32, UInt32), count: Int, into out: UnsafeMutablePointer<UInt32>) {
        let half = count / 2, odd = count % 2
        for j in 0..<half {
            let (a, b) = hash(
                key: key, counter: (UInt32(truncatingIfNeeded: j), UInt32(truncatingIfNeeded: j + half + odd)))
            out[j] = a
            out[j + half + odd] = b
        }
        if odd == 1 { out[half] = hash(key: key, counter: (UInt32(truncatingIfNeeded: half), 0)).0 }
    }
}

enum RandomKernels {
    /// Output `[keys..., shape...]`: each key (last axis of `keys`, 2 words)
    /// fills its block of `output.count / keyCount` elements byte for byte.
    static func bits(keys: ArrayView, output: ArrayView) throws {
        let keyCount = keys.count / 2
        let dst = try output.buffer.hostPointer(forWriting: true)
        guard keyCount > 0 else { return }
        let bytesPerKey = output.count / keyCount * output.dtype.size
        let wordCount = (bytesPerKey + 3) / 4
        let scratch = UnsafeMutablePointer<UInt32>.allocate(capacity: Swift.max(wordCount, 1))
        defer { scratch.deallocate() }
        let k = try keys.hostPointer(UInt32.self)
        let last = keys.strides.last ?? 1
        forEachBatch(shape: Array(keys.shape.dropLast()), strides: [Array(keys.strides.dropLast())]) { i, o in
            Threefry.words(key: (k[o[0]], k[o[0] + last]), count: wordCount, into: scratch)
            (dst + i * bytesPerKey).copyMemory(from: scratch, byteCount: bytesPerKey)
        }
    }
}

/// MLX's float32 approximations (its CPU `simd` math), for bit-exact sampling.
/// `c.addingProduct(a, b)` is C's `fma(a, b, c)`.
enum MLXMath {
    /// exp as 2^i * p(f), Cephes' polynomial for the fraction.
    static func exp(_ x: Float) -> Float {
        if x.isNaN { return x }
        if x > 88 { return .infinity }
        if x < -88 { return 0 }
        let y = x * 1.442695
        let i = (y + 0.5).rounded(.down)
        let f = y - i
        var p: Float = 1.535336188319500e-4
        for c: Float in [
            1.339887440266574e-3, 9.618437357674640e-3, 5.550332471162809e-2, 2.402264791363012e-1,
            6.931472028550421e-1, 1
        ] {
            p = c.addingProduct(p, f)
        }
        return Float(bitPattern: UInt32(truncatingIfNeeded: (Int32(i) + 127) << 23)) * p
    }

    /// erf by Abramowitz and Stegun 7.1.26, evaluated as MLX does.
    static func erf(_ x: Float) -> Float {
        let t = 1 / Float(1).addingProduct(0.3275911, Swift.abs(x))
        var r = Float(-1.453152027).addingProduct(1.061405429, t)
        r = Float(1.421413741).addingProduct(r, t)
        r = Float(-0.284496736).addingProduct(r, t)
        r = Float(0.254829592).addingProduct(r, t)
        let e = -exp(-x * x)
        let result = Float(1).addingProduct(e * t, r)
        return x > 0 ? result : -result
    }

    /// erfinv by Giles' single-precision polynomials in log(1 - x²).
    static func erfinv(_ a: Float) -> Float {
        let t = Glibc.logf(Float(1).addingProduct(a, 0 - a))
        let coefficients: [Float]
        if Swift.abs(t) > 6.125 {
            coefficients = [
                3.03697567e-10, 2.93243101e-8, 1.22150334e-6, 2.84108955e-5, 3.93552968e-4, 3.02698812e-3,
                4.83185798e-3, -2.64646143e-1, 8.40016484e-1
            ]
        } else {
            coefficients = [
                5.43877832e-9, 1.43285448e-7, 1.22774793e-6, 1.12963626e-7, -5.61530760e-5, -1.47697632e-4,
                2.31468678e-3, 1.15392581e-2, -2.32015476e-1, 8.86226892e-1
            ]
        }
        var p = coefficients[0]
        for c in coefficients.dropFirst() { p = c.addingProduct(p, t) }
        return a * p
    }
}
