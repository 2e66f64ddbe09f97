/* ISA-neutral packing into the layouts of fastconv/gemm.h, for float32 and float64.
 *
 * fc_pack_a_<t>(mr, M, K, A, rs, cs, dst): MR-row panels of A[m][k] = A[m*rs + k*cs];
 *     dst[(p*K + k)*mr + r] = A[p*mr + r][k], zero for rows >= M.
 * fc_pack_b_<t>(nr, kc, nc, B, rs, cs, dst): NR-column panels of the kc x nc block
 *     B[k][n] = B[k*rs + n*cs]; dst[(q*kc + k)*nr + j] = B[k][q*nr + j], zero for columns >= nc.
 *
 * Each ISA translation unit includes this header, so the copies are compiled with its flags.
 * Template: the body below the guard is included once per dtype with FC_PACK_T / FC_PACK_SFX set.
 */
#ifndef FC_PACK_T
#ifndef FASTCONV_PACK_H
#define FASTCONV_PACK_H

#include <stddef.h>
#include <string.h>

#include "fastconv/common.h"

/* A read hint (no-op where the compiler has none). */
#if defined(__GNUC__) || defined(__clang__)
#define FC_PACK_PREFETCH(p) __builtin_prefetch(p)
#else
#define FC_PACK_PREFETCH(p) ((void)(p))
#endif
/* Rows of B ahead whose lines are requested while a row is copied: the rows of a block are
 * far apart (one image row or plane each), so the hardware stream prefetcher restarts on each. */
#ifndef FC_PACK_ROWS_AHEAD
#define FC_PACK_ROWS_AHEAD 4
#endif

#define FC_PACK_T float
#define FC_PACK_SFX f32
#include "fastconv/pack.h"
#undef FC_PACK_T
#undef FC_PACK_SFX

#define FC_PACK_T double
#define FC_PACK_SFX f64
#include "fastconv/pack.h"
#undef FC_PACK_T
#undef FC_PACK_SFX

#endif /* FASTCONV_PACK_H */
#else  /* template body */

static inline void FC_CAT(fc_pack_a_, FC_PACK_SFX)(int mr, int M, int K, const FC_PACK_T *A,
                                                  ptrdiff_t rs, ptrdiff_t cs, FC_PACK_T *dst)
{
    for (int p0 = 0; p0 < M; p0 += mr) {
        int rows = FC_MIN(mr, M - p0);
        const FC_PACK_T *src = A + (ptrdiff_t)p0 * rs;
        for (int k = 0; k < K; k++) {
            FC_PACK_T *d = dst + (ptrdiff_t)k * mr;
            for (int r = 0; r < rows; r++) d[r] = src[r * rs + (ptrdiff_t)k * cs];
            for (int r = rows; r < mr; r++) d[r] = 0;
        }
        dst += (ptrdiff_t)mr * K;
    }
}

/* Copy n (= NR, a compile-time constant in the common cases) contiguous values. */
FC_INLINE void FC_CAT(fc_pack_copy_, FC_PACK_SFX)(FC_PACK_T *FC_RESTRICT d,
                                                 const FC_PACK_T *FC_RESTRICT s, int n)
{
    switch (n) {
    case 8: for (int j = 0; j < 8; j++) d[j] = s[j]; break;
    case 16: for (int j = 0; j < 16; j++) d[j] = s[j]; break;
    case 32: for (int j = 0; j < 32; j++) d[j] = s[j]; break;
    default: for (int j = 0; j < n; j++) d[j] = s[j];
    }
}

static inline void FC_CAT(fc_pack_b_, FC_PACK_SFX)(int nr, int kc, int nc, const FC_PACK_T *B,
                                                  ptrdiff_t rs, ptrdiff_t cs, FC_PACK_T *dst)
{
    const ptrdiff_t panel = (ptrdiff_t)nr * kc; /* elements per packed column panel */
    if (cs == 1) {
        /* row by row: each source row is read once, front to back (prefetch-friendly) */
        const int row_bytes = nc * (int)sizeof(FC_PACK_T);
        for (int k = 0; k < kc; k++) {
            const FC_PACK_T *s = B + (ptrdiff_t)k * rs;
            if (FC_PACK_ROWS_AHEAD > 0 && k + FC_PACK_ROWS_AHEAD < kc) {
                const char *ahead = (const char *)(s + FC_PACK_ROWS_AHEAD * rs);
                for (int byte = 0; byte < row_bytes; byte += 64) FC_PACK_PREFETCH(ahead + byte);
            }
            FC_PACK_T *d = dst + (ptrdiff_t)k * nr;
            int q0 = 0;
            for (; q0 + nr <= nc; q0 += nr, d += panel)
                FC_CAT(fc_pack_copy_, FC_PACK_SFX)(d, s + q0, nr);
            if (q0 < nc) {
                for (int j = 0; j < nc - q0; j++) d[j] = s[q0 + j];
                for (int j = nc - q0; j < nr; j++) d[j] = 0;
            }
        }
        return;
    }
    for (int q0 = 0; q0 < nc; q0 += nr, dst += panel) {
        /* column by column walks B with its smaller stride when B is transposed */
        int cols = FC_MIN(nr, nc - q0);
        for (int j = 0; j < cols; j++) {
            const FC_PACK_T *s = B + (ptrdiff_t)(q0 + j) * cs;
            for (int k = 0; k < kc; k++) dst[(ptrdiff_t)k * nr + j] = s[(ptrdiff_t)k * rs];
        }
        for (int k = 0; k < kc && cols < nr; k++)
            for (int j = cols; j < nr; j++) dst[(ptrdiff_t)k * nr + j] = 0;
    }
}

#endif /* template body */
