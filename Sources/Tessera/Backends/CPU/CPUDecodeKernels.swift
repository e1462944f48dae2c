// `_DecodeKernels`: pointer-level entry points for a decode step replayed
// without graph nodes (TesseraLM's DecodePlan). Each runs the kernel that the
// graph's op runs for one token, with the arguments the graph would build
// (the same chunks over the pool, the same C entry points, the same Swift
// arithmetic), so a replayed step computes the bits the graph path computes.
// The caller owns every buffer (float32, row-contiguous) and keeps the
// tensors whose addresses it passes alive. Not public API (underscored).

import CTesseraKernels

extension Tensor {
    /// The host address of element 0 of this tensor when it is evaluated,
    /// row-contiguous and on the CPU; nil otherwise (a lazy tensor is not
    /// evaluated here). `forWriting`: the caller writes through it (the host
    /// copy becomes the only valid one).
    public func _hostAddress(forWriting: Bool = false) -> UnsafeMutableRawPointer? {
        guard let data = node.data, data.isRowContiguous, data.count > 0 else { return nil }
        guard let p = try? data.buffer.hostPointer(forWriting: forWriting) else { return nil }
        return p + data.offset * data.dtype.size
    }

    /// A fresh evaluated row-contiguous tensor of zeros with its own buffer
    /// (a buffer a caller may write into through `_hostAddress`); nil when the
    /// memory limit refuses it.
    public static func _zerosBuffer(_ shape: [Int], dtype: DType) -> Tensor? {
        let view = ArrayView.allocate(shape: shape, dtype: dtype)
        guard let p = try? view.buffer.hostPointer(forWriting: true) else { return nil }
        p.initializeMemory(as: UInt8.self, repeating: 0, count: view.count * dtype.size)
        return Tensor(evaluated: view)
    }

    /// A fresh evaluated row-contiguous host tensor whose values are not set:
    /// for room that is written before it is read (a growing KV cache's
    /// positions past its length, which every reader slices away). Its pages
    /// become resident as they are written, not all at once as zeros'. nil
    /// when the memory limit refuses it.
    public static func _unsetBuffer(_ shape: [Int], dtype: DType) -> Tensor? {
        let view = ArrayView.allocate(shape: shape, dtype: dtype)
        guard (try? view.buffer.hostPointer(forWriting: true)) != nil else { return nil }
        return Tensor(evaluated: view)
    }
}

public enum _DecodeKernels {
    /// The most rows of x `quantizedProduct` takes (each computed as alone).
    public static var maxProductRows: Int { QuantizedKernels.qmvMaxRows }

    /// Bytes of scratch `quantizedProduct` needs for `rows` inputs of `k` values.
    public static func quantizedScratchBytes(k: Int, groupSize: Int, bits: Int, rows: Int = 1) -> Int {
        QuantizedKernels.qmvScratchBytes(m: rows, k: k, groupSize: groupSize, bits: bits)
    }

    /// Whether `quantizedProduct` takes this format (scales and biases float32, float16 or bfloat16).
    public static func supportsQuantized(bits: Int, groupSize: Int, scales: DType) -> Bool {
        QuantizedKernels.fastMatmulSupports(bits: bits, groupSize: groupSize) && SIMDKernels.code(scales) != nil
    }

    /// out [rows, n] = x [rows, k] · Wᵀ for MLX-quantized W (`wq` [n,
    /// k·bits/32] uint32, scales and biases [n, k/groupSize] of `scaleType`):
    /// the decode product of `quantizedMatmul` (QuantizedKernels.qmv; rows
    /// at most 16, each computed as alone), x prepared into `scratch`
    /// (`quantizedScratchBytes` for `rows`, 64-byte aligned).
    public static func quantizedProduct(
        x: UnsafePointer<Float>, wq: UnsafeRawPointer, scales: UnsafeRawPointer, biases: UnsafeRawPointer,
        scaleType: DType, out: UnsafeMutablePointer<Float>, n: Int, k: Int, groupSize: Int, bits: Int,
        rows: Int = 1, scratch: UnsafeMutableRawPointer?
    ) {
        guard let sdt = SIMDKernels.code(scaleType), n > 0, k > 0, rows > 0, rows <= QuantizedKernels.qmvMaxRows
        else { return }
        QuantizedKernels.qmv(
            Int32(TK_F32), sdt, x: UnsafeRawPointer(x), wq: wq.assumingMemoryBound(to: UInt32.self), scales: scales,
            biases: biases, out: UnsafeMutableRawPointer(out), m: rows, n: n, k: k, groupSize: groupSize, bits: bits,
            scratch: scratch)
    }

    /// `Fast.rmsNorm` of `rows` rows of `n` values with a float32 weight, each as alone.
    public static func rmsNormRows(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, into out: UnsafeMutablePointer<Float>,
        rows: Int, n: Int
    ) {
        tk_rmsnorm_rows(Int32(TK_F32), x, weight, eps, out, rows, n)
    }

    /// One row of a quantized table dequantized to float32 as the graph's
    /// `dequantize` of the row with its scales and biases widened to float32
    /// (`scale * q`, rounded, `+ bias`); `widened` holds 2·count/groupSize floats.
    public static func dequantizeRow(
        wq: UnsafeRawPointer, scales: UnsafeRawPointer, biases: UnsafeRawPointer, scaleType: DType,
        into out: UnsafeMutablePointer<Float>, count: Int, groupSize: Int, bits: Int,
        widened: UnsafeMutablePointer<Float>
    ) {
        let groups = count / groupSize
        guard let sdt = SIMDKernels.code(scaleType) else { return }
        tk_convert(sdt, scales, Int32(TK_F32), widened, groups)
        tk_convert(sdt, biases, Int32(TK_F32), widened + groups, groups)
        QuantizedKernels.dequantize(
            wq.assumingMemoryBound(to: UInt32.self), scales: UnsafePointer(widened),
            biases: UnsafePointer(widened + groups), into: out, count: count, groupSize: groupSize, bits: bits)
    }

    /// `Fast.rmsNorm` of one row of `n` values with a float32 weight.
    public static func rmsNorm(
        _ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, eps: Float, into out: UnsafeMutablePointer<Float>,
        n: Int
    ) {
        tk_rmsnorm_rows(Int32(TK_F32), x, weight, eps, out, 1, n)
    }

    /// out = silu(gate) · up over `n` values as the graph computes
    /// `g * sigmoid(g) * up` (three element-wise kernels; `t` holds n floats).
    public static func siluMultiply(
        gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, n: Int,
        t: UnsafeMutablePointer<Float>
    ) {
        let f32 = Int32(TK_F32)
        tk_unary(Int32(TK_SIGMOID), f32, gate, t, n)
        tk_binary(Int32(TK_MUL), f32, gate, 1, t, 1, t, n)
        tk_binary(Int32(TK_MUL), f32, t, 1, up, 1, out, n)
    }

    /// out = a + b over `n` values (the residual adds).
    public static func add(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, n: Int
    ) {
        tk_binary(Int32(TK_ADD), Int32(TK_F32), a, 1, b, 1, out, n)
    }

    /// Rope's angles for one position (`Fast.rope` at `offset` over one token).
    public final class RopeAngles: @unchecked Sendable {
        let cosines: [Double], sines: [Double]
        public let dimensions: Int

        /// The table `Fast.rope` uses: from `base`, or from `frequencies` (its `freqs`) when given.
        public init(offset: Int, dimensions: Int, base: Float, scale: Float, frequencies: [Float]?) {
            let table: RopeTable
            if let frequencies {
                table = RopeTable(
                    offset: offset, positions: 1, scale: scale, inverse: frequencies.map { 1 / Double($0) })
            } else {
                table = RopeTable.cached(offset: offset, positions: 1, dims: dimensions, base: base, scale: scale)
            }
            (cosines, sines, self.dimensions) = (table.cosines, table.sines, dimensions)
        }

        /// Rotates `heads` rows of `headDim` values from `x` (row h at x + h·xStride) into `out` (row h at out + h·outStride).
        public func apply(
            _ x: UnsafePointer<Float>, xStride: Int, into out: UnsafeMutablePointer<Float>, outStride: Int, heads: Int,
            headDim n: Int, traditional: Bool
        ) {
            let half = dimensions / 2
            cosines.withUnsafeBufferPointer { cosines in
                sines.withUnsafeBufferPointer { sines in
                    for h in 0..<heads {
                        let src = x + h * xStride, o = out + h * outStride
                        for i in 0..<half {
                            let c = Float(cosines[i]), sn = Float(sines[i])
                            let (a, b) = traditional ? (2 * i, 2 * i + 1) : (i, i + half)
                            let x1 = src[a], x2 = src[b]
                            o[a] = x1 * c - x2 * sn
                            o[b] = x1 * sn + x2 * c
                        }
                        for j in dimensions..<n { o[j] = src[j] }
                    }
                }
            }
        }
    }

    /// Floats of scratch `attention` needs for `kvHeads` heads of `groups` query heads each.
    public static func attentionScratch(kvHeads: Int, groups: Int, valueDim: Int) -> Int {
        AttentionKernels.fewRowsScratch(jobs: kvHeads, rows: groups, dv: valueDim)
    }

    /// float32 values rounded to float16 (round to nearest even, as the graph's `asType(.float16)`).
    public static func toHalf(_ x: UnsafePointer<Float>, into out: UnsafeMutableRawPointer, count: Int) {
        tk_convert(Int32(TK_F32), x, Int32(TK_F16), out, count)
    }

    /// `Fast.scaledDotProductAttention` of one query position without a mask:
    /// q [hq, d] contiguous, keys of kv head h, position j at element
    /// h·headStride + j·d of k (values alike, `dv` wide), `length` positions;
    /// out [hq, dv]. Keys and values float32, or float16 with `half` (widened
    /// in registers: the result equals the float32 kernel's on the widened
    /// values bit for bit).
    public static func attention(
        q: UnsafePointer<Float>, k: UnsafeRawPointer, v: UnsafeRawPointer, half: Bool = false, headStride: Int,
        valueHeadStride: Int, out: UnsafeMutablePointer<Float>, queryHeads hq: Int, kvHeads hk: Int, length lk: Int,
        d: Int, dv: Int, scale: Float, scratch: UnsafeMutablePointer<Float>?
    ) {
        let k16 = k.assumingMemoryBound(to: UInt16.self), v16 = v.assumingMemoryBound(to: UInt16.self)
        let k32 = k.assumingMemoryBound(to: Float.self), v32 = v.assumingMemoryBound(to: Float.self)
        let groups = hq / hk
        AttentionKernels.runFewRows(
            jobs: hk, rows: groups, dv: dv, keys: lk, work: hq * lk * (d + dv), scratch: scratch
        ) { kh in
            let head = kh * groups
            var a = tk_attention_args()
            a.q = q + head * d
            a.q_head_stride = d
            a.q_row_stride = d
            if half {
                a.k_half = k16 + kh * headStride
                a.v_half = v16 + kh * valueHeadStride
            } else {
                a.k = k32 + kh * headStride
                a.v = v32 + kh * valueHeadStride
            }
            a.k_stride = d
            a.v_stride = dv
            a.out = out + head * dv
            (a.heads, a.lq, a.lk, a.d, a.dv) = (groups, 1, lk, d, dv)
            a.scale = scale
            a.causal = 0
            return a
        }
    }
}

extension _CPUKernels {
    /// The instruction sets the SIMD kernels can use on this CPU, lowest first
    /// ("baseline", "avx2", "avx512").
    public static var supportedISAs: [String] {
        Array(["baseline", "avx2", "avx512"].prefix(Int(tk_isa_supported()) + 1))
    }

    /// Runs `body` with the SIMD kernels dispatched to `isa` (one of
    /// `supportedISAs`), then back to the instruction set chosen before: how
    /// tests outside Tessera check a path on every ISA the dispatch can pick.
    public static func withISA<R>(_ isa: String, _ body: () throws -> R) rethrows -> R {
        let before = tk_isa()
        _ = tk_set_isa(Int32(supportedISAs.firstIndex(of: isa) ?? Int(before)))
        defer { _ = tk_set_isa(before) }
        return try body()
    }
}
