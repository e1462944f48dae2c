#!/usr/bin/env bash
# Data-parallel `tessera lora` on 2 local ranks against 1 process, interleaved:
# the same model, data and global batch; each run's steady It/sec (the last
# report, after warm-up) and, on 2 ranks, the per-step gradient-averaging time
# the trainer reports. Usage:
#   Tools/bench_lora_dp.sh [TESSERA_BINARY] [MODEL] [REPEATS]
# (defaults: .build/release/tessera, the cached SmolLM2 Q4_1 GGUF, 3).
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.build/release/tessera}"
model="${2:-$HOME/.cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf}"
repeats="${3:-3}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
common=(lora --model "$model" --train --data Tests/Fixtures/lora --mask-prompt --batch-size 8 --num-layers 8
    --iters "${ITERS:-30}" --steps-per-report "${REPORT:-10}" --steps-per-eval 100000 --val-batches 1 --learning-rate 1e-4)
echo "lscpu: $(lscpu | grep 'Model name' | sed 's/.*: *//'); nproc $(nproc); load $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$repeats"); do
    "$bin" "${common[@]}" --adapter-path "$out/one" >"$out/one.log" 2>/dev/null
    one="$(grep 'Train loss' "$out/one.log" | tail -1 | sed 's/.*It\/sec \([0-9.]*\).*/\1/')"
    "$bin" launch -n 2 --timeout 120 -- "$bin" "${common[@]}" --adapter-path "$out/two" >"$out/two.log" 2>/dev/null
    two="$(grep '^\[0\].*Train loss' "$out/two.log" | tail -1 | sed 's/.*It\/sec \([0-9.]*\).*/\1/')"
    comm="$(grep '^\[0\].*Gradient averaging' "$out/two.log" | tail -1 | sed 's/.*averaging \([0-9.]*\) ms.*/\1/')"
    echo "run $i: 1 process $one it/s; 2 ranks $two it/s (speed-up $(python3 -c "print(f'{$two/$one:.2f}')")×); gradient averaging $comm ms/step; load $(cut -d' ' -f1 /proc/loadavg)"
done
