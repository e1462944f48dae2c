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
        }
    }
}
