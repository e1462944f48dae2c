// Which embedded kernel computes a primitive for given dtypes, or nil when
// none does (the GPU dispatch then falls back to the CPU). Pure: tested
// without a GPU against the names the .cu files define.

enum CUDAKernelNames {
    static func suffix(_ dtype: DType) -> String? {
        switch dtype {
        case .float32: return "f32"
        case .float16: return "f16"
        case .bfloat16: return "bf16"
        case .int32: return "i32"
        case .bool: return "b8"
        default: return nil
        }
    }

    static let floatUnary: Set<UnaryOp> = [
        .abs, .negative, .sign, .square, .sqrt, .rsqrt, .reciprocal, .exp, .expm1, .log, .log2, .log10, .log1p,
        .sin, .cos, .tan, .arcsin, .arccos, .arctan, .sinh, .cosh, .tanh, .arcsinh, .arccosh, .arctanh,
        .sigmoid, .erf, .erfinv, .floor, .ceil, .round, .isNaN, .isInf, .isFinite,
    ]
    static let int32Unary: Set<UnaryOp> = [.abs, .negative, .sign, .square, .bitwiseInvert]
    static let floatBinary: Set<BinaryOp> = [
        .add, .subtract, .multiply, .divide, .floorDivide, .remainder, .power, .maximum, .minimum, .arctan2,
        .logAddExp, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual,
    ]
    static let int32Binary: Set<BinaryOp> = [
        .add, .subtract, .multiply, .floorDivide, .remainder, .maximum, .minimum, .bitwiseAnd, .bitwiseOr,
        .bitwiseXor, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual,
    ]
    static let boolBinary: Set<BinaryOp> = [
        .logicalAnd, .logicalOr, .bitwiseAnd, .bitwiseOr, .bitwiseXor, .equal, .notEqual, .less, .lessEqual,
        .greater, .greaterEqual,
    ]

    static func unary(_ op: UnaryOp, input: DType, output: DType) -> String? {
        guard let s = suffix(input) else { return nil }
        let classify = op == .isNaN || op == .isInf || op == .isFinite
        guard output == (classify ? .bool : input) else { return nil }
        switch input {
        case .float32, .float16, .bfloat16: guard floatUnary.contains(op) else { return nil }
        case .int32: guard int32Unary.contains(op) else { return nil }
        case .bool: guard op == .logicalNot else { return nil }
        default: return nil
        }
        return "unary_\(op.rawValue)_\(s)"
    }

    static func binary(_ op: BinaryOp, input: DType, output: DType) -> String? {
        guard let s = suffix(input), output == (op.producesBool ? .bool : input) else { return nil }
        switch input {
        case .float32, .float16, .bfloat16: guard floatBinary.contains(op) else { return nil }
        case .int32: guard int32Binary.contains(op) else { return nil }
        case .bool: guard boolBinary.contains(op) else { return nil }
        default: return nil
        }
        return "binary_\(op.rawValue)_\(s)"
    }

    static func asType(from input: DType, to output: DType) -> String? {
        if input == .uint32 && output == .float32 { return "astype_u32_f32" }
        guard let a = suffix(input), let b = suffix(output) else { return nil }
        if input == output { return nil }  // a copy
        return "astype_\(a)_\(b)"
    }

    static func reduce(_ op: ReduceOp, input: DType, output: DType) -> String? {
        guard input == output, let s = suffix(input) else { return nil }
        switch (op, input) {
        case (.all, .bool), (.any, .bool): return "reduce_\(op.rawValue)_b8"
        case (.sum, _), (.prod, _), (.max, _), (.min, _):
            return input == .bool ? nil : "reduce_\(op.rawValue)_\(s)"
        default: return nil
        }
    }

    /// Copies and selects work on raw elements of 1, 2, 4 or 8 bytes.
    static func copy(_ dtype: DType) -> String? { [1, 2, 4, 8].contains(dtype.size) ? "copy_\(dtype.size)" : nil }
    static func select(_ dtype: DType) -> String? { [1, 2, 4, 8].contains(dtype.size) ? "select_\(dtype.size)" : nil }

    static func arange(_ dtype: DType) -> String? {
        dtype == .float32 ? "arange_f32" : dtype == .int32 ? "arange_i32" : nil
    }

    /// The kernel file defining a kernel name.
    static func file(of kernel: String) -> String {
        let family = kernel.prefix { $0 != "_" }
        return family == "arange" ? "copy.cu" : "\(family).cu"
    }
}
