// float16 and bfloat16 conversions, bit-exact (round to nearest even; NaN
// stays NaN; overflow to infinity), shared by the kernel header's inline-PTX
// `cvt` functions and the cuBLASLt emulator.
#pragma once
#include <math.h>
#include <string.h>

namespace tessera_emu_half {

inline float bitsToFloat(unsigned u) { float f; memcpy(&f, &u, 4); return f; }
inline unsigned floatToBits(float f) { unsigned u; memcpy(&u, &f, 4); return u; }

inline float h2f(unsigned short h) {
    unsigned sign = (unsigned)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0x1f) bits = sign | 0x7f800000u | (m << 13);
    else if (e != 0) bits = sign | ((e + 112) << 23) | (m << 13);
    else if (m == 0) bits = sign;
    else {  // subnormal
        e = 113;
        while (!(m & 0x400)) { m <<= 1; --e; }
        bits = sign | (e << 23) | ((m & 0x3ff) << 13);
    }
    return bitsToFloat(bits);
}

// From double, so both float and double inputs round once.
inline unsigned short d2h(double x) {
    unsigned short sign = signbit(x) ? 0x8000 : 0;
    double a = fabs(x);
    if (a != a) return sign | 0x7e00;
    if (a >= 65520.0) return sign | 0x7c00;  // rounds to infinity
    if (a < 6.103515625e-05) return sign | (unsigned short)nearbyint(a * 16777216.0);  // subnormal: units of 2^-24
    int e;
    double f = frexp(a, &e);  // a = f * 2^e, f in [0.5, 1)
    double q = nearbyint(f * 2048.0);  // 11 significant bits, ties to even
    if (q == 2048.0) { q = 1024.0; ++e; }
    int he = e - 1 + 15;
    if (he >= 31) return sign | 0x7c00;
    return sign | (unsigned short)(he << 10) | (unsigned short)((unsigned)q & 0x3ff);
}

inline float bf2f(unsigned short b) { return bitsToFloat((unsigned)b << 16); }

inline unsigned short f2bf(float x) {
    unsigned u = floatToBits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

}  // namespace tessera_emu_half
