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
    n = np.ascontiguousarray(n).reshape(n.shape)  # (ascontiguousarray makes 0-d arrays 1-d)
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


# ---------------------------------------------------------------- fast ops

def rounded(rng, shape, dtype, scale=1.0):
    """Random values in `dtype` (fixture array) and their float64 values."""
    if dtype == "float64":
        a = rng.standard_normal(shape) * scale
        return encode(a), a
    m = to_mx(rng.standard_normal(shape) * scale, dtype)
    return encode(m), np.array(m.astype(mx.float32)).astype(np.float64)


def expected(ref, dtype):
    return encode(ref.astype(np.float64 if dtype == "float64" else np.float32))


def softmax64(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def rope64(x, dims, traditional, base, scale, offset, freqs=None):
    l = x.shape[-2]
    pos = (np.arange(l) + offset)[:, None] * scale
    inv = 1.0 / freqs if freqs is not None else base ** (-2.0 * np.arange(dims // 2) / dims)
    theta = pos * inv[None, :]
    c, s = np.cos(theta), np.sin(theta)
    out = x.copy()
    if traditional:
        x1, x2 = x[..., 0:dims:2], x[..., 1:dims:2]
        out[..., 0:dims:2] = x1 * c - x2 * s
        out[..., 1:dims:2] = x1 * s + x2 * c
    else:
        h = dims // 2
        x1, x2 = x[..., :h], x[..., h:dims]
        out[..., :h] = x1 * c - x2 * s
        out[..., h:dims] = x1 * s + x2 * c
    return out


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
    elif mask is not None:
        scores = scores + mask
    return softmax64(scores, -1) @ v


def fast_cases(rng):
    cases = []
    dtypes = ["float32", "float16", "bfloat16", "float64"]
    for dtype in dtypes:
        for shape, axis in [((3, 7), -1), ((2, 5, 4), 1), ((4, 33), 0), ((1, 1), -1)]:
            xe, x = rounded(rng, shape, dtype, 3.0)
            cases.append({"name": f"softmax_{dtype}_{shape}_{axis}", "op": "softmax", "params": {"axis": axis},
                          "inputs": [xe], "expected": expected(softmax64(x, axis), dtype)})
            ls = x - x.max(axis=axis, keepdims=True)
            ls = ls - np.log(np.exp(ls).sum(axis=axis, keepdims=True))
            cases.append({"name": f"logSoftmax_{dtype}_{shape}_{axis}", "op": "logSoftmax", "params": {"axis": axis},
                          "inputs": [xe], "expected": expected(ls, dtype)})
        # Large logits and -inf entries.
        x = np.array([[1000.0, 999.0, -np.inf, 998.0], [-np.inf, 0.5, -1.0, -np.inf]])
        if dtype != "float64":
            xm = mx.array(x.astype(np.float32)).astype(MX_DTYPES[dtype])
            xe, x = encode(xm), np.array(xm.astype(mx.float32)).astype(np.float64)
        else:
            xe = encode(x)
        cases.append({"name": f"softmax_{dtype}_extreme", "op": "softmax", "params": {"axis": -1},
                      "inputs": [xe], "expected": expected(softmax64(x, -1), dtype)})
        for with_weight in [True, False]:
            xe, x = rounded(rng, (3, 2, 16), dtype, 2.0)
            we, w = rounded(rng, (16,), dtype)
            ref = x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * (w if with_weight else 1)
            cases.append({"name": f"rmsNorm_{dtype}_w{int(with_weight)}", "op": "rmsNorm",
                          "params": {"eps": 1e-5}, "inputs": [xe] + ([we] if with_weight else []),
                          "expected": expected(ref, dtype)})
        for with_weight, with_bias in [(True, True), (True, False), (False, True), (False, False)]:
            xe, x = rounded(rng, (4, 24), dtype, 2.0)
            x_shift = x + 3
            xe = encode(x_shift) if dtype == "float64" else encode(to_mx(x_shift, dtype))
            x = x_shift if dtype == "float64" else np.array(to_mx(x_shift, dtype).astype(mx.float32)).astype(np.float64)
            we, w = rounded(rng, (24,), dtype)
            be, b = rounded(rng, (24,), dtype)
            mu = x.mean(-1, keepdims=True)
            ref = (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-6)
            ref = ref * (w if with_weight else 1) + (b if with_bias else 0)
            inputs = [xe] + ([we] if with_weight else []) + ([be] if with_bias else [])
            cases.append({"name": f"layerNorm_{dtype}_w{int(with_weight)}_b{int(with_bias)}", "op": "layerNorm",
                          "params": {"eps": 1e-6, "weight": with_weight, "bias": with_bias},
                          "inputs": inputs, "expected": expected(ref, dtype)})
    # rope
    for dtype in ["float32", "float16", "bfloat16"]:
        for traditional in [False, True]:
            for dims, base, scale, offset in [(32, 10000.0, 1.0, 0), (16, 500000.0, 0.5, 37), (32, 10000.0, 1.0, 2000)]:
                xe, x = rounded(rng, (2, 3, 5, 32), dtype)
                ref = rope64(x, dims, traditional, base, scale, offset)
                xm = MX_DTYPES[dtype]
                got = mx.fast.rope(to_mx(x, dtype), dims, traditional=traditional, base=base, scale=scale,
                                   offset=offset)
                assert np.allclose(np.array(got.astype(mx.float32)), ref, atol=3e-2), "MLX rope semantics differ"
                cases.append({"name": f"rope_{dtype}_t{int(traditional)}_d{dims}_o{offset}", "op": "rope",
                              "params": {"dimensions": dims, "traditional": traditional, "base": base,
                                         "scale": scale, "offset": offset},
                              "inputs": [xe], "expected": expected(ref, dtype)})
        freqs = np.exp(rng.uniform(0, 6, 8)).astype(np.float32)
        xe, x = rounded(rng, (1, 2, 6, 20), dtype)
        ref = rope64(x, 16, False, None, 1.0, 3, freqs.astype(np.float64))
        got = mx.fast.rope(to_mx(x, dtype), 16, traditional=False, base=None, scale=1.0, offset=3,
                           freqs=mx.array(freqs))
        assert np.allclose(np.array(got.astype(mx.float32)), ref, atol=3e-2), "MLX rope freqs semantics differ"
        cases.append({"name": f"rope_{dtype}_freqs", "op": "rope",
                      "params": {"dimensions": 16, "traditional": False, "scale": 1.0, "offset": 3},
                      "inputs": [xe, encode(freqs)], "expected": expected(ref, dtype)})
    # scaled dot-product attention
    configs = [  # (B, Hq, Hkv, Lq, Lk, D, Dv, mask)
        (1, 2, 2, 4, 4, 8, 8, None), (2, 4, 2, 3, 7, 16, 16, "causal"), (1, 4, 1, 5, 5, 8, 4, "causal"),
        (2, 2, 1, 1, 9, 8, 8, "additive"), (1, 6, 3, 4, 6, 8, 8, "bool"), (1, 2, 2, 6, 6, 4, 4, "bool_row"),
    ]
    for dtype in ["float32", "float16", "bfloat16"]:
        for b, hq, hk, lq, lk, d, dv, mask in configs:
            qe, q = rounded(rng, (b, hq, lq, d), dtype)
            ke, k = rounded(rng, (b, hk, lk, d), dtype)
            ve, v = rounded(rng, (b, hk, lk, dv), dtype)
            scale = 1.0 / np.sqrt(d)
            inputs = [qe, ke, ve]
            mask_arg, mx_mask = None, None
            if mask == "causal":
                mask_arg, mx_mask = "causal", "causal"
            elif mask == "additive":
                me, m = rounded(rng, (b, 1, lq, lk), dtype)
                mask_arg, mx_mask = m, to_mx(m, dtype)
                inputs.append(me)
            elif mask in ("bool", "bool_row"):
                shape = (1, hq, lq, lk) if mask == "bool" else (lk,)
                m = rng.uniform(size=shape) < 0.7
                m[..., 0] = True  # no fully masked row
                mask_arg, mx_mask = m, mx.array(m)
                inputs.append(encode(m, "bool"))
            ref = sdpa64(q, k, v, scale, mask_arg)
            got = mx.fast.scaled_dot_product_attention(to_mx(q, dtype), to_mx(k, dtype), to_mx(v, dtype),
                                                       scale=float(scale), mask=mx_mask)
            assert np.allclose(np.array(got.astype(mx.float32)), ref, atol=3e-2), f"MLX sdpa differs: {mask}"
            cases.append({"name": f"sdpa_{dtype}_b{b}_h{hq}x{hk}_l{lq}x{lk}_{mask}", "op": "sdpa",
                          "params": {"scale": float(scale), "mask": mask or "none"},
                          "inputs": inputs, "expected": expected(ref, dtype)})
    return cases


# ---------------------------------------------------------------- random

def random_cases():
    cases = []

    def add(name, op, params, out, inputs=()):
        out = out if isinstance(out, (list, tuple)) else [out]
        mx.eval(*out)
        cases.append({"name": name, "op": op, "params": params, "inputs": [encode(i) for i in inputs],
                      "expected_list": [encode(o) for o in out]})

    for seed in [0, 1, 42, 2**32 + 7, 2**63 + 123]:
        add(f"key_{seed}", "key", {"seed": seed}, mx.random.key(seed))
    for seed, num in [(0, 2), (42, 3), (7, 5)]:
        add(f"split_{seed}_{num}", "split", {"seed": seed, "num": num}, mx.random.split(mx.random.key(seed), num))
    for dtype in ["float32", "float16", "bfloat16"]:
        for seed, shape, low, high in [(0, [7], 0.0, 1.0), (1, [3, 5], -2.0, 3.5), (2, [1], 0.0, 1.0),
                                       (3, [2, 3, 4], 10.0, 10.5), (4, [0], 0.0, 1.0)]:
            add(f"uniform_{dtype}_{seed}", "uniform",
                {"seed": seed, "shape": shape, "low": low, "high": high, "dtype": dtype},
                mx.random.uniform(low, high, shape, dtype=MX_DTYPES[dtype], key=mx.random.key(seed)))
        for seed, shape, loc, scale in [(5, [9], 0.0, 1.0), (6, [4, 4], 1.5, 0.25), (7, [1000], 0.0, 1.0)]:
            add(f"normal_{dtype}_{seed}", "normal",
                {"seed": seed, "shape": shape, "loc": loc, "scale": scale, "dtype": dtype},
                mx.random.normal(shape, dtype=MX_DTYPES[dtype], loc=loc if loc != 0 else None,
                                 scale=scale if scale != 1 else None, key=mx.random.key(seed)))
    for seed, lower, upper, shape in [(8, -1.0, 2.0, [50]), (9, 0.5, 3.0, [4, 5]), (10, -2.0, 2.0, [7])]:
        add(f"truncatedNormal_{seed}", "truncatedNormal",
            {"seed": seed, "lower": lower, "upper": upper, "shape": shape},
            mx.random.truncated_normal(lower, upper, shape, key=mx.random.key(seed)))
    for seed, p, shape in [(11, 0.3, [20]), (12, 0.5, [3, 3]), (13, 1.0, [5]), (14, 0.0, [5])]:
        add(f"bernoulli_{seed}", "bernoulli", {"seed": seed, "p": p, "shape": shape},
            mx.random.bernoulli(p, shape, key=mx.random.key(seed)))
    pa = mx.array(np.array([0.1, 0.5, 0.9, 0.99, 0.01], np.float32))
    add("bernoulli_array_p", "bernoulli", {"seed": 15, "shape": [3, 5]},
        mx.random.bernoulli(pa, (3, 5), key=mx.random.key(15)), [pa])
    for seed, low, high, shape, dtype in [(16, 0, 10, [12], "int32"), (17, -5, 1000, [3, 4], "int32"),
                                          (18, 0, 256, [9], "uint8"), (19, -100, 100, [6], "int64")]:
        add(f"randInt_{seed}", "randInt", {"seed": seed, "low": low, "high": high, "shape": shape, "dtype": dtype},
            mx.random.randint(low, high, shape, dtype=MX_DTYPES[dtype], key=mx.random.key(seed)))
    add("gumbel_20", "gumbel", {"seed": 20, "shape": [3, 7]}, mx.random.gumbel((3, 7), key=mx.random.key(20)))
    for seed, loc, scale in [(21, 0.0, 1.0), (22, 2.0, 0.5)]:
        add(f"laplace_{seed}", "laplace", {"seed": seed, "loc": loc, "scale": scale, "shape": [40]},
            mx.random.laplace((40,), loc=loc, scale=scale, key=mx.random.key(seed)))
    logits = mx.array(np.log(np.array([[0.1, 0.2, 0.3, 0.4, 0.0001, 0.5], [1, 1, 1, 1, 1, 1],
                                       [5, 0.1, 0.1, 0.1, 0.1, 0.1]], np.float32)))
    add("categorical_last", "categorical", {"seed": 23, "axis": -1},
        mx.random.categorical(logits, axis=-1, key=mx.random.key(23)), [logits])
    add("categorical_axis0", "categorical", {"seed": 24, "axis": 0},
        mx.random.categorical(logits, axis=0, key=mx.random.key(24)), [logits])
    add("categorical_samples", "categorical", {"seed": 25, "axis": -1, "count": 5},
        mx.random.categorical(logits, axis=-1, num_samples=5, key=mx.random.key(25)), [logits])
    add("permutation_10", "permutation", {"seed": 26, "n": 10},
        mx.random.permutation(10, key=mx.random.key(26)))
    xp = mx.arange(12, dtype=mx.float32).reshape(6, 2)
    add("permutation_array", "permutation", {"seed": 27, "axis": 0},
        mx.random.permutation(xp, key=mx.random.key(27)), [xp])
    # The implicit key sequence after seed().
    mx.random.seed(7)
    a = mx.random.uniform(shape=(3,))
    b = mx.random.normal((3,))
    c = mx.random.randint(0, 100, (4,))
    add("sequence_seed7", "sequence", {"seed": 7}, [a, b, c])
    return cases


# ---------------------------------------------------------------- linear algebra

def linalg_cases(rng):
    cases = []

    def add(name, op, params, inputs, outs):
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        cases.append({"name": name, "op": op, "params": params, "inputs": [encode(i) for i in inputs],
                      "expected_list": [encode(o) for o in outs]})

    for dtype in [np.float32, np.float64]:
        dn = np.dtype(dtype).name
        v = rng.standard_normal(7).astype(dtype)
        m = rng.standard_normal((4, 5)).astype(dtype)
        t = rng.standard_normal((2, 3, 4)).astype(dtype)
        for order in [None, 2, 1, 3, 0.5, 0, "inf", "-inf"]:
            ordv = {"inf": np.inf, "-inf": -np.inf}.get(order, order)
            add(f"norm_vec_{dn}_{order}", "norm", {"order": order}, [v],
                np.linalg.norm(v.astype(np.float64), ord=ordv).astype(dtype))
        for order in [None, "fro", "nuc", 1, -1, 2, -2, "inf", "-inf"]:
            ordv = {"inf": np.inf, "-inf": -np.inf}.get(order, order)
            add(f"norm_mat_{dn}_{order}", "norm", {"order": order}, [m],
                np.linalg.norm(m.astype(np.float64), ord=ordv).astype(dtype))
        for order, axes, keep in [(None, [1], False), (1, [-1], True), ("inf", [0], False), ("fro", [0, 2], False),
                                  ("nuc", [1, 2], True), (2, [2, 1], False), (-1, [0, 1], False), (None, None, False)]:
            ordv = {"inf": np.inf, "-inf": -np.inf}.get(order, order)
            ref = np.linalg.norm(t.astype(np.float64), ord=ordv, axis=tuple(axes) if axes else None, keepdims=keep)
            add(f"norm_axes_{dn}_{order}_{axes}_{keep}", "norm", {"order": order, "axes": axes, "keepDims": keep},
                [t], np.asarray(ref).astype(dtype))
        a = (rng.standard_normal((3, 4, 4)) + 4 * np.eye(4)).astype(dtype)
        a64 = a.astype(np.float64)
        add(f"inv_{dn}", "inv", {}, [a], np.linalg.inv(a64).astype(dtype))
        b = rng.standard_normal((3, 4, 2)).astype(dtype)
        add(f"solve_{dn}", "solve", {}, [a, b], np.linalg.solve(a64, b.astype(np.float64)).astype(dtype))
        bv = rng.standard_normal(4).astype(dtype)
        add(f"solve_vector_{dn}", "solve", {}, [a[0], bv],
            np.linalg.solve(a64[0], bv.astype(np.float64)).astype(dtype))
        g = rng.standard_normal((2, 5, 5))
        spd = (g @ np.swapaxes(g, -1, -2) + 5 * np.eye(5)).astype(dtype)
        l = np.linalg.cholesky(spd.astype(np.float64))
        add(f"cholesky_lower_{dn}", "cholesky", {"upper": False}, [spd], l.astype(dtype))
        add(f"cholesky_upper_{dn}", "cholesky", {"upper": True}, [spd], np.swapaxes(l, -1, -2).astype(dtype))
        for shape in [(5, 3), (3, 5), (2, 4, 4)]:
            x = rng.standard_normal(shape).astype(dtype)
            q, r = np.linalg.qr(x.astype(np.float64))
            add(f"qr_{dn}_{shape}", "qr", {}, [x], [q.astype(dtype), r.astype(dtype)])
            s = np.linalg.svd(x.astype(np.float64), compute_uv=False)
            add(f"svd_{dn}_{shape}", "svd", {}, [x], [s.astype(dtype)])
        sym = spd - 3 * np.eye(5, dtype=dtype)
        w = np.linalg.eigvalsh(sym.astype(np.float64))
        add(f"eigh_{dn}", "eigh", {"upper": False}, [sym], [w.astype(dtype)])
        # Only the upper triangle is read with upper: true.
        tri = np.triu(sym)
        add(f"eigh_upper_{dn}", "eigh", {"upper": True}, [tri],
            [np.linalg.eigvalsh(tri.astype(np.float64), UPLO="U").astype(dtype)])
    return cases


def main():
    rng = np.random.default_rng(20261128)
    write("quantization.json", quantization_cases(rng))
    write("fast.json", fast_cases(rng))
    write("random.json", random_cases())
    write("linalg.json", linalg_cases(rng))


if __name__ == "__main__":
    main()
