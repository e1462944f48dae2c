// Shape ops: reshape, flatten, squeeze, expand, transpose, swap/move axes,
// broadcast, concatenate, stack, split. All but concatenate are views when
// the strides allow.

extension Tensor {
    /// The same elements in `shape`; one dimension may be -1 (inferred).
    public func reshaped(_ shape: [Int]) -> Tensor {
        var shape = shape
        let inferred = shape.indices.filter { shape[$0] == -1 }
        opPrecondition(inferred.count <= 1, "reshape", "at most one dimension may be -1, got \(shape)")
        opPrecondition(shape.allSatisfy { $0 >= -1 }, "reshape", "invalid shape \(shape)")
        if let i = inferred.first {
            let known = shape.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            opPrecondition(
                known > 0 && size % known == 0, "reshape",
                "cannot reshape array of shape \(self.shape) into \(shape)")
            shape[i] = size / known
        }
        opPrecondition(
            shape.reduce(1, *) == size, "reshape", "cannot reshape array of shape \(self.shape) into \(shape)")
        if shape == self.shape { return self }
        return Tensor(shape: shape, dtype: dtype, primitive: .reshape, inputs: [self])
    }

    public func reshaped(_ shape: Int...) -> Tensor { reshaped(shape) }

    /// Axes `startAxis...endAxis` merged into one.
    public func flattened(startAxis: Int = 0, endAxis: Int = -1) -> Tensor {
        if ndim == 0 { return reshaped([1]) }
        let s = normalizeAxis(startAxis, ndim, "flatten"), e = normalizeAxis(endAxis, ndim, "flatten")
        opPrecondition(s <= e, "flatten", "startAxis \(startAxis) is after endAxis \(endAxis)")
        let merged = shape[s...e].reduce(1, *)
        return reshaped(Array(shape[..<s]) + [merged] + Array(shape[(e + 1)...]))
    }

    /// Without the given size-1 axes (all size-1 axes when nil).
    public func squeezed(axes: [Int]? = nil) -> Tensor {
        let drop: [Int]
        if let axes {
            drop = normalizeAxes(axes, ndim, "squeeze")
            for a in drop {
                opPrecondition(shape[a] == 1, "squeeze", "axis \(a) of shape \(shape) has size \(shape[a]), not 1")
            }
        } else {
            drop = shape.indices.filter { shape[$0] == 1 }
        }
        return reshaped(shape.indices.filter { !drop.contains($0) }.map { shape[$0] })
    }

    public func squeezed(axis: Int) -> Tensor { squeezed(axes: [axis]) }

    /// With new size-1 axes at `axes` (positions in the result).
    public func expandedDimensions(axes: [Int]) -> Tensor {
        let outDims = ndim + axes.count
        let positions = Set(axes.map { normalizeAxis($0, outDims, "expandedDimensions") })
        opPrecondition(positions.count == axes.count, "expandedDimensions", "duplicate axes in \(axes)")
        var newShape: [Int] = []
        var source = shape.makeIterator()
        for i in 0..<outDims { newShape.append(positions.contains(i) ? 1 : source.next()!) }
        return reshaped(newShape)
    }

    public func expandedDimensions(axis: Int) -> Tensor { expandedDimensions(axes: [axis]) }

    /// Axes permuted by `axes` (reversed when nil).
    public func transposed(axes: [Int]? = nil) -> Tensor {
        let perm = axes.map { $0.map { normalizeAxis($0, ndim, "transpose") } } ?? Array((0..<ndim).reversed())
        opPrecondition(
            perm.count == ndim && Set(perm).count == ndim, "transpose",
            "axes \(axes ?? []) are not a permutation of the \(ndim) axes of shape \(shape)")
        if perm == Array(0..<ndim) { return self }
        return Tensor(shape: perm.map { shape[$0] }, dtype: dtype, primitive: .transpose(axes: perm), inputs: [self])
    }

    public func transposed(_ axes: Int...) -> Tensor { transposed(axes: axes) }

    /// The matrix transpose of the last two axes; `.T` in numpy for 2-D.
    public var T: Tensor { transposed() }

    public func swappedAxes(_ a: Int, _ b: Int) -> Tensor {
        var perm = Array(0..<ndim)
        perm.swapAt(normalizeAxis(a, ndim, "swappedAxes"), normalizeAxis(b, ndim, "swappedAxes"))
        return transposed(axes: perm)
    }

    public func movedAxis(source: Int, destination: Int) -> Tensor {
        var perm = Array(0..<ndim)
        let s = normalizeAxis(source, ndim, "movedAxis"), d = normalizeAxis(destination, ndim, "movedAxis")
        perm.remove(at: s)
        perm.insert(s, at: d)
        return transposed(axes: perm)
    }

    /// A view repeating size-1 (and missing leading) axes up to `shape`.
    public func broadcast(to shape: [Int]) -> Tensor {
        if shape == self.shape { return self }
        opPrecondition(
            shape.count >= ndim && broadcastShapes(self.shape, shape, "broadcast") == shape, "broadcast",
            "cannot broadcast shape \(self.shape) to \(shape)")
        return Tensor(shape: shape, dtype: dtype, primitive: .broadcast, inputs: [self])
    }

    /// A row-major copy (a no-op for a tensor that needs none is not guaranteed).
    public func contiguous() -> Tensor {
        Tensor(shape: shape, dtype: dtype, primitive: .copy, inputs: [self])
    }

    /// Equal parts along `axis`; `parts` must divide its size.
    public func split(parts: Int, axis: Int = 0) -> [Tensor] {
        let a = normalizeAxis(axis, ndim, "split")
        opPrecondition(
            parts > 0 && shape[a] % parts == 0, "split", "\(parts) parts do not divide axis \(a) of shape \(shape)")
        let n = shape[a] / parts
        return split(indices: (1..<parts).map { $0 * n }, axis: a)
    }

    /// Pieces cut before each of `indices` along `axis`.
    public func split(indices: [Int], axis: Int = 0) -> [Tensor] {
        let a = normalizeAxis(axis, ndim, "split")
        let bounds = [0] + indices.map { Swift.min(Swift.max($0 < 0 ? $0 + shape[a] : $0, 0), shape[a]) } + [shape[a]]
        return (0..<(bounds.count - 1)).map { i in
            var start = [Int](repeating: 0, count: ndim), end = shape
            start[a] = bounds[i]
            end[a] = Swift.max(bounds[i], bounds[i + 1])
            return slice(start: start, end: end, stride: [Int](repeating: 1, count: ndim))
        }
    }

    /// `self[start ..< end by stride]` per axis (clamped already), as a view.
    func slice(start: [Int], end: [Int], stride: [Int]) -> Tensor {
        let newShape = start.indices.map { i -> Int in
            let s = stride[i]
            return s > 0 ? Swift.max(0, (end[i] - start[i] + s - 1) / s) : Swift.max(0, (start[i] - end[i] - s - 1) / -s)
        }
        if newShape == shape && stride.allSatisfy({ $0 == 1 }) { return self }
        return Tensor(shape: newShape, dtype: dtype, primitive: .slice(start: start, stride: stride), inputs: [self])
    }
}

/// The tensors joined along `axis` (promoted to a common dtype).
public func concatenated(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    opPrecondition(!tensors.isEmpty, "concatenate", "needs at least one tensor")
    let first = tensors[0]
    opPrecondition(first.ndim > 0, "concatenate", "cannot concatenate 0-dimensional tensors")
    let a = normalizeAxis(axis, first.ndim, "concatenate")
    let dtype = tensors.dropFirst().reduce(first.dtype) { promoteTypes($0, $1.dtype) }
    var shape = first.shape
    shape[a] = 0
    for t in tensors {
        opPrecondition(
            t.ndim == first.ndim
                && t.shape.indices.allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
            "concatenate", "shapes \(tensors.map(\.shape)) do not match outside axis \(a)")
        shape[a] += t.shape[a]
    }
    if tensors.count == 1 { return first.asType(dtype) }
    return Tensor(shape: shape, dtype: dtype, primitive: .concatenate(axis: a), inputs: tensors.map { $0.asType(dtype) })
}

/// The tensors (all of one shape) stacked along a new axis.
public func stacked(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    opPrecondition(!tensors.isEmpty, "stack", "needs at least one tensor")
    let shape = tensors[0].shape
    opPrecondition(
        tensors.allSatisfy { $0.shape == shape }, "stack", "all shapes must be equal, got \(tensors.map(\.shape))")
    let a = normalizeAxis(axis, shape.count + 1, "stack")
    return concatenated(tensors.map { $0.expandedDimensions(axis: a) }, axis: a)
}
