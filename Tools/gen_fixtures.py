#!/usr/bin/env python3
"""Writes the numpy reference fixtures that NumpyFixtureTests checks every op against.

    python3 Tools/gen_fixtures.py        # rewrites Tests/Fixtures/{unary,binary,...}.json

Needs numpy (2.x), scipy (erfinv) and ml_dtypes for bfloat16 (`pip install ml_dtypes`).
When mlx is importable, every expected dtype is also checked against what MLX
itself returns for the same op and input dtypes (Tessera follows MLX, not numpy,
where the two differ: ints -> float32 for sqrt/exp/divide/mean..., uint32 for
argmax, the widened sums, uint64 with signed ints -> float32 ...).

Output: one JSON file per op family, each a list of cases
    {"name": str, "op": str, "params": {...}, "inputs": [array...],
     "expected": array}            (or "expected_list": [array...] for split)
where an array is
    {"dtype": "float32", "shape": [2, 3], "data": base64 of the little-endian
     row-major bytes, "view": [step...] (optional)}
and each view step turns the stored array into a non-contiguous input, in order:
    {"transpose": [perm]}, {"slice": [[start, stop, step], ...]} (one triple
    per axis, numpy semantics, null bounds allowed), {"broadcast_to": [shape]}.
numpy computes the expected value on the same view.

Numerics: element-wise float16/bfloat16 references are computed in float32
from the rounded inputs and rounded once at the end (as Tessera and MLX compute
them); float32 references are computed in float64 and rounded, except the
floor-like ops (floorDivide, remainder), computed in float32 as Tessera does.
Reductions and matmul accumulate in float64 and round once. Inputs stay in each
function's domain; integer cases avoid overflow, division by zero and shifts
past the width. The output is deterministic (fixed seed).

Where MLX 0.32 disagrees with numpy on values, the fixtures keep numpy's (and
Tessera's) answer: the product of an empty axis is 1
and `all` of one is true (MLX: 0 and false), and a 0-d int8 sum widens to int32
like every other (MLX returns a 0-d input of sum/prod unchanged). Halves'
floorDivide uses power-of-two divisors, where MLX (which rounds the quotient to
the half type before flooring) and Tessera agree.
"""

import base64
import json
import math
import os
import sys
import warnings

import ml_dtypes
import numpy as np
import scipy.special

try:
    import mlx.core as mx
except ImportError:  # the dtype cross-check is optional
    mx = None

SEED = 20240611
OUT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures")

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "float32", "float64", "bfloat16", "complex64"]
UNSIGNED = ["uint8", "uint16", "uint32", "uint64"]
SIGNED = ["int8", "int16", "int32", "int64"]
INTS = UNSIGNED + SIGNED
FLOATS = ["float16", "float32", "float64", "bfloat16"]
HALVES = ["float16", "bfloat16"]
REAL = ["bool"] + INTS + FLOATS


def npdt(name):
    return BF16 if name == "bfloat16" else np.dtype(name)


def dtname(dt):
    return "bfloat16" if np.dtype(dt) == BF16 else np.dtype(dt).name


# MLX's promotion table (mlx/dtype.cpp), rows and columns in DTYPES order.
_PROMOTION = """
b   u8  u16 u32 u64 i8  i16 i32 i64 f16 f32 f64 bf  c64
u8  u8  u16 u32 u64 i16 i16 i32 i64 f16 f32 f64 bf  c64
u16 u16 u16 u32 u64 i32 i32 i32 i64 f16 f32 f64 bf  c64
u32 u32 u32 u32 u64 i64 i64 i64 i64 f16 f32 f64 bf  c64
u64 u64 u64 u64 u64 f32 f32 f32 f32 f16 f32 f64 bf  c64
i8  i16 i32 i64 f32 i8  i16 i32 i64 f16 f32 f64 bf  c64
i16 i16 i32 i64 f32 i16 i16 i32 i64 f16 f32 f64 bf  c64
i32 i32 i32 i64 f32 i32 i32 i32 i64 f16 f32 f64 bf  c64
i64 i64 i64 i64 f32 i64 i64 i64 i64 f16 f32 f64 bf  c64
f16 f16 f16 f16 f16 f16 f16 f16 f16 f16 f32 f64 f32 c64
f32 f32 f32 f32 f32 f32 f32 f32 f32 f32 f32 f64 f32 c64
f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 f64 c64
bf  bf  bf  bf  bf  bf  bf  bf  bf  f32 f32 f64 bf  c64
c64 c64 c64 c64 c64 c64 c64 c64 c64 c64 c64 c64 c64 c64
"""
_SHORT = dict(zip("b u8 u16 u32 u64 i8 i16 i32 i64 f16 f32 f64 bf c64".split(), DTYPES))
_TABLE = [[_SHORT[s] for s in row.split()] for row in _PROMOTION.strip().splitlines()]


def promote(a, b):
    return _TABLE[DTYPES.index(a)][DTYPES.index(b)]


rng = np.random.default_rng(SEED)

# ---------------------------------------------------------------------------
# Arrays, views, cases


def enc(a, view=None):
    a = np.array(a, order="C", copy=True)  # (ascontiguousarray would make 0-d arrays 1-d)
    out = {"dtype": dtname(a.dtype), "shape": list(a.shape),
           "data": base64.b64encode(a.tobytes()).decode("ascii")}
    if view:
        out["view"] = view
    return out


def apply_view(a, view):
    for step in view or []:
        if "transpose" in step:
            a = a.transpose(step["transpose"])
        elif "slice" in step:
            a = a[tuple(slice(*t) for t in step["slice"])]
        elif "broadcast_to" in step:
            a = np.broadcast_to(a, step["broadcast_to"])
        else:
            raise ValueError(step)
    return a


class Input:
    """A stored array plus the view the test applies; `.value` is the viewed array."""

    def __init__(self, base, view=None):
        self.base = base
        self.view = view
        self.value = apply_view(base, view)

    def json(self):
        return enc(self.base, self.view)


VIEW_KINDS = ["contiguous", "transpose", "slice", "broadcast", "slice_transpose"]

# Per-axis slice patterns: (base size from d, (start, stop, step)) giving d elements.
_SLICE_PATTERNS = [
    (lambda d: 2 * d + 1, lambda d: [1, None, 2]),
    (lambda d: d, lambda d: [None, None, -1]),
    (lambda d: 2 * d + 1, lambda d: [-2, None, -2]),
    (lambda d: d + 2, lambda d: [1, d + 1, 1]),
]


def view_for(shape, kind, salt=0):
    """(base shape, view) such that the view of an array of base shape has `shape`."""
    shape = list(shape)
    n = len(shape)
    if kind == "contiguous" or n == 0:
        return shape, None
    if kind == "transpose" and n < 2:
        kind = "slice"
    if kind == "slice_transpose" and n < 2:
        kind = "slice"
    if kind == "transpose":
        perm = _perm(n, salt)
        return _back_transpose(shape, perm), [{"transpose": perm}]
    if kind == "slice":
        base, triples = _back_slice(shape, salt)
        return base, [{"slice": triples}]
    if kind == "slice_transpose":
        perm = _perm(n, salt)
        pre = _back_transpose(shape, perm)
        base, triples = _back_slice(pre, salt + 1)
        return base, [{"slice": triples}, {"transpose": perm}]
    if kind == "broadcast":
        base = list(shape)
        # Broadcast at least one axis: size-1 axes where possible, and drop a
        # leading axis of a 2-D-or-more shape.
        candidates = [i for i in range(n) if shape[i] != 1]
        if candidates:
            base[candidates[salt % len(candidates)]] = 1
        if n >= 2 and (salt % 2 == 0 or not candidates):
            base = base[1:]
        if base == shape:
            return shape, None
        return base, [{"broadcast_to": shape}]
    raise ValueError(kind)


def _perm(n, salt):
    perms = [list(reversed(range(n))), list(range(1, n)) + [0], [n - 1] + list(range(n - 1))]
    return perms[salt % len(perms)]


def _back_transpose(shape, perm):
    pre = [0] * len(shape)
    for i, p in enumerate(perm):
        pre[p] = shape[i]
    return pre


def _back_slice(shape, salt):
    base, triples = [], []
    for i, d in enumerate(shape):
        size, triple = _SLICE_PATTERNS[(salt + i) % len(_SLICE_PATTERNS)]
        base.append(size(d))
        triples.append(triple(d))
    return base, triples


def make_input(dtype, shape, kind="contiguous", domain=None, salt=0, gen=None):
    base_shape, view = view_for(shape, kind, salt)
    base = gen(base_shape) if gen else rand(dtype, base_shape, domain)
    inp = Input(base, view)
    assert list(inp.value.shape) == list(shape), (shape, kind, inp.value.shape)
    return inp


DEFAULT_DOMAIN = {"float": (-5.0, 5.0), "int": (-10, 10), "uint": (0, 20), "complex": (-1.0, 1.0)}


def rand(dtype, shape, domain=None):
    d = dict(DEFAULT_DOMAIN)
    d.update(domain or {})
    shape = tuple(shape)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INTS:
        lo, hi = d["uint" if dtype in UNSIGNED else "int"]
        info = np.iinfo(dtype)
        lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
        return rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.dtype(dtype))
    if dtype == "complex64":
        lo, hi = d["complex"]
        z = np.asarray(rng.uniform(lo, hi, shape) + 1j * rng.uniform(lo, hi, shape))
        # Keep away from 0, where log, sign and reciprocal are ill-conditioned.
        return np.where(np.abs(z) < 0.2, z + (0.5 + 0.5j), z).astype(np.complex64)
    lo, hi = d["float"]
    return rng.uniform(lo, hi, shape).astype(npdt(dtype))


def case(name, op, inputs, expected, params=None):
    c = {"name": name, "op": op, "params": params or {}, "inputs": [i.json() for i in inputs]}
    if isinstance(expected, list):
        c["expected_list"] = [enc(e) for e in expected]
    else:
        c["expected"] = enc(expected)
    return c


def shape_str(s):
    return "x".join(map(str, s)) if len(s) else "scalar"


# ---------------------------------------------------------------------------
# Reference arithmetic helpers


def compute_type(dtype):
    """The numpy type a float reference is computed in for `dtype`."""
    return {"float16": np.float32, "bfloat16": np.float32, "float32": np.float64,
            "float64": np.float64, "complex64": np.complex128}[dtype]


def as_compute(x, dtype):
    return np.asarray(x).astype(compute_type(dtype))


def rounded(x, dtype):
    return np.asarray(x).astype(npdt(dtype))


# ---------------------------------------------------------------------------
# MLX dtype cross-check


def mlx_name(op):
    special = {"isNaN": "isnan", "isInf": "isinf", "isFinite": "isfinite", "logAddExp": "logaddexp",
               "logSumExp": "logsumexp", "argMax": "argmax", "argMin": "argmin", "variance": "var",
               "which": "where"}
    if op in special:
        return special[op]
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in op)


def mx_dtype(d):
    return getattr(mx, "bool_" if d == "bool" else d)


def mlx_check(expected_dtype, fn, *dtypes):
    """Asserts that MLX's op on arrays of `dtypes` returns `expected_dtype`."""
    if mx is None:
        return
    args = [mx.ones((2,), dtype=mx_dtype(d)) if isinstance(d, str) else d for d in dtypes]
    got = fn(*args)
    got_name = str(got.dtype).split(".")[-1].replace("bool_", "bool")
    assert got_name == expected_dtype, (fn, dtypes, got_name, expected_dtype)


# ---------------------------------------------------------------------------
# Unary

UNARY_FLOAT_OPS = ["sqrt", "rsqrt", "reciprocal", "exp", "expm1", "log", "log2", "log10", "log1p",
                   "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
                   "arcsinh", "arccosh", "arctanh", "sigmoid", "erf", "erfinv"]
UNARY_EXACT_OPS = ["abs", "negative", "sign", "square", "floor", "ceil", "round"]
UNARY_PREDICATES = ["isNaN", "isInf", "isFinite", "logicalNot"]
UNARY_COMPLEX = {"abs", "negative", "sign", "square", "sqrt", "reciprocal", "exp", "log", "sin", "cos",
                 "sinh", "cosh", "isNaN", "isInf", "isFinite", "logicalNot", "real", "imag", "conjugate"}

# Domains: floats (lo, hi), signed ints, unsigned ints.
UNARY_DOMAINS = {
    "abs": ((-5, 5), (-10, 10), (0, 20)),
    "negative": ((-5, 5), (-10, 10), (0, 20)),
    "sign": ((-5, 5), (-3, 3), (0, 3)),
    "square": ((-5, 5), (-11, 11), (0, 15)),
    "sqrt": ((0.01, 10), (0, 50), (0, 50)),
    "rsqrt": ((0.05, 10), (1, 50), (1, 50)),
    "reciprocal": ((0.5, 5), (1, 20), (1, 20)),  # sign randomised below for floats
    "exp": ((-5, 5), (-5, 5), (0, 8)),
    "expm1": ((-3, 3), (-3, 3), (0, 5)),
    "log": ((0.05, 100), (1, 100), (1, 100)),
    "log2": ((0.05, 100), (1, 100), (1, 100)),
    "log10": ((0.05, 100), (1, 100), (1, 100)),
    "log1p": ((-0.9, 10), (0, 50), (0, 50)),
    "sin": ((-6, 6), (-10, 10), (0, 20)),
    "cos": ((-6, 6), (-10, 10), (0, 20)),
    "tan": ((-1.4, 1.4), (-1, 1), (0, 1)),
    "arcsin": ((-0.99, 0.99), (-1, 1), (0, 1)),
    "arccos": ((-0.99, 0.99), (-1, 1), (0, 1)),
    "arctan": ((-10, 10), (-10, 10), (0, 20)),
    "sinh": ((-4, 4), (-4, 4), (0, 5)),
    "cosh": ((-4, 4), (-4, 4), (0, 5)),
    "tanh": ((-5, 5), (-5, 5), (0, 5)),
    "arcsinh": ((-10, 10), (-10, 10), (0, 20)),
    "arccosh": ((1, 10), (1, 20), (1, 20)),
    "arctanh": ((-0.99, 0.99), (0, 0), (0, 0)),
    "sigmoid": ((-8, 8), (-8, 8), (0, 8)),
    "erf": ((-3, 3), (-3, 3), (0, 3)),
    "erfinv": ((-0.99, 0.99), (0, 0), (0, 0)),
    "floor": ((-10, 10), (-100, 100), (0, 200)),
    "ceil": ((-10, 10), (-100, 100), (0, 200)),
    "round": ((-10, 10), (-100, 100), (0, 200)),
}

# bool inputs only where 0 and 1 are in the domain.
UNARY_BOOL_OK = {"abs", "sign", "square", "floor", "ceil", "round", "sqrt", "exp", "expm1", "log1p", "sin",
                 "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "sigmoid",
                 "erf", "isNaN", "isInf", "isFinite", "logicalNot", "bitwiseInvert", "real", "imag",
                 "conjugate"}


def sign_mlx(x):
    """np.sign, but 0 for a real NaN as MLX and torch give (numpy: NaN)."""
    if np.iscomplexobj(x):
        return np.sign(x)
    return np.where(np.isnan(x), np.zeros_like(x), np.sign(x))


def np_unary(op):
    return {
        "abs": np.abs, "negative": np.negative, "sign": sign_mlx, "square": np.square,
        "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "reciprocal": lambda x: 1 / x,
        "exp": np.exp, "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10,
        "log1p": np.log1p, "sin": np.sin, "cos": np.cos, "tan": np.tan, "arcsin": np.arcsin,
        "arccos": np.arccos, "arctan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
        "arcsinh": np.arcsinh, "arccosh": np.arccosh, "arctanh": np.arctanh,
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "erf": scipy.special.erf,
        "erfinv": scipy.special.erfinv, "floor": np.floor, "ceil": np.ceil, "round": np.rint,
    }[op]


def unary_out_dtype(op, dtype):
    if op in UNARY_PREDICATES:
        return "bool"
    if op in ("abs", "real", "imag") and dtype == "complex64":
        return "float32"
    if op in UNARY_FLOAT_OPS and dtype in ["bool"] + INTS:
        return "float32"
    return dtype


def unary_ref(op, x, dtype):
    out = unary_out_dtype(op, dtype)
    if op == "isNaN":
        return np.isnan(x.astype(np.complex128 if dtype == "complex64" else np.float64))
    if op == "isInf":
        return np.isinf(x.astype(np.complex128 if dtype == "complex64" else np.float64))
    if op == "isFinite":
        return np.isfinite(x.astype(np.complex128 if dtype == "complex64" else np.float64))
    if op == "logicalNot":
        return x.astype(np.complex128 if dtype == "complex64" else np.float64) == 0
    if op == "bitwiseInvert":
        return np.invert(x)
    if op == "real":
        return np.real(x).astype(npdt(out)) if dtype == "complex64" else x.copy()
    if op == "imag":
        return np.imag(x).astype(npdt(out)) if dtype == "complex64" else np.zeros(x.shape, npdt(out))
    if op == "conjugate":
        return np.conjugate(x) if dtype == "complex64" else x.copy()
    if dtype == "bool" and op in UNARY_EXACT_OPS:
        return x.copy()
    if dtype in INTS and op in UNARY_EXACT_OPS:
        if op in ("floor", "ceil", "round"):
            return x.copy()
        with np.errstate(over="ignore"):
            return np_unary(op)(x).astype(x.dtype)
    f = np_unary(op)
    if dtype in ["bool"] + INTS:
        # MLX converts to float32 first, then computes.
        return rounded(f(x.astype(np.float32).astype(np.float64)), "float32")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return rounded(f(as_compute(x, dtype)), out)


def unary_domain(op):
    lo_hi = UNARY_DOMAINS.get(op, ((-5, 5), (-10, 10), (0, 20)))
    return {"float": lo_hi[0], "int": lo_hi[1], "uint": lo_hi[2]}


def unary_dtypes(op):
    if op == "bitwiseInvert":
        return ["bool"] + INTS
    ds = [d for d in REAL if d != "bool" or op in UNARY_BOOL_OK]
    if op == "negative":
        ds = [d for d in ds if d != "bool"]
    if op in UNARY_COMPLEX:
        ds.append("complex64")
    return ds


UNARY_SHAPES = [[3, 4], [2, 3, 4], [7], [], [1], [0], [3, 0], [1, 5], [2, 1, 3], [4, 1], [2, 2, 2, 3], [5, 6]]


def gen_unary():
    cases = []
    ops = UNARY_FLOAT_OPS + UNARY_EXACT_OPS + UNARY_PREDICATES + ["bitwiseInvert", "real", "imag", "conjugate"]
    counter = 0
    for op in ops:
        dom = unary_domain(op)
        for dtype in unary_dtypes(op):
            kinds = VIEW_KINDS if dtype in ("float32", "float16", "int32") else [VIEW_KINDS[counter % len(VIEW_KINDS)]]
            for kind in kinds:
                shape = UNARY_SHAPES[counter % len(UNARY_SHAPES)]
                counter += 1

                def gen(s, dtype=dtype, op=op):
                    x = rand(dtype, s, dom)
                    if dtype in FLOATS and op == "reciprocal":
                        x = (x.astype(np.float64) * rng.choice([-1.0, 1.0], size=s)).astype(npdt(dtype))
                    if op == "round" and dtype in FLOATS and x.size:
                        # Halves test round-half-to-even.
                        flat = x.reshape(-1)
                        k = min(flat.size, 6)
                        flat[:k] = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 3.5][:k]).astype(npdt(dtype))
                    if op in ("sign", "logicalNot") and x.size:
                        x.reshape(-1)[:: 3] = 0
                    return x

                inp = make_input(dtype, shape, kind, salt=counter, gen=gen)
                expected = unary_ref(op, inp.value, dtype)
                assert dtname(expected.dtype) == unary_out_dtype(op, dtype), (op, dtype, expected.dtype)
                mlx_check(dtname(expected.dtype), getattr(mx, mlx_name(op)) if mx else None, dtype)
                cases.append(case(f"{op}_{dtype}_{shape_str(shape)}_{kind}", op, [inp], expected))

    # Long rows (past any SIMD width, with a tail), contiguous and strided.
    for op in ops:
        dom = unary_domain(op)
        for dtype in [d for d in ("float32", "float16", "int32") if d in unary_dtypes(op)]:
            for kind in ["contiguous", "transpose"]:
                counter += 1
                inp = make_input(dtype, [3, 37], kind, domain=dom, salt=counter)
                expected = unary_ref(op, inp.value, dtype)
                cases.append(case(f"{op}_{dtype}_3x37_{kind}_long", op, [inp], expected))

    # Special values: NaN and infinities.
    specials = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0, np.nan]
    for op in ["isNaN", "isInf", "isFinite", "logicalNot", "abs", "negative", "sign", "floor", "ceil",
               "round", "exp", "sqrt", "square"]:
        for dtype in FLOATS:
            x = np.array(specials).astype(npdt(dtype)).reshape(2, 4)
            inp = Input(x)
            with np.errstate(invalid="ignore"):
                expected = unary_ref(op, inp.value, dtype)
            cases.append(case(f"{op}_{dtype}_special", op, [inp], expected))
    for op in ["isNaN", "isInf", "isFinite"]:
        z = np.array([complex(np.nan, 0), complex(0, np.inf), complex(1, 2), complex(-np.inf, 1)], np.complex64)
        cases.append(case(f"{op}_complex64_special", op, [Input(z)], unary_ref(op, z, "complex64")))
    return cases


# ---------------------------------------------------------------------------
# Binary

BINARY_OPS = ["add", "subtract", "multiply", "divide", "floorDivide", "remainder", "power", "maximum",
              "minimum", "equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual", "logicalAnd",
              "logicalOr", "bitwiseAnd", "bitwiseOr", "bitwiseXor", "leftShift", "rightShift", "arctan2",
              "logAddExp"]
COMPARISONS = ["equal", "notEqual", "less", "lessEqual", "greater", "greaterEqual"]
BOOL_RESULT = COMPARISONS + ["logicalAnd", "logicalOr"]
FLOAT_RESULT = ["divide", "arctan2", "logAddExp"]


def binary_dtypes(op):
    if op in ("bitwiseAnd", "bitwiseOr", "bitwiseXor"):
        return ["bool"] + INTS
    if op in ("leftShift", "rightShift"):
        return INTS
    ds = list(REAL)
    if op in ("floorDivide", "remainder", "power"):
        ds.remove("bool")
    if op in ("add", "subtract", "multiply", "divide", "power", "equal", "notEqual", "logicalAnd", "logicalOr"):
        ds.append("complex64")
    return ds


def binary_out_dtype(op, dtype):
    if op in BOOL_RESULT:
        return "bool"
    if op in FLOAT_RESULT and dtype in ["bool"] + INTS:
        return "float32"
    return dtype


def bits(dtype):
    return np.dtype(dtype).itemsize * 8


def binary_operands(op, dtype, shape_a, shape_b, kind_a, kind_b, salt):
    """Random inputs in the op's domain for one dtype."""
    def gen_a(s):
        if op in COMPARISONS or op in ("maximum", "minimum"):
            return _tie_prone(dtype, s)
        if op in ("logicalAnd", "logicalOr"):
            return _zero_prone(dtype, s)
        if op in ("bitwiseAnd", "bitwiseOr", "bitwiseXor"):
            return rand(dtype, s, {"int": (-1000, 1000), "uint": (0, 5000)})
        if op == "leftShift":
            return rand(dtype, s, {"int": (-3, 3), "uint": (0, 3)})
        if op == "rightShift":
            return rand(dtype, s, {"int": (-1000, 1000), "uint": (0, 5000)})
        if op in ("floorDivide", "remainder"):
            return rand(dtype, s, {"float": (-10, 10), "int": (-20, 20), "uint": (0, 30)})
        if op == "power":
            return rand(dtype, s, {"float": (0.5, 3), "int": (-3, 3), "uint": (0, 3)})
        return rand(dtype, s)

    def gen_b(s):
        if op in COMPARISONS or op in ("maximum", "minimum"):
            return _tie_prone(dtype, s)
        if op in ("logicalAnd", "logicalOr"):
            return _zero_prone(dtype, s)
        if op in ("bitwiseAnd", "bitwiseOr", "bitwiseXor"):
            return rand(dtype, s, {"int": (-1000, 1000), "uint": (0, 5000)})
        if op == "leftShift":
            return rand(dtype, s, {"int": (0, bits(dtype) - 3), "uint": (0, bits(dtype) - 3)})
        if op == "rightShift":
            return rand(dtype, s, {"int": (0, bits(dtype) - 1), "uint": (0, bits(dtype) - 1)})
        if op == "floorDivide" and dtype in HALVES:
            # Powers of two: a / b is exact, so flooring the float32 quotient
            # (Tessera, numpy) and flooring the quotient rounded to the half
            # type (MLX) agree.
            return rng.choice([-4.0, -2.0, -1.0, -0.5, 0.5, 1.0, 2.0, 4.0], size=s).astype(npdt(dtype))
        if op in ("divide", "floorDivide", "remainder"):
            return _nonzero(dtype, s)
        if op == "power":
            return rand(dtype, s, {"float": (-2, 2), "int": (0, 4), "uint": (0, 4)})
        return rand(dtype, s)

    a = make_input(dtype, shape_a, kind_a, salt=salt, gen=gen_a)
    b = make_input(dtype, shape_b, kind_b, salt=salt + 1, gen=gen_b)
    return a, b


def _tie_prone(dtype, s):
    if dtype == "bool":
        return rng.random(s) < 0.5
    if dtype in UNSIGNED:
        return rng.integers(0, 4, size=s).astype(dtype)
    v = rng.integers(-3, 4, size=s) / (1 if dtype in SIGNED else 2)
    if dtype == "complex64":
        return (v + 1j * rng.integers(-1, 2, size=s)).astype(np.complex64)
    return v.astype(npdt(dtype))


def _zero_prone(dtype, s):
    if dtype == "bool":
        return rng.random(s) < 0.5
    v = rng.integers(0, 3, size=s)
    if dtype == "complex64":
        return (rng.choice([0, 1.5], size=s) + 1j * rng.choice([0, -1], size=s)).astype(np.complex64)
    if dtype in UNSIGNED:
        return v.astype(dtype)
    if dtype in SIGNED:
        return (v - 1).astype(dtype)
    return ((v - 1) * 1.5).astype(npdt(dtype))


def _nonzero(dtype, s):
    if dtype == "bool":
        return np.ones(s, bool)
    if dtype in UNSIGNED:
        return rng.integers(1, 7, size=s).astype(dtype)
    if dtype in SIGNED:
        return (rng.integers(1, 6, size=s) * rng.choice([-1, 1], size=s)).astype(dtype)
    if dtype == "complex64":
        return rand(dtype, s, {"complex": (-1, 1)})
    mag = rng.uniform(0.5, 3, size=s) * rng.choice([-1, 1], size=s)
    return mag.astype(npdt(dtype))


def np_binary_float(op):
    return {
        "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
        "power": np.power, "maximum": np.maximum, "minimum": np.minimum, "arctan2": np.arctan2,
        "logAddExp": np.logaddexp,
    }[op]


def binary_ref(op, x, y, dtype):
    """`x` and `y` already hold `dtype` (the promoted dtype)."""
    if op in COMPARISONS:
        cx, cy = _comparable(x, dtype), _comparable(y, dtype)
        return {"equal": np.equal, "notEqual": np.not_equal, "less": np.less, "lessEqual": np.less_equal,
                "greater": np.greater, "greaterEqual": np.greater_equal}[op](cx, cy)
    if op in ("logicalAnd", "logicalOr"):
        nx, ny = _comparable(x, dtype) != 0, _comparable(y, dtype) != 0
        return np.logical_and(nx, ny) if op == "logicalAnd" else np.logical_or(nx, ny)
    if dtype == "bool":
        f = {"add": np.logical_or, "subtract": np.logical_xor, "multiply": np.logical_and,
             "maximum": np.logical_or, "minimum": np.logical_and, "bitwiseAnd": np.logical_and,
             "bitwiseOr": np.logical_or, "bitwiseXor": np.logical_xor}.get(op)
        if f is not None:
            return f(x, y)
    if dtype in ["bool"] + INTS:
        if op in FLOAT_RESULT:
            fx, fy = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
            return rounded(np_binary_float(op)(fx, fy), "float32")
        f = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "floorDivide": np.floor_divide,
             "remainder": np.remainder, "power": np.power, "maximum": np.maximum, "minimum": np.minimum,
             "bitwiseAnd": np.bitwise_and, "bitwiseOr": np.bitwise_or, "bitwiseXor": np.bitwise_xor,
             "leftShift": np.left_shift, "rightShift": np.right_shift}[op]
        with np.errstate(over="ignore"):
            return f(x, y).astype(x.dtype)
    if op in ("floorDivide", "remainder"):
        # Floor-like ops are computed in the float type itself (float32 for the
        # halves), as Tessera and MLX do: floor(a / b), and fmod with the
        # divisor's sign.
        ct = np.float64 if dtype == "float64" else np.float32
        fx, fy = x.astype(ct), y.astype(ct)
        r = np.floor(fx / fy) if op == "floorDivide" else np.remainder(fx, fy)
        return rounded(r, dtype)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return rounded(np_binary_float(op)(as_compute(x, dtype), as_compute(y, dtype)), dtype)


def _comparable(x, dtype):
    return x.astype(np.float32) if dtype in HALVES else x


BINARY_SHAPES = [([3, 4], [3, 4]), ([2, 3, 4], [4]), ([3, 1], [1, 4]), ([], [2, 3]), ([5], []),
                 ([0, 3], [1, 3]), ([2, 1, 3], [2, 4, 1]), ([1], [6]), ([4, 0], [4, 1]), ([2, 3, 4], [2, 3, 4])]

PROMOTION_PAIRS = [("int32", "float16"), ("uint8", "int8"), ("uint64", "int8"), ("uint64", "int32"),
                   ("float16", "bfloat16"), ("bool", "int8"), ("bool", "float32"), ("int64", "uint32"),
                   ("uint16", "int16"), ("float32", "float64"), ("bfloat16", "int64"),
                   ("complex64", "float32"), ("complex64", "int32"), ("uint32", "int32"),
                   ("float16", "float32"), ("uint8", "bfloat16"), ("int16", "float64"), ("int8", "uint64")]


def gen_binary():
    cases = []
    counter = 0
    for op in BINARY_OPS:
        for dtype in binary_dtypes(op):
            many = dtype in ("float32", "int32")
            shapes = BINARY_SHAPES if many else [BINARY_SHAPES[counter % len(BINARY_SHAPES)]]
            for sa, sb in shapes:
                ka = VIEW_KINDS[counter % len(VIEW_KINDS)]
                kb = VIEW_KINDS[(counter // 2 + 2) % len(VIEW_KINDS)]
                counter += 1
                a, b = binary_operands(op, dtype, sa, sb, ka, kb, counter)
                expected = binary_ref(op, a.value, b.value, dtype)
                out = binary_out_dtype(op, dtype)
                assert dtname(expected.dtype) == out, (op, dtype, expected.dtype)
                assert list(expected.shape) == list(np.broadcast_shapes(tuple(sa), tuple(sb)))
                if mx is not None:
                    mlx_check(out, getattr(mx, mlx_name(op)), dtype, dtype)
                name = f"{op}_{dtype}_{shape_str(sa)}_{shape_str(sb)}_{ka}_{kb}"
                cases.append(case(name, op, [a, b], expected))

    # Long rows, contiguous, broadcast along rows, and transposed.
    for op in BINARY_OPS:
        for dtype in [d for d in ("float32", "int32", "bfloat16") if d in binary_dtypes(op)]:
            for sa, sb, ka, kb in [([5, 33], [33], "contiguous", "contiguous"),
                                   ([5, 33], [5, 33], "transpose", "contiguous"),
                                   ([33, 5], [33, 1], "contiguous", "broadcast")]:
                counter += 1
                a, b = binary_operands(op, dtype, sa, sb, ka, kb, counter)
                expected = binary_ref(op, a.value, b.value, dtype)
                name = f"{op}_{dtype}_{shape_str(sa)}_{shape_str(sb)}_{ka}_{kb}_long"
                cases.append(case(name, op, [a, b], expected))

    # Mixed dtypes: MLX promotion.
    for op in ["add", "subtract", "multiply", "divide", "maximum", "less", "equal"]:
        for da, db in PROMOTION_PAIRS:
            p = promote(da, db)
            if p == "complex64" and op in ("maximum", "less"):
                continue
            sa, sb = BINARY_SHAPES[counter % len(BINARY_SHAPES)]
            counter += 1
            if op in ("less", "equal", "maximum"):
                gen_a = lambda s, d=da: _tie_prone(d, s)
                gen_b = lambda s, d=db: _tie_prone(d, s)
            elif op == "divide":
                gen_a, gen_b = None, (lambda s, d=db: _nonzero(d, s))
            else:
                gen_a = gen_b = None
            a = make_input(da, sa, "contiguous", gen=gen_a, domain={"int": (-10, 10), "uint": (0, 20)})
            b = make_input(db, sb, VIEW_KINDS[counter % len(VIEW_KINDS)], salt=counter, gen=gen_b)
            expected = binary_ref(op, a.value.astype(npdt(p)), b.value.astype(npdt(p)), p)
            out = binary_out_dtype(op, p)
            assert dtname(expected.dtype) == out
            mlx_check(out, getattr(mx, mlx_name(op)) if mx else None, da, db)
            cases.append(case(f"{op}_{da}_{db}_promoted", op, [a, b], expected))

    # Weak scalars: the scalar takes the array's dtype where it fits (MLX).
    scalar_cases = [
        ("multiply", "float16", 2.0, "right"), ("multiply", "int32", 2.5, "right"), ("add", "uint8", 3, "right"),
        ("subtract", "uint8", 200, "left"), ("add", "bfloat16", 1, "right"), ("multiply", "int8", 2, "right"),
        ("add", "bool", 1, "right"), ("multiply", "bool", 1.5, "right"), ("divide", "float64", 3, "right"),
        ("divide", "int32", 2, "right"), ("maximum", "float16", 0.5, "right"), ("less", "int32", 2.5, "right"),
        ("power", "float32", 2, "right"), ("power", "float32", 2.0, "left"), ("equal", "uint16", 7, "right"),
        ("add", "int8", True, "right"), ("multiply", "complex64", 2.0, "right"), ("remainder", "int32", 3, "right"),
        ("floorDivide", "float32", 2, "right"), ("subtract", "bfloat16", 0.25, "left"),
        ("minimum", "int64", -2, "left"), ("greater", "float16", 1, "right"), ("add", "float32", True, "left"),
        ("logicalAnd", "int32", True, "right"),
    ]
    for op, dtype, scalar, side in scalar_cases:
        shape = [3, 4]
        domain = {"int": (-10, 10), "uint": (0, 20)}
        if op == "power" and side == "left":
            domain = {"float": (-2, 2)}
        elif op == "power":
            domain = {"float": (0.5, 3)}
        a = make_input(dtype, shape, VIEW_KINDS[counter % len(VIEW_KINDS)], domain=domain, salt=counter)
        counter += 1
        kind = "bool" if isinstance(scalar, bool) else ("int" if isinstance(scalar, int) else "float")
        sdt = weak_dtype(kind, dtype)
        p = promote(dtype, sdt)
        s_arr = np.array(scalar).astype(npdt(sdt)).astype(npdt(p))
        x = a.value.astype(npdt(p))
        expected = binary_ref(op, s_arr, x, p) if side == "left" else binary_ref(op, x, s_arr, p)
        if mx is not None:
            f = getattr(mx, mlx_name(op))
            arr = mx.ones((2,), dtype=mx_dtype(dtype))
            got = f(scalar, arr) if side == "left" else f(arr, scalar)
            assert str(got.dtype).split(".")[-1].replace("bool_", "bool") == dtname(expected.dtype), \
                (op, dtype, scalar, got.dtype, expected.dtype)
        params = {"scalar": scalar, "scalar_kind": kind, "scalar_side": side}
        cases.append(case(f"{op}_{dtype}_scalar_{kind}_{side}", op, [a], expected, params))

    # NaN propagation and comparisons with NaN.
    xs = np.array([np.nan, 1.0, np.nan, -np.inf, 2.0, 0.0])
    ys = np.array([1.0, np.nan, np.nan, 3.0, np.inf, -0.0])
    for op in ["maximum", "minimum", "add", "equal", "notEqual", "less", "greaterEqual", "logAddExp"]:
        for dtype in FLOATS:
            a, b = Input(xs.astype(npdt(dtype))), Input(ys.astype(npdt(dtype)))
            cases.append(case(f"{op}_{dtype}_nan", op, [a, b], binary_ref(op, a.value, b.value, dtype)))
    return cases


def weak_dtype(kind, other):
    if kind == "bool":
        return "bool"
    if kind == "int":
        return "int32" if other == "bool" else other
    return other if other in FLOATS + ["complex64"] else "float32"


# ---------------------------------------------------------------------------
# Reductions

REDUCE_SHAPES = [[3, 4], [2, 3, 4], [6], [], [0, 3], [2, 0, 3], [1, 5], [4, 1, 2], [2, 3, 2, 2]]


def axes_variants(ndim):
    if ndim == 0:
        return [None]
    v = [None, [0], [-1]]
    if ndim >= 2:
        v += [[1], [0, 1], [-2]]
    if ndim >= 3:
        v += [[0, 2], [2, 0], [-1, -3], [0, 1, 2]]
    return v


def reduce_out_dtype(op, dtype):
    if op in ("sum", "prod"):
        if dtype in ("bool", "int8", "int16"):
            return "int32"
        if dtype in ("uint8", "uint16"):
            return "uint32"
        return dtype
    if op in ("all", "any"):
        return "bool"
    if op in ("mean", "variance", "std", "logSumExp"):
        return "float32" if dtype in ["bool"] + INTS else dtype
    if op in ("argMax", "argMin"):
        return "uint32"
    return dtype


def reduce_dtypes(op):
    return DTYPES if op in ("sum", "prod", "mean", "all", "any") else REAL


def reduce_domain(op, dtype):
    if op == "prod":
        return {"float": (0.7, 1.4), "int": (-2, 2), "uint": (0, 2), "complex": (-1, 1)}
    if op in ("logSumExp", "variance", "std") and dtype in HALVES:
        return {"float": (-1, 1)}
    if op in ("argMax", "argMin", "max", "min") and dtype in INTS:
        return {"int": (-5, 5), "uint": (0, 8)}  # ties: the first index wins
    return {"float": (-5, 5), "int": (-20, 20), "uint": (0, 40), "complex": (-1, 1)}


def reduce_ref(op, x, dtype, axes, keep, ddof=0):
    ax = None if axes is None else tuple(axes)
    out = reduce_out_dtype(op, dtype)
    if dtype == "complex64":
        w = x.astype(np.complex128)
    elif dtype in ["bool"] + INTS:
        w = x.astype(np.int64) if dtype != "uint64" else x.astype(np.uint64)
        if op in ("mean", "variance", "std", "logSumExp"):
            w = x.astype(np.float32).astype(np.float64)
    else:
        w = x.astype(np.float64)
    if op == "sum":
        r = np.sum(w, axis=ax, keepdims=keep)
    elif op == "prod":
        r = np.prod(w, axis=ax, keepdims=keep)
    elif op == "max":
        r = np.max(w, axis=ax, keepdims=keep)
    elif op == "min":
        r = np.min(w, axis=ax, keepdims=keep)
    elif op == "mean":
        r = np.mean(w, axis=ax, keepdims=keep)
    elif op == "variance":
        r = np.var(w, axis=ax, keepdims=keep, ddof=ddof)
    elif op == "std":
        r = np.std(w, axis=ax, keepdims=keep, ddof=ddof)
    elif op == "all":
        r = np.all(w != 0, axis=ax, keepdims=keep)
    elif op == "any":
        r = np.any(w != 0, axis=ax, keepdims=keep)
    elif op == "logSumExp":
        # (Not scipy's logsumexp: it turns a 0-d input with keepdims into 1-d.)
        m = np.max(w, axis=ax, keepdims=True) if w.size else np.zeros([1] * w.ndim)
        m = np.where(np.isfinite(m), m, 0)
        r = np.log(np.sum(np.exp(w - m), axis=ax, keepdims=True)) + m
        r = r if keep else np.squeeze(r, axis=ax)
    else:
        raise ValueError(op)
    return rounded(r, out)


def arg_ref(op, x, axis, keep):
    w = x.astype(np.float64) if x.dtype != np.uint64 else x
    f = np.argmax if op == "argMax" else np.argmin
    return f(w, axis=axis, keepdims=keep).astype(np.uint32)


def gen_reduction():
    cases = []
    counter = 0
    ops = ["sum", "prod", "max", "min", "mean", "variance", "std", "all", "any", "logSumExp"]
    for op in ops:
        for dtype in reduce_dtypes(op):
            many = dtype in ("float32", "int32")
            n_shapes = len(REDUCE_SHAPES) if many else 2
            for j in range(n_shapes):
                shape = REDUCE_SHAPES[(counter + j) % len(REDUCE_SHAPES)] if not many else REDUCE_SHAPES[j]
                variants = axes_variants(len(shape))
                axes = variants[counter % len(variants)]
                keep = counter % 3 == 0
                ddof = 1 if op in ("variance", "std") and counter % 2 == 0 else 0
                kind = VIEW_KINDS[counter % len(VIEW_KINDS)]
                counter += 1
                norm = list(range(len(shape))) if axes is None else [a % len(shape) for a in axes]
                reduced = [shape[a] for a in norm]
                n = int(np.prod(reduced)) if reduced else 1
                if 0 in reduced and op not in ("sum", "prod", "all", "any"):
                    axes = [a for a in range(len(shape)) if shape[a] != 0][:1] or None
                    if axes is None:
                        continue
                    norm = axes
                    n = int(np.prod([shape[a] for a in norm]))
                if op in ("variance", "std") and n - ddof <= 0:
                    ddof = 0
                    if n == 0:
                        continue
                dom = reduce_domain(op, dtype)
                inp = make_input(dtype, shape, kind, domain=dom, salt=counter,
                                 gen=(lambda s, d=dtype: _zero_prone(d, s)) if op in ("all", "any") else None)
                expected = reduce_ref(op, inp.value, dtype, axes, keep, ddof)
                params = {"axes": axes, "keepDims": keep}
                if op in ("variance", "std"):
                    params["ddof"] = ddof
                # MLX returns a 0-d input of sum/prod unchanged (no widening);
                # Tessera widens consistently, so those are not cross-checked.
                # (MLX's logsumexp refuses empty arrays.)
                if mx is not None and len(shape) > 0 and not (op == "logSumExp" and 0 in shape):
                    f = getattr(mx, mlx_name(op))
                    kw = {"axis": axes, "keepdims": keep}
                    if op in ("variance", "std"):
                        kw["ddof"] = ddof
                    mlx_check(dtname(expected.dtype), lambda a: f(a, **kw), mx.ones(shape, dtype=mx_dtype(dtype)))
                name = f"{op}_{dtype}_{shape_str(shape)}_axes{axes}_keep{int(keep)}_{kind}".replace(" ", "")
                cases.append(case(name, op, [inp], expected, params))

    for op in ["argMax", "argMin"]:
        for dtype in REAL:
            many = dtype in ("float32", "int32")
            for j in range(6 if many else 2):
                shape = [[3, 4], [2, 3, 4], [7], [1, 5], [0, 3], [4, 1, 2]][(counter + j) % 6 if not many else j]
                choices = [None] + list(range(-len(shape), len(shape)))
                axis = choices[counter % len(choices)]
                if 0 in shape and (axis is None or shape[axis] == 0):
                    axis = [i for i, d in enumerate(shape) if d != 0][0]
                keep = counter % 2 == 1
                kind = VIEW_KINDS[counter % len(VIEW_KINDS)]
                counter += 1
                inp = make_input(dtype, shape, kind, domain=reduce_domain(op, dtype), salt=counter)
                expected = arg_ref(op, inp.value, axis, keep)
                if 0 not in shape:  # MLX refuses to arg-reduce any empty array
                    mlx_check("uint32", lambda a: getattr(mx, mlx_name(op))(a, axis=axis, keepdims=keep),
                              mx.ones(shape, dtype=mx_dtype(dtype)) if mx else None)
                params = {"axis": axis, "keepDims": keep}
                cases.append(case(f"{op}_{dtype}_{shape_str(shape)}_axis{axis}_keep{int(keep)}_{kind}", op, [inp],
                                  expected, params))

    # Long reduced and kept axes.
    for op in ["sum", "max", "min", "mean", "prod", "logSumExp", "variance", "any"]:
        for dtype in ["float32", "int32", "float16"]:
            for axes, kind in [([1], "contiguous"), ([0], "transpose"), (None, "slice")]:
                counter += 1
                shape = [6, 67]
                inp = make_input(dtype, shape, kind, salt=counter, domain=reduce_domain(op, dtype) if op != "prod"
                                 else {"float": (0.97, 1.03), "int": (-1, 1)},
                                 gen=(lambda s, d=dtype: _zero_prone(d, s)) if op == "any" else None)
                params = {"axes": axes, "keepDims": False}
                if op == "variance":
                    params["ddof"] = 0
                expected = reduce_ref(op, inp.value, dtype, axes, False)
                cases.append(case(f"{op}_{dtype}_6x67_axes{axes}_{kind}_long".replace(" ", ""), op, [inp], expected,
                                  params))
    for op in ["argMax", "argMin"]:
        for dtype in ["float32", "int32"]:
            for axis, kind in [(1, "contiguous"), (0, "transpose"), (None, "slice")]:
                counter += 1
                inp = make_input(dtype, [6, 67], kind, salt=counter, domain={"int": (-1000, 1000)})
                cases.append(case(f"{op}_{dtype}_6x67_axis{axis}_{kind}_long", op, [inp],
                                  arg_ref(op, inp.value, axis, False), {"axis": axis, "keepDims": False}))

    # NaN in max/min/sum, all/any of NaN (NaN is non-zero).
    x = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, -1.0]])
    for op in ["max", "min", "sum", "all", "any"]:
        for dtype in ["float32", "float16", "float64"]:
            inp = Input(x.astype(npdt(dtype)))
            with np.errstate(invalid="ignore"):
                expected = reduce_ref(op, inp.value, dtype, [1], False)
            cases.append(case(f"{op}_{dtype}_nan", op, [inp], expected, {"axes": [1], "keepDims": False}))
    return cases


# ---------------------------------------------------------------------------
# Shape


def gen_shape():
    cases = []
    counter = [0]

    def inp(dtype, shape, kind=None):
        counter[0] += 1
        k = kind or VIEW_KINDS[counter[0] % len(VIEW_KINDS)]
        return make_input(dtype, shape, k, salt=counter[0], domain={"int": (-100, 100), "uint": (0, 200)})

    def dtype_at(i):
        return DTYPES[i % len(DTYPES)]

    reshapes = [([2, 3, 4], [6, 4]), ([2, 3, 4], [-1]), ([2, 3, 4], [4, -1, 2]), ([6], [1, 6, 1]),
                ([0, 3], [3, 0]), ([0, 3], [-1, 3]), ([], [1, 1]), ([1], []), ([3, 4], [2, 2, 3]),
                ([4, 3], [3, 4]), ([2, 1, 3], [3, 2])]
    for i, (src, dst) in enumerate(reshapes):
        for kind in ["contiguous", "transpose", "slice"]:
            x = inp(dtype_at(i + len(kind)), src, kind)
            cases.append(case(f"reshaped_{shape_str(src)}_to_{dst}_{kind}", "reshaped", [x],
                              x.value.reshape(dst), {"shape": dst}))

    flattens = [([2, 3, 4], 0, -1), ([2, 3, 4], 1, 2), ([2, 3, 4], 0, 1), ([2, 3, 4, 2], -3, -2), ([5], 0, 0),
                ([], 0, -1), ([2, 0, 3], 0, 1)]
    for i, (src, s, e) in enumerate(flattens):
        x = inp(dtype_at(i), src)
        if len(src) == 0:
            expected = x.value.reshape([1])
        else:
            ss, ee = s % len(src), e % len(src)
            expected = x.value.reshape(src[:ss] + [int(np.prod(src[ss:ee + 1]))] + src[ee + 1:])
        cases.append(case(f"flattened_{shape_str(src)}_{s}_{e}", "flattened", [x], expected,
                          {"startAxis": s, "endAxis": e}))

    squeezes = [([1, 3, 1, 4], None), ([1, 3, 1, 4], [0]), ([1, 3, 1, 4], [-2, 0]), ([1], None), ([3, 1], [1]),
                ([1, 1], None), ([0, 1], [1])]
    for i, (src, axes) in enumerate(squeezes):
        x = inp(dtype_at(i + 3), src)
        expected = np.squeeze(x.value, axis=None if axes is None else tuple(axes))
        cases.append(case(f"squeezed_{shape_str(src)}_{axes}", "squeezed", [x], expected, {"axes": axes}))

    expands = [([3, 4], [0]), ([3, 4], [-1]), ([3, 4], [1, 3]), ([], [0]), ([2, 3], [0, -1]), ([0], [1])]
    for i, (src, axes) in enumerate(expands):
        x = inp(dtype_at(i + 5), src)
        cases.append(case(f"expandedDimensions_{shape_str(src)}_{axes}", "expandedDimensions", [x],
                          np.expand_dims(x.value, tuple(axes)), {"axes": axes}))

    transposes = [([3, 4], None), ([2, 3, 4], [1, 2, 0]), ([2, 3, 4], [-1, 0, 1]), ([2, 3, 4, 5], [3, 1, 0, 2]),
                  ([5], None), ([2, 0, 3], [2, 1, 0]), ([], None)]
    for i, (src, axes) in enumerate(transposes):
        x = inp(dtype_at(i + 7), src)
        cases.append(case(f"transposed_{shape_str(src)}_{axes}", "transposed", [x],
                          np.transpose(x.value, axes), {"axes": axes}))

    for i, (src, a, b) in enumerate([([2, 3, 4], 0, 2), ([2, 3, 4], -1, 1), ([3, 4], 0, 0), ([2, 3], 1, 0)]):
        x = inp(dtype_at(i + 9), src)
        cases.append(case(f"swappedAxes_{shape_str(src)}_{a}_{b}", "swappedAxes", [x],
                          np.swapaxes(x.value, a, b), {"axis1": a, "axis2": b}))

    for i, (src, s, d) in enumerate([([2, 3, 4], 0, 2), ([2, 3, 4], -1, 0), ([2, 3, 4, 5], 1, -1), ([3], 0, 0)]):
        x = inp(dtype_at(i + 11), src)
        cases.append(case(f"movedAxis_{shape_str(src)}_{s}_{d}", "movedAxis", [x],
                          np.moveaxis(x.value, s, d), {"source": s, "destination": d}))

    for i, (src, dst) in enumerate([([3, 1], [3, 4]), ([4], [2, 3, 4]), ([], [2, 2]), ([1, 3, 1], [2, 3, 5]),
                                    ([1], [0]), ([2, 1], [2, 0]), ([3, 4], [3, 4])]):
        x = inp(dtype_at(i + 1), src)
        cases.append(case(f"broadcast_{shape_str(src)}_to_{shape_str(dst)}", "broadcast", [x],
                          np.broadcast_to(x.value, dst), {"shape": dst}))

    concats = [([[2, 3], [4, 3]], 0, ["float32", "float32"]), ([[2, 3], [2, 1], [2, 2]], 1, ["int32"] * 3),
               ([[2, 3, 4], [2, 3, 4]], -1, ["float16", "float16"]), ([[0, 3], [2, 3]], 0, ["int64", "int64"]),
               ([[3], [0], [2]], 0, ["uint8", "uint8", "uint8"]), ([[2, 2], [2, 2]], 0, ["int32", "float16"]),
               ([[1, 2], [1, 2]], 1, ["uint8", "int8"]), ([[2, 3]], 0, ["bfloat16"]),
               ([[2, 2], [2, 2]], 0, ["bool", "complex64"]), ([[3, 2], [3, 2]], 1, ["float64", "bfloat16"])]
    for i, (shapes, axis, dts) in enumerate(concats):
        xs = [inp(d, s) for d, s in zip(dts, shapes)]
        p = dts[0]
        for d in dts[1:]:
            p = promote(p, d)
        expected = np.concatenate([x.value.astype(npdt(p)) for x in xs], axis=axis)
        if mx is not None:
            got = mx.concatenate([mx.ones(s, dtype=mx_dtype(d)) for d, s in zip(dts, shapes)], axis=axis)
            assert str(got.dtype).split(".")[-1].replace("bool_", "bool") == p
        cases.append(case(f"concatenated_{i}_{'_'.join(dts)}_axis{axis}", "concatenated", xs, expected, {"axis": axis}))

    stacks = [([3, 4], 2, 0, "float32"), ([3, 4], 3, 1, "int16"), ([3, 4], 2, -1, "bfloat16"), ([], 3, 0, "int32"),
              ([2, 0], 2, 1, "float32"), ([2, 3], 1, 0, "bool")]
    for i, (shape, n, axis, dt) in enumerate(stacks):
        xs = [inp(dt, shape) for _ in range(n)]
        cases.append(case(f"stacked_{shape_str(shape)}_{n}_axis{axis}_{dt}", "stacked", xs,
                          np.stack([x.value for x in xs], axis=axis), {"axis": axis}))

    for i, (shape, parts, axis, dt) in enumerate([([6, 4], 3, 0, "float32"), ([2, 6], 2, -1, "int32"),
                                                   ([4, 2, 3], 4, 0, "float16"), ([0, 4], 2, 1, "float32"),
                                                   ([5], 1, 0, "uint16")]):
        x = inp(dt, shape)
        cases.append(case(f"split_parts_{shape_str(shape)}_{parts}_axis{axis}", "splitParts", [x],
                          list(np.split(x.value, parts, axis=axis)), {"parts": parts, "axis": axis}))

    for i, (shape, idx, axis, dt) in enumerate([([7, 3], [2, 5], 0, "float32"), ([3, 8], [1, 1, 6], 1, "int8"),
                                                 ([4, 5], [-2], -1, "float64"), ([6], [0, 10], 0, "int32"),
                                                 ([6, 2], [4, 2], 0, "bfloat16"), ([5, 2], [], 0, "float32")]):
        x = inp(dt, shape)
        # Tessera clamps the cut points and never lets a piece go backwards, as numpy does.
        cases.append(case(f"split_indices_{shape_str(shape)}_{idx}_axis{axis}".replace(" ", ""), "splitIndices", [x],
                          list(np.split(x.value, idx, axis=axis)), {"indices": idx, "axis": axis}))

    # Chains: reshape of a transposed view (needs a copy), transpose of a broadcast.
    x = inp("float32", [3, 4, 2], "transpose")
    cases.append(case("reshaped_chain_transposed_view", "reshaped", [x], x.value.reshape(4, 6), {"shape": [4, 6]}))
    x = inp("int32", [2, 3, 4], "broadcast")
    cases.append(case("transposed_chain_broadcast_view", "transposed", [x], np.transpose(x.value, [2, 0, 1]),
                      {"axes": [2, 0, 1]}))
    return cases


# ---------------------------------------------------------------------------
# Indexing


def to_np_index(entries):
    out = []
    for e in entries:
        if e == "newaxis":
            out.append(None)
        elif e == "ellipsis":
            out.append(Ellipsis)
        elif "index" in e:
            out.append(e["index"])
        else:
            out.append(slice(*e["slice"]))
    return tuple(out)


def I(i):
    return {"index": i}


def S(start=None, stop=None, step=1):
    return {"slice": [start, stop, step]}


def gen_indexing():
    cases = []
    specs = [
        ([4, 5], [I(1)]), ([4, 5], [I(-1)]), ([4, 5], [S(1, 3)]), ([4, 5], [S(), S(None, None, 2)]),
        ([4, 5], [S(None, None, -1)]), ([4, 5], [S(3, 0, -1), S(-1, None, -2)]), ([4, 5], [I(2), I(-3)]),
        ([2, 3, 4], ["ellipsis", I(-1)]), ([2, 3, 4], [I(0), "ellipsis"]), ([2, 3, 4], ["newaxis", I(1)]),
        ([2, 3, 4], [S(), "newaxis", S(1, None), "newaxis"]), ([2, 3, 4], ["ellipsis", "newaxis"]),
        ([2, 3, 4], [I(1), "ellipsis", S(None, None, 3)]), ([6], [S(-4, -1)]), ([6], [S(10, 20)]),
        ([6], [S(-100, 100, 2)]), ([6], [S(4, 1)]), ([6], [S(None, None, -4)]), ([5, 6], [S(1, -1), S(5, 0, -2)]),
        ([3, 4], [I(0), I(0)]), ([3, 4, 5], [S(None, None, 2), I(1), S(4, None, -3)]), ([0, 3], [S(), I(1)]),
        ([3, 0], [I(2)]), ([2, 3], ["newaxis", "ellipsis", "newaxis"]), ([], ["newaxis"]), ([], ["ellipsis"]),
    ]
    dts = ["float32", "int32", "float16", "bool", "int8", "uint64", "complex64", "bfloat16", "float64", "uint16"]
    counter = 0
    for shape, entries in specs:
        for kind in ["contiguous", VIEW_KINDS[1 + counter % (len(VIEW_KINDS) - 1)]]:
            dt = dts[counter % len(dts)]
            counter += 1
            x = make_input(dt, shape, kind, salt=counter)
            expected = x.value[to_np_index(entries)]
            name = f"index_{shape_str(shape)}_{json.dumps(entries)}_{kind}_{dt}".replace(" ", "").replace('"', "")
            cases.append(case(name, "index", [x], expected, {"indices": entries}))

    # An op on the view: the kernels must read strides, offsets and broadcasts correctly.
    thens = [("exp", [5, 6], [S(1, None, 2), S(None, None, -2)], "float32"),
             ("negative", [4, 6], [S(None, None, -1), I(2)], "int32"),
             ("square", [3, 4, 5], ["ellipsis", S(1, 4, 2)], "float16"),
             ("sum", [4, 6], [S(1, None, 2), S(5, 0, -2)], "float32"),
             ("flatten", [4, 6], [S(None, None, 2), S(None, None, -3)], "int16"),
             ("sqrt", [3, 8], [S(), S(1, 7, 3)], "float64"),
             ("flatten", [2, 3, 4], [S(None, None, -1), "newaxis", I(1)], "bfloat16"),
             ("sum", [3, 5], [I(-1)], "int32")]
    for op, shape, entries, dt in thens:
        for kind in ["contiguous", "transpose", "broadcast"]:
            counter += 1
            dom = {"float": (0.1, 4)} if op == "sqrt" else {"float": (-3, 3)}
            x = make_input(dt, shape, kind, domain=dom, salt=counter)
            v = x.value[to_np_index(entries)]
            if op == "sum":
                expected = reduce_ref("sum", v, dt, None, False)
            elif op == "flatten":
                expected = v.reshape(-1)
            else:
                expected = unary_ref(op, v, dt)
            name = f"index_then_{op}_{shape_str(shape)}_{json.dumps(entries)}_{kind}_{dt}".replace(" ", "").replace('"', "")
            cases.append(case(name, "index", [x], expected, {"indices": entries, "then": op}))
    return cases


# ---------------------------------------------------------------------------
# Matmul


def gen_matmul():
    cases = []
    specs = [([3, 4], [4, 5]), ([1, 8], [8, 1]), ([4], [4, 3]), ([3, 4], [4]), ([6], [6]),
             ([2, 3, 4], [2, 4, 5]), ([2, 1, 3, 4], [5, 4, 2]), ([3, 4], [2, 4, 6]), ([3, 0], [0, 4]),
             ([0, 4], [4, 3]), ([3, 4], [4, 0]), ([2, 0, 5], [5, 3]), ([16, 16], [16, 16]), ([7, 13], [13, 9])]
    counter = 0
    for dt in ["float32", "float16", "bfloat16", "float64"]:
        for sa, sb in specs:
            for exact in [True, False] if dt == "float32" else [counter % 3 != 0]:
                ka = ["contiguous", "transpose", "slice", "broadcast"][counter % 4]
                kb = ["transpose", "contiguous", "slice_transpose", "slice"][counter % 4]
                counter += 1

                def gen(s, exact=exact, dt=dt):
                    if exact:
                        # Multiples of 1/8: every product and sum is exact, so any
                        # summation order gives the reference.
                        return (rng.integers(-16, 17, size=s) / 8).astype(npdt(dt))
                    return rng.uniform(-1, 1, size=s).astype(npdt(dt))

                a = make_input(dt, sa, ka, salt=counter, gen=gen)
                b = make_input(dt, sb, kb, salt=counter + 1, gen=gen)
                r = np.matmul(a.value.astype(np.float64), b.value.astype(np.float64))
                expected = rounded(r, dt)
                name = f"matmul_{dt}_{shape_str(sa)}_{shape_str(sb)}_{ka}_{kb}_{'exact' if exact else 'random'}"
                cases.append(case(name, "matmul", [a, b], expected))
    for da, db in [("float16", "float32"), ("bfloat16", "float16"), ("float32", "float64")]:
        p = promote(da, db)
        a = make_input(da, [3, 5], "contiguous", gen=lambda s: (rng.integers(-16, 17, size=s) / 8).astype(npdt(da)))
        b = make_input(db, [5, 2], "transpose", gen=lambda s: (rng.integers(-16, 17, size=s) / 8).astype(npdt(db)))
        expected = rounded(a.value.astype(np.float64) @ b.value.astype(np.float64), p)
        if mx is not None:
            assert str(mx.matmul(mx.ones((3, 5), dtype=mx_dtype(da)), mx.ones((5, 2), dtype=mx_dtype(db))).dtype).endswith(p)
        cases.append(case(f"matmul_{da}_{db}_promoted", "matmul", [a, b], expected))
    return cases


# ---------------------------------------------------------------------------
# which, clip, asType, creation


def as_type_values(src, dst, shape):
    if src == "bool":
        return rng.random(shape) < 0.5
    if src == "complex64":
        lo = 0 if dst in UNSIGNED else -100
        re = rng.uniform(lo, 100, shape)
        im = rng.uniform(-100, 100, shape)
        if dst == "bool":
            re[::2] = 0
            im.reshape(-1)[::3] = 0
        return (re + 1j * im).astype(np.complex64)
    if src in FLOATS:
        lo = 0 if dst in UNSIGNED else -100
        v = rng.uniform(lo, 100, shape)
        if dst in ["bool"] + INTS:
            v.reshape(-1)[::3] = np.trunc(v.reshape(-1)[::3])
        if dst == "bool":
            v.reshape(-1)[::2] = 0
        return v.astype(npdt(src))
    info = np.iinfo(src)
    if dst in INTS + ["bool"]:
        lo, hi = int(info.min), int(info.max)  # integer casts wrap, as in C
        v = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.dtype(src))
        if dst == "bool":
            v.reshape(-1)[::2] = 0
        return v
    lo = max(int(info.min), -1000)
    return rng.integers(lo, min(int(info.max), 1000), size=shape, endpoint=True, dtype=np.dtype(src))


def as_type_ref(x, src, dst):
    if dst == "bool":
        return x != 0 if src not in HALVES else x.astype(np.float32) != 0
    if src == "complex64" and dst != "complex64":
        x = np.real(x)
    if dst in INTS and src in FLOATS + ["complex64"]:
        return np.trunc(x.astype(np.float64)).astype(np.int64).astype(npdt(dst))
    if dst in INTS:
        return x.astype(npdt(dst))  # integer wrap
    if dst == "bfloat16" or src == "bfloat16":
        return x.astype(np.float64).astype(np.float32).astype(npdt(dst))
    return x.astype(npdt(dst))


def gen_misc():
    cases = []
    counter = 0

    # which
    which_specs = [(["bool", "float32", "float32"], [[3, 4], [3, 4], [3, 4]]),
                   (["bool", "int32", "int32"], [[3, 1], [1, 4], [3, 4]]),
                   (["bool", "float16", "float32"], [[2, 3, 4], [4], [3, 1]]),
                   (["int32", "int8", "uint8"], [[5], [5], []]),
                   (["float32", "bfloat16", "bfloat16"], [[2, 3], [2, 3], [2, 3]]),
                   (["bool", "complex64", "float32"], [[4], [4], [4]]),
                   (["bool", "bool", "bool"], [[0, 3], [1, 3], [0, 1]]),
                   (["bool", "uint64", "int32"], [[2, 2], [2, 2], [2, 2]]),
                   (["bool", "float64", "int64"], [[3, 2], [2], [3, 1]])]
    for dts, shapes in which_specs:
        counter += 1
        c = make_input(dts[0], shapes[0], VIEW_KINDS[counter % 5], salt=counter,
                       gen=(lambda s, d=dts[0]: _zero_prone(d, s)))
        a = make_input(dts[1], shapes[1], VIEW_KINDS[(counter + 1) % 5], salt=counter + 1)
        b = make_input(dts[2], shapes[2], VIEW_KINDS[(counter + 3) % 5], salt=counter + 2)
        p = promote(dts[1], dts[2])
        expected = np.where(c.value.astype(np.float64) != 0 if dts[0] != "bool" else c.value,
                            a.value.astype(npdt(p)), b.value.astype(npdt(p)))
        if mx is not None:
            mlx_check(p, mx.where, dts[0], dts[1], dts[2])
        cases.append(case(f"which_{'_'.join(dts)}_{counter}", "which", [c, a, b], expected))
    for dt, scalar in [("int8", 0.0), ("float16", 2.5), ("uint8", 7), ("int32", -1)]:
        counter += 1
        c = make_input("bool", [3, 4], "contiguous", salt=counter)
        a = make_input(dt, [3, 4], "transpose", salt=counter)
        kind = "int" if isinstance(scalar, int) else "float"
        sdt = weak_dtype(kind, dt)
        p = promote(dt, sdt)
        expected = np.where(c.value, a.value.astype(npdt(p)), np.array(scalar).astype(npdt(sdt)).astype(npdt(p)))
        if mx is not None:
            got = mx.where(mx.ones((2,), dtype=mx.bool_), mx.ones((2,), dtype=mx_dtype(dt)), scalar)
            assert str(got.dtype).endswith(p), (dt, scalar, got.dtype)
        cases.append(case(f"which_{dt}_scalar_{kind}", "which", [c, a], expected,
                          {"scalar": scalar, "scalar_kind": kind}))

    # clip
    clip_specs = [("float32", -1.0, 2.0), ("float32", None, 0.5), ("int32", -3, 4), ("int32", 1.5, None),
                  ("float16", -0.5, 0.5), ("uint8", 5, 10), ("bfloat16", 0, None), ("int64", None, -2),
                  ("float64", -2.5, 1.25)]
    for dt, lo, hi in clip_specs:
        counter += 1
        x = make_input(dt, [4, 5], VIEW_KINDS[counter % 5], salt=counter)
        kinds = {type(v).__name__ for v in (lo, hi) if v is not None}
        kind = "float" if "float" in kinds else "int"
        sdt = weak_dtype(kind, dt)
        p = promote(dt, sdt)
        r = x.value.astype(npdt(p))
        if p in HALVES:
            r = r.astype(np.float32)
        if lo is not None:
            r = np.maximum(r, lo)
        if hi is not None:
            r = np.minimum(r, hi)
        expected = r.astype(npdt(p))
        if mx is not None:
            got = mx.clip(mx.ones((2,), dtype=mx_dtype(dt)), lo, hi)
            assert str(got.dtype).endswith(p), (dt, lo, hi, got.dtype)
        cases.append(case(f"clip_{dt}_{lo}_{hi}", "clip", [x], expected, {"min": lo, "max": hi, "scalar_kind": kind}))
    for dt_x, dt_b, shapes in [("float32", "float32", [[3, 4], [4], [3, 1]]), ("int32", "int8", [[5], [], [5]]),
                               ("float16", "float32", [[2, 3], [2, 3], [1]])]:
        counter += 1
        x = make_input(dt_x, shapes[0], VIEW_KINDS[counter % 5], salt=counter)
        lo = make_input(dt_b, shapes[1], "contiguous", domain={"float": (-3, 0), "int": (-4, 0)})
        hi = make_input(dt_b, shapes[2], "contiguous", domain={"float": (0, 3), "int": (0, 4)})
        p = promote(dt_x, dt_b)
        r = np.minimum(np.maximum(x.value.astype(np.float64), lo.value.astype(np.float64)), hi.value.astype(np.float64))
        cases.append(case(f"clip_arrays_{dt_x}_{dt_b}", "clip", [x, lo, hi], rounded(r, p), {"bounds": "arrays"}))

    # asType between every pair.
    for src in DTYPES:
        for dst in DTYPES:
            counter += 1
            shape = [[2, 3], [5], [3, 2, 2], [], [0, 2], [4, 4]][counter % 6]
            kind = VIEW_KINDS[counter % 5]
            x = make_input(src, shape, kind, salt=counter, gen=lambda s: as_type_values(src, dst, s))
            with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # complex -> real drops the imaginary part on purpose
                expected = as_type_ref(x.value, src, dst)
            assert dtname(expected.dtype) == dst
            cases.append(case(f"asType_{src}_to_{dst}_{shape_str(shape)}_{kind}", "asType", [x], expected, {"dtype": dst}))

    # Creation.
    for start, stop, step, dt in [(0, 10, 1, "int32"), (3, -7, -2, "int32"), (0, 0, 1, "int32"), (2, 9, 3, "float32"),
                                  (-5, 5, 2, "int64"), (0, 5, 1, "float16"), (1, 20, 4, "uint8"), (5, 3, 1, "int32"),
                                  (0, 7, 2, "bfloat16"), (-3, 3, 1, "float64")]:
        expected = np.arange(start, stop, step).astype(npdt(dt))
        cases.append(case(f"arange_int_{start}_{stop}_{step}_{dt}", "arangeInt", [], expected,
                          {"start": start, "stop": stop, "step": step, "dtype": dt}))
    for start, stop, step, dt in [(0.5, 3.2, 0.25, "float32"), (-1.0, 1.0, 0.5, "float64"), (5.0, 0.0, -1.5, "float32"),
                                  (0.0, 2.5, 0.5, "float16"), (0.0, 1.0, 0.3, "bfloat16"), (0.0, -1.0, 0.5, "float32"),
                                  (1.5, 9.0, 2.0, "int32")]:
        n = max(0, math.ceil((stop - start) / step))
        expected = rounded(start + np.arange(n) * step, dt) if dt in FLOATS else (start + np.arange(n) * step).astype(np.int64).astype(dt)
        cases.append(case(f"arange_double_{start}_{stop}_{step}_{dt}", "arangeDouble", [], expected,
                          {"start": start, "stop": stop, "step": step, "dtype": dt}))
    for start, stop, count, dt in [(0.0, 1.0, 5, "float32"), (-2.0, 3.0, 7, "float64"), (1.0, 0.0, 4, "float32"),
                                   (0.0, 10.0, 1, "float32"), (0.0, 10.0, 0, "float32"), (2.5, 2.5, 3, "float16"),
                                   (-1.0, 1.0, 9, "bfloat16"), (0.0, 1.0, 50, "float32")]:
        expected = rounded(np.linspace(start, stop, count), dt)
        cases.append(case(f"linspace_{start}_{stop}_{count}_{dt}", "linspace", [], expected,
                          {"start": start, "stop": stop, "count": count, "dtype": dt}))
    for n, m, k, dt in [(3, None, 0, "float32"), (3, 5, 1, "float32"), (4, 2, -1, "int32"), (2, 2, 5, "float16"),
                        (0, 3, 0, "float32"), (4, 4, -3, "bool"), (3, 4, 2, "bfloat16"), (1, None, 0, "uint8")]:
        expected = np.eye(n, m, k).astype(npdt(dt))
        cases.append(case(f"eye_{n}_{m}_{k}_{dt}", "eye", [], expected, {"n": n, "m": m, "k": k, "dtype": dt}))
    for n, dt in [(4, "float16"), (1, "int32"), (0, "float32"), (3, "complex64")]:
        cases.append(case(f"identity_{n}_{dt}", "identity", [], np.identity(n).astype(npdt(dt)), {"n": n, "dtype": dt}))
    for op in ["zeros", "ones"]:
        for shape, dt in [([2, 3], "float32"), ([0], "int32"), ([], "bool"), ([2, 2], "complex64"), ([3], "bfloat16"),
                          ([1, 2, 3], "uint64")]:
            expected = (np.zeros if op == "zeros" else np.ones)(shape).astype(npdt(dt))
            cases.append(case(f"{op}_{shape_str(shape)}_{dt}", op, [], expected, {"shape": shape, "dtype": dt}))
    for shape, value, dt, exp_dt in [([2, 2], 7, None, "int32"), ([3], 2.5, None, "float32"), ([2], True, None, "bool"),
                                     ([2, 3], 2.5, "int32", "int32"), ([], -1, "uint8", "uint8"), ([2], 3, "float16", "float16"),
                                     ([0, 2], 1.0, "float64", "float64"), ([2, 1], -2.75, "bfloat16", "bfloat16")]:
        if isinstance(value, float) and exp_dt in INTS:
            expected = np.full(shape, np.trunc(value)).astype(exp_dt)
        elif isinstance(value, int) and not isinstance(value, bool) and exp_dt in INTS:
            expected = np.full(shape, np.array(value).astype(np.int64).astype(exp_dt))
        else:
            expected = np.full(shape, value).astype(npdt(exp_dt))
        kind = "bool" if isinstance(value, bool) else ("int" if isinstance(value, int) else "float")
        cases.append(case(f"full_{shape_str(shape)}_{value}_{dt}", "full", [], expected,
                          {"shape": shape, "value": value, "value_kind": kind, "dtype": dt}))
    return cases


# ---------------------------------------------------------------------------


def main():
    families = [("unary", gen_unary), ("binary", gen_binary), ("reduction", gen_reduction), ("shape", gen_shape),
                ("indexing", gen_indexing), ("matmul", gen_matmul), ("misc", gen_misc)]
    os.makedirs(OUT_DIR, exist_ok=True)
    total = 0
    for name, gen in families:
        cases = gen()
        names = [c["name"] for c in cases]
        dup = {n for n in names if names.count(n) > 1}
        assert not dup, f"duplicate case names in {name}: {sorted(dup)[:5]}"
        path = os.path.join(OUT_DIR, f"{name}.json")
        with open(path, "w") as f:
            json.dump(cases, f, separators=(",", ":"))
            f.write("\n")
        size = os.path.getsize(path)
        total += size
        print(f"{name}.json: {len(cases)} cases, {size / 1024:.0f} KiB")
    print(f"total {total / 1024:.0f} KiB" + ("" if mx is not None else " (mlx not found: dtypes not cross-checked)"))


if __name__ == "__main__":
    sys.exit(main())
