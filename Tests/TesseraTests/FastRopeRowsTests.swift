// The float32 rope's vector row loop (CPUFast.swift `ropeRows`: unit stride
// along the last axis, the two halves rotated, half of `dimensions` a
// multiple of 8) against a double-precision reference to 1e-6 of the
// largest value, and bit for bit against the scalar loop that the same op
// takes on a view whose last axis is not contiguous (same values, same
// float32 operations in the same order). Rows that are not contiguous
// (heads transposed), part of the features rotated, offsets, the negated
// angles of the backward rule, custom frequencies. And the scalar
// log-softmax, whose rows are now split over the pool.

import Foundation
import XCTest

@testable import Tessera

final class FastRopeRowsTests: XCTestCase {
    func testVectorRowsMatchReferenceAndScalarLoopBitForBit() throws {
        let cases: [(shape: [Int], dims: Int, offset: Int, scale: Float, freqs: Bool)] = [
            ([2, 3, 5, 16], 16, 0, 1, false), ([1, 2, 7, 24], 16, 3, 1, false), ([2, 2, 9, 64], 64, 11, -1, false),
            ([1, 3, 4, 80], 64, 0, 0.5, true), ([3, 1, 6, 32], 32, 100, 1, true)
        ]
        for c in cases {
            let (b, h, l, d) = (c.shape[0], c.shape[1], c.shape[2], c.shape[3])
            let count = b * h * l * d
            let values = (0..<count).map { Float(sin(Double($0) * 0.37 + 0.1)) * 1.5 }
            let half = c.dims / 2
            let freqValues = (0..<half).map { Float(1.5 + Double($0) * 0.75) }
            let freqs = c.freqs ? Tensor(freqValues, shape: [half]) : nil
            func rope(_ x: Tensor) -> Tensor {
                Fast.rope(
                    x, dimensions: c.dims, traditional: false, base: c.freqs ? nil : 10000, scale: c.scale,
                    offset: c.offset, freqs: freqs)
            }
            // Rows not contiguous: [B, L, H, D] transposed to [B, H, L, D]; unit stride along D.
            let blhd = (0..<count).map { i -> Float in
                let (bi, rest) = (i / (l * h * d), i % (l * h * d))
                let (li, hi, di) = (rest / (h * d), (rest / d) % h, rest % d)
                return values[((bi * h + hi) * l + li) * d + di]
            }
            let vector = rope(Tensor(blhd, shape: [b, l, h, d]).transposed(0, 2, 1, 3)).toArray(Float.self)
            // The last axis strided: [B, H, D, L] transposed to [B, H, L, D].
            let bhdl = (0..<count).map { i -> Float in
                let (row, di, li) = (i / (d * l), (i / l) % d, i % l)
                return values[(row * l + li) * d + di]
            }
            let scalar = rope(Tensor(bhdl, shape: [b, h, d, l]).transposed(0, 1, 3, 2)).toArray(Float.self)
            XCTAssertEqual(vector.map(\.bitPattern), scalar.map(\.bitPattern), "\(c)")

            var largest = 0.0, worst = 0.0
            for row in 0..<(b * h * l) {
                let position = Double(c.offset + row % l) * Double(c.scale)
                for j in 0..<d {
                    let x = Double(values[row * d + j])
                    var want = x
                    if j < c.dims {
                        let i = j % half
                        let inverse = c.freqs ? 1 / Double(freqValues[i]) : pow(10000, -2 * Double(i) / Double(c.dims))
                        let (co, si) = (cos(position * inverse), sin(position * inverse))
                        let x1 = Double(values[row * d + i]), x2 = Double(values[row * d + i + half])
                        want = j < half ? x1 * co - x2 * si : x1 * si + x2 * co
                    }
                    largest = max(largest, abs(want))
                    worst = max(worst, abs(Double(vector[row * d + j]) - want))
                }
            }
            XCTAssertLessThanOrEqual(worst, 1e-6 * largest, "\(c)")
        }
    }

    /// The scalar log-softmax with its rows split over the pool: each row bit
    /// for bit as the same row computed alone (one row: no split), on a view
    /// whose rows are not contiguous, and within 1e-6 of a double reference
    /// (of the largest magnitude).
    func testLogSoftmaxRowsSplitOverThePool() throws {
        let (rows, n) = (24, 4096)
        let values = (0..<(rows * n)).map { Float(sin(Double($0) * 0.113) * 6 + cos(Double($0 % 97))) }
        // [n, rows] transposed: rows strided by 1, the last axis by `rows`.
        let columnMajor = (0..<(rows * n)).map { i in values[(i % rows) * n + i / rows] }
        let got = logSoftmax(Tensor(columnMajor, shape: [n, rows]).transposed(1, 0), axis: -1).toArray(Float.self)
        for r in [0, 5, 13, 23] {
            let slice = Array(values[(r * n)..<((r + 1) * n)])
            let alone = logSoftmax(Tensor(slice, shape: [1, n]), axis: -1).toArray(Float.self)
            XCTAssertEqual(Array(got[(r * n)..<((r + 1) * n)]).map(\.bitPattern), alone.map(\.bitPattern), "row \(r)")
            let v = slice.map(Double.init)
            let m = v.max()!
            let logSum = Foundation.log(v.map { exp($0 - m) }.reduce(0, +)) + m
            var worst = 0.0, largest = 0.0
            for j in 0..<n {
                largest = max(largest, abs(v[j] - logSum))
                worst = max(worst, abs(Double(got[r * n + j]) - (v[j] - logSum)))
            }
            XCTAssertLessThanOrEqual(worst, 1e-6 * largest, "row \(r)")
        }
    }
}
