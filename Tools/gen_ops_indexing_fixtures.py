#!/usr/bin/env python3
"""Writes reference fixtures for the indexing, sort, scan, shape/layout,
linear-algebra (tril/triu/diagonal/einsum) and convolution ops, computed by
numpy (and torch for convolutions):

  Tests/Fixtures/gather_scatter.json  Tests/Fixtures/sort.json  Tests/Fixtures/scan.json
  Tests/Fixtures/layout.json    Tests/Fixtures/einsum.json Tests/Fixtures/conv.json

Each file is a list of cases {"name", "op", "params", "inputs": [array...],
"expected": array} or "expected_list": [array...]. An array is
{"dtype", "shape", "data": base64 of little-endian row-major bytes, "view":
optional [{"transpose": axes}, {"slice": [[start, stop, step], ...]},
{"broadcast_to": shape}]}, the view applied to the stored array in order; the
expected values are computed on the viewed array.

Needs numpy, ml_dtypes (bfloat16) and torch (CPU). Run from the repository
root:  python3 Tools/gen_ops_indexing_fixtures.py
"""
import base64
import json
import os

import ml_dtypes
import numpy as np

RNG = np.random.default_rng(20261128)
BF16 = np.dtype(ml_dtypes.bfloat16)
FLOATS = ["float32", "float16", "bfloat16", "float64"]
INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
ALL = FLOATS + INTS + ["bool", "complex64"]


def np_dtype(name):
    return BF16 if name == "bfloat16" else np.dtype("bool" if name == "bool" else name)


def random(shape, dtype, low=-4, high=5):
    """Small random values, exact in every dtype (ints in range, floats in quarters)."""
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if dtype.startswith("uint"):
        return RNG.integers(0, high + 3, shape).astype(dtype)
    if dtype.startswith("int"):
        return RNG.integers(low, high, shape).astype(dtype)
    if dtype == "complex64":
        return (RNG.integers(low, high, shape) + 1j * RNG.integers(low, high, shape)).astype(np.complex64)
    return (RNG.integers(4 * low, 4 * high, shape) / 4).astype(np_dtype(dtype))


def distinct(shape, dtype):
    """A permutation of small values (no ties), for sorts whose indices must be unique."""
    n = int(np.prod(shape))
    values = RNG.permutation(n) - (0 if dtype.startswith("uint") else n // 2)
    if dtype in FLOATS:
        values = values / 2
    return values.reshape(shape).astype(np_dtype(dtype))


def view_of(base, view):
    a = base
    for step in view or []:
        if "transpose" in step:
            a = a.transpose(step["transpose"])
        elif "slice" in step:
            a = a[tuple(slice(*s) for s in step["slice"])]
        elif "broadcast_to" in step:
            a = np.broadcast_to(a, step["broadcast_to"])
    return a


def dtype_name(a):
    if a.dtype == BF16:
        return "bfloat16"
    return "bool" if a.dtype == np.bool_ else str(a.dtype)


def encode(a, view=None):
    a = np.asarray(a)
    out = {"dtype": dtype_name(a), "shape": list(a.shape),
           "data": base64.b64encode(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).decode()}
    if view:
        out["view"] = view
    return out


class Input:
    """A stored array plus the view a test applies; `.value` is the viewed array."""

    def __init__(self, base, view=None):
        self.base, self.view = np.asarray(base), view
        self.value = view_of(self.base, view)

    def json(self):
        return encode(self.base, self.view)


def case(cases, name, op, params, inputs, expected=None, expected_list=None):
    c = {"name": name, "op": op, "params": params, "inputs": [i.json() for i in inputs]}
    if expected_list is not None:
        c["expected_list"] = [encode(e) for e in expected_list]
    else:
        c["expected"] = encode(expected)
    cases.append(c)


def write(name, cases):
    path = os.path.join("Tests", "Fixtures", name)
    with open(path, "w") as f:
        json.dump(cases, f, indent=0, separators=(",", ":"))
    print(f"wrote {path}: {len(cases)} cases")


# MARK: - indexing

def index_key(spec, tensors):
    """numpy index tuple from the JSON index spec."""
    key = []
    for e in spec:
        if "int" in e:
            key.append(e["int"])
        elif "slice" in e:
            key.append(slice(*e["slice"]))
        elif "newaxis" in e:
            key.append(None)
        elif "ellipsis" in e:
            key.append(Ellipsis)
        else:
            key.append(tensors[e["tensor"]].value)
    return tuple(key)


def gen_indexing():
    cases = []
    T = lambda k: {"tensor": k}
    S = lambda *s: {"slice": list(s)}
    I = lambda i: {"int": i}
    NEW, ELL = {"newaxis": True}, {"ellipsis": True}

    # Reading with integer tensors, every dtype.
    for dt in ALL:
        x = Input(random((4, 5, 3), dt))
        idx = Input(np.array([[3, -1], [0, 2]], dtype=np.int32))
        case(cases, f"index_axis0_{dt}", "index", {"indices": [T(1)]}, [x, idx], x.value[idx.value])
        idx1 = Input(np.array([4, 0, 0, -2], dtype=np.int64))
        case(cases, f"index_axis1_{dt}", "index", {"indices": [S(None, None, None), T(1)]}, [x, idx1],
             x.value[:, idx1.value])
    specs = [
        ("last_axis_ellipsis", (4, 5, 6), [ELL, T(1)], [np.array([5, 1, 2], np.int32)]),
        ("with_slices", (4, 5, 6), [S(1, 4, None), T(1), S(None, None, -2)], [np.array([[0, 4], [1, 1]], np.uint8)]),
        ("int_adjacent", (4, 5, 6), [S(None, None, None), I(1), T(1)], [np.array([5, 0, 3], np.int16)]),
        ("int_separated", (3, 4, 5, 6), [S(None, None, None), I(-1), S(None, None, None), T(1)],
         [np.array([[5, 0], [2, 3]], np.int32)]),
        ("two_tensors_adjacent", (4, 5, 6), [S(None, None, None), T(1), T(2)],
         [np.array([[0], [4]], np.int32), np.array([1, 5, 2], np.int32)]),
        ("two_tensors_separated", (4, 5, 6), [T(1), S(1, None, None), T(2)],
         [np.array([3, 0], np.int32), np.array([[5], [1]], np.int64)]),
        ("newaxis", (4, 5), [NEW, T(1), S(None, None, 2)], [np.array([1, 3], np.int32)]),
        ("scalar_tensor", (4, 5), [S(None, None, None), T(1)], [np.array(3, np.int32)]),
        ("empty_index", (4, 5), [T(1)], [np.zeros((0,), np.int32)]),
    ]
    for name, shape, spec, idxs in specs:
        x = Input(random(shape, "float32"))
        tensors = [x] + [Input(i) for i in idxs]
        case(cases, f"index_{name}", "index", {"indices": spec}, tensors, x.value[index_key(spec, tensors)])
    # Non-contiguous inputs and indices.
    x = Input(random((5, 6, 4), "float32"), [{"transpose": [2, 0, 1]}, {"slice": [[0, 4, 1], [4, None, -1], [0, 6, 2]]}])
    idx = Input(np.array([[0, 2, 1], [3, 3, 0]], np.int32), [{"transpose": [1, 0]}])
    case(cases, "index_strided_input_and_index", "index", {"indices": [S(None, None, None), T(1)]}, [x, idx],
         x.value[:, idx.value])
    idx = Input(np.array([2, 0], np.int32), [{"broadcast_to": [3, 2]}])
    case(cases, "index_broadcast_index", "index", {"indices": [T(1)]}, [x, idx], x.value[idx.value])

    # Assignment through the subscript.
    set_specs = [
        ("basic_column", (4, 5), [S(None, None, None), I(1)], [], (4,)),
        ("basic_strided_broadcast", (4, 6), [S(None, None, 2), S(1, None, 2)], [], (3,)),
        ("basic_newaxis_int", (3, 4, 5), [I(2), NEW, S(None, None, -1)], [], (1, 4, 5)),
        ("tensor_rows", (5, 3), [T(1)], [np.array([4, 0, -2], np.int32)], (3, 3)),
        ("tensor_mixed", (4, 5, 6), [S(1, 3, None), T(1), I(0)], [np.array([[0, 4], [2, 1]], np.int32)], (2, 2, 2)),
        ("tensor_separated", (4, 5, 6), [T(1), S(None, None, None), T(2)],
         [np.array([3, 1], np.int32), np.array([0, 5], np.int32)], (2, 5)),
        ("tensor_scalar_value", (5, 3), [S(None, None, None), T(1)], [np.array([2, 0], np.int64)], ()),
    ]
    for dt in ["float32", "int32", "bool", "float16"]:
        for name, shape, spec, idxs, vshape in set_specs:
            x = Input(random(shape, dt))
            tensors = [x] + [Input(i) for i in idxs]
            v = Input(random(vshape, dt))
            out = x.value.copy()
            out[index_key(spec, tensors)] = v.value
            case(cases, f"index_set_{name}_{dt}", "index_set", {"indices": spec}, tensors + [v], out)

    # x.at[...] scatter ops (numpy ufunc.at accumulates over repeated indices).
    ufuncs = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
              "minimum": np.minimum}
    at_specs = [
        ("repeated_rows", (5, 3), [T(1)], [np.array([1, 3, 1, 1, -1], np.int32)], (5, 3)),
        ("column_broadcast", (4, 6), [S(None, None, None), T(1)], [np.array([[0, 5], [0, 2]], np.int32)], (2, 1)),
        ("basic_only", (4, 6), [S(1, 3, None), S(None, None, 3)], [], (2, 2)),
        ("two_tensors", (4, 5), [T(1), T(2)], [np.array([0, 3, 0], np.int32), np.array([1, 4, 1], np.int32)], (3,)),
    ]
    for op, f in ufuncs.items():
        for dt in ["float32", "int32", "float64", "bfloat16"] if op in ("add", "maximum") else ["float32", "int32"]:
            for name, shape, spec, idxs, vshape in at_specs:
                x = Input(random(shape, dt))
                tensors = [x] + [Input(i) for i in idxs]
                v = Input(random(vshape, dt))
                if dt == "bfloat16":
                    out = x.value.astype(np.float32)
                    f.at(out, index_key(spec, tensors), v.value.astype(np.float32))
                    out = out.astype(BF16)
                else:
                    out = x.value.copy()
                    f.at(out, index_key(spec, tensors), v.value)
                case(cases, f"at_{op}_{name}_{dt}", f"at_{op}", {"indices": spec}, tensors + [v], out)
    x = Input(random((3, 4), "float32"), [{"transpose": [1, 0]}])
    v = Input(random((3,), "float32"), [{"broadcast_to": [2, 3]}])
    idx = Input(np.array([2, 2], np.int32))
    out = x.value.copy()
    np.add.at(out, (idx.value,), v.value)
    case(cases, "at_add_strided_input_broadcast_values", "at_add", {"indices": [T(1)]}, [x, idx, v], out)

    # take / takeAlongAxis / putAlongAxis
    for dt in ALL:
        x = Input(random((3, 4), dt))
        idx = Input(np.array([[3, 0], [-1, 2]], np.int32))
        case(cases, f"take_axis1_{dt}", "take", {"axis": 1}, [x, idx], np.take(x.value, idx.value, axis=1))
    x = Input(random((3, 4), "float32"), [{"transpose": [1, 0]}])
    idx = Input(np.array([5, 0, 11, -3], np.int64))
    case(cases, "take_flat_strided", "take", {"axis": None}, [x, idx], np.take(x.value, idx.value))
    for dt in ["float32", "int64", "bool", "bfloat16", "uint8"]:
        x = Input(random((3, 5, 4), dt))
        idx = Input(RNG.integers(0, 5, (3, 2, 4)).astype(np.int32))
        case(cases, f"take_along_axis1_{dt}", "take_along_axis", {"axis": 1}, [x, idx],
             np.take_along_axis(x.value, idx.value, axis=1))
    x = Input(random((4, 6), "float32"))
    idx = Input(RNG.integers(0, 6, (1, 3)).astype(np.int32))
    case(cases, "take_along_axis_broadcast_index", "take_along_axis", {"axis": 1}, [x, idx],
         np.take_along_axis(x.value, np.broadcast_to(idx.value, (4, 3)), axis=1))
    x = Input(random((5, 4), "float32"), [{"transpose": [1, 0]}])
    idx = Input(np.array([[4, 0, 2]], np.int32), [{"broadcast_to": [4, 3]}])
    case(cases, "take_along_axis_strided", "take_along_axis", {"axis": 1}, [x, idx],
         np.take_along_axis(x.value, idx.value, axis=1))
    for dt in ["float32", "int32", "float16", "bool"]:
        x = Input(random((3, 5), dt))
        idx = Input(np.array([[0, 3], [4, 1], [2, 2]], np.int32))
        v = Input(random((3, 2), dt))
        out = x.value.copy()
        ii = idx.value.copy()
        ii[2, 1] = 0  # no duplicates: set order is unspecified for them
        idx = Input(ii)
        np.put_along_axis(out, ii, v.value, axis=1)
        case(cases, f"put_along_axis1_{dt}", "put_along_axis", {"axis": 1}, [x, idx, v], out)
    x = Input(random((4, 3), "float32"))
    idx = Input(np.array([[3, 0, 1]], np.int32))
    v = Input(np.array([7.5], np.float32))
    out = x.value.copy()
    np.put_along_axis(out, idx.value, v.value, axis=0)
    case(cases, "put_along_axis0_broadcast_values", "put_along_axis", {"axis": 0}, [x, idx, v], out)

    # Dynamic slices: offsets as tensors (clamped so the window fits).
    for dt in ["float32", "int16", "bfloat16", "complex64"]:
        x = Input(random((5, 6, 3), dt))
        start = Input(np.array([1, 3], np.int32))
        case(cases, f"dynamic_slice_{dt}", "dynamic_slice", {"axes": [0, 1], "sizes": [2, 3]}, [x, start],
             x.value[1:3, 3:6, :])
        start = Input(np.array([4, -2], np.int64))
        case(cases, f"dynamic_slice_clamped_{dt}", "dynamic_slice", {"axes": [0, 2], "sizes": [3, 2]}, [x, start],
             x.value[2:5, :, 1:3])
        upd = Input(random((2, 6, 2), dt))
        start = Input(np.array([3, 1], np.int32))
        out = x.value.copy()
        out[3:5, :, 1:3] = upd.value
        case(cases, f"dynamic_slice_update_{dt}", "dynamic_slice_update", {"axes": [0, 2]}, [x, upd, start], out)
    x = Input(random((6, 5), "float32"), [{"transpose": [1, 0]}])
    upd = Input(random((1, 3), "float32"), [{"broadcast_to": [2, 3]}])
    start = Input(np.array([2], np.int32))
    out = x.value.copy()
    out[0:2, 2:5] = upd.value
    case(cases, "dynamic_slice_update_strided", "dynamic_slice_update", {"axes": [1]}, [x, upd, start], out)
    write("gather_scatter.json", cases)


# MARK: - sort

def gen_sort():
    cases = []
    for dt in ALL[:-1]:  # every real dtype
        shape = (4, 6)
        base = distinct(shape, dt) if dt != "bool" else random(shape, dt)
        for axis in [0, 1, None]:
            x = Input(base)
            flat = x.value.reshape(-1) if axis is None else x.value
            ax = -1 if axis is None else axis
            p = {"axis": axis}
            case(cases, f"sort_axis{axis}_{dt}", "sort", p, [x], np.sort(flat, axis=ax))
            case(cases, f"argsort_axis{axis}_{dt}", "argsort", p, [x],
                 np.argsort(flat, axis=ax, kind="stable").astype(np.uint32))
        for kth in [0, 2, -1]:
            x = Input(base)
            # Partitions are checked against the sorted values (the test checks the contract).
            case(cases, f"partition_kth{kth}_{dt}", "partition", {"axis": 1, "kth": kth}, [x], np.sort(x.value, axis=1))
            case(cases, f"argpartition_kth{kth}_{dt}", "argpartition", {"axis": 0, "kth": kth}, [x],
                 np.sort(x.value, axis=0))
    # Ties (stability), NaN and non-contiguous inputs.
    x = Input(np.array([[2, 1, 2, 0, 1, 2], [5, 5, 5, 5, 5, 5]], np.float32))
    case(cases, "argsort_ties_stable", "argsort", {"axis": 1}, [x], np.argsort(x.value, axis=1, kind="stable").astype(np.uint32))
    x = Input(np.array([3, np.nan, -1, np.inf, np.nan, 0, -np.inf], np.float32))
    case(cases, "sort_nan_last", "sort", {"axis": 0}, [x], np.sort(x.value))
    case(cases, "argsort_nan_last", "argsort", {"axis": 0}, [x], np.argsort(x.value, kind="stable").astype(np.uint32))
    x = Input(distinct((5, 7), "float32"), [{"transpose": [1, 0]}, {"slice": [[None, None, -2], [0, 5, 1]]}])
    case(cases, "sort_strided", "sort", {"axis": 1}, [x], np.sort(x.value, axis=1))
    case(cases, "argsort_strided", "argsort", {"axis": 0}, [x], np.argsort(x.value, axis=0, kind="stable").astype(np.uint32))
    x = Input(distinct((3,), "int32"), [{"broadcast_to": [4, 3]}])
    case(cases, "sort_broadcast", "sort", {"axis": 1}, [x], np.sort(x.value, axis=1))
    x = Input(distinct((3, 4, 5), "float32"))
    case(cases, "sort_middle_axis", "sort", {"axis": 1}, [x], np.sort(x.value, axis=1))
    # topK: the k largest, largest first, with indices.
    for dt in ["float32", "int32", "float16", "uint8", "bfloat16"]:
        x = Input(distinct((3, 7), dt))
        order = np.argsort(-x.value.astype(np.float64), axis=1, kind="stable")[:, :3]
        case(cases, f"topk3_{dt}", "topk", {"k": 3, "axis": -1}, [x],
             expected_list=[np.take_along_axis(x.value, order, axis=1), order.astype(np.uint32)])
    x = Input(distinct((6, 4), "float32"), [{"transpose": [1, 0]}])
    order = np.argsort(-x.value, axis=0, kind="stable")[:2]
    case(cases, "topk2_axis0_strided", "topk", {"k": 2, "axis": 0}, [x],
         expected_list=[np.take_along_axis(x.value, order, axis=0), order.astype(np.uint32)])
    write("sort.json", cases)


# MARK: - scan

def scan_reference(op, a, axis, reverse, inclusive):
    """numpy's cum* in a wide type, exclusive/reverse arranged by hand, cast back."""
    dt = a.dtype
    out_dt = np.dtype(np.int32) if dt == np.bool_ and op in ("sum", "prod") else dt
    if dt == np.bool_ and op in ("max", "min"):
        wide = a
    elif dt.kind == "f" or dt == BF16:
        wide = a.astype(np.float64)
    elif dt.kind == "c":
        wide = a.astype(np.complex128)
    else:
        wide = a.astype(out_dt)
    if reverse:
        wide = np.flip(wide, axis)
    f = {"sum": np.cumsum, "prod": np.cumprod, "max": np.maximum.accumulate, "min": np.minimum.accumulate}[op]
    with np.errstate(over="ignore"):
        r = f(wide, axis=axis, dtype=wide.dtype) if op in ("sum", "prod") else f(wide, axis=axis)
    if not inclusive:
        if op == "sum":
            ident = 0
        elif op == "prod":
            ident = 1
        elif wide.dtype == np.bool_:
            ident = op == "min"
        elif wide.dtype.kind == "f":
            ident = -np.inf if op == "max" else np.inf
        else:
            info = np.iinfo(wide.dtype)
            ident = info.min if op == "max" else info.max
        pad = np.full_like(np.take(r, [0], axis=axis), ident)
        r = np.concatenate([pad, np.delete(r, -1, axis=axis)], axis=axis)
    if reverse:
        r = np.flip(r, axis)
    return np.ascontiguousarray(r).astype(out_dt)


def gen_scan():
    cases = []
    for op in ["sum", "prod", "max", "min"]:
        dts = ALL if op in ("sum", "prod") else ALL[:-1]
        for dt in dts:
            low, high = (-2, 3) if op == "prod" else (-4, 5)
            x = Input(random((3, 5), dt, low, high))
            for axis, reverse, inclusive in [(1, False, True), (0, True, True), (1, False, False), (1, True, False)]:
                case(cases, f"cum{op}_axis{axis}_rev{int(reverse)}_inc{int(inclusive)}_{dt}", f"cum{op}",
                     {"axis": axis, "reverse": reverse, "inclusive": inclusive}, [x],
                     scan_reference(op, x.value, axis, reverse, inclusive))
        x = Input(random((4, 3, 5), "float32", -2, 3), [{"transpose": [2, 0, 1]}, {"slice": [[None, None, -1], [0, 4, 2], [0, 3, 1]]}])
        case(cases, f"cum{op}_strided", f"cum{op}", {"axis": 1, "reverse": False, "inclusive": True}, [x],
             scan_reference(op, x.value, 1, False, True))
        x = Input(random((5,), "int32", -2, 3), [{"broadcast_to": [3, 5]}])
        case(cases, f"cum{op}_broadcast", f"cum{op}", {"axis": 0, "reverse": True, "inclusive": True}, [x],
             scan_reference(op, x.value, 0, True, True))
        x = Input(random((3, 4), "float32", -2, 3))
        case(cases, f"cum{op}_flat", f"cum{op}", {"axis": None, "reverse": False, "inclusive": True}, [x],
             scan_reference(op, x.value.reshape(-1), 0, False, True))
    x = Input(np.array([1, np.nan, 3, 0], np.float32))
    case(cases, "cummax_nan", "cummax", {"axis": 0, "reverse": False, "inclusive": True}, [x],
         np.array([1, np.nan, np.nan, np.nan], np.float32))
    write("scan.json", cases)


# MARK: - layout: pad, tile, repeat, roll, tril/triu, diagonal/diag, meshgrid

def gen_layout():
    cases = []
    for dt in ALL:
        x = Input(random((3, 4), dt))
        value = 2.5 if dt in FLOATS + ["complex64"] else 1 if dt == "bool" else 3
        widths = [[1, 2], [0, 3]]
        case(cases, f"pad_constant_{dt}", "pad", {"widths": widths, "mode": "constant", "value": value}, [x],
             np.pad(x.value, widths, mode="constant", constant_values=np.array(value).astype(x.value.dtype)))
        case(cases, f"pad_edge_{dt}", "pad", {"widths": widths, "mode": "edge"}, [x], np.pad(x.value, widths, mode="edge"))
        case(cases, f"tile_{dt}", "tile", {"reps": [2, 1, 3]}, [x], np.tile(x.value, (2, 1, 3)))
        case(cases, f"repeat_axis1_{dt}", "repeat", {"count": 3, "axis": 1}, [x], np.repeat(x.value, 3, axis=1))
        case(cases, f"roll_axis0_{dt}", "roll", {"shift": [-1], "axis": [0]}, [x], np.roll(x.value, -1, axis=0))
        case(cases, f"tril_{dt}", "tril", {"k": 0}, [x], np.tril(x.value))
        case(cases, f"triu_k1_{dt}", "triu", {"k": 1}, [x], np.triu(x.value, 1))
        case(cases, f"diagonal_{dt}", "diagonal", {"offset": 1, "axis1": 0, "axis2": 1}, [x], np.diagonal(x.value, 1).copy())
        v = Input(random((3,), dt))
        case(cases, f"diag_vector_km1_{dt}", "diag", {"k": -1}, [v], np.diag(v.value, -1))
    strided = Input(random((4, 5, 3), "float32"), [{"transpose": [2, 0, 1]}, {"slice": [[None, None, -1], [0, 4, 2], [1, 5, 1]]}])
    b = Input(random((1, 4), "int32"), [{"broadcast_to": [3, 4]}])
    for name, x in [("strided", strided), ("broadcast", b)]:
        case(cases, f"pad_constant_{name}", "pad", {"widths": [[2, 0]], "mode": "constant", "value": 0}, [x],
             np.pad(x.value, [[2, 0]] * x.value.ndim))
        case(cases, f"pad_edge_{name}", "pad", {"widths": [[1, 1]], "mode": "edge"}, [x],
             np.pad(x.value, [[1, 1]] * x.value.ndim, mode="edge"))
        case(cases, f"tile_{name}", "tile", {"reps": [2]}, [x], np.tile(x.value, 2))
        case(cases, f"repeat_flat_{name}", "repeat", {"count": 2, "axis": None}, [x], np.repeat(x.value, 2))
        case(cases, f"roll_flat_{name}", "roll", {"shift": [5], "axis": None}, [x], np.roll(x.value, 5))
        case(cases, f"roll_two_axes_{name}", "roll", {"shift": [1, -3], "axis": [0, -1]}, [x],
             np.roll(x.value, (1, -3), axis=(0, -1)))
        case(cases, f"tril_km1_{name}", "tril", {"k": -1}, [x], np.tril(x.value, -1))
        case(cases, f"triu_{name}", "triu", {"k": 0}, [x], np.triu(x.value))
        case(cases, f"diagonal_{name}", "diagonal", {"offset": -1, "axis1": -1, "axis2": 0}, [x],
             np.diagonal(x.value, -1, -1, 0).copy())
    x = Input(random((2, 3, 4), "float32"))
    case(cases, "tile_fewer_reps", "tile", {"reps": [2, 2]}, [x], np.tile(x.value, (2, 2)))
    case(cases, "diagonal_3d_axes_0_2", "diagonal", {"offset": 2, "axis1": 0, "axis2": 2}, [x],
         np.diagonal(x.value, 2, 0, 2).copy())
    case(cases, "diagonal_empty", "diagonal", {"offset": 5, "axis1": 1, "axis2": 2}, [x],
         np.diagonal(x.value, 5, 1, 2).copy())
    case(cases, "tril_batched_k1", "tril", {"k": 1}, [x], np.tril(x.value, 1))
    m = Input(random((3, 5), "float32"))
    case(cases, "diag_matrix_k2", "diag", {"k": 2}, [m], np.diag(m.value, 2).copy())
    v = Input(random((4,), "float32"), [{"slice": [[None, None, -1]]}])
    case(cases, "diag_vector_strided_k1", "diag", {"k": 1}, [v], np.diag(v.value, 1))
    xs = [Input(random((3,), "float32")), Input(random((2,), "int32")), Input(random((4,), "float16"))]
    for indexing in ["xy", "ij"]:
        for sparse in [False, True]:
            for count in [2, 3]:
                out = np.meshgrid(*[i.value for i in xs[:count]], indexing=indexing, sparse=sparse)
                case(cases, f"meshgrid_{count}_{indexing}_sparse{int(sparse)}", "meshgrid",
                     {"indexing": indexing, "sparse": sparse}, xs[:count], expected_list=[np.ascontiguousarray(o) for o in out])
    write("layout.json", cases)


# MARK: - einsum

def gen_einsum():
    cases = []
    specs = [
        ("ij,jk->ik", [(3, 4), (4, 5)]),
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("ii->", [(4, 4)]),
        ("ii->i", [(4, 4)]),
        ("iij->j", [(3, 3, 2)]),
        ("i,j->ij", [(3,), (4,)]),
        ("ij->ji", [(3, 4)]),
        ("ij->", [(3, 4)]),
        ("ij->j", [(3, 4)]),
        ("i,i->", [(5,)] * 2),
        ("ij,ij->ij", [(3, 4)] * 2),
        ("ij,j->i", [(3, 4), (4,)]),
        ("ij,jk", [(3, 4), (4, 2)]),
        ("ba,ca", [(3, 4), (2, 4)]),
        ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
        ("ab,bc,cd->ad", [(2, 3), (3, 4), (4, 2)]),
        ("ijk,ikl->jl", [(2, 3, 4), (2, 4, 5)]),
        ("...ij,...jk->...ik", [(2, 1, 3, 4), (3, 4, 2)]),
        ("...i->...", [(2, 3, 4)]),
        ("ij,kl->ijkl", [(2, 3), (2, 2)]),
        ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
        ("ij,ik->", [(3, 4), (3, 2)]),
    ]
    for sub, shapes in specs:
        for dt in ["float32", "float64", "float16", "bfloat16"]:
            if dt != "float32" and sub not in ("ij,jk->ik", "bhqd,bhkd->bhqk", "ii->"):
                continue
            ops = [Input(random(s, dt)) for s in shapes]
            ref = np.einsum(sub, *[o.value.astype(np.float64) for o in ops]).astype(np_dtype(dt))
            name = sub.replace(",", "_").replace("->", "_to_").replace("...", "E")
            case(cases, f"einsum_{name}_{dt}", "einsum", {"subscripts": sub}, ops, np.asarray(ref))
    a = Input(random((4, 3), "float32"), [{"transpose": [1, 0]}])
    b = Input(random((5,), "float32"), [{"broadcast_to": [4, 5]}])
    case(cases, "einsum_strided_broadcast", "einsum", {"subscripts": "ij,jk->ik"}, [a, b],
         np.einsum("ij,jk->ik", a.value.astype(np.float64), b.value.astype(np.float64)).astype(np.float32))
    x = Input(random((3, 3), "int32"))
    case(cases, "einsum_trace_int32", "einsum", {"subscripts": "ii"}, [x], np.asarray(np.einsum("ii", x.value)))
    write("einsum.json", cases)


# MARK: - convolution (torch as the reference, in float64 on the rounded inputs)

def gen_conv():
    import torch
    import torch.nn.functional as F
    cases = []

    def t64(a):
        return torch.from_numpy(np.ascontiguousarray(a.astype(np.float64)))

    def transposed_weight(w, groups):
        """MLX (C_out, K..., C_in/G) to torch's transposed-conv weight (C_in, C_out/G, K...)."""
        o, cg = w.shape[0], w.shape[-1]
        k = w.shape[1:-1]
        w = w.reshape((groups, o // groups) + k + (cg,))
        w = np.moveaxis(w, -1, 1)  # (G, Cg, O/G, K...)
        return w.reshape((groups * cg, o // groups) + k)

    conv2d_specs = [
        # (name, N, H, W, Cin, Cout, KH, KW, stride, padding, dilation, groups)
        ("basic", 2, 5, 6, 3, 4, 3, 3, (1, 1), (0, 0), (1, 1), 1),
        ("stride_pad", 1, 7, 6, 2, 3, 3, 2, (2, 1), (1, 2), (1, 1), 1),
        ("dilation", 2, 8, 7, 2, 2, 3, 3, (1, 2), (2, 1), (2, 2), 1),
        ("groups", 1, 5, 5, 4, 6, 2, 3, (1, 1), (1, 1), (1, 1), 2),
        ("depthwise", 2, 6, 5, 3, 3, 3, 3, (2, 2), (1, 1), (1, 1), 3),
        ("one_by_one", 1, 4, 4, 5, 2, 1, 1, (1, 1), (0, 0), (1, 1), 1),
    ]
    for dt in ["float32", "float64", "float16", "bfloat16"]:
        for name, n, h, w_, cin, cout, kh, kw, st, pd, dl, g in conv2d_specs:
            if dt != "float32" and name not in ("stride_pad", "groups"):
                continue
            x = Input(random((n, h, w_, cin), dt))
            w = Input(random((cout, kh, kw, cin // g), dt))
            y = F.conv2d(t64(x.value).permute(0, 3, 1, 2), t64(w.value).permute(0, 3, 1, 2), stride=st, padding=pd,
                         dilation=dl, groups=g).permute(0, 2, 3, 1).numpy().astype(np_dtype(dt))
            params = {"stride": list(st), "padding": list(pd), "dilation": list(dl), "groups": g}
            case(cases, f"conv2d_{name}_{dt}", "conv2d", params, [x, w], y)
            # Transposed: input channels are the weight's C_in/G * G, output channels its C_out.
            xt = Input(random((n, h - 1, w_ - 2, cin), dt))
            op = (st[0] - 1, 0) if max(st) > 1 else (0, 0)
            y = F.conv_transpose2d(t64(xt.value).permute(0, 3, 1, 2), t64(transposed_weight(w.value, g)), stride=st,
                                   padding=pd, output_padding=op, groups=g, dilation=dl)
            y = y.permute(0, 2, 3, 1).numpy().astype(np_dtype(dt))
            params = dict(params, outputPadding=list(op))
            case(cases, f"conv_transposed2d_{name}_{dt}", "conv_transposed2d", params, [xt, w], y)
    conv1d_specs = [
        ("basic", 2, 9, 3, 4, 3, 1, 0, 1, 1),
        ("stride_pad_dilation", 1, 11, 2, 3, 3, 2, 2, 2, 1),
        ("groups", 2, 7, 6, 4, 2, 1, 1, 1, 2),
    ]
    for dt in ["float32", "float64", "float16", "bfloat16"]:
        for name, n, l, cin, cout, k, st, pd, dl, g in conv1d_specs:
            if dt != "float32" and name != "stride_pad_dilation":
                continue
            x = Input(random((n, l, cin), dt))
            w = Input(random((cout, k, cin // g), dt))
            y = F.conv1d(t64(x.value).permute(0, 2, 1), t64(w.value).permute(0, 2, 1), stride=st, padding=pd,
                         dilation=dl, groups=g).permute(0, 2, 1).numpy().astype(np_dtype(dt))
            params = {"stride": st, "padding": pd, "dilation": dl, "groups": g}
            case(cases, f"conv1d_{name}_{dt}", "conv1d", params, [x, w], y)
            op = 1 if st > 1 else 0
            y = F.conv_transpose1d(t64(x.value).permute(0, 2, 1), t64(transposed_weight(w.value, g)), stride=st,
                                   padding=pd, output_padding=op, groups=g, dilation=dl)
            y = y.permute(0, 2, 1).numpy().astype(np_dtype(dt))
            case(cases, f"conv_transposed1d_{name}_{dt}", "conv_transposed1d", dict(params, outputPadding=op), [x, w], y)
    # Non-contiguous input and weight.
    x = Input(random((2, 6, 5, 3), "float32"), [{"transpose": [0, 2, 1, 3]}])
    w = Input(random((3, 3, 3, 4), "float32"), [{"transpose": [3, 1, 2, 0]}])
    y = F.conv2d(t64(x.value).permute(0, 3, 1, 2), t64(w.value).permute(0, 3, 1, 2), padding=1)
    case(cases, "conv2d_strided_inputs", "conv2d", {"stride": [1, 1], "padding": [1, 1], "dilation": [1, 1], "groups": 1},
         [x, w], y.permute(0, 2, 3, 1).numpy().astype(np.float32))
    # Padding larger than the kernel reach in a transposed convolution crops.
    x = Input(random((1, 6, 2), "float32"))
    w = Input(random((3, 2, 2), "float32"))
    y = F.conv_transpose1d(t64(x.value).permute(0, 2, 1), t64(transposed_weight(w.value, 1)), padding=2)
    case(cases, "conv_transposed1d_crop", "conv_transposed1d",
         {"stride": 1, "padding": 2, "dilation": 1, "groups": 1, "outputPadding": 0}, [x, w],
         y.permute(0, 2, 1).numpy().astype(np.float32))
    write("conv.json", cases)


def main():
    gen_indexing()
    gen_sort()
    gen_scan()
    gen_layout()
    gen_einsum()
    gen_conv()


if __name__ == "__main__":
    main()
