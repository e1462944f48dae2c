// Reading values out: item, toArray, raw bytes, and the MLX-style description.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Tensor {
    /// The single element of a size-1 tensor, converted to `T`.
    ///
    /// ```swift
    /// let s = Tensor([1, 2, 3] as [Float]).sum().item(Float.self)   // 6
    /// ```
    public func item<T: TensorElement>(_: T.Type = T.self) -> T {
        opPrecondition(size == 1, "item", "needs a tensor of one element, got shape \(shape)")
        return toArray(T.self)[0]
    }

    /// All elements in row-major order, converted to `T`. Evaluates the tensor if
    /// needed and, like `eval`, traps if that fails (memory past the limit, a
    /// device error): call `checkedEval` first to handle those as errors.
    public func toArray<T: TensorElement>(_: T.Type = T.self) -> [T] {
        if T.self == Int.self { return toArray(Int64.self).map { Int($0) as! T } }
        let source = dtype == T.dtype ? self : asType(T.dtype)
        let view = source.view()
        var result = [T]()
        result.reserveCapacity(view.count)
        do {
            let p = try view.hostPointer(T.self)
            let it = StridedIteration(shape: view.shape, strides: [view.strides])
            let n = it.rowLength, s = it.innerStride(0)
            it.forEachRow { o in
                // Whole rows at once: a per-element append is a generic call per element here.
                if s == 1 {
                    result.append(contentsOf: UnsafeBufferPointer(start: p + o[0], count: n))
                } else {
                    for i in 0..<n { result.append(p[o[0] + i * s]) }
                }
            }
        } catch {
            fatalError("[toArray] \(error)")
        }
        return result
    }

    /// Calls `body` with the elements as float32 in row-major order: in place
    /// when the evaluated tensor is row-contiguous float32 in host memory (no
    /// copy, no allocation), else from a converted contiguous copy. Throws
    /// where evaluation fails. The pointer is valid only inside `body`.
    package func withHostFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) throws -> R {
        let source = dtype == .float32 ? self : asType(.float32)
        try checkedEval([source])
        var view = source.view()
        if !view.isRowContiguous {
            let copy = source.contiguous()
            try checkedEval([copy])
            view = copy.view()
        }
        let p = try view.hostPointer(Float.self)
        return try withExtendedLifetime(view) { try body(UnsafeBufferPointer(start: p, count: view.count)) }
    }

    /// The elements' bytes in row-major order (little-endian), as numpy's `tobytes()`.
    /// Traps where evaluation fails, as `toArray` does.
    public func bytes() -> [UInt8] {
        let c = contiguous().view()
        let count = c.count * dtype.size
        guard count > 0 else { return [] }
        do {
            let p = try c.buffer.hostPointer() + c.offset * dtype.size
            return Array(UnsafeRawBufferPointer(start: p, count: count))
        } catch {
            fatalError("[bytes] \(error)")
        }
    }
}

extension Tensor: CustomStringConvertible {
    /// Prints like MLX: `array([[1, 2],\n       [3, 4]], dtype=int32)`; axes
    /// longer than 6 show their first and last 3 entries.
    public var description: String {
        let values = formattedElements()
        var text = "array("
        let indent = String(repeating: " ", count: 6)
        func emit(_ axis: Int, _ offset: Int) {
            if axis == shape.count {
                text += values[offset]
                return
            }
            let n = shape[axis]
            let inner = shape[(axis + 1)...].reduce(1, *)
            text += "["
            let shown: [Int?] = n > 6 ? [0, 1, 2, nil, n - 3, n - 2, n - 1] : (0..<n).map { $0 }
            for (j, i) in shown.enumerated() {
                if j > 0 {
                    text += axis == shape.count - 1 ? ", " : ",\n" + indent + String(repeating: " ", count: axis + 1)
                }
                if let i { emit(axis + 1, offset + i * inner) } else { text += "..." }
            }
            text += "]"
        }
        if size == 0 && !shape.isEmpty && shape[0] == 0 {
            text += "[]"
        } else {
            emit(0, 0)
        }
        return text + ", dtype=\(dtype))"
    }

    /// Each element as MLX prints it (floats as C's `%g`).
    private func formattedElements() -> [String] {
        switch dtype {
        case .bool: return toArray(Bool.self).map { $0 ? "True" : "False" }
        case .uint8, .uint16, .uint32, .uint64: return toArray(UInt64.self).map { String($0) }
        case .int8, .int16, .int32, .int64: return toArray(Int64.self).map { String($0) }
        case .float16, .float32, .float64, .bfloat16: return toArray(Double.self).map(formatG)
        case .complex64:
            return toArray(Complex64.self).map { z in
                let im = formatG(Double(z.imaginary))
                return formatG(Double(z.real)) + (im.hasPrefix("-") ? im : "+" + im) + "j"
            }
        }
    }
}

/// `printf("%g", x)`, spelling NaN and infinities as numpy does.
func formatG(_ x: Double) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x < 0 ? "-inf" : "inf" }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 32) { buf in
        _ = withVaList([x]) { vsnprintf(buf.baseAddress!, 32, "%g", $0) }
        return String(cString: buf.baseAddress!)
    }
}
