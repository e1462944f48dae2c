#!/usr/bin/env bash
# Coverage-guided fuzzing of Tessera's input parsers (libFuzzer + AddressSanitizer).
#
#   Tools/fuzz.sh                      every target, TESSERA_FUZZ_SECONDS (default 40) each
#   TESSERA_FUZZ_SECONDS=600 Tools/fuzz.sh gguf template    two targets, 10 minutes each
#
# Targets (Fuzz/Sources/tessera-fuzz/Fuzz.swift): gguf (reader, model
# configuration and loading, tokenizer metadata), safetensors, config
# (config.json of every architecture), tokenizer (tokenizer.json + encode),
# template (chat template parse + render under tight limits), prompt-cache
# (reader against the qwen2 fixture model's cache layout), npy, npz.
# Seeds: Fuzz/corpus/<target> (committed, small) plus fixture files under
# Tests/Fixtures; the growing corpus is kept in .build-fuzz/corpus/<target>.
# Any crash, sanitizer report, leak, out-of-memory (-rss_limit_mb) or
# input slower than -timeout fails the run; the input is saved as
# .build-fuzz/<target>-crash-* (reproduce: TESSERA_FUZZ_TARGET=<target>
# TESSERA_FUZZ_MODEL=Tests/Fixtures/lm/qwen2 <binary> <file>).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${TESSERA_FUZZ_SECONDS:-40}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(gguf safetensors config tokenizer template npy npz prompt-cache); fi
work=.build-fuzz
# swiftc adds no coverage instrumentation for -sanitize=fuzzer at -O (checked with Swift 6.3.1:
# objects without __sancov sections), so it is asked for explicitly, in the form
# this libFuzzer reads (inline 8-bit counters + PC table; trace-pc-guard is refused).
flags=(-c release --sanitize fuzzer --sanitize address
    -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)

swift build --package-path Fuzz "${flags[@]}"
binary="$(swift build --package-path Fuzz "${flags[@]}" --show-bin-path)/tessera-fuzz"

seeds_for() {
    case "$1" in
    gguf) echo Tests/Fixtures/lm/gguf/llama3/model.gguf Tests/Fixtures/lm/gguf/gemma2/model.gguf ;;
    safetensors) echo Tests/Fixtures/lm/qwen3_mlx_q4/model.safetensors ;;
    tokenizer) echo Tests/Fixtures/tokenizers/gpt2-bpe/tokenizer.json Tests/Fixtures/tokenizers/llama2-spm/tokenizer.json ;;
    template) echo Tests/Fixtures/chat_templates/qwen3.jinja Tests/Fixtures/chat_templates/llama-3.1.jinja ;;
    npy) echo Tests/Fixtures/io/fortran.npy Tests/Fixtures/io/scalar.npy ;;
    npz) echo Tests/Fixtures/io/sample.npz Tests/Fixtures/io/sample_compressed.npz ;;
    esac
}

status=0
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus"
    cp -n Fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
    for seed in $(seeds_for "$target"); do cp -n "$seed" "$corpus/fixture-$(basename "$(dirname "$seed")")-$(basename "$seed")" 2>/dev/null || true; done
    echo "fuzz: $target for ${seconds}s ($(ls "$corpus" | wc -l) inputs in the corpus)"
    if ! TESSERA_FUZZ_TARGET="$target" TESSERA_FUZZ_MODEL=Tests/Fixtures/lm/qwen2 TESSERA_FUZZ_SEED_DIR="$corpus" \
        ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
        "$binary" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$work/$target-" "$corpus" 2>"$work/$target.log"; then
        echo "fuzz: $target FAILED (log: $work/$target.log):" >&2
        grep -E "ERROR|SUMMARY|Fatal error|Test unit written" "$work/$target.log" | head -20 >&2
        status=1
    else
        grep -E "stat::number_of_executed_units|cov: " "$work/$target.log" | tail -2
    fi
done
exit $status
