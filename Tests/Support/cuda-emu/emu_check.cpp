// Checks of the emulator itself, through the same C API Tessera uses: a
// kernel with shared memory, __syncthreads and warp shuffles gives the right
// answer; dynamic shared memory works; inline PTX conversions are exact; and
// the bugs the emulator exists to catch are reported: out-of-bounds access, a
// host pointer as a kernel argument, a divergent __syncthreads (deadlock), a
// shuffle from a lane that is not taking part, a missing context, too much
// dynamic shared memory. Prints one line per check; exits 1 on any failure.
//
//     Tests/Support/cuda-emu/build.sh OUT && OUT/emu_check OUT

#include <dlfcn.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

typedef int (*Fn)(...);
static void* cuda;
static void* nvrtc;
static int failures = 0;

template <typename F> static F sym(void* lib, const char* name) {
    void* p = dlsym(lib, name);
    if (!p) { fprintf(stderr, "missing symbol %s\n", name); _exit(2); }
    return (F)p;
}

static void check(bool ok, const char* what) {
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    if (!ok) ++failures;
}

static const char* kSource = R"CUDA(
#include "helper.cuh"
extern "C" __global__ void block_sum(const float* x, float* y, long long n) {
    __shared__ float partial[32];
    float acc = 0.0f;
    for (long long i = threadIdx.x; i < n; i += blockDim.x) acc += x[blockIdx.x * n + i];
    for (int d = 16; d > 0; d >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, d);
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = acc;
    __syncthreads();
    if (threadIdx.x < 32) {
        acc = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
        for (int d = 16; d > 0; d >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, d);
        if (threadIdx.x == 0) y[blockIdx.x] = acc;
    }
}
#define DYN extern __shared__ __align__(16) float dyn[]
extern "C" __global__ void reverse_dynamic(const float* x, float* y, int n) {
    DYN;
    dyn[threadIdx.x] = x[threadIdx.x];
    __syncthreads();
    y[threadIdx.x] = dyn[n - 1 - threadIdx.x];
    unsigned b = __ballot_sync(0xffffffffu, threadIdx.x % 2 == 0);
    if (threadIdx.x == 0) y[n] = (float)__popc(b);
}
extern "C" __global__ void half_round_trip(const float* x, unsigned short* h, float* back, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    h[i] = to_half(x[i]);
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h[i]));
    back[i] = f;
}
extern "C" __global__ void write_past_end(float* y, int n) { y[n + 2000] = 1.0f; }
extern "C" __global__ void divergent_barrier(float* y) {
    if (threadIdx.x < 16) __syncthreads();
    else __syncwarp();
    y[threadIdx.x] = 1.0f;
}
extern "C" __global__ void partial_shuffle(float* y, int width) {
    float v = threadIdx.x;
    if (threadIdx.x < 16) v = __shfl_down_sync(0x0000ffffu, v, 8, width);
    y[threadIdx.x] = v;
}
)CUDA";

static const char* kHelper = R"CUDA(
__device__ __forceinline__ unsigned short to_half(float x) {
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(x));
    return h;
}
)CUDA";

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : ".";
    cuda = dlopen((dir + "/libcuda_emu.so").c_str(), RTLD_NOW | RTLD_LOCAL);
    nvrtc = dlopen((dir + "/libnvrtc_emu.so").c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!cuda || !nvrtc) { fprintf(stderr, "cannot open the emulator in %s: %s\n", dir.c_str(), dlerror()); return 2; }
    auto cuInit = sym<int (*)(unsigned)>(cuda, "cuInit");
    auto cuDevicePrimaryCtxRetain = sym<int (*)(void**, int)>(cuda, "cuDevicePrimaryCtxRetain");
    auto cuCtxSetCurrent = sym<int (*)(void*)>(cuda, "cuCtxSetCurrent");
    auto cuMemAlloc = sym<int (*)(uint64_t*, size_t)>(cuda, "cuMemAlloc_v2");
    auto cuMemFree = sym<int (*)(uint64_t)>(cuda, "cuMemFree_v2");
    auto cuHtoD = sym<int (*)(uint64_t, const void*, size_t, void*)>(cuda, "cuMemcpyHtoDAsync_v2");
    auto cuDtoH = sym<int (*)(void*, uint64_t, size_t, void*)>(cuda, "cuMemcpyDtoHAsync_v2");
    auto cuModuleLoadData = sym<int (*)(void**, const void*)>(cuda, "cuModuleLoadData");
    auto cuModuleGetFunction = sym<int (*)(void**, void*, const char*)>(cuda, "cuModuleGetFunction");
    auto cuLaunchKernel = sym<int (*)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                                      void*, void**, void**)>(cuda, "cuLaunchKernel");
    auto nvrtcCreateProgram = sym<int (*)(void**, const char*, const char*, int, const char* const*,
                                          const char* const*)>(nvrtc, "nvrtcCreateProgram");
    auto nvrtcCompileProgram = sym<int (*)(void*, int, const char* const*)>(nvrtc, "nvrtcCompileProgram");
    auto nvrtcGetProgramLogSize = sym<int (*)(void*, size_t*)>(nvrtc, "nvrtcGetProgramLogSize");
    auto nvrtcGetProgramLog = sym<int (*)(void*, char*)>(nvrtc, "nvrtcGetProgramLog");
    auto nvrtcGetCUBINSize = sym<int (*)(void*, size_t*)>(nvrtc, "nvrtcGetCUBINSize");
    auto nvrtcGetCUBIN = sym<int (*)(void*, char*)>(nvrtc, "nvrtcGetCUBIN");

    check(cuInit(0) == 0, "cuInit");
    uint64_t early = 0;
    check(cuMemAlloc(&early, 16) == 201, "cuMemAlloc without a current context is CUDA_ERROR_INVALID_CONTEXT");
    void* ctx = nullptr;
    check(cuDevicePrimaryCtxRetain(&ctx, 0) == 0 && cuCtxSetCurrent(ctx) == 0, "context");

    void* program = nullptr;
    const char* headers[] = {kHelper};
    const char* names[] = {"helper.cuh"};
    nvrtcCreateProgram(&program, kSource, "check.cu", 1, headers, names);
    const char* options[] = {"--gpu-architecture=sm_90", "--std=c++17"};
    int status = nvrtcCompileProgram(program, 2, options);
    size_t logSize = 0;
    nvrtcGetProgramLogSize(program, &logSize);
    std::vector<char> log(logSize + 1);
    nvrtcGetProgramLog(program, log.data());
    if (status != 0) { fprintf(stderr, "compile failed:\n%s\n", log.data()); return 1; }
    size_t size = 0;
    nvrtcGetCUBINSize(program, &size);
    std::vector<char> image(size);
    nvrtcGetCUBIN(program, image.data());
    void* module = nullptr;
    check(cuModuleLoadData(&module, image.data()) == 0, "module loads");
    void* f = nullptr;
    check(cuModuleGetFunction(&f, module, "missing_kernel") == 500, "an unknown kernel is CUDA_ERROR_NOT_FOUND");

    // block_sum: 3 rows of 1000.
    const long long n = 1000;
    std::vector<float> x(3 * n);
    for (size_t i = 0; i < x.size(); ++i) x[i] = (float)((i * 7) % 13) - 6.0f;
    uint64_t dx, dy;
    cuMemAlloc(&dx, x.size() * 4);
    cuMemAlloc(&dy, 128 * 4);
    cuHtoD(dx, x.data(), x.size() * 4, nullptr);
    cuModuleGetFunction(&f, module, "block_sum");
    long long nn = n;
    void* params[] = {&dx, &dy, &nn};
    check(cuLaunchKernel(f, 3, 1, 1, 256, 1, 1, 0, nullptr, params, nullptr) == 0, "block_sum launches");
    float y[3];
    cuDtoH(y, dy, 12, nullptr);
    bool sums = true;
    for (int r = 0; r < 3; ++r) {
        double expect = 0;
        for (long long i = 0; i < n; ++i) expect += x[r * n + i];
        sums = sums && fabs(y[r] - expect) < 1e-3;
    }
    check(sums, "block_sum: shuffles, static shared memory and __syncthreads give the row sums");

    // Dynamic shared memory and a ballot.
    cuModuleGetFunction(&f, module, "reverse_dynamic");
    int count = 64;
    void* p2[] = {&dx, &dy, &count};
    check(cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 64 * 4, nullptr, p2, nullptr) == 0, "reverse_dynamic launches");
    float r[65];
    cuDtoH(r, dy, 65 * 4, nullptr);
    bool reversed = true;
    for (int i = 0; i < 64; ++i) reversed = reversed && r[i] == x[63 - i];
    check(reversed && r[64] == 16.0f, "dynamic shared memory (extern __shared__ through a macro) and __ballot_sync");
    check(cuLaunchKernel(f, 1, 1, 1, 64, 1, 1, 64 * 1024, nullptr, p2, nullptr) == 1,
          "64 KiB of dynamic shared memory without cuFuncSetAttribute is refused");

    // float -> half -> float through the inline PTX conversions: exact for these.
    const float values[] = {0.0f, -0.0f, 1.0f, 65504.0f, 65520.0f, 1e-8f, 5.96046448e-08f, 0.333333333f, -2.5f,
                            INFINITY, 1.0009765625f + 0.00048828125f};
    const float expected[] = {0.0f, -0.0f, 1.0f, 65504.0f, INFINITY, 0.0f, 5.96046448e-08f, 0.333251953f, -2.5f,
                              INFINITY, 1.001953125f};
    int m = (int)(sizeof values / sizeof *values);
    uint64_t dh, db;
    cuMemAlloc(&dh, 64);
    cuMemAlloc(&db, 64);
    cuHtoD(dx, values, m * 4, nullptr);
    cuModuleGetFunction(&f, module, "half_round_trip");
    void* p3[] = {&dx, &dh, &db, &m};
    check(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, p3, nullptr) == 0, "half_round_trip launches");
    float back[16];
    cuDtoH(back, db, m * 4, nullptr);
    bool halves = true;
    for (int i = 0; i < m; ++i) {
        bool same = memcmp(&back[i], &expected[i], 4) == 0;
        if (!same) printf("     half(%g) = %g, expected %g\n", values[i], back[i], expected[i]);
        halves = halves && same;
    }
    check(halves, "cvt.rn.f16.f32 / cvt.f32.f16 round to nearest even, overflow to infinity, keep -0");

    // The bugs the emulator reports.
    cuModuleGetFunction(&f, module, "write_past_end");
    int small = 16;
    void* p4[] = {&dy, &small};
    check(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, p4, nullptr) == 700, "a write past the end is CUDA_ERROR_ILLEGAL_ADDRESS");
    float host[64];
    void* hostPointer = host;
    void* p5[] = {&hostPointer, &small};
    check(cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, nullptr, p5, nullptr) == 700, "a host pointer as a kernel argument is refused");
    cuModuleGetFunction(&f, module, "divergent_barrier");
    void* p6[] = {&dy};
    check(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, p6, nullptr) == 719, "half a warp at __syncthreads, half at __syncwarp: a deadlock");
    cuModuleGetFunction(&f, module, "partial_shuffle");
    int width = 16;
    void* p7[] = {&dy, &width};
    check(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, p7, nullptr) == 0, "a shuffle within its mask runs");
    float ps[32];
    cuDtoH(ps, dy, 32 * 4, nullptr);
    bool partial = true;
    for (int i = 0; i < 32; ++i) partial = partial && ps[i] == (i < 8 ? i + 8 : (float)i);
    check(partial, "__shfl_down_sync with a 16-lane mask, width 16: lanes 8-15 keep their own value");
    width = 32;
    check(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, p7, nullptr) == 719,
          "width 32: lanes 8-15 read lanes 16-23, outside the mask (undefined on a GPU), is refused");
    width = 16;
    check(cuLaunchKernel(f, 1, 1, 1, 8, 1, 1, 0, nullptr, p7, nullptr) == 719,
          "a mask naming lanes a block of 8 threads does not have is refused");
    // cuBLASLt: D = op(A) op(B), column-major, A padded (ld 4), B transposed, a strided batch of 2.
    if (void* lt = dlopen((dir + "/libcublasLt_emu.so").c_str(), RTLD_NOW | RTLD_LOCAL)) {
        auto create = sym<int (*)(void**)>(lt, "cublasLtCreate");
        auto descCreate = sym<int (*)(void**, int, int)>(lt, "cublasLtMatmulDescCreate");
        auto descSet = sym<int (*)(void*, int, const void*, size_t)>(lt, "cublasLtMatmulDescSetAttribute");
        auto layoutCreate = sym<int (*)(void**, int, uint64_t, uint64_t, int64_t)>(lt, "cublasLtMatrixLayoutCreate");
        auto layoutSet = sym<int (*)(void*, int, const void*, size_t)>(lt, "cublasLtMatrixLayoutSetAttribute");
        auto matmul = sym<int (*)(void*, void*, const void*, const void*, void*, const void*, void*, const void*,
                                  const void*, void*, void*, void*, const void*, void*, size_t, void*)>(lt, "cublasLtMatmul");
        const int m = 3, n = 4, k = 2, batch = 2, lda = 4;
        std::vector<float> A(batch * lda * k), B(batch * n * k), D(batch * m * n, -1.0f);
        for (size_t i = 0; i < A.size(); ++i) A[i] = (float)((i * 5) % 7) - 3.0f;
        for (size_t i = 0; i < B.size(); ++i) B[i] = (float)((i * 3) % 5) - 2.0f;
        uint64_t dA, dB, dD;
        cuMemAlloc(&dA, A.size() * 4);
        cuMemAlloc(&dB, B.size() * 4);
        cuMemAlloc(&dD, D.size() * 4);
        cuHtoD(dA, A.data(), A.size() * 4, nullptr);
        cuHtoD(dB, B.data(), B.size() * 4, nullptr);
        void *handle, *desc, *la, *lb, *ld;
        create(&handle);
        descCreate(&desc, 68, 0);
        int opT = 1;
        descSet(desc, 4, &opT, 4);  // TRANSB
        layoutCreate(&la, 0, m, k, lda);
        layoutCreate(&lb, 0, n, k, n);
        layoutCreate(&ld, 0, m, n, m);
        int count = batch;
        int64_t strideA = lda * k, strideB = n * k, strideD = m * n;
        layoutSet(la, 5, &count, 4); layoutSet(la, 6, &strideA, 8);
        layoutSet(lb, 5, &count, 4); layoutSet(lb, 6, &strideB, 8);
        layoutSet(ld, 5, &count, 4); layoutSet(ld, 6, &strideD, 8);
        float alpha = 1, beta = 0;
        int status = matmul(handle, desc, &alpha, (void*)dA, la, (void*)dB, lb, &beta, (void*)dD, ld, (void*)dD, ld,
                            nullptr, nullptr, 0, nullptr);
        cuDtoH(D.data(), dD, D.size() * 4, nullptr);
        bool gemm = status == 0;
        for (int t = 0; t < batch; ++t)
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j) {
                    float want = 0;
                    for (int p = 0; p < k; ++p) want += A[t * strideA + i + p * lda] * B[t * strideB + j + p * n];
                    gemm = gemm && D[t * strideD + i + j * m] == want;
                }
        check(gemm, "cublasLtMatmul: padded A, transposed B, strided batch of 2");
        int64_t wrongStride = 100;
        layoutSet(lb, 6, &wrongStride, 8);
        check(matmul(handle, desc, &alpha, (void*)dA, la, (void*)dB, lb, &beta, (void*)dD, ld, (void*)dD, ld, nullptr,
                     nullptr, 0, nullptr) == 13, "cublasLtMatmul with a batch stride past the allocation is refused");
        cuMemFree(dA);
        cuMemFree(dB);
        cuMemFree(dD);
    } else {
        check(false, "libcublasLt_emu.so loads");
    }

    // A copy from pinned memory waits in its stream until a synchronization:
    // the host changing the buffer before then changes what arrives.
    {
        auto cuStreamCreate = sym<int (*)(void**, unsigned)>(cuda, "cuStreamCreate");
        auto cuStreamSynchronize = sym<int (*)(void*)>(cuda, "cuStreamSynchronize");
        auto cuMemAllocHost = sym<int (*)(void**, size_t)>(cuda, "cuMemAllocHost_v2");
        void* stream = nullptr;
        void* pinned = nullptr;
        cuStreamCreate(&stream, 1);
        cuMemAllocHost(&pinned, 64);
        float* p = (float*)pinned;
        p[0] = 1.0f;
        cuHtoD(dx, p, 4, stream);
        p[0] = 2.0f;  // a missing synchronization: a GPU may or may not have copied yet
        cuStreamSynchronize(stream);
        float arrived = 0;
        cuDtoH(&arrived, dx, 4, stream);
        check(arrived == 2.0f, "a pinned-memory copy runs at the stream's next synchronization, not when issued");
    }

    // The host reading a device pointer faults (in a child process), with a message.
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        volatile float v = *(volatile float*)(uintptr_t)dx;
        (void)v;
        _exit(0);
    }
    int childStatus = 0;
    waitpid(child, &childStatus, 0);
    check(WIFSIGNALED(childStatus) && WTERMSIG(childStatus) == SIGSEGV, "the host reading device memory faults, as on a GPU");

    check(cuMemFree(dx + 4) == 1, "cuMemFree of an inner pointer is refused");
    check(cuHtoD(dx, x.data(), x.size() * 4 + 4, nullptr) == 1, "a copy past the end of the allocation is refused");
    cuMemFree(dx);
    cuMemFree(dy);
    printf("%s: %d failed\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
