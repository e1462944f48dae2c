import XCTest

@testable import Tessera

/// conv1d, conv2d and their transposes (stride, padding, dilation, groups,
/// output padding) against torch (Tests/Fixtures/conv.json).
final class ConvolutionTests: XCTestCase {
    private func pair(_ v: Any?) -> IntOrPair {
        let a = v as! [Int]
        return IntOrPair(a[0], a[1])
    }

    func testConvolutionsMatchTorch() throws {
        let cases = try OpsFixture.load("conv.json")
        XCTAssertGreaterThan(cases.count, 30)
        for c in cases {
            let x = c.inputs[0], w = c.inputs[1], p = c.params, groups = p["groups"] as! Int
            let result: Tensor
            switch c.op {
            case "conv1d":
                result = conv1d(
                    x, w, stride: p["stride"] as! Int, padding: p["padding"] as! Int, dilation: p["dilation"] as! Int,
                    groups: groups)
            case "conv2d":
                result = conv2d(
                    x, w, stride: pair(p["stride"]), padding: pair(p["padding"]), dilation: pair(p["dilation"]),
                    groups: groups)
            case "conv_transposed1d":
                result = convTransposed1d(
                    x, w, stride: p["stride"] as! Int, padding: p["padding"] as! Int, dilation: p["dilation"] as! Int,
                    outputPadding: p["outputPadding"] as! Int, groups: groups)
            case "conv_transposed2d":
                result = convTransposed2d(
                    x, w, stride: pair(p["stride"]), padding: pair(p["padding"]), dilation: pair(p["dilation"]),
                    outputPadding: pair(p["outputPadding"]), groups: groups)
            default: fatalError("unknown op \(c.op)")
            }
            OpsFixture.assertMatches(result, c.expected[0], c.name)
        }
    }
}
