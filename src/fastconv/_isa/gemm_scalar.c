/* GEMM: the portable C micro-kernels, the ISA-neutral cache-blocked OpenMP driver and the
 * config dispatch (built with baseline flags; the ISA-specific kernels are reached through
 * the config tables of _isa/gemm_<isa>.c). API and contract: fastconv/gemm.h.
 *
 * Blocking (BLIS): for each NC-wide column block of B, for each KC-deep slice, the callback
 * packs the kc x nc block once (per thread, into that thread's scratch); then for each
 * MC-row block of the packed A, each KC x NR micro-panel of B (held in L1) meets every
 * MR x KC slice of A in that block (streamed from L2).
 * Threads: C is cut into a grid of units (whole MR x NR tiles; see fc_gemm_make_grid) handed
 * out dynamically. A unit runs the full K loop for its tiles, so no reduction between threads
 * is needed and the summation order (and hence the result) does not depend on the thread
 * count or on which thread ran which unit.
 *
 * Template: the driver below the `#else` is included (this file includes itself) once per
 * dtype with FC_DRV_T / FC_DRV_SFX set.
 */
#ifndef FC_DRV_T

#include "fastconv/gemm.h"
#include "fastconv/kernels/gemm_scalar.h"
#include "fastconv/omp.h"
#include "fastconv/pack.h"

const fc_gemm_config_f32 fc_gemm_config_f32_scalar = {
    "fc_gemm_f32_4x8__scalar", FC_GEMM_SCALAR_MR, FC_GEMM_SCALAR_NR, 256, 128, 2048,
    fc_gemm_f32_4x8__scalar, fc_pack_a_f32, fc_pack_b_f32};
const fc_gemm_config_f64 fc_gemm_config_f64_scalar = {
    "fc_gemm_f64_4x8__scalar", FC_GEMM_SCALAR_MR, FC_GEMM_SCALAR_NR, 256, 128, 1024,
    fc_gemm_f64_4x8__scalar, fc_pack_a_f64, fc_pack_b_f64};

/* Peak of the scalar "ISA": 12 independent multiply-add chains (no FMA in baseline x86-64). */
#define FC_SCALAR_FMA_LOOP(T, SFX)                                                           \
    double FC_CAT(FC_CAT(fc_gemm_fma_loop_, SFX), _scalar)(long iters)                       \
    {                                                                                        \
        T acc[12], x = (T)0.999999, y = (T)1e-6;                                              \
        for (int j = 0; j < 12; j++) acc[j] = (T)j;                                           \
        for (long it = 0; it < iters; it++)                                                   \
            for (int j = 0; j < 12; j++) acc[j] = acc[j] * x + y;                             \
        volatile T sink = 0;                                                                  \
        for (int j = 0; j < 12; j++) sink += acc[j];                                          \
        (void)sink;                                                                           \
        return 2.0 * 12.0 * (double)iters;                                                   \
    }
FC_SCALAR_FMA_LOOP(float, f32)
FC_SCALAR_FMA_LOOP(double, f64)

const fc_gemm_config_f32 *fc_gemm_config_get_f32(int isa)
{
    switch (isa) {
    case FC_ISA_SCALAR: return &fc_gemm_config_f32_scalar;
#if FC_HAVE_AVX2
    case FC_ISA_AVX2: return &fc_gemm_config_f32_avx2;
#endif
#if FC_HAVE_AVX512
    case FC_ISA_AVX512: return &fc_gemm_config_f32_avx512;
#endif
#if FC_HAVE_NEON
    case FC_ISA_NEON: return &fc_gemm_config_f32_neon;
#endif
    default: return NULL;
    }
}

const fc_gemm_config_f64 *fc_gemm_config_get_f64(int isa)
{
    switch (isa) {
    case FC_ISA_SCALAR: return &fc_gemm_config_f64_scalar;
#if FC_HAVE_AVX2
    case FC_ISA_AVX2: return &fc_gemm_config_f64_avx2;
#endif
#if FC_HAVE_AVX512
    case FC_ISA_AVX512: return &fc_gemm_config_f64_avx512;
#endif
#if FC_HAVE_NEON
    case FC_ISA_NEON: return &fc_gemm_config_f64_neon;
#endif
    default: return NULL;
    }
}

/* One accessor per blocking field, for both dtypes. */
#define FC_GEMM_FIELD(FIELD)                                                                 \
    int FC_CAT(fc_gemm_, FIELD)(int isa, int dtype)                                           \
    {                                                                                        \
        if (dtype == FC_GEMM_F64) {                                                          \
            const fc_gemm_config_f64 *cfg = fc_gemm_config_get_f64(isa);                      \
            return cfg ? cfg->FIELD : 0;                                                     \
        }                                                                                    \
        const fc_gemm_config_f32 *cfg = fc_gemm_config_get_f32(isa);                          \
        return cfg ? cfg->FIELD : 0;                                                         \
    }
FC_GEMM_FIELD(mr)
FC_GEMM_FIELD(nr)
FC_GEMM_FIELD(kc)
FC_GEMM_FIELD(mc)
FC_GEMM_FIELD(nc)

/* Elements of one thread's packed-B block: kc x (nc rounded up to NR), rounded up to 64 bytes
 * so every thread's block starts 64-byte aligned (for the callback and the kernel's loads). */
static size_t fc_gemm_scratch_elems(int kc, int nc, int nr, int N, int K)
{
    size_t depth = (size_t)FC_MAX(1, FC_MIN(kc, K));
    size_t width = (size_t)FC_MIN(nc, (N + nr - 1) / nr * nr);
    return (depth * width + 15) / 16 * 16;
}

size_t fc_gemm_scratch_bytes(int isa, int dtype, int N, int K)
{
    size_t elems = fc_gemm_scratch_elems(fc_gemm_kc(isa, dtype), fc_gemm_nc(isa, dtype),
                                         fc_gemm_nr(isa, dtype), N, K);
    return elems * (dtype == FC_GEMM_F64 ? sizeof(double) : sizeof(float));
}

/* One unit of work: rows [m0, m1) x columns [n0, n1) of C, on MR / NR panel boundaries. */
typedef struct {
    int m0, m1, n0, n1;
} fc_gemm_share;

/* The work is cut into a grid of units (about 4 per thread, so threads that finish early -- or
 * that are not descheduled on a shared machine -- take more). Columns are cut first: a column
 * unit packs only its own columns of B; rows are cut too only when N has too few panels. */
typedef struct {
    int units_m, units_n, panels_m, panels_n; /* grid, and panels per unit */
} fc_gemm_grid;

static fc_gemm_grid fc_gemm_make_grid(int M, int N, int mr, int nr, int nthreads)
{
    int mp = (M + mr - 1) / mr, np = (N + nr - 1) / nr, target = nthreads > 1 ? 4 * nthreads : 1;
    fc_gemm_grid g;
    g.units_n = FC_MIN(np, target);
    g.units_m = FC_MIN(mp, (target + g.units_n - 1) / g.units_n);
    g.panels_n = (np + g.units_n - 1) / g.units_n;
    g.panels_m = (mp + g.units_m - 1) / g.units_m;
    g.units_n = (np + g.panels_n - 1) / g.panels_n; /* drop units left empty by rounding */
    g.units_m = (mp + g.panels_m - 1) / g.panels_m;
    return g;
}

static fc_gemm_share fc_gemm_unit(fc_gemm_grid g, int M, int N, int mr, int nr, int u)
{
    int um = u / g.units_n, un = u % g.units_n;
    fc_gemm_share s;
    s.m0 = um * g.panels_m * mr;
    s.m1 = FC_MIN(M, s.m0 + g.panels_m * mr);
    s.n0 = un * g.panels_n * nr;
    s.n1 = FC_MIN(N, s.n0 + g.panels_n * nr);
    return s;
}

double fc_gemm_fma_peak_run(int isa, int dtype, long iters, int nthreads)
{
    double (*loop)(long) = dtype == FC_GEMM_F64 ? fc_gemm_fma_loop_f64_scalar
                                                : fc_gemm_fma_loop_f32_scalar;
#if FC_HAVE_AVX2
    if (isa == FC_ISA_AVX2)
        loop = dtype == FC_GEMM_F64 ? fc_gemm_fma_loop_f64_avx2 : fc_gemm_fma_loop_f32_avx2;
#endif
#if FC_HAVE_AVX512
    if (isa == FC_ISA_AVX512)
        loop = dtype == FC_GEMM_F64 ? fc_gemm_fma_loop_f64_avx512 : fc_gemm_fma_loop_f32_avx512;
#endif
#if FC_HAVE_NEON
    if (isa == FC_ISA_NEON)
        loop = dtype == FC_GEMM_F64 ? fc_gemm_fma_loop_f64_neon : fc_gemm_fma_loop_f32_neon;
#endif
    (void)isa, (void)nthreads; /* unused in scalar-only / serial builds */
    double flops = 0;
    FC_OMP(parallel num_threads(nthreads) reduction(+ : flops))
    flops += loop(iters);
    return flops;
}

#define FC_DRV_T float
#define FC_DRV_SFX f32
#include "gemm_scalar.c"
#undef FC_DRV_T
#undef FC_DRV_SFX

#define FC_DRV_T double
#define FC_DRV_SFX f64
#include "gemm_scalar.c"
#undef FC_DRV_T
#undef FC_DRV_SFX

#else /* driver template, per dtype */

#define T FC_DRV_T
#define SFX(name) FC_CAT(name, FC_DRV_SFX)
#define CONFIG SFX(fc_gemm_config_)
#define PACK_B_FN FC_CAT(SFX(fc_pack_b_), _fn)
#define STRIDED_B SFX(fc_gemm_strided_b_)

size_t SFX(fc_gemm_packed_a_size_)(int isa, int M, int K)
{
    int mr = SFX(fc_gemm_config_get_)(isa)->mr;
    return (size_t)((M + mr - 1) / mr) * (size_t)mr * (size_t)K;
}

void SFX(fc_gemm_pack_a_)(int isa, int M, int K, const T *A, ptrdiff_t rs, ptrdiff_t cs,
                          T *packed)
{
    const CONFIG *cfg = SFX(fc_gemm_config_get_)(isa);
    cfg->pack_a(cfg->mr, M, K, A, rs, cs, packed);
}

void SFX(fc_gemm_pack_b_strided_)(const void *ctx, int k0, int kc, int n0, int nc, T *dst)
{
    const STRIDED_B *s = (const STRIDED_B *)ctx;
    const CONFIG *cfg = SFX(fc_gemm_config_get_)(s->isa);
    cfg->pack_b(cfg->nr, kc, nc, s->b + (ptrdiff_t)k0 * s->rs + (ptrdiff_t)n0 * s->cs, s->rs,
                s->cs, dst);
}

/* One thread's share: rows [sh.m0, sh.m1) x columns [sh.n0, sh.n1) of C, every K block. */
static void SFX(fc_gemm_share_)(const CONFIG *cfg, fc_gemm_share sh, int K, const T *packed_a,
                                PACK_B_FN pack_b, const void *ctx, T *C, ptrdiff_t ldc,
                                const T *bias, int accumulate, T *bbuf)
{
    const int mr = cfg->mr, nr = cfg->nr, KC = cfg->kc, MC = cfg->mc, NC = cfg->nc;
    /* K == 0 still runs one (empty) K block: C = (accumulate ? C : 0) + bias */
    const int kblocks = K > 0 ? (K + KC - 1) / KC : 1;
    /* With a single MC block each B micro-panel is used once per K block, so it is packed
     * just before use, into L1, instead of the whole KC x NC block going through L2/L3. */
#ifndef FC_GEMM_JIT
#define FC_GEMM_JIT 1
#endif
    const int just_in_time = FC_GEMM_JIT && sh.m1 - sh.m0 <= MC;
    for (int jc = sh.n0; jc < sh.n1; jc += NC) {
        const int nc = FC_MIN(NC, sh.n1 - jc);
        for (int kb = 0; kb < kblocks; kb++) {
            const int pc = kb * KC, kc = FC_MIN(KC, K - pc), first = kb == 0;
            if (kc > 0 && !just_in_time) pack_b(ctx, pc, kc, jc, nc, bbuf);
            for (int ic = sh.m0; ic < sh.m1; ic += MC) {
                const int mc = FC_MIN(MC, sh.m1 - ic);
                for (int jr = 0; jr < nc; jr += nr) {
                    const int n = FC_MIN(nr, nc - jr);
                    const T *bp = bbuf + (ptrdiff_t)jr * kc;
                    if (just_in_time) {
                        if (kc > 0) pack_b(ctx, pc, kc, jc + jr, n, bbuf);
                        bp = bbuf;
                    }
                    for (int ir = 0; ir < mc; ir += mr) {
                        const int row = ic + ir;
                        const T *ap = packed_a + (ptrdiff_t)row * K + (ptrdiff_t)pc * mr;
                        cfg->ukernel(kc, ap, bp, C + (ptrdiff_t)row * ldc + jc + jr, ldc,
                                     FC_MIN(mr, mc - ir), n,
                                     first && bias ? bias + row : NULL, first ? accumulate : 1);
                    }
                }
            }
        }
    }
}

int SFX(fc_gemm_)(int isa, int M, int N, int K, const T *packed_a, PACK_B_FN pack_b,
                  const void *ctx, T *C, ptrdiff_t ldc, const T *bias, int accumulate,
                  int nthreads)
{
    if (M <= 0 || N <= 0) return 0;
    const CONFIG *cfg = SFX(fc_gemm_config_get_)(isa);
    if (nthreads < 1) nthreads = 1;
    const size_t per_thread = fc_gemm_scratch_elems(cfg->kc, cfg->nc, cfg->nr, N, K);
    T *scratch = (T *)fc_malloc(per_thread * sizeof(T) * (size_t)nthreads);
    if (!scratch) return -1;
    if (nthreads == 1) {
        fc_gemm_share all = {0, M, 0, N};
        SFX(fc_gemm_share_)(cfg, all, K, packed_a, pack_b, ctx, C, ldc, bias, accumulate,
                            scratch);
    } else {
        const fc_gemm_grid grid = fc_gemm_make_grid(M, N, cfg->mr, cfg->nr, nthreads);
        const int units = grid.units_m * grid.units_n;
        FC_OMP(parallel num_threads(nthreads))
        {
            T *bbuf = scratch + per_thread * (size_t)fc_omp_thread_num();
            FC_OMP(for schedule(dynamic, 1))
            for (int u = 0; u < units; u++) {
                fc_gemm_share sh = fc_gemm_unit(grid, M, N, cfg->mr, cfg->nr, u);
                SFX(fc_gemm_share_)(cfg, sh, K, packed_a, pack_b, ctx, C, ldc, bias,
                                    accumulate, bbuf);
            }
        }
    }
    fc_free(scratch);
    return 0;
}

#undef T
#undef SFX
#undef CONFIG
#undef PACK_B_FN
#undef STRIDED_B

#endif /* driver template */
