// Creation ops: tensors from Swift values, ranges and bytes, and the filled
// and patterned constructors (zeros, ones, full, arange, linspace, eye).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Tensor {
    /// A tensor holding `values` with `shape` (default: one axis of `values.count`).
    ///
    /// ```swift
    /// let a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    /// ```
    /// Swift `Int` values are stored as `int32`, MLX's default integer type.
    public init<T: TensorElement>(_ values: [T], shape: [Int]? = nil) {
        let shape = shape ?? [values.count]
        checkShape(shape, "Tensor.init")
        opPrecondition(
            shape.reduce(1, *) == values.count, "Tensor.init",
            "\(values.count) values cannot fill shape \(shape) (\(shape.reduce(1, *)) elements)")
        if T.self == Int.self {
            self.init(values.map { Int32(truncatingIfNeeded: $0 as! Int) }, shape: shape)
            return
        }
        self = values.withUnsafeBytes { Tensor(bytes: $0, shape: shape, dtype: T.dtype) }
    }

    /// A 0-dimensional tensor holding `value`.
    public init<T: TensorElement>(_ value: T) {
        self.init([value], shape: [])
    }

    /// `int32` values `range.lowerBound ..< range.upperBound`.
    public init(_ range: Range<Int>) {
        self = Tensor.arange(range.lowerBound, range.upperBound)
    }

    /// A tensor over a copy of raw little-endian element bytes. The copy counts
    /// as active memory but is not refused by `Memory.setMemoryLimit` (the data
    /// is already in memory; evaluation is what the limit guards), so making a
    /// tensor from values never fails on the limit.
    public init(bytes: UnsafeRawBufferPointer, shape: [Int], dtype: DType) {
        checkShape(shape, "Tensor.init(bytes:)")
        let count = shape.reduce(1, *)
        opPrecondition(
            bytes.count == count * dtype.size, "Tensor.init(bytes:)",
            "\(bytes.count) bytes do not hold shape \(shape) of \(dtype) (\(count * dtype.size) bytes)")
        let view = ArrayView.allocate(shape: shape, dtype: dtype)
        do {
            let p = try view.buffer.hostPointer(forWriting: true, ignoringLimit: true)
            if let base = bytes.baseAddress, bytes.count > 0 { p.copyMemory(from: base, byteCount: bytes.count) }
        } catch {
            fatalError("[Tensor.init] \(error)")
        }
        self.init(evaluated: view)
    }

    /// A tensor of `shape` filled with `value`, in `dtype` (default: the value's
    /// dtype for a tensor, float32 for a Swift float, int32 for a Swift int).
    public static func full(_ shape: [Int], value: some TensorOperand, dtype: DType? = nil) -> Tensor {
        checkShape(shape, "full")
        var v = value.tensorOperand.resolved(against: nil)
        if let dtype { v = v.asType(dtype) }
        return v.broadcast(to: shape).contiguous()
    }

    public static func zeros(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        full(shape, value: 0, dtype: dtype)
    }

    public static func ones(_ shape: [Int], dtype: DType = .float32) -> Tensor {
        full(shape, value: 1, dtype: dtype)
    }

    /// Zeros with the shape and dtype of `other`.
    public static func zerosLike(_ other: Tensor) -> Tensor { zeros(other.shape, dtype: other.dtype) }

    /// Ones with the shape and dtype of `other`.
    public static func onesLike(_ other: Tensor) -> Tensor { ones(other.shape, dtype: other.dtype) }

    /// Integers `start, start + step, ...` below `stop` (above, for a negative step).
    public static func arange(_ start: Int = 0, _ stop: Int, step: Int = 1, dtype: DType = .int32) -> Tensor {
        opPrecondition(step != 0, "arange", "step must not be zero")
        let count = Swift.max(0, (stop - start + step - (step > 0 ? 1 : -1)) / step)
        return Tensor(
            shape: [count], dtype: dtype, primitive: .arange(start: Double(start), step: Double(step)), inputs: [])
    }

    /// Values `start, start + step, ...` below `stop` (above, for a negative step).
    public static func arange(_ start: Double, _ stop: Double, step: Double = 1, dtype: DType = .float32) -> Tensor {
        opPrecondition(step != 0 && step.isFinite, "arange", "step must be finite and non-zero, got \(step)")
        let count = Swift.max(0, Int(Glibc.ceil((stop - start) / step)))
        return Tensor(shape: [count], dtype: dtype, primitive: .arange(start: start, step: step), inputs: [])
    }

    /// `count` evenly spaced values from `start` to `stop`, both included.
    public static func linspace(_ start: Double, _ stop: Double, count: Int = 50, dtype: DType = .float32) -> Tensor {
        opPrecondition(count >= 0, "linspace", "count must be non-negative, got \(count)")
        let step = count > 1 ? (stop - start) / Double(count - 1) : 0
        let values = arange(0, count, dtype: .float64) * step + start
        // Pin the last value exactly to `stop`, as numpy does.
        let exact = count > 1 ? which(arange(0, count) .== (count - 1), Tensor(stop), values) : values
        return exact.asType(dtype)
    }

    /// An `n × m` matrix with ones on diagonal `k` (above the main one for k > 0).
    public static func eye(_ n: Int, _ m: Int? = nil, k: Int = 0, dtype: DType = .float32) -> Tensor {
        let m = m ?? n
        opPrecondition(n >= 0 && m >= 0, "eye", "sizes must be non-negative, got \(n) × \(m)")
        let rows = arange(0, n, dtype: .int64).reshaped([n, 1])
        let cols = arange(0, m, dtype: .int64).reshaped([1, m])
        return (rows + k .== cols).asType(dtype)
    }

    /// The `n × n` identity matrix.
    public static func identity(_ n: Int, dtype: DType = .float32) -> Tensor { eye(n, dtype: dtype) }
}

func checkShape(_ shape: [Int], _ op: String) {
    opPrecondition(shape.allSatisfy { $0 >= 0 }, op, "shape \(shape) has a negative dimension")
}

/// How `meshgrid` orders its outputs' first two axes.
public enum MeshgridIndexing: Sendable {
    /// Cartesian: the first two axes swapped (numpy's default).
    case xy
    /// Matrix: output axis i follows input i.
    case ij
}

/// Coordinate grids from 1-D coordinate vectors, as numpy's `meshgrid`: output
/// i holds `arrays[i]` broadcast over the grid (sparse: shaped to broadcast, not copied out).
///
/// ```swift
/// let (x, y) = (Tensor([1, 2, 3]), Tensor([4, 5]))
/// let g = meshgrid([x, y])   // g[0]: [[1, 2, 3], [1, 2, 3]], g[1]: [[4, 4, 4], [5, 5, 5]]
/// ```
public func meshgrid(_ arrays: [Tensor], indexing: MeshgridIndexing = .xy, sparse: Bool = false) -> [Tensor] {
    let n = arrays.count
    let vectors = arrays.map { $0.flattened() }
    var sizes = vectors.map { $0.size }
    if indexing == .xy && n >= 2 { sizes.swapAt(0, 1) }
    return vectors.enumerated().map { i, v in
        var position = i
        if indexing == .xy && n >= 2 && i < 2 { position = 1 - i }
        var s = [Int](repeating: 1, count: n)
        s[position] = v.size
        let shaped = v.reshaped(s)
        return sparse ? shaped : shaped.broadcast(to: sizes)
    }
}
