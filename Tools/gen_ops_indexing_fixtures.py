#!/usr/bin/env python3
"""Writes reference fixtures for the indexing, sort, scan, shape/layout,
linear-algebra (tril/triu/diagonal/einsum) and convolution ops, computed by
numpy (and torch for convolutions):

  Tests/Fixtures/indexing.json  Tests/Fixtures/sort.json  Tests/Fixtures/scan.json
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
    write("indexing.json", cases)


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


def main():
    gen_indexing()
    gen_sort()
    gen_scan()


if __name__ == "__main__":
    main()
