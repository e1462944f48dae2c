// Internal: what the two integer prefill kernels (kernels_qgemm_vnni.c for
// AVX-512 VNNI, kernels_qgemm_avx2.c for AVX2) share: the packed panel of 32
// weight columns with its transposed scales and biases.
#ifndef CTESSERA_QGEMM_H
#define CTESSERA_QGEMM_H

#include <stdint.h>

void tk_qg_panel(int sdt, const uint32_t *wq, const void *scales, const void *biases, long N, long K, int group,
                 long n0, void *scratch);
void tk_qg_panel8(int sdt, const uint32_t *wq, const void *scales, const void *biases, long N, long K, int group,
                  long n0, void *scratch);
void tk_qg_panel_scales(int sdt, const void *scales, const void *biases, long N, long K, int group, long n0,
                        void *scratch);

#if defined(__x86_64__)
void tk_qg_sums(const float *x, long M, long K, int group, int XB, void *prepared);
int tk_qg_prepare_avx2(const float *x, long M, long K, int group, int XB, void *prepared);
void tk_qgemm4_avx2(int sdt, const void *prepared, const uint32_t *wq, const void *scales, const void *biases,
                    float *out, long M, long N, long K, int group, int XB, long n0, long n1, void *scratch);
#endif

#endif
