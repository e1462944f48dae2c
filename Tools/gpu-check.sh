#!/usr/bin/env bash
# How to check Tessera on a GPU machine (one short device session).
#
# 1. Here (no GPU needed): build a static release binary. Not
#    -static-executable: dlopen of libcuda would then crash. The result needs
#    glibc >= 2.35 on the GPU machine.
#
#        swift build -c release --static-swift-stdlib --product tessera
#
# 2. Copy it to the repository's ignored `.gpu/` folder so the device tool
#    can carry it (carry limit 64 MiB in all):
#
#        Tools/gpu-check.sh prepare
#
#    NVRTC: the wheel's libnvrtc.so.12 is 106 MB, over the carry limit, and
#    the GPU machine cannot reach a package index. The GPU machine must have
#    its own (the run below prints what `tessera devices` finds: a toolkit
#    under /usr/local/cuda or an installed nvidia-cuda-nvrtc wheel). If it
#    has none, the check needs CUBINs precompiled here (not built yet; see
#    docs/GPU.md, "Remaining").
#
# 3. One device `run` call, carry [".gpu"], timeout ~300 s:
#
#        TESSERA_CUDA_CACHE=$OUT/cache .gpu/tessera devices && \
#          .gpu/tessera selftest 2>&1 | tee $OUT/selftest.txt
#
#    Then record the outcome in docs/GPU.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "prepare" ]]; then
    swift build -c release --static-swift-stdlib --product tessera
    mkdir -p .gpu
    cp "$(swift build -c release --static-swift-stdlib --show-bin-path)/tessera" .gpu/tessera
    strip .gpu/tessera || true
    du -sh .gpu
    exit 0
fi

# On the GPU machine (or here, where it reports "no GPU"):
bin=${TESSERA_BIN:-.gpu/tessera}
"$bin" devices
"$bin" selftest
