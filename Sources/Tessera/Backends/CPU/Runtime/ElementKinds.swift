// Element kinds for CPU kernels: protocols that group the Swift element types
// by what arithmetic they support, and a visitor that turns a run-time DType
// into a call of a generic function specialised for the matching Swift type.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Float and Double: the two types floating-point kernels compute in.
protocol MathFloat: BinaryFloatingPoint, TensorElement {
    static func exp(_ x: Self) -> Self
    static func expm1(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func log2(_ x: Self) -> Self
    static func log10(_ x: Self) -> Self
    static func log1p(_ x: Self) -> Self
    static func sin(_ x: Self) -> Self
    static func cos(_ x: Self) -> Self
    static func tan(_ x: Self) -> Self
    static func asin(_ x: Self) -> Self
    static func acos(_ x: Self) -> Self
    static func atan(_ x: Self) -> Self
    static func sinh(_ x: Self) -> Self
    static func cosh(_ x: Self) -> Self
    static func tanh(_ x: Self) -> Self
    static func asinh(_ x: Self) -> Self
    static func acosh(_ x: Self) -> Self
    static func atanh(_ x: Self) -> Self
    static func erf(_ x: Self) -> Self
    static func pow(_ x: Self, _ y: Self) -> Self
    static func atan2(_ y: Self, _ x: Self) -> Self
    static func fmod(_ x: Self, _ y: Self) -> Self
}

extension Float: MathFloat {
    static func exp(_ x: Float) -> Float { expf(x) }
    static func expm1(_ x: Float) -> Float { expm1f(x) }
    static func log(_ x: Float) -> Float { logf(x) }
    static func log2(_ x: Float) -> Float { log2f(x) }
    static func log10(_ x: Float) -> Float { log10f(x) }
    static func log1p(_ x: Float) -> Float { log1pf(x) }
    static func sin(_ x: Float) -> Float { sinf(x) }
    static func cos(_ x: Float) -> Float { cosf(x) }
    static func tan(_ x: Float) -> Float { tanf(x) }
    static func asin(_ x: Float) -> Float { asinf(x) }
    static func acos(_ x: Float) -> Float { acosf(x) }
    static func atan(_ x: Float) -> Float { atanf(x) }
    static func sinh(_ x: Float) -> Float { sinhf(x) }
    static func cosh(_ x: Float) -> Float { coshf(x) }
    static func tanh(_ x: Float) -> Float { tanhf(x) }
    static func asinh(_ x: Float) -> Float { asinhf(x) }
    static func acosh(_ x: Float) -> Float { acoshf(x) }
    static func atanh(_ x: Float) -> Float { atanhf(x) }
    static func erf(_ x: Float) -> Float { erff(x) }
    static func pow(_ x: Float, _ y: Float) -> Float { powf(x, y) }
    static func atan2(_ y: Float, _ x: Float) -> Float { atan2f(y, x) }
    static func fmod(_ x: Float, _ y: Float) -> Float { fmodf(x, y) }
}

extension Double: MathFloat {
    static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    static func expm1(_ x: Double) -> Double { Glibc.expm1(x) }
    static func log(_ x: Double) -> Double { Glibc.log(x) }
    static func log2(_ x: Double) -> Double { Glibc.log2(x) }
    static func log10(_ x: Double) -> Double { Glibc.log10(x) }
    static func log1p(_ x: Double) -> Double { Glibc.log1p(x) }
    static func sin(_ x: Double) -> Double { Glibc.sin(x) }
    static func cos(_ x: Double) -> Double { Glibc.cos(x) }
    static func tan(_ x: Double) -> Double { Glibc.tan(x) }
    static func asin(_ x: Double) -> Double { Glibc.asin(x) }
    static func acos(_ x: Double) -> Double { Glibc.acos(x) }
    static func atan(_ x: Double) -> Double { Glibc.atan(x) }
    static func sinh(_ x: Double) -> Double { Glibc.sinh(x) }
    static func cosh(_ x: Double) -> Double { Glibc.cosh(x) }
    static func tanh(_ x: Double) -> Double { Glibc.tanh(x) }
    static func asinh(_ x: Double) -> Double { Glibc.asinh(x) }
    static func acosh(_ x: Double) -> Double { Glibc.acosh(x) }
    static func atanh(_ x: Double) -> Double { Glibc.atanh(x) }
    static func erf(_ x: Double) -> Double { Glibc.erf(x) }
    static func pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
    static func atan2(_ y: Double, _ x: Double) -> Double { Glibc.atan2(y, x) }
    static func fmod(_ x: Double, _ y: Double) -> Double { Glibc.fmod(x, y) }
}

/// A floating-point element and the type it computes in (half types compute
/// in Float and round once on the way out, as numpy and MLX do).
protocol FloatElement: TensorElement {
    associatedtype Math: MathFloat
    var math: Math { get }
    init(math: Math)
}

extension Float: FloatElement {
    var math: Float { self }
    init(math: Float) { self = math }
}
extension Double: FloatElement {
    var math: Double { self }
    init(math: Double) { self = math }
}
extension Float16: FloatElement {
    var math: Float { Float(self) }
    init(math: Float) { self.init(math) }
}
extension BFloat16: FloatElement {
    var math: Float { float }
    init(math: Float) { self.init(math) }
}

/// The fixed-width integer element types.
protocol IntegerElement: TensorElement, FixedWidthInteger {}
extension UInt8: IntegerElement {}
extension UInt16: IntegerElement {}
extension UInt32: IntegerElement {}
extension UInt64: IntegerElement {}
extension Int8: IntegerElement {}
extension Int16: IntegerElement {}
extension Int32: IntegerElement {}
extension Int64: IntegerElement {}

/// A kernel written once per element kind; `dispatch` picks the Swift type.
protocol KindVisitor {
    associatedtype Result
    func visitBool() throws -> Result
    func visitInteger<T: IntegerElement>(_ type: T.Type) throws -> Result
    func visitFloat<T: FloatElement>(_ type: T.Type) throws -> Result
    func visitComplex() throws -> Result
}

func dispatch<V: KindVisitor>(_ dtype: DType, _ visitor: V) throws -> V.Result {
    switch dtype {
    case .bool: return try visitor.visitBool()
    case .uint8: return try visitor.visitInteger(UInt8.self)
    case .uint16: return try visitor.visitInteger(UInt16.self)
    case .uint32: return try visitor.visitInteger(UInt32.self)
    case .uint64: return try visitor.visitInteger(UInt64.self)
    case .int8: return try visitor.visitInteger(Int8.self)
    case .int16: return try visitor.visitInteger(Int16.self)
    case .int32: return try visitor.visitInteger(Int32.self)
    case .int64: return try visitor.visitInteger(Int64.self)
    case .float16: return try visitor.visitFloat(Float16.self)
    case .float32: return try visitor.visitFloat(Float.self)
    case .float64: return try visitor.visitFloat(Double.self)
    case .bfloat16: return try visitor.visitFloat(BFloat16.self)
    case .complex64: return try visitor.visitComplex()
    }
}

/// A kernel generic over any element type.
protocol ElementVisitor {
    associatedtype Result
    func visit<T: TensorElement>(_ type: T.Type) throws -> Result
}

func dispatchElement<V: ElementVisitor>(_ dtype: DType, _ visitor: V) throws -> V.Result {
    switch dtype {
    case .bool: return try visitor.visit(Bool.self)
    case .uint8: return try visitor.visit(UInt8.self)
    case .uint16: return try visitor.visit(UInt16.self)
    case .uint32: return try visitor.visit(UInt32.self)
    case .uint64: return try visitor.visit(UInt64.self)
    case .int8: return try visitor.visit(Int8.self)
    case .int16: return try visitor.visit(Int16.self)
    case .int32: return try visitor.visit(Int32.self)
    case .int64: return try visitor.visit(Int64.self)
    case .float16: return try visitor.visit(Float16.self)
    case .float32: return try visitor.visit(Float.self)
    case .float64: return try visitor.visit(Double.self)
    case .bfloat16: return try visitor.visit(BFloat16.self)
    case .complex64: return try visitor.visit(Complex64.self)
    }
}

/// A kernel error that op validation should have prevented.
func unsupported(_ op: String, _ dtype: DType) -> Never {
    fatalError("[\(op)] not supported for dtype \(dtype)")
}
