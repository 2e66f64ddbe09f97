/* GEMM for AVX-512F (compiled with -mavx512f -mavx2 -mfma only): config tables and the FMA
 * peak loop. The kernels are in fastconv/kernels/gemm_avx512.h; the driver is in gemm_scalar.c. */
#include "fastconv/gemm.h"
#include "fastconv/kernels/gemm_avx512.h"
#include "fastconv/pack.h"

/* MR x NR = 8 x 32 (f32) / 8 x 16 (f64). Blocking measured on Zen 5 (48 KiB L1d, 1 MiB L2):
 * f32 KC = 384 (the 48 KiB B micro-panel streams from L2 fast enough; fewer C updates beat
 * KC = 128..256), MC x KC of A = 384 KiB in L2, KC x NC of B = 3 MiB per thread in L3. */
#ifndef FC_GEMM_AVX512_F32_BLOCKING /* KC, MC, NC; overridable for tuning experiments */
#define FC_GEMM_AVX512_F32_BLOCKING 384, 256, 2048
#endif
const fc_gemm_config_f32 fc_gemm_config_f32_avx512 = {
    "fc_gemm_f32_8x32__avx512f_broadcast", FC_GEMM_AVX512_MR, 32, FC_GEMM_AVX512_F32_BLOCKING,
    fc_gemm_f32_8x32__avx512f_broadcast, fc_pack_a_f32, fc_pack_b_f32};
#ifndef FC_GEMM_AVX512_F64_BLOCKING
#define FC_GEMM_AVX512_F64_BLOCKING 256, 192, 1024
#endif
const fc_gemm_config_f64 fc_gemm_config_f64_avx512 = {
    "fc_gemm_f64_8x16__avx512f_broadcast", FC_GEMM_AVX512_MR, 16, FC_GEMM_AVX512_F64_BLOCKING,
    fc_gemm_f64_8x16__avx512f_broadcast, fc_pack_a_f64, fc_pack_b_f64};

/* 12 independent FMA chains of full vectors: enough to cover FMA latency x throughput. */
#define FC_AVX512_FMA_LOOP(T, SFX, V, W, SET1, FMA, ADD, STORE)                              \
    double FC_CAT(FC_CAT(fc_gemm_fma_loop_, SFX), _avx512)(long iters)                       \
    {                                                                                        \
        V acc[12], x = SET1((T)0.999999), y = SET1((T)1e-6);                                  \
        _Pragma("GCC unroll 12") for (int j = 0; j < 12; j++) acc[j] = SET1((T)j);           \
        for (long it = 0; it < iters; it++) {                                                \
            _Pragma("GCC unroll 12") for (int j = 0; j < 12; j++) acc[j] = FMA(acc[j], x, y); \
        }                                                                                    \
        for (int j = 1; j < 12; j++) acc[0] = ADD(acc[0], acc[j]);                           \
        T out[W];                                                                            \
        STORE(out, acc[0]);                                                                  \
        volatile T sink = out[0];                                                            \
        (void)sink;                                                                          \
        return 2.0 * 12.0 * W * (double)iters;                                               \
    }
FC_AVX512_FMA_LOOP(float, f32, __m512, 16, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
                   _mm512_storeu_ps)
FC_AVX512_FMA_LOOP(double, f64, __m512d, 8, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd,
                   _mm512_storeu_pd)
