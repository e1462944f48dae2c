// Host kernels: one node of the graph whose work is a closure given by code
// of this package outside Tessera's own ops (TesseraLM's batched attention
// step, Serving/BatchedAttention.swift). The CPU backend allocates the
// row-contiguous output and hands the closure every input's memory and
// layout. A closure may also write into an input's buffer in place: only
// when its caller holds the only reference to that input and reads it again
// only after this node (a key/value cache's buffer, written past the
// positions any view of it covers). Not differentiable, never merged with
// another node, CPU only.

/// The work of a `.host` node; compared by identity.
public final class HostKernel: @unchecked Sendable {
    package let name: String
    package let body: (_ inputs: [HostArray], _ output: HostArray) throws -> Void

    package init(name: String, body: @escaping (_ inputs: [HostArray], _ output: HostArray) throws -> Void) {
        self.name = name
        self.body = body
    }
}

/// An evaluated input or the output of a host kernel: its element 0, its
/// layout in elements, and the elements its buffer holds from element 0 on.
package struct HostArray {
    package let pointer: UnsafeMutableRawPointer
    package let shape: [Int]
    package let strides: [Int]
    package let dtype: DType
    /// Elements from `pointer` to the end of the buffer (a bound for writes).
    package let available: Int

    package var isRowContiguous: Bool { strides == contiguousStrides(shape) || shape.reduce(1, *) <= 1 }

    init(_ view: ArrayView) throws {
        _ = try view.buffer.hostPointer()  // current on the host first (a kernel may read, then write)
        pointer = try view.buffer.hostPointer(forWriting: true) + view.offset * view.dtype.size
        shape = view.shape
        strides = view.strides
        dtype = view.dtype
        available = view.buffer.byteCount / Swift.max(view.dtype.size, 1) - view.offset
    }
}

/// The CPU thread pool, for host kernels.
package enum HostThreads {
    /// Threads a parallel loop runs on, the caller included.
    package static var count: Int { ThreadPool.shared.threadCount }

    /// `body(0..<n)` spread over the pool (on the caller when the pool is busy).
    package static func parallelFor(_ n: Int, _ body: (Int) -> Void) { ThreadPool.shared.parallelFor(n, body) }
}

extension Tensor {
    /// A node computed by `kernel` from `inputs` (see HostKernel): output `shape` and `dtype`, on the CPU.
    package static func host(_ kernel: HostKernel, inputs: [Tensor], shape: [Int], dtype: DType) -> Tensor {
        Tensor(shape: shape, dtype: dtype, primitive: .host(kernel), inputs: inputs)
    }
}

enum HostKernels {
    static func evaluate(_ kernel: HostKernel, inputs: [ArrayView], shape: [Int], dtype: DType) throws -> ArrayView {
        let output = ArrayView.allocate(shape: shape, dtype: dtype)
        try kernel.body(try inputs.map(HostArray.init), try HostArray(output))
        return output
    }
}

/// How CPU attention (CPUAttention.swift) computes one sequence's query rows,
/// for a fused step that must compute each row exactly as that sequence alone
/// would be computed (batch invariance).
package enum AttentionSplit {
    /// The number of parts the few-rows kernel (tk_attention) splits each
    /// key/value head's `keys` into for one query row of a batch-1 sequence
    /// (1: not split); nil when such a row would not go to tk_attention.
    package static func parts(queryHeads: Int, kvHeads: Int, keys: Int, keySize: Int, valueSize: Int) -> Int? {
        guard kvHeads > 0, queryHeads % kvHeads == 0, queryHeads / kvHeads <= AttentionKernels.fewRows else {
            return nil
        }
        if queryHeads * keys * (keySize + valueSize) < AttentionKernels.fewRowsParallelWork || kvHeads == 1 {
            return 1
        }
        return AttentionKernels.keyParts(jobs: kvHeads, keys: keys) ?? 1
    }
}
