#!/usr/bin/env python3
"""Where a decode step's time goes, from a `perf record -g` of the lm suite.

    TESSERA_BENCH_NO_PEERS=1 TESSERA_BENCH_REPS=1 TESSERA_BENCH_LONG_REPS=0 \\
      quiet perf record -F 1999 -g -o decode.data Benchmarks/.build/release/tessera-bench lm
    perf script -i decode.data -F tid,time,ip,sym > decode.txt
    python3 Tools/decode_profile_split.py decode.txt

Decode windows are the stretches where the process's first thread (the one
that calls `TokenGenerator.next`) has `next` on its stack (gaps under 20 ms
joined, windows over 100 ms kept); every sample of any thread inside them is
classified by its innermost frame: quantized products (qmv, the tied head
included), attention, the small row kernels (norms, rope, adds, copies,
embedding rows), the pool's hand-off and spinning, the OS, and the rest:
host work (graph building, ordering, scheduling, allocation, reference
counting). Prints each class's share, split by the calling thread and the
pool's workers, and the top host symbols."""
import collections
import re
import sys


def read_samples(path):
    samples, cur = [], None
    for line in open(path, errors="replace"):
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
            continue
        head = re.match(r"\s*(\d+)\s+([\d.]+):", line)
        if head and not line.startswith("\t"):
            cur = (int(head.group(1)), float(head.group(2)), [])
            continue
        if cur is not None:
            parts = line.strip().split(None, 1)
            cur[2].append(parts[1] if len(parts) > 1 else "?")
    if cur:
        samples.append(cur)
    return samples


def category(stack):
    top = stack[0] if stack else "?"
    if re.search(r"qmv|qx_", top):
        return "quantized products (qmv, head included)"
    if re.search(r"attention|exp_row|softmax", top):
        return "attention"
    if re.search(r"rms|rope|binary_f32|unary|dequantize_rows|copyElements|memmove|memcpy|silu|FastKernel", top):
        return "small row kernels (norm, rope, add, copy, embedding)"
    if re.search(r"workerLoop|sched_yield|parallelFor|spin_pause", top):
        return "pool hand-off and spinning"
    if top.startswith("ffffffff") or re.match(r"^(__schedule|_raw|do_|finish_task|exc_page|clear_page|asm_)", top):
        return "OS"
    return "host (graph, ordering, scheduling, allocation, refcounting)"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    samples = read_samples(sys.argv[1])
    if not samples:
        sys.exit("no samples")
    caller = samples[0][0]
    times = sorted(t for tid, t, st in samples if tid == caller and any("TokenGeneratorV4next" in s for s in st))
    windows = []
    for t in times:
        if windows and t - windows[-1][1] < 0.02:
            windows[-1][1] = t
        else:
            windows.append([t, t])
    windows = [w for w in windows if w[1] - w[0] > 0.1]
    decode = [s for s in samples if any(a <= s[1] <= b for a, b in windows)]
    if not decode:
        sys.exit("no decode window found")
    total = len(decode)
    print(f"decode windows: {', '.join(f'{b - a:.2f} s' for a, b in windows)}; {total} samples of {len(samples)}")
    shares, by_thread = collections.Counter(), collections.Counter()
    for tid, _, st in decode:
        c = category(st)
        shares[c] += 1
        by_thread[(tid == caller, c)] += 1
    for c, n in shares.most_common():
        print(f"{100 * n / total:5.1f}%  {c}  (calling thread {100 * by_thread[(True, c)] / total:.1f}%,"
              f" pool workers {100 * by_thread[(False, c)] / total:.1f}%)")
    workers = sum(1 for s in decode if s[0] != caller)
    print(f"pool workers' samples: {workers} ({100 * workers / total:.1f}% of the decode samples)")
    host = collections.Counter(st[0] for _, _, st in decode if category(st).startswith("host"))
    print("top host symbols:")
    for sym, n in host.most_common(12):
        print(f"  {100 * n / total:5.2f}%  {sym[:110]}")


if __name__ == "__main__":
    main()
