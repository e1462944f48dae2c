// Random bits (the randomBits primitive): MLX's threefry-2x32 layout, bit for
// bit as CPURandom.swift. Each key (2 uint32 words, any strides) fills its
// block of `bytesPerKey` output bytes with `words = ceil(bytesPerKey / 4)`
// 32-bit words: with half = words / 2 and odd = words % 2, counter j < half
// hashes (j, j + half + odd) into words j and j + half + odd; an odd middle
// word is hash(half, 0).first. One thread per (key, counter).
// Launch: grid-stride over keyCount * (half + odd) threads.
// Kernel names: random_bits.
#include "common.cuh"

__device__ __forceinline__ u32 rotl32(u32 x, u32 r) { return (x << r) | (x >> (32u - r)); }

__device__ __forceinline__ void threefry2x32(u32 k0, u32 k1, u32 c0, u32 c1, u32& o0, u32& o1) {
    const u32 rot[2][4] = {{13u, 15u, 26u, 6u}, {17u, 29u, 16u, 24u}};
    const u32 ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
    u32 x0 = c0 + ks[0], x1 = c1 + ks[1];
#pragma unroll
    for (int i = 0; i < 5; ++i) {
#pragma unroll
        for (int r = 0; r < 4; ++r) {
            x0 += x1;
            x1 = rotl32(x1, rot[i % 2][r]);
            x1 ^= x0;
        }
        x0 += ks[(i + 1) % 3];
        x1 += ks[(i + 2) % 3] + (u32)(i + 1);
    }
    o0 = x0;
    o1 = x1;
}

// Writes word `w` (index `index` of the key's block) into the block's bytes, cut at bytesPerKey.
__device__ __forceinline__ void put_word(u8* block, i64 bytesPerKey, i64 index, u32 w) {
    i64 at = index * 4;
    if (at + 4 <= bytesPerKey && (bytesPerKey & 3) == 0) {
        *(u32*)(block + at) = w;
        return;
    }
    for (int b = 0; b < 4 && at + b < bytesPerKey; ++b) block[at + b] = (u8)(w >> (8 * b));
}

extern "C" __global__ void random_bits(const u32* keys, u8* out, i64 keyCount, i64 bytesPerKey, int kn,
                                       Dims kshape, Dims kstrides, i64 lastStride) {
    i64 words = (bytesPerKey + 3) / 4;
    i64 half = words / 2, odd = words % 2, perKey = half + odd;
    TESSERA_GRID_LOOP(t, keyCount * perKey) {
        i64 k = t / perKey, j = t % perKey;
        i64 ko = strided_offset(k, kn, kshape, kstrides);  // kn: the key batch axes, never linear
        u32 k0 = keys[ko], k1 = keys[ko + lastStride];
        u8* block = out + k * bytesPerKey;
        u32 a, b;
        if (j < half) {
            threefry2x32(k0, k1, (u32)j, (u32)(j + half + odd), a, b);
            put_word(block, bytesPerKey, j, a);
            put_word(block, bytesPerKey, j + half + odd, b);
        } else {
            threefry2x32(k0, k1, (u32)half, 0u, a, b);
            put_word(block, bytesPerKey, half, a);
        }
    }
}
