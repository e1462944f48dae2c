#!/usr/bin/env python3
"""Peer timings for tessera-bench: the same cases in numpy (and torch when
installed), run as a subprocess of the benchmark so both come from one run.

Usage: peers.py CASE... ; prints one JSON object {case: {"numpy": s, "torch": s}}
with median seconds per call (null where a peer has no such op).

peers.py --llama GGUF --tokens 1,2,3 --generate N --threads T --reps R runs
the lm suite's peer: llama.cpp (llama-cpp-python) on the GGUF, and prints
{"prefill_tps", "decode_tps", "tokens"} (medians over R repetitions after one
warm-up) or {"error": why} when llama_cpp cannot be imported or fails."""
import json
import statistics
import sys
import time

import numpy as np

try:
    import torch
    torch.set_grad_enabled(False)
except ImportError:  # torch is optional
    torch = None


def median_time(fn, reps, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def reps_for(case):
    if case.startswith("qmv4_smol"):
        return 101  # microseconds per call
    return 3 if "4096" in case and "matmul" in case else 7


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_layernorm(x, w, b, eps=1e-5):
    m = x.mean(axis=-1, keepdims=True)
    v = x.var(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


def np_rmsnorm(x, w, eps=1e-5):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


def case_fns(case):
    """(numpy fn, torch fn or None) for one case name."""
    rng = np.random.default_rng(0)
    f32 = np.float32
    if case.startswith("matmul_f32_"):
        n = int(case.split("_")[2])
        a, b = rng.standard_normal((n, n), dtype=f32), rng.standard_normal((n, n), dtype=f32)
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
        return (lambda: a @ b), (lambda: ta @ tb) if torch else None
    if case == "matmul_f16_1024":
        a, b = rng.standard_normal((1024, 1024), dtype=f32).astype(np.float16), rng.standard_normal((1024, 1024), dtype=f32).astype(np.float16)
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
        return (lambda: a @ b), (lambda: ta @ tb) if torch else None
    if case == "matmul_bf16_1024":
        a, b = rng.standard_normal((1024, 1024), dtype=f32), rng.standard_normal((1024, 1024), dtype=f32)
        if not torch:
            return None, None
        ta, tb = torch.from_numpy(a).bfloat16(), torch.from_numpy(b).bfloat16()
        return None, (lambda: ta @ tb)
    if case in ("gemv_f16_4096", "gemv_bf16_4096"):
        w, x = rng.standard_normal((4096, 4096), dtype=f32), rng.standard_normal(4096, dtype=f32)
        dt = np.float16 if case == "gemv_f16_4096" else None
        tdt = torch.float16 if case == "gemv_f16_4096" else torch.bfloat16
        wn, xn = (w.astype(dt), x.astype(dt)) if dt else (None, None)
        tw, tx = (torch.from_numpy(w).to(tdt), torch.from_numpy(x).to(tdt)) if torch else (None, None)
        return ((lambda: wn @ xn) if dt else None), ((lambda: tw @ tx) if torch else None)
    if case == "gemv_f32_4096":
        w, x = rng.standard_normal((4096, 4096), dtype=f32), rng.standard_normal(4096, dtype=f32)
        tw, tx = (torch.from_numpy(w), torch.from_numpy(x)) if torch else (None, None)
        return (lambda: w @ x), (lambda: tw @ tx) if torch else None
    n16 = 1 << 24
    if case in ("add_16M", "exp_16M", "sum_16M"):
        a, b = rng.standard_normal(n16, dtype=f32), rng.standard_normal(n16, dtype=f32)
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch else (None, None)
        if case == "add_16M":
            return (lambda: a + b), (lambda: ta + tb) if torch else None
        if case == "exp_16M":
            return (lambda: np.exp(a)), (lambda: torch.exp(ta)) if torch else None
        return (lambda: a.sum()), (lambda: ta.sum()) if torch else None
    if case in ("softmax_4096x4096", "layernorm_4096x4096", "rmsnorm_4096x4096"):
        x = rng.standard_normal((4096, 4096), dtype=f32)
        w, b = rng.standard_normal(4096, dtype=f32), rng.standard_normal(4096, dtype=f32)
        tx, tw, tb = (torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)) if torch else (None,) * 3
        if case.startswith("softmax"):
            return (lambda: np_softmax(x)), (lambda: torch.softmax(tx, -1)) if torch else None
        if case.startswith("layernorm"):
            return (lambda: np_layernorm(x, w, b)), (
                lambda: torch.nn.functional.layer_norm(tx, (4096,), tw, tb, 1e-5)) if torch else None
        tfn = None
        if torch is not None and hasattr(torch.nn.functional, "rms_norm"):
            tfn = lambda: torch.nn.functional.rms_norm(tx, (4096,), tw, 1e-5)
        return (lambda: np_rmsnorm(x, w)), tfn
    if case.startswith(("qmv4_", "qmv8_", "gemvsmol_")):
        # No 4- or 8-bit peer: the float32 matrix-vector product of the same
        # shape (8x or 4x the weight bytes) is shown for context. Shape:
        # 4096x4096, or N x K from an id ending in _<N>x<K>.
        n, k = 4096, 4096
        if "x" in case.rsplit("_", 1)[-1]:
            n, k = (int(v) for v in case.rsplit("_", 1)[-1].split("x"))
        w, x = rng.standard_normal((n, k), dtype=f32), rng.standard_normal(k, dtype=f32)
        tw, tx = (torch.from_numpy(w), torch.from_numpy(x)) if torch else (None, None)
        return (lambda: w @ x), (lambda: tw @ tx) if torch else None
    return None, None


def llama_peer(model, tokens, steps, threads, reps):
    """The prompt evaluated in one batch, then `steps` greedy steps (argmax of
    the last logits, then one eval of that token), end-of-sequence ignored:
    the same work as the Tessera side of the lm suite."""
    try:
        import llama_cpp
    except ImportError as e:
        return {"error": f"llama_cpp not importable by {sys.executable} ({e}); set TESSERA_BENCH_LLAMA_PYTHON"}
    # Without extra buffer types: their AMX path crashes in this VM (SIGSEGV in
    # ggml_backend_amx_mul_mat, llama-cpp-python 0.3.36), so llama.cpp runs its
    # ordinary CPU kernels (AVX-512 VNNI for Q4_1 x Q8_1 dot products).
    import llama_cpp.llama_cpp as low_level
    default_params = low_level.llama_model_default_params

    def model_params():
        params = default_params()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    low_level.llama_model_default_params = model_params
    llm = llama_cpp.Llama(model_path=model, n_threads=threads, n_threads_batch=threads,
                          n_ctx=len(tokens) + steps + 16, n_batch=max(512, len(tokens)),
                          logits_all=False, verbose=False)
    n_vocab = llm.n_vocab()

    def last_argmax():
        row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
        return int(np.argmax(row))

    def run(prompt, n):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        picked = []
        for _ in range(n):
            picked.append(last_argmax())
            llm.eval([picked[-1]])
        t2 = time.perf_counter()
        return len(prompt) / (t1 - t0), (n / (t2 - t1) if n else 0.0), picked

    run(tokens[:16], 8)  # warm-up
    results = [run(tokens, steps) for _ in range(reps)]
    return {"prefill_tps": statistics.median(r[0] for r in results),
            "decode_tps": statistics.median(r[1] for r in results),
            "tokens": results[0][2],
            "version": getattr(llama_cpp, "__version__", "?")}


def transformers_peer(folder, tokens, lengths, steps, threads, reps):
    """The floatlm suite's peer: transformers + torch (CPU) on the same Hugging
    Face folder, in the folder's own dtype, `threads` threads. For each prompt
    length L in `lengths`: tokens[:L] evaluated in one forward pass (prefill),
    then, after the first length only, `steps` greedy steps (argmax of the last
    logits, one forward pass of that token with the KV cache), end-of-sequence
    ignored: the same work as the Tessera side."""
    try:
        import torch as t
        import transformers
    except ImportError as e:
        return {"error": f"transformers/torch not importable by {sys.executable} ({e})"}
    t.set_num_threads(threads)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype="auto")
    model.eval()

    def run(prompt, n):
        ids = t.tensor([prompt])
        with t.inference_mode():
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True)
            t1 = time.perf_counter()
            past, logits, picked = out.past_key_values, out.logits, []
            for _ in range(n):
                picked.append(int(logits[0, -1].argmax()))
                out = model(input_ids=t.tensor([[picked[-1]]]), past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits
            t2 = time.perf_counter()
        return len(prompt) / (t1 - t0), (n / (t2 - t1)) if n else None, picked

    run(tokens[:16], 4)  # warm-up
    out = {"version": transformers.__version__, "torch": t.__version__,
           "dtype": str(next(model.parameters()).dtype), "prefill_tps": {}}
    for i, length in enumerate(lengths):
        results = [run(tokens[:length], steps if i == 0 else 0) for _ in range(reps)]
        out["prefill_tps"][str(length)] = statistics.median(r[0] for r in results)
        if i == 0:
            out["decode_tps"] = statistics.median(r[1] for r in results)
            out["tokens"] = results[0][2]
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--llama":
        args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        try:
            out = llama_peer(args["--llama"], [int(t) for t in args["--tokens"].split(",")],
                             int(args.get("--generate", 128)), int(args.get("--threads", 2)),
                             int(args.get("--reps", 5)))
        except Exception as e:  # the benchmark reports it instead of failing
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--transformers":
        args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
        try:
            out = transformers_peer(args["--transformers"], [int(t) for t in args["--tokens"].split(",")],
                                    [int(n) for n in args.get("--lengths", "128").split(",")],
                                    int(args.get("--generate", 128)), int(args.get("--threads", 2)),
                                    int(args.get("--reps", 1)))
        except Exception as e:  # the benchmark reports it instead of failing
            out = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(out))
        return
    out = {}
    for case in sys.argv[1:]:
        fn_np, fn_torch = case_fns(case)
        r = {"numpy": None, "torch": None}
        if fn_np:
            r["numpy"] = median_time(fn_np, reps_for(case))
        if fn_torch:
            r["torch"] = median_time(fn_torch, reps_for(case))
        out[case] = r
    print(json.dumps(out))


if __name__ == "__main__":
    main()
