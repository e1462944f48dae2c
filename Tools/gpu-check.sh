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
#    The stripped binary is ~84 MB since it links AsyncHTTPClient/SwiftNIO and
#    two BoringSSL copies (TesseraHub), over the carry limit, so `prepare`
#    packs it as .gpu/tessera.xz (~21 MB) and the run below unpacks it.
#
#    NVRTC and cuBLASLt: the GPU machine's image (see the device tool's
#    KINDS.md) holds the nvidia-cuda-nvrtc and nvidia-cublas wheels (CUDA 13,
#    `nvidia/cu13/lib`) in the site-packages of its `python3`, which is where
#    Tessera's library search looks (docs/GPU.md). Should a machine lack
#    them, `prepare nvrtc` also packs this machine's NVRTC wheel, xz-packed
#    (~32 MB, made once and cached in ~/.cache/tessera), and the run below
#    unpacks it when `tessera devices` finds no NVRTC.
#
# 3. One device `run` call, carry [".gpu"], timeout ~300 s:
#
#        Tools/gpu-check.sh 2>&1 | tee $OUT/gpu-check.txt
#
#    Then record the outcome in docs/GPU.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "prepare" ]]; then
    swift build -c release --static-swift-stdlib --product tessera
    mkdir -p .gpu
    cp "$(swift build -c release --static-swift-stdlib --show-bin-path)/tessera" .gpu/tessera
    strip .gpu/tessera || true
    rm -f .gpu/tessera.xz
    if [[ $(stat -c %s .gpu/tessera) -gt $((48 << 20)) ]]; then
        xz -T2 -6 .gpu/tessera   # leaves .gpu/tessera.xz
    fi
    if [[ "${2:-}" == "nvrtc" ]]; then
        packed=~/.cache/tessera/nvrtc-cu12.tar.xz
        if [[ ! -f $packed ]]; then
            lib=$(python3 -c 'import nvidia.cuda_nvrtc, os; print(os.path.join(list(nvidia.cuda_nvrtc.__path__)[0], "lib"))')
            mkdir -p "$(dirname "$packed")"
            tar -C "$lib" -cf - libnvrtc.so.12 $(cd "$lib" && ls libnvrtc-builtins.so.12.*) | xz -T2 -6 > "$packed.tmp"
            mv "$packed.tmp" "$packed"
        fi
        cp "$packed" .gpu/nvrtc.tar.xz
    fi
    du -sh .gpu
    exit 0
fi

# On the GPU machine (or here, where it reports "no GPU"):
bin=${TESSERA_BIN:-.gpu/tessera}
if [[ ! -x $bin && -f .gpu/tessera.xz ]]; then
    mkdir -p /tmp/tessera-gpu
    xz -dc .gpu/tessera.xz > /tmp/tessera-gpu/tessera \
        || python3 -c 'import lzma, shutil; shutil.copyfileobj(lzma.open(".gpu/tessera.xz"), open("/tmp/tessera-gpu/tessera", "wb"))'
    chmod +x /tmp/tessera-gpu/tessera
    bin=/tmp/tessera-gpu/tessera
fi
export TESSERA_CUDA_CACHE=${TESSERA_CUDA_CACHE:-${OUT:-/tmp}/tessera-cuda-cache}
if ! "$bin" devices | grep -q "NVRTC" && [[ -f .gpu/nvrtc.tar.xz ]]; then
    mkdir -p /tmp/tessera-nvrtc
    tar -C /tmp/tessera-nvrtc -xJf .gpu/nvrtc.tar.xz \
        || python3 -c 'import tarfile; tarfile.open(".gpu/nvrtc.tar.xz").extractall("/tmp/tessera-nvrtc")'
    export TESSERA_NVRTC_PATH=/tmp/tessera-nvrtc/libnvrtc.so.12
fi
"$bin" devices
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
status=0
"$bin" selftest || status=$?
# Timings (GEMM vs the nominal peak, bandwidth, qmv, attention, SmolLM2-shaped decode).
"$bin" selftest --bench
exit $status
