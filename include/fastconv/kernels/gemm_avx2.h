/* AVX2 + FMA3 GEMM micro-kernels: a 6 x (2 vectors) tile in 12 ymm accumulators; per k, two B
 * vectors are loaded and each of the 6 A values is broadcast and FMA'd into both. The C tile
 * is prefetched at the start, A 64 steps ahead (hides L3 latency when A streams from L3).
 * Narrow tiles (the last column panel when N % NR is small, e.g. N = 49 = 3 * 16 + 1) skip a
 * vector whose lanes would all be padding and compute up to FC_GA_ROW_COLS leftover columns
 * the other way round: one FMA per column per k on the MR = 6 rows of A (one masked ymm for
 * float, a ymm and a masked ymm for double) times the broadcast B value.
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

#ifndef FC_GEMM_NOINLINE
#if defined(_MSC_VER)
#define FC_GEMM_NOINLINE __declspec(noinline)
#else
#define FC_GEMM_NOINLINE __attribute__((noinline))
#endif
#endif

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
#define FC_GA_ROW_COLS 4
#define FC_GA_MASKLOAD(p, count) \
    _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(count), \
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)))
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
#undef FC_GA_ROW_COLS
#undef FC_GA_MASKLOAD

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
#define FC_GA_ROW_COLS 2 /* 2 ymm per column: more would spill (16 ymm registers) */
#define FC_GA_MASKLOAD(p, count) \
    _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(count), \
                                             _mm256_setr_epi64x(0, 1, 2, 3)))
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
#undef FC_GA_ROW_COLS
#undef FC_GA_MASKLOAD

#endif
#else /* template body */

#define MR FC_GEMM_AVX2_MR
#define NR (2 * FC_GA_W)
#define RN ((MR + FC_GA_W - 1) / FC_GA_W) /* vectors holding the MR rows of one column */
#ifndef FC_GA_PREFETCH_A
#define FC_GA_PREFETCH_A (64 * MR) /* elements of A ahead of the current k */
#endif
#define BODY FC_CAT(FC_GA_NAME, _body)

/* The tile with `nv` (0..2, compile-time) broadcast-B vectors covering columns [0, nv*W) and
 * `rc` (0..FC_GA_ROW_COLS, compile-time) row-vector columns nv*W .. nv*W + rc - 1; n <=
 * nv*W + rc. Always inlined into FC_GA_NAME with constants, so each (nv, rc) is its own loop. */
FC_INLINE void BODY(int kc, const FC_GA_T *FC_RESTRICT a, const FC_GA_T *FC_RESTRICT b,
                    FC_GA_T *FC_RESTRICT c, ptrdiff_t ldc, int m, int n,
                    const FC_GA_T *FC_RESTRICT bias, int accumulate, const int nv, const int rc)
{
    FC_GA_V acc[MR][2], racc[FC_GA_ROW_COLS + 1][RN];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = FC_GA_ZERO();
#pragma GCC unroll 8
    for (int j = 0; j < rc; j++)
#pragma GCC unroll 2
        for (int r = 0; r < RN; r++) racc[j][r] = FC_GA_ZERO();
    /* the C tile is touched only at the end: start fetching it now */
    for (int i = 0; i < m; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + NR - 1), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int k = 0; k < kc; k++) {
        _mm_prefetch((const char *)(a + FC_GA_PREFETCH_A), _MM_HINT_T0);
        if (nv > 0) {
            FC_GA_V b0 = FC_GA_LOAD(b), b1 = nv > 1 ? FC_GA_LOAD(b + FC_GA_W) : b0;
#pragma GCC unroll 8
            for (int i = 0; i < MR; i++) {
                FC_GA_V ai = FC_GA_SET1(a[i]);
                acc[i][0] = FC_GA_FMA(ai, b0, acc[i][0]);
                if (nv > 1) acc[i][1] = FC_GA_FMA(ai, b1, acc[i][1]);
            }
        }
        if (rc > 0) {
            FC_GA_V rows[RN];
#pragma GCC unroll 2
            for (int r = 0; r < RN; r++)
                rows[r] = (r + 1) * FC_GA_W <= MR ? FC_GA_LOAD(a + r * FC_GA_W)
                                                  : FC_GA_MASKLOAD(a + r * FC_GA_W,
                                                                   MR - r * FC_GA_W);
#pragma GCC unroll 8
            for (int j = 0; j < rc; j++) {
                FC_GA_V bj = FC_GA_SET1(b[nv * FC_GA_W + j]);
#pragma GCC unroll 2
                for (int r = 0; r < RN; r++) racc[j][r] = FC_GA_FMA(rows[r], bj, racc[j][r]);
            }
        }
        a += MR;
        b += NR;
    }
    if (nv == 2 && m == MR && n == NR) {
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
        return;
    }
    /* edge or narrow tile: spill to the stack, copy the valid corner */
    FC_GA_T tile[MR * NR], column[RN * FC_GA_W];
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
        if (nv > 0) FC_GA_STORE(tile + i * NR, acc[i][0]);
        if (nv > 1) FC_GA_STORE(tile + i * NR + FC_GA_W, acc[i][1]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < rc; j++) {
#pragma GCC unroll 2
        for (int r = 0; r < RN; r++) FC_GA_STORE(column + r * FC_GA_W, racc[j][r]);
        for (int i = 0; i < MR; i++) tile[i * NR + nv * FC_GA_W + j] = column[i];
    }
    for (int i = 0; i < m; i++) {
        FC_GA_T *ci = c + i * ldc;
        FC_GA_T add = bias ? bias[i] : 0;
        for (int j = 0; j < n; j++)
            ci[j] = (accumulate ? ci[j] : 0) + tile[i * NR + j] + add;
    }
}

/* A narrow tile: n <= W + ROW_COLS columns (see FC_GA_NAME below). */
FC_GEMM_NOINLINE static void FC_CAT(FC_GA_NAME, _narrow)(
    int kc, const FC_GA_T *FC_RESTRICT a, const FC_GA_T *FC_RESTRICT b, FC_GA_T *FC_RESTRICT c,
    ptrdiff_t ldc, int m, int n, const FC_GA_T *FC_RESTRICT bias, int accumulate)
{
    /* n = (full or partial broadcast vectors) + (at most FC_GA_ROW_COLS row-vector columns);
     * the clamps keep every case's constant in range (cases above FC_GA_ROW_COLS never run) */
#define FC_GA_RC(x) FC_MIN(x, FC_GA_ROW_COLS)
    if (n >= FC_GA_W) {
        switch (n - FC_GA_W) {
        case 0: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 0); break;
        case 1: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, FC_GA_RC(1)); break;
        case 2: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, FC_GA_RC(2)); break;
        case 3: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, FC_GA_RC(3)); break;
        default: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, FC_GA_RC(4)); break;
        }
    } else if (n > FC_GA_ROW_COLS) {
        BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 1, 0);
    } else {
        switch (n) {
        case 1: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, 1); break;
        case 2: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, FC_GA_RC(2)); break;
        case 3: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, FC_GA_RC(3)); break;
        default: BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 0, FC_GA_RC(4)); break;
        }
    }
#undef FC_GA_RC
}
/* Full-width tiles (all but a narrow last panel) take the short path: the narrow variants live
 * in their own function, which keeps this one as small as a single-variant kernel (measured:
 * one function holding all variants ran the full tile ~10% slower in the driver, f64). */
static void FC_GA_NAME(int kc, const FC_GA_T *FC_RESTRICT a, const FC_GA_T *FC_RESTRICT b,
                       FC_GA_T *FC_RESTRICT c, ptrdiff_t ldc, int m, int n,
                       const FC_GA_T *FC_RESTRICT bias, int accumulate)
{
    if (n > FC_GA_W + FC_GA_ROW_COLS)
        BODY(kc, a, b, c, ldc, m, n, bias, accumulate, 2, 0);
    else
        FC_CAT(FC_GA_NAME, _narrow)(kc, a, b, c, ldc, m, n, bias, accumulate);
}
#undef MR
#undef NR
#undef RN
#undef BODY
#undef FC_GA_PREFETCH_A

#endif /* template body */
