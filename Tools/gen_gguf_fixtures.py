#!/usr/bin/env python3
"""Tiny GGUF models of every architecture TesseraLM loads from GGUF, with the
logits transformers computes for the same weights.

For each case below: a tiny randomly initialised Hugging Face model (float32,
fixed seed), converted to GGUF the way llama.cpp's convert_hf_to_gguf.py does
it (the facts only, written here):

  - tensor names from the `gguf` package's own HF -> GGUF name map
    (gguf.get_tensor_name_map), checked against the architecture's tensor list;
  - llama (and Mistral, which llama.cpp writes as "llama"): the rows of q_proj
    and k_proj permuted per head so that llama.cpp's interleaved ("normal")
    rope sees pairs (i, i + d/2) as neighbours; qwen2/qwen3/phi3/gemma use the
    NeoX rope and are stored as they are;
  - llama 3 rope scaling as a `rope_freqs.weight` tensor of per-pair divisors;
  - phi3 keeps its fused qkv_proj (attn_qkv) and gate_up_proj (ffn_up, gate
    rows first); partial rotary as `rope.dimension_count`;
  - gemma2/gemma3: every `*norm.weight` stored as 1 + w, no output tensor
    (tied), soft-capping and sliding-window keys; llama.cpp hard-codes the
    sliding pattern (gemma2: even layers; gemma3: 5 of every 6), the local rope
    base of gemma3 (10000) and the query scale 1/sqrt(head_dim) (except the
    27B sizes), so the models here use those values;
  - tied embeddings: no `output.weight`;
  - 1-D tensors (norms, biases) stay float32; 2-D weights are written as
    float32, float16 or Q8_0 depending on the case. The HF model gets the
    weights the GGUF holds back (rounded to float16, or Q8_0 quantized and
    dequantized by the gguf package) before its logits are computed, so the
    reference is exact for the stored weights.

Writes Tests/Fixtures/lm/gguf/<case>/model.gguf and reference.json (tokens,
prompt_length, float32 logits per position, as gen_lm_fixtures.py does).

    pip install torch==2.13.0+cpu transformers==5.24.0 gguf==0.19.0 numpy
    python3 Tools/gen_gguf_fixtures.py
"""
import json
import math
import re
import shutil
import sys
from pathlib import Path

import gguf
import numpy as np
import torch
import transformers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gen_lm_fixtures import COMMON, PROMPT_LENGTH, TOKENS, randomise  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "lm" / "gguf"

LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}

# case: (GGUF architecture, config class, config fields, storage of 2-D weights)
CASES = {
    "llama3": ("llama", transformers.LlamaConfig,
               dict(rms_norm_eps=1e-5, tie_word_embeddings=False, rope_parameters=LLAMA3_ROPE), "f32"),
    # Mistral as llama.cpp writes it: architecture "llama", with head_dim != hidden / heads (as Mistral Nemo).
    "mistral": ("llama", transformers.MistralConfig,
                dict(rope_theta=1000.0, head_dim=32, sliding_window=None, tie_word_embeddings=False), "f16"),
    "qwen2": ("qwen2", transformers.Qwen2Config, dict(rope_theta=1e6, tie_word_embeddings=True), "f16"),
    "qwen3": ("qwen3", transformers.Qwen3Config, dict(head_dim=32, rope_theta=1e6, tie_word_embeddings=True), "f32"),
    "phi3": ("phi3", transformers.Phi3Config,
             dict(rope_theta=10000.0, tie_word_embeddings=False, partial_rotary_factor=0.5), "q8_0"),
    "gemma2": ("gemma2", transformers.Gemma2Config, dict(
        head_dim=16, query_pre_attn_scalar=16, attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
        sliding_window=4, hidden_activation="gelu_pytorch_tanh", num_hidden_layers=3, rope_theta=10000.0), "f16"),
    "gemma3": ("gemma3", transformers.Gemma3TextConfig, dict(
        head_dim=16, query_pre_attn_scalar=16, sliding_window=4, num_hidden_layers=6,
        layer_types=["sliding_attention"] * 5 + ["full_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                         "full_attention": {"rope_type": "linear", "rope_theta": 1000.0, "factor": 4.0}}), "f16"),
}


def permute(w, n_head):
    """llama.cpp's q/k row order: each head's halves interleaved."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(config, head_dim):
    """The per-pair divisors convert_hf_to_gguf writes as rope_freqs for llama3 scaling."""
    r = config.rope_parameters
    base, factor = r["rope_theta"], r["factor"]
    low, high, original = r["low_freq_factor"], r["high_freq_factor"], r["original_max_position_embeddings"]
    low_wavelen, high_wavelen = original / low, original / high
    factors = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / base ** (i / head_dim)
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1.0)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (original / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def stored(w, storage):
    """(what the GGUF holds, what it decodes to) for a 2-D weight."""
    if storage == "f32":
        return w, w
    if storage == "f16":
        h = w.astype(np.float16)
        return h, h.astype(np.float32)
    q = gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0)
    return q, gguf.quants.dequantize(q, gguf.GGMLQuantizationType.Q8_0).astype(np.float32).reshape(w.shape)


def build(case, seed):
    arch, config_class, extra, storage = CASES[case]
    config = config_class(**{**COMMON, **extra})
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").float().eval()
    randomise(model, seed)
    return arch, config, model, storage


def write(case, seed, folder):
    arch, config, model, storage = build(case, seed)
    gemma = arch.startswith("gemma")
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    n_layers = config.num_hidden_layers
    model_arch = next(a for a, name in gguf.MODEL_ARCH_NAMES.items() if name == arch)
    names = gguf.get_tensor_name_map(model_arch, n_layers)
    allowed = {gguf.TENSOR_NAMES[t] for t in gguf.MODEL_TENSORS[model_arch]}

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    writer = gguf.GGUFWriter(str(folder / "model.gguf"), arch)
    writer.add_name(f"tessera tiny {case}")
    writer.add_block_count(n_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    if head_dim != config.hidden_size // heads or arch in ("qwen3", "gemma2", "gemma3"):
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    rope = config.rope_parameters if isinstance(config.rope_parameters, dict) else {}
    if gemma and arch == "gemma3":
        full = rope["full_attention"]
        writer.add_rope_freq_base(full["rope_theta"])
        if full.get("rope_type") == "linear":
            writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
            writer.add_rope_scaling_factor(full["factor"])
    else:
        writer.add_rope_freq_base(rope.get("rope_theta", 10000.0))
    if arch == "phi3":
        writer.add_rope_dimension_count(int(config.partial_rotary_factor * config.hidden_size) // heads)
        writer.add_rope_scaling_orig_ctx_len(config.original_max_position_embeddings)
    elif arch == "llama":
        writer.add_rope_dimension_count(head_dim)
    if arch == "gemma2":
        writer.add_attn_logit_softcapping(config.attn_logit_softcapping)
        writer.add_final_logit_softcapping(config.final_logit_softcapping)
    if gemma:
        writer.add_sliding_window(config.sliding_window)

    # The weights the GGUF holds, loaded back into the HF model for the reference.
    state = model.state_dict()
    decoded = {}
    if rope.get("rope_type") == "llama3":
        writer.add_tensor("rope_freqs.weight", llama3_rope_factors(config, head_dim))
    for name, p in state.items():
        if name == "lm_head.weight" and config.tie_word_embeddings:
            continue
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, name
        assert re.sub(r"^blk\.\d+\.", "blk.{bid}.", gguf_name.rsplit(".", 1)[0]) in allowed, gguf_name
        w = p.numpy().astype(np.float32)
        if w.ndim == 2:
            data, back = stored(w, storage)
            decoded[name] = back
            if arch == "llama" and name.endswith("self_attn.q_proj.weight"):
                data, _ = stored(permute(w, heads), storage)
            if arch == "llama" and name.endswith("self_attn.k_proj.weight"):
                data, _ = stored(permute(w, kv_heads), storage)
            if storage == "q8_0":
                writer.add_tensor(gguf_name, data, raw_shape=data.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                writer.add_tensor(gguf_name, data)
        else:
            decoded[name] = w
            writer.add_tensor(gguf_name, w + 1 if gemma and name.endswith("norm.weight") else w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name in decoded:
                p.copy_(torch.from_numpy(decoded[name]))
        if config.tie_word_embeddings:
            assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
        logits = model(torch.tensor([TOKENS])).logits[0]
    reference = {"generator": f"transformers {transformers.__version__}, torch {torch.__version__}, "
                              f"gguf {__import__('importlib.metadata').metadata.version('gguf')}; weights {storage}",
                 "architecture": arch, "tokens": TOKENS, "prompt_length": PROMPT_LENGTH,
                 "logits": [[round(float(v), 7) for v in row] for row in logits]}
    (folder / "reference.json").write_text(json.dumps(reference) + "\n")


def main():
    for seed, case in enumerate(CASES):
        folder = OUT / case
        write(case, 200 + seed, folder)
        print(case, sum(f.stat().st_size for f in folder.iterdir()), "bytes")


if __name__ == "__main__":
    main()
