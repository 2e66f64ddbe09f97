/* Winograd: the portable driver (no ISA flags; the lane loops are plain C) plus the ISA-neutral
 * parts: dispatch to the ISA drivers, the work decomposition, the scratch bound and the weight
 * transform. See fastconv/winograd.h. */
#define FC_WISA scalar
#define FC_WISA_ENUM FC_ISA_SCALAR
#define FC_WL32 4
#define FC_WL64 2
#include "fastconv/kernels/winograd_template.h"

/* A unit's transformed input + GEMM output should stay in one core's 1 MiB L2 next to the
 * weights it streams: 3/4 of it. */
#define FC_WINO_L2_BUDGET (768 * 1024)
/* More tiles per unit than this buys nothing (the B panels are reused K/MR times already). */
#define FC_WINO_MAX_PANELS 8

size_t fc_winograd_packed_weights_size(int isa, int dtype, int tile, int c_out,
                                       int cin_per_group, int groups)
{
    const int kg = c_out / groups, alpha = tile + 2;
    size_t one = dtype == FC_GEMM_F64 ? fc_gemm_packed_a_size_f64(isa, kg, cin_per_group)
                                      : fc_gemm_packed_a_size_f32(isa, kg, cin_per_group);
    return one * (size_t)alpha * alpha * groups;
}


void fc_winograd_resolve(int isa, int dtype, fc_winograd_geometry *geo, int nthreads)
{
    const int m = geo->tile, alpha2 = (m + 2) * (m + 2);
    const int nr = fc_gemm_nr(isa, dtype), mr = fc_gemm_mr(isa, dtype);
    const size_t esize = dtype == FC_GEMM_F64 ? sizeof(double) : sizeof(float);
    const int cg = geo->c_in / geo->groups, kg = geo->c_out / geo->groups;
    const long ntiles = (long)geo->batch * ((geo->out_h + m - 1) / m) * ((geo->out_w + m - 1) / m);
    const long tiles_rounded = (ntiles + nr - 1) / nr * nr;
    if (geo->block_tiles <= 0) {
        size_t per_tile = (size_t)alpha2 * (cg + kg) * esize;
        long block = (long)(FC_WINO_L2_BUDGET / per_tile) / nr * nr;
        block = FC_MAX(nr, FC_MIN(block, (long)FC_WINO_MAX_PANELS * nr));
        block = FC_MIN(block, tiles_rounded);
        /* equal blocks, and at least one per thread while blocks can still shrink */
        long nblocks = (ntiles + block - 1) / block;
        while (nblocks * geo->groups < nthreads && block > nr) {
            block -= nr;
            nblocks = (ntiles + block - 1) / block;
        }
        block = ((ntiles + nblocks - 1) / nblocks + nr - 1) / nr * nr;
        geo->block_tiles = (int)block;
    } else {
        geo->block_tiles = (geo->block_tiles + nr - 1) / nr * nr;
    }
    if (geo->k_split <= 0) {
        const long units = (ntiles + geo->block_tiles - 1) / geo->block_tiles * geo->groups;
        const int kpanels = (kg + mr - 1) / mr;
        int split = 1;
        /* too few units for the threads: split the output channels as well, one split per
         * thread (the team then shares each block's input transform, winograd_dtype.h, and
         * splits every block, so no dynamic balancing is needed; more splits would only
         * shrink each GEMM) */
        if (units < 2 * nthreads && nthreads > 1) split = (int)FC_MIN((long)kpanels, nthreads);
        geo->k_split = FC_MAX(1, split);
    }
}

size_t fc_winograd_scratch_bytes(int isa, int dtype, const fc_winograd_geometry *geo,
                                 int nthreads)
{
    const int m = geo->tile, alpha2 = (m + 2) * (m + 2);
    const int mr = fc_gemm_mr(isa, dtype);
    const size_t esize = dtype == FC_GEMM_F64 ? sizeof(double) : sizeof(float);
    const int cg = geo->c_in / geo->groups, kg = geo->c_out / geo->groups;
    const int kpanels = (kg + mr - 1) / mr, split = FC_MIN(geo->k_split, kpanels);
    const int kper = FC_MIN(kg, (kpanels + split - 1) / split * mr);
    const size_t v_elems = (size_t)geo->block_tiles * cg + FC_WINO_SKEW(char) / esize;
    const size_t m_elems = (size_t)geo->block_tiles * kper + FC_WINO_SKEW(char) / esize;
    const size_t elems = (size_t)alpha2 * (v_elems + m_elems);
    return (size_t)nthreads * (elems * esize + 3 * (size_t)geo->block_tiles * sizeof(int));
}

/* ISA dispatch of the weight transform and the convolution (per-ISA code: winograd_dtype.h). */
#define FC_WINO_DISPATCH(T, SFX)                                                              \
    void fc_winograd_transform_weights_##SFX(int isa, int tile, int c_out, int cg,            \
                                             int groups, const T *w, const double *G,         \
                                             T *packed, int nthreads)                         \
    {                                                                                         \
        switch (isa) {                                                                        \
            FC_FOR_EACH_SIMD_ISA(FC_WINO_CASE, fc_winograd_transform_weights_##SFX,           \
                                 (tile, c_out, cg, groups, w, G, packed, nthreads))           \
        default:                                                                              \
            fc_winograd_transform_weights_##SFX##_scalar(tile, c_out, cg, groups, w, G,       \
                                                         packed, nthreads);                   \
        }                                                                                     \
    }                                                                                         \
    int fc_winograd_conv2d_##SFX(int isa, const fc_winograd_geometry *geo, const T *x,        \
                                 const T *packed, const T *bias, T *y, int nthreads)          \
    {                                                                                         \
        switch (isa) {                                                                        \
            FC_FOR_EACH_SIMD_ISA(FC_WINO_CASE, return fc_winograd_conv2d_##SFX,               \
                                 (geo, x, packed, bias, y, nthreads))                         \
        default: return fc_winograd_conv2d_##SFX##_scalar(geo, x, packed, bias, y, nthreads); \
        }                                                                                     \
    }
/* case FC_ISA_<X>: CALL_<x> ARGS; break;  (CALL may start with `return`) */
#define FC_WINO_CASE(ENUM, ISA, CALL, ARGS) \
    case ENUM: CALL##_##ISA ARGS; break;
FC_WINO_DISPATCH(float, f32)
FC_WINO_DISPATCH(double, f64)
