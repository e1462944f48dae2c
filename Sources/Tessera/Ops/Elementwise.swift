// Element-wise ops: unary math as free functions (`exp(x)`), binary ops as
// free functions plus Swift operators (comparisons as `.==`, `.<` ...),
// `which`, `clip` and `asType`.

// MARK: - Unary

/// Ops that compute in floating point: integer and bool inputs become float32.
private let floatingUnaryOps: Set<UnaryOp> = [
    .sqrt, .rsqrt, .reciprocal, .exp, .expm1, .log, .log2, .log10, .log1p, .sin, .cos, .tan,
    .arcsin, .arccos, .arctan, .sinh, .cosh, .tanh, .arcsinh, .arccosh, .arctanh, .sigmoid, .erf, .erfinv
]
private let complexUnaryOps: Set<UnaryOp> = [
    .abs, .negative, .sign, .square, .sqrt, .reciprocal, .exp, .log, .sin, .cos, .sinh, .cosh,
    .isNaN, .isInf, .isFinite, .logicalNot, .real, .imag, .conjugate
]

package func unary(_ op: UnaryOp, _ x: Tensor) -> Tensor {
    var input = x
    let outDType: DType
    if x.dtype == .complex64 {
        opPrecondition(complexUnaryOps.contains(op), op.rawValue, "not supported for complex64 (shape \(x.shape))")
    }
    switch op {
    case .isNaN, .isInf, .isFinite, .logicalNot:
        outDType = .bool
    case .abs, .real, .imag:
        outDType = x.dtype == .complex64 ? .float32 : x.dtype
    case .bitwiseInvert:
        opPrecondition(
            x.dtype.isInteger || x.dtype == .bool, op.rawValue, "needs an integer or bool input, got \(x.dtype)")
        outDType = x.dtype
    case .negative:
        opPrecondition(x.dtype != .bool, op.rawValue, "not supported for bool (use logicalNot)")
        outDType = x.dtype
    default:
        if floatingUnaryOps.contains(op) && !x.dtype.isInexact { input = x.asType(.float32) }
        outDType = input.dtype
    }
    return Tensor(shape: x.shape, dtype: outDType, primitive: .unary(op), inputs: [input])
}

public func abs(_ x: Tensor) -> Tensor { unary(.abs, x) }
public func negative(_ x: Tensor) -> Tensor { unary(.negative, x) }
public func sign(_ x: Tensor) -> Tensor { unary(.sign, x) }
public func square(_ x: Tensor) -> Tensor { unary(.square, x) }
public func sqrt(_ x: Tensor) -> Tensor { unary(.sqrt, x) }
public func rsqrt(_ x: Tensor) -> Tensor { unary(.rsqrt, x) }
public func reciprocal(_ x: Tensor) -> Tensor { unary(.reciprocal, x) }
public func exp(_ x: Tensor) -> Tensor { unary(.exp, x) }
public func expm1(_ x: Tensor) -> Tensor { unary(.expm1, x) }
public func log(_ x: Tensor) -> Tensor { unary(.log, x) }
public func log2(_ x: Tensor) -> Tensor { unary(.log2, x) }
public func log10(_ x: Tensor) -> Tensor { unary(.log10, x) }
public func log1p(_ x: Tensor) -> Tensor { unary(.log1p, x) }
public func sin(_ x: Tensor) -> Tensor { unary(.sin, x) }
public func cos(_ x: Tensor) -> Tensor { unary(.cos, x) }
public func tan(_ x: Tensor) -> Tensor { unary(.tan, x) }
public func arcsin(_ x: Tensor) -> Tensor { unary(.arcsin, x) }
public func arccos(_ x: Tensor) -> Tensor { unary(.arccos, x) }
public func arctan(_ x: Tensor) -> Tensor { unary(.arctan, x) }
public func sinh(_ x: Tensor) -> Tensor { unary(.sinh, x) }
public func cosh(_ x: Tensor) -> Tensor { unary(.cosh, x) }
public func tanh(_ x: Tensor) -> Tensor { unary(.tanh, x) }
public func arcsinh(_ x: Tensor) -> Tensor { unary(.arcsinh, x) }
public func arccosh(_ x: Tensor) -> Tensor { unary(.arccosh, x) }
public func arctanh(_ x: Tensor) -> Tensor { unary(.arctanh, x) }
public func sigmoid(_ x: Tensor) -> Tensor { unary(.sigmoid, x) }
public func erf(_ x: Tensor) -> Tensor { unary(.erf, x) }
public func erfinv(_ x: Tensor) -> Tensor { unary(.erfinv, x) }
public func floor(_ x: Tensor) -> Tensor { unary(.floor, x) }
public func ceil(_ x: Tensor) -> Tensor { unary(.ceil, x) }
/// Rounds half to even, as numpy and MLX do.
public func round(_ x: Tensor) -> Tensor { unary(.round, x) }
public func isNaN(_ x: Tensor) -> Tensor { unary(.isNaN, x) }
public func isInf(_ x: Tensor) -> Tensor { unary(.isInf, x) }
public func isFinite(_ x: Tensor) -> Tensor { unary(.isFinite, x) }
public func logicalNot(_ x: Tensor) -> Tensor { unary(.logicalNot, x) }
public func bitwiseInvert(_ x: Tensor) -> Tensor { unary(.bitwiseInvert, x) }
/// The real part (complex64 → float32); a real tensor is returned as is.
public func real(_ x: Tensor) -> Tensor { x.dtype == .complex64 ? unary(.real, x) : x }
/// The imaginary part (complex64 → float32); zeros for a real tensor.
public func imag(_ x: Tensor) -> Tensor { unary(.imag, x) }
public func conjugate(_ x: Tensor) -> Tensor { x.dtype == .complex64 ? unary(.conjugate, x) : x }

// MARK: - Binary

/// The broadcast shape of two shapes (numpy rules); traps naming `op` if none.
func broadcastShapes(_ a: [Int], _ b: [Int], _ op: String) -> [Int] {
    let n = max(a.count, b.count)
    return (0..<n).map { i -> Int in
        let x = i < n - a.count ? 1 : a[i - (n - a.count)]
        let y = i < n - b.count ? 1 : b[i - (n - b.count)]
        opPrecondition(
            x == y || x == 1 || y == 1, op, "shapes \(a) and \(b) cannot be broadcast together")
        return x == 1 ? y : x
    }
}

package func binary(_ op: BinaryOp, _ a: some TensorOperand, _ b: some TensorOperand) -> Tensor {
    var (x, y, dtype) = promotedPair(a, b)
    let name = op.rawValue
    switch op {
    case .divide, .arctan2, .logAddExp:
        if !dtype.isInexact { dtype = .float32 }
        opPrecondition(!(dtype == .complex64 && op != .divide), name, "not supported for complex64")
    case .floorDivide, .remainder, .maximum, .minimum, .less, .lessEqual, .greater, .greaterEqual:
        opPrecondition(dtype != .complex64, name, "not supported for complex64")
        opPrecondition(
            dtype != .bool || [.maximum, .minimum, .less, .lessEqual, .greater, .greaterEqual].contains(op),
            name, "not supported for bool")
    case .power:
        opPrecondition(dtype != .bool, name, "not supported for bool")
    case .bitwiseAnd, .bitwiseOr, .bitwiseXor:
        opPrecondition(dtype.isInteger || dtype == .bool, name, "needs integer or bool inputs, got \(dtype)")
    case .leftShift, .rightShift:
        opPrecondition(dtype.isInteger, name, "needs integer inputs, got \(dtype)")
    case .add, .subtract, .multiply, .equal, .notEqual, .logicalAnd, .logicalOr:
        break
    }
    x = x.asType(dtype)
    y = y.asType(dtype)
    let shape = broadcastShapes(x.shape, y.shape, name)
    return Tensor(
        shape: shape, dtype: op.producesBool ? .bool : dtype, primitive: .binary(op),
        inputs: [x.broadcast(to: shape), y.broadcast(to: shape)])
}

public func add(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.add, a, b) }
public func subtract(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.subtract, a, b) }
public func multiply(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.multiply, a, b) }
/// True division: integer inputs give float32.
public func divide(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.divide, a, b) }
/// Division rounded toward negative infinity (integer division by zero gives 0).
public func floorDivide(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.floorDivide, a, b) }
/// The remainder with the divisor's sign, as Python's `%`.
public func remainder(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.remainder, a, b) }
public func power(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.power, a, b) }
public func maximum(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.maximum, a, b) }
public func minimum(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.minimum, a, b) }
public func equal(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.equal, a, b) }
public func notEqual(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.notEqual, a, b) }
public func less(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.less, a, b) }
public func lessEqual(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.lessEqual, a, b) }
public func greater(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.greater, a, b) }
public func greaterEqual(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.greaterEqual, a, b) }
public func logicalAnd(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.logicalAnd, a, b) }
public func logicalOr(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.logicalOr, a, b) }
public func bitwiseAnd(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.bitwiseAnd, a, b) }
public func bitwiseOr(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.bitwiseOr, a, b) }
public func bitwiseXor(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.bitwiseXor, a, b) }
public func leftShift(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.leftShift, a, b) }
public func rightShift(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.rightShift, a, b) }
public func arctan2(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.arctan2, a, b) }
/// log(exp(a) + exp(b)), computed without overflow.
public func logAddExp(_ a: some TensorOperand, _ b: some TensorOperand) -> Tensor { binary(.logAddExp, a, b) }

// MARK: - Operators

infix operator .== : ComparisonPrecedence
infix operator .!= : ComparisonPrecedence
infix operator .< : ComparisonPrecedence
infix operator .<= : ComparisonPrecedence
infix operator .> : ComparisonPrecedence
infix operator .>= : ComparisonPrecedence
infix operator .&& : LogicalConjunctionPrecedence
infix operator .|| : LogicalDisjunctionPrecedence

extension Tensor {
    public static func + (a: Tensor, b: some TensorOperand) -> Tensor { add(a, b) }
    public static func + (a: some TensorOperand, b: Tensor) -> Tensor { add(a, b) }
    public static func + (a: Tensor, b: Tensor) -> Tensor { add(a, b) }
    public static func - (a: Tensor, b: some TensorOperand) -> Tensor { subtract(a, b) }
    public static func - (a: some TensorOperand, b: Tensor) -> Tensor { subtract(a, b) }
    public static func - (a: Tensor, b: Tensor) -> Tensor { subtract(a, b) }
    public static func * (a: Tensor, b: some TensorOperand) -> Tensor { multiply(a, b) }
    public static func * (a: some TensorOperand, b: Tensor) -> Tensor { multiply(a, b) }
    public static func * (a: Tensor, b: Tensor) -> Tensor { multiply(a, b) }
    public static func / (a: Tensor, b: some TensorOperand) -> Tensor { divide(a, b) }
    public static func / (a: some TensorOperand, b: Tensor) -> Tensor { divide(a, b) }
    public static func / (a: Tensor, b: Tensor) -> Tensor { divide(a, b) }
    public static func % (a: Tensor, b: some TensorOperand) -> Tensor { remainder(a, b) }
    public static func % (a: some TensorOperand, b: Tensor) -> Tensor { remainder(a, b) }
    public static func % (a: Tensor, b: Tensor) -> Tensor { remainder(a, b) }
    public static prefix func - (a: Tensor) -> Tensor { negative(a) }
    public static prefix func ~ (a: Tensor) -> Tensor { bitwiseInvert(a) }
    public static prefix func ! (a: Tensor) -> Tensor { logicalNot(a) }
    public static func & (a: Tensor, b: some TensorOperand) -> Tensor { bitwiseAnd(a, b) }
    public static func | (a: Tensor, b: some TensorOperand) -> Tensor { bitwiseOr(a, b) }
    public static func ^ (a: Tensor, b: some TensorOperand) -> Tensor { bitwiseXor(a, b) }
    public static func << (a: Tensor, b: some TensorOperand) -> Tensor { leftShift(a, b) }
    public static func >> (a: Tensor, b: some TensorOperand) -> Tensor { rightShift(a, b) }

    public static func .== (a: Tensor, b: some TensorOperand) -> Tensor { equal(a, b) }
    public static func .== (a: some TensorOperand, b: Tensor) -> Tensor { equal(a, b) }
    public static func .== (a: Tensor, b: Tensor) -> Tensor { equal(a, b) }
    public static func .!= (a: Tensor, b: some TensorOperand) -> Tensor { notEqual(a, b) }
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { notEqual(a, b) }
    public static func .< (a: Tensor, b: some TensorOperand) -> Tensor { less(a, b) }
    public static func .< (a: some TensorOperand, b: Tensor) -> Tensor { less(a, b) }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { less(a, b) }
    public static func .<= (a: Tensor, b: some TensorOperand) -> Tensor { lessEqual(a, b) }
    public static func .<= (a: some TensorOperand, b: Tensor) -> Tensor { lessEqual(a, b) }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { lessEqual(a, b) }
    public static func .> (a: Tensor, b: some TensorOperand) -> Tensor { greater(a, b) }
    public static func .> (a: some TensorOperand, b: Tensor) -> Tensor { greater(a, b) }
    public static func .> (a: Tensor, b: Tensor) -> Tensor { greater(a, b) }
    public static func .>= (a: Tensor, b: some TensorOperand) -> Tensor { greaterEqual(a, b) }
    public static func .>= (a: some TensorOperand, b: Tensor) -> Tensor { greaterEqual(a, b) }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { greaterEqual(a, b) }
    public static func .&& (a: Tensor, b: some TensorOperand) -> Tensor { logicalAnd(a, b) }
    public static func .|| (a: Tensor, b: some TensorOperand) -> Tensor { logicalOr(a, b) }
}

// MARK: - Select, clip, conversion

/// Picks `a` where `condition` is true and `b` elsewhere, broadcasting all three.
public func which(_ condition: Tensor, _ a: some TensorOperand, _ b: some TensorOperand) -> Tensor {
    let (x, y, _) = promotedPair(a, b)
    let cond = condition.asType(.bool)
    let shape = broadcastShapes(broadcastShapes(cond.shape, x.shape, "which"), y.shape, "which")
    return Tensor(
        shape: shape, dtype: x.dtype, primitive: .select,
        inputs: [cond.broadcast(to: shape), x.broadcast(to: shape), y.broadcast(to: shape)])
}

extension Tensor {
    /// The values limited to `[min, max]` (either bound may be omitted).
    public func clip(min lower: (any TensorOperand)? = nil, max upper: (any TensorOperand)? = nil) -> Tensor {
        opPrecondition(lower != nil || upper != nil, "clip", "needs a lower or an upper bound")
        var result = self
        if let lower { result = maximum(result, lower) }
        if let upper { result = minimum(result, upper) }
        return result
    }

    /// The values converted to `dtype` (C-style: floats truncate toward zero
    /// into integers, integers wrap; NaN becomes 0 in integers).
    public func asType(_ dtype: DType) -> Tensor {
        if dtype == self.dtype { return self }
        return Tensor(shape: shape, dtype: dtype, primitive: .asType, inputs: [self])
    }
}
