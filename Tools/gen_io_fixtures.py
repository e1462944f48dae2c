#!/usr/bin/env python3
"""Writes the file-format fixtures under Tests/Fixtures/io/, each file written
by the reference library, plus io_expected.json with the values those files
hold (arrays as {dtype, shape, data: base64 little-endian row-major}).

- sample.safetensors: the `safetensors` package (torch for bfloat16), metadata;
- sample.npz (numpy.savez), sample_compressed.npz (numpy.savez_compressed),
  fortran.npy (Fortran order), scalar.npy (0-d);
- sample.gguf: the `gguf` package's writer: every metadata value type and
  tensors in F32, F16, Q4_0, Q4_1, Q8_0 (quantized by gguf.quants) and Q4_K,
  Q5_K, Q6_K (random blocks); expected values from gguf.quants.dequantize, and
  for Q4_0/Q4_1/Q8_0 the packed weights/scales/biases MLX's own GGUF loader
  produces (mx.load), which Tessera must equal bit for bit.

Needs: pip install numpy safetensors gguf torch "mlx[cpu]" (torch CPU wheel
in /opt/wheels). Run from the repository root: python3 Tools/gen_io_fixtures.py
"""
import base64
import json
import os

import gguf
import mlx.core as mx
import numpy as np
import torch
from safetensors.torch import save_file as save_torch

OUT = os.path.join("Tests", "Fixtures", "io")
rng = np.random.default_rng(7)


def enc(a, dtype_name=None):
    a = np.array(a, order="C", copy=True)
    return {"dtype": dtype_name or str(a.dtype).replace("bool", "bool"), "shape": list(a.shape),
            "data": base64.b64encode(a.tobytes()).decode()}


def enc_mx(a):
    name = str(a.dtype).split(".")[-1]
    if a.dtype == mx.bfloat16:
        return enc(np.array(a.view(mx.uint16)), "bfloat16")
    return enc(np.array(a), name)


def safetensors_fixture(expected):
    arrays = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f16": rng.standard_normal((2, 3)).astype(np.float16),
        "f64": rng.standard_normal((5,)),
        "i8": rng.integers(-100, 100, (4,), dtype=np.int8),
        "u8": rng.integers(0, 255, (2, 2), dtype=np.uint8),
        "i16": rng.integers(-1000, 1000, (3,), dtype=np.int16),
        "u16": rng.integers(0, 60000, (3,), dtype=np.uint16),
        "i32": rng.integers(-10**6, 10**6, (2, 3), dtype=np.int32),
        "u32": rng.integers(0, 2**31, (3,), dtype=np.uint32),
        "i64": rng.integers(-10**12, 10**12, (2,), dtype=np.int64),
        "u64": rng.integers(0, 2**62, (2,), dtype=np.uint64),
        "bool": rng.integers(0, 2, (5,)).astype(bool),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.array(3.5, dtype=np.float32),
    }
    tensors = {k: torch.from_numpy(np.array(v, order="C", copy=True)) for k, v in arrays.items()}
    bf = torch.randn(2, 5).to(torch.bfloat16)
    tensors["bf16"] = bf
    save_torch(tensors, os.path.join(OUT, "sample.safetensors"), metadata={"format": "pt", "note": "tessera fixture"})
    exp = {k: enc(v) for k, v in arrays.items()}
    exp["bf16"] = enc(bf.view(torch.int16).numpy().view(np.uint16), "bfloat16")
    expected["safetensors"] = {"tensors": exp, "metadata": {"format": "pt", "note": "tessera fixture"}}


def npz_fixture(expected):
    arrays = {
        "a": rng.standard_normal((3, 4)).astype(np.float32),
        "b": rng.integers(-5, 5, (2, 3, 2)).astype(np.int64),
        "flags": rng.integers(0, 2, (4,)).astype(bool),
        "z": (rng.standard_normal(3) + 1j * rng.standard_normal(3)).astype(np.complex64),
        "h": rng.standard_normal((2, 2)).astype(np.float16),
        "empty": np.zeros((0,), dtype=np.float64),
    }
    np.savez(os.path.join(OUT, "sample.npz"), **arrays)
    np.savez_compressed(os.path.join(OUT, "sample_compressed.npz"), **arrays)
    f = np.asfortranarray(rng.standard_normal((3, 5)).astype(np.float32))
    np.save(os.path.join(OUT, "fortran.npy"), f)
    np.save(os.path.join(OUT, "scalar.npy"), np.array(7, dtype=np.int32))
    expected["npz"] = {k: enc(v) for k, v in arrays.items()}
    expected["fortran"] = enc(np.ascontiguousarray(f))
    expected["scalar"] = enc(np.array(7, dtype=np.int32))


def random_kquant_blocks(qtype, rows, cols):
    """Random K-quant bytes with small positive f16 scales, so values are finite."""
    block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = rows * cols // block_elems
    raw = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
    scale = rng.uniform(0.001, 0.01, (n_blocks, 2)).astype(np.float16).view(np.uint8).reshape(n_blocks, 4)
    if qtype == gguf.GGMLQuantizationType.Q6_K:
        raw[:, 208:210] = scale[:, 0:2]          # d at the end
    else:
        raw[:, 0:4] = scale                       # d, dmin at the start
    return raw.reshape(rows, cols // block_elems * block_bytes)


def gguf_fixture(expected):
    path = os.path.join(OUT, "sample.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_uint64("t.u64", 2**60)
    w.add_int64("t.i64", -2**60)
    w.add_float32("t.f32", 1.5)
    w.add_float64("t.f64", -2.25)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ✓")
    w.add_array("t.ints", [1, 2, 3])
    w.add_array("t.strs", ["a", "bc", ""])
    meta = {"t.u8": 200, "t.i8": -100, "t.u16": 60000, "t.i16": -30000, "t.u32": 4000000000,
            "t.i32": -2000000000, "t.u64": 2**60, "t.i64": -2**60, "t.f32": 1.5, "t.f64": -2.25,
            "t.bool": True, "t.str": "héllo ✓", "t.ints": [1, 2, 3], "t.strs": ["a", "bc", ""],
            "general.architecture": "llama"}
    tensors = {}
    base = rng.standard_normal((4, 64)).astype(np.float32)
    w.add_tensor("f32", base)
    tensors["f32"] = {"type": "f32", "expected": enc(base)}
    h = rng.standard_normal((3, 32)).astype(np.float16)
    w.add_tensor("f16", h)
    tensors["f16"] = {"type": "f16", "expected": enc(h)}
    Q = gguf.GGMLQuantizationType
    simple = {}
    for name, qtype in [("q4_0", Q.Q4_0), ("q4_1", Q.Q4_1), ("q8_0", Q.Q8_0)]:
        x = rng.standard_normal((3, 64)).astype(np.float32)
        q = gguf.quants.quantize(x, qtype)
        simple[name] = (q, qtype)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)
        tensors[name] = {"type": name, "expected": enc(gguf.quants.dequantize(q, qtype).astype(np.float32))}
    for name, qtype in [("q4_k", Q.Q4_K), ("q5_k", Q.Q5_K), ("q6_k", Q.Q6_K)]:
        q = random_kquant_blocks(qtype, 2, 512)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)
        tensors[name] = {"type": name, "expected": enc(gguf.quants.dequantize(q, qtype).astype(np.float32))}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # MLX's loader (which handles only some types, so a file of just these):
    # quantized tensors come back as weight/scales/biases.
    mlx_path = "/tmp/tessera_mlx_quants.gguf"
    m = gguf.GGUFWriter(mlx_path, "llama")
    for name, (q, qtype) in simple.items():
        m.add_tensor(name, q, raw_shape=q.shape, raw_dtype=qtype)
    m.write_header_to_file()
    m.write_kv_data_to_file()
    m.write_tensors_to_file()
    m.close()
    loaded = mx.load(mlx_path)
    for name in ["q4_0", "q4_1", "q8_0"]:
        tensors[name]["mlx"] = {"weight": enc_mx(loaded[name]), "scales": enc_mx(loaded[f"{name}.scales"]),
                                "biases": enc_mx(loaded[f"{name}.biases"])}
    expected["gguf"] = {"metadata": meta, "tensors": tensors}


def main():
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    safetensors_fixture(expected)
    npz_fixture(expected)
    gguf_fixture(expected)
    with open(os.path.join(OUT, "io_expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
