#!/usr/bin/env python3
"""Tiny randomly initialised language models and their reference logits.

For each architecture TesseraLM supports, builds a tiny Hugging Face
transformers model with a fixed seed, saves it as a model folder
(config.json + model.safetensors) under Tests/Fixtures/lm/<arch>/, and writes
reference.json: the token ids and transformers' float32 logits for every
position. Tests run the first `prompt_length` tokens as one step and the rest
through the KV cache, and compare each row with these logits.

For qwen3, reference_kv4.json and reference_kv8.json hold mlx_lm's logits
with a 4- and 8-bit quantized KV cache (group 32). Also writes an mlx-community-style quantized folder (lm/qwen3_mlx_q4): the
qwen3 model quantized by mlx_lm (4-bit, group 32, with per-layer overrides),
and the logits mlx_lm computes from those quantized weights.

    pip install torch==2.13.0+cpu transformers safetensors mlx mlx-lm
    python3 Tools/gen_lm_fixtures.py
"""
import json
import os
import shutil
from pathlib import Path

import torch
import transformers

OUT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "lm"
TOKENS = [5, 17, 99, 3, 64, 120, 42, 7, 88]
PROMPT_LENGTH = 7

COMMON = dict(
    vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=256, pad_token_id=0, bos_token_id=1, eos_token_id=2,
)

MODELS = {
    "llama": (transformers.LlamaConfig, dict(rms_norm_eps=1e-5, tie_word_embeddings=False, rope_parameters={
        "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 64})),
    "mistral": (transformers.MistralConfig, dict(rope_theta=1000.0, sliding_window=4, head_dim=16)),
    "qwen2": (transformers.Qwen2Config, dict(rope_theta=1e6, tie_word_embeddings=True)),
    "qwen3": (transformers.Qwen3Config, dict(head_dim=32, rope_theta=1e6, tie_word_embeddings=True)),
    "phi3": (transformers.Phi3Config, dict(rope_theta=10000.0, tie_word_embeddings=False)),
    "gemma2": (transformers.Gemma2Config, dict(
        head_dim=16, query_pre_attn_scalar=24, attn_logit_softcapping=2.0, final_logit_softcapping=3.0,
        sliding_window=4, hidden_activation="gelu_pytorch_tanh", num_hidden_layers=3)),
    "gemma3_text": (transformers.Gemma3TextConfig, dict(
        head_dim=16, query_pre_attn_scalar=16, sliding_window=4, num_hidden_layers=3,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10.0},
                         "full_attention": {"rope_type": "default", "rope_theta": 10000.0}})),
}


def randomise(model, seed):
    """Weights large enough that every part of the model moves the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.ndim == 1 and "norm" in name:
                gemma = "gemma" in type(model).__name__.lower()
                p.copy_((0.0 if gemma else 1.0) + 0.2 * noise)
            else:
                p.copy_(0.15 * noise)


def build(arch, seed):
    config_class, extra = MODELS[arch]
    config = config_class(**{**COMMON, **extra})
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager").float().eval()
    randomise(model, seed)
    return model


def save(arch, model, folder):
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder, safe_serialization=True)
    save_reference(model, folder)
    for extra in folder.iterdir():
        if extra.name not in ("config.json", "model.safetensors") and not extra.name.startswith("reference"):
            extra.unlink()


def save_reference(model, folder):
    with torch.no_grad():
        logits = model(torch.tensor([TOKENS])).logits[0]
    reference = {"generator": f"transformers {transformers.__version__}, torch {torch.__version__}",
                 "tokens": TOKENS, "prompt_length": PROMPT_LENGTH,
                 "logits": [[round(float(v), 7) for v in row] for row in logits]}
    (folder / "reference.json").write_text(json.dumps(reference) + "\n")


def quantized_mlx(source, folder):
    import mlx.core as mx
    from mlx_lm.utils import load_model, quantize_model, save_config, save_model

    model, config = load_model(source)
    # mlx-community style: 4-bit group 32 by default, one layer at 8-bit group 64, the head left dense.
    def predicate(path, module):
        if path == "model.layers.0.self_attn.o_proj":
            return {"group_size": 64, "bits": 8}
        if path == "model.layers.1.mlp.down_proj":
            return False
        return True
    model, config = quantize_model(model, config, group_size=32, bits=4, quant_predicate=predicate)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    save_model(folder, model)
    save_config(config, folder / "config.json")
    for extra in folder.iterdir():
        if extra.name not in ("config.json", "model.safetensors"):
            extra.unlink()
    logits = model(mx.array([TOKENS]))[0].astype(mx.float32)
    reference = {"generator": "mlx_lm " + __import__("mlx_lm").__version__ + ", mlx " + mx.__version__,
                 "tokens": TOKENS, "prompt_length": PROMPT_LENGTH,
                 "logits": [[round(float(v), 7) for v in row] for row in logits.tolist()]}
    (folder / "reference.json").write_text(json.dumps(reference) + "\n")


def quantized_kv_references(folder):
    """mlx_lm's QuantizedKVCache on the float32 model: the prompt, then one token at a time."""
    import mlx.core as mx
    from mlx_lm.models.cache import QuantizedKVCache
    from mlx_lm.utils import load_model

    model, _ = load_model(folder)
    for bits in (4, 8):
        cache = [QuantizedKVCache(group_size=32, bits=bits) for _ in model.layers]
        rows = model(mx.array([TOKENS[:PROMPT_LENGTH]]), cache=cache)[0].tolist()
        for t in TOKENS[PROMPT_LENGTH:]:
            rows += model(mx.array([[t]]), cache=cache)[0].tolist()
        reference = {"generator": "mlx_lm " + __import__("mlx_lm").__version__ + ", QuantizedKVCache(group_size=32, "
                     f"bits={bits})", "tokens": TOKENS, "prompt_length": PROMPT_LENGTH,
                     "logits": [[round(float(v), 7) for v in row] for row in rows]}
        (folder / f"reference_kv{bits}.json").write_text(json.dumps(reference) + "\n")


def llama_gguf(folder):
    """A float32 llama GGUF written as llama.cpp's converter does (q/k rows permuted
    for interleaved rope), with transformers' logits of the same weights."""
    import gguf
    import numpy as np

    config = transformers.LlamaConfig(**{**COMMON, "rope_theta": 10000.0, "tie_word_embeddings": False})
    torch.manual_seed(100)
    model = transformers.LlamaForCausalLM(config).float().eval()
    randomise(model, 100)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads

    def permute(w, n):
        return w.reshape(n, 2, w.shape[0] // n // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)

    writer = gguf.GGUFWriter(str(folder / "model.gguf"), "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(config.vocab_size)
    names = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    layer_names = {"input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
                   "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
                   "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
                   "mlp.down_proj": "ffn_down"}
    for name, p in model.state_dict().items():
        base = name[: -len(".weight")]
        w = p.numpy().astype(np.float32)
        if base in names:
            writer.add_tensor(names[base] + ".weight", w)
            continue
        _, _, i, rest = base.split(".", 3)
        if rest == "self_attn.q_proj":
            w = permute(w, heads)
        if rest == "self_attn.k_proj":
            w = permute(w, kv_heads)
        writer.add_tensor(f"blk.{i}.{layer_names[rest]}.weight", w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_reference(model, folder)
    # The same weights as a Hugging Face folder, to check that converting either gives the same model.
    model.save_pretrained(folder / "hf", safe_serialization=True)
    for extra in (folder / "hf").iterdir():
        if extra.name not in ("config.json", "model.safetensors"):
            extra.unlink()


def main():
    for seed, arch in enumerate(MODELS):
        folder = OUT / arch
        save(arch, build(arch, seed), folder)
        print(arch, sum(f.stat().st_size for f in folder.iterdir()), "bytes")
    quantized_mlx(OUT / "qwen3", OUT / "qwen3_mlx_q4")
    quantized_kv_references(OUT / "qwen3")
    llama_gguf(OUT / "llama_gguf")


if __name__ == "__main__":
    main()
