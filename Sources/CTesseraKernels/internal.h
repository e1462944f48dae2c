// Internal: the table of kernels one instruction-set variant provides, and
// scalar helpers shared by all variants.
#ifndef CTESSERA_INTERNAL_H
#define CTESSERA_INTERNAL_H

#include <stdint.h>
#include <string.h>
#include "include/CTesseraKernels.h"

typedef struct {
    void (*binary)(int, int, const void *, long, const void *, long, void *, long);
    void (*unary)(int, int, const void *, void *, long);
    void (*convert)(int, const void *, int, void *, long);
    void (*reduce_rows)(int, int, const void *, long, long, void *);
    void (*reduce_cols)(int, int, const void *, long, long, long, void *);
    void (*softmax_rows)(int, const void *, void *, long, long);
    void (*rmsnorm_rows)(int, const void *, const void *, float, void *, long, long);
    void (*layernorm_rows)(int, const void *, const void *, const void *, float, void *, long, long);
    void (*gemm)(long, long, long, int, const void *, long, long, int, const void *, long, long, float, float *, long);
    void (*gemv)(int, int, const void *, long, const float *, long, float *, long);
    void (*qmv)(int, int, const void *, const uint32_t *, const void *, const void *, void *, long, long, long, int, int,
                long, long);
    void (*dequantize_rows)(int, const uint32_t *, const void *, const void *, float *, long, int, int, long, long);
    void (*attention)(const tk_attention_args *);
    void (*attention_flash_keys)(const tk_attention_args *, float *);
    void (*attention_flash)(const tk_attention_args *, const float *, long, long);
} tk_table;

extern const tk_table tk_table_baseline;
#if defined(__x86_64__)
extern const tk_table tk_table_avx2;
extern const tk_table tk_table_avx512;
#endif

// IEEE half <-> float, round to nearest even (matches Swift's Float16).
static inline float tk_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000 | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3FF) << 13);
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t tk_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7FFFFFFF;
    if (ax >= 0x7F800000) return (uint16_t)(sign | 0x7C00 | (ax > 0x7F800000 ? 0x200 | ((ax >> 13) & 0x3FF) : 0));
    if (ax >= 0x477FF000) return (uint16_t)(sign | 0x7C00);  // rounds past 65504
    if (ax < 0x38800000) {  // result subnormal or zero
        if (ax < 0x33000000) return (uint16_t)sign;  // below half the smallest subnormal
        uint32_t e = ax >> 23, man = (ax & 0x7FFFFF) | 0x800000;
        uint32_t shift = 126 - e;  // value = man * 2^(e-150); half subnormal unit 2^-24
        uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax + 0xFFF + ((ax >> 13) & 1);  // round to nearest even on bit 13
    return (uint16_t)(sign | ((r - 0x38000000) >> 13));
}

static inline float tk_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t tk_float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if (f != f) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7FFF + ((x >> 16) & 1)) >> 16);
}

static inline float tk_load1(int dtype, const void *p, long i) {
    switch (dtype) {
    case TK_F32: return ((const float *)p)[i];
    case TK_F16: return tk_half_to_float(((const uint16_t *)p)[i]);
    default: return tk_bf16_to_float(((const uint16_t *)p)[i]);
    }
}

static inline void tk_store1(int dtype, void *p, long i, float v) {
    switch (dtype) {
    case TK_F32: ((float *)p)[i] = v; break;
    case TK_F16: ((uint16_t *)p)[i] = tk_float_to_half(v); break;
    default: ((uint16_t *)p)[i] = tk_float_to_bf16(v); break;
    }
}

static inline int tk_size(int dtype) { return dtype == TK_F32 ? 4 : 2; }

#endif
