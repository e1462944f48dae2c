#!/usr/bin/env python3
"""Writes fixtures computed by MLX itself (pip install "mlx[cpu]"):

- Tests/Fixtures/promotion.json: MLX's type-promotion table for every pair of
  dtypes, and the dtype of array-op-Python-scalar ("weak" scalars) per dtype;
- Tests/Fixtures/description.json: how MLX prints arrays (str(array)).

Run from the repository root:  python3 Tools/gen_mlx_fixtures.py
"""
import base64
import json
import os

import mlx.core as mx

NAMES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
         "int64", "float16", "float32", "float64", "bfloat16", "complex64"]
DTYPES = {"bool": mx.bool_, **{n: getattr(mx, n) for n in NAMES[1:]}}


def name(dtype):
    return next(n for n, d in DTYPES.items() if d == dtype)


def main():
    pairs = []
    for a in NAMES:
        for b in NAMES:
            x = mx.zeros((1,), dtype=DTYPES[a])
            y = mx.zeros((1,), dtype=DTYPES[b])
            pairs.append({"a": a, "b": b, "result": name((x + y).dtype)})
    weak = []
    for a in NAMES:
        x = mx.ones((1,), dtype=DTYPES[a])
        weak.append({"dtype": a,
                     "times_int": name((x * 2).dtype),
                     "times_float": name((x * 2.0).dtype),
                     "int_times": name((2 * x).dtype),
                     "float_times": name((2.0 * x).dtype)})
    out = {"mlx_version": mx.__version__, "pairs": pairs, "weak": weak}
    path = os.path.join("Tests", "Fixtures", "promotion.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}: {len(pairs)} pairs, {len(weak)} weak-scalar rows")
    write_descriptions()


def encode(a):
    import numpy as np
    n = np.array(a)
    return {"dtype": name(a.dtype), "shape": list(a.shape),
            "data": base64.b64encode(n.tobytes()).decode()}


def write_descriptions():
    arrays = [
        mx.array([[1, 2], [3, 4]]),
        mx.array([1.0, 2.5, 1 / 3, 1e10, 1e-7, -0.0]),
        mx.array([float("nan"), float("inf"), -float("inf")]),
        mx.array([True, False]),
        mx.array(3.0),
        mx.array(7),
        mx.array([[1.5, 2], [3, 4]], dtype=mx.float16),
        mx.array([0.1, 2.75, -3], dtype=mx.bfloat16),
        mx.zeros((2, 0)),
        mx.zeros((0, 3)),
        mx.array([], dtype=mx.int32),
        mx.arange(7),
        mx.arange(2000).reshape(40, 50),
        mx.ones((2, 2, 2)),
        mx.zeros((1, 1, 1)),
        mx.array([100000.5, 2, 1e-5, 123456789.0]),
        mx.array([1 + 2j, 3 - 1j, -1.5 - 0.25j]),
        mx.array([2**40, -3], dtype=mx.int64),
        mx.array([255, 0], dtype=mx.uint8),
        mx.arange(24).reshape(2, 3, 4) * 0.5,
    ]
    cases = []
    for a in arrays:
        if a.dtype == mx.bfloat16:
            # numpy has no bfloat16: store the bits as uint16.
            c = encode(a.view(mx.uint16))
            c["dtype"] = "bfloat16"
        else:
            c = encode(a)
        c["description"] = str(a)
        cases.append(c)
    path = os.path.join("Tests", "Fixtures", "description.json")
    with open(path, "w") as f:
        json.dump({"mlx_version": mx.__version__, "cases": cases}, f, indent=1)
    print(f"wrote {path}: {len(cases)} arrays")


if __name__ == "__main__":
    main()
