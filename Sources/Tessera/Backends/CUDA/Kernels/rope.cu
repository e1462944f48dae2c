// Rotary position embedding of the first `dims` features of rows of length n
// (the last axis); row r is position offset + r % L (L: the second-to-last
// axis). One thread per rotated pair or copied feature. Angles in double, as
// the CPU: theta = position * scale * base^(-2i/dims), or
// position * scale / freqs[i] with a float32 `freqs` (null without).
// traditional: pairs (2i, 2i+1), else (i, i + dims/2). Output row-contiguous.
// Kernel names: rope_<f32|f16|bf16>.
#include "dense.cuh"

template <typename T>
__device__ void rope_rows(const T* x, T* y, const float* freqs, i64 fs, i64 rows, i64 n, i64 L, int dims, int traditional,
                          float base, float scale, i64 offset, i64 xs, int kn, const Dims& ks, const Dims& kst) {
    i64 half = dims / 2;
    i64 per = half + (n - dims);
    if (per <= 0) return;
    TESSERA_GRID_LOOP(t, rows * per) {
        i64 r = t / per, i = t % per;
        const T* src = x + strided_offset(r, kn, ks, kst);
        T* o = y + r * n;
        if (i < half) {
            double inverse = freqs ? 1.0 / (double)freqs[i * fs] : pow((double)base, -2.0 * (double)i / (double)dims);
            double position = (double)(offset + r % (L > 0 ? L : 1)) * (double)scale;
            double theta = position * inverse;
            float c = (float)cos(theta), s = (float)sin(theta);
            i64 a = traditional ? 2 * i : i, b = traditional ? 2 * i + 1 : i + half;
            float x1 = to_float(src[a * xs]), x2 = to_float(src[b * xs]);
            o[a] = from_float<T>(x1 * c - x2 * s);
            o[b] = from_float<T>(x1 * s + x2 * c);
        } else {
            i64 j = dims + (i - half);
            o[j] = src[j * xs];
        }
    }
}

#define ROPE(T, s) \
    extern "C" __global__ void rope_##s(const T* x, T* y, const float* freqs, i64 fs, i64 rows, i64 n, i64 L, \
                                        int dims, int traditional, float base, float scale, i64 offset, i64 xs, int kn, \
                                        Dims ks, Dims kst) { \
        rope_rows<T>(x, y, freqs, fs, rows, n, L, dims, traditional, base, scale, offset, xs, kn, ks, kst); \
    }
ROPE(float, f32) ROPE(f16, f16) ROPE(bf16, bf16)
