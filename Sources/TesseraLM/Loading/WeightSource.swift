// Where a model's tensors come from, under the roles an architecture asks
// for (embedding, layer i's q projection...), whatever the file calls them.

import Tessera

/// A tensor's role in a decoder-only transformer.
enum WeightRole: Sendable {
    case embedding, finalNorm, head
    case attentionNorm(Int), q(Int), k(Int), v(Int), o(Int)
    case mlpNorm(Int), gate(Int), up(Int), down(Int)

    /// GGUF's name (llama.cpp convention).
    var ggufName: String {
        switch self {
        case .embedding: return "token_embd.weight"
        case .finalNorm: return "output_norm.weight"
        case .head: return "output.weight"
        case .attentionNorm(let i): return "blk.\(i).attn_norm.weight"
        case .q(let i): return "blk.\(i).attn_q.weight"
        case .k(let i): return "blk.\(i).attn_k.weight"
        case .v(let i): return "blk.\(i).attn_v.weight"
        case .o(let i): return "blk.\(i).attn_output.weight"
        case .mlpNorm(let i): return "blk.\(i).ffn_norm.weight"
        case .gate(let i): return "blk.\(i).ffn_gate.weight"
        case .up(let i): return "blk.\(i).ffn_up.weight"
        case .down(let i): return "blk.\(i).ffn_down.weight"
        }
    }

    /// The Hugging Face name, without the ".weight" suffix.
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
        case .mlpNorm(let i): return "model.layers.\(i).post_attention_layernorm"
        case .gate(let i): return "model.layers.\(i).mlp.gate_proj"
        case .up(let i): return "model.layers.\(i).mlp.up_proj"
        case .down(let i): return "model.layers.\(i).mlp.down_proj"
        }
    }
}

/// Looks weights up by role, checking their shapes.
struct WeightSource {
    let lookup: (WeightRole) throws -> Weight?
    let describe: (WeightRole) -> String

    func weight(_ role: WeightRole, shape: [Int]) throws -> Weight {
        guard let w = try lookup(role) else { throw ModelError.missingTensor(describe(role)) }
        guard w.shape == shape else { throw ModelError.tensorShape(name: describe(role), expected: shape, got: w.shape) }
        return w.withFloat32Parameters
    }

    func vector(_ role: WeightRole, size: Int) throws -> Tensor {
        guard case .dense(let t)? = try lookup(role) else { throw ModelError.missingTensor(describe(role)) }
        guard t.shape == [size] else { throw ModelError.tensorShape(name: describe(role), expected: [size], got: t.shape) }
        return t.asType(.float32)
    }

    /// GGUF tensors: Q4_0/Q4_1/Q8_0 stay quantized, everything else dense.
    static func gguf(_ file: GGUFFile) -> WeightSource {
        WeightSource(
            lookup: { role in
                guard file.info(role.ggufName) != nil else { return nil }
                switch try file.tensor(role.ggufName) {
                case .dense(let t): return .dense(t)
                case .quantized(let q): return .quantized(q)
                }
            },
            describe: { $0.ggufName })
    }

    /// Hugging Face / mlx-community safetensors: `name.weight`, plus
    /// `name.scales`/`name.biases` for quantized layers.
    static func safetensors(_ tensors: [String: Tensor], groupSize: Int?, bits: Int?) -> WeightSource {
        WeightSource(
            lookup: { role in
                let base = role.huggingFaceName
                guard let w = tensors[base + ".weight"] else { return nil }
                if let scales = tensors[base + ".scales"] {
                    guard let groupSize, let bits else {
                        throw ModelError.invalidConfiguration("\(base) is quantized but config.json has no quantization")
                    }
                    let biases = tensors[base + ".biases"] ?? Tensor.zerosLike(scales)
                    return .quantized(QuantizedWeight(weight: w, scales: scales, biases: biases, groupSize: groupSize, bits: bits))
                }
                return .dense(w)
            },
            describe: { $0.huggingFaceName + ".weight" })
    }
}
