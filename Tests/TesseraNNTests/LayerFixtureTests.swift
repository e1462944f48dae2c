// NN layers (forward and gradients) against torch, from committed fixtures.

import Tessera
import TesseraTestSupport
import XCTest

@testable import TesseraNN

/// Layers against torch (Tools/gen_nn_fixtures.py): forward, parameter
/// gradients and input gradients of sum(output * cotangent).
final class LayerFixtureTests: XCTestCase {
    /// float32 tolerances: rtol 1e-5 (the project table), atol 1e-6 for values
    /// near zero. Attention gradients (MultiHeadAttention and the transformer
    /// layers) use rtol 1e-4, atol 1e-5: torch's fused SDPA backward sums in
    /// another order, and the key-projection bias gradient is exactly zero in
    /// theory (softmax ignores a per-query shift), so only rounding noise remains.
    static let rtol = 1e-5, atol = 1e-6
    static let attentionLayers: Set<String> = [
        "MultiHeadAttention", "TransformerEncoderLayer", "TransformerDecoderLayer"
    ]

    func testLayersAgainstTorch() throws {
        let cases = try loadFixtureCases("nn/layers.json", layout: .keyed)
        XCTAssertEqual(cases.count, 48)
        for c in cases {
            try check(c)
        }
    }

    private func check(_ c: FixtureCase) throws {
        let attention = Self.attentionLayers.contains(c.string("layer") ?? "")
        let (gradRtol, gradAtol) = attention ? (1e-4, 1e-5) : (Self.rtol, Self.atol)
        let (layer, call) = try makeLayer(c)
        let params = try c.tensors("params")
        try layer.update(parameters: params)
        let inputs = try (c.object["inputs"] as! [[String: Any]]).indices.map { i in
            try FixtureCase(["name": c.name, "x": (c.object["inputs"] as! [Any])[i]]).tensor("x")
        }
        let y = call(inputs)
        if let m = mismatch(y, try c.tensor("output"), rtol: Self.rtol, atol: Self.atol) {
            XCTFail("\(c.name) output: \(m)")
        }
        if c.has("running_mean_after"), let bn = layer as? BatchNorm {
            if let m = mismatch(bn.runningMean!, try c.tensor("running_mean_after"), rtol: Self.rtol, atol: Self.atol) {
                XCTFail("\(c.name) running_mean: \(m)")
            }
            if let m = mismatch(bn.runningVar!, try c.tensor("running_var_after"), rtol: Self.rtol, atol: Self.atol) {
                XCTFail("\(c.name) running_var: \(m)")
            }
            try layer.update(parameters: params)
        }

        let ct = try c.tensor("cotangent")
        let step = valueAndGrad(model: layer) { (_: Module, args: [Tensor]) in [(call(args) * ct).sum()] }
        let (_, grads) = step(layer, inputs)
        let expectedGrads = try c.tensors("param_grads")
        XCTAssertEqual(Set(grads.flatDictionary.keys), Set(expectedGrads.keys), "\(c.name): gradient keys")
        for (key, g) in grads.flatDictionary {
            guard let e = expectedGrads[key] else { continue }
            if let m = mismatch(g, e, rtol: gradRtol, atol: gradAtol) { XCTFail("\(c.name) grad \(key): \(m)") }
        }

        let floatInputs = inputs.indices.filter { inputs[$0].dtype.isFloatingPoint }
        if !floatInputs.isEmpty {
            let inputGrads = Tessera.grad({ args in (call(args) * ct).sum() }, argumentNumbers: floatInputs)(inputs)
            let expected = c.object["input_grads"] as! [Any]
            for (k, i) in floatInputs.enumerated() {
                let e = try FixtureCase(["name": c.name, "g": expected[i]]).tensor("g")
                if let m = mismatch(inputGrads[k], e, rtol: gradRtol, atol: gradAtol) {
                    XCTFail("\(c.name) input grad \(i): \(m)")
                }
            }
        }
    }

    private func makeLayer(_ c: FixtureCase) throws -> (Module, ([Tensor]) -> Tensor) {
        let cfg = FixtureCase(c.dictionary("config") ?? [:])
        let int = { (k: String) in cfg.int(k)! }
        let pair = { (k: String) -> IntOrPair in
            let v = cfg.ints(k)!
            return IntOrPair(v[0], v[1])
        }
        let causalMask = cfg.bool("causal") == true
        switch c.string("layer")! {
        case "Linear":
            let l = Linear(int("input"), int("output"), bias: cfg.bool("bias")!)
            return (l, { l($0[0]) })
        case "Embedding":
            let l = Embedding(int("count"), int("dims"))
            return (l, { l($0[0]) })
        case "Conv1d":
            let l = Conv1d(
                inputChannels: int("in"), outputChannels: int("out"), kernelSize: int("kernel"), stride: int("stride"),
                padding: int("padding"), dilation: int("dilation"), groups: int("groups"))
            return (l, { l($0[0]) })
        case "Conv2d":
            let l = Conv2d(
                inputChannels: int("in"), outputChannels: int("out"), kernelSize: pair("kernel"),
                stride: pair("stride"),
                padding: pair("padding"), dilation: pair("dilation"), groups: int("groups"))
            return (l, { l($0[0]) })
        case "ConvTranspose1d":
            let l = ConvTranspose1d(
                inputChannels: int("in"), outputChannels: int("out"), kernelSize: int("kernel"), stride: int("stride"),
                padding: int("padding"), dilation: int("dilation"), outputPadding: int("output_padding"))
            return (l, { l($0[0]) })
        case "ConvTranspose2d":
            let l = ConvTranspose2d(
                inputChannels: int("in"), outputChannels: int("out"), kernelSize: pair("kernel"),
                stride: pair("stride"),
                padding: pair("padding"), dilation: pair("dilation"), outputPadding: pair("output_padding"))
            return (l, { l($0[0]) })
        case "LayerNorm":
            let l = LayerNorm(dimensions: int("dims"), affine: cfg.bool("affine") ?? true)
            return (l, { l($0[0]) })
        case "RMSNorm":
            let l = RMSNorm(dimensions: int("dims"))
            return (l, { l($0[0]) })
        case "GroupNorm":
            let l = GroupNorm(
                groupCount: int("groups"), dimensions: int("dims"), pytorchCompatible: cfg.bool("pytorch_compatible")!)
            return (l, { l($0[0]) })
        case "BatchNorm":
            let l = BatchNorm(featureCount: int("features"), momentum: Float(cfg.double("momentum") ?? 0.1))
            l.train(cfg.bool("training")!)
            return (l, { l($0[0]) })
        case "MultiHeadAttention":
            let l = MultiHeadAttention(dimensions: int("dims"), heads: int("heads"), bias: cfg.bool("bias")!)
            return (
                l,
                {
                    l(
                        $0[0], keys: $0[1], values: $0[1],
                        mask: causalMask ? MultiHeadAttention.createAdditiveCausalMask($0[0].dim(1)) : nil)
                }
            )
        case "TransformerEncoderLayer":
            let l = TransformerEncoderLayer(
                dimensions: int("dims"), heads: int("heads"), mlpDimensions: int("mlp"),
                normFirst: cfg.bool("norm_first")!)
            return (l, { l($0[0], mask: MultiHeadAttention.createAdditiveCausalMask($0[0].dim(1))) })
        case "TransformerDecoderLayer":
            let l = TransformerDecoderLayer(dimensions: int("dims"), heads: int("heads"), mlpDimensions: int("mlp"))
            return (
                l,
                {
                    l(
                        $0[0], memory: $0[1], mask: MultiHeadAttention.createAdditiveCausalMask($0[0].dim(1)),
                        memoryMask: nil)
                }
            )
        case "RoPE":
            let l = RoPE(dimensions: int("dims"), traditional: cfg.bool("traditional")!)
            let offset = int("offset")
            return (l, { l($0[0], offset: offset) })
        case "SinusoidalPositionalEncoding":
            let l = SinusoidalPositionalEncoding(dimensions: int("dims"), cosineFirst: cfg.bool("cos_first")!)
            return (l, { l($0[0]) })
        case "ALiBi":
            let l = ALiBi()
            return (l, { l($0[0]) })
        case "MaxPool1d":
            let l = MaxPool1d(kernelSize: int("kernel"), stride: cfg.int("stride"), padding: int("padding"))
            return (l, { l($0[0]) })
        case "AvgPool1d":
            let l = AvgPool1d(kernelSize: int("kernel"), stride: cfg.int("stride"), padding: int("padding"))
            return (l, { l($0[0]) })
        case "MaxPool2d":
            let l = MaxPool2d(
                kernelSize: pair("kernel"), stride: cfg.ints("stride").map { IntOrPair($0[0], $0[1]) },
                padding: pair("padding"))
            return (l, { l($0[0]) })
        case "AvgPool2d":
            let l = AvgPool2d(
                kernelSize: pair("kernel"), stride: cfg.ints("stride").map { IntOrPair($0[0], $0[1]) },
                padding: pair("padding"))
            return (l, { l($0[0]) })
        case "Upsample":
            let mode: Upsample.Mode =
                cfg.string("mode") == "nearest" ? .nearest : .linear(alignCorners: cfg.bool("align_corners")!)
            let l = Upsample(scaleFactor: cfg.double("scale")!, mode: mode)
            return (l, { l($0[0]) })
        default:
            throw XCTSkip("unknown layer \(c.string("layer") ?? "?")")
        }
    }
}
