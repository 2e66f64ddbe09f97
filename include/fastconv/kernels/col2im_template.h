/* Transposed-convolution drivers, templated per dtype and compiled once per ISA.
 *
 * Include with FC_T (float/double), FC_DT (f32/f64) and FC_CONVT_ISA (scalar/avx2/...) defined;
 * it defines fc_convt_run_<dt>_<isa> (the col2im scatter and the phase im2col packing get this
 * translation unit's vector flags; the GEMM is the shared packed one of fastconv/gemm.h, which
 * dispatches on the `isa` number itself). With FC_CONVT_COMMON also defined (once per dtype, in
 * the scalar translation unit) it also defines fc_convt_prepared_size_<dt> and
 * fc_convt_prepare_<dt>. See fastconv/col2im.h for the algorithms and the contract.
 */
#include <string.h>

#include "fastconv/col2im.h"
#include "fastconv/gemm.h"
#include "fastconv/omp.h"

#define FC_TN(name) FC_CAT(FC_CAT(name, _), FC_CAT(FC_DT, FC_CAT(_, FC_CONVT_ISA)))
#define FC_GEMM_DTYPE (sizeof(FC_T) == 4 ? FC_GEMM_F32 : FC_GEMM_F64)
#define FC_CONVT_GEMM_RUN FC_CAT(fc_gemm_, FC_DT)
#define FC_CONVT_PACKED_A_SIZE FC_CAT(fc_gemm_packed_a_size_, FC_DT)
#define FC_CONVT_STRIDED_B FC_CAT(fc_gemm_strided_b_, FC_DT)
#define FC_CONVT_PACK_B_STRIDED FC_CAT(fc_gemm_pack_b_strided_, FC_DT)

/* floor(a / b) for b > 0 and any sign of a. */
static inline ptrdiff_t FC_TN(convt_floordiv)(ptrdiff_t a, ptrdiff_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* The GEMM algorithm's col2im accumulates each output channel in a phase-major plane
 * T[rd][rh][rw][qd][qh][qw] of the full (uncropped) output, f = o + pad = q*s + r: the taps
 * of one phase then add contiguous runs (vectorised, no bounds checks), and the output is
 * written once at the end, cropped and interleaved, with the bias. */
typedef struct {
    ptrdiff_t q[3];    /* phase-grid size per dim: ceil(full / s) */
    ptrdiff_t grid;    /* q[0] * q[1] * q[2] */
    ptrdiff_t size;    /* elements of T: prod(s) * grid */
} FC_TN(convt_acc);

static void FC_TN(convt_acc_init)(const fc_convt_geometry *g, FC_TN(convt_acc) *acc)
{
    acc->grid = 1;
    for (int dim = 0; dim < 3; dim++) {
        /* the largest f read is out - 1 + pad; the largest written is (in-1)*s + (k-1)*d */
        const ptrdiff_t full = FC_MAX(g->osize[dim] + g->pad[dim],
                                      (g->isize[dim] - 1) * g->s[dim] +
                                          (g->k[dim] - 1) * g->d[dim] + 1);
        acc->q[dim] = (full + g->s[dim] - 1) / g->s[dim];
        acc->grid *= acc->q[dim];
    }
    acc->size = acc->grid * g->s[0] * g->s[1] * g->s[2];
}

/* dst[r * dpitch + i] += src[r * n + i] for r < rows, i < n: the rows of one tap that fall in
 * one depth plane (its own function: a clean vector loop, bounds in registers). Rows of 16
 * values (the common small-W case: a whole-row vector, no loop tail) get their own copy of
 * the loop, since a generic loop of 16 iterations spends more in its set-up than in its adds. */
static inline void FC_TN(convt_add_rows)(FC_T *FC_RESTRICT dst, ptrdiff_t dpitch,
                                         const FC_T *FC_RESTRICT src, ptrdiff_t n, ptrdiff_t rows)
{
    if (n == 16) {
        for (ptrdiff_t r = 0; r < rows; r++, dst += dpitch, src += 16)
            for (int i = 0; i < 16; i++) dst[i] += src[i];
        return;
    }
    for (ptrdiff_t r = 0; r < rows; r++, dst += dpitch, src += n)
        for (ptrdiff_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Adds one output channel's column rows (taps x the input rows [r0, r1), flattened (d, h))
 * into its phase-major plane t. */
static void FC_TN(convt_col2im_acc)(const fc_convt_geometry *g, const FC_TN(convt_acc) *acc,
                                    const FC_T *FC_RESTRICT cols, ptrdiff_t ldc, ptrdiff_t r0,
                                    ptrdiff_t r1, FC_T *FC_RESTRICT t)
{
    const ptrdiff_t H = g->isize[1], W = g->isize[2];
    const ptrdiff_t Qh = acc->q[1], Qw = acc->q[2];
    ptrdiff_t tap = 0;
    for (ptrdiff_t kd = 0; kd < g->k[0]; kd++) {
        const ptrdiff_t fd = kd * g->d[0], rd = fd % g->s[0], jd = fd / g->s[0];
        for (ptrdiff_t kh = 0; kh < g->k[1]; kh++) {
            const ptrdiff_t fh = kh * g->d[1], rh = fh % g->s[1], jh = fh / g->s[1];
            for (ptrdiff_t kw = 0; kw < g->k[2]; kw++, tap++) {
                const ptrdiff_t fw = kw * g->d[2], rw = fw % g->s[2], jw = fw / g->s[2];
                const ptrdiff_t phase = (rd * g->s[1] + rh) * g->s[2] + rw;
                FC_T *tp = t + phase * acc->grid + jw;
                const FC_T *crow = cols + tap * ldc;
                /* row r = id * H + ih; one call per depth plane the rows cross */
                for (ptrdiff_t r = r0; r < r1;) {
                    const ptrdiff_t id = r / H, ih = r % H, n = FC_MIN(r1 - r, H - ih);
                    FC_TN(convt_add_rows)(tp + ((id + jd) * Qh + ih + jh) * Qw, Qw,
                                          crow + (r - r0) * W, W, n);
                    r += n;
                }
            }
        }
    }
}

/* One output row from its sw phase rows (t0 + r*grid, indexed by q): y[f - pad] for f in
 * [f0, f1) is t0[(f % sw)*grid + f / sw] + b. Written as whole groups of sw contiguous outputs
 * (an interleave; vectorised for strides 2 and 4), with the partial groups at both ends. */
static inline void FC_TN(convt_store_row)(FC_T *FC_RESTRICT ybase, const FC_T *FC_RESTRICT t0,
                                          ptrdiff_t grid, ptrdiff_t sw, ptrdiff_t f0,
                                          ptrdiff_t f1, FC_T b)
{
    ptrdiff_t f = f0;
    {
        ptrdiff_t q = f0 / sw, r = f0 % sw; /* the leading partial group */
        for (; f < f1 && r; f++) {
            ybase[f] = t0[r * grid + q] + b;
            if (++r == sw) r = 0;
        }
    }
    const ptrdiff_t q0 = f / sw, q1 = f1 / sw;
    if (sw == 1) {
        const FC_T *FC_RESTRICT ta = t0;
        for (ptrdiff_t q = q0; q < q1; q++) ybase[q] = ta[q] + b;
    } else if (sw == 2) {
        const FC_T *FC_RESTRICT ta = t0, *FC_RESTRICT tb = t0 + grid;
        for (ptrdiff_t q = q0; q < q1; q++) {
            ybase[2 * q] = ta[q] + b;
            ybase[2 * q + 1] = tb[q] + b;
        }
    } else if (sw == 4) {
        const FC_T *FC_RESTRICT ta = t0, *FC_RESTRICT tb = t0 + grid;
        const FC_T *FC_RESTRICT tc = t0 + 2 * grid, *FC_RESTRICT td = t0 + 3 * grid;
        for (ptrdiff_t q = q0; q < q1; q++) {
            ybase[4 * q] = ta[q] + b;
            ybase[4 * q + 1] = tb[q] + b;
            ybase[4 * q + 2] = tc[q] + b;
            ybase[4 * q + 3] = td[q] + b;
        }
    } else {
        for (ptrdiff_t r = 0; r < sw; r++) {
            const FC_T *FC_RESTRICT tr = t0 + r * grid;
            FC_T *FC_RESTRICT yr = ybase + r;
            for (ptrdiff_t q = q0; q < q1; q++) yr[q * sw] = tr[q] + b;
        }
    }
    f = FC_MAX(f, q1 * sw); /* the trailing partial group: f % sw == 0 here */
    for (ptrdiff_t r = 0; f < f1; f++, r++) ybase[f] = t0[r * grid + q1] + b;
}

/* y plane = crop and interleave of the phase-major plane t, plus the bias. */
static void FC_TN(convt_acc_store)(const fc_convt_geometry *g, const FC_TN(convt_acc) *acc,
                                   const FC_T *FC_RESTRICT t, FC_T b, FC_T *FC_RESTRICT plane)
{
    const ptrdiff_t OD = g->osize[0], OH = g->osize[1], OW = g->osize[2];
    const ptrdiff_t sw = g->s[2], pw = g->pad[2];
    for (ptrdiff_t od = 0; od < OD; od++) {
        const ptrdiff_t fd = od + g->pad[0], rd = fd % g->s[0], qd = fd / g->s[0];
        for (ptrdiff_t oh = 0; oh < OH; oh++) {
            const ptrdiff_t fh = oh + g->pad[1], rh = fh % g->s[1], qh = fh / g->s[1];
            const FC_T *t0 = t + (rd * g->s[1] + rh) * sw * acc->grid +
                             (qd * acc->q[1] + qh) * acc->q[2];
            FC_TN(convt_store_row)(plane + (od * OH + oh) * OW - pw, t0, acc->grid, sw, pw,
                                   pw + OW, b);
        }
    }
}

/* Whether every output receives at most one kernel tap (e.g. kernel == stride, dilation 1):
 * then col2im is a plain store, with no accumulator. Sets *covered when moreover every output
 * receives exactly one (so no output is left for the bias alone). */
static int FC_TN(convt_no_overlap)(const fc_convt_geometry *g, int *covered)
{
    *covered = 1;
    for (int dim = 0; dim < 3; dim++) {
        const ptrdiff_t s = g->s[dim], pad = g->pad[dim];
        for (ptrdiff_t r = 0; r < s; r++) {
            const ptrdiff_t n = fc_convt_phase_taps(g->k[dim], s, g->d[dim], r, NULL, NULL);
            if (n > 1) return 0;
            ptrdiff_t j = 0;
            if (n == 1) fc_convt_phase_taps(g->k[dim], s, g->d[dim], r, NULL, &j);
            /* phase r holds f = q*s + r; the output needs f in [pad, pad + out), its one tap
             * (offset j) reaches q in [j, j + in) */
            const ptrdiff_t qlo = -FC_TN(convt_floordiv)(r - pad, s);
            const ptrdiff_t qhi = FC_TN(convt_floordiv)(pad + g->osize[dim] - 1 - r, s);
            if (qlo <= qhi && (n == 0 || qlo < j || qhi >= j + g->isize[dim])) *covered = 0;
        }
    }
    return 1;
}

/* Stores input rows [r0, r1) (flattened (d, h)) of one output channel's column rows into its
 * plane plus the bias (no two taps meet, so every output is written at most once). */
static void FC_TN(convt_col2im_store)(const fc_convt_geometry *g, const FC_T *FC_RESTRICT cols,
                                      ptrdiff_t ldc, ptrdiff_t r0, ptrdiff_t r1, FC_T b,
                                      FC_T *FC_RESTRICT plane)
{
    const ptrdiff_t OD = g->osize[0], OH = g->osize[1], OW = g->osize[2];
    const ptrdiff_t H = g->isize[1], W = g->isize[2];
    const ptrdiff_t sw = g->s[2], kw_n = g->k[2];
    /* the common layout (kernel == stride along W, no W padding): every output row is the
     * interleave of its kw column rows, written in one pass */
    const int interleave = kw_n == sw && g->d[2] == 1 && g->pad[2] == 0 && OW == W * sw;
    for (ptrdiff_t kd = 0; kd < g->k[0]; kd++)
        for (ptrdiff_t kh = 0; kh < g->k[1]; kh++) {
            const ptrdiff_t tap0 = (kd * g->k[1] + kh) * kw_n;
            ptrdiff_t id = r0 / H, ih = r0 % H; /* row r = id * H + ih */
            for (ptrdiff_t r = r0; r < r1; r++, ih++) {
                if (ih == H) {
                    ih = 0;
                    id++;
                }
                const ptrdiff_t od = id * g->s[0] - g->pad[0] + kd * g->d[0];
                const ptrdiff_t oh = ih * g->s[1] - g->pad[1] + kh * g->d[1];
                if (od < 0 || od >= OD || oh < 0 || oh >= OH) continue;
                FC_T *FC_RESTRICT yrow = plane + (od * OH + oh) * OW;
                const FC_T *c0 = cols + tap0 * ldc + (r - r0) * W;
                if (interleave && sw == 1) {
                    const FC_T *FC_RESTRICT ca = c0;
                    for (ptrdiff_t iw = 0; iw < W; iw++) yrow[iw] = ca[iw] + b;
                    continue;
                }
                if (interleave && sw == 2) {
                    const FC_T *FC_RESTRICT ca = c0, *FC_RESTRICT cb = c0 + ldc;
                    for (ptrdiff_t iw = 0; iw < W; iw++) {
                        yrow[2 * iw] = ca[iw] + b;
                        yrow[2 * iw + 1] = cb[iw] + b;
                    }
                    continue;
                }
                if (interleave) {
                    for (ptrdiff_t iw = 0; iw < W; iw++)
                        for (ptrdiff_t kw = 0; kw < kw_n; kw++)
                            yrow[iw * sw + kw] = c0[kw * ldc + iw] + b;
                    continue;
                }
                for (ptrdiff_t kw = 0; kw < kw_n; kw++) {
                    const ptrdiff_t ow0 = kw * g->d[2] - g->pad[2];
                    /* iw with 0 <= iw*sw + ow0 < OW */
                    ptrdiff_t lo = FC_MAX(0, -FC_TN(convt_floordiv)(ow0, sw));
                    if (lo * sw + ow0 < 0) lo++;
                    const ptrdiff_t hi = FC_MIN(W, FC_TN(convt_floordiv)(OW - 1 - ow0, sw) + 1);
                    const FC_T *FC_RESTRICT c = c0 + kw * ldc;
                    FC_T *FC_RESTRICT y = yrow + ow0;
                    for (ptrdiff_t iw = lo; iw < hi; iw++) y[iw * sw] = c[iw] + b;
                }
            }
        }
}

/* Packs rows [m0, m1) of A = W_g^T (A[m][k] = wt[k * ld + m]: the weight's rows are A's
 * columns) into the packed-A layout of fastconv/gemm.h (MR-row panels, the MR values of one k
 * contiguous, rows beyond m1 zero). The weight is read row by row, front to back (prefetched
 * streams), a few rows at a time so that each panel receives whole cache lines (the panels are
 * MR * K values apart, often a multiple of 4 KiB: lines left half-written would not survive). */
static void FC_TN(convt_pack_wt)(const FC_T *FC_RESTRICT wt, ptrdiff_t ld, ptrdiff_t m0,
                                 ptrdiff_t m1, ptrdiff_t K, int mr, FC_T *FC_RESTRICT dst)
{
    const ptrdiff_t M = m1 - m0, panel = (ptrdiff_t)mr * K, full = M / mr;
    const ptrdiff_t kb = FC_MAX(1, 64 / (mr * (ptrdiff_t)sizeof(FC_T)));
    for (ptrdiff_t k0 = 0; k0 < K; k0 += kb) {
        const ptrdiff_t k1 = FC_MIN(K, k0 + kb);
        for (ptrdiff_t p = 0; p < full; p++)
            for (ptrdiff_t k = k0; k < k1; k++) {
                const FC_T *FC_RESTRICT src = wt + k * ld + m0 + p * mr;
                FC_T *FC_RESTRICT d = dst + p * panel + k * mr;
                if (mr == 8)
                    for (int r = 0; r < 8; r++) d[r] = src[r];
                else
                    for (int r = 0; r < mr; r++) d[r] = src[r];
            }
        if (full * mr < M)
            for (ptrdiff_t k = k0; k < k1; k++) {
                const FC_T *src = wt + k * ld + m0 + full * mr;
                FC_T *d = dst + full * panel + k * mr;
                for (ptrdiff_t r = 0; r < mr; r++) d[r] = r < M - full * mr ? src[r] : 0;
            }
    }
}

/* Bytes of column rows one work unit of the GEMM algorithm aims at (L2-resident between the
 * GEMM that writes them and the col2im that reads them). */
#define FC_CONVT_UNIT_BYTES (512 * 1024)

/* The GEMM algorithm's work units: (batch, group, block of output channels[, chunk of input
 * rows]). The GEMM of a unit covers one chunk of input rows at a time (its columns stay near
 * FC_CONVT_UNIT_BYTES). When no two taps meet, col2im writes each output once, so the chunks
 * of one channel are separate units; otherwise (inner) a unit runs all its chunks in turn,
 * summing them in its channels' phase-major planes. */
typedef struct {
    ptrdiff_t block, nblocks; /* output channels per unit */
    ptrdiff_t rows, nchunks;  /* input rows (flattened (d, h)) per chunk */
    int inner;                /* whether a unit runs every chunk */
    ptrdiff_t units;
} FC_TN(convt_gemm_split);

static ptrdiff_t FC_TN(convt_balance)(ptrdiff_t total, ptrdiff_t size, ptrdiff_t *count)
{
    size = FC_MAX(1, FC_MIN(size, total));
    *count = (total + size - 1) / size;
    return (total + *count - 1) / *count;
}

static FC_TN(convt_gemm_split) FC_TN(convt_gemm_plan)(int isa, const fc_convt_geometry *g,
                                                       int split_rows, int nthreads)
{
    const ptrdiff_t cog = g->c_out / g->groups, taps = g->k[0] * g->k[1] * g->k[2];
    const ptrdiff_t W = g->isize[2], nrows = g->isize[0] * g->isize[1], pin = nrows * W;
    const ptrdiff_t mr = fc_gemm_mr(isa, FC_GEMM_DTYPE), mc = fc_gemm_mc(isa, FC_GEMM_DTYPE);
    const ptrdiff_t budget = FC_CONVT_UNIT_BYTES / (ptrdiff_t)sizeof(FC_T);
    const ptrdiff_t outer = g->batch * g->groups;
    /* about 4 units per thread, so a thread that is descheduled (shared machine) or finishes
     * early costs little: the others take its share */
    const ptrdiff_t want = nthreads > 1 ? 4 * (ptrdiff_t)nthreads : 1;
    FC_TN(convt_gemm_split) s;
    /* up to MC GEMM rows: the shared GEMM then packs each B micro-panel into L1 just in time */
    ptrdiff_t block = FC_MAX(1, mc / taps);
    if (!split_rows) {
        block = FC_MIN(block, FC_MAX(1, budget / (taps * pin)));
        const ptrdiff_t want_blocks = (want + outer - 1) / outer;
        /* at least 8 A micro-panels of rows: each packed B micro-panel is then used 8 times */
        const ptrdiff_t min_block = (8 * mr + taps - 1) / taps;
        block = FC_MIN(block, FC_MAX(min_block, (cog + want_blocks - 1) / want_blocks));
        s.block = FC_TN(convt_balance)(cog, block, &s.nblocks);
        const ptrdiff_t rows = FC_MAX(1, budget / (s.block * taps * FC_MAX(1, W)));
        s.rows = FC_TN(convt_balance)(nrows, rows, &s.nchunks);
        s.inner = 1;
        s.units = outer * s.nblocks;
    } else {
        s.block = FC_TN(convt_balance)(cog, block, &s.nblocks);
        ptrdiff_t rows = FC_MAX(1, budget / (s.block * taps * FC_MAX(1, W)));
        const ptrdiff_t want_chunks = (want + outer * s.nblocks - 1) / (outer * s.nblocks);
        rows = FC_MIN(rows, (nrows + want_chunks - 1) / want_chunks);
        s.rows = FC_TN(convt_balance)(nrows, rows, &s.nchunks);
        s.inner = 0;
        s.units = outer * s.nblocks * s.nchunks;
    }
    return s;
}

/* GEMM + col2im in one parallel region: each work unit (see convt_gemm_plan) runs the shared
 * GEMM on one thread into that thread's column buffer (its block's rows W^T x its input rows),
 * then col2im writes the block's output channels. Units write disjoint outputs: no
 * synchronisation but the region's end. With packed == NULL each unit packs its own rows of
 * W^T from the weight (functional calls: the packing is spread over the threads and stays in
 * cache). Scratch per thread: the column block (about FC_CONVT_UNIT_BYTES, at least one output
 * channel's taps x input pixels), a phase-major plane of one output channel when taps meet, and
 * the unit's packed W^T rows when packed == NULL. */
static int FC_TN(convt_run_gemm)(int isa, const fc_convt_geometry *g, const FC_T *x,
                                 const FC_T *packed, const FC_T *w, const FC_T *bias, FC_T *y,
                                 int nthreads)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t taps = g->k[0] * g->k[1] * g->k[2];
    const ptrdiff_t W = g->isize[2], pin = g->isize[0] * g->isize[1] * W;
    const ptrdiff_t pout = g->osize[0] * g->osize[1] * g->osize[2];
    const ptrdiff_t mr = fc_gemm_mr(isa, FC_GEMM_DTYPE);
    const ptrdiff_t group_size = (ptrdiff_t)FC_CONVT_PACKED_A_SIZE(isa, (int)(cog * taps),
                                                                    (int)cig);
    FC_TN(convt_acc) acc;
    FC_TN(convt_acc_init)(g, &acc);
    int covered;
    const int direct = FC_TN(convt_no_overlap)(g, &covered);
    const FC_TN(convt_gemm_split) s = FC_TN(convt_gemm_plan)(isa, g, direct && covered,
                                                              nthreads);
    /* rows m0 (rounded down to an A panel start) .. m1 of a block */
    const ptrdiff_t max_m = s.block * taps + mr;
    const size_t cols_elems = (size_t)(max_m * s.rows * W);
    /* inner chunks: one phase-major plane per channel of the block */
    const size_t acc_elems = direct ? 0 : (size_t)(s.block * acc.size);
    const size_t a_elems = packed ? 0 : FC_CONVT_PACKED_A_SIZE(isa, (int)max_m, (int)cig);
    const ptrdiff_t chunk_units = s.inner ? 1 : s.nchunks;
    const int team = (int)FC_MAX(1, FC_MIN((ptrdiff_t)nthreads, s.units));
    int failed = 0;

    FC_FP_CAPTURE();
    FC_OMP(parallel num_threads(team) if (team > 1) reduction(|| : failed))
    {
        FC_FP_ADOPT();
        FC_T *cols = (FC_T *)fc_malloc((cols_elems + acc_elems + a_elems) * sizeof(FC_T));
        FC_T *t = cols ? cols + cols_elems : NULL;
        FC_T *abuf = cols ? cols + cols_elems + acc_elems : NULL;
        failed = cols == NULL;
        /* every thread meets the worksharing loop, even one whose allocation failed */
        FC_OMP(for schedule(dynamic, 1))
        for (ptrdiff_t u = 0; u < s.units; u++) {
            if (cols == NULL) continue;
            const ptrdiff_t unit_chunk = u % chunk_units;
            ptrdiff_t rest = u / chunk_units;
            const ptrdiff_t blk = rest % s.nblocks;
            rest /= s.nblocks;
            const ptrdiff_t gr = rest % g->groups, n = rest / g->groups;
            const ptrdiff_t co0 = blk * s.block, co1 = FC_MIN(cog, co0 + s.block);
            const ptrdiff_t m0 = co0 * taps / mr * mr, m1 = co1 * taps;
            const FC_T *a = abuf;
            if (packed)
                a = packed + gr * group_size + m0 * cig;
            else /* W^T[m][ci] = w[gr][ci][m]: rows m0..m1 of the group's W^T */
                FC_TN(convt_pack_wt)(w + gr * cig * cog * taps, cog * taps, m0, m1, cig,
                                     (int)mr, abuf);
            FC_T *yg = y + (n * g->c_out + gr * cog) * pout;
            if (direct && !covered) /* then units hold whole planes: outputs no tap reaches */
                for (ptrdiff_t co = co0; co < co1; co++) {
                    const FC_T b = bias ? bias[gr * cog + co] : (FC_T)0;
                    for (ptrdiff_t p = 0; p < pout; p++) yg[co * pout + p] = b;
                }
            if (!direct) memset(t, 0, (size_t)((co1 - co0) * acc.size) * sizeof(FC_T));
            const ptrdiff_t c0 = s.inner ? 0 : unit_chunk;
            const ptrdiff_t c1 = s.inner ? s.nchunks : unit_chunk + 1;
            for (ptrdiff_t chunk = c0; chunk < c1; chunk++) {
                const ptrdiff_t r0 = chunk * s.rows;
                const ptrdiff_t r1 = FC_MIN(g->isize[0] * g->isize[1], r0 + s.rows);
                const ptrdiff_t ncols = (r1 - r0) * W;
                FC_CONVT_STRIDED_B ctx;
                ctx.b = x + (n * g->c_in + gr * cig) * pin + r0 * W;
                ctx.rs = pin;
                ctx.cs = 1;
                ctx.isa = isa;
                if (FC_CONVT_GEMM_RUN(isa, (int)(m1 - m0), (int)ncols, (int)cig, a,
                                      FC_CONVT_PACK_B_STRIDED, &ctx, cols, ncols, NULL, 0,
                                      1) != 0) {
                    failed = 1;
                    break;
                }
                for (ptrdiff_t co = co0; co < co1; co++) {
                    const FC_T b = bias ? bias[gr * cog + co] : (FC_T)0;
                    const FC_T *crow = cols + (co * taps - m0) * ncols;
                    if (direct)
                        FC_TN(convt_col2im_store)(g, crow, ncols, r0, r1, b, yg + co * pout);
                    else
                        FC_TN(convt_col2im_acc)(g, &acc, crow, ncols, r0, r1,
                                                t + (co - co0) * acc.size);
                }
            }
            if (!direct)
                for (ptrdiff_t co = co0; co < co1; co++)
                    FC_TN(convt_acc_store)(g, &acc, t + (co - co0) * acc.size,
                                           bias ? bias[gr * cog + co] : (FC_T)0, yg + co * pout);
        }
        fc_free(cols);
        FC_FP_RESTORE();
    }
    return failed ? FC_CONVT_NOMEM : FC_CONVT_OK;
}

/* ---- stride-phase decomposition ---- */

/* One phase's per-dim geometry: taps, their input offsets, and the output grid q range
 * (outputs o = q*s + r - pad, q in [q0, q0 + nq)). */
typedef struct {
    ptrdiff_t ntaps[3], tap[3][FC_CONVT_MAX_PHASE_KERNEL], off[3][FC_CONVT_MAX_PHASE_KERNEL];
    ptrdiff_t q0[3], nq[3], r[3], ptaps;
} FC_TN(convt_phase);

static void FC_TN(convt_phase_init)(const fc_convt_geometry *g, ptrdiff_t phase,
                                    FC_TN(convt_phase) *ph)
{
    ptrdiff_t rest = phase;
    ph->ptaps = 1;
    for (int dim = 2; dim >= 0; dim--) {
        const ptrdiff_t s = g->s[dim];
        ph->r[dim] = rest % s;
        rest /= s;
        ph->ntaps[dim] = fc_convt_phase_taps(g->k[dim], s, g->d[dim], ph->r[dim], ph->tap[dim],
                                             ph->off[dim]);
        ph->ptaps *= ph->ntaps[dim];
        const ptrdiff_t lo = -FC_TN(convt_floordiv)(-(g->pad[dim] - ph->r[dim]), s);
        const ptrdiff_t hi = FC_TN(convt_floordiv)(g->osize[dim] - 1 + g->pad[dim] - ph->r[dim], s);
        ph->q0[dim] = lo;
        ph->nq[dim] = FC_MAX(0, hi - lo + 1);
    }
}

/* B of one phase's GEMM, never stored whole: row k = (tap t, ci) (tap-major, t in the phase's
 * tap order) and column j of the unit (phase-grid row row0 + j / nq_w, column j % nq_w) hold
 * x[ci, qd - off_d(t), qh - off_h(t), qw - off_w(t)], zero outside the input. */
typedef struct {
    const FC_T *x; /* the group's input, C_in/g planes */
    ptrdiff_t isize[3], pin, cig;
    const FC_TN(convt_phase) *ph;
    const ptrdiff_t *toff; /* per phase tap: (off_d, off_h, off_w) */
    ptrdiff_t row0;
    int nr;
} FC_TN(convt_phase_b);

/* A run of one B row inside one panel: columns [j, j + len) of the panel lie on one output
 * row (qd, qh) (absolute phase-grid indices), starting at qw. */
typedef struct {
    ptrdiff_t j, len, qd, qh, qw;
} FC_TN(convt_run);

#define FC_CONVT_MAX_RUNS 64
/* Phase taps whose kernel index convt_phase_pack_a keeps in a table (more are recomputed). */
#define FC_CONVT_MAX_PHASE_TAPS 512

static void FC_TN(convt_phase_pack_panel)(const FC_TN(convt_phase_b) *c, int k0, int kc,
                                          const FC_TN(convt_run) *runs, int nruns, int width,
                                          int nr, FC_T *FC_RESTRICT d)
{
    const ptrdiff_t D = c->isize[0], H = c->isize[1], W = c->isize[2];
    ptrdiff_t t = k0 / c->cig, ci = k0 % c->cig;
    for (int k = 0; k < kc; k++, d += nr) {
        const ptrdiff_t *off = c->toff + 3 * t;
        const FC_T *xc = c->x + ci * c->pin;
        for (int i = 0; i < nruns; i++) {
            const FC_TN(convt_run) *run = runs + i;
            FC_T *FC_RESTRICT dp = d + run->j;
            const ptrdiff_t id = run->qd - off[0], ih = run->qh - off[1];
            const ptrdiff_t iw0 = run->qw - off[2], len = run->len;
            ptrdiff_t lo = len, hi = len;
            if (id >= 0 && id < D && ih >= 0 && ih < H) {
                lo = FC_MIN(len, FC_MAX(0, -iw0));
                hi = FC_MAX(lo, FC_MIN(len, W - iw0));
            }
            const FC_T *FC_RESTRICT src = xc + (id * H + ih) * W + iw0;
            for (ptrdiff_t e = 0; e < lo; e++) dp[e] = 0;
            for (ptrdiff_t e = lo; e < hi; e++) dp[e] = src[e];
            for (ptrdiff_t e = hi; e < len; e++) dp[e] = 0;
        }
        for (int e = width; e < nr; e++) d[e] = 0;
        if (++ci == c->cig) {
            ci = 0;
            t++;
        }
    }
}

static void FC_TN(convt_phase_pack_b)(const void *vctx, int k0, int kc, int n0, int nc,
                                      FC_T *dst)
{
    const FC_TN(convt_phase_b) *c = (const FC_TN(convt_phase_b) *)vctx;
    const FC_TN(convt_phase) *ph = c->ph;
    const int nr = c->nr;
    const ptrdiff_t nqh = ph->nq[1], nqw = ph->nq[2];
    for (int p0 = 0; p0 < nc; p0 += nr) {
        /* the runs of this panel's columns, each on one output row; a panel wider than the
         * run table (tiny rows, wide panels) is packed in slices of one panel's rows */
        const int width = FC_MIN(nr, nc - p0);
        FC_T *panel = dst + (ptrdiff_t)p0 * kc;
        FC_TN(convt_run) runs[FC_CONVT_MAX_RUNS];
        int nruns = 0;
        ptrdiff_t j = 0, col = n0 + p0;
        ptrdiff_t qr = c->row0 + col / nqw, qw = col % nqw;
        while (j < width) {
            if (nruns == FC_CONVT_MAX_RUNS) {
                FC_TN(convt_phase_pack_panel)(c, k0, kc, runs, nruns, (int)j, nr, panel);
                nruns = 0;
            }
            FC_TN(convt_run) *run = runs + nruns++;
            run->j = j;
            run->len = FC_MIN(width - j, nqw - qw);
            run->qd = ph->q0[0] + qr / nqh;
            run->qh = ph->q0[1] + qr % nqh;
            run->qw = ph->q0[2] + qw;
            j += run->len;
            qw += run->len;
            if (qw == nqw) {
                qw = 0;
                qr++;
            }
        }
        FC_TN(convt_phase_pack_panel)(c, k0, kc, runs, nruns, width, nr, panel);
    }
}

/* Elements of the packed A of phase `phase` (all groups share the layout). */
static ptrdiff_t FC_TN(convt_phase_a_size)(int isa, const fc_convt_geometry *g, ptrdiff_t phase)
{
    ptrdiff_t rest = phase, taps = 1;
    for (int dim = 2; dim >= 0; dim--) {
        taps *= fc_convt_phase_taps(g->k[dim], g->s[dim], g->d[dim], rest % g->s[dim], NULL,
                                    NULL);
        rest /= g->s[dim];
    }
    if (taps == 0) return 0;
    return (ptrdiff_t)FC_CONVT_PACKED_A_SIZE(isa, (int)(g->c_out / g->groups),
                                             (int)(g->c_in / g->groups * taps));
}

/* A of one phase and group, packed (layout of fastconv/gemm.h, MR-row panels):
 * A[co][t * cig + ci] = w[gr][ci][co][tap(t)]. Reads the group's weight front to back. */
static void FC_TN(convt_phase_pack_a)(int isa, const fc_convt_geometry *g,
                                      const FC_TN(convt_phase) *ph, ptrdiff_t gr, const FC_T *w,
                                      FC_T *FC_RESTRICT out)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t taps = g->k[0] * g->k[1] * g->k[2], kdim = cig * ph->ptaps;
    const ptrdiff_t mr = fc_gemm_mr(isa, FC_GEMM_DTYPE), panels = (cog + mr - 1) / mr;
    /* panel by panel, then input channel: the panel's rows of one input channel (MR x taps
     * values, a few lines) are read once and appended to the phase's few tap streams */
    ptrdiff_t tap_of[FC_CONVT_MAX_PHASE_TAPS];
    ptrdiff_t t = 0;
    for (ptrdiff_t a = 0; a < ph->ntaps[0]; a++)
        for (ptrdiff_t b = 0; b < ph->ntaps[1]; b++)
            for (ptrdiff_t c = 0; c < ph->ntaps[2]; c++, t++)
                tap_of[t % FC_CONVT_MAX_PHASE_TAPS] =
                    (ph->tap[0][a] * g->k[1] + ph->tap[1][b]) * g->k[2] + ph->tap[2][c];
    for (ptrdiff_t p = 0; p < panels; p++) {
        const ptrdiff_t rows = FC_MIN(mr, cog - p * mr);
        FC_T *dp = out + p * mr * kdim;
        for (ptrdiff_t ci = 0; ci < cig; ci++) {
            const FC_T *src = w + ((gr * cig + ci) * cog + p * mr) * taps;
            t = 0;
            for (ptrdiff_t a = 0; a < ph->ntaps[0]; a++)
                for (ptrdiff_t b = 0; b < ph->ntaps[1]; b++)
                    for (ptrdiff_t c = 0; c < ph->ntaps[2]; c++, t++) {
                        const ptrdiff_t tap = t < FC_CONVT_MAX_PHASE_TAPS ? tap_of[t] :
                            (ph->tap[0][a] * g->k[1] + ph->tap[1][b]) * g->k[2] + ph->tap[2][c];
                        FC_T *FC_RESTRICT d = dp + (t * cig + ci) * mr;
                        for (ptrdiff_t r = 0; r < mr; r++)
                            d[r] = r < rows ? src[r * taps + tap] : 0;
                    }
        }
    }
}

/* The phase algorithm's work units: (batch, group, phase, chunk of phase-grid rows), each
 * holding a GEMM result of about FC_CONVT_UNIT_BYTES / 2, about 4 units per thread. */
static ptrdiff_t FC_TN(convt_phase_chunk_rows)(const fc_convt_geometry *g, int nthreads)
{
    const ptrdiff_t nphases = g->s[0] * g->s[1] * g->s[2];
    const ptrdiff_t qw = (g->osize[2] + g->s[2] - 1) / g->s[2];
    const ptrdiff_t rows = ((g->osize[0] + g->s[0] - 1) / g->s[0]) *
                           ((g->osize[1] + g->s[1] - 1) / g->s[1]);
    const ptrdiff_t budget = FC_CONVT_UNIT_BYTES / 2 / (ptrdiff_t)sizeof(FC_T);
    ptrdiff_t chunk = FC_MAX(1, budget / ((g->c_out / g->groups) * FC_MAX(1, qw)));
    const ptrdiff_t outer = g->batch * g->groups * nphases;
    const ptrdiff_t want = nthreads > 1 ? 4 * (ptrdiff_t)nthreads : 1;
    const ptrdiff_t want_chunks = (want + outer - 1) / outer;
    chunk = FC_MIN(chunk, (rows + want_chunks - 1) / want_chunks);
    ptrdiff_t count;
    return FC_TN(convt_balance)(rows, chunk, &count);
}

/* Stride-phase decomposition in one parallel region. Each work unit is one phase's ordinary
 * convolution over a chunk of its output rows: a single-threaded GEMM (C_out/g x the chunk's
 * outputs, K = C_in/g x the phase's taps) whose B is packed straight from the input by
 * convt_phase_pack_b (no im2col matrix, no inserted zeros), bias fused, then written to the
 * phase's strided outputs. With packed == NULL each thread gathers and packs the phase's A when
 * its unit needs a different (group, phase) than its last one. Scratch per thread: the GEMM
 * result (about FC_CONVT_UNIT_BYTES / 2, at least one phase row), the tap offsets, and with
 * packed == NULL the phase's gathered and packed A. */
static int FC_TN(convt_run_phase)(int isa, const fc_convt_geometry *g, const FC_T *x,
                                  const FC_T *packed, const FC_T *w, const FC_T *bias, FC_T *y,
                                  int nthreads)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t taps = g->k[0] * g->k[1] * g->k[2];
    const ptrdiff_t pin = g->isize[0] * g->isize[1] * g->isize[2];
    const ptrdiff_t pout = g->osize[0] * g->osize[1] * g->osize[2];
    const ptrdiff_t nphases = g->s[0] * g->s[1] * g->s[2];
    const ptrdiff_t chunk = FC_TN(convt_phase_chunk_rows)(g, nthreads);
    const ptrdiff_t max_rows = ((g->osize[0] + g->s[0] - 1) / g->s[0]) *
                               ((g->osize[1] + g->s[1] - 1) / g->s[1]);
    const ptrdiff_t chunks = (max_rows + chunk - 1) / chunk;
    const ptrdiff_t units = g->batch * g->groups * nphases * chunks;
    const ptrdiff_t max_cols = FC_MIN(chunk, max_rows) * ((g->osize[2] + g->s[2] - 1) / g->s[2]);
    ptrdiff_t group_size = 0, max_a = 0;
    for (ptrdiff_t p = 0; p < nphases; p++) {
        const ptrdiff_t size = FC_TN(convt_phase_a_size)(isa, g, p);
        group_size += size;
        max_a = FC_MAX(max_a, size);
    }
    const size_t c_elems = (size_t)(cog * max_cols);
    const size_t a_elems = packed ? 0 : (size_t)max_a;
    const size_t off_elems = (size_t)(3 * taps);
    const int team = (int)FC_MAX(1, FC_MIN((ptrdiff_t)nthreads, units));
    int failed = 0;

    FC_FP_CAPTURE();
    FC_OMP(parallel num_threads(team) if (team > 1) reduction(|| : failed))
    {
        FC_FP_ADOPT();
        FC_T *cmat = (FC_T *)fc_malloc((c_elems + a_elems) * sizeof(FC_T));
        ptrdiff_t *toff = (ptrdiff_t *)fc_malloc(off_elems * sizeof(ptrdiff_t));
        FC_T *abuf = cmat ? cmat + c_elems : NULL;
        ptrdiff_t a_key = -1; /* (group, phase) whose A abuf holds */
        FC_TN(convt_phase) ph;
        ptrdiff_t ph_key = -1;
        failed = cmat == NULL || toff == NULL;
        FC_OMP(for schedule(dynamic, 1))
        for (ptrdiff_t u = 0; u < units; u++) {
            if (cmat == NULL || toff == NULL) continue;
            const ptrdiff_t c = u % chunks;
            ptrdiff_t rest = u / chunks;
            const ptrdiff_t phase = rest % nphases;
            rest /= nphases;
            const ptrdiff_t gr = rest % g->groups, n = rest / g->groups;
            if (ph_key != phase) {
                FC_TN(convt_phase_init)(g, phase, &ph);
                ptrdiff_t t = 0;
                for (ptrdiff_t a = 0; a < ph.ntaps[0]; a++)
                    for (ptrdiff_t b = 0; b < ph.ntaps[1]; b++)
                        for (ptrdiff_t e = 0; e < ph.ntaps[2]; e++, t++) {
                            toff[3 * t] = ph.off[0][a];
                            toff[3 * t + 1] = ph.off[1][b];
                            toff[3 * t + 2] = ph.off[2][e];
                        }
                ph_key = phase;
            }
            const ptrdiff_t rows = ph.nq[0] * ph.nq[1], nqw = ph.nq[2];
            const ptrdiff_t row0 = c * chunk, row1 = FC_MIN(rows, row0 + chunk);
            if (row0 >= row1 || nqw == 0) continue;
            const ptrdiff_t ncols = (row1 - row0) * nqw;
            const FC_T *bg = bias ? bias + gr * cog : NULL;
            const int has_taps = ph.ptaps > 0 && cig > 0;
            if (has_taps) {
                const FC_T *a = packed;
                if (packed) {
                    a += gr * group_size;
                    for (ptrdiff_t p = 0; p < phase; p++) a += FC_TN(convt_phase_a_size)(isa, g, p);
                } else {
                    if (a_key != gr * nphases + phase) {
                        FC_TN(convt_phase_pack_a)(isa, g, &ph, gr, w, abuf);
                        a_key = gr * nphases + phase;
                    }
                    a = abuf;
                }
                FC_TN(convt_phase_b) ctx;
                ctx.x = x + (n * g->c_in + gr * cig) * pin;
                for (int dim = 0; dim < 3; dim++) ctx.isize[dim] = g->isize[dim];
                ctx.pin = pin;
                ctx.cig = cig;
                ctx.ph = &ph;
                ctx.toff = toff;
                ctx.row0 = row0;
                ctx.nr = fc_gemm_nr(isa, FC_GEMM_DTYPE);
                if (FC_CONVT_GEMM_RUN(isa, (int)cog, (int)ncols, (int)(cig * ph.ptaps), a,
                                      FC_TN(convt_phase_pack_b), &ctx, cmat, ncols, bg, 0,
                                      1) != 0) {
                    failed = 1;
                    continue;
                }
            }
            /* the phase's outputs: rows (qd, qh), every s_w-th column from its first */
            const ptrdiff_t sw = g->s[2];
            FC_T *yg = y + (n * g->c_out + gr * cog) * pout;
            for (ptrdiff_t co = 0; co < cog; co++) {
                const FC_T *crow = cmat + co * ncols;
                const FC_T b = bg ? bg[co] : (FC_T)0;
                FC_T *plane = yg + co * pout;
                for (ptrdiff_t qr = row0; qr < row1; qr++, crow += nqw) {
                    const ptrdiff_t od = (ph.q0[0] + qr / ph.nq[1]) * g->s[0] + ph.r[0] - g->pad[0];
                    const ptrdiff_t oh = (ph.q0[1] + qr % ph.nq[1]) * g->s[1] + ph.r[1] - g->pad[1];
                    FC_T *FC_RESTRICT yrow = plane + (od * g->osize[1] + oh) * g->osize[2] +
                                             ph.q0[2] * sw + ph.r[2] - g->pad[2];
                    if (!has_taps) {
                        for (ptrdiff_t j = 0; j < nqw; j++) yrow[j * sw] = b;
                    } else if (sw == 1) {
                        memcpy(yrow, crow, (size_t)nqw * sizeof(FC_T));
                    } else {
                        const FC_T *FC_RESTRICT src = crow;
                        for (ptrdiff_t j = 0; j < nqw; j++) yrow[j * sw] = src[j];
                    }
                }
            }
        }
        fc_free(cmat);
        fc_free(toff);
        FC_FP_RESTORE();
    }
    return failed ? FC_CONVT_NOMEM : FC_CONVT_OK;
}

int FC_TN(fc_convt_run)(int isa, int algorithm, const fc_convt_geometry *g, const FC_T *x,
                        const FC_T *prepared, const FC_T *weight, const FC_T *bias, FC_T *y,
                        int nthreads)
{
    if (g->batch == 0 || g->c_out == 0) return FC_CONVT_OK;
    if (algorithm == FC_CONVT_PHASE)
        return FC_TN(convt_run_phase)(isa, g, x, prepared, weight, bias, y, nthreads);
    return FC_TN(convt_run_gemm)(isa, g, x, prepared, weight, bias, y, nthreads);
}

#ifdef FC_CONVT_COMMON
size_t FC_CAT(fc_convt_prepared_size_, FC_DT)(int isa, int algorithm, const fc_convt_geometry *g)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t taps = g->k[0] * g->k[1] * g->k[2];
    if (algorithm == FC_CONVT_GEMM)
        return (size_t)g->groups * FC_CONVT_PACKED_A_SIZE(isa, (int)(cog * taps), (int)cig);
    size_t total = 0;
    for (ptrdiff_t p = 0; p < g->s[0] * g->s[1] * g->s[2]; p++)
        total += (size_t)FC_TN(convt_phase_a_size)(isa, g, p);
    return (size_t)g->groups * total;
}

/* GEMM: per group, A = W_g^T ((C_out/g * taps) x C_in/g), packed straight from the weight.
 * Phase: per group and phase, A (C_out/g x phase taps * C_in/g, tap-major), gathered then
 * packed (convt_phase_pack_a). */
int FC_CAT(fc_convt_prepare_, FC_DT)(int isa, int algorithm, const fc_convt_geometry *g,
                                      const FC_T *w, FC_T *out)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t taps = g->k[0] * g->k[1] * g->k[2];
    if (algorithm == FC_CONVT_GEMM) {
        const ptrdiff_t m = cog * taps;
        const size_t size = FC_CONVT_PACKED_A_SIZE(isa, (int)m, (int)cig);
        for (ptrdiff_t gr = 0; gr < g->groups; gr++)
            FC_TN(convt_pack_wt)(w + gr * cig * m, m, 0, m, cig, fc_gemm_mr(isa, FC_GEMM_DTYPE),
                                 out + gr * size);
        return FC_CONVT_OK;
    }
    const ptrdiff_t nphases = g->s[0] * g->s[1] * g->s[2];
    for (ptrdiff_t gr = 0; gr < g->groups; gr++)
        for (ptrdiff_t phase = 0; phase < nphases; phase++) {
            FC_TN(convt_phase) ph;
            FC_TN(convt_phase_init)(g, phase, &ph);
            if (ph.ptaps == 0 || cig == 0) continue;
            FC_TN(convt_phase_pack_a)(isa, g, &ph, gr, w, out);
            out += FC_TN(convt_phase_a_size)(isa, g, phase);
        }
    return FC_CONVT_OK;
}
#endif

#undef FC_TN
#undef FC_GEMM_DTYPE
#undef FC_CONVT_GEMM_RUN
#undef FC_CONVT_PACKED_A_SIZE
#undef FC_CONVT_STRIDED_B
#undef FC_CONVT_PACK_B_STRIDED
#undef FC_CONVT_UNIT_BYTES
#undef FC_CONVT_MAX_RUNS
#undef FC_CONVT_MAX_PHASE_TAPS
