// Sorting along an axis: sorted, argSort, partitioned, argPartition, topK.
// Ascending with NaN last, as numpy and MLX; argSort is stable; index
// results are uint32. `axis: nil` works on the flattened tensor.

extension Tensor {
    private func sortInput(_ axis: Int?, _ op: String) -> (Tensor, Int) {
        opPrecondition(dtype != .complex64, op, "not supported for complex64 (shape \(shape))")
        guard let axis else { return (flattened(), 0) }
        opPrecondition(ndim > 0, op, "needs at least one axis, got shape \(shape)")
        return (self, normalizeAxis(axis, ndim, op))
    }

    private func sortNode(_ op: SortOp, _ axis: Int?, _ name: String) -> Tensor {
        let (x, a) = sortInput(axis, name)
        let dtype: DType
        switch op {
        case .sort, .partition: dtype = x.dtype
        case .argSort, .argPartition: dtype = .uint32
        }
        return Tensor(shape: x.shape, dtype: dtype, primitive: .sort(op, axis: a), inputs: [x])
    }

    private func kthIndex(_ kth: Int, _ axis: Int?, _ op: String) -> Int {
        let n = axis.map { dim($0) } ?? size
        let k = kth < 0 ? kth + n : kth
        opPrecondition(k >= 0 && k < n, op, "kth \(kth) is out of range for an axis of size \(n) (shape \(shape))")
        return k
    }

    /// The values sorted ascending along `axis` (NaN last).
    ///
    /// ```swift
    /// Tensor([3, 1, 2] as [Float]).sorted()   // [1, 2, 3]
    /// ```
    /// - Complexity: O(n log n) per row.
    public func sorted(axis: Int? = -1) -> Tensor { sortNode(.sort, axis, "sort") }

    /// The uint32 indices that sort `axis` ascending; equal values keep their order.
    public func argSort(axis: Int? = -1) -> Tensor { sortNode(.argSort, axis, "argSort") }

    /// The values rearranged so entry `kth` holds the value it would have
    /// sorted, with no larger value before it and no smaller after it
    /// (the order within each side is unspecified).
    public func partitioned(kth: Int, axis: Int? = -1) -> Tensor {
        sortNode(.partition(kth: kthIndex(kth, axis, "partition")), axis, "partition")
    }

    /// The uint32 indices of `partitioned(kth:axis:)`.
    public func argPartition(kth: Int, axis: Int? = -1) -> Tensor {
        sortNode(.argPartition(kth: kthIndex(kth, axis, "argPartition")), axis, "argPartition")
    }

    /// The `k` largest values along `axis`, largest first, and their uint32 indices.
    ///
    /// ```swift
    /// let (v, i) = Tensor([1, 5, 3] as [Float]).topK(2)   // v = [5, 3], i = [1, 2]
    /// ```
    public func topK(_ k: Int, axis: Int = -1) -> (values: Tensor, indices: Tensor) {
        let a = normalizeAxis(axis, ndim, "topK")
        opPrecondition(k >= 0 && k <= shape[a], "topK", "k = \(k) is out of range for axis \(a) of shape \(shape)")
        let order = argSort(axis: a)
        var entries = [TensorIndex](repeating: .slice(), count: a)
        entries.append(.slice(start: shape[a] - 1, end: shape[a] - 1 - k < 0 ? nil : shape[a] - 1 - k, step: -1))
        let indices = order[entries]
        return (takeAlongAxis(indices, axis: a), indices)
    }
}
