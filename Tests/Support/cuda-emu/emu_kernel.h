// CUDA C++ on the host: what libnvrtc_emu.so force-includes before a kernel
// source it compiles with the host C++ compiler. It defines the CUDA built-in
// variables (threadIdx, blockIdx, blockDim, gridDim, warpSize), the function
// and memory qualifiers, barriers, warp-collective intrinsics, atomics, the
// device math library's extra functions and intrinsics, and (namespace
// __ptx) the few inline-PTX instructions the kernels use; libnvrtc_emu.so
// rewrites each `asm("op.a.b %0, %1;" : "=r"(x) : "r"(y))` into
// `__ptx::op_a_b(x, y);`. Barriers and warp operations call the emulated
// driver (libcuda_emu.so), which runs a block's threads as coroutines.
#pragma once
#include "emu_abi.h"
#include "emu_half.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <limits>
#include <type_traits>
#include <utility>

#define TESSERA_EMULATION 1

namespace __tessera_emu {
static const Runtime* rt = nullptr;
inline ThreadState* cur() { return rt->current(); }
[[noreturn]] inline void fail(int error, const char* message) {
    rt->fail(error, message);
    __builtin_unreachable();
}
}  // namespace __tessera_emu

// ---- qualifiers (the markers are removed or rewritten by libnvrtc_emu.so) ----
#define __global__ __tessera_emu_global
#define __shared__ __tessera_emu_shared
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __grid_constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __maxnreg__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __cudart_builtin__

// ---- vector types ----
#define TESSERA_EMU_VEC(T, name, A2, A4) \
    struct name##1 { T x; }; \
    struct __attribute__((aligned(A2))) name##2 { T x, y; }; \
    struct name##3 { T x, y, z; }; \
    struct __attribute__((aligned(A4))) name##4 { T x, y, z, w; }; \
    inline name##1 make_##name##1(T x) { return {x}; } \
    inline name##2 make_##name##2(T x, T y) { return {x, y}; } \
    inline name##3 make_##name##3(T x, T y, T z) { return {x, y, z}; } \
    inline name##4 make_##name##4(T x, T y, T z, T w) { return {x, y, z, w}; }
TESSERA_EMU_VEC(signed char, char, 2, 4)
TESSERA_EMU_VEC(unsigned char, uchar, 2, 4)
TESSERA_EMU_VEC(short, short, 4, 8)
TESSERA_EMU_VEC(unsigned short, ushort, 4, 8)
TESSERA_EMU_VEC(int, int, 8, 16)
TESSERA_EMU_VEC(unsigned int, uint, 8, 16)
TESSERA_EMU_VEC(long long, longlong, 16, 16)
TESSERA_EMU_VEC(unsigned long long, ulonglong, 16, 16)
TESSERA_EMU_VEC(float, float, 8, 16)
TESSERA_EMU_VEC(double, double, 16, 16)
#undef TESSERA_EMU_VEC
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x = 1, unsigned y = 1, unsigned z = 1) : x(x), y(y), z(z) {}
};

// ---- built-in variables ----
#define threadIdx (::__tessera_emu::cur()->threadIdx)
#define blockIdx (::__tessera_emu::cur()->blockIdx)
#define blockDim (::__tessera_emu::cur()->blockDim)
#define gridDim (::__tessera_emu::cur()->gridDim)
static const int warpSize = 32;

// ---- barriers and warp operations ----
inline void __syncthreads() { ::__tessera_emu::rt->barrier(::__tessera_emu::BARRIER_PLAIN, 0); }
inline int __syncthreads_count(int p) { return ::__tessera_emu::rt->barrier(::__tessera_emu::BARRIER_COUNT, p != 0); }
inline int __syncthreads_and(int p) { return ::__tessera_emu::rt->barrier(::__tessera_emu::BARRIER_AND, p != 0); }
inline int __syncthreads_or(int p) { return ::__tessera_emu::rt->barrier(::__tessera_emu::BARRIER_OR, p != 0); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_system() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

namespace __tessera_emu {
template <typename T> inline T warp_value(int op, unsigned mask, T v, int arg, int width, int isSigned = 0) {
    static_assert(sizeof(T) <= 8, "warp operations take values of at most 8 bytes");
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof(T));
    bits = rt->warp(op, mask, bits, arg, width, isSigned);
    T out;
    memcpy(&out, &bits, sizeof(T));
    return out;
}
inline unsigned warp_bits(int op, unsigned mask, unsigned long long v, int arg = 0, int signedness = 0) {
    return (unsigned)rt->warp(op, mask, v, arg, 32, signedness);
}
}  // namespace __tessera_emu

inline void __syncwarp(unsigned mask = 0xffffffffu) { ::__tessera_emu::warp_bits(::__tessera_emu::WARP_SYNC, mask, 0); }
template <typename T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return ::__tessera_emu::warp_value(::__tessera_emu::WARP_SHFL, mask, v, src, width);
}
template <typename T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return ::__tessera_emu::warp_value(::__tessera_emu::WARP_SHFL_UP, mask, v, (int)delta, width);
}
template <typename T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return ::__tessera_emu::warp_value(::__tessera_emu::WARP_SHFL_DOWN, mask, v, (int)delta, width);
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32) {
    return ::__tessera_emu::warp_value(::__tessera_emu::WARP_SHFL_XOR, mask, v, laneMask, width);
}
inline unsigned __ballot_sync(unsigned mask, int p) { return ::__tessera_emu::warp_bits(::__tessera_emu::WARP_BALLOT, mask, p != 0); }
inline int __any_sync(unsigned mask, int p) { return (int)::__tessera_emu::warp_bits(::__tessera_emu::WARP_ANY, mask, p != 0); }
inline int __all_sync(unsigned mask, int p) { return (int)::__tessera_emu::warp_bits(::__tessera_emu::WARP_ALL, mask, p != 0); }
inline unsigned __activemask() { return ::__tessera_emu::warp_bits(::__tessera_emu::WARP_SYNC, 0u, 0, 1); }
template <typename T> inline unsigned __match_any_sync(unsigned mask, T v) {
    unsigned long long bits = 0;
    memcpy(&bits, &v, sizeof(T));
    return ::__tessera_emu::warp_bits(::__tessera_emu::WARP_MATCH_ANY, mask, bits);
}
#define TESSERA_EMU_WREDUCE(name, op, T, s) \
    inline T name(unsigned mask, T v) { return (T)::__tessera_emu::warp_bits(op, mask, (unsigned long long)(unsigned)v, 0, s); }
TESSERA_EMU_WREDUCE(__reduce_add_sync, ::__tessera_emu::WARP_REDUCE_ADD, unsigned, 0)
TESSERA_EMU_WREDUCE(__reduce_add_sync, ::__tessera_emu::WARP_REDUCE_ADD, int, 1)
TESSERA_EMU_WREDUCE(__reduce_min_sync, ::__tessera_emu::WARP_REDUCE_MIN, unsigned, 0)
TESSERA_EMU_WREDUCE(__reduce_min_sync, ::__tessera_emu::WARP_REDUCE_MIN, int, 1)
TESSERA_EMU_WREDUCE(__reduce_max_sync, ::__tessera_emu::WARP_REDUCE_MAX, unsigned, 0)
TESSERA_EMU_WREDUCE(__reduce_max_sync, ::__tessera_emu::WARP_REDUCE_MAX, int, 1)
TESSERA_EMU_WREDUCE(__reduce_and_sync, ::__tessera_emu::WARP_REDUCE_AND, unsigned, 0)
TESSERA_EMU_WREDUCE(__reduce_or_sync, ::__tessera_emu::WARP_REDUCE_OR, unsigned, 0)
TESSERA_EMU_WREDUCE(__reduce_xor_sync, ::__tessera_emu::WARP_REDUCE_XOR, unsigned, 0)
#undef TESSERA_EMU_WREDUCE

inline void __trap() { ::__tessera_emu::fail(710, "__trap() called"); }
inline void __brkpt() { ::__tessera_emu::fail(710, "__brkpt() called"); }
#undef assert
#define assert(e) ((e) ? (void)0 : ::__tessera_emu::fail(710, "device-side assert failed: " #e))
#if defined(__x86_64__)
inline long long clock64() { return (long long)__builtin_ia32_rdtsc(); }
#else
inline long long clock64() {  // increasing, which is all kernels may rely on
    static long long ticks = 0;
    return ticks += 64;
}
#endif
inline int clock() { return (int)clock64(); }
inline void __nanosleep(unsigned) {}

// ---- loads and stores with cache hints ----
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline T __ldca(const T* p) { return *p; }
template <typename T> inline T __ldcs(const T* p) { return *p; }
template <typename T> inline T __ldlu(const T* p) { return *p; }
template <typename T> inline T __ldcv(const T* p) { return *p; }
template <typename T> inline void __stwb(T* p, T v) { *p = v; }
template <typename T> inline void __stcg(T* p, T v) { *p = v; }
template <typename T> inline void __stcs(T* p, T v) { *p = v; }
template <typename T> inline void __stwt(T* p, T v) { *p = v; }

// ---- atomics ----
#define TESSERA_EMU_ATOMIC_INT(T) \
    inline T atomicAdd(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicSub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicExch(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicAnd(T* p, T v) { return __atomic_fetch_and(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicOr(T* p, T v) { return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicXor(T* p, T v) { return __atomic_fetch_xor(p, v, __ATOMIC_SEQ_CST); } \
    inline T atomicCAS(T* p, T compare, T v) { \
        __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
        return compare; \
    } \
    inline T atomicMax(T* p, T v) { \
        T old = __atomic_load_n(p, __ATOMIC_SEQ_CST); \
        while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} \
        return old; \
    } \
    inline T atomicMin(T* p, T v) { \
        T old = __atomic_load_n(p, __ATOMIC_SEQ_CST); \
        while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {} \
        return old; \
    }
TESSERA_EMU_ATOMIC_INT(int)
TESSERA_EMU_ATOMIC_INT(unsigned int)
TESSERA_EMU_ATOMIC_INT(long long)
TESSERA_EMU_ATOMIC_INT(unsigned long long)
#undef TESSERA_EMU_ATOMIC_INT
inline unsigned short atomicCAS(unsigned short* p, unsigned short compare, unsigned short v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
    return compare;
}
#define TESSERA_EMU_ATOMIC_FLOAT(T, U) \
    inline T atomicAdd(T* p, T v) { \
        U* q = (U*)p; \
        U old = __atomic_load_n(q, __ATOMIC_SEQ_CST), next; \
        do { T f; memcpy(&f, &old, sizeof f); f += v; memcpy(&next, &f, sizeof f); } \
        while (!__atomic_compare_exchange_n(q, &old, next, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)); \
        T f; memcpy(&f, &old, sizeof f); return f; \
    } \
    inline T atomicExch(T* p, T v) { \
        U bits; memcpy(&bits, &v, sizeof v); \
        U old = __atomic_exchange_n((U*)p, bits, __ATOMIC_SEQ_CST); \
        T f; memcpy(&f, &old, sizeof f); return f; \
    }
TESSERA_EMU_ATOMIC_FLOAT(float, unsigned int)
TESSERA_EMU_ATOMIC_FLOAT(double, unsigned long long)
#undef TESSERA_EMU_ATOMIC_FLOAT
inline unsigned atomicInc(unsigned* p, unsigned limit) {
    unsigned old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (!__atomic_compare_exchange_n(p, &old, old >= limit ? 0u : old + 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
    return old;
}
inline unsigned atomicDec(unsigned* p, unsigned limit) {
    unsigned old = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while (!__atomic_compare_exchange_n(p, &old, (old == 0 || old > limit) ? limit : old - 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {}
    return old;
}
#define atomicAdd_block atomicAdd
#define atomicAdd_system atomicAdd
#define atomicMax_block atomicMax
#define atomicMin_block atomicMin
#define atomicCAS_block atomicCAS
#define atomicExch_block atomicExch

// ---- bit reinterpretation, conversions, integer intrinsics ----
inline float __int_as_float(int x) { float f; memcpy(&f, &x, 4); return f; }
inline float __uint_as_float(unsigned x) { float f; memcpy(&f, &x, 4); return f; }
inline int __float_as_int(float x) { int i; memcpy(&i, &x, 4); return i; }
inline unsigned __float_as_uint(float x) { unsigned i; memcpy(&i, &x, 4); return i; }
inline double __longlong_as_double(long long x) { double f; memcpy(&f, &x, 8); return f; }
inline long long __double_as_longlong(double x) { long long i; memcpy(&i, &x, 8); return i; }
inline int __double2hiint(double x) { return (int)(__double_as_longlong(x) >> 32); }
inline int __double2loint(double x) { return (int)__double_as_longlong(x); }
inline double __hiloint2double(int hi, int lo) {
    return __longlong_as_double((long long)(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo));
}

namespace __tessera_emu {
// PTX cvt to integers: NaN gives 0, out-of-range values saturate.
template <typename I> inline I to_int(double v, int mode) {
    if (v != v) return 0;
    double r = mode == 0 ? trunc(v) : mode == 1 ? nearbyint(v) : mode == 2 ? floor(v) : ceil(v);
    if (r <= (double)std::numeric_limits<I>::min()) return std::numeric_limits<I>::min();
    if (r >= (double)std::numeric_limits<I>::max()) return std::numeric_limits<I>::max();
    return (I)r;
}
}  // namespace __tessera_emu
#define TESSERA_EMU_CVT(suffix, mode) \
    inline int __float2int_##suffix(float v) { return ::__tessera_emu::to_int<int>(v, mode); } \
    inline unsigned __float2uint_##suffix(float v) { return ::__tessera_emu::to_int<unsigned>(v, mode); } \
    inline long long __float2ll_##suffix(float v) { return ::__tessera_emu::to_int<long long>(v, mode); } \
    inline unsigned long long __float2ull_##suffix(float v) { return ::__tessera_emu::to_int<unsigned long long>(v, mode); } \
    inline int __double2int_##suffix(double v) { return ::__tessera_emu::to_int<int>(v, mode); } \
    inline long long __double2ll_##suffix(double v) { return ::__tessera_emu::to_int<long long>(v, mode); }
TESSERA_EMU_CVT(rz, 0)
TESSERA_EMU_CVT(rn, 1)
TESSERA_EMU_CVT(rd, 2)
TESSERA_EMU_CVT(ru, 3)
#undef TESSERA_EMU_CVT
inline float __int2float_rn(int v) { return (float)v; }
inline float __uint2float_rn(unsigned v) { return (float)v; }
inline float __ll2float_rn(long long v) { return (float)v; }
inline double __int2double_rn(int v) { return (double)v; }
inline float __double2float_rn(double v) { return (float)v; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned)x); }
inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned __brev(unsigned x) {
    unsigned r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    unsigned long long v = ((unsigned long long)y << 32) | x;
    unsigned r = 0;
    for (int i = 0; i < 4; ++i) r |= (unsigned)((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
    return r;
}
inline unsigned __funnelshift_l(unsigned lo, unsigned hi, unsigned s) {
    s &= 31; return s == 0 ? hi : (hi << s) | (lo >> (32 - s));
}
inline unsigned __funnelshift_r(unsigned lo, unsigned hi, unsigned s) {
    s &= 31; return s == 0 ? lo : (lo >> s) | (hi << (32 - s));
}
inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
inline int __mul24(int a, int b) { return (int)(((long long)(a << 8 >> 8)) * (b << 8 >> 8)); }
inline unsigned __umul24(unsigned a, unsigned b) { return (a & 0xffffffu) * (b & 0xffffffu); }

// ---- min/max overloads CUDA declares globally ----
#define TESSERA_EMU_MINMAX(T) \
    inline T min(T a, T b) { return a < b ? a : b; } \
    inline T max(T a, T b) { return a > b ? a : b; }
TESSERA_EMU_MINMAX(int)
TESSERA_EMU_MINMAX(unsigned int)
TESSERA_EMU_MINMAX(long)
TESSERA_EMU_MINMAX(unsigned long)
TESSERA_EMU_MINMAX(long long)
TESSERA_EMU_MINMAX(unsigned long long)
#undef TESSERA_EMU_MINMAX
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
inline double min(float a, double b) { return fmin(a, b); }
inline double max(float a, double b) { return fmax(a, b); }
inline double min(double a, float b) { return fmin(a, b); }
inline double max(double a, float b) { return fmax(a, b); }

// ---- math functions and intrinsics the host libm lacks ----
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float sinpif(float x) { return (float)sin(M_PI * (double)x); }
inline float cospif(float x) { return (float)cos(M_PI * (double)x); }
inline float normcdff(float x) { return 0.5f * erfcf(-x * (float)M_SQRT1_2); }
inline double normcdf(double x) { return 0.5 * erfc(-x * M_SQRT1_2); }
inline double erfinv(double y) {
    if (y <= -1.0) return y == -1.0 ? -INFINITY : NAN;
    if (y >= 1.0) return y == 1.0 ? INFINITY : NAN;
    // Giles' single-precision start, then Newton steps on erf in double.
    double w = -log((1.0 - y) * (1.0 + y)), x;
    if (w < 5.0) {
        w -= 2.5;
        x = 2.81022636e-08;
        for (double c : {3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503,
                         -0.00417768164, 0.246640727, 1.50140941}) x = c + x * w;
    } else {
        w = sqrt(w) - 3.0;
        x = -0.000200214257;
        for (double c : {0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613,
                         0.00943887047, 1.00167406, 2.83297682}) x = c + x * w;
    }
    x *= y;
    for (int i = 0; i < 3; ++i) x -= (erf(x) - y) / (M_2_SQRTPI * exp(-x * x));
    return x;
}
inline float erfinvf(float y) { return (float)erfinv((double)y); }
inline float erfcinvf(float y) { return (float)erfinv(1.0 - (double)y); }
inline float __expf(float x) { return expf(x); }
inline float __exp10f(float x) { return exp10f(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __log10f(float x) { return log10f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __tanf(float x) { return tanf(x); }
inline void __sincosf(float x, float* s, float* c) { sincosf(x, s, c); }
inline float __powf(float a, float b) { return powf(a, b); }
inline float __fdividef(float a, float b) { return a / b; }
inline float fdividef(float a, float b) { return a / b; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }

// ---- inline PTX instructions (libnvrtc_emu.so rewrites asm statements into these) ----
namespace __ptx {
using tessera_emu_half::h2f;
using tessera_emu_half::d2h;
using tessera_emu_half::f2bf;
template <typename D, typename S> inline void cvt_f32_f16(D& d, S s) { d = h2f((unsigned short)s); }
template <typename D, typename S> inline void cvt_f64_f16(D& d, S s) { d = (double)h2f((unsigned short)s); }
template <typename D, typename S> inline void cvt_rn_f16_f32(D& d, S s) { d = d2h((double)(float)s); }
template <typename D, typename S> inline void cvt_rn_f16_f64(D& d, S s) { d = d2h((double)s); }
template <typename D, typename S> inline void cvt_f32_bf16(D& d, S s) { d = __uint_as_float((unsigned)(unsigned short)s << 16); }
template <typename D, typename S> inline void cvt_rn_bf16_f32(D& d, S s) { d = f2bf((float)s); }
// Pairs: the first source goes to the upper half.
template <typename D, typename A, typename B> inline void cvt_rn_f16x2_f32(D& d, A a, B b) {
    d = ((unsigned)d2h((double)(float)a) << 16) | d2h((double)(float)b);
}
template <typename D, typename A, typename B> inline void cvt_rn_bf16x2_f32(D& d, A a, B b) {
    d = ((unsigned)f2bf((float)a) << 16) | f2bf((float)b);
}
template <typename D, typename S> inline void cvt_rzi_s32_f32(D& d, S s) { d = ::__tessera_emu::to_int<int>((float)s, 0); }
template <typename D, typename S> inline void cvt_rni_s32_f32(D& d, S s) { d = ::__tessera_emu::to_int<int>((float)s, 1); }
template <typename D, typename S> inline void mov_b32(D& d, S s) { d = s; }
template <typename D, typename S> inline void mov_b64(D& d, S s) { d = s; }
template <typename D, typename S> inline void mov_u32(D& d, S s) { d = s; }
inline void membar_gl() { __threadfence(); }
inline void membar_cta() { __threadfence_block(); }
inline void membar_sys() { __threadfence_system(); }
inline void trap() { __trap(); }
}  // namespace __ptx

// ---- registration: libnvrtc_emu.so appends one launcher per kernel ----
namespace __tessera_emu {
template <typename... A, size_t... I> inline void call(void (*f)(A...), void** p, std::index_sequence<I...>) {
    f(*static_cast<typename std::remove_cv<A>::type*>(p[I])...);
}
template <typename... A> inline void invoke(void (*f)(A...), void** p) { call(f, p, std::index_sequence_for<A...>{}); }
template <typename... A> inline const KernelInfo* info(void (*)(A...)) {
    static const unsigned sizes[] = {(unsigned)sizeof(A)..., 0u};
    static const unsigned char pointers[] = {(unsigned char)std::is_pointer<A>::value..., 0};
    static const KernelInfo result = {(unsigned)sizeof...(A), sizes, pointers};
    return &result;
}
}  // namespace __tessera_emu
extern "C" int __tessera_emu_bind(const ::__tessera_emu::Runtime* runtime) {
    ::__tessera_emu::rt = runtime;
    return TESSERA_EMU_ABI;
}
