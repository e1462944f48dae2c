// Host-side logic of the CUDA indexing family (random, gather/scatter, sort,
// scan, linalg): kernel names, launch plans, fallbacks. No GPU needed.

import XCTest

@testable import Tessera

final class CUDAIndexingTests: XCTestCase {
    func testKernelNames() {
        XCTAssertEqual(CUDAKernelNames.randomBits(output: .uint16), "random_bits")
        XCTAssertNil(CUDAKernelNames.randomBits(output: .float32))
        XCTAssertEqual(CUDAKernelNames.gatherStarts(index: .int64), "gather_starts_i64")
        XCTAssertEqual(CUDAKernelNames.gatherStarts(index: .uint8), "gather_starts_u8")
        XCTAssertNil(CUDAKernelNames.gatherStarts(index: .float32))
        XCTAssertEqual(CUDAKernelNames.gather(.bfloat16), "gather_2")
        XCTAssertEqual(CUDAKernelNames.gather(.complex64), "gather_8")
        XCTAssertEqual(CUDAKernelNames.scatter(.set, .float64), "scatter_set_8")
        XCTAssertEqual(CUDAKernelNames.scatter(.prod, .float16), "scatter_prod_f16")
        XCTAssertEqual(CUDAKernelNames.scatter(.max, .uint32), "scatter_max_u32")
        XCTAssertEqual(CUDAKernelNames.scatter(.min, .bool), "scatter_min_b8")
        XCTAssertEqual(CUDAKernelNames.scatter(.add, .float64), "scatter_add_f64")
        XCTAssertEqual(CUDAKernelNames.scatter(.prod, .int64), "scatter_prod_i64")
        XCTAssertNil(CUDAKernelNames.scatter(.add, .int16))
        XCTAssertNil(CUDAKernelNames.scatter(.max, .complex64))
        XCTAssertEqual(CUDAKernelNames.sortBlock(.int16), "sort_block_i16")
        XCTAssertNil(CUDAKernelNames.sortBlock(.float64))
        XCTAssertEqual(CUDAKernelNames.sortEmit(.bfloat16), "sort_emit_2")
        XCTAssertNil(CUDAKernelNames.sortEmit(.int64))
        XCTAssertEqual(CUDAKernelNames.scan(.sum, .float16, block: true), "scan_block_sum_f16")
        XCTAssertEqual(CUDAKernelNames.scan(.max, .bool, block: false), "scan_row_max_b8")
        XCTAssertNil(CUDAKernelNames.scan(.sum, .bool, block: false))
        XCTAssertEqual(CUDAKernelNames.scan(.min, .int64, block: false), "scan_row_min_i64")
        XCTAssertEqual(CUDAKernelNames.scan(.prod, .float64, block: true), "scan_block_prod_f64")
        XCTAssertNil(CUDAKernelNames.scan(.sum, .uint8, block: false))
        XCTAssertEqual(CUDAKernelNames.linalg(.eigh(part: 1, upper: true)), "linalg_eigh")
    }

    /// Every indexing kernel name maps to a kernel file that is embedded.
    func testKernelNamesMapToEmbeddedFiles() {
        let names =
            CUDAKernelNames.randomNames + CUDAKernelNames.indexingNames + CUDAKernelNames.sortNames
            + CUDAKernelNames.scanNames + CUDAKernelNames.linalgNames
        XCTAssertGreaterThan(names.count, 100)
        for name in names {
            let file = CUDAKernelNames.file(of: name)
            XCTAssertTrue(
                ["random.cu", "gather.cu", "scatter.cu", "sort.cu", "scan.cu", "linalg.cu"].contains(file), name)
            XCTAssertNotNil(KernelSources.files[file], "\(name): \(file) is not embedded")
        }
    }

    func testSortPlan() {
        XCTAssertEqual(CUDAGeometry.sort(rowLength: 1), .init(pow2: 2, chunks: 1, threads: 1, mergePasses: 0))
        XCTAssertEqual(CUDAGeometry.sort(rowLength: 5), .init(pow2: 8, chunks: 1, threads: 4, mergePasses: 0))
        XCTAssertEqual(CUDAGeometry.sort(rowLength: 2048), .init(pow2: 2048, chunks: 1, threads: 1024, mergePasses: 0))
        XCTAssertEqual(CUDAGeometry.sort(rowLength: 2049), .init(pow2: 2048, chunks: 2, threads: 1024, mergePasses: 1))
        XCTAssertEqual(CUDAGeometry.sort(rowLength: 5000), .init(pow2: 2048, chunks: 3, threads: 1024, mergePasses: 2))
        XCTAssertEqual(CUDAGeometry.sort(rowLength: 2048 * 8).mergePasses, 3)
        // 48 KiB of default dynamic shared memory holds a chunk of 64-bit keys.
        XCTAssertLessThanOrEqual(CUDAGeometry.sort(rowLength: 1 << 20).sharedBytes, 48 * 1024)
    }

    func testScanPlan() {
        XCTAssertFalse(CUDAGeometry.scanUsesBlock(rowLength: 64, rows: 1, multiprocessors: 132))
        XCTAssertTrue(CUDAGeometry.scanUsesBlock(rowLength: 1000, rows: 3, multiprocessors: 132))
        XCTAssertFalse(CUDAGeometry.scanUsesBlock(rowLength: 1000, rows: 132 * 256, multiprocessors: 132))
    }

    func testRowLayout() {
        let strides = contiguousStrides([4, 6, 9])
        // Along axis 1 the kept axes 0 and 2 cannot merge.
        XCTAssertEqual(
            StridedLayout.rows(shape: [4, 6, 9], axis: 1, strides: [strides, strides]),
            StridedLayout(shape: [4, 9], strides: [[54, 1], [54, 1]]))
        // Along the last axis the kept axes merge into one of stride 9.
        XCTAssertEqual(
            StridedLayout.rows(shape: [4, 6, 9], axis: 2, strides: [strides, strides]),
            StridedLayout(shape: [24], strides: [[9], [9]]))
        // A transposed input keeps its own strides beside the output's.
        XCTAssertEqual(
            StridedLayout.rows(shape: [9, 4], axis: 0, strides: [[1, 9], [4, 1]]),
            StridedLayout(shape: [4], strides: [[9], [1]]))
        XCTAssertNil(
            StridedLayout.rows(
                shape: [Int](repeating: 2, count: 10), axis: 0,
                strides: [[1, 3, 9, 27, 81, 243, 729, 2187, 6561, 19683]]))
    }

    func testLinalgPlan() {
        XCTAssertNil(CUDAGeometry.linalg(.inverse, shape: [33, 33], rhs: 0))
        XCTAssertNil(CUDAGeometry.linalg(.svd(part: 1), shape: [4, 40, 3], rhs: 0))
        let inverse = CUDAGeometry.linalg(.inverse, shape: [2, 32, 32], rhs: 0)!
        XCTAssertEqual(inverse.sharedBytes, (2 * 32 * 32 + 32) * 8)
        XCTAssertEqual(inverse.failure, .init(op: "inv", reason: "singular"))
        let solve = CUDAGeometry.linalg(.solve, shape: [5, 5], rhs: 300)!
        XCTAssertEqual(solve.rhs, 300)
        XCTAssertEqual(CUDAGeometry.linalg(.cholesky(upper: true), shape: [8, 8], rhs: 0)?.flag, 1)
        XCTAssertNil(CUDAGeometry.linalg(.qr(part: 0), shape: [7, 5], rhs: 0)?.failure)
        // The largest SVD (32 × 32) fits the 48 KiB of default dynamic shared memory.
        let svd = CUDAGeometry.linalg(.svd(part: 0), shape: [32, 32], rhs: 0)!
        XCTAssertEqual(svd.part, 0)
        XCTAssertLessThanOrEqual(svd.sharedBytes, 48 * 1024)
        XCTAssertEqual(
            CUDAGeometry.linalg(.svd(part: 2), shape: [9, 6], rhs: 0)?.sharedBytes, (54 + 36 + 81 + 6) * 8 + 24)
        XCTAssertLessThanOrEqual(
            CUDAGeometry.linalg(.eigh(part: 1, upper: false), shape: [32, 32], rhs: 0)!.sharedBytes, 48 * 1024)
    }

    // MARK: on a GPU (or the CUDA emulator); skipped without one

    /// A singular matrix in a batch gives the CPU's error, naming the matrix.
    func testSingularMatrixErrorsOnGPU() throws {
        try XCTSkipUnless(CUDABackend.isAvailable, "no GPU: \(CUDABackend.unavailableReason)")
        let batch = Tensor([Float](arrayLiteral: 2, 0, 0, 2, 1, 2, 2, 4), shape: [2, 2, 2])
        for (op, f) in [("inv", { Linalg.inv(batch) }), ("cholesky", { Linalg.cholesky(batch) })]
            as [(String, () -> Tensor)]
        {
            let result = withDevice(.gpu(0)) { f() }
            XCTAssertThrowsError(try checkedEval([result]), op) { error in
                guard case let TesseraError.invalidData(name, reason) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(name, op)
                XCTAssertTrue(reason.hasPrefix("matrix 1 of the batch"), reason)
            }
        }
    }

    /// Matrices above the kernels' size limit run on the CPU, with the warning.
    func testLargeMatricesFallBackOnGPU() throws {
        try XCTSkipUnless(CUDABackend.isAvailable, "no GPU: \(CUDABackend.unavailableReason)")
        let n = CUDAKernelNames.linalgMaxSize + 1
        let a = Tensor.eye(n) * 2
        let inverse = withDevice(.gpu(0)) { Linalg.inv(a) }
        try checkedEval([inverse])
        XCTAssertEqual(inverse.toArray(Float.self), (Tensor.eye(n) * 0.5).toArray(Float.self))
        XCTAssertTrue(CUDAFallback.warnedPrimitives.contains("inv"))
    }
}
