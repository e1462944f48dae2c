#!/usr/bin/env bash
# Compare decode/prefill of two builds of Tessera in one window, alternating.
#
#   Tools/bench_two_builds.sh WORKTREE_A WORKTREE_B [ROUNDS]
#
# Each worktree needs its release bench binary first:
#   swift build -c release --package-path WORKTREE/Benchmarks
# Run it under the machine lock (`quiet`) on a shared box. Prints each
# round's `tessera-bench lm` table (no peer: same model, same settings).
set -euo pipefail
a=${1:?worktree A}; b=${2:?worktree B}; rounds=${3:-3}
for ((i = 1; i <= rounds; i++)); do
    for w in "$a" "$b"; do
        echo "=== $w round $i"
        TESSERA_BENCH_NO_PEERS=1 TESSERA_BENCH_REPS=2 "$w/Benchmarks/.build/release/tessera-bench" lm 2>&1 |
            grep -iE "tok/s|prefill|decode" | head -8
    done
done
