#!/usr/bin/env python3
"""Writes Sources/tessera/hot-code.order: the functions that generation runs,
for the linker to place side by side in the `tessera` executable (lld's
--symbol-ordering-file; Package.swift, release builds on Linux).

    # 1. the functions callgrind sees generation run (3 minutes):
    python3 Tools/gen_code_order.py --tessera .build/release/tessera \
        --model ~/.cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf
    # 2. relink (rm .build/release/tessera; swift build -c release ...), then
    #    add what the native run keeps resident outside the list (root); repeat
    #    2-3 times, relinking each time, until few pages remain outside:
    python3 Tools/gen_code_order.py --tessera .build/release/tessera --model ... --probe

Why: the kernel maps up to 16 neighbouring pages of the executable on each
fault, so the resident code of a `generate` is not the code it runs but every
64 KiB window that holds some of it; with the functions that prefill and decode
run scattered over a 51 MB text segment, that was ~10 MiB at the peak
(docs/PERFORMANCE.md). Placed together, they fill whole windows.

Step 1: the binary runs twice under valgrind's callgrind (which counts the
instructions each function executes): `tessera tokenize` (load the model and
tokenize the prompt: the start-up) and `tessera generate` (the same, then
prefill and decode). A function is listed when the generation ran more of its
instructions than the start-up did: code that only loading runs (parsing the
GGUF, the tokenizer, the argument parser) is left where it was, since
`CodePages.release()` drops those pages after loading. Swift's hashing is made
deterministic for both runs so that a load function's count cannot differ
between them by chance. Hottest first.

Step 2 (--probe): valgrind runs no AVX-512, so the native run takes paths
callgrind never saw. A long native generation (and a long prompt's prefill) runs with the block device's
readahead off and the binary's cached pages evicted once loading is over: each
code page is then read alone when run, and the fault-around can map only
pages already run. The functions on the resident pages outside the listed ones
are appended (a page holds several functions: some run, some neighbours).

Functions renamed since the list was written are simply not placed (lld's
--no-warn-symbol-ordering), so a stale list costs memory, never correctness.
"""
import argparse
import collections
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

PROMPT = ("Write a short story about a lighthouse keeper who finds a message in a bottle. "
          "Describe the sea, the weather and the keeper's thoughts.")


def self_costs(path, binary):
    """Instructions executed in each function of `binary` (self cost), from a
    callgrind output file written with --demangle=no."""
    names = {}
    objects = {}
    costs = collections.Counter()
    current_ob = None
    fn_ob = None
    fn = None
    skip_next = False
    real_binary = os.path.realpath(binary)

    def parse_named(value, table):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?$", value)
        if not m:
            return value
        key = m.group(1)
        if m.group(2) is not None:
            table[key] = m.group(2)
        return table.get(key, key)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("ob="):
                current_ob = parse_named(line[3:], objects)
            elif line.startswith("fl=") or line.startswith("fi=") or line.startswith("fe="):
                continue
            elif line.startswith("fn="):
                fn = parse_named(line[3:], names)
                fn_ob = current_ob
            elif line.startswith("cob="):
                parse_named(line[4:], objects)
            elif line.startswith("cfn="):
                parse_named(line[4:], names)
            elif line.startswith("cfi=") or line.startswith("cfl="):
                continue
            elif line.startswith("calls="):
                skip_next = True  # the next cost line is the call's inclusive cost
            elif line[0].isdigit() or line[0] in "+-*":
                if skip_next:
                    skip_next = False
                    continue
                parts = line.split()
                if fn is not None and len(parts) >= 2 and fn_ob is not None:
                    if os.path.realpath(fn_ob) == real_binary:
                        try:
                            costs[fn] += int(parts[1])
                        except ValueError:
                            pass
    return costs


def callgrind(binary, args, out):
    env = dict(os.environ, SWIFT_DETERMINISTIC_HASHING="1", TESSERA_NUM_THREADS="2")
    cmd = ["valgrind", "--tool=callgrind", "--demangle=no", "--dump-line=no",
           f"--callgrind-out-file={out}", binary] + args
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)


def symbols(binary):
    """(address, size, name) of every function in `binary`, by address."""
    out = subprocess.run(["nm", "-n", "-S", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tTwW":
            rows.append((int(f[0], 16), int(f[1], 16), f[3]))
    return rows


def resident_text_pages(binary, model, prompt, tokens, evict_at, snapshot_at):
    """The pages of `binary`'s code resident late in a long generation, read from
    /proc/PID/pagemap, with the page cache's readahead off and the binary's
    cached pages evicted once loading is over: each page is then read alone
    when run, and the kernel's fault-around can only map pages already run
    (root only: it sets /sys/block/*/queue/read_ahead_kb for a few seconds)."""
    device = subprocess.run(["findmnt", "-n", "-o", "SOURCE", "--target", os.path.dirname(os.path.realpath(binary))],
                            capture_output=True, text=True, check=True).stdout.strip()
    ra = f"/sys/block/{os.path.basename(device)}/queue/read_ahead_kb"
    copy = binary + ".probe"
    shutil.copy(binary, copy)

    def evict():
        fd = os.open(copy, os.O_RDONLY)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)

    evict()
    old = open(ra).read().strip()
    present = []
    try:
        open(ra, "w").write("0")
        p = subprocess.Popen([copy, "generate", "-m", model, "-p", prompt, "-n", str(tokens), "--temp", "0"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, TESSERA_NUM_THREADS="2"))
        time.sleep(evict_at)
        evict()
        time.sleep(snapshot_at - evict_at)
        os.kill(p.pid, signal.SIGSTOP)
        with open(f"/proc/{p.pid}/maps") as maps, open(f"/proc/{p.pid}/pagemap", "rb") as pagemap:
            for line in maps:
                f = line.split()
                if len(f) < 6 or os.path.realpath(f[5]) != os.path.realpath(copy) or "x" not in f[1]:
                    continue
                a, b = (int(x, 16) for x in f[0].split("-"))
                pagemap.seek(a // 4096 * 8)
                data = pagemap.read((b - a) // 4096 * 8)
                for i in range(len(data) // 8):
                    if struct.unpack_from("<Q", data, i * 8)[0] >> 63:
                        present.append(int(f[2], 16) + i * 4096)
        os.kill(p.pid, signal.SIGCONT)
        p.kill()
        p.wait()
    finally:
        open(ra, "w").write(old)
        os.remove(copy)
    # File offsets to addresses: the executable segment's virtual address minus its offset.
    delta = 0
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[-2]:
            delta = int(f[2], 16) - int(f[1], 16)
    return sorted({(o + delta) // 4096 for o in present})


def probe(a):
    """Appends to the list the functions on resident code pages outside the
    listed ones, in address order (a page holds several functions: some run,
    some neighbours)."""
    listed = [l.strip() for l in open(a.out) if l.strip()]
    names = set(listed)
    rows = symbols(a.tessera)
    placed = [(addr, size) for addr, size, name in rows if name in names]
    lo, hi = min(x[0] for x in placed), max(x[0] + x[1] for x in placed)
    # Late in a long decode, and in the middle of a long prompt's prefill (the
    # CLI drops the prefill's code pages once the first token is out).
    resident = set(resident_text_pages(a.tessera, a.model, PROMPT, 600, 0.8, 2.0))
    resident |= set(resident_text_pages(a.tessera, a.model, " ".join([PROMPT] * 80), 1, 0.8, 1.8))
    pages = [pg for pg in sorted(resident) if not (lo // 4096 <= pg <= hi // 4096)]
    pageset = set(pages)
    added = []
    for addr, size, name in rows:
        if name in names:
            continue
        if any(pg in pageset for pg in range(addr // 4096, (addr + max(size, 1) - 1) // 4096 + 1)):
            names.add(name)
            added.append(name)
    # A listed function in a section with much unlisted code after it (an
    # object built without function sections: a dependency's, a library's)
    # drags that code into the list's region: such functions go last, so that
    # the functions of their own sections stay together at its start.
    where = {name: (addr, size) for addr, size, name in rows if name in set(listed)}
    by_address = sorted((where[n][0], n) for n in listed if n in where)
    bulky = set()
    for (addr, name), (next_addr, _) in zip(by_address, by_address[1:]):
        if next_addr - (addr + where[name][1]) > 8192:
            bulky.add(name)
    listed = [n for n in listed if n not in bulky] + [n for n in listed if n in bulky]
    with open(a.out + ".tmp", "w") as f:
        f.write("\n".join(listed + added) + "\n")
    os.replace(a.out + ".tmp", a.out)
    print(f"{a.out}: {len(pages)} resident pages outside the listed functions' {(hi - lo) / 2**20:.2f} MiB; "
          f"{len(added)} functions added, {len(bulky)} in sections with unlisted code moved last", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tessera", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--out", default="Sources/tessera/hot-code.order")
    ap.add_argument("--probe", action="store_true",
                    help="add the functions on resident pages outside the list (binary linked with the list; root)")
    a = ap.parse_args()
    if a.probe:
        probe(a)
        return
    with tempfile.TemporaryDirectory() as tmp:
        # valgrind 3.19 cannot read the toolchain's DWARF 5: run a copy without
        # debug information (the symbol table, which names the functions, stays).
        binary = os.path.join(tmp, "tessera")
        subprocess.run(["objcopy", "--strip-debug", a.tessera, binary], check=True)
        load_out = os.path.join(tmp, "load.out")
        gen_out = os.path.join(tmp, "generate.out")
        callgrind(binary, ["tokenize", "--model", a.model, "--text", PROMPT], load_out)
        callgrind(binary, ["generate", "--model", a.model, "--prompt", PROMPT,
                           "--max-tokens", str(a.tokens), "--temperature", "0"], gen_out)
        load = self_costs(load_out, binary)
        gen = self_costs(gen_out, binary)
    hot = [f for f, c in gen.items() if c > load.get(f, 0)]
    hot.sort(key=lambda f: (-gen[f], f))
    with open(a.out + ".tmp", "w") as f:
        f.write("\n".join(hot) + "\n")
    os.replace(a.out + ".tmp", a.out)
    print(f"{a.out}: {len(hot)} functions generation runs more than loading (of {len(gen)} run)", file=sys.stderr)


if __name__ == "__main__":
    main()
