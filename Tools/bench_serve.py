#!/usr/bin/env python3
"""Serving benchmark: aggregate generated tokens/s and time to first token
at several concurrencies, for `tessera serve` and llama-cpp-python's server
on the same GGUF, in one run ([serve] issue, docs/PERFORMANCE.md).

Each request is an OpenAI /v1/completions call, streamed, with a prompt of
about 64 tokens and max_tokens 128 at temperature 0. Tokens are counted from
the final usage chunk where the server sends one (stream_options.include_usage),
otherwise as the number of non-empty text chunks. Aggregate tok/s = all tokens
of a round / the round's wall time; TTFT = request start to first text chunk.

Usage:
  python3 Tools/bench_serve.py --tessera .build/release/tessera \
      --llama-python /tmp/llama-venv/bin/python \
      --model ~/.cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf \
      [--concurrency 1,4,8,16] [--rounds 2] [--max-tokens 128] \
      [--llama-settings fair|defaults|both] [--skip-tessera]

Only the standard library: the servers are started as subprocesses on
loopback ports and stopped at the end.
"""

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

PROMPTS = [
    "The history of the lighthouse begins in the ancient world, where fires were lit on hills to guide ships "
    "home. Over the centuries, towers of stone replaced the hills, and keepers tended the flames through the "
    "long nights. In this essay we follow that story from",
    "A recipe for a simple bread: mix flour, water, salt and yeast in a large bowl, then knead the dough for "
    "ten minutes until it is smooth and elastic. Let it rise in a warm place for an hour. The next steps are",
    "In the small mountain village, the winter came early that year. The snow covered the roads, and the "
    "people gathered in the old hall to share food and stories. The oldest woman in the village began to tell",
    "Photosynthesis is the process by which green plants use sunlight to make food from carbon dioxide and "
    "water. It takes place mainly in the leaves, inside small structures called chloroplasts. To understand it",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, path, timeout=180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def one_request(port, prompt, max_tokens, result):
    body = json.dumps({
        "model": "default", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
        "stream": True, "stream_options": {"include_usage": True},
    })
    start = time.perf_counter()
    first = None
    chunks = 0
    usage = None
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status != 200:
        result.update(error=f"HTTP {r.status}: {r.read()[:200]!r}")
        return
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        event = json.loads(data)
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices") or []:
            if choice.get("text"):
                chunks += 1
                if first is None:
                    first = time.perf_counter()
    end = time.perf_counter()
    tokens = usage["completion_tokens"] if usage and usage.get("completion_tokens") else chunks
    result.update(ttft=(first or end) - start, tokens=tokens, seconds=end - start,
                  counted="usage" if usage else "chunks")


def run_round(port, concurrency, max_tokens, index):
    results = [dict() for _ in range(concurrency)]
    threads = [
        threading.Thread(target=one_request,
                         args=(port, PROMPTS[(index + i) % len(PROMPTS)] + f" (part {i})", max_tokens, results[i]))
        for i in range(concurrency)
    ]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        raise RuntimeError(errors[0])
    return wall, results


def percentile(values, p):
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def measure(name, port, concurrencies, rounds, max_tokens):
    rows = {}
    run_round(port, 1, 8, 0)  # warm-up
    for n in concurrencies:
        rates, ttfts, counted, per_request = [], [], set(), []
        for r in range(rounds):
            wall, results = run_round(port, n, max_tokens, r)
            rates.append(sum(x["tokens"] for x in results) / wall)
            ttfts += [x["ttft"] for x in results]
            per_request += [x["tokens"] for x in results]
            counted |= {x["counted"] for x in results}
        rows[n] = dict(rate=statistics.median(rates), p50=percentile(ttfts, 50), p99=percentile(ttfts, 99),
                       counted="/".join(sorted(counted)), per_request=statistics.mean(per_request))
        print(f"{name:10s} concurrency {n:2d}: {rows[n]['rate']:7.1f} tok/s aggregate, "
              f"TTFT p50 {rows[n]['p50'] * 1000:7.0f} ms p99 {rows[n]['p99'] * 1000:7.0f} ms, "
              f"{rows[n]['per_request']:.1f} tokens per request "
              f"(counted from {rows[n]['counted']})", flush=True)
    return rows


def start(cmd, env=None):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)


def stop(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except Exception:
        os.killpg(proc.pid, signal.SIGKILL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", help="the tessera binary (required unless --skip-tessera)")
    ap.add_argument("--llama-python")
    ap.add_argument("--model", required=True)
    ap.add_argument("--concurrency", default="1,4,8,16")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--llama-settings", choices=["fair", "defaults", "both"], default="fair",
                    help="fair: --interrupt_requests False --logits_all False --n_threads_batch THREADS; "
                         "defaults: the server's own (a waiting request cuts the running stream short, "
                         "logits kept for every prompt position, n_threads_batch = all cores); both: one after the other")
    ap.add_argument("--skip-tessera", action="store_true", help="measure only the peer")
    args = ap.parse_args()
    if not args.tessera and not args.skip_tessera:
        ap.error("--tessera is required (or --skip-tessera)")
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    model = os.path.expanduser(args.model)

    results = {}
    if not args.skip_tessera:
        port = free_port()
        proc = start([args.tessera, "serve", "--model", model, "--model-name", "default", "--port", str(port),
                      "--max-concurrency", "16"])
        try:
            if not wait_ready(port, "/health"):
                sys.exit("tessera serve did not become ready")
            results["tessera"] = measure("tessera", port, concurrencies, args.rounds, args.max_tokens)
        finally:
            stop(proc)

    # llama-cpp-python's server runs one request at a time (one context, an
    # async lock around it). As it comes, a request that waits for the lock
    # makes the running stream stop at its next token (interrupt_requests,
    # on by default), so under concurrency most streams end after a few
    # tokens and the time goes to prompts; and it keeps logits for every
    # prompt position (logits_all on): the vocabulary-sized head runs for
    # each prompt token. "fair" turns both off, so every request gets its
    # max_tokens and the figure is its serial throughput.
    fair = ["--interrupt_requests", "False", "--logits_all", "False", "--n_threads_batch", str(args.threads)]
    settings = {"fair": [("llama.cpp", fair)], "defaults": [("llama.cpp defaults", [])],
                "both": [("llama.cpp", fair), ("llama.cpp defaults", [])]}[args.llama_settings]
    for name, extra in settings if args.llama_python else []:
        port = free_port()
        proc = start([args.llama_python, "-m", "llama_cpp.server", "--model", model, "--port", str(port),
                      "--n_threads", str(args.threads), "--n_ctx", "4096"] + extra)
        try:
            if not wait_ready(port, "/v1/models"):
                sys.exit("llama_cpp.server did not become ready")
            results[name] = measure(name, port, concurrencies, args.rounds, args.max_tokens)
        finally:
            stop(proc)

    ours = results.get("tessera")
    peers = [name for name in results if name != "tessera"]
    header = ["concurrency"] + (["Tessera tok/s", "TTFT p50 / p99"] if ours else [])
    for name in peers:
        header += [f"{name} server tok/s (tokens/request)", "TTFT p50 / p99"] + ([f"Tessera/{name}"] if ours else [])
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for n in concurrencies:
        cells = [f"{n}"]
        if ours:
            cells += [f"{ours[n]['rate']:.1f}", f"{ours[n]['p50'] * 1000:.0f} / {ours[n]['p99'] * 1000:.0f} ms"]
        for name in peers:
            peer = results[name][n]
            cells += [f"{peer['rate']:.1f} ({peer['per_request']:.0f})",
                      f"{peer['p50'] * 1000:.0f} / {peer['p99'] * 1000:.0f} ms"]
            if ours:
                cells.append(f"{ours[n]['rate'] / peer['rate']:.2f}×")
        print("| " + " | ".join(cells) + " |")
    if ours and 1 in ours and 8 in ours:
        print(f"\nTessera aggregate at 8 / at 1: {ours[8]['rate'] / ours[1]['rate']:.2f}× (target ≥ 4×)")


if __name__ == "__main__":
    main()
