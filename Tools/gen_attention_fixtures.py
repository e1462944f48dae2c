#!/usr/bin/env python3
"""Writes Tests/Fixtures/attention_decode.json: scaled dot-product attention
in float32 with few query rows per key/value head (decode steps, short
chunks), the inputs a key/value cache hands the kernel, references computed
by numpy in float64.

Each case: {"name", "op": "sdpa", "params": {"scale", "mask"}, "inputs":
[q, k, v, mask?], "expected"}; arrays as in the other fixture files
({"dtype", "shape", "data": base64 little-endian row-major, "view"?}).
Keys and values are windows of a larger buffer (a "slice" view along the
sequence axis, as a preallocated cache gives); some queries are stored
[B, L, H, D] and viewed [B, H, L, D] (a "transpose" view, as the model's
reshape of its projection gives). Masks: none, causal, bool or additive,
stored in a shape that broadcasts to the scores [B, Hq, Lq, Lk]; one bool
case hides every key of a row and one causal case has more queries than
keys (rows that see no key: NaN, as softmax of an all -inf row).

Run from the repository root (needs numpy):
    python3 Tools/gen_attention_fixtures.py
"""
import base64
import json
import os

import numpy as np

PATH = os.path.join("Tests", "Fixtures", "attention_decode.json")


def encode(a, dtype, view=None):
    a = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    out = {"dtype": "bool" if dtype == np.bool_ else np.dtype(dtype).name, "shape": list(a.shape),
           "data": base64.b64encode(a.tobytes()).decode()}
    if view:
        out["view"] = view
    return out


def softmax64(x):
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)


def sdpa64(q, k, v, scale, mask):
    groups = q.shape[1] // k.shape[1]
    k = np.repeat(k, groups, axis=1)
    v = np.repeat(v, groups, axis=1)
    scores = q @ np.swapaxes(k, -1, -2) * scale
    lq, lk = q.shape[2], k.shape[2]
    if isinstance(mask, str) and mask == "causal":
        keep = np.arange(lk)[None, :] <= np.arange(lq)[:, None] + (lk - lq)
        scores = np.where(keep, scores, -np.inf)
    elif isinstance(mask, np.ndarray) and mask.dtype == bool:
        scores = np.where(mask, scores, -np.inf)
    elif isinstance(mask, np.ndarray):
        scores = scores + mask
    return softmax64(scores) @ v


def f32(rng, shape, scale=1.0):
    """Random float32 values and the same values in float64."""
    a = (rng.standard_normal(shape) * scale).astype(np.float32)
    return a, a.astype(np.float64)


def main():
    rng = np.random.default_rng(20261128)
    # (name, B, Hq, Hk, Lq, Lk, cache length, window start, D, Dv, mask, queries stored [B, L, H, D])
    configs = [
        ("smollm2_decode", 1, 9, 3, 1, 80, 84, 0, 64, 64, "none", True),
        ("smollm2_decode_window", 1, 9, 3, 1, 33, 40, 7, 64, 64, "none", False),
        ("smollm2_chunk4_causal", 1, 9, 3, 4, 41, 44, 0, 64, 64, "causal", True),
        ("rows16_causal", 1, 4, 1, 4, 37, 48, 3, 64, 64, "causal", True),
        ("gqa_bool_b2", 2, 6, 2, 3, 50, 52, 0, 32, 48, "bool", False),
        ("gqa_additive_tails", 1, 4, 2, 2, 77, 80, 2, 40, 24, "additive", False),
        ("mha_decode_additive_row", 1, 2, 2, 1, 40, 44, 0, 128, 128, "additive_row", True),
        ("causal_more_queries_than_keys", 1, 2, 1, 5, 3, 8, 0, 16, 16, "causal", False),
        ("bool_row_all_hidden", 1, 3, 3, 2, 20, 20, 0, 16, 16, "bool_hidden", False),
        ("one_key", 1, 4, 2, 1, 1, 4, 1, 8, 8, "none", False),
        ("mqa_decode_d8_causal", 1, 8, 1, 1, 33, 40, 0, 8, 8, "causal", True),
        ("gqa_decode_b2", 2, 4, 2, 1, 47, 50, 2, 64, 64, "none", True),
    ]
    cases = []
    for name, b, hq, hk, lq, lk, cap, start, d, dv, mask, blhd in configs:
        assert start + lk <= cap
        if blhd:
            qs, q = f32(rng, (b, lq, hq, d))
            q = np.transpose(q, (0, 2, 1, 3))
            qe = encode(qs, np.float32, [{"transpose": [0, 2, 1, 3]}])
        else:
            qs, q = f32(rng, (b, hq, lq, d))
            qe = encode(qs, np.float32)
        window = [{"slice": [[None, None, None], [None, None, None], [start, start + lk, None], [None, None, None]]}]
        ks, kfull = f32(rng, (b, hk, cap, d))
        vs, vfull = f32(rng, (b, hk, cap, dv))
        k, v = kfull[:, :, start:start + lk], vfull[:, :, start:start + lk]
        inputs = [qe, encode(ks, np.float32, window), encode(vs, np.float32, window)]
        scale = float(np.float32(1.0 / np.sqrt(d)))  # the float32 the op receives
        mask_arg = None
        if mask == "causal":
            mask_arg = "causal"
        elif mask in ("bool", "bool_hidden"):
            m = rng.uniform(size=(1, 1 if mask == "bool" else hq, lq, lk)) < 0.7
            m[..., 0] = True
            if mask == "bool_hidden":
                m[0, 1, 0, :] = False  # head 1, query 0 sees no key
            mask_arg = m
            inputs.append(encode(m, np.bool_))
        elif mask == "additive":
            ms, mask_arg = f32(rng, (b, 1, lq, lk), 2.0)
            ms[..., 5:9] = -np.inf  # hidden keys, as an additive window mask gives
            mask_arg = ms.astype(np.float64)
            inputs.append(encode(ms, np.float32))
        elif mask == "additive_row":
            ms, mask_arg = f32(rng, (lk,), 2.0)
            inputs.append(encode(ms, np.float32))
        ref = sdpa64(q, k, v, scale, mask_arg)
        cases.append({"name": name, "op": "sdpa",
                      "params": {"scale": scale, "mask": mask.split("_")[0]},
                      "inputs": inputs, "expected": encode(ref, np.float32)})
    with open(PATH, "w") as f:
        json.dump({"generator": "Tools/gen_attention_fixtures.py", "numpy_version": np.__version__, "cases": cases},
                  f, indent=0)
    print(f"wrote {PATH}: {len(cases)} cases, {os.path.getsize(PATH)} bytes")


if __name__ == "__main__":
    main()
