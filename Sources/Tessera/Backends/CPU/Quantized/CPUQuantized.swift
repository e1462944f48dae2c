// CPU affine quantization (MLX's format, bit for bit) and quantized matrix
// products. Layout: a quantized row of K elements is K * bits / 32 uint32
// words holding one little-endian bit stream (element k in bits
// [k*bits, (k+1)*bits)); scales and biases hold one value per group of
// `groupSize` consecutive elements of a row. Rows are contiguous, so the whole
// tensor is one bit stream.
//
// `QuantizedKernels.referenceMatmul` is the clear reference kernel (dequantize
// a row of weights, then dot products); `QuantizedKernels.matmul`
// (CPUQuantized+SIMD.swift) is the family's entry point, the SIMD kernels
// where they apply and this reference for the rest.

/// Element `index` of a packed bit stream of `bits`-wide codes.
@inline(__always)
func unpackCode(_ words: UnsafePointer<UInt32>, _ index: Int, bits: Int) -> UInt32 {
    let bit = index * bits
    let word = bit >> 5, shift = bit & 31
    var value = words[word] >> UInt32(shift)
    if shift + bits > 32 { value |= words[word + 1] << UInt32(32 - shift) }
    return value & ((1 << UInt32(bits)) - 1)
}

/// `view` itself when its last `axes` axes are row-contiguous, else a contiguous copy.
func innerContiguous(_ view: ArrayView, axes: Int) throws -> ArrayView {
    let n = view.shape.count
    var expected = 1
    var contiguous = true
    for i in stride(from: n - 1, through: n - axes, by: -1) where view.shape[i] != 1 {
        if view.strides[i] != expected { contiguous = false }
        expected *= view.shape[i]
    }
    return contiguous ? view : try ShapeKernels.contiguousCopy(view)
}

enum QuantizedKernels {
    /// MLX's affine parameters per group, computed in float32 exactly as MLX
    /// does: the edge of larger magnitude is represented exactly.
    static func parameters<T: FloatElement>(
        _ w: UnsafePointer<T>, count: Int, into out: UnsafeMutablePointer<Float>, groupSize: Int, bits: Int
    ) {
        let nBins = Float((1 << bits) - 1)
        let eps: Float = 1e-7
        for g in 0..<(count / groupSize) {
            let group = w + g * groupSize
            var wMin = Float.infinity, wMax = -Float.infinity
            for j in 0..<groupSize {
                let v = Float(group[j].math)
                if wMax < v { wMax = v }  // std::max / std::min semantics
                if v < wMin { wMin = v }
            }
            let mask = Swift.abs(wMin) > Swift.abs(wMax)
            var scale = (wMax - wMin) / nBins
            if scale < eps { scale = eps }
            if !mask { scale = -scale }
            let edge = mask ? wMin : wMax
            let q0 = (edge / scale).rounded(.toNearestOrEven)
            var bias: Float = 0
            if q0 != 0 {
                scale = edge / q0
                bias = edge
            }
            out[2 * g] = scale
            out[2 * g + 1] = bias
        }
    }

    /// Packs `w` into the bit stream with the float32 (scale, bias) pairs of `parameters`.
    static func pack<T: FloatElement>(
        _ w: UnsafePointer<T>, count: Int, parameters: UnsafePointer<Float>, into out: UnsafeMutablePointer<UInt32>,
        groupSize: Int, bits: Int
    ) {
        let nBins = Float((1 << bits) - 1)
        var acc: UInt64 = 0
        var filled = 0
        var next = 0
        for i in 0..<count {
            let g = i / groupSize
            let scale = parameters[2 * g], bias = parameters[2 * g + 1]
            var q = ((Float(w[i].math) - bias) / scale).rounded(.toNearestOrEven)
            q = Swift.min(Swift.max(q, 0), nBins)
            acc |= UInt64(q) << UInt64(filled)
            filled += bits
            if filled >= 32 {
                out[next] = UInt32(truncatingIfNeeded: acc)
                next += 1
                acc >>= 32
                filled -= 32
            }
        }
    }

    /// `scale * q + bias` rounded to T after the product and after the sum (MLX's order).
    static func dequantize<T: FloatElement>(
        _ words: UnsafePointer<UInt32>, scales: UnsafePointer<T>, biases: UnsafePointer<T>,
        into out: UnsafeMutablePointer<T>, count: Int, groupSize: Int, bits: Int
    ) {
        for i in 0..<count {
            let g = i / groupSize
            let q = T.Math(unpackCode(words, i, bits: bits))
            let product = T(math: scales[g].math * q)
            out[i] = T(math: product.math + biases[g].math)
        }
    }

    /// One dequantized row of `count` codes, in the compute type (no rounding to T).
    @inline(__always)
    static func dequantizeRow<T: FloatElement>(
        _ words: UnsafePointer<UInt32>, scales: UnsafePointer<T>, biases: UnsafePointer<T>,
        into row: UnsafeMutableBufferPointer<T.Math>, groupSize: Int, bits: Int
    ) {
        for g in 0..<(row.count / groupSize) {
            let s = scales[g].math, b = biases[g].math
            for j in (g * groupSize)..<((g + 1) * groupSize) {
                row[j] = s * T.Math(unpackCode(words, j, bits: bits)) + b
            }
        }
    }

    /// The reference quantized matrix product on contiguous operands (any
    /// float dtype, any bits and group size):
    /// `out[m, n] = sum_k x[m, k] * W[n, k]` (transpose: w `[n, k*bits/32]`,
    /// scales `[n, k/g]`) or `sum_k x[m, k] * W[k, n]` (w `[k, n*bits/32]`,
    /// scales `[k, n/g]`), accumulating in `T.Math`: a row of W dequantized,
    /// then dot products. The fast paths take what they support first
    /// (`QuantizedKernel.contiguousMatmul`, `matmul(x:wq:scales:biases:groupSize:bits:into:)`).
    static func referenceMatmul<T: FloatElement>(
        x: UnsafePointer<T>, w: UnsafePointer<UInt32>, scales: UnsafePointer<T>, biases: UnsafePointer<T>,
        out: UnsafeMutablePointer<T>, m: Int, n: Int, k: Int, groupSize: Int, bits: Int, transpose: Bool
    ) {
        if transpose {
            let wordsPerRow = k * bits / 32, groups = k / groupSize
            let row = UnsafeMutableBufferPointer<T.Math>.allocate(capacity: k)
            defer { row.deallocate() }
            for j in 0..<n {
                dequantizeRow(
                    w + j * wordsPerRow, scales: scales + j * groups, biases: biases + j * groups, into: row,
                    groupSize: groupSize, bits: bits)
                for i in 0..<m {
                    let xr = x + i * k
                    var acc: T.Math = 0
                    for p in 0..<k { acc += xr[p].math * row[p] }
                    out[i * n + j] = T(math: acc)
                }
            }
        } else {
            let wordsPerRow = n * bits / 32, groups = n / groupSize
            let row = UnsafeMutableBufferPointer<T.Math>.allocate(capacity: n)
            let acc = UnsafeMutableBufferPointer<T.Math>.allocate(capacity: m * n)
            defer {
                row.deallocate()
                acc.deallocate()
            }
            acc.initialize(repeating: 0)
            for p in 0..<k {
                dequantizeRow(
                    w + p * wordsPerRow, scales: scales + p * groups, biases: biases + p * groups, into: row,
                    groupSize: groupSize, bits: bits)
                for i in 0..<m {
                    let xv = x[i * k + p].math
                    let a = acc.baseAddress! + i * n
                    for j in 0..<n { a[j] += xv * row[j] }
                }
            }
            for i in 0..<(m * n) { out[i] = T(math: acc[i]) }
        }
    }
}

/// The quantization primitives, dispatched on the float type of the weights/activations.
struct QuantizedKernel: KindVisitor {
    enum Job {
        case parameters, pack, dequantize
        case matmul(transpose: Bool)
        case gatherMatmul(transpose: Bool)
    }

    let job: Job
    let groupSize: Int
    let bits: Int
    let inputs: [ArrayView]
    let output: ArrayView

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        let dst = try output.buffer.hostPointer(forWriting: true)
        switch job {
        case .parameters:
            let w = try innerContiguous(inputs[0], axes: inputs[0].shape.count)
            QuantizedKernels.parameters(
                try w.hostPointer(T.self), count: w.count, into: dst.assumingMemoryBound(to: Float.self),
                groupSize: groupSize, bits: bits)
        case .pack:
            let w = try innerContiguous(inputs[0], axes: inputs[0].shape.count)
            let p = try innerContiguous(inputs[1], axes: inputs[1].shape.count)
            QuantizedKernels.pack(
                try w.hostPointer(T.self), count: w.count, parameters: try p.hostPointer(Float.self),
                into: dst.assumingMemoryBound(to: UInt32.self), groupSize: groupSize, bits: bits)
        case .dequantize:
            let all = { (v: ArrayView) in try innerContiguous(v, axes: v.shape.count) }
            let wq = try all(inputs[0]), s = try all(inputs[1]), b = try all(inputs[2])
            QuantizedKernels.dequantize(
                try wq.hostPointer(UInt32.self), scales: try s.hostPointer(T.self), biases: try b.hostPointer(T.self),
                into: dst.assumingMemoryBound(to: T.self), count: output.count, groupSize: groupSize, bits: bits)
        case .matmul(let transpose):
            try batchedMatmul(T.self, transpose: transpose, out: dst.assumingMemoryBound(to: T.self))
        case .gatherMatmul(let transpose):
            try gatherMatmul(T.self, transpose: transpose, out: dst.assumingMemoryBound(to: T.self))
        }
    }

    /// Inputs x, w, scales, biases share the output's batch axes (stride 0 where broadcast).
    private func batchedMatmul<T: FloatElement>(_: T.Type, transpose: Bool, out: UnsafeMutablePointer<T>) throws {
        let ops = try inputs.prefix(4).map { try innerContiguous($0, axes: 2) }
        let nd = output.shape.count
        let m = output.shape[nd - 2], n = output.shape[nd - 1], k = ops[0].shape[nd - 1]
        let px = try ops[0].hostPointer(T.self), pw = try ops[1].hostPointer(UInt32.self)
        let ps = try ops[2].hostPointer(T.self), pb = try ops[3].hostPointer(T.self)
        forEachBatch(shape: Array(output.shape.prefix(nd - 2)), strides: ops.map { Array($0.strides.prefix(nd - 2)) }) {
            batch, o in
            contiguousMatmul(
                x: px + o[0], w: pw + o[1], scales: ps + o[2], biases: pb + o[3], out: out + batch * m * n, m: m,
                n: n, k: k, groupSize: groupSize, bits: bits, transpose: transpose)
        }
    }

    /// Inputs x `[Bx, M, K]`, w/scales/biases `[Bw, ...]`, lhs/rhs indices (uint32, output batch shape).
    private func gatherMatmul<T: FloatElement>(_: T.Type, transpose: Bool, out: UnsafeMutablePointer<T>) throws {
        let all = { (v: ArrayView) in try innerContiguous(v, axes: v.shape.count) }
        let x = try all(inputs[0]), w = try all(inputs[1]), s = try all(inputs[2]), b = try all(inputs[3])
        let lhs = try all(inputs[4]), rhs = try all(inputs[5])
        let m = x.shape[1], k = x.shape[2]
        let nd = output.shape.count
        let n = output.shape[nd - 1]
        let xStride = m * k, wStride = w.shape[1] * w.shape[2], gStride = s.shape[1] * s.shape[2]
        let px = try x.hostPointer(T.self), pw = try w.hostPointer(UInt32.self)
        let ps = try s.hostPointer(T.self), pb = try b.hostPointer(T.self)
        let pl = try lhs.hostPointer(UInt32.self), pr = try rhs.hostPointer(UInt32.self)
        for i in 0..<lhs.count {
            let xi = Int(pl[i]), wi = Int(pr[i])
            guard xi < x.shape[0], wi < w.shape[0] else {
                throw TesseraError.invalidData(
                    op: "gatherQuantizedMatmul",
                    reason: "index pair (\(xi), \(wi)) is out of range for \(x.shape[0]) x batches and "
                        + "\(w.shape[0]) weight batches")
            }
            contiguousMatmul(
                x: px + xi * xStride, w: pw + wi * wStride, scales: ps + wi * gStride, biases: pb + wi * gStride,
                out: out + i * m * n, m: m, n: n, k: k, groupSize: groupSize, bits: bits, transpose: transpose)
        }
    }

    /// One product on contiguous operands: the SIMD kernels for the formats
    /// they take (x·Wᵀ; x·W in float32 through dequantized tiles and the
    /// GEMM), else `QuantizedKernels.referenceMatmul`.
    private func contiguousMatmul<T: FloatElement>(
        x: UnsafePointer<T>, w: UnsafePointer<UInt32>, scales: UnsafePointer<T>, biases: UnsafePointer<T>,
        out: UnsafeMutablePointer<T>, m: Int, n: Int, k: Int, groupSize: Int, bits: Int, transpose: Bool
    ) {
        if transpose, let dt = SIMDKernels.code(T.self),
            QuantizedKernels.fastMatmulSupports(bits: bits, groupSize: groupSize)
        {
            QuantizedKernels.fastMatmul(
                dt, dt, x: UnsafeRawPointer(x), wq: w, scales: UnsafeRawPointer(scales),
                biases: UnsafeRawPointer(biases),
                out: UnsafeMutableRawPointer(out), m: m, n: n, k: k, groupSize: groupSize, bits: bits)
            return
        }
        if !transpose, T.self == Float.self,
            QuantizedKernels.untransposedMatmulSupports(bits: bits, groupSize: groupSize, n: n)
        {
            // The backward product of x·Wᵀ (dx = g·W): dequantized tiles and the float32 GEMM.
            QuantizedKernels.untransposedMatmul(
                x: UnsafeRawPointer(x), wq: w, scales: UnsafeRawPointer(scales), biases: UnsafeRawPointer(biases),
                out: UnsafeMutableRawPointer(out), m: m, n: n, k: k, groupSize: groupSize, bits: bits)
            return
        }
        QuantizedKernels.referenceMatmul(
            x: x, w: w, scales: scales, biases: biases, out: out, m: m, n: n, k: k, groupSize: groupSize, bits: bits,
            transpose: transpose)
    }

    func visitBool() throws { unsupported("quantized", .bool) }
    func visitInteger<T: IntegerElement>(_: T.Type) throws { unsupported("quantized", T.dtype) }
    func visitComplex() throws { unsupported("quantized", .complex64) }
}
