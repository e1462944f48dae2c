#!/usr/bin/env python3
"""Writes Tests/Fixtures/lora/{train,valid,test}.jsonl: small arithmetic
questions in varied wording, each answered in one fixed format
("Operation: ... / Expression: ... / Answer: [n]"), a format SmolLM2 does not
use by itself, so LoRA visibly learns it. train.jsonl is in the chat format,
valid.jsonl and test.jsonl in the completions format (mlx-lm reads one format
per file). Deterministic (seeded); rerun to regenerate."""
import json
import os
import random

rng = random.Random(20)
ops = {
    "addition": ("+", lambda a, b: a + b, ["What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.", "How much is {a} added to {b}?"]),
    "subtraction": ("-", lambda a, b: a - b, ["What is {a} minus {b}?", "Subtract {b} from {a}.", "Compute {a} - {b}.", "How much is {a} take away {b}?"]),
    "multiplication": ("*", lambda a, b: a * b, ["What is {a} times {b}?", "Multiply {a} by {b}.", "Compute {a} * {b}.", "What is the product of {a} and {b}?"]),
}


def example(chat):
    name = rng.choice(sorted(ops))
    symbol, f, phrasings = ops[name]
    a, b = rng.randint(2, 19), rng.randint(2, 9)
    prompt = rng.choice(phrasings).format(a=a, b=b)
    answer = f"Operation: {name}\nExpression: {a} {symbol} {b}\nAnswer: [{f(a, b)}]"
    if chat:
        return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}
    return {"prompt": prompt, "completion": answer}


folder = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "lora")
os.makedirs(folder, exist_ok=True)
for split, count in [("train", 400), ("valid", 50), ("test", 50)]:
    with open(os.path.join(folder, split + ".jsonl"), "w") as f:
        for i in range(count):
            f.write(json.dumps(example(split == "train")) + "\n")
