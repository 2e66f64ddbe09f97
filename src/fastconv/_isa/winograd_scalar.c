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

/* U = G g G^T in double for one (k, c), rounded once to T. Work goes panel by panel of the
 * packed-A layout (MR output channels, MR values per input channel), 64 / MR input channels
 * at a time: their alpha^2 x (chunk x MR) results are collected in a local buffer,
 * then copied to the alpha^2 destination matrices as contiguous runs (writing alpha^2 strided
 * streams directly would alias in the caches: the matrices are a power-of-two apart). Every
 * element is written exactly once (rows past Kg in the last panel get zeros). */
#define FC_WINO_WEIGHTS(T, SFX, DTYPE)                                                        \
    void fc_winograd_transform_weights_##SFX(int isa, int tile, int c_out, int cg,            \
                                             int groups, const double *w, const double *G,    \
                                             T *packed, int nthreads)                         \
    {                                                                                         \
        const int alpha = tile + 2, kg = c_out / groups, mr = fc_gemm_mr(isa, DTYPE);        \
        const int panels = (kg + mr - 1) / mr;                                                \
        const size_t one = fc_gemm_packed_a_size_##SFX(isa, kg, cg);                           \
        const size_t step = (size_t)groups * one; /* from one xi to the next */               \
        const int chunk = FC_MAX(1, 64 / mr);                                                 \
        double gm[8][3]; /* local copy: stores to `packed` cannot alias it */                 \
        for (int a = 0; a < alpha; a++)                                                       \
            for (int j = 0; j < 3; j++) gm[a][j] = G[a * 3 + j];                              \
        FC_OMP(parallel for num_threads(nthreads) if (nthreads > 1) schedule(static))          \
        for (int job = 0; job < groups * panels; job++) {                                     \
            const int gi = job / panels, p = job % panels;                                    \
            T buf[64][64]; /* alpha^2 <= 64; MR <= 64 */                                     \
            T *base = packed + (size_t)gi * one + (size_t)p * mr * cg;                        \
            for (int c0 = 0; c0 < cg; c0 += chunk) {                                          \
                const int cn = FC_MIN(chunk, cg - c0);                                        \
                for (int c = 0; c < cn; c++) {                                                \
                    /* lanes r = output channels of the panel (vectorisable) */               \
                    double gk[9][64], tmp[8][3][64];                                          \
                    for (int r = 0; r < mr; r++) {                                            \
                        const int kl = FC_MIN(p * mr + r, kg - 1); /* pad rows: zeroed below */ \
                        const double *g = w + ((size_t)(gi * kg + kl) * cg + c0 + c) * 9;     \
                        for (int e = 0; e < 9; e++) gk[e][r] = g[e];                          \
                    }                                                                         \
                    for (int a = 0; a < alpha; a++)                                           \
                        for (int j = 0; j < 3; j++)                                           \
                            for (int r = 0; r < mr; r++)                                      \
                                tmp[a][j][r] = gm[a][0] * gk[j][r] + gm[a][1] * gk[3 + j][r]  \
                                               + gm[a][2] * gk[6 + j][r];                     \
                    for (int a = 0; a < alpha; a++)                                           \
                        for (int b = 0; b < alpha; b++)                                       \
                            for (int r = 0; r < mr; r++)                                      \
                                buf[a * alpha + b][c * mr + r] =                              \
                                    (T)(tmp[a][0][r] * gm[b][0] + tmp[a][1][r] * gm[b][1]     \
                                        + tmp[a][2][r] * gm[b][2]);                           \
                    for (int r = kg - p * mr; r < mr; r++)                                    \
                        for (int e = 0; e < alpha * alpha; e++) buf[e][c * mr + r] = 0;       \
                }                                                                             \
                for (int e = 0; e < alpha * alpha; e++) {                                     \
                    T *dst = base + e * step + (size_t)c0 * mr;                               \
                    for (int i = 0; i < cn * mr; i++) dst[i] = buf[e][i];                     \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
    }
FC_WINO_WEIGHTS(float, f32, FC_GEMM_F32)
FC_WINO_WEIGHTS(double, f64, FC_GEMM_F64)

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
        /* too few units for the threads: split the output channels as well */
        if (units < 2 * nthreads && nthreads > 1)
            split = (int)FC_MIN((long)kpanels, (2 * nthreads + units - 1) / units);
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

#define FC_WINO_DISPATCH(T, SFX)                                                              \
    int fc_winograd_conv2d_##SFX(int isa, const fc_winograd_geometry *geo, const T *x,        \
                                 const T *packed, const T *bias, T *y, int nthreads)          \
    {                                                                                         \
        switch (isa) {                                                                        \
        FC_WINO_CASE_AVX2(SFX)                                                                \
        FC_WINO_CASE_AVX512(SFX)                                                              \
        FC_WINO_CASE_NEON(SFX)                                                                \
        default: return fc_winograd_conv2d_##SFX##_scalar(geo, x, packed, bias, y, nthreads); \
        }                                                                                     \
    }
#if FC_HAVE_AVX2
#define FC_WINO_CASE_AVX2(SFX)                                                                \
    case FC_ISA_AVX2: return fc_winograd_conv2d_##SFX##_avx2(geo, x, packed, bias, y, nthreads);
#else
#define FC_WINO_CASE_AVX2(SFX)
#endif
#if FC_HAVE_AVX512
#define FC_WINO_CASE_AVX512(SFX)                                                              \
    case FC_ISA_AVX512:                                                                       \
        return fc_winograd_conv2d_##SFX##_avx512(geo, x, packed, bias, y, nthreads);
#else
#define FC_WINO_CASE_AVX512(SFX)
#endif
#if FC_HAVE_NEON
#define FC_WINO_CASE_NEON(SFX)                                                                \
    case FC_ISA_NEON: return fc_winograd_conv2d_##SFX##_neon(geo, x, packed, bias, y, nthreads);
#else
#define FC_WINO_CASE_NEON(SFX)
#endif
FC_WINO_DISPATCH(float, f32)
FC_WINO_DISPATCH(double, f64)
