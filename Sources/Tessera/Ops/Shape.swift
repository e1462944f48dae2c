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
        // A reshape of a pending reshape is one reshape of its input: a node
        // less to build and schedule (decode steps split heads this way).
        if case .reshape = node.primitive, let source = node.inputs.first, source.shape != shape {
            return Tensor(shape: shape, dtype: dtype, primitive: .reshape, inputs: [Tensor(node: source)])
        } else if case .reshape = node.primitive, let source = node.inputs.first {
            return Tensor(node: source)
        }
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
        // Moving only size-1 axes keeps the elements' order: a reshape, which
        // folds into a neighbouring one.
        let kept = perm.filter { shape[$0] != 1 }
        if zip(kept, kept.dropFirst()).allSatisfy({ $0 < $1 }) { return reshaped(perm.map { shape[$0] }) }
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
    package func slice(start: [Int], end: [Int], stride: [Int]) -> Tensor {
        let newShape = start.indices.map { i -> Int in
            let s = stride[i]
            return s > 0
                ? Swift.max(0, (end[i] - start[i] + s - 1) / s) : Swift.max(0, (start[i] - end[i] - s - 1) / -s)
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
    return Tensor(
        shape: shape, dtype: dtype, primitive: .concatenate(axis: a), inputs: tensors.map { $0.asType(dtype) })
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

// MARK: - Padding, tiling, repetition, rolling

/// How `padded` fills the new border.
public enum PadMode: Sendable {
    /// A constant value.
    case constant
    /// Copies of the edge values.
    case edge
}

extension Tensor {
    /// The tensor with `widths[i].before` / `.after` new entries on each side of
    /// axis i (one pair for every axis, or a single pair for all axes).
    ///
    /// ```swift
    /// Tensor([1, 2] as [Float]).padded([(1, 2)])                // [0, 1, 2, 0, 0]
    /// Tensor([1, 2] as [Float]).padded([(1, 1)], mode: .edge)   // [1, 1, 2, 2]
    /// ```
    public func padded(_ widths: [(before: Int, after: Int)], mode: PadMode = .constant, value: any TensorOperand = 0)
        -> Tensor
    {
        opPrecondition(
            widths.count == ndim || widths.count == 1, "pad",
            "\(widths.count) pad widths for shape \(shape) (need 1 or \(ndim))")
        let pairs = widths.count == ndim ? widths : [(before: Int, after: Int)](repeating: widths[0], count: ndim)
        opPrecondition(
            pairs.allSatisfy { $0.before >= 0 && $0.after >= 0 }, "pad",
            "pad widths \(pairs.map { [$0.before, $0.after] }) must be non-negative")
        switch mode {
        case .constant:
            let fill = value.tensorOperand.resolved(against: dtype).asType(dtype)
            opPrecondition(fill.size == 1, "pad", "the pad value must be a scalar, got shape \(fill.shape)")
            if pairs.allSatisfy({ $0.before == 0 && $0.after == 0 }) { return self }
            let outShape = shape.indices.map { shape[$0] + pairs[$0].before + pairs[$0].after }
            let border = Tensor.full(outShape, value: fill.reshaped([]))
            return sliceUpdate(border, self, start: pairs.map(\.before), stride: [Int](repeating: 1, count: ndim))
        case .edge:
            var result = self
            for axis in 0..<ndim where pairs[axis].before > 0 || pairs[axis].after > 0 {
                let n = result.shape[axis]
                opPrecondition(n > 0, "pad", "cannot edge-pad the empty axis \(axis) of shape \(shape)")
                func edge(_ i: Int, _ count: Int) -> Tensor {
                    var start = [Int](repeating: 0, count: ndim), end = result.shape
                    start[axis] = i
                    end[axis] = i + 1
                    var target = result.shape
                    target[axis] = count
                    return result.slice(start: start, end: end, stride: [Int](repeating: 1, count: ndim))
                        .broadcast(to: target)
                }
                var parts: [Tensor] = []
                if pairs[axis].before > 0 { parts.append(edge(0, pairs[axis].before)) }
                parts.append(result)
                if pairs[axis].after > 0 { parts.append(edge(n - 1, pairs[axis].after)) }
                result = concatenated(parts, axis: axis)
            }
            return result
        }
    }

    /// The tensor repeated `reps[i]` times along each axis, as numpy's `tile`
    /// (missing leading reps count as 1; extra reps add leading axes).
    ///
    /// ```swift
    /// Tensor([1, 2]).tiled([2, 2])   // [[1, 2, 1, 2], [1, 2, 1, 2]]
    /// ```
    public func tiled(_ reps: [Int]) -> Tensor {
        opPrecondition(reps.allSatisfy { $0 >= 0 }, "tile", "repetitions \(reps) must be non-negative")
        let rank = Swift.max(ndim, reps.count)
        let dims = [Int](repeating: 1, count: rank - ndim) + shape
        let r = [Int](repeating: 1, count: rank - reps.count) + reps
        let interleaved = (0..<rank).flatMap { [1, dims[$0]] }
        let target = (0..<rank).flatMap { [r[$0], dims[$0]] }
        return reshaped(interleaved).broadcast(to: target).reshaped((0..<rank).map { r[$0] * dims[$0] })
    }

    /// Each entry repeated `count` times in place along `axis` (of the flattened
    /// tensor when nil), as numpy's `repeat`.
    ///
    /// ```swift
    /// Tensor([1, 2]).repeated(2)   // [1, 1, 2, 2]
    /// ```
    public func repeated(_ count: Int, axis: Int? = nil) -> Tensor {
        opPrecondition(count >= 0, "repeat", "count \(count) must be non-negative")
        guard let axis else { return flattened().repeated(count, axis: 0) }
        let a = normalizeAxis(axis, ndim, "repeat")
        var target = shape
        target.insert(count, at: a + 1)
        var merged = shape
        merged[a] *= count
        return expandedDimensions(axis: a + 1).broadcast(to: target).reshaped(merged)
    }

    /// The entries shifted by `shift` along `axis` (of the flattened tensor when
    /// nil), those pushed off one end coming back at the other, as numpy's `roll`.
    ///
    /// ```swift
    /// Tensor([1, 2, 3]).rolled(1)   // [3, 1, 2]
    /// ```
    public func rolled(_ shift: Int, axis: Int? = nil) -> Tensor {
        guard let axis else { return flattened().rolled(shift, axis: 0).reshaped(shape) }
        return rolled([shift], axes: [axis])
    }

    /// The entries shifted by `shifts[i]` along `axes[i]`.
    public func rolled(_ shifts: [Int], axes: [Int]) -> Tensor {
        opPrecondition(shifts.count == axes.count, "roll", "\(shifts.count) shifts for \(axes.count) axes")
        var result = self
        for (shift, axis) in zip(shifts, axes) {
            let a = normalizeAxis(axis, ndim, "roll")
            let n = shape[a]
            guard n > 0 else { continue }
            let s = ((shift % n) + n) % n
            if s == 0 { continue }
            let parts = result.split(indices: [n - s], axis: a)
            result = concatenated([parts[1], parts[0]], axis: a)
        }
        return result
    }
}
