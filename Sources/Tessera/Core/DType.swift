// DType: the element types a Tensor can hold, and MLX's type-promotion rules.

/// The element type of a ``Tensor``.
///
/// Promotion between two types follows MLX exactly (see ``promoteTypes(_:_:)``).
public enum DType: UInt8, CaseIterable, Sendable, Hashable, CustomStringConvertible {
    case bool, uint8, uint16, uint32, uint64, int8, int16, int32, int64
    case float16, float32, float64, bfloat16, complex64

    /// The broad category of a dtype, used by promotion and by op validation.
    public enum Kind: Sendable { case bool, unsignedInteger, signedInteger, floatingPoint, complex }

    public var kind: Kind {
        switch self {
        case .bool: return .bool
        case .uint8, .uint16, .uint32, .uint64: return .unsignedInteger
        case .int8, .int16, .int32, .int64: return .signedInteger
        case .float16, .float32, .float64, .bfloat16: return .floatingPoint
        case .complex64: return .complex
        }
    }

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .uint8, .int8: return 1
        case .uint16, .int16, .float16, .bfloat16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64, .complex64: return 8
        }
    }

    public var isFloatingPoint: Bool { kind == .floatingPoint }
    public var isInteger: Bool { kind == .signedInteger || kind == .unsignedInteger }
    public var isComplex: Bool { kind == .complex }
    /// Floating point or complex: the types `sqrt`, `exp`, `divide`... compute in.
    public var isInexact: Bool { isFloatingPoint || isComplex }

    public var description: String { name }

    public var name: String {
        switch self {
        case .bool: return "bool"
        case .uint8: return "uint8"
        case .uint16: return "uint16"
        case .uint32: return "uint32"
        case .uint64: return "uint64"
        case .int8: return "int8"
        case .int16: return "int16"
        case .int32: return "int32"
        case .int64: return "int64"
        case .float16: return "float16"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bfloat16: return "bfloat16"
        case .complex64: return "complex64"
        }
    }

    /// Looks a dtype up by its name (`"float32"`), as numpy and MLX spell it.
    public init?(name: String) {
        guard let match = DType.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }
}

/// The dtype two operands promote to, identical to MLX's `promote_types`.
///
/// The rules: bool < unsigned < signed integers grow to hold both ranges;
/// `uint64` with a signed integer gives `float32`; any integer with a float
/// keeps the float; `float16` with `bfloat16` gives `float32`; anything with
/// `complex64` gives `complex64`.
public func promoteTypes(_ a: DType, _ b: DType) -> DType {
    promotionTable[Int(a.rawValue)][Int(b.rawValue)]
}

// Rows and columns in DType's declaration order, transcribed from MLX's dtype.cpp.
private let promotionTable: [[DType]] = {
    let b = DType.bool, u8 = DType.uint8, u16 = DType.uint16, u32 = DType.uint32, u64 = DType.uint64
    let i8 = DType.int8, i16 = DType.int16, i32 = DType.int32, i64 = DType.int64
    let f16 = DType.float16, f32 = DType.float32, f64 = DType.float64, bf = DType.bfloat16, c64 = DType.complex64
    return [
        // bool uint8 uint16 uint32 uint64 int8 int16 int32 int64 float16 float32 float64 bfloat16 complex64
        [b, u8, u16, u32, u64, i8, i16, i32, i64, f16, f32, f64, bf, c64],  // bool
        [u8, u8, u16, u32, u64, i16, i16, i32, i64, f16, f32, f64, bf, c64],  // uint8
        [u16, u16, u16, u32, u64, i32, i32, i32, i64, f16, f32, f64, bf, c64],  // uint16
        [u32, u32, u32, u32, u64, i64, i64, i64, i64, f16, f32, f64, bf, c64],  // uint32
        [u64, u64, u64, u64, u64, f32, f32, f32, f32, f16, f32, f64, bf, c64],  // uint64
        [i8, i16, i32, i64, f32, i8, i16, i32, i64, f16, f32, f64, bf, c64],  // int8
        [i16, i16, i32, i64, f32, i16, i16, i32, i64, f16, f32, f64, bf, c64],  // int16
        [i32, i32, i32, i64, f32, i32, i32, i32, i64, f16, f32, f64, bf, c64],  // int32
        [i64, i64, i64, i64, f32, i64, i64, i64, i64, f16, f32, f64, bf, c64],  // int64
        [f16, f16, f16, f16, f16, f16, f16, f16, f16, f16, f32, f64, f32, c64],  // float16
        [f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f32, f64, f32, c64],  // float32
        [f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, f64, c64],  // float64
        [bf, bf, bf, bf, bf, bf, bf, bf, bf, f32, f32, f64, bf, c64],  // bfloat16
        [c64, c64, c64, c64, c64, c64, c64, c64, c64, c64, c64, c64, c64, c64]  // complex64
    ]
}()
