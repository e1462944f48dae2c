#!/usr/bin/env python3
"""transformers' gradients of a next-token loss on the tiny LM fixtures.

For each model folder that Tools/gen_lm_fixtures.py wrote under
Tests/Fixtures/lm/<arch>/, loads it with transformers (float32, eager
attention), computes the mean cross-entropy of predicting tokens[1:] from
tokens[:-1] (the tokens of its reference.json), and writes, per parameter
(Hugging Face names; tied embeddings once), three numbers that a wrong, moved
or missing gradient changes: its sum, its L2 norm and its dot product with the
direction sin(0.37 * i + 0.1) over the flattened (row-major) elements.
Output: Tests/Fixtures/lm/gradients.json.

    pip install torch==2.13.0+cpu transformers safetensors
    python3 Tools/gen_lm_grad_fixtures.py
"""
import json
from pathlib import Path

import torch
import transformers

LM = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "lm"
ARCHITECTURES = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text"]


def direction(n):
    return torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + 0.1)


def gradients(folder):
    tokens = json.loads((folder / "reference.json").read_text())["tokens"]
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").float()
    model.eval()  # no dropout; gradients still flow
    ids = torch.tensor([tokens])
    logits = model(ids[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(logits[0], ids[0, 1:])
    loss.backward()
    summary = {}
    for name, p in model.named_parameters():
        g = p.grad.detach().double().flatten()
        summary[name] = {"sum": float(g.sum()), "norm": float(g.norm()), "projection": float(g @ direction(g.numel()))}
    return {"tokens": tokens, "loss": float(loss), "parameters": summary}


def main():
    out = {"generator": f"transformers {transformers.__version__}, torch {torch.__version__}",
           "direction": "sin(0.37 * i + 0.1)", "models": {a: gradients(LM / a) for a in ARCHITECTURES}}
    (LM / "gradients.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
