// Host side of a kernel launch: how many blocks of how many threads (1-D
// `LaunchGeometry`; 3-D `CUDAGeometry.Launch`, whose per-family constants
// live in the family files), the `Dims` form of a strided layout
// (Backends/Common/StridedLayout.swift), and the argument block
// cuLaunchKernel reads.

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

extension StridedLayout {
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

/// 3-D launch shapes of the CUDA kernels. Each family file adds its
/// constants (mirroring its .cu file) and launch functions.
enum CUDAGeometry {
    static let maxGridY = 65535

    struct Launch: Equatable {
        var grid: (Int, Int, Int)
        var block: (Int, Int, Int)
        var sharedBytes: Int = 0

        static func == (a: Launch, b: Launch) -> Bool {
            a.grid == b.grid && a.block == b.block && a.sharedBytes == b.sharedBytes
        }
    }

    static func blocks(_ count: Int, per: Int) -> Int { max(1, (count + per - 1) / per) }
}

extension RowLayout {
    /// The kept axes as a row kernel's (rank, Dims shape, Dims strides) arguments.
    func add(to args: KernelArguments) {
        args.add(int32: kept.rank)
        args.add(dims: kept.shape)
        args.add(dims: kept.strides[0])
    }
}
