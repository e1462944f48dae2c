// Primitive: the closed set of graph operations. Every backend evaluates it
// with an exhaustive switch, so adding a case makes the compiler list each
// place that must learn it (backends, and later the transforms).

/// Element-wise operations of one input.
public enum UnaryOp: String, Sendable, CaseIterable {
    case abs, negative, sign, square, sqrt, rsqrt, reciprocal
    case exp, expm1, log, log2, log10, log1p
    case sin, cos, tan, arcsin, arccos, arctan
    case sinh, cosh, tanh, arcsinh, arccosh, arctanh
    case sigmoid, erf, erfinv, floor, ceil, round
    case isNaN, isInf, isFinite, logicalNot, bitwiseInvert
    case real, imag, conjugate
}

/// Element-wise operations of two inputs (broadcast to one shape beforehand).
public enum BinaryOp: String, Sendable, CaseIterable {
    case add, subtract, multiply, divide, floorDivide, remainder, power
    case maximum, minimum
    case equal, notEqual, less, lessEqual, greater, greaterEqual
    case logicalAnd, logicalOr
    case bitwiseAnd, bitwiseOr, bitwiseXor, leftShift, rightShift
    case arctan2, logAddExp

    /// Comparisons and logical ops produce `bool` whatever their inputs.
    var producesBool: Bool {
        switch self {
        case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual, .logicalAnd, .logicalOr: return true
        default: return false
        }
    }
}

/// Reductions over a set of axes.
public enum ReduceOp: String, Sendable, CaseIterable {
    case sum, prod, max, min, all, any
}

/// Reductions to the index of the extreme value along one axis.
public enum ArgReduceOp: String, Sendable, CaseIterable {
    case argMax, argMin
}

/// The combining rule of a scatter: what an update does to the element it lands on.
public enum ScatterOp: String, Sendable, CaseIterable {
    /// Replaces the element (the last of duplicate indices wins on the CPU).
    case set
    case add, prod, max, min
}

/// What a sort primitive produces along its axis.
public enum SortOp: Sendable, Equatable {
    /// The values in ascending order (NaN last).
    case sort
    /// The indices (uint32) that sort the axis, stable.
    case argSort
    /// The values with the `kth` in its sorted place, smaller before, larger after.
    case partition(kth: Int)
    /// The indices (uint32) of `partition(kth:)`.
    case argPartition(kth: Int)
}

/// Inclusive or exclusive running reductions (`cumsum`, `cumprod`, `cummax`, `cummin`).
public enum ScanOp: String, Sendable, CaseIterable {
    case sum, prod, max, min
}

/// One node's operation. Inputs are the node's input tensors; the output
/// shape and dtype are the node's own. View primitives (`reshape` when the
/// strides allow, `transpose`, `broadcast`, `slice`) share the input buffer.
public enum Primitive: Sendable {
    /// Data supplied when the tensor was created; never computed.
    case constant
    /// `start + i * step` along the only axis, in the output dtype.
    case arange(start: Double, step: Double)
    case unary(UnaryOp)
    case binary(BinaryOp)
    /// `which(condition, a, b)`: three inputs of the output shape.
    case select
    /// Conversion of the input to the output dtype.
    case asType
    /// A reduction; the output keeps the reduced axes with size 1.
    case reduce(ReduceOp, axes: [Int])
    /// An index reduction along `axis` (kept with size 1); output `uint32`.
    case argReduce(ArgReduceOp, axis: Int)
    /// Same elements, new shape: a view when the strides allow, else a copy.
    case reshape
    /// Axis permutation: a view.
    case transpose(axes: [Int])
    /// Broadcast to the output shape: a view with zero strides.
    case broadcast
    /// A strided window: output[i] = input[start + i * stride]; a view.
    case slice(start: [Int], stride: [Int])
    /// A contiguous copy of the input.
    case copy
    /// Joins the inputs along `axis`.
    case concatenate(axis: Int)
    /// Batched matrix product of two inputs already broadcast in the batch axes.
    case matmul

    // Quantization (MLX's affine format; see Ops/Quantization.swift).

    /// Per group of `groupSize` elements along the last axis of `w` (input 0,
    /// a float type), MLX's affine (scale, bias) computed in float32: output
    /// `[..., K / groupSize, 2]` float32. The edge of the group with the larger
    /// magnitude is represented exactly; scale = (max - min) / (2^bits - 1).
    case affineQuantizeParameters(groupSize: Int, bits: Int)
    /// Packs `w` (input 0) with the float32 parameters of input 1 (from
    /// `affineQuantizeParameters`): q = clamp(rint((w - bias) / scale), 0, 2^bits - 1),
    /// element k of a row stored in bits [k*bits, (k+1)*bits) of the row's
    /// little-endian bit stream; output `[..., K * bits / 32]` uint32.
    case affineQuantizePack(groupSize: Int, bits: Int)
    /// `scales * q + biases` (inputs: packed uint32 words, scales, biases of
    /// shape `[..., K / groupSize]`), rounded to the output dtype after the
    /// product and after the sum, as MLX does. Output `[..., K]`.
    case affineDequantize(groupSize: Int, bits: Int)
    /// `x @ dequantize(w).T` (`transpose`) or `x @ dequantize(w)`; inputs x
    /// `[B..., M, K]`; w, scales, biases 2-D (one matrix every batch shares)
    /// or with batch axes that broadcast to B. Accumulates in float32 (float64 for float64 inputs).
    case quantizedMatmul(groupSize: Int, bits: Int, transpose: Bool)
    /// MLX's `gather_qmm`: inputs x `[Bx, M, K]`, w `[Bw, N, Kp]`, scales,
    /// biases `[Bw, ...]`, lhs and rhs indices (uint32, both of the output
    /// batch shape I); output `[I..., M, N]` with
    /// `out[i] = x[lhs[i]] @ dequantize(w[rhs[i]])(.T)`.
    case gatherQuantizedMatmul(groupSize: Int, bits: Int, transpose: Bool)

    // Fused ops (Ops/Fast.swift). Each has a fallback built from the
    // primitives above (`fastFallback`), so a backend may skip the fused kernel.
    // Half inputs compute in float32, float64 in float64; the output has the
    // node's dtype.

    /// exp(x - max) / sum(exp(x - max)) along the last axis.
    case softmax
    /// x - max - log(sum(exp(x - max))) along the last axis.
    case logSoftmax
    /// `x * rsqrt(mean(x², last axis) + eps) * weight`; inputs x and, if
    /// `hasWeight`, weight `[D]`.
    case rmsNorm(eps: Float, hasWeight: Bool)
    /// `(x - mean) * rsqrt(variance + eps) * weight + bias` over the last axis
    /// (biased variance); inputs x, then weight and bias `[D]` when present.
    case layerNorm(eps: Float, hasWeight: Bool, hasBias: Bool)
    /// Rotary position embedding of the first `dimensions` features of x
    /// `[..., L, D]`; row l of the second-to-last axis is position
    /// `offset + l`; angle_i = position * scale * base^(-2i/dimensions), or
    /// position * scale / freqs[i] when a second input `freqs [dimensions/2]`
    /// is given. `traditional` rotates pairs (2i, 2i+1), else (i, i + dimensions/2).
    case rope(dimensions: Int, traditional: Bool, base: Float, scale: Float, offset: Int, hasFreqs: Bool)
    /// softmax(q kᵀ * scale + mask) v with q `[B, Hq, Lq, D]`, k `[B, Hkv, Lk, D]`,
    /// v `[B, Hkv, Lk, Dv]`, Hq a multiple of Hkv (query head h reads kv head
    /// h / (Hq / Hkv)). `causal`: query i sees keys j <= i + Lk - Lq. A fourth
    /// input, broadcast to `[B, Hq, Lq, Lk]`, is a mask: bool (true keeps) or
    /// additive.
    case scaledDotProductAttention(scale: Float, causal: Bool)

    /// Random bits (MLX's `RandomBits`): input keys `[K..., 2]` uint32, output
    /// `[K..., S...]` of uint8/uint16/uint32; each key fills its block of the
    /// output bytes with threefry-2x32 words laid out as MLX does.
    case randomBits

    // Linear algebra through LAPACK (Ops/Linalg.swift): float64 in and out
    // (the op converts), batched over all axes but the last two.

    /// The inverse of each square matrix.
    case inverse
    /// X with A X = B; inputs A `[..., n, n]` and B `[..., n, m]`.
    case solve
    /// The Cholesky factor, lower (L Lᵀ = A) or upper (Uᵀ U = A); the other triangle is zero.
    case cholesky(upper: Bool)
    /// Reduced QR of `[..., m, n]`, k = min(m, n): part 0 is Q `[..., m, k]`, part 1 is R `[..., k, n]`.
    case qr(part: Int)
    /// SVD of `[..., m, n]`, k = min(m, n): part 0 is U `[..., m, m]`, part 1 is S `[..., k]`
    /// (descending), part 2 is Vᵀ `[..., n, n]`.
    case svd(part: Int)
    /// Eigen-decomposition of symmetric matrices from the lower (or `upper`)
    /// triangle: part 0 is the eigenvalues `[..., n]` ascending, part 1 the
    /// eigenvectors as columns `[..., n, n]`.
    case eigh(part: Int, upper: Bool)
    /// The input itself, as a view: marks the start of a traced function.
    case identity
    /// The input itself, as a view, through which no gradient flows.
    case stopGradient
    /// A copy of input 0 with input 1 written into the window
    /// `start + i * stride` (the window has input 1's shape).
    case sliceUpdate(start: [Int], stride: [Int])
    /// Output `index` of a function with user-given transform rules. Inputs:
    /// the function's primals, then its outputs (computed by their own graph).
    case custom(CustomRules, index: Int)
    /// Inputs `[x, index_0, ..., index_k-1]`, the indices integers of one shape B.
    /// Output shape B + `sliceSizes` (one size per axis of x):
    /// `out[b, s] = x[s + (index_j[b] on axes[j])]`. A negative index counts from
    /// the end once; indices that would still leave the slice outside x are
    /// clamped into range (no trap at run time).
    case gather(axes: [Int], sliceSizes: [Int])
    /// Inputs `[x, updates, index_0, ..., index_k-1]`, updates of shape
    /// B + slice shape (one size per axis of x). The output is x with each
    /// update slice combined by `op` at `index_j[b]` on `axes[j]`; indices are
    /// wrapped and clamped as in `gather`.
    case scatter(ScatterOp, axes: [Int])
    /// Sorting along `axis` (see `SortOp`); index outputs are uint32.
    case sort(SortOp, axis: Int)
    /// A running reduction along `axis`: inclusive (`out[i]` includes `x[i]`)
    /// or exclusive (starts from the identity), from the end when `reverse`.
    case scan(ScanOp, axis: Int, reverse: Bool, inclusive: Bool)
    /// A chain of element-wise primitives fused by `compile` into one kernel
    /// (generated C on the CPU). Inputs broadcast to the output shape; the
    /// kernel keeps its unfused program for the transforms.
    case compiled(FusedKernel)
    /// Communication with the other ranks of a group (Distributed/Collectives.swift):
    /// one input (none for `recv`), computed on the host.
    case collective(Collective)
    /// A closure run on the host over its inputs' memory (HostKernel.swift:
    /// package code's fused kernels, such as TesseraLM's batched attention step).
    case host(HostKernel)
}

extension Primitive {
    /// A short name for messages and debugging.
    public var name: String {
        switch self {
        case .constant: return "constant"
        case .arange: return "arange"
        case .unary(let op): return op.rawValue
        case .binary(let op): return op.rawValue
        case .select: return "which"
        case .asType: return "asType"
        case .reduce(let op, _): return op.rawValue
        case .argReduce(let op, _): return op.rawValue
        case .reshape: return "reshape"
        case .transpose: return "transpose"
        case .broadcast: return "broadcast"
        case .slice: return "slice"
        case .copy: return "copy"
        case .concatenate: return "concatenate"
        case .matmul: return "matmul"
        case .affineQuantizeParameters: return "affineQuantizeParameters"
        case .affineQuantizePack: return "affineQuantizePack"
        case .affineDequantize: return "dequantize"
        case .quantizedMatmul: return "quantizedMatmul"
        case .gatherQuantizedMatmul: return "gatherQuantizedMatmul"
        case .softmax: return "softmax"
        case .logSoftmax: return "logSoftmax"
        case .rmsNorm: return "rmsNorm"
        case .layerNorm: return "layerNorm"
        case .rope: return "rope"
        case .scaledDotProductAttention: return "scaledDotProductAttention"
        case .randomBits: return "randomBits"
        case .inverse: return "inv"
        case .solve: return "solve"
        case .cholesky: return "cholesky"
        case .qr: return "qr"
        case .svd: return "svd"
        case .eigh: return "eigh"
        case .identity: return "identity"
        case .stopGradient: return "stopGradient"
        case .sliceUpdate: return "sliceUpdate"
        case .custom: return "custom"
        case .gather: return "gather"
        case .scatter(let op, _): return op == .set ? "scatter" : "scatter_\(op.rawValue)"
        case .sort(let op, _):
            switch op {
            case .sort: return "sort"
            case .argSort: return "argSort"
            case .partition: return "partition"
            case .argPartition: return "argPartition"
            }
        case .scan(let op, _, _, _): return "cum\(op.rawValue)"
        case .compiled: return "compiled"
        case .collective(let c): return c.name
        case .host(let kernel): return kernel.name
        }
    }
}
