// Indexing. Basic indices (integers, ranges, strides, newAxis, ellipsis;
// negative indices count from the end) are zero-copy strided views; integer
// tensors index with numpy's advanced-indexing rules through `gather`.
// Assignment through a subscript and `x.at[...]` return new tensors
// (`sliceUpdate` / `scatter`); `take`, `takeAlongAxis`, `putAlongAxis`,
// `dynamicSlice` and `dynamicSliceUpdate` build on the same two primitives.
//
//     x[0]              first row (axis removed)
//     x[0..., 1..<3]    columns 1 and 2
//     x[.ellipsis, -1]  last entry of the last axis
//     x[.stride(by: -1)]  reversed first axis
//     x[.newAxis, 0...] a new leading axis of size 1
//     x[0..., idx]      columns picked by an integer tensor
//     x[0..., 1] = v    x becomes a new tensor with column 1 replaced
//
// Tensor indices are checked only when the values are known, at run time:
// a negative index counts from the end once, and anything still out of range
// is clamped to the axis (MLX leaves it undefined; we never trap or read
// outside the buffer).

/// One entry of a subscript: `.index(i)`, `.slice(start:end:step:)`,
/// `.stride(from:to:by:)`, `.newAxis`, `.ellipsis`, an Int or range, or an
/// integer Tensor.
public struct TensorIndex: Sendable {
    enum Kind: Sendable {
        /// An integer index; removes the axis.
        case index(Int)
        /// `start ..< end` by `step` (nil bounds mean the whole axis in the step's direction).
        case slice(start: Int?, end: Int?, step: Int)
        /// A new axis of size 1.
        case newAxis
        /// As many full axes as needed.
        case ellipsis
        /// An integer tensor of indices into the axis (numpy advanced indexing).
        case tensor(Tensor)
    }

    let kind: Kind
}

/// Something a Tensor subscript accepts.
public protocol TensorIndexConvertible: Sendable {
    var tensorIndex: TensorIndex { get }
}

extension TensorIndex: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { self }
}

// The spellings of a TensorIndex, usable with a leading dot inside a subscript.
extension TensorIndexConvertible where Self == TensorIndex {
    /// An integer index; removes the axis.
    public static func index(_ i: Int) -> TensorIndex { TensorIndex(kind: .index(i)) }
    /// `start ..< end` by `step`; nil bounds cover the axis in the step's direction.
    public static func slice(start: Int? = nil, end: Int? = nil, step: Int = 1) -> TensorIndex {
        TensorIndex(kind: .slice(start: start, end: end, step: step))
    }
    /// Every `step`-th element of an axis, optionally between bounds.
    public static func stride(from start: Int? = nil, to end: Int? = nil, by step: Int) -> TensorIndex {
        slice(start: start, end: end, step: step)
    }
    /// A new axis of size 1.
    public static var newAxis: TensorIndex { TensorIndex(kind: .newAxis) }
    /// As many full axes as needed.
    public static var ellipsis: TensorIndex { TensorIndex(kind: .ellipsis) }
}
extension Tensor: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { TensorIndex(kind: .tensor(self)) }
}
extension Int: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .index(self) }
}
extension Range<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, end: upperBound, step: 1) }
}
extension ClosedRange<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex {
        .slice(start: lowerBound, end: upperBound == -1 ? nil : upperBound + 1, step: 1)
    }
}
extension PartialRangeFrom<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: lowerBound, end: nil, step: 1) }
}
extension PartialRangeUpTo<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: nil, end: upperBound, step: 1) }
}
extension PartialRangeThrough<Int>: TensorIndexConvertible {
    public var tensorIndex: TensorIndex { .slice(start: nil, end: upperBound == -1 ? nil : upperBound + 1, step: 1) }
}

extension Tensor {
    /// The elements picked by `indices`; assigning replaces them in a new tensor.
    ///
    /// ```swift
    /// let x = Tensor(0 ..< 12).reshaped(3, 4)
    /// x[1]                          // row 1, a view
    /// x[0..., Tensor([3, 0])]       // columns 3 and 0, shape [3, 2]
    /// var y = x
    /// y[0..., 1] = Tensor(0)        // y is a new tensor; x is unchanged
    /// ```
    public subscript(_ indices: any TensorIndexConvertible...) -> Tensor {
        get { self[indices.map(\.tensorIndex)] }
        set { self[indices.map(\.tensorIndex)] = newValue }
    }

    public subscript(_ indices: [TensorIndex]) -> Tensor {
        get { IndexPlan(shape: shape, indices: indices).read(self) }
        set { self = IndexPlan(shape: shape, indices: indices).update(self, with: newValue, .set) }
    }

    /// Scatter updates as new tensors: `x.at[idx].add(v)` adds `v` at `idx`,
    /// accumulating over repeated indices (unlike `x[idx] = x[idx] + v`).
    ///
    /// ```swift
    /// let counts = Tensor.zeros([5]).at[Tensor([1, 1, 3])].add(1)   // [0, 2, 0, 1, 0]
    /// ```
    public var at: TensorAt { TensorAt(base: self) }
}

/// The target of `x.at[...]`; see `Tensor.at`.
public struct TensorAt: Sendable {
    let base: Tensor
    public subscript(_ indices: any TensorIndexConvertible...) -> TensorAtIndices {
        TensorAtIndices(base: base, indices: indices.map(\.tensorIndex))
    }
}

/// `x.at[indices]`: combines values into the indexed elements, returning a new tensor.
/// The values broadcast to the shape `x[indices]` has and convert to x's dtype.
public struct TensorAtIndices: Sendable {
    let base: Tensor
    let indices: [TensorIndex]

    private func apply(_ op: ScatterOp, _ values: Tensor) -> Tensor {
        IndexPlan(shape: base.shape, indices: indices).update(base, with: values, op)
    }
    private func values(_ v: some TensorOperand) -> Tensor {
        v.tensorOperand.resolved(against: base.dtype).asType(base.dtype)
    }

    public func add(_ v: some TensorOperand) -> Tensor { apply(.add, values(v)) }
    public func subtract(_ v: some TensorOperand) -> Tensor { apply(.add, -values(v)) }
    public func multiply(_ v: some TensorOperand) -> Tensor { apply(.prod, values(v)) }
    public func divide(_ v: some TensorOperand) -> Tensor { apply(.prod, reciprocal(values(v)).asType(base.dtype)) }
    public func maximum(_ v: some TensorOperand) -> Tensor { apply(.max, values(v)) }
    public func minimum(_ v: some TensorOperand) -> Tensor { apply(.min, values(v)) }
}

/// A subscript resolved against a shape: one strided window over the input
/// (integers as size-1 ranges, tensor-indexed axes whole), then, when tensors
/// are present, a gather over their axes.
struct IndexPlan {
    enum Entry {
        case newAxis, integer(axis: Int), range(axis: Int), tensor(axis: Int, Tensor)
    }
    let entries: [Entry]
    var start: [Int] = [], end: [Int] = [], step: [Int] = []
    /// The window's shape (integer axes 1, tensor axes whole).
    var windowShape: [Int] = []
    let inputShape: [Int]

    init(shape: [Int], indices: [TensorIndex]) {
        inputShape = shape
        let ndim = shape.count
        let ellipses = indices.filter { if case .ellipsis = $0.kind { return true } else { return false } }.count
        opPrecondition(ellipses <= 1, "index", "at most one ellipsis is allowed")
        let consuming = indices.filter {
            switch $0.kind {
            case .index, .slice, .tensor: return true
            case .newAxis, .ellipsis: return false
            }
        }.count
        opPrecondition(consuming <= ndim, "index", "too many indices (\(consuming)) for shape \(shape)")

        // Expand the ellipsis (or pad at the end) to full slices.
        let whole = TensorIndex(kind: .slice(start: nil, end: nil, step: 1))
        var full: [TensorIndex] = []
        for entry in indices {
            if case .ellipsis = entry.kind {
                full += [TensorIndex](repeating: whole, count: ndim - consuming)
            } else {
                full.append(entry)
            }
        }
        if ellipses == 0 { full += [TensorIndex](repeating: whole, count: ndim - consuming) }

        var entries: [Entry] = []
        var axis = 0
        for entry in full {
            switch entry.kind {
            case .newAxis:
                entries.append(.newAxis)
                continue
            case .ellipsis:
                continue
            case .index(let i):
                let n = shape[axis]
                let j = i < 0 ? i + n : i
                opPrecondition(j >= 0 && j < n, "index", "index \(i) is out of bounds for axis \(axis) with size \(n)")
                start.append(j)
                end.append(j + 1)
                step.append(1)
                windowShape.append(1)
                entries.append(.integer(axis: axis))
            case .slice(let s, let e, let st):
                opPrecondition(st != 0, "index", "slice step cannot be zero")
                let (lo, hi) = clampedSliceBounds(s, e, st, shape[axis])
                start.append(lo)
                end.append(hi)
                step.append(st)
                windowShape.append(
                    st > 0 ? Swift.max(0, (hi - lo + st - 1) / st) : Swift.max(0, (lo - hi - st - 1) / -st))
                entries.append(.range(axis: axis))
            case .tensor(let t):
                opPrecondition(
                    t.dtype.isInteger, "index",
                    "a tensor index must have an integer dtype, got \(t.dtype) (shape \(t.shape)) for axis \(axis)")
                start.append(0)
                end.append(shape[axis])
                step.append(1)
                windowShape.append(shape[axis])
                entries.append(.tensor(axis: axis, t))
            }
            axis += 1
        }
        self.entries = entries
    }

    var tensorEntries: [(axis: Int, index: Tensor)] {
        entries.compactMap { if case .tensor(let a, let t) = $0 { return (a, t) } else { return nil } }
    }

    /// The broadcast shape of the tensor indices.
    var indexShape: [Int] {
        tensorEntries.reduce([Int]()) { broadcastShapes($0, $1.index.shape, "index") }
    }

    /// The sizes of the result axes that are not advanced (ranges and new axes),
    /// and where the broadcast index axes go among them: numpy puts them in
    /// place of the advanced entries when those (tensors and integers) are
    /// adjacent, and first otherwise.
    private var basicLayout: (sizes: [Int], indexPosition: Int) {
        var sizes: [Int] = []
        var firstAdvanced: Int?, lastAdvanced = -1, advancedCount = 0
        for (k, entry) in entries.enumerated() {
            switch entry {
            case .newAxis: sizes.append(1)
            case .range(let axis): sizes.append(windowShape[axis])
            case .integer, .tensor:
                if firstAdvanced == nil { firstAdvanced = sizes.count }
                lastAdvanced = k
                advancedCount += 1
            }
        }
        let firstEntry = entries.firstIndex {
            switch $0 {
            case .integer, .tensor: return true
            default: return false
            }
        }
        let adjacent = firstEntry.map { lastAdvanced - $0 + 1 == advancedCount } ?? true
        return (sizes, adjacent ? (firstAdvanced ?? 0) : 0)
    }

    private var isWholeInput: Bool {
        windowShape == inputShape && step.allSatisfy { $0 == 1 } && start.allSatisfy { $0 == 0 }
    }

    /// The window shape with each tensor-indexed axis reduced to 1.
    private var sliceSizes: [Int] {
        var sizes = windowShape
        for (axis, _) in tensorEntries { sizes[axis] = 1 }
        return sizes
    }

    /// The permutation from (index axes, basic axes) to the result's order.
    private func resultPermutation(indexRank: Int) -> [Int] {
        let (sizes, p) = basicLayout
        let basic = Array(indexRank..<(indexRank + sizes.count))
        return Array(basic[..<p]) + Array(0..<indexRank) + Array(basic[p...])
    }

    func read(_ x: Tensor) -> Tensor {
        let window = x.slice(start: start, end: end, stride: step)
        let tensors = tensorEntries
        let (sizes, _) = basicLayout
        if tensors.isEmpty { return window.reshaped(sizes) }
        let b = indexShape
        let gathered = gather(
            window, tensors.map { $0.index.broadcast(to: b) }, axes: tensors.map(\.axis), sliceSizes: sliceSizes,
            "index")
        return gathered.reshaped(b + sizes).transposed(axes: resultPermutation(indexRank: b.count))
    }

    /// `x` with the indexed elements combined with `values` (broadcast to the
    /// shape `read` gives) by `op`.
    func update(_ x: Tensor, with values: Tensor, _ op: ScatterOp) -> Tensor {
        let values = values.asType(x.dtype)
        let tensors = tensorEntries
        let (sizes, _) = basicLayout
        let window: Tensor
        if tensors.isEmpty {
            let readShape = sizes
            let v = values.broadcast(to: broadcastShapes(values.shape, readShape, "index update"))
            opPrecondition(
                v.shape == readShape, "index update",
                "values of shape \(values.shape) do not fit indexed shape \(readShape)")
            let update = v.reshaped(windowShape)
            switch op {
            case .set: window = update
            case .add: window = x.slice(start: start, end: end, stride: step) + update
            case .prod: window = x.slice(start: start, end: end, stride: step) * update
            case .max: window = Tessera.maximum(x.slice(start: start, end: end, stride: step), update)
            case .min: window = Tessera.minimum(x.slice(start: start, end: end, stride: step), update)
            }
        } else {
            let b = indexShape
            let perm = resultPermutation(indexRank: b.count)
            let readShape = perm.map { (b + sizes)[$0] }
            let v = values.broadcast(to: broadcastShapes(values.shape, readShape, "index update"))
            opPrecondition(
                v.shape == readShape, "index update",
                "values of shape \(values.shape) do not fit indexed shape \(readShape)")
            // Undo the result permutation, then give the update every window axis.
            var inverse = [Int](repeating: 0, count: perm.count)
            for (i, p) in perm.enumerated() { inverse[p] = i }
            let updates = v.transposed(axes: inverse).reshaped(b + sliceSizes)
            let base = isWholeInput ? x : x.slice(start: start, end: end, stride: step)
            let scattered = scatter(
                base, updates, tensors.map { $0.index.broadcast(to: b) }, axes: tensors.map(\.axis), op, "index update")
            if isWholeInput { return scattered }
            window = scattered
        }
        return sliceUpdate(x, window.asType(x.dtype), start: start, stride: step)
    }
}

// MARK: - The primitives' op-level constructors

/// `gather` with validation: indices integer and of one shape, slices inside x.
func gather(_ x: Tensor, _ indices: [Tensor], axes: [Int], sliceSizes: [Int], _ op: String) -> Tensor {
    opPrecondition(indices.count == axes.count, op, "\(indices.count) index tensors for \(axes.count) axes")
    opPrecondition(sliceSizes.count == x.ndim, op, "slice sizes \(sliceSizes) do not match shape \(x.shape)")
    let b = indices.first?.shape ?? []
    for t in indices {
        opPrecondition(t.dtype.isInteger, op, "indices must be integers, got \(t.dtype)")
        opPrecondition(t.shape == b, op, "index shapes \(indices.map(\.shape)) differ")
    }
    let empty = b.contains(0)
    for a in 0..<x.ndim {
        opPrecondition(
            sliceSizes[a] >= 0 && (sliceSizes[a] <= x.shape[a] || empty), op,
            "slice sizes \(sliceSizes) do not fit in shape \(x.shape)")
    }
    return Tensor(
        shape: b + sliceSizes, dtype: x.dtype, primitive: .gather(axes: axes, sliceSizes: sliceSizes),
        inputs: [x] + indices)
}

/// `scatter` with validation; `updates` has shape B + window (x.ndim sizes).
func scatter(_ x: Tensor, _ updates: Tensor, _ indices: [Tensor], axes: [Int], _ scatterOp: ScatterOp, _ op: String)
    -> Tensor
{
    opPrecondition(indices.count == axes.count, op, "\(indices.count) index tensors for \(axes.count) axes")
    let b = indices.first?.shape ?? []
    for t in indices {
        opPrecondition(t.dtype.isInteger, op, "indices must be integers, got \(t.dtype)")
        opPrecondition(t.shape == b, op, "index shapes \(indices.map(\.shape)) differ")
    }
    opPrecondition(
        updates.ndim == b.count + x.ndim && Array(updates.shape.prefix(b.count)) == b, op,
        "updates of shape \(updates.shape) do not match indices \(b) and shape \(x.shape)")
    let window = Array(updates.shape.suffix(x.ndim))
    let empty = updates.size == 0
    opPrecondition(
        empty || zip(window, x.shape).allSatisfy { $0 <= $1 }, op,
        "update windows \(window) do not fit in shape \(x.shape)")
    opPrecondition(
        x.dtype != .complex64 || scatterOp == .set || scatterOp == .add || scatterOp == .prod, op,
        "\(scatterOp.rawValue) is not supported for complex64")
    return Tensor(
        shape: x.shape, dtype: x.dtype, primitive: .scatter(scatterOp, axes: axes),
        inputs: [x, updates.asType(x.dtype)] + indices)
}

// MARK: - take, takeAlongAxis, putAlongAxis, dynamic slices

extension Tensor {
    /// The entries at `indices` along `axis` (of the flattened tensor when nil);
    /// the index axes replace `axis` in the result, as numpy's `take`.
    ///
    /// ```swift
    /// Tensor(0 ..< 6).reshaped(2, 3).take(Tensor([2, 0]), axis: 1)   // [[2, 0], [5, 3]]
    /// ```
    public func take(_ indices: Tensor, axis: Int? = nil) -> Tensor {
        guard let axis else { return flattened().take(indices, axis: 0) }
        let a = normalizeAxis(axis, ndim, "take")
        var entries = [TensorIndex](repeating: .slice(), count: a)
        entries.append(indices.tensorIndex)
        return self[entries]
    }

    /// The arange index tensors of every axis but `axis`, each shaped to broadcast over `shape`.
    private static func alongAxisIndices(_ index: Tensor, axis: Int, shape: [Int]) -> [Tensor] {
        shape.indices.map { a in
            if a == axis { return index.broadcast(to: shape) }
            var s = [Int](repeating: 1, count: shape.count)
            s[a] = shape[a]
            return Tensor.arange(0, shape[a]).reshaped(s).broadcast(to: shape)
        }
    }

    /// Values picked along `axis` by `indices` (of the tensor's rank; other
    /// axes broadcast), as numpy's `take_along_axis`.
    ///
    /// ```swift
    /// let i = x.argSort(axis: 1)
    /// x.takeAlongAxis(i, axis: 1)   // x sorted along axis 1
    /// ```
    public func takeAlongAxis(_ indices: Tensor, axis: Int) -> Tensor {
        let a = normalizeAxis(axis, ndim, "takeAlongAxis")
        opPrecondition(
            indices.ndim == ndim && indices.dtype.isInteger, "takeAlongAxis",
            "indices must be integers of rank \(ndim), got \(indices.dtype) \(indices.shape) for shape \(shape)")
        var xShape = shape
        xShape[a] = 1
        var outShape = broadcastShapes(xShape, indices.shape, "takeAlongAxis")
        outShape[a] = indices.shape[a]
        var source = outShape
        source[a] = shape[a]
        let x = broadcast(to: source)
        let index = Tensor.alongAxisIndices(indices, axis: a, shape: outShape)
        return gather(
            x, index, axes: Array(0..<ndim), sliceSizes: [Int](repeating: 1, count: ndim), "takeAlongAxis"
        ).reshaped(outShape)
    }

    /// A new tensor with `values` put at `indices` along `axis` (the inverse of
    /// `takeAlongAxis`), as numpy's `put_along_axis`; values convert to this dtype.
    public func putAlongAxis(_ indices: Tensor, values: some TensorOperand, axis: Int) -> Tensor {
        let a = normalizeAxis(axis, ndim, "putAlongAxis")
        opPrecondition(
            indices.ndim == ndim && indices.dtype.isInteger, "putAlongAxis",
            "indices must be integers of rank \(ndim), got \(indices.dtype) \(indices.shape) for shape \(shape)")
        var xShape = shape
        xShape[a] = 1
        var outShape = broadcastShapes(xShape, indices.shape, "putAlongAxis")
        outShape[a] = indices.shape[a]
        let v = values.tensorOperand.resolved(against: dtype).asType(dtype)
        opPrecondition(
            broadcastShapes(v.shape, outShape, "putAlongAxis") == outShape, "putAlongAxis",
            "values of shape \(v.shape) do not broadcast to \(outShape)")
        opPrecondition(
            outShape.indices.allSatisfy { $0 == a || outShape[$0] == shape[$0] }, "putAlongAxis",
            "indices of shape \(indices.shape) do not match shape \(shape) off axis \(a)")
        let index = Tensor.alongAxisIndices(indices, axis: a, shape: outShape)
        let updates = v.broadcast(to: outShape).reshaped(outShape + [Int](repeating: 1, count: ndim))
        return scatter(self, updates, index, axes: Array(0..<ndim), .set, "putAlongAxis")
    }
}

/// The start scalars of a dynamic slice, one 0-d integer tensor per axis.
private func dynamicStarts(_ start: Tensor, count: Int, _ op: String) -> [Tensor] {
    opPrecondition(
        start.dtype.isInteger && start.size == count && start.ndim <= 1, op,
        "start must hold \(count) integers, got \(start.dtype) of shape \(start.shape)")
    let flat = start.reshaped([count])
    return (0..<count).map { flat[$0] }
}

/// The window of `sizes` along `axes` starting at the run-time offsets in
/// `start` (one integer per axis); other axes are whole. Starts are clamped
/// so the window fits (a negative start counts from the end first).
///
/// ```swift
/// let row = dynamicSlice(x, start: Tensor([i]), axes: [0], sizes: [1])
/// ```
public func dynamicSlice(_ x: Tensor, start: Tensor, axes: [Int], sizes: [Int]) -> Tensor {
    opPrecondition(axes.count == sizes.count, "dynamicSlice", "\(axes.count) axes but \(sizes.count) sizes")
    let axes = axes.map { normalizeAxis($0, x.ndim, "dynamicSlice") }
    opPrecondition(Set(axes).count == axes.count, "dynamicSlice", "duplicate axes in \(axes)")
    var sliceSizes = x.shape
    for (a, n) in zip(axes, sizes) {
        opPrecondition(
            n >= 0 && n <= x.shape[a], "dynamicSlice", "size \(n) does not fit axis \(a) of shape \(x.shape)")
        sliceSizes[a] = n
    }
    return gather(
        x, dynamicStarts(start, count: axes.count, "dynamicSlice"), axes: axes, sliceSizes: sliceSizes, "dynamicSlice")
}

/// `x` with `update` (of x's rank) written at the run-time offsets `start`
/// along `axes` (0 on other axes); starts are clamped as in `dynamicSlice`.
public func dynamicSliceUpdate(_ x: Tensor, _ update: Tensor, start: Tensor, axes: [Int]) -> Tensor {
    let axes = axes.map { normalizeAxis($0, x.ndim, "dynamicSliceUpdate") }
    opPrecondition(Set(axes).count == axes.count, "dynamicSliceUpdate", "duplicate axes in \(axes)")
    opPrecondition(
        update.ndim == x.ndim && zip(update.shape, x.shape).allSatisfy { $0 <= $1 }, "dynamicSliceUpdate",
        "update of shape \(update.shape) does not fit in shape \(x.shape)")
    return scatter(
        x, update, dynamicStarts(start, count: axes.count, "dynamicSliceUpdate"), axes: axes, .set, "dynamicSliceUpdate"
    )
}

/// numpy's slice bound rules for an axis of size n.
func clampedSliceBounds(_ start: Int?, _ end: Int?, _ step: Int, _ n: Int) -> (Int, Int) {
    func clamp(_ v: Int, _ lo: Int, _ hi: Int) -> Int { Swift.min(Swift.max(v, lo), hi) }
    if step > 0 {
        let s = start.map { clamp($0 < 0 ? $0 + n : $0, 0, n) } ?? 0
        let e = end.map { clamp($0 < 0 ? $0 + n : $0, 0, n) } ?? n
        return (s, e)
    } else {
        let s = start.map { clamp($0 < 0 ? $0 + n : $0, -1, n - 1) } ?? n - 1
        let e = end.map { clamp($0 < 0 ? $0 + n : $0, -1, n - 1) } ?? -1
        return (s, e)
    }
}
