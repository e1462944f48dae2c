// Host-side logic of the CUDA dense family (argreduce, rows, rope, matmul,
// attention, quantized): which kernel for which dtypes and sizes, launch
// shapes, and how cuBLASLt is told about operand layouts. No GPU needed; the
// kernels themselves are compiled by CUDAKernelCompileTests.

import XCTest

@testable import Tessera
import TesseraSelfTest

final class CUDADenseTests: XCTestCase {
    func testKernelNamesByDtype() {
        XCTAssertEqual(CUDAKernelNames.argReduce(.argMax, input: .float32), "argreduce_max_f32")
        XCTAssertEqual(CUDAKernelNames.argReduce(.argMin, input: .int32), "argreduce_min_i32")
        XCTAssertNil(CUDAKernelNames.argReduce(.argMax, input: .float64))
        XCTAssertNil(CUDAKernelNames.argReduce(.argMax, input: .bool))
        XCTAssertEqual(CUDAKernelNames.rows(.softmax, .bfloat16, rowLength: 1024), "rows_softmax_warp_bf16")
        XCTAssertEqual(CUDAKernelNames.rows(.norm, .float16, rowLength: 1025), "rows_norm_block_f16")
        XCTAssertNil(CUDAKernelNames.rows(.logsoftmax, .int32, rowLength: 8))
        XCTAssertEqual(CUDAKernelNames.rope(.float16), "rope_f16")
        XCTAssertNil(CUDAKernelNames.rope(.float64))
        XCTAssertEqual(CUDAKernelNames.matmul(.gemvdot, .float32), "matmul_gemvdot_f32")
        XCTAssertNil(CUDAKernelNames.matmul(.gemm, .int32))
        XCTAssertEqual(CUDAKernelNames.attention(.flash, .bfloat16), "attention_flash_bf16")
        XCTAssertEqual(CUDAKernelNames.quantized(.qmvt, .float16), "quantized_qmvt_f16")
        // Each name's file is the prefix before the first underscore.
        for name in CUDAKernelNames.all {
            XCTAssertNotNil(KernelSources.files[CUDAKernelNames.file(of: name)], name)
        }
        XCTAssertEqual(Set(CUDAKernelNames.all).count, CUDAKernelNames.all.count)
    }

    func testRowAndArgReduceGeometry() {
        // Short rows: a warp each, 8 per block.
        XCTAssertEqual(
            CUDAGeometry.rows(rows: 17, rowLength: 40),
            CUDAGeometry.Launch(grid: (3, 1, 1), block: (256, 1, 1)))
        // Long rows: a block of 512 each.
        XCTAssertEqual(
            CUDAGeometry.rows(rows: 17, rowLength: 2000),
            CUDAGeometry.Launch(grid: (17, 1, 1), block: (512, 1, 1)))
        XCTAssertEqual(CUDAGeometry.argReduce(outputs: 9).grid.0, 2)
        XCTAssertEqual(CUDAGeometry.argReduce(outputs: 0).grid.0, 1)

        // A [4, 3, 40] array transposed to [40, 4, 3]... rows along the last axis of a (2, 0, 1) view.
        let layout = RowLayout(shape: [40, 4, 3], strides: [1, 120, 40])!
        XCTAssertEqual(layout.rows, 160)
        XCTAssertEqual(layout.length, 3)
        XCTAssertEqual(layout.stride, 40)
        XCTAssertEqual(layout.kept, StridedLayout(shape: [40, 4], strides: [[1, 120]]))
        // argMax over axis 0 of a contiguous [5, 37, 3]: kept axes merge.
        let arg = RowLayout(shape: [5, 37, 3], strides: [111, 3, 1], axis: 0)!
        XCTAssertEqual(arg.rows, 111)
        XCTAssertEqual(arg.stride, 111)
        XCTAssertEqual(arg.kept, StridedLayout(shape: [111], strides: [[1]]))
    }

    func testGemvGemmAndQuantizedGeometry() {
        XCTAssertEqual(CUDAGeometry.gemv(outputs: 70, batches: 3, dot: true).grid.0, 9)
        XCTAssertEqual(CUDAGeometry.gemv(outputs: 70, batches: 3, dot: false).grid.0, 1)
        XCTAssertEqual(CUDAGeometry.gemv(outputs: 1, batches: 100_000, dot: true).grid.1, 65535)
        XCTAssertEqual(
            CUDAGeometry.gemm(m: 33, n: 45, batches: 2),
            CUDAGeometry.Launch(grid: (3, 3, 2), block: (16, 16, 1)))
        let (qmv, qmvLaunch) = CUDAGeometry.quantizedMatmul(m: 8, n: 40, batches: 1, transposed: true)
        XCTAssertEqual(qmv, .qmvt)
        XCTAssertEqual(qmvLaunch.grid.0, 5)
        XCTAssertEqual(CUDAGeometry.quantizedMatmul(m: 1, n: 300, batches: 1, transposed: false).0, .qmv)
        let (qmm, qmmLaunch) = CUDAGeometry.quantizedMatmul(m: 9, n: 72, batches: 3, transposed: false)
        XCTAssertEqual(qmm, .qmm)
        XCTAssertEqual(qmmLaunch, CUDAGeometry.Launch(grid: (3, 1, 3), block: (32, 8, 1)))
    }

    func testAttentionGeometry() {
        XCTAssertFalse(CUDAGeometry.usesFlash(queryLength: 1, headDim: 64, valueDim: 64))
        XCTAssertTrue(CUDAGeometry.usesFlash(queryLength: 2, headDim: 128, valueDim: 128))
        XCTAssertFalse(CUDAGeometry.usesFlash(queryLength: 100, headDim: 160, valueDim: 160))
        // Row kernel: q row + 4 warps x (Dv accumulators + max + sum), floats.
        XCTAssertEqual(
            CUDAGeometry.attentionRow(rows: 8, headDim: 64, valueDim: 48),
            CUDAGeometry.Launch(grid: (8, 1, 1), block: (128, 1, 1), sharedBytes: 4 * (64 + 4 * 50)))
        // Flash: Q tile 16 x D, K tile 32 x (D + 1), V tile 32 x Dv; under 48 KiB at D = Dv = 128.
        let flash = CUDAGeometry.attentionFlash(queryLength: 40, batchHeads: 8, headDim: 128, valueDim: 128)
        XCTAssertEqual(flash.grid.0, 3)
        XCTAssertEqual(flash.grid.1, 8)
        XCTAssertEqual(flash.sharedBytes, 4 * (16 * 128 + 32 * 129 + 32 * 128))
        XCTAssertLessThanOrEqual(flash.sharedBytes, 48 * 1024)
        // Split-K decode: 1 x 8 heads over 132 SMs with 4096 keys → 16 chunks of 256 keys.
        XCTAssertTrue(CUDAGeometry.attentionSplits(rows: 8, keys: 4096, multiprocessors: 132) == (16, 256))
        // Enough rows, or short rows: no split.
        XCTAssertTrue(CUDAGeometry.attentionSplits(rows: 300, keys: 4096, multiprocessors: 132) == (1, 4096))
        XCTAssertTrue(CUDAGeometry.attentionSplits(rows: 8, keys: 300, multiprocessors: 132) == (1, 300))
        // 2 rows, 4 SMs: 4 chunks of 250 keys for 1000 keys (every chunk non-empty).
        XCTAssertTrue(CUDAGeometry.attentionSplits(rows: 2, keys: 1000, multiprocessors: 4) == (4, 250))
        XCTAssertTrue(CUDAGeometry.attentionSplits(rows: 1, keys: 513, multiprocessors: 132) == (3, 171))
    }

    func testLtMatrixDescriptions() {
        // Row-major [M=9, K=20]: cuBLASLt sees its transpose, column-major [20, 9], ld 20, op N.
        XCTAssertEqual(
            LtMatrix.transposedView(rows: 9, cols: 20, rowStride: 20, colStride: 1),
            LtMatrix(rows: 20, cols: 9, ld: 20, transposed: false))
        // A transposed view (strides [1, 9]) is column-major [9, 20] itself, used with op T.
        XCTAssertEqual(
            LtMatrix.transposedView(rows: 9, cols: 20, rowStride: 1, colStride: 9),
            LtMatrix(rows: 9, cols: 20, ld: 9, transposed: true))
        // Every other column: ld 40.
        XCTAssertEqual(LtMatrix.transposedView(rows: 9, cols: 20, rowStride: 40, colStride: 1)?.ld, 40)
        // Strided in both axes, or rows broadcast (stride 0): no in-place description.
        XCTAssertNil(LtMatrix.transposedView(rows: 9, cols: 20, rowStride: 40, colStride: 2))
        XCTAssertNil(LtMatrix.transposedView(rows: 9, cols: 20, rowStride: 0, colStride: 1))
        // A single row: any row stride; ld falls back to the column count.
        XCTAssertEqual(
            LtMatrix.transposedView(rows: 1, cols: 20, rowStride: 0, colStride: 1),
            LtMatrix(rows: 20, cols: 1, ld: 20, transposed: false))
    }

    func testLtPlans() {
        // a [3, 9, 20] @ b [20, 11] broadcast to [3, 20, 11] (batch stride 0): one strided-batched call.
        let plan = LtPlan.make(aShape: [3, 9, 20], aStrides: [180, 20, 1], bStrides: [0, 11, 1], n: 11)!
        XCTAssertEqual(plan.first, LtMatrix(rows: 11, cols: 20, ld: 11, transposed: false))
        XCTAssertEqual(plan.second, LtMatrix(rows: 20, cols: 9, ld: 20, transposed: false))
        XCTAssertEqual(plan.output, LtMatrix(rows: 11, cols: 9, ld: 11, transposed: false))
        XCTAssertEqual(plan.batchCount, 3)
        XCTAssertTrue(plan.batchStrides == (180, 0, 99))
        XCTAssertEqual(plan.outerOffsets.count, 1)
        // No batch axes.
        let single = LtPlan.make(aShape: [9, 20], aStrides: [20, 1], bStrides: [1, 20], n: 11)!
        XCTAssertEqual(single.batchCount, 1)
        XCTAssertEqual(single.first, LtMatrix(rows: 20, cols: 11, ld: 20, transposed: true))
        // Batch axes [2, 3] whose a-strides do not merge (a transposed in its batch axes):
        // 2 host-loop calls of a 3-matrix strided batch.
        let loop = LtPlan.make(aShape: [2, 3, 4, 5], aStrides: [20, 40, 5, 1], bStrides: [42, 14, 7, 1], n: 7)!
        XCTAssertEqual(loop.batchCount, 3)
        XCTAssertTrue(loop.batchStrides == (40, 14, 28))
        XCTAssertEqual(loop.outerOffsets.map { [$0.a, $0.b, $0.c] }, [[0, 0, 0], [20, 42, 84]])
        // A reversed batch axis: no strided batch.
        XCTAssertNil(LtPlan.make(aShape: [3, 9, 20], aStrides: [-180, 20, 1], bStrides: [0, 11, 1], n: 11))
        // An operand without a unit stride needs a copy first.
        XCTAssertNil(LtPlan.make(aShape: [9, 20], aStrides: [40, 2], bStrides: [11, 1], n: 11))
    }

    func testLtConstants() {
        XCTAssertEqual(CuBLASLtConstants.dataType(.bfloat16), 14)
        XCTAssertNil(CuBLASLtConstants.dataType(.float64))
        XCTAssertEqual(CuBLASLtConstants.computeType(.float32, environment: [:]), 68)
        XCTAssertEqual(CuBLASLtConstants.computeType(.float32, environment: ["TESSERA_CUDA_TF32": "1"]), 77)
        XCTAssertEqual(CuBLASLtConstants.computeType(.float16, environment: ["TESSERA_CUDA_TF32": "1"]), 68)
        XCTAssertEqual(pointerAlignment(0x1000), 256)
        XCTAssertEqual(pointerAlignment(0x1006), 2)
        XCTAssertEqual(pointerAlignment(0x1010), 16)
    }

    /// On a GPU (or the CUDA emulator: TESSERA_CUDA_PATH / TESSERA_NVRTC_PATH),
    /// an out-of-range expert index is the CPU's typed error, not a bad read.
    func testGatherQuantizedMatmulIndexOutOfRangeOnGPU() throws {
        try XCTSkipUnless(CUDABackend.isAvailable, "no GPU: \(CUDABackend.unavailableReason)")
        let noise = { (shape: [Int], seed: Int) in
            Tensor((0..<shape.reduce(1, *)).map { Float(($0 * 7 + seed * 13) % 29) * 0.14 - 2.0 }, shape: shape)
        }
        let (x, q) = withDevice(.cpu) {
            (noise([2, 1, 64], 0), quantize(noise([3, 8, 64], 1), groupSize: 32, bits: 4))
        }
        let y = withDevice(.gpu(0)) {
            gatherQuantizedMatmul(
                x, q.wq, scales: q.scales, biases: q.biases, lhsIndices: Tensor([UInt32(1)], shape: [1]),
                rhsIndices: Tensor([UInt32(3)], shape: [1]), groupSize: 32, bits: 4)
        }
        XCTAssertThrowsError(try checkedEval([y])) { error in
            guard case TesseraError.invalidData(let op, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(op, "gatherQuantizedMatmul")
        }
    }
}
