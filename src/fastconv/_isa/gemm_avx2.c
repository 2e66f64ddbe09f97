/* GEMM for AVX2 + FMA3 (compiled with -mavx2 -mfma only): config tables and the FMA peak loop.
 * The kernels are in fastconv/kernels/gemm_avx2.h; the driver is in gemm_scalar.c. */
#include "fastconv/gemm.h"
#include "fastconv/kernels/gemm_avx2.h"
#include "fastconv/pack.h"

/* MR x NR = 6 x 16 (f32) / 6 x 8 (f64). KC: the KC x NR B micro-panel (16 KiB) stays in L1
 * beside the streamed A; MC x KC of A (~400 KiB) in L2; KC x NC of B per thread in L3. */
const fc_gemm_config_f32 fc_gemm_config_f32_avx2 = {
    "fc_gemm_f32_6x16__avx2_fma_broadcast", FC_GEMM_AVX2_MR, 16, 256, 384, 2048,
    fc_gemm_f32_6x16__avx2_fma_broadcast, fc_pack_a_f32, fc_pack_b_f32};
const fc_gemm_config_f64 fc_gemm_config_f64_avx2 = {
    "fc_gemm_f64_6x8__avx2_fma_broadcast", FC_GEMM_AVX2_MR, 8, 256, 192, 1024,
    fc_gemm_f64_6x8__avx2_fma_broadcast, fc_pack_a_f64, fc_pack_b_f64};

/* 12 independent FMA chains of full vectors: enough to cover FMA latency x throughput. */
#define FC_AVX2_FMA_LOOP(T, SFX, V, W, SET1, FMA, ADD, STORE)                                \
    double FC_CAT(FC_CAT(fc_gemm_fma_loop_, SFX), _avx2)(long iters)                         \
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
FC_AVX2_FMA_LOOP(float, f32, __m256, 8, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps,
                 _mm256_storeu_ps)
FC_AVX2_FMA_LOOP(double, f64, __m256d, 4, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd,
                 _mm256_storeu_pd)
