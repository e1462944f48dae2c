// Where a model's tensors come from, under the roles an architecture asks
// for (embedding, layer i's q projection...), whatever the file calls them.

import Tessera

/// A tensor's role in a decoder-only transformer, named after the Hugging Face
/// module that holds it (`postAttentionNorm` is llama's MLP input norm and
/// gemma's attention output norm: the architecture decides what it does).
enum WeightRole: Sendable {
    case embedding, finalNorm, head
    case attentionNorm(Int), q(Int), k(Int), v(Int), o(Int), qkv(Int), qNorm(Int), kNorm(Int)
    case postAttentionNorm(Int), preFeedForwardNorm(Int), postFeedForwardNorm(Int)
    case gate(Int), up(Int), down(Int), gateUp(Int)

    /// GGUF's name (llama.cpp convention), without the ".weight"/".bias" suffix.
    /// In gemma's sandwich layout `postAttentionNorm` is the attention output's
    /// norm (`post_attention_norm`) and `ffn_norm` the MLP's input norm.
    func ggufName(sandwich: Bool) -> String {
        if sandwich, case .postAttentionNorm(let i) = self { return "blk.\(i).post_attention_norm" }
        return ggufName
    }

    /// An RMS norm's weight (gemma stores these as `1 + w` in GGUF).
    var isNorm: Bool {
        switch self {
        case .finalNorm, .attentionNorm, .qNorm, .kNorm, .postAttentionNorm, .preFeedForwardNorm, .postFeedForwardNorm:
            return true
        default: return false
        }
    }

    /// GGUF's name in the pre-norm layout.
    var ggufName: String {
        switch self {
        case .embedding: return "token_embd"
        case .finalNorm: return "output_norm"
        case .head: return "output"
        case .attentionNorm(let i): return "blk.\(i).attn_norm"
        case .q(let i): return "blk.\(i).attn_q"
        case .k(let i): return "blk.\(i).attn_k"
        case .v(let i): return "blk.\(i).attn_v"
        case .o(let i): return "blk.\(i).attn_output"
        case .qkv(let i): return "blk.\(i).attn_qkv"
        case .qNorm(let i): return "blk.\(i).attn_q_norm"
        case .kNorm(let i): return "blk.\(i).attn_k_norm"
        case .postAttentionNorm(let i): return "blk.\(i).ffn_norm"
        case .preFeedForwardNorm(let i): return "blk.\(i).ffn_norm"
        case .postFeedForwardNorm(let i): return "blk.\(i).post_ffw_norm"
        case .gate(let i): return "blk.\(i).ffn_gate"
        case .up(let i): return "blk.\(i).ffn_up"
        case .down(let i): return "blk.\(i).ffn_down"
        case .gateUp(let i): return "blk.\(i).ffn_up"
        }
    }

    /// The Hugging Face name, without the ".weight"/".bias" suffix.
    var huggingFaceName: String {
        switch self {
        case .embedding: return "model.embed_tokens"
        case .finalNorm: return "model.norm"
        case .head: return "lm_head"
        case .attentionNorm(let i): return "model.layers.\(i).input_layernorm"
        case .q(let i): return "model.layers.\(i).self_attn.q_proj"
        case .k(let i): return "model.layers.\(i).self_attn.k_proj"
        case .v(let i): return "model.layers.\(i).self_attn.v_proj"
        case .o(let i): return "model.layers.\(i).self_attn.o_proj"
        case .qkv(let i): return "model.layers.\(i).self_attn.qkv_proj"
        case .qNorm(let i): return "model.layers.\(i).self_attn.q_norm"
        case .kNorm(let i): return "model.layers.\(i).self_attn.k_norm"
        case .postAttentionNorm(let i): return "model.layers.\(i).post_attention_layernorm"
        case .preFeedForwardNorm(let i): return "model.layers.\(i).pre_feedforward_layernorm"
        case .postFeedForwardNorm(let i): return "model.layers.\(i).post_feedforward_layernorm"
        case .gate(let i): return "model.layers.\(i).mlp.gate_proj"
        case .up(let i): return "model.layers.\(i).mlp.up_proj"
        case .down(let i): return "model.layers.\(i).mlp.down_proj"
        case .gateUp(let i): return "model.layers.\(i).mlp.gate_up_proj"
        }
    }
}

/// Looks weights up by role, checking their shapes.
struct WeightSource {
    /// The tensor `name` + `suffix` (".weight", ".bias"), nil when absent.
    let fetch: (_ role: WeightRole, _ suffix: String) throws -> Weight?
    let describe: (WeightRole) -> String

    func weight(_ role: WeightRole, shape: [Int]) throws -> Weight {
        guard let w = try fetch(role, ".weight") else { throw ModelError.missingTensor(describe(role) + ".weight") }
        guard w.shape == shape else {
            throw ModelError.tensorShape(name: describe(role) + ".weight", expected: shape, got: w.shape)
        }
        return w
    }

    func vector(_ role: WeightRole, size: Int, suffix: String = ".weight") throws -> Tensor {
        guard let w = try fetch(role, suffix) else { throw ModelError.missingTensor(describe(role) + suffix) }
        guard case .dense(let t) = w, t.shape == [size] else {
            throw ModelError.tensorShape(name: describe(role) + suffix, expected: [size], got: w.shape)
        }
        return t.asType(.float32)
    }

    /// GGUF tensors: Q4_0/Q4_1/Q8_0 stay quantized, everything else dense.
    static func gguf(_ file: GGUFFile, sandwich: Bool) -> WeightSource {
        WeightSource(
            fetch: { role, suffix in
                let name = role.ggufName(sandwich: sandwich) + suffix
                guard file.info(name) != nil else { return nil }
                switch try file.tensor(name) {
                case .dense(let t): return .dense(t)
                case .quantized(let q): return .quantized(q)
                }
            },
            describe: { $0.ggufName(sandwich: sandwich) })
    }

    /// Hugging Face / mlx-community safetensors: `name.weight`, plus
    /// `name.scales`/`name.biases` for quantized layers, with the group size and
    /// bits of `quantization` (per-layer entries override the defaults).
    static func safetensors(_ tensors: [String: Tensor], quantization: JSONValue?) -> WeightSource {
        WeightSource(
            fetch: { role, suffix in
                let base = role.huggingFaceName
                guard let w = tensors[base + suffix] else { return nil }
                guard suffix == ".weight", let scales = tensors[base + ".scales"] else { return .dense(w) }
                let (groupSize, bits) = try quantizationParameters(quantization, layer: base)
                let biases = tensors[base + ".biases"] ?? Tensor.zerosLike(scales)
                let packed = w.dim(-1) * 32
                guard w.dtype == .uint32, packed % bits == 0, (packed / bits) % groupSize == 0,
                    scales.shape == Array(w.shape.dropLast()) + [packed / bits / groupSize], biases.shape == scales.shape
                else {
                    throw ModelError.tensorShape(
                        name: base + ".scales", expected: Array(w.shape.dropLast()) + [packed / bits / groupSize],
                        got: scales.shape)
                }
                return .quantized(QuantizedWeight(weight: w, scales: scales, biases: biases, groupSize: groupSize, bits: bits))
            },
            describe: { $0.huggingFaceName })
    }

    /// `(groupSize, bits)` for `layer` from an mlx-lm `quantization` entry.
    static func quantizationParameters(_ quantization: JSONValue?, layer: String) throws -> (Int, Int) {
        guard let quantization else {
            throw ModelError.invalidConfiguration("\(layer) is quantized but config.json has no quantization")
        }
        let entry = quantization[layer]?.object != nil ? quantization[layer]! : quantization
        let mode = entry["mode"]?.string ?? quantization["mode"]?.string ?? "affine"
        guard mode == "affine" else { throw ModelError.invalidConfiguration("quantization mode \(mode) is not supported") }
        guard let groupSize = entry["group_size"]?.int ?? quantization["group_size"]?.int,
            let bits = entry["bits"]?.int ?? quantization["bits"]?.int,
            [32, 64, 128].contains(groupSize), [2, 3, 4, 5, 6, 8].contains(bits)
        else { throw ModelError.invalidConfiguration("bad quantization for \(layer): \(entry.compactText)") }
        return (groupSize, bits)
    }
}
