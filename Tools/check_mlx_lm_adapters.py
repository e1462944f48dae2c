#!/usr/bin/env python3
"""Adapter folders between Tessera and the real mlx-lm, on the tiny llama
fixture (Tests/Fixtures/lm/llama).

1. mlx-lm reads the adapter folders in Tessera's layout under
   Tests/Fixtures/lora-torch/{lora,dora} (Tools/gen_lora_fixtures.py, the
   layout `Adapters.save` writes) with its own `load_adapters`: every tensor
   of the file lands in the model, and the masked loss of the fixture batch
   equals the torch value in expected.json. Pass more adapter folders (for
   the same model) as arguments to check that each loads with every key used.
2. mlx-lm makes an adapter (linear_to_lora_layers on the last layer, random
   nonzero B), saves it as mlx-lm does, and writes the logits of a token
   sequence: Tests/Fixtures/lora-mlx/ (TorchLoRATests loads it in Tessera).

mlx-lm's own default_loss counts one target past each row's end (its mask
is steps <= length); the loss compared here counts the row's tokens only,
as Tessera's and torch's do; the script prints both.

    python3 -m venv /tmp/mlxenv && /tmp/mlxenv/bin/pip install "mlx[cpu]" mlx-lm
    /tmp/mlxenv/bin/python Tools/check_mlx_lm_adapters.py [ADAPTER_DIR...]
"""
import json
import sys
from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import mlx_lm
from mlx.utils import tree_flatten
from mlx_lm.tuner.trainer import default_loss
from mlx_lm.tuner.utils import linear_to_lora_layers, load_adapters
from mlx_lm.utils import load_model

FIXTURES = Path(__file__).resolve().parent.parent / "Tests" / "Fixtures"
MODEL = FIXTURES / "lm" / "llama"


def model():
    config = json.loads((MODEL / "config.json").read_text())
    # transformers 5 writes rope_parameters; mlx-lm reads rope_scaling.
    extra = {"rope_scaling": config["rope_parameters"], "rope_theta": config["rope_parameters"]["rope_theta"]}
    m, _ = load_model(MODEL, model_config=extra)
    m.eval()
    return m


def check_loads(folder):
    m = model()
    load_adapters(m, str(folder))
    params = dict(tree_flatten(m.parameters()))
    file = mx.load(str(Path(folder) / "adapters.safetensors"))
    for key, value in file.items():
        assert key in params, f"{folder}: mlx-lm has no {key}"
        assert mx.array_equal(params[key], value), f"{folder}: {key} differs"
    return m


def masked_loss(m, expected):
    rows = [(r["tokens"], r["offset"]) for r in expected["rows"]]
    width = max(len(t) for t, _ in rows)
    batch = mx.array([t + [0] * (width - len(t)) for t, _ in rows])
    logits = m(batch[:, :-1]).astype(mx.float32)
    ce = nn.losses.cross_entropy(logits, batch[:, 1:])
    steps = mx.arange(1, width)
    offsets = mx.array([o for _, o in rows])[:, None]
    lengths = mx.array([len(t) for t, _ in rows])[:, None]
    mask = mx.logical_and(steps >= offsets, steps < lengths)
    ours = (ce * mask).sum() / mask.sum()
    theirs, _ = default_loss(m, batch, mx.stack([offsets[:, 0], lengths[:, 0]], axis=1))
    return ours.item(), theirs.item()


def main():
    for name in ["lora", "dora"]:
        folder = FIXTURES / "lora-torch" / name
        expected = json.loads((folder / "expected.json").read_text())
        ours, theirs = masked_loss(check_loads(folder), expected)
        rel = abs(ours - expected["loss"]) / abs(expected["loss"])
        print(f"{name}: mlx-lm loaded every tensor; loss {ours:.6f} vs torch {expected['loss']:.6f} "
              f"(rel {rel:.1e}); mlx-lm default_loss {theirs:.6f}")
        assert rel < 1e-4, f"{name}: loss differs"
    for folder in sys.argv[1:]:
        check_loads(folder)
        print(f"{folder}: mlx-lm loaded every tensor")

    # An adapter made and saved by mlx-lm, with the logits Tessera must reproduce.
    mx.random.seed(3)
    m = model()
    m.freeze()
    parameters = {"rank": 4, "scale": 3.0, "dropout": 0.0}
    linear_to_lora_layers(m, 1, parameters)
    for key, value in tree_flatten(m.trainable_parameters()):
        if key.endswith("lora_b"):
            path, _ = key.rsplit(".", 1)
            module = dict(m.named_modules())[path]
            module.lora_b = 0.05 * mx.random.normal(value.shape)
    out = FIXTURES / "lora-mlx"
    out.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(out / "adapters.safetensors"), dict(tree_flatten(m.trainable_parameters())),
                        metadata={"format": "mlx"})
    config = {"fine_tune_type": "lora", "num_layers": 1, "lora_parameters": parameters}
    (out / "adapter_config.json").write_text(json.dumps(config, indent=4) + "\n")
    tokens = [5, 17, 99, 3, 64, 120, 42, 7, 88]
    logits = m(mx.array([tokens])).astype(mx.float32)[0]
    expected = {"generator": f"mlx {mx.__version__}, mlx-lm {mlx_lm.__version__}", "tokens": tokens,
                "logits": [[round(float(x), 6) for x in row] for row in logits.tolist()]}
    (out / "expected.json").write_text(json.dumps(expected) + "\n")
    print(f"wrote {out}: {len(dict(tree_flatten(m.trainable_parameters())))} tensors")


if __name__ == "__main__":
    main()
