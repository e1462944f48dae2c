// Convolutions (1-3D, strides, padding, dilation, groups) against torch fixtures.

import TesseraTestSupport
import XCTest

@testable import Tessera

/// conv1d, conv2d and their transposes (stride, padding, dilation, groups,
/// output padding) against torch (Tests/Fixtures/conv.json).
final class ConvolutionTests: XCTestCase {
    private func pair(_ p: FixtureParams, _ key: String) throws -> IntOrPair {
        let a = try p.ints(key)
        return IntOrPair(a[0], a[1])
    }

    func testConvolutionsMatchTorch() throws {
        let cases = try loadFixtureCases("conv.json")
        XCTAssertGreaterThan(cases.count, 30)
        for c in cases {
            let x = c.inputs[0], w = c.inputs[1], p = c.params, groups = try p.int("groups")
            let result: Tensor
            switch c.op {
            case "conv1d":
                result = conv1d(
                    x, w, stride: try p.int("stride"), padding: try p.int("padding"), dilation: try p.int("dilation"),
                    groups: groups)
            case "conv2d":
                result = conv2d(
                    x, w, stride: try pair(p, "stride"), padding: try pair(p, "padding"),
                    dilation: try pair(p, "dilation"), groups: groups)
            case "conv_transposed1d":
                result = convTransposed1d(
                    x, w, stride: try p.int("stride"), padding: try p.int("padding"), dilation: try p.int("dilation"),
                    outputPadding: try p.int("outputPadding"), groups: groups)
            case "conv_transposed2d":
                result = convTransposed2d(
                    x, w, stride: try pair(p, "stride"), padding: try pair(p, "padding"),
                    dilation: try pair(p, "dilation"), outputPadding: try pair(p, "outputPadding"), groups: groups)
            default: fatalError("unknown op \(c.op)")
            }
            assertMatches(result, c.expected[0], c.name)
        }
    }
}
