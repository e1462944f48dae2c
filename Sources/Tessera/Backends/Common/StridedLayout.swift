// Strided layouts shared by the backends' kernels: a shape with each
// operand's strides, collapsed to the fewest axes (rank ≤ 8, the kernels'
// limit); the rows of an array along one axis; a row-wise op's kept axes.
// Pure: unit-tested without a GPU (CUDATests, CUDADenseTests, CUDAIndexingTests).

/// A shape and the strides of each operand over it, as a kernel takes them.
struct StridedLayout: Equatable {
    static let maxRank = 8  // TESSERA_MAX_DIMS in common.cuh

    var shape: [Int]
    var strides: [[Int]]

    /// All operands contiguous: the kernel indexes linearly (ndim 0).
    var isContiguous: Bool { shape.isEmpty }
    var rank: Int { shape.count }

    /// Drops size-1 axes and merges neighbours that are contiguous with each
    /// other in every operand; if what is left is one axis of stride 1 in
    /// every operand, the layout is contiguous (empty shape).
    /// `linear: false` keeps at least the merged axes (a reduction's kept and
    /// reduced parts index with them even when contiguous).
    static func collapse(shape: [Int], strides: [[Int]], linear: Bool = true) -> StridedLayout {
        var outShape: [Int] = []
        var outStrides: [[Int]] = strides.map { _ in [] }
        for axis in shape.indices where shape[axis] != 1 {
            if let last = outShape.last,
                strides.indices.allSatisfy({ outStrides[$0].last! == strides[$0][axis] * shape[axis] })
            {
                outShape[outShape.count - 1] = last * shape[axis]
                for k in strides.indices { outStrides[k][outStrides[k].count - 1] = strides[k][axis] }
            } else {
                outShape.append(shape[axis])
                for k in strides.indices { outStrides[k].append(strides[k][axis]) }
            }
        }
        if linear && outShape.count <= 1 && outStrides.allSatisfy({ $0.first ?? 1 == 1 }) {
            return StridedLayout(shape: [], strides: strides.map { _ in [] })
        }
        return StridedLayout(shape: outShape, strides: outStrides)
    }

    /// The kept axes of a row-wise op along `axis` (shape and per-operand
    /// strides merged), or nil when more than 8 remain.
    static func rows(shape: [Int], axis: Int, strides: [[Int]]) -> StridedLayout? {
        var kept = shape
        kept.remove(at: axis)
        let keptStrides = strides.map { s -> [Int] in
            var s = s
            s.remove(at: axis)
            return s
        }
        let layout = StridedLayout.collapse(shape: kept, strides: keptStrides, linear: false)
        return layout.rank <= StridedLayout.maxRank ? layout : nil
    }
}

/// The rows of an array along its last axis (or `axis`) as the row kernels take them.
struct RowLayout: Equatable {
    let rows: Int
    let length: Int
    let stride: Int
    let kept: StridedLayout

    /// nil when the other axes do not fit in 8 after merging.
    init?(shape: [Int], strides: [Int], axis: Int? = nil) {
        let axis = axis ?? shape.count - 1
        length = shape.isEmpty ? 1 : shape[axis]
        stride = shape.isEmpty ? 1 : strides[axis]
        let keptAxes = shape.indices.filter { $0 != axis }
        rows = keptAxes.reduce(1) { $0 * shape[$1] }
        kept = StridedLayout.collapse(
            shape: keptAxes.map { shape[$0] }, strides: [keptAxes.map { strides[$0] }], linear: false)
        guard kept.rank <= StridedLayout.maxRank else { return nil }
    }
}
