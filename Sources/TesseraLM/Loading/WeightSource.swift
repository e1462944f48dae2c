// Where a model's tensors come from, asked for by their Hugging Face names
// (`model.layers.3.self_attn.q_proj`), whatever the file calls them, and the
// TesseraNN layers built from them (Linear or QuantizedLinear, Embedding or
// QuantizedEmbedding, RMSNorm) with their shapes checked.

import Tessera
import TesseraNN

/// A stored weight: dense, or in MLX's affine quantized format.
enum StoredWeight {
    case dense(Tensor)
    case quantized(QuantizedWeight)

    /// [out, in] in dense terms.
    var shape: [Int] {
        switch self {
        case .dense(let w): return w.shape
        case .quantized(let q): return Array(q.weight.shape.dropLast()) + [q.weight.dim(-1) * 32 / q.bits]
        }
    }

    /// The values as a dense tensor (float32 when dequantized).
    var dense: Tensor {
        switch self {
        case .dense(let w): return w
        case .quantized(let q): return q.dequantized()
        }
    }

    /// `transform` applied to the tensor, or to each of the quantized tensors
    /// (for changes along the rows, which quantization groups never cross).
    func mapRows(_ transform: (Tensor) -> Tensor) -> StoredWeight {
        switch self {
        case .dense(let w): return .dense(transform(w))
        case .quantized(let q):
            return .quantized(
                QuantizedWeight(
                    weight: transform(q.weight), scales: transform(q.scales), biases: transform(q.biases),
                    groupSize: q.groupSize, bits: q.bits))
        }
    }
}

/// Looks weights up by Hugging Face name, checking their shapes.
struct WeightSource {
    /// The tensor `name` + `suffix` (".weight", ".bias"), nil when absent.
    let fetch: (_ name: String, _ suffix: String) throws -> StoredWeight?
    /// The file's name for `name` (for errors).
    let describe: (String) -> String
    /// The split of the layers over ranks (tensor-parallel inference), nil for the whole model.
    var parallel: TensorParallel? = nil

    func weight(_ name: String, shape: [Int]) throws -> StoredWeight {
        guard let w = try fetch(name, ".weight") else { throw ModelError.missingTensor(describe(name) + ".weight") }
        guard w.shape == shape else {
            throw ModelError.tensorShape(name: describe(name) + ".weight", expected: shape, got: w.shape)
        }
        return w
    }

    /// A 1-D tensor (norm weight, bias) as float32.
    func vector(_ name: String, size: Int, suffix: String = ".weight") throws -> Tensor {
        guard let w = try fetch(name, suffix) else { throw ModelError.missingTensor(describe(name) + suffix) }
        guard case .dense(let t) = w, t.shape == [size] else {
            throw ModelError.tensorShape(name: describe(name) + suffix, expected: [size], got: w.shape)
        }
        return t.asType(.float32)
    }

    /// `name` as a `Linear` (weight [outputs, inputs]), or a `QuantizedLinear` when stored quantized.
    func linear(_ name: String, inputs: Int, outputs: Int, bias: Bool = false) throws -> Linear {
        let w = try weight(name, shape: [outputs, inputs])
        let b = bias ? try vector(name, size: outputs, suffix: ".bias") : nil
        switch w {
        case .dense(let t): return Linear(weight: t, bias: b)
        case .quantized(let q):
            return QuantizedLinear(
                weight: q.weight, scales: q.scales, biases: q.biases, bias: b, groupSize: q.groupSize, bits: q.bits)
        }
    }

    func embedding(_ name: String, count: Int, dimensions: Int) throws -> Embedding {
        switch try weight(name, shape: [count, dimensions]) {
        case .dense(let t): return Embedding(weight: t)
        case .quantized(let q):
            return QuantizedEmbedding(
                weight: q.weight, scales: q.scales, biases: q.biases, groupSize: q.groupSize, bits: q.bits)
        }
    }

    /// An RMS norm over `size` features (gemma's applies 1 + w).
    func norm(_ name: String, size: Int, _ c: TransformerConfiguration) throws -> RMSNorm {
        let norm =
            c.normWeightOffset == 0
            ? RMSNorm(dimensions: size, eps: c.rmsNormEps)
            : OffsetRMSNorm(dimensions: size, eps: c.rmsNormEps, offset: c.normWeightOffset)
        norm.weight = try vector(name, size: size)
        return norm
    }

    /// Hugging Face / mlx-community safetensors: `name.weight`, plus
    /// `name.scales`/`name.biases` for quantized layers, with the group size and
    /// bits of `quantization` (per-layer entries override the defaults).
    static func safetensors(_ tensors: [String: Tensor], quantization: JSONValue?) -> WeightSource {
        WeightSource(
            fetch: { base, suffix in
                guard let w = tensors[base + suffix] else { return nil }
                guard suffix == ".weight", let scales = tensors[base + ".scales"] else { return .dense(w) }
                let (groupSize, bits) = try quantizationParameters(quantization, layer: base)
                return .quantized(
                    try checkedQuantized(
                        base, weight: w, scales: scales, biases: tensors[base + ".biases"], groupSize: groupSize,
                        bits: bits))
            },
            describe: { $0 })
    }

    /// MLX affine parts of layer `base`, each checked with a message naming the
    /// tensor at fault: weight packed uint32 with at least one axis, its row of
    /// `bits`-bit values whole groups, scales (and biases, zeros when absent)
    /// float with one value per group.
    static func checkedQuantized(
        _ base: String, weight w: Tensor, scales: Tensor, biases: Tensor?, groupSize: Int, bits: Int
    ) throws -> QuantizedWeight {
        guard w.ndim >= 1 else {
            throw ModelError.quantizedTensor(
                name: base + ".weight", reason: "a scalar; a quantized weight has at least one axis")
        }
        guard w.dtype == .uint32 else {
            throw ModelError.quantizedTensor(
                name: base + ".weight", reason: "\(w.dtype); a quantized weight is packed uint32")
        }
        let (packed, overflow) = w.dim(-1).multipliedReportingOverflow(by: 32)
        guard !overflow, packed % bits == 0, (packed / bits) % groupSize == 0 else {
            throw ModelError.quantizedTensor(
                name: base + ".weight",
                reason: "rows of \(w.dim(-1)) uint32 words do not hold whole groups of \(groupSize) \(bits)-bit values")
        }
        let expected = Array(w.shape.dropLast()) + [packed / bits / groupSize]
        for (suffix, t) in [(".scales", scales), (".biases", biases)] {
            guard let t else { continue }
            guard t.shape == expected else {
                throw ModelError.tensorShape(name: base + suffix, expected: expected, got: t.shape)
            }
            guard t.dtype.isFloatingPoint else {
                throw ModelError.quantizedTensor(
                    name: base + suffix, reason: "\(t.dtype); scales and biases are floating point")
            }
        }
        return QuantizedWeight(
            weight: w, scales: scales, biases: biases ?? Tensor.zerosLike(scales), groupSize: groupSize, bits: bits)
    }

    /// `(groupSize, bits)` for `layer` from an mlx-lm `quantization` entry.
    static func quantizationParameters(_ quantization: JSONValue?, layer: String) throws -> (Int, Int) {
        guard let quantization else {
            throw ModelError.invalidConfiguration("\(layer) is quantized but config.json has no quantization")
        }
        let entry = quantization[layer].flatMap { $0.object != nil ? $0 : nil } ?? quantization
        let mode = entry["mode"]?.string ?? quantization["mode"]?.string ?? "affine"
        guard mode == "affine" else {
            throw ModelError.invalidConfiguration("quantization mode \(mode) is not supported")
        }
        guard let groupSize = entry["group_size"]?.int ?? quantization["group_size"]?.int,
            let bits = entry["bits"]?.int ?? quantization["bits"]?.int,
            [32, 64, 128].contains(groupSize), [2, 3, 4, 5, 6, 8].contains(bits)
        else { throw ModelError.invalidConfiguration("bad quantization for \(layer): \(entry.compactText)") }
        return (groupSize, bits)
    }
}
