#!/usr/bin/env bash
# Formats the Swift code with the toolchain's `swift format` and the
# repository's .swift-format (layout only: line length 120, 4-space indents;
# every rewriting rule is off, so no names, access levels or semantics change).
#
#   Tools/format.sh           rewrite Sources Tests Benchmarks Examples in place
#   Tools/format.sh --check   change nothing; list the files that differ, exit 1 if any
set -euo pipefail
cd "$(dirname "$0")/.."

dirs=(Sources Tests Benchmarks Examples)
if ! swift format --version >/dev/null 2>&1; then
    echo "format.sh: this toolchain has no 'swift format' (Swift 6 or later has it)" >&2
    exit 2
fi

case "${1:-}" in
"")
    swift format format --configuration .swift-format --parallel --in-place --recursive "${dirs[@]}"
    ;;
--check)
    # `lint` reports every place the layout differs as "path:line:col: warning: ..."; one line per file here.
    out=$(swift format lint --configuration .swift-format --parallel --recursive "${dirs[@]}" 2>&1 || true)
    files=$(printf '%s\n' "$out" | grep -E '^[^:]+\.swift:[0-9]+:[0-9]+: (warning|error)' | cut -d: -f1 | sort -u || true)
    if [ -n "$files" ]; then
        echo "format.sh --check: these files differ from .swift-format's layout (run Tools/format.sh):" >&2
        printf '%s\n' "$files" >&2
        exit 1
    fi
    # Anything else lint printed (a file it could not parse) is a failure too.
    if printf '%s\n' "$out" | grep -q -E 'error'; then
        printf '%s\n' "$out" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: Tools/format.sh [--check]" >&2
    exit 2
    ;;
esac
