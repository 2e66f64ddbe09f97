/* Convolution kernels for scalar (compiled with that ISA's flags only): the direct,
 * depthwise and im2col+GEMM templates of fastconv/direct.h and fastconv/im2col.h, once per
 * dtype. 16-byte vectors; 4 output channels per direct-kernel register block. */
#define FC_ISA_NAME scalar
#define FC_ISA_ENUM FC_ISA_SCALAR
#define FC_VEC_BYTES 16
#define FC_DIRECT_OB 4

#define FC_T float
#define FC_DT f32
#define FC_GEMM_DT FC_GEMM_F32
#include "fastconv/direct.h"
#include "fastconv/im2col.h"
#undef FC_T
#undef FC_DT
#undef FC_GEMM_DT

#define FC_T double
#define FC_DT f64
#define FC_GEMM_DT FC_GEMM_F64
#include "fastconv/direct.h"
#include "fastconv/im2col.h"
#undef FC_T
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

/* One MR-row panel per work unit, so large weights pack on every thread. */
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
            fc_gemm_pack_a_##DT(isa, rows, K, w + (gi * M + p * mr) * (ptrdiff_t)K, K, 1,     \
                                packed + gi * size + p * mr * (ptrdiff_t)K);                  \
        }                                                                                     \
    }
FC_CONV_PACK_WEIGHT(float, f32, FC_GEMM_F32)
FC_CONV_PACK_WEIGHT(double, f64, FC_GEMM_F64)
