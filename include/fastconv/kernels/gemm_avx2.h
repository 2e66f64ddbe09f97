/* AVX2 + FMA3 GEMM micro-kernels: a 6 x (2 vectors) tile in 12 ymm accumulators; per k, two B
 * vectors are loaded and each of the 6 A values is broadcast and FMA'd into both. The C tile
 * is prefetched at the start, A 64 steps ahead (hides L3 latency when A streams from L3).
 *   fc_gemm_f32_6x16__avx2_fma_broadcast, fc_gemm_f64_6x8__avx2_fma_broadcast
 * Contract: see fc_gemm_ukernel_<t>_fn in fastconv/gemm.h.
 * Template: the body below the guard is included once per dtype with FC_GA_* set.
 */
#ifndef FC_GA_T
#ifndef FASTCONV_KERNELS_GEMM_AVX2_H
#define FASTCONV_KERNELS_GEMM_AVX2_H

#include <immintrin.h>
#include <stddef.h>

#include "fastconv/common.h"

#define FC_GEMM_AVX2_MR 6

#define FC_GA_T float
#define FC_GA_V __m256
#define FC_GA_W 8
#define FC_GA_NAME fc_gemm_f32_6x16__avx2_fma_broadcast
#define FC_GA_ZERO _mm256_setzero_ps
#define FC_GA_LOAD _mm256_loadu_ps
#define FC_GA_STORE _mm256_storeu_ps
#define FC_GA_SET1 _mm256_set1_ps
#define FC_GA_FMA _mm256_fmadd_ps
#define FC_GA_ADD _mm256_add_ps
#include "fastconv/kernels/gemm_avx2.h"
#undef FC_GA_T
#undef FC_GA_V
#undef FC_GA_W
#undef FC_GA_NAME
#undef FC_GA_ZERO
#undef FC_GA_LOAD
#undef FC_GA_STORE
#undef FC_GA_SET1
#undef FC_GA_FMA
#undef FC_GA_ADD

#define FC_GA_T double
#define FC_GA_V __m256d
#define FC_GA_W 4
#define FC_GA_NAME fc_gemm_f64_6x8__avx2_fma_broadcast
#define FC_GA_ZERO _mm256_setzero_pd
#define FC_GA_LOAD _mm256_loadu_pd
#define FC_GA_STORE _mm256_storeu_pd
#define FC_GA_SET1 _mm256_set1_pd
#define FC_GA_FMA _mm256_fmadd_pd
#define FC_GA_ADD _mm256_add_pd
#include "fastconv/kernels/gemm_avx2.h"
#undef FC_GA_T
#undef FC_GA_V
#undef FC_GA_W
#undef FC_GA_NAME
#undef FC_GA_ZERO
#undef FC_GA_LOAD
#undef FC_GA_STORE
#undef FC_GA_SET1
#undef FC_GA_FMA
#undef FC_GA_ADD

#endif
#else /* template body */

#define MR FC_GEMM_AVX2_MR
#define NR (2 * FC_GA_W)
#ifndef FC_GA_PREFETCH_A
#define FC_GA_PREFETCH_A (64 * MR) /* elements of A ahead of the current k */
#endif
static void FC_GA_NAME(int kc, const FC_GA_T *FC_RESTRICT a, const FC_GA_T *FC_RESTRICT b,
                       FC_GA_T *FC_RESTRICT c, ptrdiff_t ldc, int m, int n,
                       const FC_GA_T *FC_RESTRICT bias, int accumulate)
{
    FC_GA_V acc[MR][2];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = FC_GA_ZERO();
    /* the C tile is touched only at the end: start fetching it now */
    for (int i = 0; i < m; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        FC_GA_V b0 = FC_GA_LOAD(b), b1 = FC_GA_LOAD(b + FC_GA_W);
        _mm_prefetch((const char *)(a + FC_GA_PREFETCH_A), _MM_HINT_T0);
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            FC_GA_V ai = FC_GA_SET1(a[i]);
            acc[i][0] = FC_GA_FMA(ai, b0, acc[i][0]);
            acc[i][1] = FC_GA_FMA(ai, b1, acc[i][1]);
        }
        a += MR;
        b += NR;
    }
    if (m == MR && n == NR) {
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            FC_GA_T *ci = c + i * ldc;
            FC_GA_V r0 = acc[i][0], r1 = acc[i][1];
            if (bias) {
                r0 = FC_GA_ADD(r0, FC_GA_SET1(bias[i]));
                r1 = FC_GA_ADD(r1, FC_GA_SET1(bias[i]));
            }
            if (accumulate) {
                r0 = FC_GA_ADD(r0, FC_GA_LOAD(ci));
                r1 = FC_GA_ADD(r1, FC_GA_LOAD(ci + FC_GA_W));
            }
            FC_GA_STORE(ci, r0);
            FC_GA_STORE(ci + FC_GA_W, r1);
        }
    } else {
        /* edge tile: spill to the stack, copy the valid corner */
        FC_GA_T tile[MR * NR];
#pragma GCC unroll 8
        for (int i = 0; i < MR; i++) {
            FC_GA_STORE(tile + i * NR, acc[i][0]);
            FC_GA_STORE(tile + i * NR + FC_GA_W, acc[i][1]);
        }
        for (int i = 0; i < m; i++) {
            FC_GA_T *ci = c + i * ldc;
            FC_GA_T add = bias ? bias[i] : 0;
            for (int j = 0; j < n; j++)
                ci[j] = (accumulate ? ci[j] : 0) + tile[i * NR + j] + add;
        }
    }
}
#undef MR
#undef NR
#undef FC_GA_PREFETCH_A

#endif /* template body */
