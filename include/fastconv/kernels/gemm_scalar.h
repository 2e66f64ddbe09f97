/* Portable C GEMM micro-kernels (the fallback every build has):
 *   fc_gemm_f32_4x8__scalar, fc_gemm_f64_4x8__scalar
 * Contract: see fc_gemm_ukernel_<t>_fn in fastconv/gemm.h.
 * Template: the body below the guard is included once per dtype with FC_GS_T / FC_GS_SFX set.
 */
#ifndef FC_GS_T
#ifndef FASTCONV_KERNELS_GEMM_SCALAR_H
#define FASTCONV_KERNELS_GEMM_SCALAR_H

#include <stddef.h>

#include "fastconv/common.h"

#define FC_GEMM_SCALAR_MR 4
#define FC_GEMM_SCALAR_NR 8

#define FC_GS_T float
#define FC_GS_SFX f32
#include "fastconv/kernels/gemm_scalar.h"
#undef FC_GS_T
#undef FC_GS_SFX

#define FC_GS_T double
#define FC_GS_SFX f64
#include "fastconv/kernels/gemm_scalar.h"
#undef FC_GS_T
#undef FC_GS_SFX

#endif
#else /* template body */

#define MR FC_GEMM_SCALAR_MR
#define NR FC_GEMM_SCALAR_NR
static void FC_CAT(FC_CAT(fc_gemm_, FC_GS_SFX), _4x8__scalar)(
    int kc, const FC_GS_T *FC_RESTRICT a, const FC_GS_T *FC_RESTRICT b, FC_GS_T *FC_RESTRICT c,
    ptrdiff_t ldc, int m, int n, const FC_GS_T *FC_RESTRICT bias, int accumulate)
{
    FC_GS_T acc[MR][NR] = {{0}};
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) acc[i][j] += a[i] * b[j];
        a += MR;
        b += NR;
    }
    for (int i = 0; i < m; i++) {
        FC_GS_T *ci = c + i * ldc;
        FC_GS_T add = bias ? bias[i] : 0;
        for (int j = 0; j < n; j++) ci[j] = (accumulate ? ci[j] : 0) + acc[i][j] + add;
    }
}
#undef MR
#undef NR

#endif /* template body */
