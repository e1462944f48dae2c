#!/usr/bin/env python3
"""torch/transformers' masked loss and adapter gradients at step 0.

On the tiny llama fixture (Tests/Fixtures/lm/llama, from Tools/gen_lm_fixtures.py)
with adapters of fixed values on every projection of its last layer, one
LoRA and one DoRA (mlx-lm's definitions: y + scale·(x A) B; DoRA rescales rows
to m over the adapted weight's row norm, not differentiated), computes
mlx-lm's fine-tuning loss over a padded batch with prompt offsets (target j of
a row counts when offset <= j+1 < length; mean over counted targets) and the
gradients of lora_a, lora_b (and m). Writes, per case, an adapter folder in
mlx-lm's layout (adapters.safetensors + adapter_config.json) and
expected.json (batch, loss, and per adapter parameter the sum, the L2 norm
and the dot product with sin(0.37 i + 0.1)) under Tests/Fixtures/lora-torch/.

    pip install torch==2.13.0+cpu transformers safetensors
    python3 Tools/gen_lora_fixtures.py
"""
import json
import math
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures"
MODEL = ROOT / "lm" / "llama"
OUT = ROOT / "lora-torch"
PROJECTIONS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
               "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
ROWS = [([5, 17, 99, 3, 64, 120, 42, 7, 88], 3), ([9, 33, 2, 71, 14, 6], 0), ([100, 8, 45, 23, 61, 4, 90], 5)]
RANK, SCALE = 4, 2.0


def direction(n):
    return torch.sin(0.37 * torch.arange(n, dtype=torch.float64) + 0.1)


def fixed(shape, phase):
    n = math.prod(shape)
    return (0.1 * torch.sin(0.7 * torch.arange(n, dtype=torch.float64) + phase)).float().reshape(shape)


def case(dora):
    model = transformers.AutoModelForCausalLM.from_pretrained(MODEL, attn_implementation="eager").float()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    last = len(model.model.layers) - 1
    adapters = {}
    for k, path in enumerate(PROJECTIONS):
        module = model.model.layers[last].get_submodule(path)
        out_dims, in_dims = module.weight.shape
        name = f"model.layers.{last}.{path}"
        a = fixed((in_dims, RANK), 0.3 + k).requires_grad_(True)
        b = fixed((RANK, out_dims), 1.1 + k).requires_grad_(True)
        adapters[name + ".lora_a"], adapters[name + ".lora_b"] = a, b
        if dora:
            m = (module.weight.norm(dim=1) * (1 + fixed((out_dims,), 2.0 + k))).detach().requires_grad_(True)
            adapters[name + ".m"] = m

        def forward(x, module=module, a=a, b=b, m=adapters.get(name + ".m")):
            w = module.weight
            y = x @ w.T + SCALE * ((x @ a) @ b)
            if m is not None:
                adapted = w + SCALE * (b.T @ a.T)
                y = (m / adapted.norm(dim=1).detach()) * y
            return y

        module.forward = forward

    width = max(len(t) for t, _ in ROWS)
    ids = torch.tensor([t + [0] * (width - len(t)) for t, _ in ROWS])
    logits = model(ids[:, :-1]).logits
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
    steps = torch.arange(1, width)
    offsets = torch.tensor([o for _, o in ROWS])[:, None]
    lengths = torch.tensor([len(t) for t, _ in ROWS])[:, None]
    mask = ((steps >= offsets) & (steps < lengths)).float()
    loss = (ce * mask).sum() / mask.sum()
    loss.backward()

    folder = OUT / ("dora" if dora else "lora")
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in adapters.items()}, folder / "adapters.safetensors",
              metadata={"format": "mlx"})
    config = {"fine_tune_type": "dora" if dora else "lora", "num_layers": 1,
              "lora_parameters": {"rank": RANK, "scale": SCALE, "dropout": 0.0}}
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=4) + "\n")
    stats = {}
    for k, v in adapters.items():
        g = v.grad.double().flatten()
        stats[k] = {"sum": float(g.sum()), "norm": float(g.norm()), "projection": float(g @ direction(g.numel()))}
    expected = {"generator": f"transformers {transformers.__version__}, torch {torch.__version__}",
                "rows": [{"tokens": t, "offset": o} for t, o in ROWS], "loss": float(loss.detach()), "gradients": stats}
    (folder / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    case(dora=False)
    case(dora=True)
