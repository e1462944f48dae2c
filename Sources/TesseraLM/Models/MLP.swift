// The gated MLP, as the Hugging Face module `mlp`: `down(act(gate(x)) * up(x))`.
// gate_proj and up_proj run as one stacked product (ProjectionStack); phi3's
// fused gate_up_proj is split.

import Tessera
import TesseraNN

final class MLP: Module {
    @ModuleInfo(key: "gate_proj") var gateProj: Linear? = nil
    @ModuleInfo(key: "up_proj") var upProj: Linear? = nil
    /// Phi-3: gate rows, then up rows, in one projection.
    @ModuleInfo(key: "gate_up_proj") var gateUpProj: Linear? = nil
    @ModuleInfo(key: "down_proj") var downProj: Linear

    let activation: TransformerConfiguration.Activation
    let intermediateSize: Int
    private let gateUp = ProjectionStack(), down = ProjectionStack()

    /// Layer `i`'s MLP, its tensors read from `w` under `prefix` (`model.layers.i.mlp`).
    init(_ w: WeightSource, prefix: String, _ c: TransformerConfiguration) throws {
        activation = c.activation
        intermediateSize = c.intermediateSize
        super.init()
        let n = c.intermediateSize
        if c.fusedGateUp {
            gateUpProj = try w.linear(prefix + ".gate_up_proj", inputs: c.hiddenSize, outputs: 2 * n)
        } else {
            gateProj = try w.linear(prefix + ".gate_proj", inputs: c.hiddenSize, outputs: n)
            upProj = try w.linear(prefix + ".up_proj", inputs: c.hiddenSize, outputs: n)
        }
        downProj = try w.linear(prefix + ".down_proj", inputs: n, outputs: c.hiddenSize)
        gateUp.share(projections)
        down.share([downProj])
    }

    private var projections: [Linear] {
        if let gateProj, let upProj { return [gateProj, upProj] }
        return gateUpProj.map { [$0] } ?? []
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let projected = gateUp({ projections }, sizes: [intermediateSize, intermediateSize], x)
        let g = projected[0]
        let activated: Tensor
        switch activation {
        case .silu: activated = g * sigmoid(g)
        case .geluTanh:
            let c = Float((2 / Double.pi).squareRoot())
            activated = 0.5 * g * (1 + tanh(c * (g + 0.044715 * g * g * g)))
        }
        return down({ [downProj] }, activated * projected[1])[0]
    }
}
