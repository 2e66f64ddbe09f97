/* GEMM: the portable C micro-kernels, the ISA-neutral cache-blocked OpenMP driver and the
 * config dispatch (built with baseline flags; the ISA-specific kernels are reached through
 * the config tables of _isa/gemm_<isa>.c). API and contract: fastconv/gemm.h.
 *
 * Blocking (BLIS): for each column block of B, for each KC-deep slice, the callback packs the
 * kc x nc block once (per thread, into that thread's scratch); then for each MC-row block of
 * the packed A, each KC x NR micro-panel of B (held in L1) meets every MR x KC slice of A in
 * that block (streamed from L2). A share of at most MC rows uses its B block once, so the
 * block is L2-sized (fc_gemm_block_cols); a block of few panels (small N) is walked A-slice
 * first (fc_gemm_block_).
 * Threads: C is cut into a grid of units (whole MR x NR tiles; see fc_gemm_make_plan) handed
 * out dynamically. A unit runs the full K loop for its tiles, so no reduction between threads
 * is needed and the summation order (and hence the result) does not depend on the thread
 * count or on which thread ran which unit. Wide N: column units, each packing its own B.
 * Small N: the threads first pack the whole B together into one shared buffer, then take row
 * units. Thread 0 waits for the last unit spinning, not in the closing barrier
 * (fastconv/team_wait.h).
 *
 * Template: the driver below the `#else` is included (this file includes itself) once per
 * dtype with FC_DRV_T / FC_DRV_SFX set.
 */
#ifndef FC_DRV_T

#include "fastconv/gemm.h"
#include "fastconv/kernels/gemm_scalar.h"
#include "fastconv/omp.h"
#include "fastconv/pack.h"
#include "fastconv/team_wait.h"

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

#define FC_GEMM_CONFIG_CASE(ENUM, ISA, DT) \
    case ENUM: return &fc_gemm_config_##DT##_##ISA;

const fc_gemm_config_f32 *fc_gemm_config_get_f32(int isa)
{
    switch (isa) {
        FC_FOR_EACH_ISA(FC_GEMM_CONFIG_CASE, f32)
    default: return NULL;
    }
}

const fc_gemm_config_f64 *fc_gemm_config_get_f64(int isa)
{
    switch (isa) {
        FC_FOR_EACH_ISA(FC_GEMM_CONFIG_CASE, f64)
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

/* A read hint (no-op where the compiler has none). */
#if defined(__GNUC__) || defined(__clang__)
#define FC_GEMM_PREFETCH(p) __builtin_prefetch(p)
#else
#define FC_GEMM_PREFETCH(p) ((void)(p))
#endif
/* Bytes of the next A slice requested before a micro-kernel: what the kernel's own prefetch
 * (64 steps ahead) would have covered had the slice continued the current one. */
#ifndef FC_GEMM_A_HEAD_BYTES
#define FC_GEMM_A_HEAD_BYTES 2048
#endif
/* Packed B blocks of at most this many panels are walked A-slice-major (fc_gemm_block_). */
#define FC_GEMM_FEW_PANELS 4
/* A thread's packed B block for a share of at most MC rows: read back from L2, so it takes
 * about a third of the 1 MiB L2 (beside the A block and C). */
#ifndef FC_GEMM_L2_B_BYTES
#define FC_GEMM_L2_B_BYTES ((size_t)384 << 10)
#endif
/* 0 turns the shared-B split off (for measuring what it buys). */
#ifndef FC_GEMM_SHARED_B
#define FC_GEMM_SHARED_B 1
#endif
/* Largest whole packed B the threads share (small N; it is read from L3 by every thread). */
#define FC_GEMM_SHARED_B_BYTES ((size_t)8 << 20)

/* Width of one thread's packed B block: NC when its rows span several MC blocks (each reuses
 * the block from L3), else as wide as fits FC_GEMM_L2_B_BYTES: the block is used by one A
 * block only, so it streams through L2, and wide rows are copied in long runs. */
static int fc_gemm_block_cols(int rows, int mc, int nc, int kc, int nr, int K, size_t elem)
{
    if (rows > mc) return nc;
    size_t depth = (size_t)FC_MAX(1, FC_MIN(kc, K));
    int width = (int)(FC_GEMM_L2_B_BYTES / (depth * elem)) / nr * nr;
    return FC_MAX(nr, FC_MIN(nc, width));
}

/* Column units per thread in the grid split (wide N). */
#ifndef FC_GEMM_UNITS_PER_THREAD
#define FC_GEMM_UNITS_PER_THREAD 2
#endif

/* One unit of work: rows [m0, m1) x columns [n0, n1) of C, on MR / NR panel boundaries. */
typedef struct {
    int m0, m1, n0, n1;
} fc_gemm_share;

/* The work is cut into a grid of units (about 2 per thread, so threads that finish early -- or
 * that are not descheduled on a shared machine -- take more; 4 made each unit's B block and its
 * A walk short: resnet.down 2 threads 0.611 -> 0.600 ms best, Zen 4). Columns are cut first: a column
 * unit packs only its own columns of B; rows are cut too only when N has too few panels. */
typedef struct {
    int units_m, units_n;   /* grid */
    int panels_m, panels_n; /* panels in all (MR rows, NR columns) */
} fc_gemm_grid;

static fc_gemm_grid fc_gemm_make_grid(int M, int N, int mr, int nr, int nthreads)
{
    int mp = (M + mr - 1) / mr, np = (N + nr - 1) / nr;
    int target = nthreads > 1 ? FC_GEMM_UNITS_PER_THREAD * nthreads : 1;
    fc_gemm_grid g;
    g.units_n = FC_MIN(np, target);
    g.units_m = FC_MIN(mp, (target + g.units_n - 1) / g.units_n);
    g.panels_n = np; /* totals: units split them as evenly as whole panels allow */
    g.panels_m = mp;
    return g;
}

/* Unit u: rows and columns of C split into units_m x units_n ranges of whole panels whose
 * sizes differ by at most one panel (so that the units of each thread add up evenly). */
static fc_gemm_share fc_gemm_unit(fc_gemm_grid g, int M, int N, int mr, int nr, int u)
{
    int um = u / g.units_n, un = u % g.units_n;
    fc_gemm_share s;
    s.m0 = (int)((long long)um * g.panels_m / g.units_m) * mr;
    s.m1 = FC_MIN(M, (int)((long long)(um + 1) * g.panels_m / g.units_m) * mr);
    s.n0 = (int)((long long)un * g.panels_n / g.units_n) * nr;
    s.n1 = FC_MIN(N, (int)((long long)(un + 1) * g.panels_n / g.units_n) * nr);
    return s;
}

/* How the threads split the work. With fewer than 4 column panels per thread (small N, as for
 * late CNN layers: N = 7 x 7) a column split would leave threads idle and a row split would
 * pack B once per row unit, so the threads pack the whole B once, together, and split rows. */
typedef struct {
    fc_gemm_grid grid;
    int shared_b;        /* the whole packed B is shared (grid.units_n == 1) */
    size_t shared_elems; /* its size: K x (N rounded up to NR), in elements */
} fc_gemm_plan;

static fc_gemm_plan fc_gemm_make_plan(int M, int N, int K, int mr, int nr, int nthreads,
                                      size_t elem)
{
    const int mp = (M + mr - 1) / mr, np = (N + nr - 1) / nr;
    fc_gemm_plan plan;
    plan.shared_elems = ((size_t)FC_MAX(K, 1) * (size_t)np * (size_t)nr + 15) / 16 * 16;
    plan.shared_b = FC_GEMM_SHARED_B && nthreads > 1 && K > 0 && np < 4 * nthreads
                    && mp >= 2 * nthreads && plan.shared_elems * elem <= FC_GEMM_SHARED_B_BYTES;
    if (!plan.shared_b) {
        plan.grid = fc_gemm_make_grid(M, N, mr, nr, nthreads);
        return plan;
    }
    /* units of at least 4 row panels (each unit reads all of B), 2..4 per thread */
    int units = FC_MIN(4 * nthreads, FC_MAX(2 * nthreads, mp / 4));
    plan.grid.units_n = 1;
    plan.grid.panels_n = np;
    plan.grid.units_m = FC_MIN(units, mp);
    plan.grid.panels_m = mp;
    return plan;
}

double fc_gemm_fma_peak_run(int isa, int dtype, long iters, int nthreads)
{
#define FC_GEMM_FMA_LOOP_CASE(ENUM, ISA, _)                                                \
    case ENUM:                                                                             \
        loop = dtype == FC_GEMM_F64 ? fc_gemm_fma_loop_f64_##ISA : fc_gemm_fma_loop_f32_##ISA; \
        break;
    double (*loop)(long);
    switch (isa) {
        FC_FOR_EACH_ISA(FC_GEMM_FMA_LOOP_CASE, _)
    default: return 0;
    }
#undef FC_GEMM_FMA_LOOP_CASE
    (void)nthreads; /* unused in serial builds */
    double flops = 0;
    FC_OMP(parallel num_threads(nthreads) reduction(+ : flops))
    flops += loop(iters);
    return flops;
}

double fc_read_bandwidth_run(const void *buf, size_t bytes, long passes, int nthreads)
{
    /* each thread reads its own contiguous share, whole 64-byte lines, `passes` times */
    const uint64_t *words = (const uint64_t *)buf;
    const size_t lines = bytes / 64;
    uint64_t sum = 0;
    double done = 0;
    (void)nthreads; /* unused in serial builds */
    FC_OMP(parallel num_threads(nthreads) reduction(+ : sum, done))
    {
        const size_t team = (size_t)fc_omp_num_threads(), t = (size_t)fc_omp_thread_num();
        const size_t first = lines * t / team, last = lines * (t + 1) / team;
        uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (long pass = 0; pass < passes; pass++) {
            for (size_t line = first; line < last; line++) {
                const uint64_t *w = words + line * 8;
                for (int j = 0; j < 8; j++) acc[j] += w[j];
            }
        }
        for (int j = 0; j < 8; j++) sum += acc[j];
        done += 64.0 * (double)(last - first) * (double)passes;
    }
    volatile uint64_t sink = sum;
    (void)sink;
    return done;
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

/* Ask for the first `bytes` of p (a read hint). */
static inline void SFX(fc_gemm_prefetch_)(const T *p, int bytes)
{
    for (int off = 0; off < bytes; off += 64) FC_GEMM_PREFETCH((const char *)p + off);
}

/* The micro-tiles of one MC-row block of C against one packed B block (nc columns, kc deep,
 * panel jr at bp + jr * kc). Many panels: each B micro-panel stays in L1 while the MR-row
 * slices of A stream past it from L2 (BLIS). Few panels (small N): each A slice is read once,
 * from L3 (prefetched by the kernel), and meets every panel while it sits in L1; as the kernel
 * prefetches ahead within its own slice only and the next slice is far away (another MR-row
 * panel of A), the head of the next slice is requested first. (Not in the BLIS order: there
 * A sits in L2 and the extra lines only push the B micro-panel out of L1.) */
static void SFX(fc_gemm_block_)(const CONFIG *cfg, int row0, int mc, int col0, int nc, int pc,
                                int kc, int K, const T *packed_a, const T *bp, T *C,
                                ptrdiff_t ldc, const T *bias, int accumulate)
{
    const int mr = cfg->mr, nr = cfg->nr;
    const T *a0 = packed_a + (ptrdiff_t)row0 * K + (ptrdiff_t)pc * mr;
    const ptrdiff_t a_step = (ptrdiff_t)mr * K; /* from one A slice to the next */
    const int head = FC_MIN(FC_GEMM_A_HEAD_BYTES, kc * mr * (int)sizeof(T));
    if ((nc + nr - 1) / nr <= FC_GEMM_FEW_PANELS) {
        for (int ir = 0; ir < mc; ir += mr) {
            const int row = row0 + ir, m = FC_MIN(mr, mc - ir);
            const T *ap = a0 + (ptrdiff_t)(ir / mr) * a_step;
            if (ir + mr < mc) SFX(fc_gemm_prefetch_)(ap + a_step, head);
            for (int jr = 0; jr < nc; jr += nr)
                cfg->ukernel(kc, ap, bp + (ptrdiff_t)jr * kc, C + (ptrdiff_t)row * ldc + col0 + jr,
                             ldc, m, FC_MIN(nr, nc - jr), bias ? bias + row : NULL, accumulate);
        }
        return;
    }
    for (int jr = 0; jr < nc; jr += nr) {
        const int n = FC_MIN(nr, nc - jr);
        for (int ir = 0; ir < mc; ir += mr) {
            const int row = row0 + ir;
            const T *ap = a0 + (ptrdiff_t)(ir / mr) * a_step;
            cfg->ukernel(kc, ap, bp + (ptrdiff_t)jr * kc, C + (ptrdiff_t)row * ldc + col0 + jr,
                         ldc, FC_MIN(mr, mc - ir), n, bias ? bias + row : NULL, accumulate);
        }
    }
}

/* One unit of work: rows [sh.m0, sh.m1) x columns [sh.n0, sh.n1) of C, every K block, packing
 * its own B blocks into bbuf; or, if `shared` is not NULL, reading the whole packed B from it
 * (K blocks one after another, block kb = KC rows x npad columns at shared + kb*KC*npad). */
static void SFX(fc_gemm_share_)(const CONFIG *cfg, fc_gemm_share sh, int K, const T *packed_a,
                                PACK_B_FN pack_b, const void *ctx, T *C, ptrdiff_t ldc,
                                const T *bias, int accumulate, T *bbuf, const T *shared,
                                int npad)
{
    const int KC = cfg->kc, MC = cfg->mc;
    /* K == 0 still runs one (empty) K block: C = (accumulate ? C : 0) + bias */
    const int kblocks = K > 0 ? (K + KC - 1) / KC : 1;
    int NCB = shared ? sh.n1 - sh.n0
                     : fc_gemm_block_cols(sh.m1 - sh.m0, MC, cfg->nc, KC, cfg->nr, K, sizeof(T));
    if (!shared && sh.n1 - sh.n0 > NCB) {
        /* as many blocks as the cap needs, of even widths (no sliver of a last block) */
        const int nblocks = (sh.n1 - sh.n0 + NCB - 1) / NCB, nr = cfg->nr;
        NCB = ((sh.n1 - sh.n0 + nblocks - 1) / nblocks + nr - 1) / nr * nr;
    }
    for (int jc = sh.n0; jc < sh.n1; jc += NCB) {
        const int nc = FC_MIN(NCB, sh.n1 - jc);
        for (int kb = 0; kb < kblocks; kb++) {
            const int pc = kb * KC, kc = FC_MIN(KC, K - pc), first = kb == 0;
            const T *bp = bbuf;
            if (shared)
                bp = shared + (ptrdiff_t)pc * npad + (ptrdiff_t)jc * FC_MAX(kc, 0);
            else if (kc > 0)
                pack_b(ctx, pc, kc, jc, nc, bbuf);
            for (int ic = sh.m0; ic < sh.m1; ic += MC)
                SFX(fc_gemm_block_)(cfg, ic, FC_MIN(MC, sh.m1 - ic), jc, nc, pc, FC_MAX(kc, 0), K,
                                    packed_a, bp, C, ldc, first ? bias : NULL,
                                    first ? accumulate : 1);
        }
    }
}

int SFX(fc_gemm_)(int isa, int M, int N, int K, const T *packed_a, PACK_B_FN pack_b,
                  const void *ctx, T *C, ptrdiff_t ldc, const T *bias, int accumulate,
                  int nthreads)
{
    if (M <= 0 || N <= 0) return 0;
    const CONFIG *cfg = SFX(fc_gemm_config_get_)(isa);
    const int mr = cfg->mr, nr = cfg->nr, KC = cfg->kc;
    if (nthreads < 1) nthreads = 1;
    const fc_gemm_plan plan = fc_gemm_make_plan(M, N, K, mr, nr, nthreads, sizeof(T));
    const size_t per_thread = fc_gemm_scratch_elems(cfg->kc, cfg->nc, cfg->nr, N, K);
    const size_t scratch_elems = plan.shared_b ? plan.shared_elems : per_thread * (size_t)nthreads;
    T *scratch = (T *)fc_malloc(scratch_elems * sizeof(T));
    if (!scratch) return -1;
    long done = 0; /* units finished (fastconv/team_wait.h) */
    if (nthreads == 1) {
        fc_gemm_share all = {0, M, 0, N};
        SFX(fc_gemm_share_)(cfg, all, K, packed_a, pack_b, ctx, C, ldc, bias, accumulate,
                            scratch, NULL, 0);
    } else if (plan.shared_b) {
        /* small N: the threads pack all of B once, together, then split the rows */
        const int npad = (N + nr - 1) / nr * nr, kblocks = (K + KC - 1) / KC;
        const int groups = (npad / nr + FC_GEMM_FEW_PANELS - 1) / FC_GEMM_FEW_PANELS;
        const int units = plan.grid.units_m;
        FC_FP_CAPTURE();
        FC_OMP(parallel num_threads(nthreads))
        {
            FC_FP_ADOPT();
            FC_OMP(for schedule(dynamic, 1))
            for (int u = 0; u < kblocks * groups; u++) {
                const int kb = u / groups, n0 = (u % groups) * FC_GEMM_FEW_PANELS * nr;
                const int pc = kb * KC, kc = FC_MIN(KC, K - pc);
                pack_b(ctx, pc, kc, n0, FC_MIN(FC_GEMM_FEW_PANELS * nr, N - n0),
                       scratch + (ptrdiff_t)pc * npad + (ptrdiff_t)n0 * kc);
            }
            FC_OMP(for schedule(dynamic, 1) nowait)
            for (int u = 0; u < units; u++) {
                fc_gemm_share sh = fc_gemm_unit(plan.grid, M, N, mr, nr, u);
                SFX(fc_gemm_share_)(cfg, sh, K, packed_a, pack_b, ctx, C, ldc, bias,
                                    accumulate, NULL, scratch, npad);
                FC_TEAM_DONE_ADD(&done);
            }
            fc_team_wait_done(&done, units);
            FC_FP_RESTORE();
        }
    } else {
        const int units = plan.grid.units_m * plan.grid.units_n;
        FC_FP_CAPTURE();
        FC_OMP(parallel num_threads(nthreads))
        {
            FC_FP_ADOPT();
            T *bbuf = scratch + per_thread * (size_t)fc_omp_thread_num();
            FC_OMP(for schedule(dynamic, 1) nowait)
            for (int u = 0; u < units; u++) {
                fc_gemm_share sh = fc_gemm_unit(plan.grid, M, N, mr, nr, u);
                SFX(fc_gemm_share_)(cfg, sh, K, packed_a, pack_b, ctx, C, ldc, bias,
                                    accumulate, bbuf, NULL, 0);
                FC_TEAM_DONE_ADD(&done);
            }
            fc_team_wait_done(&done, units);
            FC_FP_RESTORE();
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
