/* Convolution kernels for scalar (compiled with that ISA's flags only): the direct,
 * depthwise and im2col+GEMM templates of fastconv/direct.h, depthwise.h and im2col.h, once per
 * dtype. 16-byte vectors; 4 output channels per direct-kernel register block. */
#define FC_ISA_NAME scalar
#define FC_ISA_ENUM FC_ISA_SCALAR
#define FC_VEC_BYTES 16
#define FC_DIRECT_OB 4

#define FC_T float
#define FC_T_BYTES 4
#define FC_DT f32
#define FC_GEMM_DT FC_GEMM_F32
#include "fastconv/direct.h"
#include "fastconv/depthwise.h"
#include "fastconv/im2col.h"
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
 * weight rows front to back in chunks of FC_CONV_PACK_KB, whose transposed copy stays in L1.
 * (fc_gemm_pack_a reads the MR rows element by element in step, 3-4x slower on large
 * weights; the functional conv2d packs on every call.) One MR-row panel per work unit, so
 * large weights pack on every thread. */
#define FC_CONV_PACK_KB 64
#define FC_CONV_PACK_WEIGHT(T, DT, GEMM_DT)                                                   \
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
                for (int r = 0; r < rows; r++) {                                              \
                    const T *s = src + (ptrdiff_t)r * K + k0;                                 \
                    for (int k = 0; k < kb; k++) d[(ptrdiff_t)k * mr + r] = s[k];             \
                }                                                                             \
                for (int k = 0; k < kb; k++)                                                  \
                    for (int r = rows; r < mr; r++) d[(ptrdiff_t)k * mr + r] = 0;             \
            }                                                                                 \
        }                                                                                     \
    }
FC_CONV_PACK_WEIGHT(float, f32, FC_GEMM_F32)
FC_CONV_PACK_WEIGHT(double, f64, FC_GEMM_F64)
