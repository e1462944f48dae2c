// Scalar element types: the Swift types that back each DType, the two Tessera
// defines itself (BFloat16, Complex64), and conversion between any two of them.

/// A brain-float: the top 16 bits of an IEEE float32, rounded to nearest even.
public struct BFloat16: Sendable, Hashable, CustomStringConvertible {
    public var bitPattern: UInt16

    public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

    public init(_ value: Float) {
        let bits = value.bitPattern
        if value.isNaN {
            bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x40  // keep it a (quiet) NaN
        } else {
            let roundingBias = UInt32(0x7FFF) + ((bits >> 16) & 1)
            bitPattern = UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
        }
    }

    public init(_ value: Double) { self.init(Float(value)) }

    public var float: Float { Float(bitPattern: UInt32(bitPattern) << 16) }
    public var description: String { float.description }
}

/// A complex number of two float32 parts, numpy's `complex64`.
public struct Complex64: Sendable, Hashable, CustomStringConvertible {
    public var real: Float
    public var imaginary: Float

    public init(_ real: Float, _ imaginary: Float = 0) {
        self.real = real
        self.imaginary = imaginary
    }

    public var description: String {
        imaginary < 0 || (imaginary == 0 && imaginary.sign == .minus)
            ? "\(real)\(imaginary)j" : "\(real)+\(imaginary)j"
    }

    static func + (a: Complex64, b: Complex64) -> Complex64 { Complex64(a.real + b.real, a.imaginary + b.imaginary) }
    static func - (a: Complex64, b: Complex64) -> Complex64 { Complex64(a.real - b.real, a.imaginary - b.imaginary) }
    static func * (a: Complex64, b: Complex64) -> Complex64 {
        Complex64(a.real * b.real - a.imaginary * b.imaginary, a.real * b.imaginary + a.imaginary * b.real)
    }
    static func / (a: Complex64, b: Complex64) -> Complex64 {
        // Smith's algorithm: avoids overflow in |b|^2.
        if abs(b.real) >= abs(b.imaginary) {
            let r = b.imaginary / b.real, d = b.real + b.imaginary * r
            return Complex64((a.real + a.imaginary * r) / d, (a.imaginary - a.real * r) / d)
        } else {
            let r = b.real / b.imaginary, d = b.real * r + b.imaginary
            return Complex64((a.real * r + a.imaginary) / d, (a.imaginary * r - a.real) / d)
        }
    }
    static prefix func - (a: Complex64) -> Complex64 { Complex64(-a.real, -a.imaginary) }
}

/// (Implementation detail of ``TensorElement``.) A value in the widest
/// representation of its kind; conversions between any
/// two dtypes pass through it, which keeps them C-like (wrap on integer
/// overflow, truncate floats toward zero) without one function per pair.
public enum WideScalar {
    case signed(Int64)
    case unsigned(UInt64)
    case real(Double)
    case complex(Float, Float)
}

/// A Swift type that can be the element of a Tensor.
public protocol TensorElement: Sendable {
    /// The dtype a Tensor built from these values has.
    static var dtype: DType { get }
    var wide: WideScalar { get }
    init(wide: WideScalar)
}

/// Float→integer conversion that never traps: NaN gives 0, out of range saturates.
func saturatingInt64(_ x: Double) -> Int64 {
    if x.isNaN { return 0 }
    if x >= 9.2233720368547758e18 { return .max }
    if x <= -9.2233720368547758e18 { return .min }
    return Int64(x)
}

func saturatingUInt64(_ x: Double) -> UInt64 {
    if x.isNaN || x <= 0 { return x <= -1 ? UInt64(bitPattern: saturatingInt64(x)) : 0 }
    if x >= 1.8446744073709552e19 { return .max }
    return UInt64(x)
}

extension WideScalar {
    var asInt64: Int64 {
        switch self {
        case .signed(let v): return v
        case .unsigned(let v): return Int64(bitPattern: v)
        case .real(let v): return saturatingInt64(v)
        case .complex(let r, _): return saturatingInt64(Double(r))
        }
    }
    var asUInt64: UInt64 {
        switch self {
        case .signed(let v): return UInt64(bitPattern: v)
        case .unsigned(let v): return v
        case .real(let v): return saturatingUInt64(v)
        case .complex(let r, _): return saturatingUInt64(Double(r))
        }
    }
    var asDouble: Double {
        switch self {
        case .signed(let v): return Double(v)
        case .unsigned(let v): return Double(v)
        case .real(let v): return v
        case .complex(let r, _): return Double(r)
        }
    }
    var isNonZero: Bool {
        switch self {
        case .signed(let v): return v != 0
        case .unsigned(let v): return v != 0
        case .real(let v): return v != 0
        case .complex(let r, let i): return r != 0 || i != 0
        }
    }
}

extension Bool: TensorElement {
    public static var dtype: DType { .bool }
    public var wide: WideScalar { .unsigned(self ? 1 : 0) }
    public init(wide: WideScalar) { self = wide.isNonZero }
}

extension UInt8: TensorElement {
    public static var dtype: DType { .uint8 }
    public var wide: WideScalar { .unsigned(UInt64(self)) }
    public init(wide: WideScalar) { self.init(truncatingIfNeeded: wide.asUInt64) }
}
extension UInt16: TensorElement {
    public static var dtype: DType { .uint16 }
    public var wide: WideScalar { .unsigned(UInt64(self)) }
    public init(wide: WideScalar) { self.init(truncatingIfNeeded: wide.asUInt64) }
}
extension UInt32: TensorElement {
    public static var dtype: DType { .uint32 }
    public var wide: WideScalar { .unsigned(UInt64(self)) }
    public init(wide: WideScalar) { self.init(truncatingIfNeeded: wide.asUInt64) }
}
extension UInt64: TensorElement {
    public static var dtype: DType { .uint64 }
    public var wide: WideScalar { .unsigned(self) }
    public init(wide: WideScalar) { self = wide.asUInt64 }
}
extension Int8: TensorElement {
    public static var dtype: DType { .int8 }
    public var wide: WideScalar { .signed(Int64(self)) }
    public init(wide: WideScalar) { self.init(truncatingIfNeeded: wide.asInt64) }
}
extension Int16: TensorElement {
    public static var dtype: DType { .int16 }
    public var wide: WideScalar { .signed(Int64(self)) }
    public init(wide: WideScalar) { self.init(truncatingIfNeeded: wide.asInt64) }
}
extension Int32: TensorElement {
    public static var dtype: DType { .int32 }
    public var wide: WideScalar { .signed(Int64(self)) }
    public init(wide: WideScalar) { self.init(truncatingIfNeeded: wide.asInt64) }
}
extension Int64: TensorElement {
    public static var dtype: DType { .int64 }
    public var wide: WideScalar { .signed(self) }
    public init(wide: WideScalar) { self = wide.asInt64 }
}
/// Swift's `Int` is stored as `int32`, MLX's default integer type (as Python
/// ints are in MLX); reading back widens.
extension Int: TensorElement {
    public static var dtype: DType { .int32 }
    public var wide: WideScalar { .signed(Int64(self)) }
    public init(wide: WideScalar) { self.init(truncatingIfNeeded: wide.asInt64) }
}
extension Float16: TensorElement {
    public static var dtype: DType { .float16 }
    public var wide: WideScalar { .real(Double(self)) }
    public init(wide: WideScalar) {
        self.init(wide.asDouble)
    }
}
extension Float: TensorElement {
    public static var dtype: DType { .float32 }
    public var wide: WideScalar { .real(Double(self)) }
    public init(wide: WideScalar) { self.init(wide.asDouble) }
}
extension Double: TensorElement {
    public static var dtype: DType { .float64 }
    public var wide: WideScalar { .real(self) }
    public init(wide: WideScalar) { self = wide.asDouble }
}
extension BFloat16: TensorElement {
    public static var dtype: DType { .bfloat16 }
    public var wide: WideScalar { .real(Double(float)) }
    public init(wide: WideScalar) { self.init(Float(wide.asDouble)) }
}
extension Complex64: TensorElement {
    public static var dtype: DType { .complex64 }
    public var wide: WideScalar { .complex(real, imaginary) }
    public init(wide: WideScalar) {
        if case .complex(let r, let i) = wide { self.init(r, i) } else { self.init(Float(wide.asDouble), 0) }
    }
}
