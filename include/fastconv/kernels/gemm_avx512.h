/* AVX-512F GEMM micro-kernels: an 8 x (2 vectors) tile in 16 zmm accumulators; per k, two B
 * vectors are loaded and each of the 8 A values is broadcast and FMA'd into both (16
 * independent chains cover the 2 x 4-cycle FMA pipes). MR = 8 rather than 14: channel counts
 * are multiples of 8, so M = 64 or 512 wastes no rows (14 rows would pad 64 to 70), and
 * measured on Zen 5 it is as fast in L1 (98-100% of peak). The C tile is prefetched at the
 * start, A 64 steps (2 KiB) ahead: far enough to hide L3 latency when A streams from L3
 * (small N), and harmless when it sits in L2. Edge tiles use masked loads/stores.
 * Narrow tiles (the last column panel when N % NR is small: N = 49 = 32 + 16 + 1, 196 = 6 * 32
 * + 4) do not pay for a whole tile: a vector whose lanes would all be padding is skipped, and up
 * to FC_GX_ROW_COLS leftover columns are computed the other way round, one FMA per column per k
 * on a vector of the MR = 8 rows of A (A's packed slice is exactly that vector: 8 floats = one
 * ymm, 8 doubles = one zmm) times the broadcast B value. So N = 49 costs 25 FMA slots per k and
 * 8 rows instead of 32 (f32), and an N % 16 == 1 panel (f64) 1 instead of 16.
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

#ifndef FC_GEMM_NOINLINE
#if defined(_MSC_VER)
#define FC_GEMM_NOINLINE __declspec(noinline)
#else
#define FC_GEMM_NOINLINE __attribute__((noinline))
#endif
#endif


#define FC_GEMM_AVX512_MR 8
/* leftover columns computed as row vectors (see above); more take a broadcast vector */
#define FC_GX_ROW_COLS 4

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
#define FC_GX_RV __m256 /* a vector of the MR = 8 rows of A */
#define FC_GX_RLOAD _mm256_loadu_ps
#define FC_GX_RSTORE _mm256_storeu_ps
#define FC_GX_RSET1 _mm256_set1_ps
#define FC_GX_RFMA _mm256_fmadd_ps
#define FC_GX_RZERO _mm256_setzero_ps
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
#undef FC_GX_RV
#undef FC_GX_RLOAD
#undef FC_GX_RSTORE
#undef FC_GX_RSET1
#undef FC_GX_RFMA
#undef FC_GX_RZERO

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
#define FC_GX_RV __m512d
#define FC_GX_RLOAD _mm512_loadu_pd
#define FC_GX_RSTORE _mm512_storeu_pd
#define FC_GX_RSET1 _mm512_set1_pd
#define FC_GX_RFMA _mm512_fmadd_pd
#define FC_GX_RZERO _mm512_setzero_pd
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
#undef FC_GX_RV
#undef FC_GX_RLOAD
#undef FC_GX_RSTORE
#undef FC_GX_RSET1
#undef FC_GX_RFMA
#undef FC_GX_RZERO

#endif
#else /* template body */

#define MR FC_GEMM_AVX512_MR
#define NR (2 * FC_GX_W)
#ifndef FC_GX_PREFETCH_A
#define FC_GX_PREFETCH_A (64 * MR) /* elements of A ahead of the current k */
#endif
#define BODY FC_CAT(FC_GX_NAME, _body)
_Static_assert(sizeof(FC_GX_RV) == MR * sizeof(FC_GX_T), "a row vector holds the MR rows");
_Static_assert(FC_GX_ROW_COLS == 4, "FC_GX_NAME spells out 0..4 row-vector columns");

/* The tile with `nv` (0..2, compile-time) broadcast-B vectors covering columns [0, nv*W) and
 * `rc` (0..FC_GX_ROW_COLS, compile-time) row-vector columns nv*W .. nv*W + rc - 1; n <=
 * nv*W + rc. Always inlined into FC_GX_NAME with constants, so each (nv, rc) is its own loop. */
FC_INLINE void BODY(int kc, const FC_GX_T *FC_RESTRICT a, const FC_GX_T *FC_RESTRICT b,
                    FC_GX_T *FC_RESTRICT c, ptrdiff_t ldc, int m, int n,
                    const FC_GX_T *FC_RESTRICT bias, int accumulate, const int nv, const int rc)
{
    FC_GX_V acc[MR][2];
    FC_GX_RV racc[FC_GX_ROW_COLS];
#pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = FC_GX_ZERO();
#pragma GCC unroll 8
    for (int j = 0; j < FC_GX_ROW_COLS; j++) racc[j] = FC_GX_RZERO();
    /* the C tile is touched only at the end: start fetching it now */
    for (int i = 0; i < m; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        _mm_prefetch((const char *)(a + FC_GX_PREFETCH_A), _MM_HINT_T0);
        if (nv > 0) {
            FC_GX_V b0 = FC_GX_LOAD(b), b1 = nv > 1 ? FC_GX_LOAD(b + FC_GX_W) : b0;
#pragma GCC unroll 16
            for (int i = 0; i < MR; i++) {
                FC_GX_V ai = FC_GX_SET1(a[i]);
                acc[i][0] = FC_GX_FMA(ai, b0, acc[i][0]);
                if (nv > 1) acc[i][1] = FC_GX_FMA(ai, b1, acc[i][1]);
            }
        }
        if (rc > 0) {
            FC_GX_RV rows = FC_GX_RLOAD(a);
#pragma GCC unroll 8
            for (int j = 0; j < rc; j++)
                racc[j] = FC_GX_RFMA(rows, FC_GX_RSET1(b[nv * FC_GX_W + j]), racc[j]);
        }
        a += MR;
        b += NR;
    }
    if (nv > 0) {
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
                    if (nv > 1) r1 = FC_GX_ADD(r1, FC_GX_MASKLOAD(mask1, ci + FC_GX_W));
                }
                FC_GX_MASKSTORE(ci, mask0, r0);
                if (nv > 1) FC_GX_MASKSTORE(ci + FC_GX_W, mask1, r1);
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < rc; j++) {
        const int col = nv * FC_GX_W + j;
        if (col >= n) break;
        FC_GX_T column[MR];
        FC_GX_RSTORE(column, racc[j]);
        for (int i = 0; i < m; i++) {
            FC_GX_T *cij = c + i * ldc + col;
            *cij = (accumulate ? *cij : 0) + column[i] + (bias ? bias[i] : 0);
        }
    }
}

/* A narrow tile: n <= W + ROW_COLS columns (see FC_GX_NAME below). */
FC_GEMM_NOINLINE static void FC_CAT(FC_GX_NAME, _narrow)(
    int kc, const FC_GX_T *FC_RESTRICT a, const FC_GX_T *FC_RESTRICT b, FC_GX_T *FC_RESTRICT c,
    ptrdiff_t ldc, int m, int n, const FC_GX_T *FC_RESTRICT bias, int accumulate)
{
    /* n = (full or masked broadcast vectors) + (at most FC_GX_ROW_COLS row-vector columns) */
    if (n >= FC_GX_W) {
        switch (n - FC_GX_W) {
        case 0: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 0); break;
        case 1: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 1); break;
        case 2: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 2); break;
        case 3: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 3); break;
        default: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 4); break;
        }
    } else if (n > FC_GX_ROW_COLS) {
        BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 0);
    } else {
        switch (n) {
        case 1: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, 1); break;
        case 2: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, 2); break;
        case 3: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, 3); break;
        default: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, 4); break;
        }
    }
}
/* Full-width tiles (all but a narrow last panel) take the short path: the narrow variants live
 * in their own function, which keeps this one as small as a single-variant kernel (measured:
 * one function holding all variants ran the full tile ~10% slower in the driver, f64). */
static void FC_GX_NAME(int kc, const FC_GX_T *FC_RESTRICT a, const FC_GX_T *FC_RESTRICT b,
                       FC_GX_T *FC_RESTRICT c, ptrdiff_t ldc, int m, int n,
                       const FC_GX_T *FC_RESTRICT bias, int accumulate)
{
    if (n > FC_GX_W + FC_GX_ROW_COLS)
        BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 2, 0);
    else
        FC_CAT(FC_GX_NAME, _narrow)(kc, a, b, c, ldc, m, n, bias, accumulate);
}
#undef MR
#undef NR
#undef BODY
#undef FC_GX_PREFETCH_A

#endif /* template body */
