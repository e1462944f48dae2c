#!/usr/bin/env python3
"""Writes the TesseraNN / TesseraOptimizers reference fixtures:

  Tests/Fixtures/nn/layers.json       layers: forward, parameter and input gradients (torch)
  Tests/Fixtures/nn/activations.json  activations: forward and input gradient (torch)
  Tests/Fixtures/nn/losses.json       losses: forward and input gradient (torch)
  Tests/Fixtures/nn/optimizers.json   two steps of each optimizer, schedules, clip_grad_norm (MLX)

Parameters are stored in MLX's layout and names (channels-last convolutions,
weight [out, k..., in]); torch computes in its own layout. Gradients are of
sum(output * cotangent) for a stored random cotangent. Arrays are
{dtype, shape, data: base64 of little-endian row-major bytes}.

    pip install "torch==2.13.0+cpu" mlx numpy
    python3 Tools/gen_nn_fixtures.py
"""
import base64
import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(0)
rng = np.random.default_rng(0)
OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "nn")
os.makedirs(OUT, exist_ok=True)


def enc(a):
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.array(a, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    name = {np.float32: "float32", np.int32: "int32", np.int64: "int64", np.float64: "float64", np.bool_: "bool",
            np.uint64: "uint64"}[a.dtype.type]
    return {"dtype": name, "shape": list(a.shape), "data": base64.b64encode(a.astype(a.dtype.newbyteorder("<")).tobytes()).decode()}


def randn(*shape, scale=1.0):
    return torch.tensor(rng.standard_normal(shape).astype(np.float32) * scale)


def write(name, cases):
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump({"generator": "Tools/gen_nn_fixtures.py", "cases": cases}, f, indent=0)
    print("wrote", os.path.normpath(path), len(cases), "cases")


# ---------------------------------------------------------------- layers
layers = []


def layer_case(name, layer, config, params, forward, inputs, extra=None):
    """params: {mlx key: (torch leaf tensor, to_mlx layout fn)}; forward(*inputs) uses the torch leaves."""
    xs = [x.clone().requires_grad_(x.dtype.is_floating_point) for x in inputs]
    y = forward(*xs)
    ct = randn(*y.shape)
    (y * ct).sum().backward()
    case = {
        "name": name, "layer": layer, "config": config,
        "params": {k: enc(conv(t.detach())) for k, (t, conv) in params.items()},
        "inputs": [enc(x.detach()) for x in xs],
        "output": enc(y), "cotangent": enc(ct),
        "param_grads": {k: enc(conv(t.grad)) for k, (t, conv) in params.items() if t.grad is not None},
        "input_grads": [enc(x.grad) if x.grad is not None else None for x in xs],
    }
    if extra:
        case.update(extra)
    layers.append(case)


ident = lambda t: t


def leaf(t):
    return t.clone().requires_grad_(True)


# Linear
for bias in (True, False):
    w, b = leaf(randn(5, 4)), leaf(randn(5))
    p = {"weight": (w, ident)}
    if bias:
        p["bias"] = (b, ident)
    layer_case(f"linear_bias{bias}", "Linear", {"input": 4, "output": 5, "bias": bias}, p,
               lambda x: F.linear(x, w, b if bias else None), [randn(2, 3, 4)])

# Embedding
w = leaf(randn(7, 3))
layer_case("embedding", "Embedding", {"count": 7, "dims": 3}, {"weight": (w, ident)},
           lambda i: F.embedding(i, w), [torch.tensor([[1, 0, 6], [3, 3, 2]], dtype=torch.int32)])

# Conv1d: torch weight [O, I/g, K] <-> MLX [O, K, I/g]; input NLC <-> NCL
for (cin, cout, k, stride, pad, dil, groups) in [(4, 6, 3, 1, 1, 1, 1), (4, 6, 3, 2, 0, 2, 2)]:
    w, b = leaf(randn(cout, cin // groups, k)), leaf(randn(cout))
    layer_case(f"conv1d_s{stride}_p{pad}_d{dil}_g{groups}", "Conv1d",
               {"in": cin, "out": cout, "kernel": k, "stride": stride, "padding": pad, "dilation": dil, "groups": groups},
               {"weight": (w, lambda t: t.permute(0, 2, 1)), "bias": (b, ident)},
               lambda x: F.conv1d(x.permute(0, 2, 1), w, b, stride, pad, dil, groups).permute(0, 2, 1),
               [randn(2, 9, cin)])

# Conv2d: torch [O, I/g, KH, KW] <-> MLX [O, KH, KW, I/g]
for (cin, cout, k, stride, pad, dil, groups) in [(3, 4, (3, 3), (1, 1), (1, 1), (1, 1), 1), (4, 4, (3, 2), (2, 1), (0, 1), (1, 2), 2)]:
    w, b = leaf(randn(cout, cin // groups, *k)), leaf(randn(cout))
    layer_case(f"conv2d_s{stride[0]}_g{groups}", "Conv2d",
               {"in": cin, "out": cout, "kernel": list(k), "stride": list(stride), "padding": list(pad), "dilation": list(dil), "groups": groups},
               {"weight": (w, lambda t: t.permute(0, 2, 3, 1)), "bias": (b, ident)},
               lambda x: F.conv2d(x.permute(0, 3, 1, 2), w, b, stride, pad, dil, groups).permute(0, 2, 3, 1),
               [randn(2, 7, 6, cin)])

# ConvTranspose1d: torch [I, O, K] <-> MLX [O, K, I]
for (cin, cout, k, stride, pad, dil, opad) in [(3, 4, 3, 1, 0, 1, 0), (3, 4, 3, 2, 1, 1, 1)]:
    w, b = leaf(randn(cin, cout, k)), leaf(randn(cout))
    layer_case(f"convtranspose1d_s{stride}_p{pad}", "ConvTranspose1d",
               {"in": cin, "out": cout, "kernel": k, "stride": stride, "padding": pad, "dilation": dil, "output_padding": opad},
               {"weight": (w, lambda t: t.permute(1, 2, 0)), "bias": (b, ident)},
               lambda x: F.conv_transpose1d(x.permute(0, 2, 1), w, b, stride, pad, opad, 1, dil).permute(0, 2, 1),
               [randn(2, 5, cin)])

# ConvTranspose2d: torch [I, O, KH, KW] <-> MLX [O, KH, KW, I]
for (cin, cout, k, stride, pad, opad) in [(2, 3, (3, 3), (2, 2), (1, 1), (1, 1)), (2, 3, (2, 3), (1, 2), (0, 1), (0, 0))]:
    w, b = leaf(randn(cin, cout, *k)), leaf(randn(cout))
    layer_case(f"convtranspose2d_s{stride[0]}{stride[1]}", "ConvTranspose2d",
               {"in": cin, "out": cout, "kernel": list(k), "stride": list(stride), "padding": list(pad), "dilation": [1, 1], "output_padding": list(opad)},
               {"weight": (w, lambda t: t.permute(1, 2, 3, 0)), "bias": (b, ident)},
               lambda x: F.conv_transpose2d(x.permute(0, 3, 1, 2), w, b, stride, pad, opad).permute(0, 2, 3, 1),
               [randn(2, 4, 5, cin)])

# LayerNorm / RMSNorm
w, b = leaf(randn(6)), leaf(randn(6))
layer_case("layernorm", "LayerNorm", {"dims": 6, "eps": 1e-5}, {"weight": (w, ident), "bias": (b, ident)},
           lambda x: F.layer_norm(x, (6,), w, b, 1e-5), [randn(3, 4, 6, scale=2.0)])
layer_case("layernorm_noaffine", "LayerNorm", {"dims": 6, "eps": 1e-5, "affine": False}, {},
           lambda x: F.layer_norm(x, (6,), None, None, 1e-5), [randn(3, 6)])
w = leaf(randn(6))
layer_case("rmsnorm", "RMSNorm", {"dims": 6, "eps": 1e-5}, {"weight": (w, ident)},
           lambda x: F.rms_norm(x, (6,), w, 1e-5), [randn(3, 4, 6)])

# GroupNorm (pytorch_compatible): torch on (N, C, *) from channels-last
w, b = leaf(randn(6)), leaf(randn(6))
layer_case("groupnorm_pytorch", "GroupNorm", {"groups": 3, "dims": 6, "pytorch_compatible": True},
           {"weight": (w, ident), "bias": (b, ident)},
           lambda x: F.group_norm(x.permute(0, 3, 1, 2), 3, w, b, 1e-5).permute(0, 2, 3, 1), [randn(2, 3, 4, 6)])
# MLX's default grouping: channel c in group c % G = torch's grouping of channels permuted.
perm = [c for g in range(3) for c in range(6) if c % 3 == g]
inv = [perm.index(c) for c in range(6)]
w, b = leaf(randn(6)), leaf(randn(6))
layer_case("groupnorm_mlx", "GroupNorm", {"groups": 3, "dims": 6, "pytorch_compatible": False},
           {"weight": (w, ident), "bias": (b, ident)},
           lambda x: (F.group_norm(x[..., perm].permute(0, 3, 1, 2), 3, None, None, 1e-5).permute(0, 2, 3, 1)[..., inv]) * w + b,
           [randn(2, 3, 4, 6)])

# BatchNorm: training (batch statistics; running stats updated) and eval (running stats)
w, b = leaf(randn(4)), leaf(randn(4))
rm, rv = randn(4), torch.tensor(rng.uniform(0.5, 2.0, 4).astype(np.float32))
x = randn(5, 3, 4, scale=2.0) + 1
rm_t, rv_t = rm.clone(), rv.clone()
layer_case("batchnorm_train", "BatchNorm", {"features": 4, "momentum": 0.1, "training": True},
           {"weight": (w, ident), "bias": (b, ident), "running_mean": (rm, ident), "running_var": (rv, ident)},
           lambda x: F.batch_norm(x.reshape(-1, 4), rm_t, rv_t, w, b, True, 0.1, 1e-5).reshape(x.shape), [x])
layers[-1]["running_mean_after"] = enc(rm_t)
layers[-1]["running_var_after"] = enc(rv_t)
w, b = leaf(w.detach()), leaf(b.detach())  # fresh leaves: torch accumulates .grad
layer_case("batchnorm_eval", "BatchNorm", {"features": 4, "training": False},
           {"weight": (w, ident), "bias": (b, ident), "running_mean": (rm, ident), "running_var": (rv, ident)},
           lambda x: F.batch_norm(x.reshape(-1, 4), rm, rv, w, b, False, 0.1, 1e-5).reshape(x.shape), [x])


# MultiHeadAttention (MLX's architecture, torch arithmetic)
def mha(q_in, k_in, v_in, p, heads, mask=None):
    def split(t):
        b, l, d = t.shape
        return t.reshape(b, l, heads, d // heads).transpose(1, 2)
    q = split(F.linear(q_in, p["query_proj.weight"], p.get("query_proj.bias")))
    k = split(F.linear(k_in, p["key_proj.weight"], p.get("key_proj.bias")))
    v = split(F.linear(v_in, p["value_proj.weight"], p.get("value_proj.bias")))
    o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    o = o.transpose(1, 2).reshape(q_in.shape[0], q_in.shape[1], -1)
    return F.linear(o, p["out_proj.weight"], p.get("out_proj.bias"))


def causal(n):
    i = torch.arange(n)
    return (i[:, None] < i[None]).float() * torch.finfo(torch.float32).min


def mha_params(prefix, d, bias):
    p = {}
    for name in ("query_proj", "key_proj", "value_proj", "out_proj"):
        p[f"{prefix}{name}.weight"] = leaf(randn(d, d, scale=0.4))
        if bias:
            p[f"{prefix}{name}.bias"] = leaf(randn(d, scale=0.1))
    return p


for bias, masked in [(False, False), (True, True)]:
    p = mha_params("", 8, bias)
    mask = causal(5) if masked else None
    layer_case(f"mha_bias{bias}_mask{masked}", "MultiHeadAttention", {"dims": 8, "heads": 2, "bias": bias, "causal": masked},
               {k: (t, ident) for k, t in p.items()},
               lambda q, kv: mha(q, kv, kv, p, 2, mask), [randn(2, 5, 8), randn(2, 5, 8)] if not masked else [randn(2, 5, 8), randn(2, 5, 8)])


def ln_params(prefix, d):
    return {f"{prefix}.weight": leaf(1 + randn(d, scale=0.1)), f"{prefix}.bias": leaf(randn(d, scale=0.1))}


def ln(x, p, prefix):
    return F.layer_norm(x, (x.shape[-1],), p[f"{prefix}.weight"], p[f"{prefix}.bias"], 1e-5)


def lin(x, p, prefix):
    return F.linear(x, p[f"{prefix}.weight"], p[f"{prefix}.bias"])


def lin_params(prefix, i, o):
    return {f"{prefix}.weight": leaf(randn(o, i, scale=0.3)), f"{prefix}.bias": leaf(randn(o, scale=0.1))}


for norm_first in (True, False):
    d, mlp = 8, 16
    p = {**mha_params("attention.", d, False), **ln_params("ln1", d), **ln_params("ln2", d),
         **lin_params("linear1", d, mlp), **lin_params("linear2", mlp, d)}
    mask = causal(4)

    def enc_layer(x, p=p, nf=norm_first):
        att = lambda y: mha(y, y, y, {k[len("attention."):]: v for k, v in p.items() if k.startswith("attention.")}, 2, mask)
        if nf:
            h = x + att(ln(x, p, "ln1"))
            return h + lin(F.relu(lin(ln(h, p, "ln2"), p, "linear1")), p, "linear2")
        h = ln(x + att(x), p, "ln1")
        return ln(h + lin(F.relu(lin(h, p, "linear1")), p, "linear2"), p, "ln2")
    layer_case(f"encoder_layer_normfirst{norm_first}", "TransformerEncoderLayer",
               {"dims": d, "heads": 2, "mlp": mlp, "norm_first": norm_first, "causal": True},
               {k: (t, ident) for k, t in p.items()}, enc_layer, [randn(2, 4, d)])

d, mlp = 8, 16
p = {**mha_params("self_attention.", d, False), **mha_params("cross_attention.", d, False), **ln_params("ln1", d),
     **ln_params("ln2", d), **ln_params("ln3", d), **lin_params("linear1", d, mlp), **lin_params("linear2", mlp, d)}


def dec_layer(x, memory):
    sub = lambda pre: {k[len(pre):]: v for k, v in p.items() if k.startswith(pre)}
    y = ln(x, p, "ln1")
    h = x + mha(y, y, y, sub("self_attention."), 2, causal(4))
    y = ln(h, p, "ln2")
    h = h + mha(y, memory, memory, sub("cross_attention."), 2, None)
    return h + lin(F.relu(lin(ln(h, p, "ln3"), p, "linear1")), p, "linear2")


layer_case("decoder_layer", "TransformerDecoderLayer", {"dims": d, "heads": 2, "mlp": mlp, "norm_first": True, "causal": True},
           {k: (t, ident) for k, t in p.items()}, dec_layer, [randn(2, 4, d), randn(2, 6, d)])


# RoPE (MLX fast.rope semantics, written out in torch)
def rope(x, dims, traditional, base, scale, offset):
    L = x.shape[-2]
    half = dims // 2
    pos = (torch.arange(offset, offset + L, dtype=torch.float32) * scale)[:, None]
    freqs = torch.exp(torch.arange(0, half, dtype=torch.float32) * (-2.0 / dims * math.log(base)))
    theta = pos * freqs[None]
    c, s = torch.cos(theta), torch.sin(theta)
    r, rest = x[..., :dims], x[..., dims:]
    if traditional:
        x1, x2 = r[..., 0::2], r[..., 1::2]
        out = torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).reshape(r.shape)
    else:
        x1, x2 = r[..., :half], r[..., half:]
        out = torch.cat([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1)
    return torch.cat([out, rest], dim=-1)


for traditional, dims, offset in [(False, 8, 0), (True, 8, 3), (False, 6, 2)]:
    layer_case(f"rope_trad{traditional}_d{dims}_o{offset}", "RoPE",
               {"dims": dims, "traditional": traditional, "base": 10000.0, "scale": 1.0, "offset": offset}, {},
               lambda x, dims=dims, traditional=traditional, offset=offset: rope(x, dims, traditional, 10000.0, 1.0, offset),
               [randn(2, 3, 5, 8)])


# Sinusoidal positional encoding (MLX definition)
def sinusoidal(x, dims, min_freq=1e-4, max_freq=1.0, cos_first=False):
    half = dims // 2
    one_zero = 1 - torch.arange(0, half, dtype=torch.float32) / (half - 1)
    sig = torch.exp(one_zero * (math.log(max_freq) - math.log(min_freq)) + math.log(min_freq))
    y = x[..., None] * sig
    parts = [torch.cos(y), torch.sin(y)] if cos_first else [torch.sin(y), torch.cos(y)]
    return torch.cat(parts, dim=-1) * (2 / dims) ** 0.5


for cos_first in (False, True):
    layer_case(f"sinusoidal_cosfirst{cos_first}", "SinusoidalPositionalEncoding", {"dims": 8, "cos_first": cos_first}, {},
               lambda x, c=cos_first: sinusoidal(x, 8, cos_first=c), [torch.arange(6, dtype=torch.float32).reshape(2, 3) * 1.5])


# ALiBi on attention scores [B, H, Lq, Lk]
def alibi_slopes(n):
    def get(n):
        if math.log2(n).is_integer():
            start = 2 ** (-(2 ** -(math.log2(n) - 3)))
            return [start * start ** i for i in range(n)]
        c = 2 ** math.floor(math.log2(n))
        return get(c) + get(2 * c)[0::2][: n - c]
    return torch.tensor(get(n), dtype=torch.float32)[:, None, None]


for heads in (4, 6):
    def alibi(s, heads=heads):
        q = torch.arange(0, s.shape[-2])[:, None]
        k = torch.arange(0, s.shape[-1])[None]
        return s + (-(q - k).abs().float())[None, None] * alibi_slopes(heads)
    layer_case(f"alibi_h{heads}", "ALiBi", {"heads": heads}, {}, alibi, [randn(1, heads, 3, 5)])

# Pooling (channels-last); torch pads max with -inf and counts padded zeros in the average by default
for kind, k, s, pad in [("max", 2, None, 0), ("max", 3, 2, 1), ("avg", 2, None, 0), ("avg", 3, 2, 1)]:
    fn = F.max_pool1d if kind == "max" else F.avg_pool1d
    layer_case(f"{kind}pool1d_k{k}_s{s}_p{pad}", "MaxPool1d" if kind == "max" else "AvgPool1d",
               {"kernel": k, "stride": s, "padding": pad}, {},
               lambda x, fn=fn, k=k, s=s, pad=pad: fn(x.permute(0, 2, 1), k, s if s else k, pad).permute(0, 2, 1),
               [randn(2, 8, 3)])
for kind, k, s, pad in [("max", (2, 2), None, (0, 0)), ("max", (3, 2), (2, 1), (1, 0)), ("avg", (2, 2), None, (0, 0)), ("avg", (3, 3), (2, 2), (1, 1))]:
    fn = F.max_pool2d if kind == "max" else F.avg_pool2d
    layer_case(f"{kind}pool2d_k{k[0]}{k[1]}_p{pad[0]}", "MaxPool2d" if kind == "max" else "AvgPool2d",
               {"kernel": list(k), "stride": list(s) if s else None, "padding": list(pad)}, {},
               lambda x, fn=fn, k=k, s=s, pad=pad: fn(x.permute(0, 3, 1, 2), k, s if s else k, pad).permute(0, 2, 3, 1),
               [randn(2, 6, 5, 3)])

# Upsample
for mode, align, scale in [("nearest", False, 2), ("nearest", False, 3), ("linear", False, 2), ("linear", True, 2), ("linear", False, 3)]:
    layer_case(f"upsample1d_{mode}_align{align}_x{scale}", "Upsample", {"scale": scale, "mode": mode, "align_corners": align}, {},
               lambda x, mode=mode, align=align, scale=scale: F.interpolate(
                   x.permute(0, 2, 1), scale_factor=scale, mode=mode, **({} if mode == "nearest" else {"align_corners": align})).permute(0, 2, 1),
               [randn(2, 4, 3)])
    layer_case(f"upsample2d_{mode}_align{align}_x{scale}", "Upsample", {"scale": scale, "mode": mode, "align_corners": align}, {},
               lambda x, mode=mode, align=align, scale=scale: F.interpolate(
                   x.permute(0, 3, 1, 2), scale_factor=scale, mode="bilinear" if mode == "linear" else mode,
                   **({} if mode == "nearest" else {"align_corners": align})).permute(0, 2, 3, 1),
               [randn(2, 3, 4, 2)])

write("layers.json", layers)

# ---------------------------------------------------------------- activations
acts = []
x = torch.tensor(np.concatenate([np.linspace(-6, 6, 37), rng.standard_normal(11) * 3]).astype(np.float32)).reshape(4, 12)
for name, fn in [("relu", F.relu), ("relu6", F.relu6), ("leakyRelu", lambda t: F.leaky_relu(t, 0.01)),
                 ("elu", lambda t: F.elu(t, 1.0)), ("gelu", lambda t: F.gelu(t)),
                 ("geluApproximate", lambda t: F.gelu(t, approximate="tanh")), ("silu", F.silu), ("mish", F.mish),
                 ("softplus", F.softplus), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid), ("glu", lambda t: F.glu(t, -1)),
                 ("logSigmoid", F.logsigmoid), ("selu", F.selu), ("hardSwish", F.hardswish), ("softsign", F.softsign)]:
    xi = x.clone().requires_grad_(True)
    y = fn(xi)
    ct = randn(*y.shape)
    (y * ct).sum().backward()
    acts.append({"name": name, "input": enc(x), "output": enc(y), "cotangent": enc(ct), "input_grad": enc(xi.grad)})
write("activations.json", acts)

# ---------------------------------------------------------------- losses
losses = []


def loss_case(name, fn, inputs, config, grad_of=(0,)):
    xs = [t.clone().requires_grad_(i in grad_of) for i, t in enumerate(inputs)]
    y = fn(*[x.long() if x.dtype == torch.int32 else x for x in xs])  # torch wants int64 class indices
    ct = randn(*y.shape) if y.ndim > 0 else torch.tensor(1.0)
    (y * ct).sum().backward()
    losses.append({"name": name, "config": config, "inputs": [enc(t.detach()) for t in xs], "output": enc(y),
                   "cotangent": enc(ct), "input_grads": {str(i): enc(xs[i].grad) for i in grad_of}})


red = {"none": "none", "mean": "mean", "sum": "sum"}
logits = randn(6, 5, scale=2.0)
labels = torch.tensor([0, 4, 2, 2, 1, 3], dtype=torch.int64)
probs = torch.softmax(randn(6, 5), -1)
cw = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.2])
for r in ("none", "mean", "sum"):
    loss_case(f"ce_{r}", lambda l, t, r=r: F.cross_entropy(l, t, reduction=r), [logits, labels.int()], {"loss": "crossEntropy", "reduction": r})
    loss_case(f"ce_smooth_{r}", lambda l, t, r=r: F.cross_entropy(l, t, reduction=r, label_smoothing=0.1), [logits, labels.int()],
              {"loss": "crossEntropy", "reduction": r, "label_smoothing": 0.1})
    loss_case(f"ce_probs_{r}", lambda l, t, r=r: F.cross_entropy(l, t, reduction=r), [logits, probs], {"loss": "crossEntropy", "reduction": r})
    loss_case(f"ce_ignore_{r}", lambda l, t, r=r: F.cross_entropy(l, t.long(), reduction=r, ignore_index=2), [logits, labels.int()],
              {"loss": "crossEntropy", "reduction": r, "ignore_index": 2})
    loss_case(f"ce_classweights_{r}", lambda l, t, r=r: F.cross_entropy(l, t.long(), weight=cw, reduction=r), [logits, labels.int()],
              {"loss": "crossEntropy", "reduction": r, "class_weights": enc(cw)})
loss_case("ce_axis1_3d", lambda l, t: F.cross_entropy(l, t.long(), reduction="none"), [randn(2, 5, 3), torch.tensor([[0, 4, 1], [2, 2, 3]], dtype=torch.int32)],
          {"loss": "crossEntropy", "reduction": "none", "axis": 1})
z, tb = randn(3, 4, scale=2.0), torch.tensor(rng.uniform(0, 1, (3, 4)).astype(np.float32))
p01 = torch.sigmoid(randn(3, 4))
for r in ("none", "mean", "sum"):
    loss_case(f"bce_logits_{r}", lambda a, b, r=r: F.binary_cross_entropy_with_logits(a, b, reduction=r), [z, tb], {"loss": "binaryCrossEntropy", "reduction": r, "with_logits": True})
    loss_case(f"bce_probs_{r}", lambda a, b, r=r: F.binary_cross_entropy(a, b, reduction=r), [p01, tb], {"loss": "binaryCrossEntropy", "reduction": r, "with_logits": False})
    a, b = randn(3, 4, scale=2.0), randn(3, 4, scale=2.0)
    loss_case(f"mse_{r}", lambda a, b, r=r: F.mse_loss(a, b, reduction=r), [a, b], {"loss": "mse", "reduction": r})
    loss_case(f"l1_{r}", lambda a, b, r=r: F.l1_loss(a, b, reduction=r), [a, b], {"loss": "l1", "reduction": r})
    loss_case(f"smoothl1_{r}", lambda a, b, r=r: F.smooth_l1_loss(a, b, reduction=r, beta=0.7), [a, b], {"loss": "smoothL1", "reduction": r, "beta": 0.7})
    loss_case(f"huber_{r}", lambda a, b, r=r: F.huber_loss(a, b, reduction=r, delta=1.3), [a, b], {"loss": "huber", "reduction": r, "delta": 1.3})
    lp = torch.log_softmax(randn(6, 5), -1)
    loss_case(f"nll_{r}", lambda a, t, r=r: F.nll_loss(a, t.long(), reduction=r), [lp, labels.int()], {"loss": "nll", "reduction": r})
    lq = torch.log_softmax(randn(6, 5), -1)
    # MLX's kl_div_loss sums over the class axis before reducing.
    kl = lambda a, b, r=r: {"none": lambda v: v, "mean": torch.mean, "sum": torch.sum}[r](F.kl_div(a, b, reduction="none", log_target=True).sum(-1))
    loss_case(f"kldiv_{r}", kl, [lp, lq], {"loss": "klDiv", "reduction": r})
    c1, c2 = randn(4, 6), randn(4, 6)
    cs = lambda a, b, r=r: {"none": lambda v: v, "mean": torch.mean, "sum": torch.sum}[r](F.cosine_similarity(a, b, dim=1, eps=1e-8))
    loss_case(f"cosine_{r}", cs, [c1, c2], {"loss": "cosineSimilarity", "reduction": r}, grad_of=(0, 1))
write("losses.json", losses)

# ---------------------------------------------------------------- optimizers (MLX)
import mlx.core as mx
import mlx.optimizers as optim
from mlx.utils import tree_flatten

opts = []
params0 = {"a": {"weight": rng.standard_normal((3, 4)).astype(np.float32)}, "b": rng.standard_normal((5,)).astype(np.float32)}
g1 = {"a": {"weight": rng.standard_normal((3, 4)).astype(np.float32)}, "b": rng.standard_normal((5,)).astype(np.float32)}
g2 = {"a": {"weight": rng.standard_normal((3, 4)).astype(np.float32)}, "b": rng.standard_normal((5,)).astype(np.float32)}


def tomx(t):
    return {k: tomx(v) for k, v in t.items()} if isinstance(t, dict) else mx.array(t)


def flat(t):
    return {k: enc(np.array(v)) for k, v in tree_flatten(t)}


configs = [
    ("sgd", optim.SGD(0.1), {"learning_rate": 0.1}),
    ("sgd_momentum", optim.SGD(0.1, momentum=0.9, weight_decay=0.01, dampening=0.1), {"learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.01, "dampening": 0.1}),
    ("sgd_nesterov", optim.SGD(0.1, momentum=0.9, nesterov=True), {"learning_rate": 0.1, "momentum": 0.9, "nesterov": True}),
    ("adam", optim.Adam(0.01), {"learning_rate": 0.01}),
    ("adam_bias", optim.Adam(0.01, betas=[0.8, 0.99], bias_correction=True), {"learning_rate": 0.01, "betas": [0.8, 0.99], "bias_correction": True}),
    ("adamw", optim.AdamW(0.01, weight_decay=0.1), {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("adamw_bias", optim.AdamW(0.01, weight_decay=0.1, bias_correction=True), {"learning_rate": 0.01, "weight_decay": 0.1, "bias_correction": True}),
    ("adamax", optim.Adamax(0.01), {"learning_rate": 0.01}),
    ("rmsprop", optim.RMSprop(0.01, alpha=0.9), {"learning_rate": 0.01, "alpha": 0.9}),
    ("adagrad", optim.Adagrad(0.1), {"learning_rate": 0.1}),
    ("adadelta", optim.AdaDelta(1.0, rho=0.95), {"learning_rate": 1.0, "rho": 0.95}),
    ("lion", optim.Lion(0.01, weight_decay=0.1), {"learning_rate": 0.01, "weight_decay": 0.1}),
    ("adafactor", optim.Adafactor(), {}),
    ("adafactor_lr_beta1", optim.Adafactor(learning_rate=0.01, relative_step=False, beta_1=0.9, weight_decay=0.01),
     {"learning_rate": 0.01, "relative_step": False, "beta_1": 0.9, "weight_decay": 0.01}),
    ("sgd_cosine_schedule", optim.SGD(optim.cosine_decay(0.1, 10)), {"schedule": "cosine", "init": 0.1, "steps": 10}),
]
for name, opt, config in configs:
    kind = name.split("_")[0]
    p = tomx(params0)
    p1 = opt.apply_gradients(tomx(g1), p)
    mx.eval(p1)
    p2 = opt.apply_gradients(tomx(g2), p1)
    mx.eval(p2)
    opts.append({"name": name, "optimizer": kind, "config": config, "params": flat(tomx(params0)), "grads1": flat(tomx(g1)),
                 "grads2": flat(tomx(g2)), "after1": flat(p1), "after2": flat(p2)})

# Schedules at steps 0..12
sched = []
for name, fn, config in [
    ("linear", optim.linear_schedule(0.0, 0.1, 10), {"init": 0.0, "end": 0.1, "steps": 10}),
    ("cosine", optim.cosine_decay(0.1, 10, 0.01), {"init": 0.1, "steps": 10, "end": 0.01}),
    ("exponential", optim.exponential_decay(0.1, 0.9), {"init": 0.1, "decay_rate": 0.9}),
    ("step", optim.step_decay(0.1, 0.5, 3), {"init": 0.1, "decay_rate": 0.5, "step_size": 3}),
    ("joined", optim.join_schedules([optim.linear_schedule(0.0, 0.1, 4), optim.cosine_decay(0.1, 6)], [4]), {"warmup": 4, "peak": 0.1, "steps": 6}),
]:
    sched.append({"name": name, "config": config, "values": [float(fn(mx.array(s))) for s in range(13)]})

# clip_grad_norm
clip = []
for max_norm in (0.5, 100.0):
    g = tomx(g1)
    clipped, norm = optim.clip_grad_norm(g, max_norm)
    clip.append({"name": f"clip_{max_norm}", "max_norm": max_norm, "grads": flat(g), "clipped": flat(clipped), "norm": float(norm)})

path = os.path.join(OUT, "optimizers.json")
with open(path, "w") as f:
    json.dump({"generator": "Tools/gen_nn_fixtures.py", "cases": opts, "schedules": sched, "clip": clip}, f, indent=0)
print("wrote", os.path.normpath(path), len(opts), "optimizer cases,", len(sched), "schedules,", len(clip), "clip cases")

# ---------------------------------------------------------------- MLX parameter names and shapes
import mlx.nn as mnn

models = {
    "Linear": mnn.Linear(4, 5),
    "Embedding": mnn.Embedding(7, 3),
    "Conv1d": mnn.Conv1d(4, 6, 3, groups=2),
    "Conv2d": mnn.Conv2d(3, 4, (3, 2)),
    "ConvTranspose1d": mnn.ConvTranspose1d(3, 4, 3),
    "ConvTranspose2d": mnn.ConvTranspose2d(2, 3, (2, 3)),
    "LayerNorm": mnn.LayerNorm(6),
    "RMSNorm": mnn.RMSNorm(6),
    "GroupNorm": mnn.GroupNorm(3, 6),
    "BatchNorm": mnn.BatchNorm(4),
    "MultiHeadAttention": mnn.MultiHeadAttention(8, 2, bias=True),
    "Transformer": mnn.Transformer(8, 2, 2, 1, 16),
    "Sequential": mnn.Sequential(mnn.Linear(4, 8), mnn.ReLU(), mnn.Linear(8, 2)),
    "QuantizedLinear": mnn.QuantizedLinear(64, 8, group_size=32, bits=4),
}
keys = []
for name, m in models.items():
    keys.append({"name": name, "parameters": {k: list(v.shape) for k, v in tree_flatten(m.parameters())},
                 "trainable": sorted(k for k, _ in tree_flatten(m.trainable_parameters()))})
path = os.path.join(OUT, "mlx_parameter_names.json")
with open(path, "w") as f:
    json.dump({"generator": "Tools/gen_nn_fixtures.py", "cases": keys}, f, indent=1)
print("wrote", os.path.normpath(path), len(keys), "models")
