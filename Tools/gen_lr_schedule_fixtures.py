#!/usr/bin/env python3
"""Learning-rate schedules of mlx-lm's lora_config `lr_schedule`, computed by
MLX itself, for Tests/TesseraCLITests/LoRAConfigTests.swift.

mlx-lm (tuner/utils.py `build_schedule`): the MLX scheduler `name` called with
`arguments`; with `warmup`, a linear_schedule from `warmup_init` to the first
argument over `warmup` steps, joined to it at step warmup + 1.

Writes Tests/Fixtures/lora/lr_schedules.json: [{"schedule": {...}, "values": [lr at step 0..N-1]}].
Needs: pip install mlx (CPU wheels exist for Linux x86_64).
"""
import json
import os

import mlx.core as mx
import mlx.optimizers as optim


def build_schedule(config):
    # As mlx_lm.tuner.utils.build_schedule (mlx-lm 0.2x).
    schedule_fn = getattr(optim.schedulers, config["name"])
    arguments = config["arguments"]
    initial_lr = arguments[0]
    bound = schedule_fn(*arguments)
    warmup = config.get("warmup", 0)
    if warmup:
        warmup_init = config.get("warmup_init", 0.0)
        warmup_fn = optim.schedulers.linear_schedule(warmup_init, initial_lr, warmup)
        return optim.schedulers.join_schedules([warmup_fn, bound], [warmup + 1])
    return bound


SCHEDULES = [
    {"name": "cosine_decay", "arguments": [1e-4, 100, 1e-6], "warmup": 10, "warmup_init": 1e-7},
    {"name": "cosine_decay", "arguments": [2e-4, 50]},
    {"name": "linear_schedule", "arguments": [1e-3, 1e-5, 80], "warmup": 5},
    {"name": "exponential_decay", "arguments": [1e-3, 0.97]},
    {"name": "step_decay", "arguments": [1e-3, 0.5, 25], "warmup": 3, "warmup_init": 1e-4},
]

out = []
for config in SCHEDULES:
    fn = build_schedule(config)
    values = [float(fn(mx.array(step))) for step in range(130)]
    out.append({"schedule": config, "values": values})

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "lora", "lr_schedules.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path)
