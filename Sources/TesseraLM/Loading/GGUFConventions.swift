// How llama.cpp stores an architecture in a GGUF file: its tensor names and
// the ways its tensors differ from the Hugging Face ones. Each architecture
// file states its own (`Architecture.gguf`); `WeightSource.gguf` reads a file
// through them, so the model's parameters hold Hugging Face values under
// Hugging Face names whatever file they came from.

import Tessera

struct GGUFConventions: Sendable {
    /// `general.architecture`.
    let architecture: String
    /// The transformers class named by a config.json written from the file.
    let className: String
    /// q/k rows interleaved per head for llama.cpp's "normal" rope (llama,
    /// mistral); un-permuted at load, so the model rotates halves as transformers does.
    var permutedQueryKey = false
    /// Norm weights stored as `1 + w` (gemma); stored back as `w` at load.
    var normsIncludeOne = false
    /// Layer tensor names (after `model.layers.<i>.` → `blk.<i>.`) that differ from `layerNames`.
    var layerNameOverrides: [String: String] = [:]

    /// llama.cpp's names of a layer's tensors, by Hugging Face name.
    static let layerNames = [
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
        "self_attn.k_norm": "attn_k_norm", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"
    ]
    static let modelNames = ["model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"]

    /// The GGUF name of the Hugging Face tensor `name` (without ".weight"/".bias").
    func ggufName(_ name: String) -> String {
        if let global = Self.modelNames[name] { return global }
        let parts = name.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let i = Int(parts[2]),
            let local = layerNameOverrides[parts[3]] ?? Self.layerNames[parts[3]]
        else { return name }
        return "blk.\(i).\(local)"
    }
}

extension WeightSource {
    /// A GGUF file's tensors under Hugging Face names and conventions:
    /// Q4_0/Q4_1/Q8_0 stay quantized, everything else dense; q/k rows
    /// un-permuted and norms back to `w` where `conventions` say so.
    static func gguf(_ file: GGUFFile, _ conventions: GGUFConventions, _ c: TransformerConfiguration) -> WeightSource {
        WeightSource(
            fetch: { name, suffix in
                let stored = conventions.ggufName(name) + suffix
                guard file.info(stored) != nil else { return nil }
                var w: StoredWeight
                switch try file.tensor(stored) {
                case .dense(let t): w = .dense(t)
                case .quantized(let q): w = .quantized(q)
                }
                if conventions.permutedQueryKey {
                    if name.hasSuffix("self_attn.q_proj") { w = unpermuted(w, heads: c.headCount, headDim: c.headDim) }
                    if name.hasSuffix("self_attn.k_proj") {
                        w = unpermuted(w, heads: c.kvHeadCount, headDim: c.headDim)
                    }
                }
                if conventions.normsIncludeOne, name.hasSuffix("norm"), suffix == ".weight", case .dense(let t) = w {
                    let shifted = t.asType(.float32) - 1
                    try checkedEval([shifted])
                    w = .dense(shifted)
                }
                return w
            },
            describe: { conventions.ggufName($0) })
    }

    /// llama.cpp interleaves each head's two rotation halves; put them back
    /// (rows only, so quantized rows move as they are). Left as stored when
    /// the rows do not fit the heads: the shape check then names the tensor.
    private static func unpermuted(_ w: StoredWeight, heads: Int, headDim: Int) -> StoredWeight {
        guard w.shape.first == heads * headDim, headDim % 2 == 0 else { return w }
        return w.mapRows { t in
            let columns = t.ndim == 2 ? [t.dim(1)] : []
            let rows = t.reshaped([heads, headDim / 2, 2] + columns).swappedAxes(1, 2).reshaped(t.shape)
            eval(rows)
            return rows
        }
    }
}
