// Host side of a kernel launch: how many blocks of how many threads, the
// strided layout a kernel gets (shape and strides collapsed to the fewest
// axes, rank ≤ 8), and the argument block cuLaunchKernel reads.

/// Blocks and threads of one launch (1-D).
struct LaunchGeometry: Equatable {
    let blocks: Int
    let threads: Int

    static let elementwiseThreads = 256
    static let reductionThreads = 256  // REDUCE_THREADS in reduce.cu

    /// Grid-stride element-wise kernels: enough blocks to fill the device
    /// (16 per multiprocessor), never more than there are elements for.
    static func elementwise(count: Int, multiprocessors: Int) -> LaunchGeometry {
        let needed = (count + elementwiseThreads - 1) / elementwiseThreads
        return LaunchGeometry(blocks: max(1, min(needed, max(1, multiprocessors) * 16)), threads: elementwiseThreads)
    }

    /// Reductions: one block per output element.
    static func reduction(outputs: Int) -> LaunchGeometry {
        LaunchGeometry(blocks: max(1, outputs), threads: reductionThreads)
    }
}

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
               strides.indices.allSatisfy({ outStrides[$0].last! == strides[$0][axis] * shape[axis] }) {
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

    /// The 8 int64s of a `Dims` argument.
    static func dims(_ values: [Int]) -> [Int64] {
        precondition(values.count <= maxRank, "rank \(values.count) > \(maxRank)")
        return values.map(Int64.init) + [Int64](repeating: 1, count: maxRank - values.count)
    }
}

/// The arguments of one launch, each stored at its C alignment; cuLaunchKernel
/// gets an array of pointers to them.
final class KernelArguments {
    private var storage: [UnsafeMutableRawPointer] = []

    deinit { storage.forEach { $0.deallocate() } }

    func add<T>(_ value: T) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: MemoryLayout<T>.size, alignment: MemoryLayout<T>.alignment)
        p.storeBytes(of: value, as: T.self)
        storage.append(p)
    }

    func addPointer(_ p: UnsafeRawPointer) { add(UInt64(UInt(bitPattern: p))) }
    func add(int64 value: Int) { add(Int64(value)) }
    func add(int32 value: Int) { add(Int32(value)) }

    /// A `Dims` struct: 8 int64 values.
    func add(dims values: [Int]) {
        let all = StridedLayout.dims(values)
        let p = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        for (i, v) in all.enumerated() { p.storeBytes(of: v, toByteOffset: i * 8, as: Int64.self) }
        storage.append(p)
    }

    func withPointers<R>(_ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) throws -> R) rethrows -> R {
        var pointers: [UnsafeMutableRawPointer?] = storage
        return try pointers.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
    }

    var count: Int { storage.count }
}
