// CPU element-wise binary kernels. Inputs share one dtype and the output
// shape (broadcast axes have stride 0); comparisons and logical ops write
// bool, the rest write the input dtype. Integer arithmetic wraps like C;
// integer division by zero gives 0 instead of trapping.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct BinaryKernel: KindVisitor {
    let op: BinaryOp
    let a: ArrayView
    let b: ArrayView
    let output: ArrayView

    private func run<T, Out>(_ f: (T, T) -> Out) throws { try zipElements(a, b, into: output, f) }

    /// Comparisons and logical ops, for any Comparable element.
    private func compare<T: Comparable>(_: T.Type, isZero: @escaping (T) -> Bool) throws -> Bool {
        switch op {
        case .equal: try run { (x: T, y: T) in x == y }
        case .notEqual: try run { (x: T, y: T) in x != y }
        case .less: try run { (x: T, y: T) in x < y }
        case .lessEqual: try run { (x: T, y: T) in x <= y }
        case .greater: try run { (x: T, y: T) in x > y }
        case .greaterEqual: try run { (x: T, y: T) in x >= y }
        case .logicalAnd: try run { (x: T, y: T) in !isZero(x) && !isZero(y) }
        case .logicalOr: try run { (x: T, y: T) in !isZero(x) || !isZero(y) }
        default: return false
        }
        return true
    }

    func visitBool() throws {
        if try compare(UInt8.self, isZero: { $0 == 0 }) { return }
        switch op {
        case .add, .maximum, .bitwiseOr: try run { (x: Bool, y: Bool) in x || y }
        case .multiply, .minimum, .bitwiseAnd: try run { (x: Bool, y: Bool) in x && y }
        case .bitwiseXor, .subtract: try run { (x: Bool, y: Bool) in x != y }
        default: unsupported(op.rawValue, .bool)
        }
    }

    func visitInteger<T: IntegerElement>(_: T.Type) throws {
        if try compare(T.self, isZero: { $0 == 0 }) { return }
        switch op {
        case .add: try run { (x: T, y: T) in x &+ y }
        case .subtract: try run { (x: T, y: T) in x &- y }
        case .multiply: try run { (x: T, y: T) in x &* y }
        case .floorDivide: try run(integerFloorDivide as (T, T) -> T)
        case .remainder: try run(integerRemainder as (T, T) -> T)
        case .power: try run(integerPower as (T, T) -> T)
        case .maximum: try run { (x: T, y: T) in Swift.max(x, y) }
        case .minimum: try run { (x: T, y: T) in Swift.min(x, y) }
        case .bitwiseAnd: try run { (x: T, y: T) in x & y }
        case .bitwiseOr: try run { (x: T, y: T) in x | y }
        case .bitwiseXor: try run { (x: T, y: T) in x ^ y }
        case .leftShift: try run { (x: T, y: T) in x << y }
        case .rightShift: try run { (x: T, y: T) in x >> y }
        default: unsupported(op.rawValue, T.dtype)
        }
    }

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        if try SIMDKernels.binary(op, a, b, output) { return }
        typealias M = T.Math
        switch op {
        case .equal: try run { (x: T, y: T) in x.math == y.math }
        case .notEqual: try run { (x: T, y: T) in x.math != y.math }
        case .less: try run { (x: T, y: T) in x.math < y.math }
        case .lessEqual: try run { (x: T, y: T) in x.math <= y.math }
        case .greater: try run { (x: T, y: T) in x.math > y.math }
        case .greaterEqual: try run { (x: T, y: T) in x.math >= y.math }
        case .logicalAnd: try run { (x: T, y: T) in x.math != 0 && y.math != 0 }
        case .logicalOr: try run { (x: T, y: T) in x.math != 0 || y.math != 0 }
        default:
            let f = floatBinaryFunction(op, M.self)
            try run { (x: T, y: T) in T(math: f(x.math, y.math)) }
        }
    }

    func visitComplex() throws {
        typealias C = Complex64
        switch op {
        case .add: try run { (x: C, y: C) in x + y }
        case .subtract: try run { (x: C, y: C) in x - y }
        case .multiply: try run { (x: C, y: C) in x * y }
        case .divide: try run { (x: C, y: C) in x / y }
        case .power:
            try run { (x: C, y: C) -> C in
                if x.real == 0 && x.imaginary == 0 {
                    return y.real == 0 && y.imaginary == 0 ? C(1, 0) : C(0, 0)
                }
                return ComplexD.exp(ComplexD(y) * ComplexD.log(ComplexD(x))).complex64
            }
        case .equal: try run { (x: C, y: C) in x == y }
        case .notEqual: try run { (x: C, y: C) in x != y }
        case .logicalAnd: try run { (x: C, y: C) in x != C(0, 0) && y != C(0, 0) }
        case .logicalOr: try run { (x: C, y: C) in x != C(0, 0) || y != C(0, 0) }
        default: unsupported(op.rawValue, .complex64)
        }
    }
}

/// The real function of a floating-point binary op (not the comparisons).
func floatBinaryFunction<F: MathFloat>(_ op: BinaryOp, _: F.Type) -> (F, F) -> F {
    switch op {
    case .add: return { $0 + $1 }
    case .subtract: return { $0 - $1 }
    case .multiply: return { $0 * $1 }
    case .divide: return { $0 / $1 }
    case .floorDivide: return { ($0 / $1).rounded(.down) }
    case .remainder:
        return { x, y in
            // Python/numpy semantics: the result takes the divisor's sign.
            var r = F.fmod(x, y)
            if r != 0 && ((r < 0) != (y < 0)) { r += y }
            return r
        }
    case .power: return F.pow
    case .maximum: return { x, y in x.isNaN || y.isNaN ? F.nan : Swift.max(x, y) }
    case .minimum: return { x, y in x.isNaN || y.isNaN ? F.nan : Swift.min(x, y) }
    case .arctan2: return F.atan2
    case .logAddExp:
        return { x, y in
            if x == y && x.isInfinite { return x }  // x - y would be NaN
            let m = Swift.max(x, y)
            if m.isNaN { return F.nan }
            return m + F.log1p(F.exp(-Swift.abs(x - y)))
        }
    case .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual, .logicalAnd, .logicalOr,
        .bitwiseAnd, .bitwiseOr, .bitwiseXor, .leftShift, .rightShift:
        fatalError("[\(op.rawValue)] has no floating-point function")
    }
}

func integerFloorDivide<T: FixedWidthInteger>(_ x: T, _ y: T) -> T {
    if y == 0 { return 0 }
    let (q, overflow) = x.dividedReportingOverflow(by: y)
    if overflow { return q }
    return (x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q
}

func integerRemainder<T: FixedWidthInteger>(_ x: T, _ y: T) -> T {
    if y == 0 { return 0 }
    let (r, overflow) = x.remainderReportingOverflow(dividingBy: y)
    if overflow { return 0 }
    return r != 0 && ((r < 0) != (y < 0)) ? r &+ y : r
}

/// x**y by squaring, wrapping; a negative exponent gives 0 (1 for x = 1, ±1 for x = -1).
func integerPower<T: FixedWidthInteger>(_ x: T, _ y: T) -> T {
    if y < 0 {
        if x == 1 { return 1 }
        if T.isSigned && x == 0 &- 1 { return y & 1 == 0 ? 1 : x }
        return 0
    }
    var result: T = 1, base = x, e = y
    while e > 0 {
        if e & 1 == 1 { result = result &* base }
        base = base &* base
        e >>= 1
    }
    return result
}
