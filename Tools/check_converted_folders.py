#!/usr/bin/env python3
"""Checks that folders `tessera convert` writes from GGUF files load in the
Python ecosystem (a manual check; the Swift tests check Tessera's own loading).

1. Each tiny GGUF of Tests/Fixtures/lm/gguf converted at 8 bits, group 32, is
   loaded by mlx_lm, whose logits are compared with the transformers
   reference (8-bit weights: expect ~0.1; mlx_lm's gemma2 ignores sliding
   windows, so its later positions differ by more, as they do on the HF
   gemma2 folder itself).
2. With --smollm2 GGUF: the converted default model's tokenizer files load in
   transformers, whose chat template and ids reproduce prompt c of
   ../shared/refs/smollm2_reference.json.

    swift build && python3 Tools/check_converted_folders.py [--smollm2 PATH.gguf]
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESSERA = ROOT / ".build" / "debug" / "tessera"


def convert(model, out, bits=8):
    subprocess.run([str(TESSERA), "convert", "--model", str(model), "--output", str(out), "--bits", str(bits),
                    "--group-size", "32"], check=True, stdout=subprocess.DEVNULL)


def main():
    import mlx.core as mx
    from mlx_lm.utils import load_model

    work = pathlib.Path(tempfile.mkdtemp(prefix="tessera-converted-"))
    for case in ["llama3", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]:
        source = ROOT / "Tests" / "Fixtures" / "lm" / "gguf" / case
        convert(source / "model.gguf", work / case)
        reference = json.loads((source / "reference.json").read_text())
        model, _ = load_model(work / case)
        logits = np.array(model(mx.array([reference["tokens"]]))[0].astype(mx.float32))
        diff = np.abs(logits - np.array(reference["logits"])).max(axis=1)
        print(f"{case}: mlx_lm max |logit - transformers| per position {np.round(diff, 3).tolist()}")

    if "--smollm2" in sys.argv:
        from transformers import AutoTokenizer

        gguf = sys.argv[sys.argv.index("--smollm2") + 1]
        convert(gguf, work / "smollm2")
        tokenizer = AutoTokenizer.from_pretrained(work / "smollm2")
        c = json.loads((ROOT.parent / "shared" / "refs" / "smollm2_reference.json").read_text())["prompts"]["c"]
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "What is the tallest mountain in the world?"}], tokenize=False,
            add_generation_prompt=True)
        print("smollm2: chat template reproduces prompt c:", text == c["prompt"],
              "| ids equal:", tokenizer(text, add_special_tokens=False)["input_ids"] == c["prompt_ids"])
    print("folders left in", work)


if __name__ == "__main__":
    main()
