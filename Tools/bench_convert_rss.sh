#!/bin/bash
# Peak RSS of `tessera convert` (GNU time's "Maximum resident set size"), run
# in turn ROUNDS times each (medians by eye: the figures vary by a few MB):
#   - the default model's GGUF to the default 4-bit folder, in blocks of rows
#     (the default) and whole tensors (TESSERA_CONVERT_BLOCK=0, the code
#     before the blocks), with the SHA-256 of each model.safetensors (the
#     bytes must be equal);
#   - a bfloat16 Hugging Face folder (BF16_FOLDER) to 4-bit group 64, beside
#     mlx-lm's `mlx_lm.convert -q` of the same folder (the peer).
# Usage: quiet Tools/bench_convert_rss.sh [TESSERA_BINARY] [ROUNDS]
set -u
BIN=${1:-.build/release/tessera}
ROUNDS=${2:-2}
GGUF=${GGUF:-$HOME/.cache/tessera/models/SmolLM2-135M-Instruct.Q4_1.gguf}
BF16_FOLDER=${BF16_FOLDER:-$HOME/.cache/tessera/bench/smollm2-bfloat16}
PY=${PYTHON:-python3}
WORK=$(mktemp -d /tmp/convert-rss.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

peak() {  # peak() LABEL OUTPUT_DIR COMMAND...: one line with peak RSS, output size, hash
    local label=$1 out=$2
    shift 2
    rm -rf "$out"
    /usr/bin/time -v "$@" >"$WORK/stdout" 2>"$WORK/stderr" || { echo "$label: failed"; tail -5 "$WORK/stderr"; return; }
    local kb size hash
    kb=$(grep "Maximum resident set size" "$WORK/stderr" | awk '{print $NF}')
    size=$(du -sb "$out" | cut -f1)
    hash=$(sha256sum "$out"/*.safetensors 2>/dev/null | cut -c1-16 | tr '\n' ' ')
    printf "%-44s peak %7.1f MB   output %6.1f MB   ratio %.2f   %s\n" "$label" \
        "$(echo "$kb / 1000" | bc -l)" "$(echo "$size / 1000000" | bc -l)" "$(echo "$kb * 1000 / $size" | bc -l)" "$hash"
}

for round in $(seq "$ROUNDS"); do
    echo "round $round"
    peak "GGUF -> 4-bit, blocks of rows" "$WORK/gguf-blocks" "$BIN" convert -m "$GGUF" -o "$WORK/gguf-blocks"
    peak "GGUF -> 4-bit, whole tensors" "$WORK/gguf-whole" env TESSERA_CONVERT_BLOCK=0 "$BIN" convert -m "$GGUF" -o "$WORK/gguf-whole"
    if [ -d "$BF16_FOLDER" ]; then
        peak "bf16 folder -> 4-bit g64, blocks of rows" "$WORK/bf16-blocks" "$BIN" convert -m "$BF16_FOLDER" -o "$WORK/bf16-blocks"
        peak "bf16 folder -> 4-bit g64, whole tensors" "$WORK/bf16-whole" env TESSERA_CONVERT_BLOCK=0 "$BIN" convert -m "$BF16_FOLDER" -o "$WORK/bf16-whole"
        peak "bf16 folder -> 4-bit g64, mlx_lm.convert" "$WORK/bf16-mlx" "$PY" -m mlx_lm convert --hf-path "$BF16_FOLDER" \
            --mlx-path "$WORK/bf16-mlx" -q --q-bits 4 --q-group-size 64
    fi
done
