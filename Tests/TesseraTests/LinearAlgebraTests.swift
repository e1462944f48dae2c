import XCTest

@testable import Tessera

final class LinearAlgebraTests: XCTestCase {
    /// Every batch entry is computed (the kernel once computed only the first).
    func testBatchedMatmulComputesEveryBatch() {
        let a = Tensor((0..<8).map { Float($0) }, shape: [2, 2, 2])
        XCTAssertEqual(matmul(a, a).toArray(Float.self), [2, 3, 6, 11, 46, 55, 66, 79])
        let b = Tensor((0..<24).map { Float($0) }, shape: [3, 1, 2, 4])
        let c = Tensor((0..<8).map { Float($0) }, shape: [2, 4, 1])
        let out = matmul(b, c)
        XCTAssertEqual(out.shape, [3, 2, 2, 1])
        // out[i, j, r, 0] = b[i, 0, r, :] · c[j, :, 0]
        let expected = (0..<12).map { index -> Float in
            let i = index / 4, j = (index / 2) % 2, r = index % 2
            return (0..<4).map { Float((i * 8 + r * 4 + $0) * (j * 4 + $0)) }.reduce(0, +)
        }
        XCTAssertEqual(out.toArray(Float.self), expected)
    }
}
