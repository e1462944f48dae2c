// ggml block formats: Q4_0/Q4_1/Q8_0 repacked into MLX's affine layout, and
// the K-quants (Q4_K, Q5_K, Q6_K; 256-value super-blocks) dequantized.
// Layouts (ggml): Q4_0 {f16 d; u8 qs[16]}, Q4_1 {f16 d, m; u8 qs[16]} with
// value j in the low nibble of qs[j] and value j+16 in the high nibble;
// Q8_0 {f16 d; i8 qs[32]}.

enum GGUFQuants {
    @inline(__always)
    static func f16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// Q4_0, Q4_1 or Q8_0 blocks as MLX affine quantization, group 32.
    static func affine(_ type: GGMLType, _ data: UnsafeRawBufferPointer, shape: [Int]) -> QuantizedWeight {
        let columns = shape.last ?? 1
        let rows = shape.reduce(1, *) / Swift.max(columns, 1)
        let blocks = rows * columns / 32
        let bits = type == .q8_0 ? 8 : 4
        let wordsPerBlock = 32 * bits / 32
        var words = [UInt32](repeating: 0, count: blocks * wordsPerBlock)
        var scales = [Float16](repeating: 0, count: blocks)
        var biases = [Float16](repeating: 0, count: blocks)
        let base = data.baseAddress!
        let stride = type.block.bytes
        for b in 0..<blocks {
            let p = base + b * stride
            let dBits = p.loadUnaligned(as: UInt16.self)
            let d = Float16(bitPattern: dBits)
            scales[b] = d
            switch type {
            case .q4_0, .q4_1:
                biases[b] =
                    type == .q4_0 ? -8 * d : Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                let qs = p + (type == .q4_0 ? 2 : 4)
                for e in 0..<32 {
                    let byte = qs.load(fromByteOffset: e % 16, as: UInt8.self)
                    let q = UInt32(e < 16 ? byte & 0xF : byte >> 4)
                    words[b * 4 + e / 8] |= q << UInt32(4 * (e % 8))
                }
            default:  // q8_0
                biases[b] = -128 * d
                for e in 0..<32 {
                    let q = UInt32(p.load(fromByteOffset: 2 + e, as: UInt8.self) ^ 0x80)  // int8 + 128
                    words[b * 8 + e / 4] |= q << UInt32(8 * (e % 4))
                }
            }
        }
        let lead = Array(shape.dropLast())
        return QuantizedWeight(
            weight: Tensor(words, shape: lead + [columns * bits / 32]),
            scales: Tensor(scales, shape: lead + [columns / 32]),
            biases: Tensor(biases, shape: lead + [columns / 32]),
            groupSize: 32, bits: bits)
    }

    /// The (scale, min) pair `j` of a K-quant's 12 packed 6-bit scale bytes.
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafeRawPointer) -> (Float, Float) {
        func at(_ i: Int) -> UInt8 { q.load(fromByteOffset: i, as: UInt8.self) }
        if j < 4 { return (Float(at(j) & 63), Float(at(j + 4) & 63)) }
        let d = (at(j + 4) & 0xF) | ((at(j - 4) >> 6) << 4)
        let m = (at(j + 4) >> 4) | ((at(j) >> 6) << 4)
        return (Float(d), Float(m))
    }

    /// K-quant super-blocks dequantized to float32.
    static func dequantizeK(_ type: GGMLType, _ data: UnsafeRawBufferPointer, shape: [Int]) -> Tensor {
        let count = shape.reduce(1, *)
        var out = [Float](repeating: 0, count: count)
        let base = data.baseAddress!
        let stride = type.block.bytes
        out.withUnsafeMutableBufferPointer { y in
            for b in 0..<(count / 256) {
                let p = base + b * stride
                let o = b * 256
                switch type {
                case .q4_K:
                    // {f16 d, dmin; u8 scales[12]; u8 qs[128]}
                    let d = f16(p, 0), dmin = f16(p, 2), scales = p + 4
                    var q = p + 16
                    for chunk in 0..<4 {
                        let (s1, m1) = scaleMin(2 * chunk, scales), (s2, m2) = scaleMin(2 * chunk + 1, scales)
                        for l in 0..<32 {
                            let byte = q.load(fromByteOffset: l, as: UInt8.self)
                            y[o + chunk * 64 + l] = d * s1 * Float(byte & 0xF) - dmin * m1
                            y[o + chunk * 64 + 32 + l] = d * s2 * Float(byte >> 4) - dmin * m2
                        }
                        q += 32
                    }
                case .q5_K:
                    // {f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}
                    let d = f16(p, 0), dmin = f16(p, 2), scales = p + 4, qh = p + 16
                    var ql = p + 48
                    var u1: UInt8 = 1, u2: UInt8 = 2
                    for chunk in 0..<4 {
                        let (s1, m1) = scaleMin(2 * chunk, scales), (s2, m2) = scaleMin(2 * chunk + 1, scales)
                        for l in 0..<32 {
                            let byte = ql.load(fromByteOffset: l, as: UInt8.self)
                            let h = qh.load(fromByteOffset: l, as: UInt8.self)
                            y[o + chunk * 64 + l] = d * s1 * Float((byte & 0xF) + (h & u1 != 0 ? 16 : 0)) - dmin * m1
                            y[o + chunk * 64 + 32 + l] =
                                d * s2 * Float((byte >> 4) + (h & u2 != 0 ? 16 : 0)) - dmin * m2
                        }
                        ql += 32
                        u1 <<= 2
                        u2 <<= 2
                    }
                default:  // q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}
                    let d = f16(p, 208)
                    var ql = p, qh = p + 128, sc = p + 192
                    for half in 0..<2 {
                        for l in 0..<32 {
                            let i = l / 16
                            let a = ql.load(fromByteOffset: l, as: UInt8.self)
                            let c = ql.load(fromByteOffset: l + 32, as: UInt8.self)
                            let h = qh.load(fromByteOffset: l, as: UInt8.self)
                            let q1 = Int((a & 0xF) | ((h >> 0) & 3) << 4) - 32
                            let q2 = Int((c & 0xF) | ((h >> 2) & 3) << 4) - 32
                            let q3 = Int((a >> 4) | ((h >> 4) & 3) << 4) - 32
                            let q4 = Int((c >> 4) | ((h >> 6) & 3) << 4) - 32
                            func s(_ k: Int) -> Float { Float(sc.load(fromByteOffset: k, as: Int8.self)) }
                            let at = o + half * 128 + l
                            y[at] = d * s(i) * Float(q1)
                            y[at + 32] = d * s(i + 2) * Float(q2)
                            y[at + 64] = d * s(i + 4) * Float(q3)
                            y[at + 96] = d * s(i + 6) * Float(q4)
                        }
                        ql += 64
                        qh += 32
                        sc += 8
                    }
                }
            }
        }
        return Tensor(out, shape: shape)
    }
}
