// The element-wise family on the GPU (unary.cu, binary.cu, select.cu,
// astype.cu): inputs at any strides (collapsed to at most 8 axes) into a
// fresh contiguous output, one grid-stride kernel per (op, dtype). nil where
// no kernel fits: the dispatch then runs the primitive on the CPU.

extension CUDAKernelNames {
    package static let floatUnary: Set<UnaryOp> = [
        .abs, .negative, .sign, .square, .sqrt, .rsqrt, .reciprocal, .exp, .expm1, .log, .log2, .log10, .log1p,
        .sin, .cos, .tan, .arcsin, .arccos, .arctan, .sinh, .cosh, .tanh, .arcsinh, .arccosh, .arctanh,
        .sigmoid, .erf, .erfinv, .floor, .ceil, .round, .isNaN, .isInf, .isFinite
    ]

    package static let int32Unary: Set<UnaryOp> = [.abs, .negative, .sign, .square, .bitwiseInvert]

    package static let floatBinary: Set<BinaryOp> = [
        .add, .subtract, .multiply, .divide, .floorDivide, .remainder, .power, .maximum, .minimum, .arctan2,
        .logAddExp, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual
    ]

    package static let int32Binary: Set<BinaryOp> = [
        .add, .subtract, .multiply, .floorDivide, .remainder, .maximum, .minimum, .bitwiseAnd, .bitwiseOr,
        .bitwiseXor, .equal, .notEqual, .less, .lessEqual, .greater, .greaterEqual
    ]

    package static let boolBinary: Set<BinaryOp> = [
        .logicalAnd, .logicalOr, .bitwiseAnd, .bitwiseOr, .bitwiseXor, .equal, .notEqual, .less, .lessEqual,
        .greater, .greaterEqual
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

    /// Selects work on raw elements of 1, 2, 4 or 8 bytes.
    static func select(_ dtype: DType) -> String? { [1, 2, 4, 8].contains(dtype.size) ? "select_\(dtype.size)" : nil }

    static var elementwiseNames: [String] {
        let types: [DType] = [.float32, .float16, .bfloat16, .int32, .bool]
        var names = ["astype_u32_f32"] + [1, 2, 4, 8].map { "select_\($0)" }
        for t in types {
            names += UnaryOp.allCases.flatMap { op in [t, .bool].compactMap { unary(op, input: t, output: $0) } }
            names += BinaryOp.allCases.flatMap { op in [t, .bool].compactMap { binary(op, input: t, output: $0) } }
            names += types.compactMap { asType(from: t, to: $0) }
        }
        return names
    }
}

extension CUDADispatch {
    func unary(_ op: UnaryOp, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        guard let name = CUDAKernelNames.unary(op, input: inputs[0].dtype, output: dtype) else { return nil }
        return try elementwise(name, inputs, shape: shape, dtype: dtype)
    }

    func binary(_ op: BinaryOp, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        guard inputs[0].dtype == inputs[1].dtype,
            let name = CUDAKernelNames.binary(op, input: inputs[0].dtype, output: dtype)
        else { return nil }
        return try elementwise(name, inputs, shape: shape, dtype: dtype)
    }

    func select(_ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        guard inputs[0].dtype == .bool, inputs[1].dtype == dtype, inputs[2].dtype == dtype,
            let name = CUDAKernelNames.select(dtype)
        else { return nil }
        return try elementwise(name, inputs, shape: shape, dtype: dtype)
    }

    func asType(_ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        if inputs[0].dtype == dtype, let out = try contiguousCopy(inputs[0]) { return out }
        guard let name = CUDAKernelNames.asType(from: inputs[0].dtype, to: dtype) else { return nil }
        return try elementwise(name, inputs, shape: shape, dtype: dtype)
    }

    /// Unary, binary, select and asType kernels: inputs (any strides) → a
    /// fresh contiguous output. nil when the layout has too many axes.
    func elementwise(_ name: String, _ inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView? {
        let layout = StridedLayout.collapse(shape: shape, strides: inputs.map(\.strides))
        guard layout.rank <= StridedLayout.maxRank else { return nil }
        let out = ArrayView.allocate(shape: shape, dtype: dtype)
        guard out.count > 0 else { return out }
        let args = KernelArguments()
        for input in inputs { args.addPointer(try inputPointer(input)) }
        args.addPointer(try outputPointer(out))
        args.add(int64: out.count)
        args.add(int32: layout.rank)
        args.add(dims: layout.shape)
        for strides in layout.strides { args.add(dims: strides) }
        try launch(name, .elementwise(count: out.count, multiprocessors: device.multiprocessors), args)
        return out
    }
}
