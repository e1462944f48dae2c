// The fine-tuning loss (mlx-lm's default_loss): next-token cross-entropy
// over a padded batch, counting only targets inside each sequence and, with
// a prompt offset, only those from the offset on; the mean over the counted
// tokens, in float32.

import Tessera
import TesseraNN

public enum FineTuningLoss {
    /// The 0/1 mask [B, L-1] of the targets that count: target j (token j+1)
    /// of a row when offset ≤ j+1 < length.
    public static func mask(offsets: [Int], lengths: [Int], width: Int) -> Tensor {
        var keep = [Float](repeating: 0, count: offsets.count * (width - 1))
        for row in offsets.indices {
            for j in 0..<(width - 1) where j + 1 >= offsets[row] && j + 1 < lengths[row] {
                keep[row * (width - 1) + j] = 1
            }
        }
        return Tensor(keep, shape: [offsets.count, width - 1])
    }

    /// The mean cross-entropy of `model`'s next-token predictions on `batch`'s counted targets.
    public static func loss(_ model: TransformerModel, tokens: Tensor, mask: Tensor) -> Tensor {
        let width = tokens.dim(1)
        let inputs = tokens[0..., 0..<(width - 1)], targets = tokens[0..., 1..<width]
        let logits = model(inputs).asType(.float32)
        let ce = tokenCrossEntropy(logits, targets) * mask
        return ce.sum() / maximum(mask.sum(), Tensor(Float(1)))
    }

    /// `logSumExp(logits) - logits[target]` per position (`crossEntropy`'s
    /// value) with its vjp written out: `(softmax(logits) - onehot(target)) · g`.
    /// Over a vocabulary of 49k the generic rules of max, subtract, exp, sum,
    /// log and the gather each made and read a [B, L, vocab] tensor; here the
    /// forward makes one (log-softmax, freed at once) and the backward two.
    static func tokenCrossEntropy(_ logits: Tensor, _ targets: Tensor) -> Tensor {
        let picked = targets.asType(.int32).expandedDimensions(axis: -1)
        let f = customFunction(
            { xs in [-logSoftmax(xs[0], axis: -1).takeAlongAxis(picked, axis: -1).squeezed(axis: -1)] },
            vjp: { primals, cotangents, _ in
                let g = cotangents[0].expandedDimensions(axis: -1)
                let p = softmax(primals[0], axis: -1) * g
                return [p.putAlongAxis(picked, values: p.takeAlongAxis(picked, axis: -1) - g, axis: -1)]
            })
        return f([logits])[0]
    }
}
