#!/usr/bin/env python3
"""Checks that folders `tessera convert` writes load in mlx-lm and compute
what transformers computes (ConvertOptionsTests runs it in CI; by hand:

    pip install "mlx[cpu]" mlx-lm
    swift build && python3 Tools/check_converted_folders.py [--smollm2 PATH.gguf]
    python3 Tools/check_converted_folders.py --converted ROOT   # folders converted already

Each tiny model of Tests/Fixtures/lm (the Hugging Face folders, whose
config.json has only transformers 5's `rope_parameters`, and the GGUF files
of Tests/Fixtures/lm/gguf) is converted at 8 bits, group 32 (by the tessera
binary, or found as ROOT/<case>), loaded by mlx_lm.utils.load_model, and its
logits over the reference tokens compared with the transformers reference
(reference.json). Tolerance: 0.3 absolute per logit (8-bit weights on
deliberately large random weights: ~0.1-0.2 expected; Tessera's own loader is
as far from the reference on the same folders). mlx-lm's mistral (its llama
model) and its gemma2/gemma3 attend over the whole prompt in their sliding
layers (no window mask without a cache), so for models with a sliding window
only the positions inside the first window are compared.
Also ROOT/mixed (mistral with --quant-predicate mixed_3_6, group 32) must equal
mlx-lm's own mixed_3_6 quantization of the same weights: packed words equal,
scales and biases within 1e-6, the same width for every layer.

With --smollm2 GGUF: the converted default model's tokenizer files load in
transformers, whose chat template and ids reproduce prompt c of
../shared/refs/smollm2_reference.json.

Prints one line per case; exits 1 if any case fails.
"""
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESSERA = ROOT / ".build" / "debug" / "tessera"
FIXTURES = ROOT / "Tests" / "Fixtures" / "lm"

FOLDER_CASES = ["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3_text"]
GGUF_CASES = ["llama3", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gemma3"]
TOLERANCE = 0.3


def cases():
    """(name, source, reference folder) of every converted case."""
    out = [(name, FIXTURES / name, FIXTURES / name) for name in FOLDER_CASES]
    out += [("gguf-" + name, FIXTURES / "gguf" / name / "model.gguf", FIXTURES / "gguf" / name) for name in GGUF_CASES]
    return out


def convert(model, out, *extra):
    subprocess.run([str(TESSERA), "convert", "--model", str(model), "--output", str(out), "--group-size", "32", *extra],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def compare(folder, reference_folder, tolerance):
    import mlx.core as mx
    from mlx_lm.utils import load_model

    config = json.loads((folder / "config.json").read_text())
    reference = json.loads((reference_folder / "reference.json").read_text())
    model, _ = load_model(folder)
    logits = np.array(model(mx.array([reference["tokens"]]))[0].astype(mx.float32))
    want = np.array(reference["logits"])
    positions = len(reference["tokens"])
    if config.get("sliding_window") and config.get("use_sliding_window", True):
        positions = min(positions, config["sliding_window"])
    diff = np.abs(logits[:positions] - want[:positions]).max(axis=1)
    return float(diff.max()), diff


def compare_mixed(folder):
    """ROOT/mixed against mlx-lm's own mixed_3_6 quantization (group 32) of the
    same fixture: the same tensors (packed words equal, scales and biases within
    1e-6) and the same width for every layer, read from each config.json."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.convert import mixed_quant_predicate_builder
    from mlx_lm.utils import load_model, quantize_model

    model, config = load_model(FIXTURES / "mistral")
    predicate = mixed_quant_predicate_builder("mixed_3_6", model, 32)
    model, theirs_config = quantize_model(model, config, 32, 3, quant_predicate=predicate)
    theirs = dict(tree_flatten(model.parameters()))
    ours = mx.load(str(folder / "model.safetensors"))
    if set(theirs) != set(ours):
        return False, f"tensor names differ: {sorted(set(theirs) ^ set(ours))[:6]}"
    worst = 0.0
    for name, t in theirs.items():
        a, b = np.array(ours[name].astype(mx.float32) if ours[name].dtype != mx.uint32 else ours[name]), np.array(
            t.astype(mx.float32) if t.dtype != mx.uint32 else t)
        if a.shape != b.shape:
            return False, f"{name}: shape {a.shape} vs mlx-lm's {b.shape}"
        if t.dtype == mx.uint32:
            if not np.array_equal(a, b):
                return False, f"{name}: packed words differ from mlx-lm's"
        else:
            worst = max(worst, float(np.abs(a - b).max()))
    ours_q = json.loads((folder / "config.json").read_text())["quantization"]
    widths = set()
    for path, entry in theirs_config["quantization"].items():
        if isinstance(entry, dict):
            mine = ours_q.get(path, {"bits": ours_q["bits"]})["bits"]
            widths.add(mine)
            if mine != entry["bits"]:
                return False, f"{path}: {mine} bits, mlx-lm {entry['bits']}"
    ok = worst <= 1e-6 and widths == {3, 6}
    return ok, f"equals mlx-lm's mixed_3_6 (widths {sorted(widths)}, scales/biases max diff {worst:.2e}, tolerance 1e-6)"


def main():
    failures = []
    if "--converted" in sys.argv:
        work = pathlib.Path(sys.argv[sys.argv.index("--converted") + 1])
    else:
        work = pathlib.Path(tempfile.mkdtemp(prefix="tessera-converted-"))
        for name, source, _ in cases():
            convert(source, work / name, "--bits", "8")
        convert(FIXTURES / "mistral", work / "mixed", "--quant-predicate", "mixed_3_6")

    for name, _, reference_folder in cases():
        folder = work / name
        config = json.loads((folder / "config.json").read_text())
        if "rope_parameters" in config and "rope_theta" not in config:
            failures.append(name)
            print(f"{name}: FAIL config.json has rope_parameters but no rope_theta")
            continue
        worst, diff = compare(folder, reference_folder, TOLERANCE)
        ok = worst <= TOLERANCE
        if not ok:
            failures.append(name)
        print(f"{name}: {'ok' if ok else 'FAIL'} mlx_lm max |logit - transformers| {worst:.3f} "
              f"(per position {np.round(diff, 3).tolist()}, tolerance {TOLERANCE})")

    mixed = work / "mixed"
    if mixed.exists():
        ok, detail = compare_mixed(mixed)
        if not ok:
            failures.append("mixed")
        print(f"mixed: {'ok' if ok else 'FAIL'} {detail}")

    if "--smollm2" in sys.argv:
        from transformers import AutoTokenizer

        gguf = sys.argv[sys.argv.index("--smollm2") + 1]
        convert(gguf, work / "smollm2", "--bits", "8")
        tokenizer = AutoTokenizer.from_pretrained(work / "smollm2")
        c = json.loads((ROOT.parent / "shared" / "refs" / "smollm2_reference.json").read_text())["prompts"]["c"]
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "What is the tallest mountain in the world?"}], tokenize=False,
            add_generation_prompt=True)
        same_text = text == c["prompt"]
        same_ids = tokenizer(text, add_special_tokens=False)["input_ids"] == c["prompt_ids"]
        if not (same_text and same_ids):
            failures.append("smollm2")
        print("smollm2: chat template reproduces prompt c:", same_text, "| ids equal:", same_ids)
    print("folders in", work)
    if failures:
        print("FAILED:", ", ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
