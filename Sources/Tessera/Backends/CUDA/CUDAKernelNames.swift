// Kernel names: each family file (CUDA<Family>.swift) extends this with
// the names of its kernels for given dtypes (nil when none fits; the dispatch
// then falls back to the CPU) and lists them all; here the dtype suffixes
// they share and the file a name lives in. Pure: tested without a GPU
// against the names the .cu files define (CUDAKernelCompileTests).

package enum CUDAKernelNames {
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

    /// The kernel file defining a kernel name.
    static func file(of kernel: String) -> String {
        let family = kernel.prefix { $0 != "_" }
        return family == "arange" ? "copy.cu" : "\(family).cu"
    }

    /// float32, float16 and bfloat16: the element types of the dense kernels.
    static func floatSuffix(_ dtype: DType) -> String? {
        switch dtype {
        case .float32, .float16, .bfloat16: return suffix(dtype)
        default: return nil
        }
    }

    /// The suffixes of the dtypes scatter's combining kernels and scans take.
    static let accumulatingTypes: [DType: String] = [
        .float64: "f64", .float32: "f32", .float16: "f16", .bfloat16: "bf16", .int64: "i64", .int32: "i32",
        .uint32: "u32"
    ]

    static let allDTypes: [DType] = [
        .bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64, .float16, .float32, .float64,
        .bfloat16
    ]

    /// Every kernel name the families can ask for, each once, sorted.
    static var all: [String] {
        let families = [
            shapeNames, elementwiseNames, reductionNames, matmulNames, fastNames, attentionNames, quantizedNames,
            randomNames, indexingNames, sortNames, scanNames, linalgNames
        ]
        return Array(Set(families.flatMap { $0 })).sorted()
    }
}
