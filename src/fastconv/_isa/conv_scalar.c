/* Convolution kernels for scalar (compiled with that ISA's flags only): the direct,
 * depthwise, im2col+GEMM and deformable templates of fastconv/direct.h, depthwise.h, im2col.h
 * and deform.h, once per dtype. Vector width and the direct kernel's register block come from fastconv/isa.h. */
#define FC_ISA_NAME scalar
#define FC_ISA_ENUM FC_ISA_SCALAR
#define FC_VEC_BYTES FC_CAT(FC_VEC_BYTES_, FC_ISA_NAME)
#define FC_DIRECT_OB FC_CAT(FC_DIRECT_OB_, FC_ISA_NAME)

#define FC_T float
#define FC_T_BYTES 4
#define FC_DT f32
#define FC_GEMM_DT FC_GEMM_F32
#include "fastconv/direct.h"
#include "fastconv/depthwise.h"
#include "fastconv/im2col.h"
#include "fastconv/deform.h"
#undef FC_T
#undef FC_T_BYTES
#undef FC_DT
#undef FC_GEMM_DT

#define FC_T double
#define FC_T_BYTES 8
#define FC_DT f64
#define FC_GEMM_DT FC_GEMM_F64
#include "fastconv/direct.h"
#include "fastconv/depthwise.h"
#include "fastconv/im2col.h"
#include "fastconv/deform.h"
#undef FC_T
#undef FC_T_BYTES
#undef FC_DT
#undef FC_GEMM_DT

/* ---- weight packing for im2col (ISA-neutral: the GEMM's own packer of `isa`) ---- */
size_t fc_conv_packed_group_size(int isa, int dtype, const fc_conv_geometry *g)
{
    int M = (int)(g->c_out / g->groups);
    int K = (int)(g->c_in / g->groups * g->k[0] * g->k[1] * g->k[2]);
    return dtype == FC_GEMM_F32 ? fc_gemm_packed_a_size_f32(isa, M, K)
                                : fc_gemm_packed_a_size_f64(isa, M, K);
}

/* The documented packed-A layout of fastconv/gemm.h (panel p: for each k, its MR rows'
 * values contiguous, rows >= M zero), written by a blocked transpose: each unit reads MR
 * weight rows front to back in chunks of FC_CONV_PACK_KB, transposed in 16-byte tiles (4 x 4
 * floats, 2 x 2 doubles) whose copy stays in L1. (fc_gemm_pack_a reads the MR rows element
 * by element in step: 3-4x a plain copy on large weights, this 1.3-2x; the functional conv2d
 * packs on every call.) One MR-row panel per work unit, so large weights pack on every thread. */
#define FC_CONV_PACK_KB 64
typedef float fc_pack_v4f __attribute__((vector_size(16), aligned(4), may_alias));
typedef double fc_pack_v2d __attribute__((vector_size(16), aligned(8), may_alias));

/* d[(k + i) * mr + j] = s[j * K + k + i] for a V x V tile (V = 4 floats / 2 doubles). */
static inline void fc_conv_pack_tile_f32(const float *s, ptrdiff_t K, float *d, ptrdiff_t mr)
{
    fc_pack_v4f a = *(const fc_pack_v4f *)s, b = *(const fc_pack_v4f *)(s + K);
    fc_pack_v4f c = *(const fc_pack_v4f *)(s + 2 * K), e = *(const fc_pack_v4f *)(s + 3 * K);
    fc_pack_v4f t0 = __builtin_shufflevector(a, b, 0, 4, 1, 5);
    fc_pack_v4f t1 = __builtin_shufflevector(a, b, 2, 6, 3, 7);
    fc_pack_v4f t2 = __builtin_shufflevector(c, e, 0, 4, 1, 5);
    fc_pack_v4f t3 = __builtin_shufflevector(c, e, 2, 6, 3, 7);
    *(fc_pack_v4f *)d = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    *(fc_pack_v4f *)(d + mr) = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    *(fc_pack_v4f *)(d + 2 * mr) = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    *(fc_pack_v4f *)(d + 3 * mr) = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
}

static inline void fc_conv_pack_tile_f64(const double *s, ptrdiff_t K, double *d, ptrdiff_t mr)
{
    fc_pack_v2d a = *(const fc_pack_v2d *)s, b = *(const fc_pack_v2d *)(s + K);
    *(fc_pack_v2d *)d = __builtin_shufflevector(a, b, 0, 2);
    *(fc_pack_v2d *)(d + mr) = __builtin_shufflevector(a, b, 1, 3);
}

#define FC_CONV_PACK_WEIGHT(T, DT, GEMM_DT, V)                                                \
    void fc_conv_pack_weight_##DT(int isa, const fc_conv_geometry *g, const T *w, T *packed, \
                                  int nthreads)                                               \
    {                                                                                         \
        int M = (int)(g->c_out / g->groups);                                                  \
        int K = (int)(g->c_in / g->groups * g->k[0] * g->k[1] * g->k[2]);                     \
        int mr = fc_gemm_mr(isa, GEMM_DT);                                                    \
        ptrdiff_t size = (ptrdiff_t)fc_gemm_packed_a_size_##DT(isa, M, K);                    \
        ptrdiff_t panels = (M + mr - 1) / mr, units = g->groups * panels;                     \
        FC_OMP(parallel for schedule(static) num_threads(nthreads) if (nthreads > 1))         \
        for (ptrdiff_t u = 0; u < units; u++) {                                               \
            ptrdiff_t gi = u / panels, p = u % panels;                                        \
            int rows = (int)FC_MIN((ptrdiff_t)mr, M - p * mr);                                \
            const T *src = w + (gi * M + p * mr) * (ptrdiff_t)K;                              \
            T *dst = packed + gi * size + p * mr * (ptrdiff_t)K;                              \
            for (int k0 = 0; k0 < K; k0 += FC_CONV_PACK_KB) {                                 \
                int kb = FC_MIN(FC_CONV_PACK_KB, K - k0);                                     \
                T *d = dst + (ptrdiff_t)k0 * mr;                                              \
                int r = 0;                                                                    \
                for (; r + V <= rows; r += V) {                                               \
                    const T *s = src + (ptrdiff_t)r * K + k0;                                 \
                    int k = 0;                                                                \
                    for (; k + V <= kb; k += V)                                               \
                        fc_conv_pack_tile_##DT(s + k, K, d + (ptrdiff_t)k * mr + r, mr);      \
                    for (; k < kb; k++)                                                       \
                        for (int j = 0; j < V; j++)                                           \
                            d[(ptrdiff_t)k * mr + r + j] = s[j * (ptrdiff_t)K + k];           \
                }                                                                             \
                for (; r < rows; r++) {                                                       \
                    const T *s = src + (ptrdiff_t)r * K + k0;                                 \
                    for (int k = 0; k < kb; k++) d[(ptrdiff_t)k * mr + r] = s[k];             \
                }                                                                             \
                for (int k = 0; k < kb; k++)                                                  \
                    for (r = rows; r < mr; r++) d[(ptrdiff_t)k * mr + r] = 0;                 \
            }                                                                                 \
        }                                                                                     \
    }
FC_CONV_PACK_WEIGHT(float, f32, FC_GEMM_F32, 4)
FC_CONV_PACK_WEIGHT(double, f64, FC_GEMM_F64, 2)
