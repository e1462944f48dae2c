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
    /// This rank's columns (all of them without tensor parallelism).
    let intermediateSize: Int
    let parallel: TensorParallel?
    let gateUp = ProjectionStack(), down = ProjectionStack()

    /// Layer `i`'s MLP, its tensors read from `w` under `prefix` (`model.layers.i.mlp`).
    init(_ w: WeightSource, prefix: String, _ c: TransformerConfiguration) throws {
        activation = c.activation
        parallel = w.parallel
        let n = c.intermediateSize
        if let parallel = w.parallel {
            // A block of columns in whole quantization groups of down_proj's input.
            let down = try w.weight(prefix + ".down_proj", shape: [c.hiddenSize, n])
            let unit = { if case .quantized(let q) = down { q.groupSize } else { 1 } }()
            let columns = try parallel.part(n, unit: unit, what: "MLP columns")
            intermediateSize = columns.count
            super.init()
            if c.fusedGateUp {
                gateUpProj = try w.shardedLinear(
                    prefix + ".gate_up_proj", inputs: c.hiddenSize, outputs: 2 * n,
                    rows: [columns, (n + columns.lowerBound)..<(n + columns.upperBound)])
            } else {
                gateProj = try w.shardedLinear(prefix + ".gate_proj", inputs: c.hiddenSize, outputs: n, rows: [columns])
                upProj = try w.shardedLinear(prefix + ".up_proj", inputs: c.hiddenSize, outputs: n, rows: [columns])
            }
            downProj = try w.shardedLinear(
                prefix + ".down_proj", inputs: n, outputs: c.hiddenSize, columns: columns, stored: down,
                rank: parallel.group.rank)
            gateUp.share(projections)
            self.down.share([downProj])
            return
        }
        intermediateSize = n
        super.init()
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

    var projections: [Linear] {
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
        let out = down({ [downProj] }, activated * projected[1])[0]
        return parallel?.reduce(out) ?? out
    }
}
