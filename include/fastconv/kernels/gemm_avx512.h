/* AVX-512F GEMM micro-kernels: an 8 x (2 vectors) tile in 16 zmm accumulators; per k, two B
 * vectors are loaded and each of the 8 A values is broadcast and FMA'd into both (16
 * independent chains cover the 2 x 4-cycle FMA pipes). MR = 8 rather than 14: channel counts
 * are multiples of 8, so M = 64 or 512 wastes no rows (14 rows would pad 64 to 70), and
 * measured on Zen 5 it is as fast in L1 (98-100% of peak). The C tile is prefetched at the
 * start, A 64 steps (2 KiB) ahead: far enough to hide L3 latency when A streams from L3
 * (small N), and harmless when it sits in L2. Edge tiles use masked loads/stores.
 *   fc_gemm_f32_8x32__avx512f_broadcast, fc_gemm_f64_8x16__avx512f_broadcast
 * Contract: see fc_gemm_ukernel_<t>_fn in fastconv/gemm.h.
 * Template: the body below the guard is included once per dtype with FC_GX_* set.
 */
#ifndef FC_GX_T
#ifndef FASTCONV_KERNELS_GEMM_AVX512_H
#define FASTCONV_KERNELS_GEMM_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#include "fastconv/common.h"


#define FC_GEMM_AVX512_MR 8

#define FC_GX_T float
#define FC_GX_V __m512
#define FC_GX_W 16
#define FC_GX_MASK __mmask16
#define FC_GX_NAME fc_gemm_f32_8x32__avx512f_broadcast
#define FC_GX_ZERO _mm512_setzero_ps
#define FC_GX_LOAD _mm512_loadu_ps
#define FC_GX_MASKLOAD _mm512_maskz_loadu_ps
#define FC_GX_MASKSTORE _mm512_mask_storeu_ps
#define FC_GX_SET1 _mm512_set1_ps
#define FC_GX_FMA _mm512_fmadd_ps
#define FC_GX_ADD _mm512_add_ps
#include "fastconv/kernels/gemm_avx512.h"
#undef FC_GX_T
#undef FC_GX_V
#undef FC_GX_W
#undef FC_GX_MASK
#undef FC_GX_NAME
#undef FC_GX_ZERO
#undef FC_GX_LOAD
#undef FC_GX_MASKLOAD
#undef FC_GX_MASKSTORE
#undef FC_GX_SET1
#undef FC_GX_FMA
#undef FC_GX_ADD

#define FC_GX_T double
#define FC_GX_V __m512d
#define FC_GX_W 8
#define FC_GX_MASK __mmask8
#define FC_GX_NAME fc_gemm_f64_8x16__avx512f_broadcast
#define FC_GX_ZERO _mm512_setzero_pd
#define FC_GX_LOAD _mm512_loadu_pd
#define FC_GX_MASKLOAD _mm512_maskz_loadu_pd
#define FC_GX_MASKSTORE _mm512_mask_storeu_pd
#define FC_GX_SET1 _mm512_set1_pd
#define FC_GX_FMA _mm512_fmadd_pd
#define FC_GX_ADD _mm512_add_pd
#include "fastconv/kernels/gemm_avx512.h"
#undef FC_GX_T
#undef FC_GX_V
#undef FC_GX_W
#undef FC_GX_MASK
#undef FC_GX_NAME
#undef FC_GX_ZERO
#undef FC_GX_LOAD
#undef FC_GX_MASKLOAD
#undef FC_GX_MASKSTORE
#undef FC_GX_SET1
#undef FC_GX_FMA
#undef FC_GX_ADD

#endif
#else /* template body */

#define MR FC_GEMM_AVX512_MR
#define NR (2 * FC_GX_W)
#ifndef FC_GX_PREFETCH_A
#define FC_GX_PREFETCH_A (64 * MR) /* elements of A ahead of the current k */
#endif
static void FC_GX_NAME(int kc, const FC_GX_T *FC_RESTRICT a, const FC_GX_T *FC_RESTRICT b,
                       FC_GX_T *FC_RESTRICT c, ptrdiff_t ldc, int m, int n,
                       const FC_GX_T *FC_RESTRICT bias, int accumulate)
{
    FC_GX_V acc[MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = FC_GX_ZERO();
    /* the C tile is touched only at the end: start fetching it now */
    for (int i = 0; i < m; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        FC_GX_V b0 = FC_GX_LOAD(b), b1 = FC_GX_LOAD(b + FC_GX_W);
        _mm_prefetch((const char *)(a + FC_GX_PREFETCH_A), _MM_HINT_T0);
#pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            FC_GX_V ai = FC_GX_SET1(a[i]);
            acc[i][0] = FC_GX_FMA(ai, b0, acc[i][0]);
            acc[i][1] = FC_GX_FMA(ai, b1, acc[i][1]);
        }
        a += MR;
        b += NR;
    }
    /* lanes of each B vector that fall inside the n valid columns */
    int n0 = FC_MIN(n, FC_GX_W), n1 = FC_MAX(0, FC_MIN(n - FC_GX_W, FC_GX_W));
    FC_GX_MASK mask0 = (FC_GX_MASK)(n0 == FC_GX_W ? ~0u : (1u << n0) - 1u);
    FC_GX_MASK mask1 = (FC_GX_MASK)(n1 == FC_GX_W ? ~0u : (1u << n1) - 1u);
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if (i < m) {
            FC_GX_T *ci = c + i * ldc;
            FC_GX_V r0 = acc[i][0], r1 = acc[i][1];
            if (bias) {
                r0 = FC_GX_ADD(r0, FC_GX_SET1(bias[i]));
                r1 = FC_GX_ADD(r1, FC_GX_SET1(bias[i]));
            }
            if (accumulate) {
                r0 = FC_GX_ADD(r0, FC_GX_MASKLOAD(mask0, ci));
                r1 = FC_GX_ADD(r1, FC_GX_MASKLOAD(mask1, ci + FC_GX_W));
            }
            FC_GX_MASKSTORE(ci, mask0, r0);
            FC_GX_MASKSTORE(ci + FC_GX_W, mask1, r1);
        }
    }
}
#undef MR
#undef NR
#undef FC_GX_PREFETCH_A

#endif /* template body */
