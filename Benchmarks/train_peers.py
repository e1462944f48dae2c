"""Training-speed peers for tessera-bench's `train` suite (TrainSuite.swift).

One process per run, so each peak RSS is that peer's alone:

  python3 train_peers.py prepare --gguf F --out DIR
      the float32 model: transformers reads the GGUF (dequantized by the
      gguf package) and saves a safetensors folder, once.
  python3 train_peers.py torch --model DIR --batches FILE --warmup W --steps S
      torch + peft: LoRA on the float32 model, CPU, 2 threads.
  python3 train_peers.py mlx --model DIR --batches FILE --warmup W --steps S
      mlx-lm (CPU): the same folder quantized to 4 bits, group 32 (QLoRA,
      as mlx-lm trains a quantized model), mlx-lm's LoRA layers and its
      compiled step.

Every run does the same work as Tessera's: LoRA rank 8, scale 20 (peft:
alpha = 160), dropout 0, on q/k/v/o/gate/up/down of the last 16 blocks;
Adam, learning rate 1e-5; each step the mean next-token cross-entropy of a
batch of 4 rows of 257 ids (256 inputs, 256 targets), its gradients and
an update. Prints one JSON line: the seconds of each timed step, peak RSS
(bytes), RSS after loading, and the framework's own peak where it has one.
"""

import argparse
import json
import resource
import sys
import time

KEYS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
LAYERS = 16
RANK, SCALE, LR = 8, 20.0, 1e-5


def peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def batches(path):
    with open(path) as f:
        return json.load(f)["batches"]


def prepare(args):
    import os
    import torch
    from transformers import AutoModelForCausalLM
    folder, name = os.path.split(os.path.abspath(args.gguf))
    from safetensors.torch import save_file
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tied = model.config.tie_word_embeddings
    weights = {k: v.contiguous() for k, v in model.state_dict().items() if not (tied and k == "lm_head.weight")}
    os.makedirs(args.out, exist_ok=True)
    save_file(weights, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(json.dumps({"ok": True}))


def run_torch(args):
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    n = model.config.num_hidden_layers
    config = LoraConfig(r=RANK, lora_alpha=SCALE * RANK, lora_dropout=0.0,
                        target_modules=[k.split(".")[1] for k in KEYS],
                        layers_to_transform=list(range(max(0, n - LAYERS), n)))
    model = get_peft_model(model, config)
    model.train()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=LR)
    data = [torch.tensor(b, dtype=torch.long) for b in batches(args.batches)]
    loaded = peak_rss()
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        batch = data[i % len(data)]
        start = time.perf_counter()
        logits = model(input_ids=batch[:, :-1]).logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        value = loss.item()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        losses.append(value)
    print(json.dumps({"times": times, "losses": losses, "peak_rss": peak_rss(), "rss_loaded": loaded,
                      "framework_peak": None, "threads": torch.get_num_threads()}))


def run_mlx(args):
    from functools import partial
    from pathlib import Path
    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim
    from mlx_lm.tuner.trainer import default_loss
    from mlx_lm.tuner.utils import linear_to_lora_layers
    from mlx_lm.utils import load_model
    mx.random.seed(0)
    model, _ = load_model(Path(args.model))
    nn.quantize(model, group_size=32, bits=4)
    model.freeze()
    linear_to_lora_layers(model, LAYERS, {"rank": RANK, "scale": SCALE, "dropout": 0.0, "keys": KEYS})
    model.train()
    optimizer = optim.Adam(learning_rate=LR)
    loss_value_and_grad = nn.value_and_grad(model, default_loss)
    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(batch, lengths):  # mlx-lm's trainer step without accumulation
        (value, _), grad = loss_value_and_grad(model, batch, lengths)
        optimizer.update(model, grad)
        return value

    data = [mx.array(b, dtype=mx.int32) for b in batches(args.batches)]
    mx.eval(model.parameters())
    loaded = peak_rss()
    mx.reset_peak_memory()
    times, losses = [], []
    for i in range(args.warmup + args.steps):
        batch = data[i % len(data)]
        lengths = mx.array([[0, batch.shape[1]]] * batch.shape[0])  # every target counts
        start = time.perf_counter()
        value = step(batch, lengths)
        mx.eval(state, value)
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
        losses.append(value.item())
    print(json.dumps({"times": times, "losses": losses, "peak_rss": peak_rss(), "rss_loaded": loaded,
                      "framework_peak": mx.get_peak_memory()}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("peer", choices=["prepare", "torch", "mlx"])
    parser.add_argument("--gguf")
    parser.add_argument("--out")
    parser.add_argument("--model")
    parser.add_argument("--batches")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    try:
        {"prepare": prepare, "torch": run_torch, "mlx": run_mlx}[args.peer](args)
    except ImportError as error:
        print(json.dumps({"error": f"{args.peer}: {error}"}))
    except Exception as error:  # reported in the table, not a crash of the suite
        print(json.dumps({"error": f"{args.peer}: {type(error).__name__}: {error}"}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
