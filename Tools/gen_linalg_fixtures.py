#!/usr/bin/env python3
"""Writes Tests/Fixtures/linalg_sizes.json: linear-algebra references from
numpy (LAPACK underneath, float64) at sizes past the small cases of
linalg.json, so the native routines (CPULinalg+Native.swift, used without LAPACK)
are checked on several sweeps, pivots and reflectors, and on the hard cases:
rank-deficient SVD (basis completion), repeated eigenvalues, wide and tall QR.

Same format as linalg.json (see Tools/gen_ops_numerics_fixtures.py); needs
only numpy. Run from the repository root:
    python3 Tools/gen_linalg_fixtures.py
"""
import base64
import json
import os

import numpy as np


def encode(a):
    n = np.ascontiguousarray(np.asarray(a))
    return {"dtype": str(n.dtype), "shape": list(n.shape), "data": base64.b64encode(n.tobytes()).decode()}


def main():
    rng = np.random.default_rng(20261205)
    cases = []

    def add(name, op, params, inputs, outs):
        cases.append({"name": name, "op": op, "params": params, "inputs": [encode(i) for i in inputs],
                      "expected_list": [encode(o) for o in outs]})

    for dtype in [np.float64, np.float32]:
        dn = np.dtype(dtype).name
        a = rng.standard_normal((2, 48, 48)).astype(dtype)  # general: pivoting needed
        a64 = a.astype(np.float64)
        add(f"inv_48_{dn}", "inv", {}, [a], [np.linalg.inv(a64).astype(dtype)])
        b = rng.standard_normal((2, 48, 3)).astype(dtype)
        add(f"solve_48_{dn}", "solve", {}, [a, b], [np.linalg.solve(a64, b.astype(np.float64)).astype(dtype)])
        g = rng.standard_normal((40, 40))
        spd = (g @ g.T + 40 * np.eye(40)).astype(dtype)
        chol = np.linalg.cholesky(spd.astype(np.float64))
        add(f"cholesky_lower_40_{dn}", "cholesky", {"upper": False}, [spd], [chol.astype(dtype)])
        add(f"cholesky_upper_40_{dn}", "cholesky", {"upper": True}, [spd], [chol.T.astype(dtype)])
        for shape in [(40, 24), (24, 40), (3, 16, 16)]:
            x = rng.standard_normal(shape).astype(dtype)
            q, r = np.linalg.qr(x.astype(np.float64))
            add(f"qr_{dn}_{shape}", "qr", {}, [x], [q.astype(dtype), r.astype(dtype)])
            s = np.linalg.svd(x.astype(np.float64), compute_uv=False)
            add(f"svd_{dn}_{shape}", "svd", {}, [x], [s.astype(dtype)])
        # Rank 3 in a 12 x 8 matrix: five singular values are zero to rounding.
        low = (rng.standard_normal((12, 3)) @ rng.standard_normal((3, 8))).astype(dtype)
        add(f"svd_rank3_{dn}", "svd", {}, [low], [np.linalg.svd(low.astype(np.float64), compute_uv=False).astype(dtype)])
        add(f"svd_rank3_wide_{dn}", "svd", {}, [low.T.copy()],
            [np.linalg.svd(low.T.astype(np.float64), compute_uv=False).astype(dtype)])
        h = rng.standard_normal((36, 36))
        sym = ((h + h.T) / 2).astype(dtype)
        add(f"eigh_36_{dn}", "eigh", {"upper": False}, [sym], [np.linalg.eigvalsh(sym.astype(np.float64)).astype(dtype)])
        tri = np.triu(sym)
        add(f"eigh_upper_36_{dn}", "eigh", {"upper": True}, [tri],
            [np.linalg.eigvalsh(tri.astype(np.float64), UPLO="U").astype(dtype)])
        # Repeated eigenvalues (1, 1, 1, 2, 2, 5, ...): the eigenvectors of a cluster are any basis of it.
        q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
        values = np.array([1, 1, 1, 2, 2, 5, 7, 7, 9, 10, 11, 11], dtype=np.float64)
        rep = ((q * values) @ q.T).astype(dtype)
        rep = ((rep + rep.T) / 2).astype(dtype)
        add(f"eigh_repeated_{dn}", "eigh", {"upper": False}, [rep],
            [np.linalg.eigvalsh(rep.astype(np.float64)).astype(dtype)])

    path = os.path.join("Tests", "Fixtures", "linalg_sizes.json")
    with open(path, "w") as f:
        json.dump({"generator": "Tools/gen_linalg_fixtures.py", "numpy_version": np.__version__, "cases": cases},
                  f, indent=0)
    print(f"wrote {path}: {len(cases)} cases")


if __name__ == "__main__":
    main()
