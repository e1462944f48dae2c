// Selftest cases: the kernels they check are in Backends/CUDA's
// CUDAReduction, CUDAMatmul, CUDAFast, CUDAAttention and CUDAQuantized.swift.
// Each primitive runs with several shapes (both row-kernel team sizes, gemv
// and GEMM, decode and prefill attention, qmv and qmm), every float dtype,
// and at least one non-contiguous (transposed or sliced) input.

import Tessera

extension GPUSelfTest {
    /// Sums of many products: float32 1e-4, float16 2e-3, bfloat16 2e-2 relative.
    static func productTolerance(_ dtype: DType) -> Double {
        switch dtype {
        case .float16: return 2e-3
        case .bfloat16: return 2e-2
        default: return 1e-4
        }
    }

    /// Like `sample` (values in about [-2, 2]) but from a multiplicative hash,
    /// so rows and key tiles do not repeat with a short period (sample's is 29
    /// elements, which made every 32-key tile of a long row a copy of the first).
    static func noise(_ shape: [Int], seed: Int = 0) -> Tensor {
        let count = shape.reduce(1, *)
        return Tensor(
            (0..<count).map { i -> Float in
                let h = (UInt64(i + 1) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(seed) &* 0xBF58_476D_1CE4_E5B9) >> 40
                return Float(h % 4001) / 1000 - 2
            }, shape: shape)
    }

    static var denseCases: [Case] {
        argReduceCases + rowCases + ropeCases + matmulCases + attentionCases + quantizedCases + edgeCases
    }

    /// `noise` with NaN at every 13th element of the rows whose index is odd.
    static func noiseWithNaN(_ rows: Int, _ n: Int) -> Tensor {
        let values = noise([rows, n], seed: 11).toArray(Float.self).enumerated().map { i, v in
            (i / n) % 2 == 1 && i % 13 == 5 ? Float.nan : v
        }
        return Tensor(values, shape: [rows, n])
    }

    /// NaN, fully masked rows, empty products.
    static var edgeCases: [Case] {
        let maskedQKV: (Int) -> (DType) -> [Tensor] = { lq in
            { dtype in
                let keep = noise([lq, 20], seed: 8).toArray(Float.self).enumerated().map { i, v in i / 20 != 0 && v > -1
                }
                return [
                    noise([1, 2, lq, 16]).asType(dtype), noise([1, 2, 20, 16], seed: 2).asType(dtype),
                    noise([1, 2, 20, 16], seed: 4).asType(dtype), Tensor(keep, shape: [lq, 20])
                ]
            }
        }
        let masked: ([Tensor]) -> Tensor = { t in
            Fast.scaledDotProductAttention(queries: t[0], keys: t[1], values: t[2], scale: 0.25, mask: .array(t[3]))
        }
        return [
            Case(
                name: "argMax with NaN", dtypes: floatTypes, inputs: { [noiseWithNaN(6, 50).asType($0)] },
                op: { $0[0].argMax(axis: 1) }),
            Case(
                name: "argMin with NaN", dtypes: floatTypes, inputs: { [noiseWithNaN(6, 50).asType($0)] },
                op: { $0[0].argMin(axis: 1) }),
            Case(
                name: "softmax with NaN", dtypes: floatTypes, inputs: { [noiseWithNaN(6, 50).asType($0)] },
                op: { softmax($0[0]) }),
            Case(
                name: "sdpa fully masked row (prefill)", dtypes: floatTypes, inputs: maskedQKV(12), op: masked,
                tolerance: productTolerance),
            Case(name: "sdpa fully masked row (decode)", dtypes: floatTypes, inputs: maskedQKV(1), op: masked),
            Case(
                name: "matmul K=0", dtypes: floatTypes,
                inputs: { [Tensor.zeros([3, 0], dtype: $0), Tensor.zeros([0, 4], dtype: $0)] },
                op: { matmul($0[0], $0[1]) })
        ]
    }

    static var argReduceCases: [Case] {
        let x: (DType) -> [Tensor] = { dtype in [noise([5, 37, 3]).asType(dtype)] }
        let types = floatTypes + [.int32]
        return [
            Case(name: "argMax axis 1", dtypes: types, inputs: x, op: { $0[0].argMax(axis: 1) }),
            Case(name: "argMin axis 2", dtypes: types, inputs: x, op: { $0[0].argMin(axis: 2) }),
            Case(
                name: "argMax axis 0 (transposed)", dtypes: types, inputs: x,
                op: { $0[0].transposed(2, 0, 1).argMax(axis: 0) }),
            Case(
                name: "argMin long row", dtypes: types, inputs: { [noise([3, 3000], seed: 5).asType($0)] },
                op: { $0[0].argMin(axis: 1) })
        ]
    }

    static var rowCases: [Case] {
        let short: (DType) -> [Tensor] = { dtype in
            [
                noise([4, 3, 40]).asType(dtype), (noise([40], seed: 2) * 0.5).asType(dtype),
                noise([40], seed: 4).asType(dtype)
            ]
        }
        let long: (DType) -> [Tensor] = { dtype in
            [
                noise([3, 1500], seed: 1).asType(dtype), (noise([1500], seed: 3) * 0.5).asType(dtype),
                noise([1500], seed: 6).asType(dtype)
            ]
        }
        var cases: [Case] = []
        for (label, inputs) in [("row 40", short), ("row 1500", long)] {
            cases += [
                Case(name: "softmax \(label)", dtypes: floatTypes, inputs: inputs, op: { softmax($0[0]) }),
                Case(name: "logSoftmax \(label)", dtypes: floatTypes, inputs: inputs, op: { logSoftmax($0[0]) }),
                Case(
                    name: "rmsNorm \(label)", dtypes: floatTypes, inputs: inputs,
                    op: { Fast.rmsNorm($0[0], weight: $0[1]) }),
                Case(
                    name: "layerNorm \(label)", dtypes: floatTypes, inputs: inputs,
                    op: { Fast.layerNorm($0[0], weight: $0[1], bias: $0[2]) })
            ]
        }
        cases += [
            Case(
                name: "softmax vocabulary row 32000", dtypes: floatTypes,
                inputs: { [(noise([2, 32000], seed: 12) * 4).asType($0)] }, op: { softmax($0[0]) }),
            Case(
                name: "softmax transposed", dtypes: floatTypes, inputs: short,
                op: { softmax($0[0].transposed(2, 0, 1)) }),
            Case(
                name: "rmsNorm no weight, strided rows", dtypes: floatTypes, inputs: short,
                op: { Fast.rmsNorm($0[0].transposed(1, 0, 2), weight: nil, eps: 1e-3) }),
            Case(
                name: "layerNorm no weight, sliced", dtypes: floatTypes, inputs: short,
                op: { Fast.layerNorm($0[0][.ellipsis, .stride(by: 2)]) }),
            Case(
                name: "softmax -inf row", dtypes: floatTypes,
                inputs: { [Tensor.full([2, 5], value: -Float.infinity).asType($0)] }, op: { softmax($0[0]) })
        ]
        return cases
    }

    static var ropeCases: [Case] {
        let x: (DType) -> [Tensor] = { dtype in [noise([2, 3, 7, 16]).asType(dtype)] }
        return [
            Case(
                name: "rope", dtypes: floatTypes, inputs: x,
                op: { Fast.rope($0[0], dimensions: 16, traditional: false) }),
            Case(
                name: "rope traditional, offset", dtypes: floatTypes, inputs: x,
                op: { Fast.rope($0[0], dimensions: 16, traditional: true, offset: 5) }),
            Case(
                name: "rope partial dims, base, scale (transposed)", dtypes: floatTypes, inputs: x,
                op: {
                    Fast.rope(
                        $0[0].transposed(0, 2, 1, 3), dimensions: 8, traditional: false, base: 500,
                        scale: 0.5, offset: 3)
                }),
            Case(
                name: "rope freqs", dtypes: floatTypes,
                inputs: { [noise([2, 3, 7, 16]).asType($0), abs(noise([4], seed: 2)) + 1] },
                op: { Fast.rope($0[0], dimensions: 8, traditional: true, base: nil, offset: 100, freqs: $0[1]) }),
            Case(
                name: "rope long positions", dtypes: floatTypes, inputs: x,
                op: { Fast.rope($0[0], dimensions: 16, traditional: false, offset: 30000) },
                tolerance: { $0 == .float32 ? 1e-4 : tolerance($0) })
        ]
    }

    static var matmulCases: [Case] {
        let pair: ([Int], [Int]) -> (DType) -> [Tensor] = { a, b in
            { dtype in [noise(a).asType(dtype), (noise(b, seed: 3) * 0.5).asType(dtype)] }
        }
        let product: (String, @escaping (DType) -> [Tensor], @escaping ([Tensor]) -> Tensor) -> Case = {
            name, inputs, op in
            Case(name: name, dtypes: floatTypes, inputs: inputs, op: op, tolerance: productTolerance)
        }
        return [
            product("matmul 4x6 @ 6x5", pair([4, 6], [6, 5]), { matmul($0[0], $0[1]) }),
            product("matmul 33x70 @ 70x45", pair([33, 70], [70, 45]), { matmul($0[0], $0[1]) }),
            product("matmul 130x300 @ 300x150", pair([130, 300], [300, 150]), { matmul($0[0], $0[1]) }),
            product("matmul batched broadcast", pair([3, 9, 20], [20, 11]), { matmul($0[0], $0[1]) }),
            product("matmul batched both", pair([2, 3, 9, 20], [2, 1, 20, 11]), { matmul($0[0], $0[1]) }),
            product("matmul a @ b.T (transposed b)", pair([9, 20], [11, 20]), { matmul($0[0], $0[1].T) }),
            product("matmul a.T @ b (transposed a)", pair([20, 9], [20, 11]), { matmul($0[0].T, $0[1]) }),
            product(
                "matmul sliced a", pair([9, 40], [20, 11]),
                { matmul($0[0][.ellipsis, .stride(by: 2)], $0[1]) }),
            product("gemv M=1", pair([1, 300], [300, 70]), { matmul($0[0], $0[1]) }),
            product("gemv M=1 (b transposed)", pair([1, 300], [70, 300]), { matmul($0[0], $0[1].T) }),
            product("gemv N=1 batched", pair([3, 17, 40], [40, 1]), { matmul($0[0], $0[1]) }),
            product("gemv vector @ matrix", pair([40], [40, 13]), { matmul($0[0], $0[1]) })
        ]
    }

    static var attentionCases: [Case] {
        let qkv: (Int, Int, Int, Int, Int, Int) -> (DType) -> [Tensor] = { hq, hkv, lq, lk, d, dv in
            { dtype in
                [
                    (noise([2, hq, lq, d]) * 0.5).asType(dtype), (noise([2, hkv, lk, d], seed: 2) * 0.5).asType(dtype),
                    noise([2, hkv, lk, dv], seed: 4).asType(dtype),
                    (noise([lq, lk], seed: 7) * 0.5).asType(dtype)
                ]
            }
        }
        let sdpa: (Tensor, Tensor, Tensor, AttentionMask, Int) -> Tensor = { q, k, v, mask, d in
            Fast.scaledDotProductAttention(queries: q, keys: k, values: v, scale: 1 / Float(d).squareRoot(), mask: mask)
        }
        let attention: (String, @escaping (DType) -> [Tensor], Int, AttentionMask?) -> Case = { name, inputs, d, mask in
            Case(
                name: name, dtypes: floatTypes, inputs: inputs,
                op: { t in sdpa(t[0], t[1], t[2], mask ?? .array(t[3]), d) }, tolerance: productTolerance)
        }
        return [
            attention("sdpa decode Lq=1 GQA", qkv(4, 2, 1, 37, 32, 32), 32, AttentionMask.none),
            attention("sdpa decode Lq=1 additive mask", qkv(4, 4, 1, 45, 64, 48), 64, nil),
            attention("sdpa prefill causal GQA", qkv(4, 1, 40, 40, 32, 32), 32, .causal),
            attention("sdpa prefill Lq<Lk causal", qkv(2, 2, 9, 70, 64, 64), 64, .causal),
            attention("sdpa prefill additive mask", qkv(2, 1, 20, 33, 16, 24), 16, nil),
            attention("sdpa prefill head 160 (row kernel)", qkv(2, 2, 6, 10, 160, 160), 160, .causal),
            attention("sdpa prefill head 128, 150 tokens", qkv(2, 1, 150, 150, 128, 128), 128, .causal),
            attention("sdpa decode head 256, 300 keys", qkv(1, 1, 1, 300, 256, 256), 256, AttentionMask.none),
            // Few rows, many keys: split-K (chunks of the keys, merged after) on devices with few SMs or long contexts.
            attention("sdpa decode split-K 3000 keys GQA", qkv(2, 1, 1, 3000, 64, 64), 64, AttentionMask.none),
            Case(
                name: "sdpa decode split-K, first 1700 keys masked", dtypes: floatTypes,
                inputs: { dtype in
                    let t = qkv(1, 1, 1, 2000, 32, 32)(dtype)
                    return Array(t.prefix(3)) + [Tensor((0..<2000).map { $0 >= 1700 }, shape: [1, 2000])]
                },
                op: { t in sdpa(t[0], t[1], t[2], .array(t[3]), 32) }, tolerance: productTolerance),
            Case(
                name: "sdpa bool mask, transposed q", dtypes: floatTypes, inputs: qkv(2, 2, 12, 12, 16, 16),
                op: { t in
                    let q = t[0].swappedAxes(1, 2).contiguous().swappedAxes(1, 2)  // [B, H, L, D] with H, L strides swapped
                    return sdpa(q, t[1], t[2], .array(t[3] .> -0.5), 16)
                }, tolerance: productTolerance)
        ]
    }

    static var quantizedCases: [Case] {
        var cases: [Case] = []
        let weights: ([Int]) -> (DType) -> [Tensor] = { shape in { dtype in [noise(shape, seed: 9).asType(dtype)] } }
        for (bits, group) in [(4, 32), (4, 64), (8, 128), (2, 32), (3, 64), (6, 32)] {
            let w = weights([24, 128])
            cases += [
                Case(
                    name: "quantize \(bits)-bit g\(group) codes", dtypes: floatTypes, inputs: w,
                    op: { quantize($0[0], groupSize: group, bits: bits).wq }),
                Case(
                    name: "quantize \(bits)-bit g\(group) scales", dtypes: floatTypes, inputs: w,
                    op: { quantize($0[0], groupSize: group, bits: bits).scales }),
                Case(
                    name: "dequantize \(bits)-bit g\(group)", dtypes: floatTypes, inputs: w,
                    op: { t in
                        let q = withDevice(.cpu) { quantize(t[0], groupSize: group, bits: bits) }
                        return dequantize(q.wq, scales: q.scales, biases: q.biases, groupSize: group, bits: bits)
                    })
            ]
        }
        // Quantized products: the weights are quantized on the CPU, the product runs on each device.
        let qmm: (String, [Int], [Int], Int, Int, Bool, Bool) -> Case = {
            name, xShape, wShape, bits, group, transpose, sliced in
            Case(
                name: name, dtypes: floatTypes,
                inputs: { dtype in
                    let w = noise(wShape, seed: 5).asType(dtype)
                    let q = quantize(w, groupSize: group, bits: bits)
                    return [(noise(xShape) * 0.25).asType(dtype), q.wq, q.scales, q.biases]
                },
                op: { t in
                    let x = sliced ? t[0].swappedAxes(0, 1).contiguous().swappedAxes(0, 1) : t[0]
                    return quantizedMatmul(
                        x, t[1], scales: t[2], biases: t[3], transpose: transpose, groupSize: group,
                        bits: bits)
                }, tolerance: productTolerance)
        }
        cases += [
            qmm("qmv 4-bit g64 M=1", [1, 128], [48, 128], 4, 64, true, false),
            qmm("qmv 8-bit g32 M=5", [5, 128], [40, 128], 8, 32, true, false),
            qmm("qmv 3-bit g128 M=3", [3, 256], [20, 256], 3, 128, true, false),
            qmm("qmv not transposed 4-bit g32", [4, 64], [64, 96], 4, 32, false, false),
            qmm("qmm 4-bit g64 M=40", [40, 128], [72, 128], 4, 64, true, false),
            qmm("qmm 8-bit g128 M=33 strided x", [33, 256], [30, 256], 8, 128, true, true),
            qmm("qmm not transposed 4-bit g32 M=20", [20, 64], [64, 64], 4, 32, false, false),
            qmm("qmm batched broadcast", [3, 12, 64], [40, 64], 4, 32, true, false),
            Case(
                name: "gatherQuantizedMatmul", dtypes: floatTypes,
                inputs: { dtype in
                    let w = noise([4, 24, 64], seed: 5).asType(dtype)
                    let q = quantize(w, groupSize: 32, bits: 4)
                    return [
                        (noise([3, 2, 64]) * 0.25).asType(dtype), q.wq, q.scales, q.biases,
                        Tensor([UInt32(0), 2, 1, 0, 2, 1], shape: [6]), Tensor([UInt32(3), 1, 0, 2, 3, 1], shape: [6])
                    ]
                },
                op: { t in
                    gatherQuantizedMatmul(
                        t[0], t[1], scales: t[2], biases: t[3], lhsIndices: t[4], rhsIndices: t[5],
                        groupSize: 32, bits: 4)
                }, tolerance: productTolerance)
        ]
        return cases
    }
}
