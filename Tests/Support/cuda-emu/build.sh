#!/usr/bin/env bash
# Builds the CUDA emulator (libcuda_emu.so, libnvrtc_emu.so, libcublasLt_emu.so) with the host
# C++ compiler into OUT (default: .build/cuda-emu under the repository).
# Rebuilds only when a source is newer than the libraries.
#
#     Tests/Support/cuda-emu/build.sh [OUT]
#     TESSERA_CUDA_PATH=OUT/libcuda_emu.so TESSERA_NVRTC_PATH=OUT/libnvrtc_emu.so tessera selftest
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../../.build/cuda-emu}"
mkdir -p "$out/gen"
out="$(cd "$out" && pwd)"
cxx="${CXX:-c++}"
stale() {  # stale TARGET SOURCE...: true when TARGET is missing or older than a source
    local target="$1"; shift
    [[ ! -f "$target" ]] && return 0
    for s in "$@" "$here/build.sh"; do [[ "$s" -nt "$target" ]] && return 0; done
    return 1
}

# The headers every kernel compilation needs, embedded as raw string literals.
for h in emu_abi emu_kernel emu_half; do
    { printf 'R"TESSERAEMUHDR('; cat "$here/$h.h"; printf ')TESSERAEMUHDR"\n'; } > "$out/gen/$h.inc.new"
    if ! cmp -s "$out/gen/$h.inc.new" "$out/gen/$h.inc" 2>/dev/null; then mv "$out/gen/$h.inc.new" "$out/gen/$h.inc"
    else rm "$out/gen/$h.inc.new"; fi
done

flags=(-std=c++17 -O2 -g -fPIC -shared -Wall -Wextra -Wno-unused-parameter -I "$here" -I "$out")
if stale "$out/libcuda_emu.so" "$here/cuda_emu.cpp" "$here/emu_abi.h" "$here/emu_image.h"; then
    "$cxx" "${flags[@]}" "$here/cuda_emu.cpp" -o "$out/libcuda_emu.so.tmp" -ldl
    mv "$out/libcuda_emu.so.tmp" "$out/libcuda_emu.so"
fi
nvrtc_sources=("$here/nvrtc_emu.cpp" "$here/emu_abi.h" "$here/emu_kernel.h" "$here/emu_half.h" "$here/emu_image.h")
if stale "$out/libnvrtc_emu.so" "${nvrtc_sources[@]}"; then
    # The emulator's identity in Tessera's kernel cache key: a hash of what
    # decides the modules it produces (with the host compiler's version, added at run time).
    id="$(cat "${nvrtc_sources[@]}" | cksum | cut -d' ' -f1)"
    "$cxx" "${flags[@]}" -DTESSERA_EMU_SOURCE_ID="\"$id\"" "$here/nvrtc_emu.cpp" -o "$out/libnvrtc_emu.so.tmp"
    mv "$out/libnvrtc_emu.so.tmp" "$out/libnvrtc_emu.so"
fi
if stale "$out/libcublasLt_emu.so" "$here/cublaslt_emu.cpp" "$here/emu_half.h"; then
    "$cxx" "${flags[@]}" "$here/cublaslt_emu.cpp" -o "$out/libcublasLt_emu.so.tmp" -ldl
    mv "$out/libcublasLt_emu.so.tmp" "$out/libcublasLt_emu.so"
fi
if stale "$out/emu_check" "$here/emu_check.cpp"; then
    "$cxx" -std=c++17 -O1 -g -Wall "$here/emu_check.cpp" -o "$out/emu_check" -ldl
fi
echo "$out"
