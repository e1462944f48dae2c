// The interface between an emulated kernel module (a shared library that
// libnvrtc_emu.so compiled from CUDA C++ with the host compiler) and the
// emulated driver libcuda_emu.so that loads and runs it. Included by both;
// libnvrtc_emu.so embeds it into every kernel compilation.
#pragma once

#define TESSERA_EMU_ABI 1

namespace __tessera_emu {

struct Idx3 { unsigned x, y, z; };

// What one emulated GPU thread sees.
struct ThreadState {
    Idx3 threadIdx, blockIdx, blockDim, gridDim;
};

// Warp-collective operations (Runtime::warp).
enum WarpOp : int {
    WARP_SYNC = 0, WARP_SHFL, WARP_SHFL_UP, WARP_SHFL_DOWN, WARP_SHFL_XOR, WARP_BALLOT, WARP_ANY, WARP_ALL,
    WARP_MATCH_ANY, WARP_REDUCE_ADD, WARP_REDUCE_MIN, WARP_REDUCE_MAX, WARP_REDUCE_AND, WARP_REDUCE_OR,
    WARP_REDUCE_XOR,
};

// Block barriers (Runtime::barrier): plain, and the predicate forms.
enum BarrierOp : int { BARRIER_PLAIN = 0, BARRIER_COUNT, BARRIER_AND, BARRIER_OR };

// Functions of the driver the kernel module calls.
struct Runtime {
    int abi;
    ThreadState* (*current)();
    int (*barrier)(int op, int predicate);
    // value: the lane's operand (up to 8 bytes); arg: lane/delta/mask; width: segment
    // width; isSigned: for min/max reductions. Returns the lane's result bits.
    unsigned long long (*warp)(int op, unsigned mask, unsigned long long value, int arg, int width, int isSigned);
    void* (*dynamicShared)();
    // A kernel-side error (trap, assert): ends the launch with an error.
    void (*fail)(int cudaError, const char* message);
};

// What a kernel's parameters are: their sizes and which are pointers.
struct KernelInfo {
    unsigned count;
    const unsigned* sizes;
    const unsigned char* isPointer;
};

}  // namespace __tessera_emu
