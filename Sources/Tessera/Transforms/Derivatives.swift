// Local derivatives of the element-wise primitives, shared by the vjp and
// jvp rules: both multiply by the same partial derivative, one with the
// cotangent, the other with the tangent.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A partial derivative: a tensor, or a constant that needs no multiply.
enum Partial {
    case zero
    case one
    case minusOne
    case tensor(Tensor)

    /// `self * v` (nil when the product is zero).
    func times(_ v: Tensor) -> Tensor? {
        switch self {
        case .zero: return nil
        case .one: return v
        case .minusOne: return -v
        case .tensor(let d): return d * v
        }
    }
}

/// d out / d x for a unary op, where `out` is the op's output.
func unaryDerivative(_ op: UnaryOp, x: Tensor, out: Tensor) -> Partial {
    switch op {
    case .abs: return .tensor(sign(x))
    case .negative: return .minusOne
    case .sign, .floor, .ceil, .round, .isNaN, .isInf, .isFinite, .logicalNot, .bitwiseInvert:
        return .zero
    case .square: return .tensor(x * 2)
    case .sqrt: return .tensor(0.5 / out)
    case .rsqrt: return .tensor(-0.5 * out / x)
    case .reciprocal: return .tensor(-square(out))
    case .exp: return .tensor(out)
    case .expm1: return .tensor(out + 1)
    case .log: return .tensor(reciprocal(x))
    case .log2: return .tensor(reciprocal(x * M_LN2))
    case .log10: return .tensor(reciprocal(x * M_LN10))
    case .log1p: return .tensor(reciprocal(x + 1))
    case .sin: return .tensor(cos(x))
    case .cos: return .tensor(-sin(x))
    case .tan: return .tensor(square(out) + 1)
    case .arcsin: return .tensor(rsqrt(1 - square(x)))
    case .arccos: return .tensor(-rsqrt(1 - square(x)))
    case .arctan: return .tensor(reciprocal(square(x) + 1))
    case .sinh: return .tensor(cosh(x))
    case .cosh: return .tensor(sinh(x))
    case .tanh: return .tensor(1 - square(out))
    case .arcsinh: return .tensor(rsqrt(square(x) + 1))
    case .arccosh: return .tensor(rsqrt(square(x) - 1))
    case .arctanh: return .tensor(reciprocal(1 - square(x)))
    case .sigmoid: return .tensor(out * (1 - out))
    case .erf: return .tensor(exp(-square(x)) * (2 / Double.pi.squareRoot()))
    case .erfinv: return .tensor(exp(square(out)) * (Double.pi.squareRoot() / 2))
    case .real, .conjugate: return .one
    case .imag: return .zero
    }
}

/// (d out / d x, d out / d y) for a binary op.
func binaryPartials(_ op: BinaryOp, x: Tensor, y: Tensor, out: Tensor) -> (Partial, Partial) {
    switch op {
    case .add: return (.one, .one)
    case .subtract: return (.one, .minusOne)
    case .multiply: return (.tensor(y), .tensor(x))
    case .divide: return (.tensor(reciprocal(y)), .tensor(-out / y))
    case .power:
        return (.tensor(power(x, y - 1) * y), .tensor(which(x .> 0, log(x), 0.0) * out))
    case .maximum:
        // Ties send the gradient to the second input, as MLX does.
        return (.tensor((x .> y).asType(x.dtype)), .tensor((x .<= y).asType(x.dtype)))
    case .minimum:
        return (.tensor((x .< y).asType(x.dtype)), .tensor((x .>= y).asType(x.dtype)))
    case .remainder: return (.one, .tensor(-floorDivide(x, y)))
    case .arctan2:
        let d = square(x) + square(y)
        return (.tensor(y / d), .tensor(-x / d))
    case .logAddExp: return (.tensor(sigmoid(x - y)), .tensor(sigmoid(y - x)))
    case .floorDivide, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual, .logicalAnd, .logicalOr,
        .bitwiseAnd, .bitwiseOr, .bitwiseXor, .leftShift, .rightShift:
        return (.zero, .zero)
    }
}
