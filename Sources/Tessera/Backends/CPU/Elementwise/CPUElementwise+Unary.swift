// CPU element-wise unary kernels. The op layer has already chosen the output
// dtype (integers promoted to float32 for transcendental ops; bool for the
// predicates; float32 for abs/real/imag of complex64).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct UnaryKernel: KindVisitor {
    let op: UnaryOp
    let input: ArrayView
    let output: ArrayView

    func visitBool() throws {
        switch op {
        case .logicalNot, .bitwiseInvert: try mapElements(input, into: output) { (x: Bool) in !x }
        case .abs, .sign, .square, .floor, .ceil, .round, .real, .conjugate:
            try mapElements(input, into: output) { (x: Bool) in x }
        case .isNaN, .isInf, .imag: try mapElements(input, into: output) { (_: Bool) in false }
        case .isFinite: try mapElements(input, into: output) { (_: Bool) in true }
        default: unsupported(op.rawValue, .bool)
        }
    }

    func visitInteger<T: IntegerElement>(_: T.Type) throws {
        switch op {
        case .abs: try mapElements(input, into: output) { (x: T) in x < 0 ? 0 &- x : x }
        case .negative: try mapElements(input, into: output) { (x: T) in 0 &- x }
        case .sign: try mapElements(input, into: output) { (x: T) -> T in x > 0 ? 1 : (x < 0 ? 0 &- 1 : 0) }
        case .square: try mapElements(input, into: output) { (x: T) in x &* x }
        case .floor, .ceil, .round, .real, .conjugate: try mapElements(input, into: output) { (x: T) in x }
        case .imag: try mapElements(input, into: output) { (_: T) -> T in 0 }
        case .bitwiseInvert: try mapElements(input, into: output) { (x: T) in ~x }
        case .logicalNot: try mapElements(input, into: output) { (x: T) in x == 0 }
        case .isNaN, .isInf: try mapElements(input, into: output) { (_: T) in false }
        case .isFinite: try mapElements(input, into: output) { (_: T) in true }
        default: unsupported(op.rawValue, T.dtype)
        }
    }

    func visitFloat<T: FloatElement>(_: T.Type) throws {
        if try SIMDKernels.unary(op, input, output) { return }
        switch op {
        case .isNaN: try mapElements(input, into: output) { (x: T) in x.math.isNaN }
        case .isInf: try mapElements(input, into: output) { (x: T) in x.math.isInfinite }
        case .isFinite: try mapElements(input, into: output) { (x: T) in x.math.isFinite }
        case .logicalNot: try mapElements(input, into: output) { (x: T) in x.math == 0 }
        case .real, .conjugate: try mapElements(input, into: output) { (x: T) in x }
        case .imag: try mapElements(input, into: output) { (_: T) in T(math: 0) }
        case .bitwiseInvert: unsupported(op.rawValue, T.dtype)
        default:
            let f = floatFunction(op, T.Math.self)
            try mapElements(input, into: output) { (x: T) in T(math: f(x.math)) }
        }
    }

    func visitComplex() throws {
        typealias C = Complex64
        switch op {
        case .abs: try mapElements(input, into: output) { (z: C) in Float(hypot(Double(z.real), Double(z.imaginary))) }
        case .real: try mapElements(input, into: output) { (z: C) in z.real }
        case .imag: try mapElements(input, into: output) { (z: C) in z.imaginary }
        case .isNaN: try mapElements(input, into: output) { (z: C) in z.real.isNaN || z.imaginary.isNaN }
        case .isInf: try mapElements(input, into: output) { (z: C) in z.real.isInfinite || z.imaginary.isInfinite }
        case .isFinite: try mapElements(input, into: output) { (z: C) in z.real.isFinite && z.imaginary.isFinite }
        case .logicalNot: try mapElements(input, into: output) { (z: C) in z.real == 0 && z.imaginary == 0 }
        default:
            guard let f = complexFunction(op) else { unsupported(op.rawValue, .complex64) }
            try mapElements(input, into: output) { (z: C) in f(ComplexD(z)).complex64 }
        }
    }
}

/// The real function of a floating-point unary op.
func floatFunction<F: MathFloat>(_ op: UnaryOp, _: F.Type) -> (F) -> F {
    switch op {
    case .abs: return { Swift.abs($0) }
    case .negative: return { -$0 }
    case .sign: return { $0 > 0 ? 1 : ($0 < 0 ? -1 : ($0 == 0 ? $0 : 0)) }  // keeps ±0; NaN gives 0 (MLX, torch)
    case .square: return { $0 * $0 }
    case .sqrt: return { $0.squareRoot() }
    case .rsqrt: return { 1 / $0.squareRoot() }
    case .reciprocal: return { 1 / $0 }
    case .exp: return F.exp
    case .expm1: return F.expm1
    case .log: return F.log
    case .log2: return F.log2
    case .log10: return F.log10
    case .log1p: return F.log1p
    case .sin: return F.sin
    case .cos: return F.cos
    case .tan: return F.tan
    case .arcsin: return F.asin
    case .arccos: return F.acos
    case .arctan: return F.atan
    case .sinh: return F.sinh
    case .cosh: return F.cosh
    case .tanh: return F.tanh
    case .arcsinh: return F.asinh
    case .arccosh: return F.acosh
    case .arctanh: return F.atanh
    case .sigmoid:
        return { x in
            if x >= 0 { return 1 / (1 + F.exp(-x)) }
            let e = F.exp(x)
            return e / (1 + e)
        }
    case .erf: return F.erf
    // float32 (and the half types, which compute in it) use MLX's erfinv, so
    // Random.normal draws MLX's bits; float64 stays precise.
    case .erfinv: return { F.self == Float.self ? F(MLXMath.erfinv(Float($0))) : F(inverseErf(Double($0))) }
    case .floor: return { $0.rounded(.down) }
    case .ceil: return { $0.rounded(.up) }
    case .round: return { $0.rounded(.toNearestOrEven) }
    case .isNaN, .isInf, .isFinite, .logicalNot, .bitwiseInvert, .real, .imag, .conjugate:
        fatalError("[\(op.rawValue)] is not a real-valued function")
    }
}

/// erf⁻¹(y): a rational first guess refined by Newton steps on erf (in double).
func inverseErf(_ y: Double) -> Double {
    if y.isNaN || y < -1 || y > 1 { return .nan }
    if y == 1 { return .infinity }
    if y == -1 { return -.infinity }
    // Initial guess (Winitzki's approximation, a = 0.147), within ~2e-3.
    let a = 0.147
    let l = Glibc.log(1 - y * y)
    let t = 2 / (Double.pi * a) + l / 2
    var x = (y < 0 ? -1.0 : 1.0) * ((t * t - l / a).squareRoot() - t).squareRoot()
    let twoOverSqrtPi = 2 / Double.pi.squareRoot()
    for _ in 0..<4 {
        let err = Glibc.erf(x) - y
        let slope = twoOverSqrtPi * Glibc.exp(-x * x)
        if slope == 0 { break }
        x -= err / slope
    }
    return x
}

/// A complex number in double precision, for computing complex64 functions.
struct ComplexD {
    var re: Double
    var im: Double

    init(_ re: Double, _ im: Double) {
        self.re = re
        self.im = im
    }
    init(_ z: Complex64) { self.init(Double(z.real), Double(z.imaginary)) }

    var complex64: Complex64 { Complex64(Float(re), Float(im)) }
    var magnitude: Double { hypot(re, im) }

    static func * (a: ComplexD, b: ComplexD) -> ComplexD {
        ComplexD(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re)
    }
    static func exp(_ z: ComplexD) -> ComplexD {
        let m = Glibc.exp(z.re)
        return ComplexD(m * Glibc.cos(z.im), m * Glibc.sin(z.im))
    }
    static func log(_ z: ComplexD) -> ComplexD { ComplexD(Glibc.log(z.magnitude), atan2(z.im, z.re)) }
}

/// The complex function of a unary op, where complex64 supports it.
func complexFunction(_ op: UnaryOp) -> ((ComplexD) -> ComplexD)? {
    typealias Z = ComplexD
    switch op {
    case .negative: return { Z(-$0.re, -$0.im) }
    case .conjugate: return { Z($0.re, -$0.im) }
    case .square: return { $0 * $0 }
    case .sign:
        return { z in
            let m = z.magnitude
            return m == 0 ? Z(0, 0) : Z(z.re / m, z.im / m)
        }
    case .reciprocal:
        return { z in
            let d = z.re * z.re + z.im * z.im
            return Z(z.re / d, -z.im / d)
        }
    case .exp: return Z.exp
    case .log: return Z.log
    case .sqrt:
        return { z in
            // Principal root, stable form.
            let m = z.magnitude
            let r = ((m + Swift.abs(z.re)) / 2).squareRoot()
            if r == 0 { return Z(0, z.im) }
            return z.re >= 0
                ? Z(r, z.im / (2 * r))
                : Z(Swift.abs(z.im) / (2 * r), z.im < 0 || (z.im == 0 && z.im.sign == .minus) ? -r : r)
        }
    case .sin: return { Z(Glibc.sin($0.re) * Glibc.cosh($0.im), Glibc.cos($0.re) * Glibc.sinh($0.im)) }
    case .cos: return { Z(Glibc.cos($0.re) * Glibc.cosh($0.im), -Glibc.sin($0.re) * Glibc.sinh($0.im)) }
    case .sinh: return { Z(Glibc.sinh($0.re) * Glibc.cos($0.im), Glibc.cosh($0.re) * Glibc.sin($0.im)) }
    case .cosh: return { Z(Glibc.cosh($0.re) * Glibc.cos($0.im), Glibc.sinh($0.re) * Glibc.sin($0.im)) }
    default: return nil
    }
}
