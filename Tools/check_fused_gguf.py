#!/usr/bin/env python3
"""Runs a GGUF written by `tessera fuse --export-gguf` in llama.cpp
(llama-cpp-python) or reads it with the `gguf` package, printing JSON.

  check_fused_gguf.py llama FILE.gguf --prompt 1,2,3 --steps 8
      llama.cpp loads the file, evaluates the prompt ids and decodes greedily:
      {"tokens": [...], "logits": [... last prompt position ...]}
  check_fused_gguf.py reader FILE.gguf
      gguf.GGUFReader reads it; per tensor its type, shape (rows first) and
      the sum and sum of squares of its dequantized values, plus the metadata keys:
      {"tensors": {name: {"type", "shape", "sum", "sumsq"}}, "keys": [...]}

Used by Tests/TesseraLMTests/FuseTests.swift; also by hand on a real model:
  python3 Tools/check_fused_gguf.py llama fused/ggml-model-q4_1.gguf --prompt 1,9690,28 --steps 16
"""
import argparse
import json
import sys


def run_llama(path, prompt, steps):
    import numpy as np
    import llama_cpp
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=max(64, len(prompt) + steps + 8), n_threads=2, n_batch=64, verbose=False)
    n_vocab = llm.n_vocab()

    def last_logits():
        # The last evaluated position's logits, read from llama.cpp itself
        # (llama-cpp-python's `scores` is only filled with logits_all).
        pointer = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
        return np.array(np.ctypeslib.as_array(pointer, shape=(n_vocab,)), dtype=np.float64)

    llm.eval(prompt)
    first = last_logits()
    tokens = []
    logits = first
    for _ in range(steps):
        token = int(np.argmax(logits))
        tokens.append(token)
        llm.eval([token])
        logits = last_logits()
    return {"tokens": tokens, "logits": [float(x) for x in first]}


def run_reader(path):
    import numpy as np
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(path)
    tensors = {}
    for t in reader.tensors:
        values = dequantize(t.data, t.tensor_type).astype(np.float64)
        tensors[t.name] = {
            "type": t.tensor_type.name,
            "shape": [int(d) for d in reversed(t.shape.tolist())],
            "sum": float(values.sum()),
            "sumsq": float((values * values).sum()),
        }
    return {"tensors": tensors, "keys": sorted(k for k in reader.fields.keys() if not k.startswith("GGUF."))}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["llama", "reader"])
    parser.add_argument("path")
    parser.add_argument("--prompt", default="1,2,3")
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    if args.mode == "llama":
        out = run_llama(args.path, [int(x) for x in args.prompt.split(",")], args.steps)
    else:
        out = run_reader(args.path)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
