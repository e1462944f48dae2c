// Operands of binary ops: tensors, and Swift scalars that are "weak" in type
// promotion as in MLX (`x * 2.0` keeps x's float16; `intArray * 2.0` gives float32).

/// A tensor or a Swift scalar that can stand in for one in an op.
public protocol TensorOperand: Sendable {
    var tensorOperand: Operand { get }
}

/// A tensor, or a scalar whose dtype is decided by the other operand.
public enum Operand: Sendable {
    case tensor(Tensor)
    case weakInteger(Int64)
    case weakFloat(Double)
    case bool(Bool)

    /// The dtype this scalar takes beside a tensor of `other` (MLX's weak rules).
    func dtype(beside other: DType?) -> DType {
        switch self {
        case .tensor(let t): return t.dtype
        case .bool: return .bool
        case .weakInteger: return other.map { $0 == .bool ? .int32 : $0 } ?? .int32
        case .weakFloat: return other.map { $0.isInexact ? $0 : .float32 } ?? .float32
        }
    }

    /// As a tensor, taking its dtype from `other` when weak.
    func resolved(against other: DType?) -> Tensor {
        switch self {
        case .tensor(let t): return t
        case .bool(let b): return Tensor(b)
        case .weakInteger(let v): return scalarTensor(.signed(v), dtype(beside: other))
        case .weakFloat(let v): return scalarTensor(.real(v), dtype(beside: other))
        }
    }
}

private func scalarTensor(_ value: WideScalar, _ dtype: DType) -> Tensor {
    struct Make: ElementVisitor {
        let value: WideScalar
        func visit<T: TensorElement>(_: T.Type) -> Tensor { Tensor(T(wide: value)) }
    }
    return try! dispatchElement(dtype, Make(value: value))
}

extension Tensor: TensorOperand {
    public var tensorOperand: Operand { .tensor(self) }
}
extension Int: TensorOperand {
    public var tensorOperand: Operand { .weakInteger(Int64(self)) }
}
extension Int32: TensorOperand {
    public var tensorOperand: Operand { .weakInteger(Int64(self)) }
}
extension Int64: TensorOperand {
    public var tensorOperand: Operand { .weakInteger(self) }
}
extension Double: TensorOperand {
    public var tensorOperand: Operand { .weakFloat(self) }
}
extension Float: TensorOperand {
    public var tensorOperand: Operand { .weakFloat(Double(self)) }
}
extension Float16: TensorOperand {
    public var tensorOperand: Operand { .weakFloat(Double(self)) }
}
extension Bool: TensorOperand {
    public var tensorOperand: Operand { .bool(self) }
}

/// Both operands as tensors of their common dtype (MLX promotion with weak scalars).
func promotedPair(_ a: some TensorOperand, _ b: some TensorOperand) -> (Tensor, Tensor, DType) {
    let oa = a.tensorOperand, ob = b.tensorOperand
    var ta: Tensor, tb: Tensor
    switch (oa, ob) {
    case (.tensor(let x), _):
        ta = x
        tb = ob.resolved(against: x.dtype)
    case (_, .tensor(let y)):
        tb = y
        ta = oa.resolved(against: y.dtype)
    default:
        ta = oa.resolved(against: nil)
        tb = ob.resolved(against: nil)
    }
    let dtype = promoteTypes(ta.dtype, tb.dtype)
    return (ta.asType(dtype), tb.asType(dtype), dtype)
}
