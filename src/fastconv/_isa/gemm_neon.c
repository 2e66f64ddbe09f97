/* GEMM for AArch64 NEON (setup.py compiles *_neon.c only on aarch64): config tables and the
 * FMA peak loop. The kernels are in fastconv/kernels/gemm_neon.h; the driver is in gemm_scalar.c. */
#include "fastconv/gemm.h"
#include "fastconv/kernels/gemm_neon.h"
#include "fastconv/pack.h"

/* MR x NR = 8 x 8 (f32) / 8 x 4 (f64); conservative blocking for common 64 KiB L1 / 1 MiB L2. */
const fc_gemm_config_f32 fc_gemm_config_f32_neon = {
    "fc_gemm_f32_8x8__neon_fma", FC_GEMM_NEON_MR, 8, 256, 128, 2048,
    fc_gemm_f32_8x8__neon_fma, fc_pack_a_f32, fc_pack_b_f32};
const fc_gemm_config_f64 fc_gemm_config_f64_neon = {
    "fc_gemm_f64_8x4__neon_fma", FC_GEMM_NEON_MR, 4, 256, 128, 1024,
    fc_gemm_f64_8x4__neon_fma, fc_pack_a_f64, fc_pack_b_f64};

/* 12 independent FMA chains of full vectors. */
#define FC_NEON_FMA_LOOP(T, SFX, V, W, DUP, FMA, ADD, STORE)                                 \
    double FC_CAT(FC_CAT(fc_gemm_fma_loop_, SFX), _neon)(long iters)                         \
    {                                                                                        \
        V acc[12], x = DUP((T)0.999999), y = DUP((T)1e-6);                                    \
        for (int j = 0; j < 12; j++) acc[j] = DUP((T)j);                                     \
        for (long it = 0; it < iters; it++)                                                  \
            for (int j = 0; j < 12; j++) acc[j] = FMA(y, acc[j], x);                         \
        for (int j = 1; j < 12; j++) acc[0] = ADD(acc[0], acc[j]);                           \
        T out[W];                                                                            \
        STORE(out, acc[0]);                                                                  \
        volatile T sink = out[0];                                                            \
        (void)sink;                                                                          \
        return 2.0 * 12.0 * W * (double)iters;                                               \
    }
FC_NEON_FMA_LOOP(float, f32, float32x4_t, 4, vdupq_n_f32, vfmaq_f32, vaddq_f32, vst1q_f32)
FC_NEON_FMA_LOOP(double, f64, float64x2_t, 2, vdupq_n_f64, vfmaq_f64, vaddq_f64, vst1q_f64)
