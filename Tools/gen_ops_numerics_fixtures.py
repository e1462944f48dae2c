#!/usr/bin/env python3
"""Writes the numerics fixtures of the ops-numerics family, computed by MLX
itself (quantization, random: bit for bit), numpy/scipy in float64 (fast ops,
linear algebra):

- Tests/Fixtures/quantization.json  quantize/dequantize/quantizedMatmul/gatherQuantizedMatmul
- Tests/Fixtures/fast.json          softmax, logSoftmax, rmsNorm, layerNorm, rope, sdpa
- Tests/Fixtures/random.json        key, split, bits, uniform, normal, ...
- Tests/Fixtures/linalg.json        norm, inv, solve, cholesky, qr, svd, eigh

Each file: {"generator", "mlx_version", "cases": [case...]}, a case being
{"name", "op", "params", "inputs": [array...], "expected": array} or
"expected_list": [array...]; an array is {"dtype", "shape", "data": base64 of
the little-endian row-major bytes} (bfloat16 as its raw uint16 bits).

Run from the repository root (needs numpy, scipy, ml_dtypes, mlx):
    python3 Tools/gen_ops_numerics_fixtures.py
"""
import base64
import json
import os

import ml_dtypes
import mlx.core as mx
import numpy as np

FIXTURES = os.path.join("Tests", "Fixtures")
MX_DTYPES = {"float16": mx.float16, "float32": mx.float32, "bfloat16": mx.bfloat16,
             "uint32": mx.uint32, "int32": mx.int32, "int64": mx.int64, "bool": mx.bool_,
             "uint8": mx.uint8, "uint16": mx.uint16, "float64": mx.float64}


def encode(a, dtype=None):
    """An array (numpy or mlx) as a fixture array."""
    if isinstance(a, mx.array):
        dtype = dtype or next(n for n, d in MX_DTYPES.items() if d == a.dtype)
        if a.dtype == mx.bfloat16:
            n = np.array(a.view(mx.uint16))
        else:
            n = np.array(a)
    else:
        n = np.asarray(a)
        dtype = dtype or ("bfloat16" if n.dtype == ml_dtypes.bfloat16 else str(n.dtype))
        if n.dtype == ml_dtypes.bfloat16:
            n = n.view(np.uint16)
    n = np.ascontiguousarray(n)
    return {"dtype": dtype, "shape": list(n.shape), "data": base64.b64encode(n.tobytes()).decode()}


def to_mx(n, dtype):
    return mx.array(np.asarray(n, dtype=np.float32)).astype(MX_DTYPES[dtype])


def write(name, cases):
    path = os.path.join(FIXTURES, name)
    with open(path, "w") as f:
        json.dump({"generator": "Tools/gen_ops_numerics_fixtures.py", "mlx_version": mx.__version__,
                   "cases": cases}, f, indent=0)
    print(f"wrote {path}: {len(cases)} cases")


# ---------------------------------------------------------------- quantization

def dequantize64(wq, s, b, group, bits):
    """MLX's packed weights in float64, without rounding to the weight dtype."""
    raw = np.array(wq).view(np.uint8)
    lead = raw.shape[:-1]
    stream = np.unpackbits(raw, axis=-1, bitorder="little").reshape(*lead, -1, bits)
    q = (stream * (1 << np.arange(bits))).sum(-1).astype(np.float64)
    s64 = np.repeat(np.array(s.astype(mx.float32)).astype(np.float64), group, axis=-1)
    b64 = np.repeat(np.array(b.astype(mx.float32)).astype(np.float64), group, axis=-1)
    return s64 * q + b64


def qmm64(x, wq, s, b, group, bits, transpose):
    w = dequantize64(wq, s, b, group, bits)
    return np.array(x.astype(mx.float32)).astype(np.float64) @ (np.swapaxes(w, -1, -2) if transpose else w)


def quantization_cases(rng):
    cases = []
    for dtype in ["float32", "float16", "bfloat16"]:
        for bits in [2, 3, 4, 5, 6, 8]:
            for group in [32, 64, 128]:
                shape = (2, 2, 128) if group == 64 else (2, 128 * (1 + bits % 2))
                w = to_mx(rng.standard_normal(shape) * rng.uniform(0.01, 3), dtype)
                wq, s, b = mx.quantize(w, group_size=group, bits=bits)
                params = {"groupSize": group, "bits": bits}
                cases.append({"name": f"quantize_{dtype}_b{bits}_g{group}", "op": "quantize", "params": params,
                              "inputs": [encode(w)], "expected_list": [encode(wq), encode(s), encode(b)]})
                d = mx.dequantize(wq, s, b, group_size=group, bits=bits)
                cases.append({"name": f"dequantize_{dtype}_b{bits}_g{group}", "op": "dequantize", "params": params,
                              "inputs": [encode(wq), encode(s), encode(b)], "expected": encode(d)})
    # Edge groups: constant, all zero, one outlier, negative-dominated.
    w = np.zeros((4, 64), np.float32)
    w[1] = 0.5
    w[2, 3] = -7.0
    w[3] = -np.linspace(0, 2, 64)
    for bits in [4, 8]:
        wm = mx.array(w)
        wq, s, b = mx.quantize(wm, group_size=32, bits=bits)
        cases.append({"name": f"quantize_edges_b{bits}", "op": "quantize", "params": {"groupSize": 32, "bits": bits},
                      "inputs": [encode(wm)], "expected_list": [encode(wq), encode(s), encode(b)]})
    # Quantized matmul (tolerance checked: MLX accumulates in its own order).
    for dtype in ["float32", "float16", "bfloat16"]:
        for bits in [2, 3, 4, 5, 6, 8]:
            for transpose in [True, False]:
                group = 64 if bits != 3 else 32
                k, n = 128, 64
                w = to_mx(rng.standard_normal((n, k) if transpose else (k, n)) * 0.2, dtype)
                wq, s, b = mx.quantize(w, group_size=group, bits=bits)
                x = to_mx(rng.standard_normal((2, 2, k)), dtype)
                ref = qmm64(x, wq, s, b, group, bits, transpose)
                cases.append({"name": f"qmm_{dtype}_b{bits}_t{int(transpose)}", "op": "quantizedMatmul",
                              "params": {"groupSize": group, "bits": bits, "transpose": transpose},
                              "inputs": [encode(x), encode(wq), encode(s), encode(b)],
                              "expected": encode(ref.astype(np.float32))})
    # Batched weights broadcasting against x.
    w = to_mx(rng.standard_normal((2, 32, 64)) * 0.3, "float32")
    wq, s, b = mx.quantize(w, group_size=32, bits=4)
    x = to_mx(rng.standard_normal((3, 1, 5, 64)), "float32")
    out = mx.quantized_matmul(x, wq, s, b, transpose=True, group_size=32, bits=4)
    cases.append({"name": "qmm_batched_broadcast", "op": "quantizedMatmul",
                  "params": {"groupSize": 32, "bits": 4, "transpose": True},
                  "inputs": [encode(x), encode(wq), encode(s), encode(b)], "expected": encode(out)})
    # gather_qmm: experts selected per token (rhs), and both index arrays.
    for dtype in ["float32", "float16"]:
        for transpose in [True, False]:
            e, n, k = 4, 32, 64
            w = to_mx(rng.standard_normal((e, n, k) if transpose else (e, k, n)) * 0.3, dtype)
            wq, s, b = mx.quantize(w, group_size=32, bits=4)
            x = to_mx(rng.standard_normal((5, 1, 1, k)), dtype)
            rhs = mx.array(rng.integers(0, e, (5, 2)).astype(np.uint32))
            w64 = dequantize64(wq, s, b, 32, 4)[np.array(rhs)]           # [5, 2, n, k] or [5, 2, k, n]
            x64 = np.array(x.astype(mx.float32)).astype(np.float64)      # [5, 1, 1, k]
            out = x64 @ (np.swapaxes(w64, -1, -2) if transpose else w64)  # [5, 2, 1, n]
            check = np.array(mx.gather_qmm(x, wq, s, b, rhs_indices=rhs, transpose=transpose, group_size=32,
                                           bits=4).astype(mx.float32))
            assert np.allclose(check, out, atol=2e-2), "MLX disagrees with the float64 reference"
            out = out.astype(np.float32)
            cases.append({"name": f"gather_qmm_{dtype}_rhs_t{int(transpose)}", "op": "gatherQuantizedMatmul",
                          "params": {"groupSize": 32, "bits": 4, "transpose": transpose, "indices": "rhs"},
                          "inputs": [encode(x), encode(wq), encode(s), encode(b), encode(rhs)],
                          "expected": encode(out)})
    x = to_mx(rng.standard_normal((3, 2, 64)), "float32")
    w = to_mx(rng.standard_normal((4, 16, 64)) * 0.3, "float32")
    wq, s, b = mx.quantize(w, group_size=64, bits=8)
    lhs = mx.array(np.array([[0, 2], [1, 1]], np.uint32))
    rhs = mx.array(np.array([[3, 0], [2, 1]], np.uint32))
    out = mx.gather_qmm(x, wq, s, b, lhs_indices=lhs, rhs_indices=rhs, transpose=True, group_size=64, bits=8)
    cases.append({"name": "gather_qmm_lhs_rhs", "op": "gatherQuantizedMatmul",
                  "params": {"groupSize": 64, "bits": 8, "transpose": True, "indices": "both"},
                  "inputs": [encode(x), encode(wq), encode(s), encode(b), encode(lhs), encode(rhs)],
                  "expected": encode(out)})
    return cases


def main():
    rng = np.random.default_rng(20261128)
    write("quantization.json", quantization_cases(rng))


if __name__ == "__main__":
    main()
