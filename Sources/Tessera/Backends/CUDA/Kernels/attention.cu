// Scaled dot-product attention: softmax(q k^T * scale + mask) v, online
// softmax in float. q [B, Hq, Lq, D], k [B, Hkv, Lk, D], v [B, Hkv, Lk, Dv],
// any strides (qs, ks, vs: the four strides of each); query head h reads kv
// head h / (Hq / Hkv). causal: query i sees keys j <= i + Lk - Lq. mask
// (maskKind 1: bool, true keeps; 2: additive, the element type; 0: none),
// strides ms over [B, Hq, Lq, Lk] (0 where broadcast). Output row-contiguous
// [B, Hq, Lq, Dv]. A row with every key masked gives NaN, as the CPU.
//
// attention_row_<t>: one block of ATTN_ROW_THREADS per query row (the decode
//   kernel for Lq = 1; any Lq); warps take keys in turn, each with its own
//   running max/sum/accumulator, merged at the end. Dv <= 256. Dynamic shared
//   memory: (D + warps * (Dv + 2)) floats. Split-K (long keys, few rows):
//   with `partial` non-null, grid.y blocks each take `chunk` keys of the row
//   and write (max, sum, Dv unnormalised accumulators) floats to
//   partial[(row * splits + split) * (Dv + 2)]; attention_combine_<t> (one
//   block per row) merges them into the output.
// attention_flash_<t>: prefill; a block of ATTN_FLASH_THREADS takes
//   ATTN_BQ query rows (ATTN_BQ / 4 per warp) and walks key tiles of ATTN_BK
//   staged in shared memory; lane j scores key j of the tile. D, Dv <= 128.
//   Dynamic shared memory: (BQ * D + BK * (D + 1) + BK * Dv) floats.
#include "dense.cuh"

#define ATTN_ROW_THREADS 128
#define ATTN_FLASH_THREADS 128
#define ATTN_BQ 16
#define ATTN_BK 32

// The sizes come as one Dims: Hq, Hkv, Lq, Lk, D, Dv, causal, maskKind.
struct AttnArgs {
    i64 Hq, Hkv, Lq, Lk;
    int D, Dv, causal, maskKind;
    float scale;
};

__device__ __forceinline__ AttnArgs attn_args(const Dims& sizes, float scale) {
    AttnArgs p;
    p.Hq = sizes.v[0]; p.Hkv = sizes.v[1]; p.Lq = sizes.v[2]; p.Lk = sizes.v[3];
    p.D = (int)sizes.v[4]; p.Dv = (int)sizes.v[5]; p.causal = (int)sizes.v[6]; p.maskKind = (int)sizes.v[7];
    p.scale = scale;
    return p;
}

// The score's mask term for (b, h, i, j): -inf when the key is hidden, else
// the additive term (0 without).
template <typename T>
__device__ __forceinline__ float mask_term(const void* mask, int kind, const Dims& ms, i64 b, i64 h, i64 i, i64 j) {
    if (kind == 0) return 0.0f;
    i64 at = b * ms.v[0] + h * ms.v[1] + i * ms.v[2] + j * ms.v[3];
    if (kind == 1) return ((const u8*)mask)[at] ? 0.0f : -DENSE_INF;
    return to_float(((const T*)mask)[at]);
}

template <typename T>
__device__ void attention_row(const T* q, const T* k, const T* v, const void* mask, T* out, const AttnArgs& p,
                              const Dims& qs, const Dims& ks, const Dims& vs, const Dims& ms, float* partial,
                              i64 chunk) {
    DENSE_SMEM;
    const int warps = ATTN_ROW_THREADS / 32;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    i64 row = blockIdx.x;  // (b * Hq + h) * Lq + i
    i64 i = row % p.Lq, h = (row / p.Lq) % p.Hq, b = row / (p.Lq * p.Hq);
    i64 kh = h / (p.Hq / p.Hkv);
    float* qsh = dense_smem;
    float* wacc = qsh + p.D;
    float* wm = wacc + warps * p.Dv;
    float* wl = wm + warps;
    const T* qrow = q + b * qs.v[0] + h * qs.v[1] + i * qs.v[2];
    for (int d = threadIdx.x; d < p.D; d += blockDim.x) qsh[d] = to_float(qrow[d * qs.v[3]]);
    __syncthreads();
    const T* kb = k + b * ks.v[0] + kh * ks.v[1];
    const T* vb = v + b * vs.v[0] + kh * vs.v[1];
    float m = -DENSE_INF, l = 0.0f, acc[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[e] = 0.0f;
    i64 last = p.causal ? i + p.Lk - p.Lq : p.Lk - 1;
    if (last > p.Lk - 1) last = p.Lk - 1;
    i64 first = 0;
    if (partial) {  // split-K: this block takes keys [split * chunk, (split + 1) * chunk)
        first = (i64)blockIdx.y * chunk;
        if (last > first + chunk - 1) last = first + chunk - 1;
    }
    for (i64 j = first + warp; j <= last; j += warps) {
        const T* krow = kb + j * ks.v[2];
        float dot = 0.0f;
        for (int d = lane; d < p.D; d += 32) dot += qsh[d] * to_float(krow[d * ks.v[3]]);
        float s = warp_sum(dot) * p.scale + mask_term<T>((const void*)mask, p.maskKind, ms, b, h, i, j);
        if (s == -DENSE_INF) continue;
        float mNew = fmaxf(m, s);
        float alpha = expf(m - mNew), w = expf(s - mNew);
        l = l * alpha + w;
        m = mNew;
        const T* vrow = vb + j * vs.v[2];
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            int d = lane + 32 * e;
            if (d < p.Dv) acc[e] = acc[e] * alpha + w * to_float(vrow[d * vs.v[3]]);
        }
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) {
        int d = lane + 32 * e;
        if (d < p.Dv) wacc[warp * p.Dv + d] = acc[e];
    }
    if (lane == 0) { wm[warp] = m; wl[warp] = l; }
    __syncthreads();
    float mAll = -DENSE_INF;
    for (int w = 0; w < warps; ++w) mAll = fmaxf(mAll, wm[w]);
    float lAll = 0.0f;
    for (int w = 0; w < warps; ++w) lAll += wm[w] == -DENSE_INF ? 0.0f : wl[w] * expf(wm[w] - mAll);
    T* o = out + row * p.Dv;
    // split-K partial: (max, sum, unnormalised accumulators) of this block's keys
    float* part = partial ? partial + (row * gridDim.y + blockIdx.y) * (p.Dv + 2) : nullptr;
    if (part && threadIdx.x == 0) { part[0] = mAll; part[1] = lAll; }
    for (int d = threadIdx.x; d < p.Dv; d += blockDim.x) {
        float sum = 0.0f;
        for (int w = 0; w < warps; ++w) {
            if (wm[w] != -DENSE_INF) sum += wacc[w * p.Dv + d] * expf(wm[w] - mAll);
        }
        if (part) part[2 + d] = sum;
        else o[d] = from_float<T>(mAll == -DENSE_INF ? __int_as_float(0x7fc00000) : sum / lAll);
    }
}

// Merges the split-K partials of each query row (one block per row).
template <typename T>
__device__ void attention_combine(const float* partial, T* out, i64 splits, int Dv) {
    i64 row = blockIdx.x;
    const float* part = partial + row * splits * (Dv + 2);
    float mAll = -DENSE_INF;
    for (i64 s = 0; s < splits; ++s) mAll = fmaxf(mAll, part[s * (Dv + 2)]);
    float lAll = 0.0f;
    for (i64 s = 0; s < splits; ++s) {
        float m = part[s * (Dv + 2)];
        if (m != -DENSE_INF) lAll += part[s * (Dv + 2) + 1] * expf(m - mAll);
    }
    for (int d = threadIdx.x; d < Dv; d += blockDim.x) {
        float sum = 0.0f;
        for (i64 s = 0; s < splits; ++s) {
            float m = part[s * (Dv + 2)];
            if (m != -DENSE_INF) sum += part[s * (Dv + 2) + 2 + d] * expf(m - mAll);
        }
        out[row * Dv + d] = from_float<T>(mAll == -DENSE_INF ? __int_as_float(0x7fc00000) : sum / lAll);
    }
}

template <typename T>
__device__ void attention_flash(const T* q, const T* k, const T* v, const void* mask, T* out, const AttnArgs& p,
                                const Dims& qs, const Dims& ks, const Dims& vs, const Dims& ms) {
    DENSE_SMEM;
    const int rowsPerWarp = ATTN_BQ / (ATTN_FLASH_THREADS / 32);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    i64 q0 = (i64)blockIdx.x * ATTN_BQ;
    i64 bh = blockIdx.y, h = bh % p.Hq, b = bh / p.Hq, kh = h / (p.Hq / p.Hkv);
    int D = p.D, Dv = p.Dv;
    float* Qs = dense_smem;          // [BQ][D]
    float* Ks = Qs + ATTN_BQ * D;    // [BK][D + 1]
    float* Vs = Ks + ATTN_BK * (D + 1);  // [BK][Dv]
    for (int t = threadIdx.x; t < ATTN_BQ * D; t += blockDim.x) {
        i64 i = q0 + t / D;
        int d = t % D;
        Qs[t] = i < p.Lq ? to_float(q[b * qs.v[0] + h * qs.v[1] + i * qs.v[2] + d * qs.v[3]]) : 0.0f;
    }
    const T* kb = k + b * ks.v[0] + kh * ks.v[1];
    const T* vb = v + b * vs.v[0] + kh * vs.v[1];
    float m[rowsPerWarp], l[rowsPerWarp], acc[rowsPerWarp][4];
#pragma unroll
    for (int r = 0; r < rowsPerWarp; ++r) {
        m[r] = -DENSE_INF;
        l[r] = 0.0f;
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[r][e] = 0.0f;
    }
    i64 qLast = q0 + ATTN_BQ - 1 < p.Lq - 1 ? q0 + ATTN_BQ - 1 : p.Lq - 1;
    i64 kEnd = p.causal ? qLast + p.Lk - p.Lq + 1 : p.Lk;
    if (kEnd > p.Lk) kEnd = p.Lk;
    for (i64 k0 = 0; k0 < kEnd; k0 += ATTN_BK) {
        __syncthreads();  // the previous tile's readers are done (and Qs is written)
        for (int t = threadIdx.x; t < ATTN_BK * D; t += blockDim.x) {
            int jj = t / D, d = t % D;
            i64 j = k0 + jj;
            Ks[jj * (D + 1) + d] = j < p.Lk ? to_float(kb[j * ks.v[2] + d * ks.v[3]]) : 0.0f;
        }
        for (int t = threadIdx.x; t < ATTN_BK * Dv; t += blockDim.x) {
            int jj = t / Dv, d = t % Dv;
            i64 j = k0 + jj;
            Vs[t] = j < p.Lk ? to_float(vb[j * vs.v[2] + d * vs.v[3]]) : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < rowsPerWarp; ++r) {
            int qi = warp * rowsPerWarp + r;
            i64 i = q0 + qi;
            if (i >= p.Lq) continue;  // warp-uniform
            i64 j = k0 + lane;
            float s = -DENSE_INF;
            bool visible = j < p.Lk && !(p.causal && j > i + p.Lk - p.Lq);
            if (visible) {
                float dot = 0.0f;
                const float* qrow = Qs + qi * D;
                const float* krow = Ks + lane * (D + 1);
                for (int d = 0; d < D; ++d) dot += qrow[d] * krow[d];
                s = dot * p.scale + mask_term<T>(mask, p.maskKind, ms, b, h, i, j);
            }
            float tileMax = warp_max(s);
            float mNew = fmaxf(m[r], tileMax);
            if (mNew == -DENSE_INF) continue;  // nothing visible yet (warp-uniform)
            float w = s == -DENSE_INF ? 0.0f : expf(s - mNew);
            float alpha = expf(m[r] - mNew);
            l[r] = l[r] * alpha + warp_sum(w);
            m[r] = mNew;
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[r][e] *= alpha;
            for (int jj = 0; jj < ATTN_BK; ++jj) {
                float wj = __shfl_sync(0xffffffffu, w, jj);
                if (wj == 0.0f) continue;  // warp-uniform
                const float* vrow = Vs + jj * Dv;
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    int d = lane + 32 * e;
                    if (d < Dv) acc[r][e] += wj * vrow[d];
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < rowsPerWarp; ++r) {
        i64 i = q0 + warp * rowsPerWarp + r;
        if (i >= p.Lq) continue;
        T* o = out + ((b * p.Hq + h) * p.Lq + i) * Dv;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            int d = lane + 32 * e;
            if (d < Dv) o[d] = from_float<T>(m[r] == -DENSE_INF ? __int_as_float(0x7fc00000) : acc[r][e] / l[r]);
        }
    }
}

#define ATTENTION(T, s) \
    extern "C" __global__ void __launch_bounds__(ATTN_ROW_THREADS) attention_row_##s( \
        const T* q, const T* k, const T* v, const void* mask, T* out, Dims sizes, float scale, Dims qs, Dims ks, \
        Dims vs, Dims ms, float* partial, i64 chunk) { \
        attention_row<T>(q, k, v, mask, out, attn_args(sizes, scale), qs, ks, vs, ms, partial, chunk); \
    } \
    extern "C" __global__ void __launch_bounds__(ATTN_ROW_THREADS) attention_combine_##s( \
        const float* partial, T* out, i64 splits, int Dv) { \
        attention_combine<T>(partial, out, splits, Dv); \
    } \
    extern "C" __global__ void __launch_bounds__(ATTN_FLASH_THREADS) attention_flash_##s( \
        const T* q, const T* k, const T* v, const void* mask, T* out, Dims sizes, float scale, Dims qs, Dims ks, \
        Dims vs, Dims ms) { \
        attention_flash<T>(q, k, v, mask, out, attn_args(sizes, scale), qs, ks, vs, ms); \
    }
ATTENTION(float, f32) ATTENTION(f16, f16) ATTENTION(bf16, bf16)
