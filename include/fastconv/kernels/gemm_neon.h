/* AArch64 NEON GEMM micro-kernels: an 8 x (2 vectors) tile in 16 q-register accumulators; per
 * k, two B vectors are loaded and each of the 8 A values is broadcast and FMA'd into both.
 *   fc_gemm_f32_8x8__neon_fma, fc_gemm_f64_8x4__neon_fma
 * Contract: see fc_gemm_ukernel_<t>_fn in fastconv/gemm.h.
 * Template: the body below the guard is included once per dtype with FC_GN_* set.
 */
#ifndef FC_GN_T
#ifndef FASTCONV_KERNELS_GEMM_NEON_H
#define FASTCONV_KERNELS_GEMM_NEON_H

#include <arm_neon.h>
#include <stddef.h>

#include "fastconv/common.h"

#define FC_GEMM_NEON_MR 8

#define FC_GN_T float
#define FC_GN_V float32x4_t
#define FC_GN_W 4
#define FC_GN_NAME fc_gemm_f32_8x8__neon_fma
#define FC_GN_LOAD vld1q_f32
#define FC_GN_STORE vst1q_f32
#define FC_GN_SET1 vdupq_n_f32
#define FC_GN_FMA(a, b, acc) vfmaq_f32((acc), (a), (b))
#include "fastconv/kernels/gemm_neon.h"
#undef FC_GN_T
#undef FC_GN_V
#undef FC_GN_W
#undef FC_GN_NAME
#undef FC_GN_LOAD
#undef FC_GN_STORE
#undef FC_GN_SET1
#undef FC_GN_FMA

#define FC_GN_T double
#define FC_GN_V float64x2_t
#define FC_GN_W 2
#define FC_GN_NAME fc_gemm_f64_8x4__neon_fma
#define FC_GN_LOAD vld1q_f64
#define FC_GN_STORE vst1q_f64
#define FC_GN_SET1 vdupq_n_f64
#define FC_GN_FMA(a, b, acc) vfmaq_f64((acc), (a), (b))
#include "fastconv/kernels/gemm_neon.h"
#undef FC_GN_T
#undef FC_GN_V
#undef FC_GN_W
#undef FC_GN_NAME
#undef FC_GN_LOAD
#undef FC_GN_STORE
#undef FC_GN_SET1
#undef FC_GN_FMA

#endif
#else /* template body */

#define MR FC_GEMM_NEON_MR
#define NR (2 * FC_GN_W)
static void FC_GN_NAME(int kc, const FC_GN_T *FC_RESTRICT a, const FC_GN_T *FC_RESTRICT b,
                       FC_GN_T *FC_RESTRICT c, ptrdiff_t ldc, int m, int n,
                       const FC_GN_T *FC_RESTRICT bias, int accumulate)
{
    FC_GN_V acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = FC_GN_SET1(0);
    for (int k = 0; k < kc; k++) {
        FC_GN_V b0 = FC_GN_LOAD(b), b1 = FC_GN_LOAD(b + FC_GN_W);
        for (int i = 0; i < MR; i++) {
            FC_GN_V ai = FC_GN_SET1(a[i]);
            acc[i][0] = FC_GN_FMA(ai, b0, acc[i][0]);
            acc[i][1] = FC_GN_FMA(ai, b1, acc[i][1]);
        }
        a += MR;
        b += NR;
    }
    /* every tile goes through the stack: simple and obviously right */
    FC_GN_T tile[MR * NR];
    for (int i = 0; i < MR; i++) {
        FC_GN_STORE(tile + i * NR, acc[i][0]);
        FC_GN_STORE(tile + i * NR + FC_GN_W, acc[i][1]);
    }
    for (int i = 0; i < m; i++) {
        FC_GN_T *ci = c + i * ldc;
        FC_GN_T add = bias ? bias[i] : 0;
        for (int j = 0; j < n; j++) ci[j] = (accumulate ? ci[j] : 0) + tile[i * NR + j] + add;
    }
}
#undef MR
#undef NR

#endif /* template body */
