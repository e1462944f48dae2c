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

# The Swift files git tracks or would track (not .build folders), less the
# generated ones (Tools/embed_kernels.py writes KernelSources.generated.swift and
# checks it byte for byte).
swift_files() {
    git ls-files --cached --others --exclude-standard -- "${dirs[@]}" | grep '\.swift$' | grep -v '\.generated\.swift$'
}

case "${1:-}" in
"")
    swift_files | xargs -d '\n' swift format format --configuration .swift-format --parallel --in-place
    ;;
--check)
    # What `format` would change: format a copy and compare (lint would also flag
    # what format cannot fix, such as an end-of-line comment past the line length).
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    swift_files >"$tmp/.files"
    tar -cf - -T "$tmp/.files" | tar -xf - -C "$tmp"
    cp .swift-format "$tmp"/
    (cd "$tmp" && xargs -d '\n' swift format format --configuration .swift-format --parallel --in-place <.files)
    files=$(while IFS= read -r f; do cmp -s "$tmp/$f" "$f" || echo "$f"; done <"$tmp/.files")
    if [ -n "$files" ]; then
        echo "format.sh --check: these files differ from .swift-format's layout (run Tools/format.sh):" >&2
        printf '%s\n' "$files" >&2
        exit 1
    fi
    ;;
*)
    echo "usage: Tools/format.sh [--check]" >&2
    exit 2
    ;;
esac
