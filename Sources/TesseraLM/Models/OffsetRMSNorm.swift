// Gemma's RMS norm: the weight is stored as w and applied as 1 + w (the
// Hugging Face parameter stays w, so checkpoints load and save as they are).

import Tessera
import TesseraNN

final class OffsetRMSNorm: RMSNorm {
    let offset: Float
    private let shifted = DerivedTensors()

    init(dimensions: Int, eps: Float, offset: Float) {
        self.offset = offset
        super.init(dimensions: dimensions, eps: eps)
    }

    override func callAsFunction(_ x: Tensor) -> Tensor {
        let offset = self.offset
        let kept = shifted.values(from: { [self.weight] }) { [$0[0] + offset] }?.first
        return Fast.rmsNorm(x, weight: kept ?? weight + offset, eps: eps)
    }
}
