// Element-wise expressions of a fused region as C source, shared by the CPU
// generator (C for the system compiler) and the CUDA generator (NVRTC).
// Values compute in a per-dtype C type (bool: int 0/1, integers: their own
// type, float16/bfloat16/float32: float, float64: double); half types round
// after every op, as the unfused kernels do, so fused and eager results agree.
// Integer arithmetic wraps through unsigned types, as the Swift kernels do.

/// The C dialect a fused kernel is written in.
enum KernelDialect {
    case c, cuda
}

struct FusedCodegen {
    let program: Program
    let dialect: KernelDialect

    /// The type a value of `dtype` computes in.
    static func computeType(_ dtype: DType) -> String? {
        switch dtype {
        case .bool: return "int"
        case .uint8: return "uint8_t"
        case .uint16: return "uint16_t"
        case .uint32: return "uint32_t"
        case .uint64: return "uint64_t"
        case .int8: return "int8_t"
        case .int16: return "int16_t"
        case .int32: return "int32_t"
        case .int64: return "int64_t"
        case .float16, .bfloat16, .float32: return "float"
        case .float64: return "double"
        case .complex64: return nil
        }
    }

    /// The type a value of `dtype` is stored as in memory.
    func storageType(_ dtype: DType) -> String {
        switch dtype {
        case .bool: return "uint8_t"
        case .float16: return dialect == .c ? "_Float16" : "uint16_t"
        case .bfloat16: return "uint16_t"
        default: return Self.computeType(dtype)!
        }
    }

    func load(_ dtype: DType, _ x: String) -> String {
        switch dtype {
        case .bool: return "(int)(\(x))"
        case .float16: return dialect == .c ? "(float)(\(x))" : "tk_h2f(\(x))"
        case .bfloat16: return "tk_bf2f(\(x))"
        default: return x
        }
    }

    func store(_ dtype: DType, _ x: String) -> String {
        switch dtype {
        case .bool: return "(uint8_t)((\(x)) != 0)"
        case .float16: return dialect == .c ? "(_Float16)(\(x))" : "tk_f2h(\(x))"
        case .bfloat16: return "tk_f2bf(\(x))"
        default: return x
        }
    }

    /// `x` rounded to `dtype` and back, for the half types.
    static func rounded(_ dtype: DType, _ x: String) -> String {
        switch dtype {
        case .float16: return "tk_r16(\(x))"
        case .bfloat16: return "tk_rbf(\(x))"
        default: return x
        }
    }

    /// Whether an instruction can be part of a fused kernel.
    static func supports(_ ins: Instruction, inputDTypes: [DType]) -> Bool {
        if case .broadcast = ins.primitive { return computeType(ins.dtype) != nil }
        return expression(ins, inputDTypes: inputDTypes, args: inputDTypes.indices.map { "a\($0)" }) != nil
    }

    /// The C expression of an instruction over argument expressions, or nil
    /// when the fused kernels do not implement it (such ops stay unfused).
    static func expression(_ ins: Instruction, inputDTypes: [DType], args: [String]) -> String? {
        guard computeType(ins.dtype) != nil, inputDTypes.allSatisfy({ computeType($0) != nil }) else { return nil }
        let out = ins.dtype
        switch ins.primitive {
        case .identity, .stopGradient, .broadcast:
            return args[0]
        case .select:
            return "(\(args[0]) ? \(args[1]) : \(args[2]))"
        case .asType:
            return conversion(from: inputDTypes[0], to: out, args[0])
        case .unary(let op):
            guard let e = unary(op, inputDTypes[0], args[0]) else { return nil }
            return out.isFloatingPoint ? rounded(out, e) : e
        case .binary(let op):
            guard let e = binary(op, inputDTypes[0], args[0], args[1]) else { return nil }
            return out.isFloatingPoint ? rounded(out, e) : e
        default:
            return nil
        }
    }

    /// Wider unsigned type for wrapping arithmetic on `dtype`.
    private static func unsignedType(_ dtype: DType) -> String {
        dtype.size == 8 ? "uint64_t" : "uint32_t"
    }

    private static func unary(_ op: UnaryOp, _ dtype: DType, _ a: String) -> String? {
        switch dtype.kind {
        case .bool:
            switch op {
            case .logicalNot, .bitwiseInvert: return "(!\(a))"
            case .abs, .sign, .square, .floor, .ceil, .round, .real, .conjugate: return a
            case .isNaN, .isInf, .imag: return "0"
            case .isFinite: return "1"
            default: return nil
            }
        case .signedInteger, .unsignedInteger:
            let t = computeType(dtype)!, u = unsignedType(dtype)
            switch op {
            case .abs: return "(\(a) < 0 ? (\(t))((\(u))0 - (\(u))\(a)) : \(a))"
            case .negative: return "(\(t))((\(u))0 - (\(u))\(a))"
            case .sign: return "(\(a) > 0 ? (\(t))1 : (\(a) < 0 ? (\(t))-1 : (\(t))0))"
            case .square: return "(\(t))((\(u))\(a) * (\(u))\(a))"
            case .floor, .ceil, .round, .real, .conjugate: return a
            case .imag: return "(\(t))0"
            case .bitwiseInvert: return "(\(t))(~\(a))"
            case .logicalNot: return "(\(a) == 0)"
            case .isNaN, .isInf: return "0"
            case .isFinite: return "1"
            default: return nil
            }
        case .floatingPoint:
            let t = computeType(dtype)!, f = t == "float" ? "f" : ""
            switch op {
            case .abs: return "fabs\(f)(\(a))"
            case .negative: return "(-\(a))"
            case .sign: return "(\(a) > 0 ? (\(t))1 : (\(a) < 0 ? (\(t))-1 : (\(a) == 0 ? \(a) : (\(t))0)))"
            case .square: return "(\(a) * \(a))"
            case .sqrt: return "sqrt\(f)(\(a))"
            case .rsqrt: return "((\(t))1 / sqrt\(f)(\(a)))"
            case .reciprocal: return "((\(t))1 / \(a))"
            case .tanh where f == "f":
                return "tk_tanhf(\(a))"
            case .exp, .expm1, .log, .log2, .log10, .log1p, .sin, .cos, .tan, .sinh, .cosh, .tanh, .erf, .floor, .ceil:
                return "\(op.rawValue)\(f)(\(a))"
            case .arcsin: return "asin\(f)(\(a))"
            case .arccos: return "acos\(f)(\(a))"
            case .arctan: return "atan\(f)(\(a))"
            case .arcsinh: return "asinh\(f)(\(a))"
            case .arccosh: return "acosh\(f)(\(a))"
            case .arctanh: return "atanh\(f)(\(a))"
            case .sigmoid: return "tk_sigmoid\(f)(\(a))"
            case .round: return "rint\(f)(\(a))"
            case .isNaN: return "(\(a) != \(a))"
            case .isInf: return "(fabs\(f)(\(a)) == tk_inf\(f)())"
            case .isFinite: return "(fabs\(f)(\(a)) < tk_inf\(f)())"
            case .logicalNot: return "(\(a) == 0)"
            case .real, .conjugate: return a
            case .imag: return "(\(t))0"
            case .erfinv, .bitwiseInvert: return nil
            }
        case .complex:
            return nil
        }
    }

    private static func comparison(_ op: BinaryOp, _ a: String, _ b: String) -> String? {
        switch op {
        case .equal: return "(\(a) == \(b))"
        case .notEqual: return "(\(a) != \(b))"
        case .less: return "(\(a) < \(b))"
        case .lessEqual: return "(\(a) <= \(b))"
        case .greater: return "(\(a) > \(b))"
        case .greaterEqual: return "(\(a) >= \(b))"
        case .logicalAnd: return "(\(a) != 0 && \(b) != 0)"
        case .logicalOr: return "(\(a) != 0 || \(b) != 0)"
        default: return nil
        }
    }

    private static func binary(_ op: BinaryOp, _ dtype: DType, _ a: String, _ b: String) -> String? {
        if let c = comparison(op, a, b) { return c }
        switch dtype.kind {
        case .bool:
            switch op {
            case .add, .maximum, .bitwiseOr: return "(\(a) || \(b))"
            case .multiply, .minimum, .bitwiseAnd: return "(\(a) && \(b))"
            case .bitwiseXor, .subtract: return "(\(a) != \(b))"
            default: return nil
            }
        case .signedInteger, .unsignedInteger:
            let t = computeType(dtype)!, u = unsignedType(dtype)
            switch op {
            case .add: return "(\(t))((\(u))\(a) + (\(u))\(b))"
            case .subtract: return "(\(t))((\(u))\(a) - (\(u))\(b))"
            case .multiply: return "(\(t))((\(u))\(a) * (\(u))\(b))"
            case .maximum: return "(\(b) >= \(a) ? \(b) : \(a))"
            case .minimum: return "(\(b) < \(a) ? \(b) : \(a))"
            case .bitwiseAnd: return "(\(t))(\(a) & \(b))"
            case .bitwiseOr: return "(\(t))(\(a) | \(b))"
            case .bitwiseXor: return "(\(t))(\(a) ^ \(b))"
            default: return nil
            }
        case .floatingPoint:
            let f = computeType(dtype)! == "float" ? "f" : ""
            switch op {
            case .add: return "(\(a) + \(b))"
            case .subtract: return "(\(a) - \(b))"
            case .multiply: return "(\(a) * \(b))"
            case .divide: return "(\(a) / \(b))"
            case .floorDivide: return "floor\(f)(\(a) / \(b))"
            case .remainder: return "tk_rem\(f)(\(a), \(b))"
            case .power: return "pow\(f)(\(a), \(b))"
            case .maximum: return "tk_max\(f)(\(a), \(b))"
            case .minimum: return "tk_min\(f)(\(a), \(b))"
            case .arctan2: return "atan2\(f)(\(a), \(b))"
            case .logAddExp: return "tk_logaddexp\(f)(\(a), \(b))"
            default: return nil
            }
        case .complex:
            return nil
        }
    }

    /// A value of `from` as a value of `to`, as `AsTypeKernel` converts:
    /// through double and saturating int64/uint64 for floats to integers,
    /// direct rounding to float16, through float to bfloat16.
    static func conversion(from: DType, to: DType, _ a: String) -> String? {
        guard let t = computeType(to), computeType(from) != nil else { return nil }
        if from == to { return a }
        if to == .bool { return "(\(a) != 0)" }
        if from == .bool { return "(\(t))\(a)" }
        switch (from.kind, to.kind) {
        case (.signedInteger, .signedInteger), (.signedInteger, .unsignedInteger),
            (.unsignedInteger, .signedInteger), (.unsignedInteger, .unsignedInteger):
            return "(\(t))\(a)"
        case (.floatingPoint, .signedInteger):
            return "(\(t))tk_sat_i64((double)\(a))"
        case (.floatingPoint, .unsignedInteger):
            return "(\(t))tk_sat_u64((double)\(a))"
        default:
            // To a floating type, from an integer or a float.
            switch to {
            case .float16: return from == .float32 || from == .bfloat16 ? "tk_r16(\(a))" : "tk_r16d((double)\(a))"
            case .bfloat16: return "tk_rbf((float)(double)\(a))"
            case .float32: return "(float)(double)\(a)"
            default: return "(double)\(a)"
            }
        }
    }

    /// A C literal of a scalar constant, in the compute type of its dtype.
    static func literal(_ value: WideScalar, _ dtype: DType, dialect: KernelDialect) -> String? {
        guard let t = computeType(dtype) else { return nil }
        switch dtype.kind {
        case .bool:
            return value.isNonZero ? "1" : "0"
        case .signedInteger, .unsignedInteger:
            return "((\(t))0x\(String(value.asUInt64, radix: 16))ULL)"
        case .floatingPoint:
            let x = value.asDouble
            let f = t == "float" ? "f" : ""
            if x.isNaN { return "tk_nan\(f)()" }
            if x.isInfinite { return x < 0 ? "(-tk_inf\(f)())" : "tk_inf\(f)()" }
            // Shortest round-trip digits: the C parser reads back the same value.
            return t == "float" ? "((float)\(Float(x))f)" : "(\(x))"
        case .complex:
            return nil
        }
    }

    /// The statements computing every instruction of the region, the inputs
    /// named by `input(i)` and scalar constants written as literals. Returns
    /// the lines and the names of the output values.
    func body(input: (Int) -> String) -> (lines: [String], results: [String])? {
        var names: [String] = []
        var lines: [String] = []
        for i in 0..<program.inputCount { names.append(input(i)) }
        for c in program.constants {
            guard c.size == 1, let lit = Self.literal(readScalar(c), c.dtype, dialect: dialect) else { return nil }
            names.append(lit)
        }
        for (k, ins) in program.instructions.enumerated() {
            let args = ins.inputs.map { names[$0] }
            guard
                let e = Self.expression(ins, inputDTypes: ins.inputs.map { program.dtype($0) }, args: args),
                let t = Self.computeType(ins.dtype)
            else { return nil }
            let name = "v\(program.firstInstruction + k)"
            lines.append("const \(t) \(name) = \(e);")
            names.append(name)
        }
        return (lines, program.outputs.map { names[$0] })
    }
}

/// The single element of an evaluated scalar constant.
func readScalar(_ c: Tensor) -> WideScalar {
    struct Read: ElementVisitor {
        let tensor: Tensor
        func visit<T: TensorElement>(_: T.Type) -> WideScalar { tensor.toArray(T.self)[0].wide }
    }
    return try! dispatchElement(c.dtype, Read(tensor: c))
}

/// Helpers every generated kernel may call (C and CUDA alike, after the
/// dialect's own prelude defines tk_h2f/tk_f2h where needed).
let fusedKernelHelpers = """
    TK_INLINE float tk_bf2f(uint16_t b) { union { uint32_t u; float f; } v; v.u = (uint32_t)b << 16; return v.f; }
    TK_INLINE uint16_t tk_f2bf(float f) {
        union { uint32_t u; float f; } v; v.f = f;
        if (f != f) return (uint16_t)((v.u >> 16) | 0x40);
        return (uint16_t)((v.u + 0x7FFFu + ((v.u >> 16) & 1u)) >> 16);
    }
    TK_INLINE float tk_rbf(float x) { return tk_bf2f(tk_f2bf(x)); }
    TK_INLINE float tk_inff(void) { union { uint32_t u; float f; } v; v.u = 0x7F800000u; return v.f; }
    TK_INLINE float tk_nanf(void) { union { uint32_t u; float f; } v; v.u = 0x7FC00000u; return v.f; }
    TK_INLINE double tk_inf(void) { union { uint64_t u; double f; } v; v.u = 0x7FF0000000000000ull; return v.f; }
    TK_INLINE double tk_nan(void) { union { uint64_t u; double f; } v; v.u = 0x7FF8000000000000ull; return v.f; }
    TK_INLINE int64_t tk_sat_i64(double x) {
        if (x != x) return 0;
        if (x >= 9.2233720368547758e18) return (int64_t)0x7FFFFFFFFFFFFFFFull;
        if (x <= -9.2233720368547758e18) return (int64_t)0x8000000000000000ull;
        return (int64_t)x;
    }
    TK_INLINE uint64_t tk_sat_u64(double x) {
        if (x != x || x <= 0) return x <= -1 ? (uint64_t)tk_sat_i64(x) : 0;
        if (x >= 1.8446744073709552e19) return 0xFFFFFFFFFFFFFFFFull;
        return (uint64_t)x;
    }
    /* e^x for x in [-87, 88] (callers clamp): Cephes' expf, branch-free so that
       loops vectorise (libm's scalar calls do not); within 2 ulp of libm. */
    TK_INLINE float tk_expf_bounded(float x) {
        float n = rintf(x * 1.44269504088896341f);
        float r = x - n * 0.693359375f;
        r = r + n * 2.12194440e-4f;
        float p = 1.9875691500e-4f;
        p = p * r + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        p = p * r * r + r + 1.0f;
        union { uint32_t u; float f; } s; s.u = (uint32_t)((int32_t)n + 126) << 23;
        return p * s.f * 2.0f;
    }
    /* tanh: Cephes' odd polynomial below 0.625, 1 - 2/(e^2|x| + 1) above; both
       computed and selected so the loop vectorises (libm's tanhf is ~40 ns). */
    TK_INLINE float tk_tanhf(float x) {
        float z = fabsf(x), s = x * x;
        float small = ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s
            + 1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;
        float t = 2.0f * z; t = t < 80.0f ? t : 80.0f;
        float large = 1.0f - 2.0f / (tk_expf_bounded(t) + 1.0f);
        large = x < 0 ? -large : large;
        return z > 0.625f ? large : (z == 0.0f || x != x ? x : small);
    }
    /* 1 / (1 + e^-x) without overflow, as the unfused kernel computes it. */
    TK_INLINE float tk_sigmoidf(float x) {
        float t = -fabsf(x); t = t > -87.0f ? t : -87.0f;
        float e = tk_expf_bounded(t);
        float r = x >= 0 ? 1.0f / (1.0f + e) : e / (1.0f + e);
        return x != x ? x : r;
    }
    TK_INLINE double tk_sigmoid(double x) {
        if (x >= 0) return 1.0 / (1.0 + exp(-x));
        double e = exp(x); return e / (1.0 + e);
    }
    TK_INLINE float tk_remf(float x, float y) {
        float r = fmodf(x, y);
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return r;
    }
    TK_INLINE double tk_rem(double x, double y) {
        double r = fmod(x, y);
        if (r != 0 && ((r < 0) != (y < 0))) r += y;
        return r;
    }
    TK_INLINE float tk_maxf(float x, float y) { return (x != x || y != y) ? tk_nanf() : (y >= x ? y : x); }
    TK_INLINE float tk_minf(float x, float y) { return (x != x || y != y) ? tk_nanf() : (y < x ? y : x); }
    TK_INLINE double tk_max(double x, double y) { return (x != x || y != y) ? tk_nan() : (y >= x ? y : x); }
    TK_INLINE double tk_min(double x, double y) { return (x != x || y != y) ? tk_nan() : (y < x ? y : x); }
    TK_INLINE float tk_logaddexpf(float x, float y) {
        if (x == y && (x == tk_inff() || x == -tk_inff())) return x;  // x - y would be NaN
        float m = y >= x ? y : x;
        if (m != m) return tk_nanf();
        return m + log1pf(expf(-fabsf(x - y)));
    }
    TK_INLINE double tk_logaddexp(double x, double y) {
        if (x == y && (x == tk_inf() || x == -tk_inf())) return x;
        double m = y >= x ? y : x;
        if (m != m) return tk_nan();
        return m + log1p(exp(-fabs(x - y)));
    }

    """
