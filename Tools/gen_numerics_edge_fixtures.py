#!/usr/bin/env python3
"""Writes Tests/Fixtures/numerics_edges.json: the edge cases an outside client
found against torch and MLX (issue 18), computed by torch in float64 and
stored as float32:

- prod_grad / prod_jvp      gradient and tangent of prod over axes where inputs are 0
                            (the product of the other elements, not 0/0)
- cumprod_grad / cumprod_jvp the same for cumprod, forwards/reversed, inclusive/exclusive
                            (torch has no reverse/exclusive cumprod: built from flip/cat)
- logaddexp                 with ±inf on both sides: logaddexp(inf, inf) = inf
- sign                      sign(NaN) = 0
- softmax / log_softmax     rows holding +inf are NaN throughout

MLX agrees with every value here but cumprod's tangents, which it does not
implement (checked with mlx 0.32.4 when it is
installed: `pip install "mlx[cpu]"`; the script then compares and fails on a
difference). Its documented semantics give the same: sign is
(x > 0) - (x < 0), so NaN gives 0; prod's vjp multiplies two exclusive
cumprods; softmax subtracts the row max, so a +inf row is inf - inf = NaN.

The file: {"generator", "torch_version", "cases": [case...]}, a case being
{"name", "op", "params", "inputs": [array...], "expected": array}; an array is
{"dtype", "shape", "data": base64 of little-endian row-major bytes}.
Tests compare with the float32 row of the shared tolerance table
(rtol 1e-5, atol 1e-6); infinities must match exactly and NaN matches NaN.

Run from the repository root (needs numpy and torch, CPU wheel is enough):
    pip install "torch==2.13.0+cpu"
    python3 Tools/gen_numerics_edge_fixtures.py
"""
import base64
import json
import os

import numpy as np
import torch

OUTPUT = os.path.join("Tests", "Fixtures", "numerics_edges.json")
INF, NAN = float("inf"), float("nan")


def encode(a):
    n = np.ascontiguousarray(np.asarray(a, dtype=np.float32))
    return {"dtype": "float32", "shape": list(n.shape), "data": base64.b64encode(n.tobytes()).decode()}


def t64(values):
    """float32 values (as stored) widened to float64 for torch."""
    return torch.tensor(np.asarray(values, dtype=np.float32), dtype=torch.float64)


def case(name, op, params, inputs, expected):
    return {"name": name, "op": op, "params": params, "inputs": [encode(x) for x in inputs],
            "expected": encode(expected.detach().numpy())}


def prod_axes(x, axes):
    for a in sorted(axes, reverse=True):
        x = x.prod(dim=a, keepdim=True)
    return x


def cumprod(x, axis, reverse, inclusive):
    if reverse:
        x = x.flip(axis)
    out = x.cumprod(dim=axis)
    if not inclusive:
        ones = torch.ones_like(x.narrow(axis, 0, 1))
        out = torch.cat([ones, out.narrow(axis, 0, x.shape[axis] - 1)], dim=axis)
    return out.flip(axis) if reverse else out


def gradient(f, x, cotangent):
    x = x.clone().requires_grad_(True)
    (f(x) * cotangent).sum().backward()
    return x.grad


def tangent(f, x, dx):
    return torch.func.jvp(f, (x,), (dx,))[1]


def product_cases(rng):
    cases = []
    x = [[2.0, 0.0, 3.0, 1.5], [0.5, -1.0, 4.0, 2.0], [0.0, 3.0, 0.0, -2.0]]
    x3 = rng.uniform(0.5, 2.0, size=(2, 3, 2)).astype(np.float32)
    x3[0, 1, 1] = 0.0
    x3[1, 2, 0] = 0.0
    x3[1, 0, 1] = 0.0
    for name, values, axes in [("rows", x, [1]), ("all", x, [0, 1]), ("outer_axes", x3, [0, 2])]:
        xt = t64(values)
        out_shape = list(prod_axes(xt, axes).shape)
        c = rng.uniform(-1.0, 1.0, size=out_shape).astype(np.float32)
        dx = rng.uniform(-1.0, 1.0, size=xt.shape).astype(np.float32)
        f = lambda v: prod_axes(v, axes)
        cases.append(case(f"prod_grad_{name}", "prod_grad", {"axes": axes}, [values, c], gradient(f, xt, t64(c))))
        cases.append(case(f"prod_jvp_{name}", "prod_jvp", {"axes": axes}, [values, dx], tangent(f, xt, t64(dx))))
    # Zeros first, last, repeated and absent along the scanned axis.
    xs = [[2.0, 0.0, 3.0, 0.0, 4.0, 1.5], [0.0, 2.0, -1.0, 3.0, 0.5, 2.0],
          [1.5, 2.0, -1.0, 3.0, 0.5, 0.0], [1.5, 2.0, -1.0, 3.0, 0.5, 2.0]]
    for reverse in (False, True):
        for inclusive in (True, False):
            f = lambda v: cumprod(v, 1, reverse, inclusive)
            xt = t64(xs)
            c = rng.uniform(-1.0, 1.0, size=xt.shape).astype(np.float32)
            dx = rng.uniform(-1.0, 1.0, size=xt.shape).astype(np.float32)
            params = {"axis": 1, "reverse": reverse, "inclusive": inclusive}
            label = f"{'reverse' if reverse else 'forward'}_{'inclusive' if inclusive else 'exclusive'}"
            cases.append(case(f"cumprod_grad_{label}", "cumprod_grad", params, [xs, c], gradient(f, xt, t64(c))))
            cases.append(case(f"cumprod_jvp_{label}", "cumprod_jvp", params, [xs, dx], tangent(f, xt, t64(dx))))
    return cases


def elementwise_cases():
    a = [INF, INF, -INF, -INF, INF, 1.0, 2.0, -INF, NAN]
    b = [INF, -INF, INF, -INF, 3.0, INF, 2.0, 5.0, INF]
    sign_x = [NAN, -0.0, 0.0, -2.0, 3.0, INF, -INF]
    rows = [[1.0, INF, 2.0], [1.0, 2.0, 3.0], [-INF, 0.0, 1.0], [INF, INF, 0.0], [-INF, 2.0, INF]]
    return [
        case("logaddexp_infinities", "logaddexp", {}, [a, b], torch.logaddexp(t64(a), t64(b))),
        case("sign_nan", "sign", {}, [sign_x], torch.sign(t64(sign_x))),
        case("log_softmax_inf_rows", "log_softmax", {}, [rows], torch.log_softmax(t64(rows), dim=-1)),
        case("softmax_inf_rows", "softmax", {}, [rows], torch.softmax(t64(rows), dim=-1)),
    ]


def check_against_mlx(cases):
    """Recomputes each case with MLX (when installed) and fails on a difference."""
    try:
        import mlx.core as mx
    except ImportError:
        print("mlx not installed: skipped the MLX comparison")
        return

    def decode(a):
        return np.frombuffer(base64.b64decode(a["data"]), dtype=np.float32).reshape(a["shape"])

    def cumprod_mx(v, p):
        return mx.cumprod(v, axis=p["axis"], reverse=p["reverse"], inclusive=p["inclusive"])

    def run(c):
        p, xs = c["params"], [mx.array(decode(a)) for a in c["inputs"]]
        if c["op"] == "prod_grad":
            return mx.grad(lambda v: (mx.prod(v, axis=p["axes"], keepdims=True) * xs[1]).sum())(xs[0])
        if c["op"] == "prod_jvp":
            return mx.jvp(lambda v: mx.prod(v, axis=p["axes"], keepdims=True), [xs[0]], [xs[1]])[1][0]
        if c["op"] == "cumprod_grad":
            return mx.grad(lambda v: (cumprod_mx(v, p) * xs[1]).sum())(xs[0])
        if c["op"] == "cumprod_jvp":
            return mx.jvp(lambda v: cumprod_mx(v, p), [xs[0]], [xs[1]])[1][0]
        if c["op"] == "logaddexp":
            return mx.logaddexp(xs[0], xs[1])
        if c["op"] == "sign":
            return mx.sign(xs[0])
        if c["op"] == "log_softmax":
            import mlx.nn as nn
            return nn.log_softmax(xs[0], axis=-1)
        return mx.softmax(xs[0], axis=-1)

    for c in cases:
        if c["op"] == "cumprod_jvp":
            continue  # MLX has no jvp for cumprod ("JVP is not implemented for cumulative prod")
        got, want = np.array(run(c)), decode(c["expected"])
        if not np.allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True):
            raise SystemExit(f"MLX {mx.__version__} differs from torch on {c['name']}: {got} vs {want}")
    print(f"MLX {mx.__version__} agrees on every case it can compute")


def main():
    rng = np.random.default_rng(18)
    cases = product_cases(rng) + elementwise_cases()
    check_against_mlx(cases)
    with open(OUTPUT, "w") as f:
        json.dump({"generator": "Tools/gen_numerics_edge_fixtures.py", "torch_version": torch.__version__,
                   "cases": cases}, f, indent=0)
    print(f"wrote {OUTPUT}: {len(cases)} cases")


if __name__ == "__main__":
    main()
