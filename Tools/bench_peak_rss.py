#!/usr/bin/env python3
"""Peak resident memory of a 128-token generation: `tessera generate` against
llama.cpp (llama-cpp-python) on the same GGUF and prompt, interleaved, in one run.

    python3 Tools/bench_peak_rss.py --tessera .build/release/tessera \
        --llama-python /tmp/llama-venv/bin/python [--model GGUF] [--reps 3] \
        [--bench Benchmarks/.build/release/tessera-bench] [--baseline OTHER/tessera] \
        [--llama-simple /tmp/llama.cpp-build/bin/llama-simple] [--breakdown]

--bench adds `tessera-bench generate-peak-rss` (the same load, chat template
and greedy generation through TextGenerator, without the CLI around it);
--baseline adds another `tessera` binary (an older commit's) to the same run.
--llama-simple adds llama.cpp's own `llama-simple` example binary (no Python
interpreter around it; built from the sources vendored in the
llama-cpp-python sdist, see docs/PERFORMANCE.md): greedy, `-n TOKENS`, the raw
prompt, its own context size (prompt + TOKENS - 1) and thread count (its
library default), since it has no options for them.
--breakdown adds, per native side, one more run whose /proc/PID/smaps is
sampled every few milliseconds; the sample with the largest total Rss is
split by mapping (executable, shared libraries, the model file, heap and
anonymous memory, stacks) — a lower bound of the true peak, which can fall
between samples.

Before each run of a native side, its executable's (and llama.cpp's shared
libraries') page cache is dropped, so that each reads its code from the disk
(see evict_code). Each side runs as a child process; its peak RSS is the kernel's high-water
mark (getrusage ru_maxrss of the reaped child, the same figure as
/proc/PID/status VmHWM or /usr/bin/time -v's "Maximum resident set size").
Both sides: greedy, 128 new tokens, 2 threads, the same prompt text, context
512. The llama.cpp child is a Python interpreter: the script also reports the
interpreter's own peak with llama_cpp imported and no model loaded, so the
model's share can be read as the difference. Prints a Markdown table (medians).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROMPT = ("Write a short story about a lighthouse keeper who finds a message in a bottle. "
          "Describe the sea, the weather and the keeper's thoughts.")

LLAMA_CHILD = r"""
import sys
import llama_cpp
import llama_cpp.llama_cpp as low
if sys.argv[1] != "-":
    d = low.llama_model_default_params
    def params():
        p = d()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False  # the AMX buffer type crashes on these VMs
        return p
    low.llama_model_default_params = params
    llm = llama_cpp.Llama(model_path=sys.argv[1], n_threads=2, n_threads_batch=2, n_ctx=512, verbose=False)
    out = llm.create_completion(sys.argv[2], max_tokens=int(sys.argv[3]), temperature=0.0)
    print(out["usage"]["completion_tokens"], file=sys.stderr)
"""


def evict_code(path):
    """Drops the page cache of an executable and of the shared libraries beside
    it (llama.cpp's libllama/libggml*), so that every run reads its code from
    the disk the same way. How a file came into the page cache decides how
    much of it one fault maps: a binary just written by `cp` sits in large
    folios and a run of it measured 2 MiB more than the same bytes as the
    linker wrote them, or as read back from the disk."""
    real = os.path.realpath(path)
    files = [real]
    folder = os.path.dirname(real)
    if os.path.basename(real).startswith("llama"):
        files += [os.path.join(folder, f) for f in os.listdir(folder) if ".so" in f]
    for f in files:
        try:
            fd = os.open(f, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def peak_kb(argv, env=None):
    """Runs argv to completion; returns (ru_maxrss in KiB, exit status)."""
    if not argv[0].endswith("python3") and "python" not in os.path.basename(argv[0]):
        evict_code(argv[0])
    # stderr goes to a file, not a pipe: llama.cpp logs more than a pipe holds
    # before the child is reaped.
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        log.seek(0)
        err = log.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed ({proc.returncode}): {err[-2000:]}")
    return usage.ru_maxrss


def smaps_by_kind(pid, exe, model):
    """Rss and anonymous KiB of each kind of mapping in /proc/PID/smaps, or None
    once the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps") as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    kinds = {}
    kind = None
    for line in text.splitlines():
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" not in head[0]:
            path = head[5].strip() if len(head) == 6 else ""
            if path == exe:
                kind = "executable"
            elif path == model:
                kind = "model file mapping"
            elif ".so" in os.path.basename(path):
                kind = "shared libraries"
            elif path == "[heap]":
                kind = "[heap] (brk)"
            elif path == "" or path.startswith("[anon"):
                kind = "anonymous mappings (mmap'd malloc, arenas, thread stacks)"
            elif path == "[stack]":
                kind = "main stack"
            else:
                kind = "other: " + path
            kinds.setdefault(kind, [0, 0])
        elif kind and line.startswith("Rss:"):
            kinds[kind][0] += int(line.split()[1])
        elif kind and line.startswith("Anonymous:"):
            kinds[kind][1] += int(line.split()[1])
    return kinds


def print_breakdown(label, argv, env, model):
    """Runs argv once, sampling its smaps; prints the largest sample by kind."""
    exe = os.path.realpath(argv[0])
    model = os.path.realpath(model)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    best, best_total = {}, -1
    while proc.poll() is None:
        kinds = smaps_by_kind(proc.pid, exe, model)
        if kinds:
            total = sum(v[0] for v in kinds.values())
            if total > best_total:
                best, best_total = kinds, total
        time.sleep(0.003)
    print(f"\n{label}: largest sampled Rss {best_total / 1024:.1f} MiB (exit {proc.returncode}), by mapping:")
    print("| mapping | Rss MiB | of it anonymous MiB |")
    print("|---|---|---|")
    for kind, (rss, anon) in sorted(best.items(), key=lambda kv: -kv[1][0]):
        if rss >= 64:
            print(f"| {kind} | {rss / 1024:.1f} | {anon / 1024:.1f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera")
    ap.add_argument("--bench")
    ap.add_argument("--baseline")
    ap.add_argument("--llama-python", default="python3",
                    help="a python with llama_cpp; 'none' leaves llama-cpp-python out (then --llama-simple is the peer)")
    ap.add_argument("--model", default=os.path.expanduser(
        "~/.cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--llama-simple")
    ap.add_argument("--breakdown", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ, TESSERA_NUM_THREADS="2")
    n = str(args.tokens)
    sides = []  # (label, argv)
    if args.tessera:
        sides.append(("tessera generate", [args.tessera, "generate", "-m", args.model, "-p", PROMPT, "-n", n, "--temp", "0"]))
    if args.baseline:
        sides.append(("baseline tessera generate",
                      [args.baseline, "generate", "-m", args.model, "-p", PROMPT, "-n", n, "--temp", "0"]))
    if args.bench:
        sides.append(("tessera-bench generate-peak-rss", [args.bench, "generate-peak-rss", args.model, PROMPT, n]))
    if args.llama_simple:
        sides.append(("llama.cpp llama-simple", [args.llama_simple, "-m", args.model, "-n", n, PROMPT]))
    with_python = args.llama_python != "none"
    if not with_python and not args.llama_simple:
        ap.error("--llama-python none needs --llama-simple (a peer)")
    if with_python:
        sides.append(("llama.cpp (python + model)", [args.llama_python, "-c", LLAMA_CHILD, args.model, PROMPT, n]))
        sides.append(("python + llama_cpp, no model", [args.llama_python, "-c", LLAMA_CHILD, "-", "", "0"]))
    runs = {label: [] for label, _ in sides}
    for _ in range(args.reps):
        for label, argv in sides:
            runs[label].append(peak_kb(argv, env))
    mb = lambda label: statistics.median(runs[label]) / 1024
    reference = "llama.cpp (python + model)" if with_python else "llama.cpp llama-simple"
    llama = mb(reference)
    share = (f"; llama.cpp's model share = its run minus the bare interpreter "
             f"({llama - mb('python + llama_cpp, no model'):.1f} MiB)") if with_python else ""
    print(f"model {args.model} ({os.path.getsize(args.model) / 2**20:.1f} MiB), {args.tokens} tokens, greedy, 2 threads, "
          f"{args.reps} interleaved runs, medians of peak RSS (MiB){share}")
    print(f"| process | peak RSS | / {reference} |")
    print("|---|---|---|")
    for label, _ in sides:
        print(f"| {label} | {mb(label):.1f} MiB | {mb(label) / llama:.2f} |")
    print("raw KiB:", runs)
    if args.breakdown:
        for label, argv in sides:
            if label.startswith("llama.cpp (python") or label.startswith("python"):
                continue
            print_breakdown(label, argv, env, args.model)

if __name__ == "__main__":
    main()
