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

/* Adds one output channel's column rows (taps x input pixels) into its phase-major plane t. */
static void FC_TN(convt_col2im_acc)(const fc_convt_geometry *g, const FC_TN(convt_acc) *acc,
                                    const FC_T *FC_RESTRICT cols, ptrdiff_t ldc,
                                    FC_T *FC_RESTRICT t)
{
    const ptrdiff_t D = g->isize[0], H = g->isize[1], W = g->isize[2];
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
                for (ptrdiff_t id = 0; id < D; id++)
                    for (ptrdiff_t ih = 0; ih < H; ih++) {
                        FC_T *FC_RESTRICT dst = tp + ((id + jd) * Qh + ih + jh) * Qw;
                        const FC_T *FC_RESTRICT src = crow + (id * H + ih) * W;
                        for (ptrdiff_t iw = 0; iw < W; iw++) dst[iw] += src[iw];
                    }
            }
        }
    }
}

/* One output row from its sw phase rows (t0 + r*grid, indexed by q): y[f - pad] for f in
 * [f0, f1) is t0[(f % sw)*grid + f / sw] + b. Written as whole groups of sw contiguous outputs
 * (an interleave; vectorised for stride 2), with the partial groups at both ends. */
static inline void FC_TN(convt_store_row)(FC_T *FC_RESTRICT ybase, const FC_T *FC_RESTRICT t0,
                                          ptrdiff_t grid, ptrdiff_t sw, ptrdiff_t f0,
                                          ptrdiff_t f1, FC_T b)
{
    ptrdiff_t f = f0;
    for (; f < f1 && f % sw; f++) ybase[f] = t0[(f % sw) * grid + f / sw] + b;
    const ptrdiff_t q0 = f / sw, q1 = f1 / sw;
    if (sw == 2) {
        const FC_T *FC_RESTRICT ta = t0, *FC_RESTRICT tb = t0 + grid;
        for (ptrdiff_t q = q0; q < q1; q++) {
            ybase[2 * q] = ta[q] + b;
            ybase[2 * q + 1] = tb[q] + b;
        }
    } else {
        for (ptrdiff_t q = q0; q < q1; q++)
            for (ptrdiff_t r = 0; r < sw; r++) ybase[q * sw + r] = t0[r * grid + q] + b;
    }
    for (f = FC_MAX(f, q1 * sw); f < f1; f++) ybase[f] = t0[(f % sw) * grid + f / sw] + b;
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
        for (ptrdiff_t r = 0; r < g->s[dim]; r++) {
            const ptrdiff_t n = fc_convt_phase_taps(g->k[dim], g->s[dim], g->d[dim], r, NULL,
                                                    NULL);
            if (n > 1) return 0;
            if (n == 0) *covered = 0;
        }
        /* the taps reach f = o + pad in [0, in * s); the output needs [pad, pad + out) */
        if (g->pad[dim] + g->osize[dim] > g->isize[dim] * g->s[dim]) *covered = 0;
    }
    return 1;
}

/* Stores one output channel's column rows into its plane plus the bias (no two taps meet). */
static void FC_TN(convt_col2im_store)(const fc_convt_geometry *g, const FC_T *FC_RESTRICT cols,
                                      ptrdiff_t ldc, FC_T b, FC_T *FC_RESTRICT plane)
{
    const ptrdiff_t OD = g->osize[0], OH = g->osize[1], OW = g->osize[2];
    const ptrdiff_t D = g->isize[0], H = g->isize[1], W = g->isize[2];
    const ptrdiff_t sw = g->s[2];
    ptrdiff_t tap = 0;
    for (ptrdiff_t kd = 0; kd < g->k[0]; kd++)
        for (ptrdiff_t kh = 0; kh < g->k[1]; kh++)
            for (ptrdiff_t kw = 0; kw < g->k[2]; kw++, tap++) {
                const FC_T *crow = cols + tap * ldc;
                const ptrdiff_t ow0 = kw * g->d[2] - g->pad[2];
                ptrdiff_t lo = FC_MAX(0, -FC_TN(convt_floordiv)(ow0, sw));
                if (lo * sw + ow0 < 0) lo++;
                const ptrdiff_t hi = FC_MIN(W, FC_TN(convt_floordiv)(OW - 1 - ow0, sw) + 1);
                if (hi <= lo) continue;
                for (ptrdiff_t id = 0; id < D; id++) {
                    const ptrdiff_t od = id * g->s[0] - g->pad[0] + kd * g->d[0];
                    if (od < 0 || od >= OD) continue;
                    for (ptrdiff_t ih = 0; ih < H; ih++) {
                        const ptrdiff_t oh = ih * g->s[1] - g->pad[1] + kh * g->d[1];
                        if (oh < 0 || oh >= OH) continue;
                        FC_T *FC_RESTRICT yrow = plane + (od * OH + oh) * OW + ow0;
                        const FC_T *FC_RESTRICT c = crow + (id * H + ih) * W;
                        for (ptrdiff_t iw = lo; iw < hi; iw++) yrow[iw * sw] = c[iw] + b;
                    }
                }
            }
}

/* Column rows per GEMM block: about 8 MiB of columns (whole output channels, at least one). */
static ptrdiff_t FC_TN(convt_gemm_block)(const fc_convt_geometry *g, ptrdiff_t pin, int mr)
{
    const ptrdiff_t cog = g->c_out / g->groups, taps = g->k[0] * g->k[1] * g->k[2];
    const ptrdiff_t budget = (ptrdiff_t)(8 * 1024 * 1024 / sizeof(FC_T));
    ptrdiff_t block = (budget / FC_MAX(1, pin) - mr) / taps;
    block = FC_MAX(1, FC_MIN(block, cog));
    const ptrdiff_t nblocks = (cog + block - 1) / block;
    return (cog + nblocks - 1) / nblocks; /* balanced blocks */
}

/* GEMM + col2im. Per (batch, group, block of output channels): the shared GEMM (threaded
 * itself) writes the block's column rows for every input pixel, then the block's channels are
 * accumulated and stored in parallel, each thread owning whole output planes (no
 * synchronisation). Scratch: the column block (about 8 MiB, or one channel's taps x input
 * pixels if larger) plus one phase-major plane per thread. */
static int FC_TN(convt_run_gemm)(int isa, const fc_convt_geometry *g, const FC_T *x,
                                 const FC_T *packed, const FC_T *bias, FC_T *y, int nthreads)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t taps = g->k[0] * g->k[1] * g->k[2];
    const ptrdiff_t pin = g->isize[0] * g->isize[1] * g->isize[2];
    const ptrdiff_t pout = g->osize[0] * g->osize[1] * g->osize[2];
    const int mr = fc_gemm_mr(isa, FC_GEMM_DTYPE);
    const ptrdiff_t block = FC_TN(convt_gemm_block)(g, pin, mr);
    const ptrdiff_t group_size = (ptrdiff_t)FC_CONVT_PACKED_A_SIZE(isa, (int)(cog * taps),
                                                                    (int)cig);
    FC_TN(convt_acc) acc;
    FC_TN(convt_acc_init)(g, &acc);
    int covered;
    const int direct = FC_TN(convt_no_overlap)(g, &covered);
    const ptrdiff_t scratch = direct ? 0 : acc.size; /* per thread: one phase-major plane */
    /* rows m0 (rounded down to a panel start) .. (co0 + block) * taps of the block */
    FC_T *cols = (FC_T *)fc_malloc((size_t)((block * taps + mr) * pin) * sizeof(FC_T));
    if (cols == NULL) return FC_CONVT_NOMEM;
    int status = FC_CONVT_OK;
    FC_CONVT_STRIDED_B ctx;
    ctx.rs = pin;
    ctx.cs = 1;
    ctx.isa = isa;
    const int col_threads = (int)FC_MAX(1, FC_MIN((ptrdiff_t)nthreads, block));

    for (ptrdiff_t n = 0; n < g->batch && status == FC_CONVT_OK; n++)
        for (ptrdiff_t gr = 0; gr < g->groups && status == FC_CONVT_OK; gr++)
            for (ptrdiff_t co0 = 0; co0 < cog && status == FC_CONVT_OK; co0 += block) {
                const ptrdiff_t co1 = FC_MIN(cog, co0 + block);
                const ptrdiff_t m0 = co0 * taps / mr * mr, m1 = co1 * taps;
                ctx.b = x + (n * g->c_in + gr * cig) * pin;
                if (FC_CONVT_GEMM_RUN(isa, (int)(m1 - m0), (int)pin, (int)cig,
                                      packed + gr * group_size + m0 * cig,
                                      FC_CONVT_PACK_B_STRIDED, &ctx, cols, pin, NULL, 0,
                                      nthreads) != 0) {
                    status = FC_CONVT_NOMEM;
                    break;
                }
                FC_T *yg = y + (n * g->c_out + gr * cog) * pout;
                int failed = 0;
                FC_OMP(parallel num_threads(col_threads) if (col_threads > 1)
                       reduction(|| : failed))
                {
                    FC_T *t = direct ? NULL : (FC_T *)fc_malloc((size_t)scratch * sizeof(FC_T));
                    failed = !direct && t == NULL;
                    FC_OMP(for schedule(static))
                    for (ptrdiff_t co = co0; co < co1; co++) {
                        const FC_T b = bias ? bias[gr * cog + co] : (FC_T)0;
                        FC_T *plane = yg + co * pout;
                        if (direct) {
                            if (!covered)
                                for (ptrdiff_t p = 0; p < pout; p++) plane[p] = b;
                            FC_TN(convt_col2im_store)(g, cols + (co * taps - m0) * pin, pin, b,
                                                      plane);
                            continue;
                        }
                        if (t == NULL) continue;
                        memset(t, 0, (size_t)acc.size * sizeof(FC_T));
                        FC_TN(convt_col2im_acc)(g, &acc, cols + (co * taps - m0) * pin, pin, t);
                        FC_TN(convt_acc_store)(g, &acc, t, b, plane);
                    }
                    fc_free(t);
                }
                if (failed) status = FC_CONVT_NOMEM;
            }
    fc_free(cols);
    return status;
}

/* One phase's per-dim geometry: taps, their input offsets, and the output grid q range. */
typedef struct {
    ptrdiff_t ntaps[3], off[3][FC_CONVT_MAX_PHASE_KERNEL], q0[3], nq[3], r[3];
} FC_TN(convt_phase);

static void FC_TN(convt_phase_init)(const fc_convt_geometry *g, ptrdiff_t phase,
                                    FC_TN(convt_phase) *ph)
{
    ptrdiff_t rest = phase;
    for (int dim = 2; dim >= 0; dim--) {
        const ptrdiff_t s = g->s[dim];
        ph->r[dim] = rest % s;
        rest /= s;
        ph->ntaps[dim] = fc_convt_phase_taps(g->k[dim], s, g->d[dim], ph->r[dim], NULL,
                                             ph->off[dim]);
        /* outputs o = q*s + r - pad with 0 <= o < out */
        const ptrdiff_t lo = -FC_TN(convt_floordiv)(-(g->pad[dim] - ph->r[dim]), s);
        const ptrdiff_t hi = FC_TN(convt_floordiv)(g->osize[dim] - 1 + g->pad[dim] - ph->r[dim], s);
        ph->q0[dim] = lo;
        ph->nq[dim] = FC_MAX(0, hi - lo + 1);
    }
}

/* Output rows (qd, qh) per work unit of the phase algorithm: keep the im2col block near L2/2. */

/* B of one phase's GEMM, never stored whole: row (ci, td, th, tw) and column (qd, qh, qw) of
 * the chunk hold x[ci, qd - off_d, qh - off_h, qw - off_w] (zero outside the input). */
typedef struct {
    const FC_T *x; /* the group's input, C_in/g planes */
    ptrdiff_t isize[3], pin;
    const FC_TN(convt_phase) *ph;
    ptrdiff_t row0; /* first (qd, qh) row of the chunk */
    int nr;
} FC_TN(convt_phase_b);

static void FC_TN(convt_phase_pack_b)(const void *vctx, int k0, int kc, int n0, int nc,
                                      FC_T *dst)
{
    const FC_TN(convt_phase_b) *c = (const FC_TN(convt_phase_b) *)vctx;
    const FC_TN(convt_phase) *ph = c->ph;
    const int nr = c->nr;
    const ptrdiff_t nqh = ph->nq[1], nqw = ph->nq[2];
    const ptrdiff_t padded = (ptrdiff_t)(nc + nr - 1) / nr * nr;
    for (int k = 0; k < kc; k++) {
        ptrdiff_t kk = k0 + k;
        const ptrdiff_t tw = kk % ph->ntaps[2];
        kk /= ph->ntaps[2];
        const ptrdiff_t th = kk % ph->ntaps[1];
        kk /= ph->ntaps[1];
        const ptrdiff_t td = kk % ph->ntaps[0], ci = kk / ph->ntaps[0];
        const FC_T *xc = c->x + ci * c->pin;
        const ptrdiff_t dd = ph->q0[0] - ph->off[0][td], dh = ph->q0[1] - ph->off[1][th];
        const ptrdiff_t dw = ph->q0[2] - ph->off[2][tw];
        /* input columns iw = qw + dw valid for qw in [wlo, whi) */
        const ptrdiff_t wlo = FC_MAX(0, -dw), whi = FC_MIN(nqw, c->isize[2] - dw);
        ptrdiff_t qr = c->row0 + n0 / nqw, qw = n0 % nqw;
        FC_T *d = dst + (ptrdiff_t)k * nr;
        ptrdiff_t j = 0; /* column of the block */
        while (j < nc) {
            /* a run of columns on one output row, cut at panel boundaries: values
             * x[.., qw + dw] for qw in [qw, qw + seg), zero outside [wlo, whi) or a bad row */
            const ptrdiff_t id = qr / nqh + dd, ih = qr % nqh + dh;
            const int row_ok = id >= 0 && id < c->isize[0] && ih >= 0 && ih < c->isize[1];
            const FC_T *xrow = row_ok ? xc + (id * c->isize[1] + ih) * c->isize[2] + dw : xc;
            ptrdiff_t run = FC_MIN((ptrdiff_t)nc - j, nqw - qw);
            while (run > 0) {
                const ptrdiff_t lane = j % nr;
                const ptrdiff_t seg = FC_MIN(run, nr - lane);
                FC_T *FC_RESTRICT dp = d + (j / nr) * kc * nr + lane;
                ptrdiff_t lo = row_ok ? FC_MIN(seg, FC_MAX(0, wlo - qw)) : seg;
                ptrdiff_t hi = row_ok ? FC_MAX(lo, FC_MIN(seg, whi - qw)) : seg;
                for (ptrdiff_t e = 0; e < lo; e++) dp[e] = 0;
                const FC_T *FC_RESTRICT src = xrow + qw;
                for (ptrdiff_t e = lo; e < hi; e++) dp[e] = src[e];
                for (ptrdiff_t e = hi; e < seg; e++) dp[e] = 0;
                j += seg;
                qw += seg;
                run -= seg;
            }
            if (qw == nqw) {
                qw = 0;
                qr++;
            }
        }
        for (; j < padded; j++) d[(j / nr) * kc * nr + j % nr] = 0;
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

/* Output rows (qd, qh) per work unit: keep the GEMM result (C_out/g x columns) near 256 KiB. */
static ptrdiff_t FC_TN(convt_phase_chunk_rows)(const fc_convt_geometry *g)
{
    const ptrdiff_t ph_w = (g->osize[2] + g->s[2] - 1) / g->s[2];
    const ptrdiff_t per_row = (g->c_out / g->groups) * FC_MAX(1, ph_w);
    const ptrdiff_t budget = (ptrdiff_t)(256 * 1024 / sizeof(FC_T));
    return FC_MAX(1, budget / per_row);
}

/* One work unit of the phase algorithm: (batch n, group gr, phase, chunk of phase rows). */
static int FC_TN(convt_phase_unit)(int isa, const fc_convt_geometry *g, const FC_T *x,
                                   const FC_T *a, const FC_T *bias, FC_T *y, ptrdiff_t n,
                                   ptrdiff_t gr, const FC_TN(convt_phase) *ph, ptrdiff_t row0,
                                   ptrdiff_t row1, FC_T *cmat, int nthreads)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t pin = g->isize[0] * g->isize[1] * g->isize[2];
    const ptrdiff_t pout = g->osize[0] * g->osize[1] * g->osize[2];
    const ptrdiff_t nqw = ph->nq[2], ncols = (row1 - row0) * nqw;
    const ptrdiff_t ptaps = ph->ntaps[0] * ph->ntaps[1] * ph->ntaps[2];
    const FC_T *bg = bias ? bias + gr * cog : NULL;
    FC_T *yg = y + (n * g->c_out + gr * cog) * pout;
    if (ptaps > 0 && cig > 0) {
        FC_TN(convt_phase_b) ctx;
        ctx.x = x + (n * g->c_in + gr * cig) * pin;
        for (int dim = 0; dim < 3; dim++) ctx.isize[dim] = g->isize[dim];
        ctx.pin = pin;
        ctx.ph = ph;
        ctx.row0 = row0;
        ctx.nr = fc_gemm_nr(isa, FC_GEMM_DTYPE);
        if (FC_CONVT_GEMM_RUN(isa, (int)cog, (int)ncols, (int)(cig * ptaps), a,
                              FC_TN(convt_phase_pack_b), &ctx, cmat, ncols, bg, 0,
                              nthreads) != 0)
            return FC_CONVT_NOMEM;
    }
    const ptrdiff_t sw = g->s[2];
    for (ptrdiff_t co = 0; co < cog; co++) {
        const FC_T *crow = cmat + co * ncols;
        FC_T *plane = yg + co * pout;
        for (ptrdiff_t qr = row0; qr < row1; qr++, crow += nqw) {
            const ptrdiff_t od = (ph->q0[0] + qr / ph->nq[1]) * g->s[0] + ph->r[0] - g->pad[0];
            const ptrdiff_t oh = (ph->q0[1] + qr % ph->nq[1]) * g->s[1] + ph->r[1] - g->pad[1];
            FC_T *yrow = plane + (od * g->osize[1] + oh) * g->osize[2] + ph->q0[2] * sw +
                         ph->r[2] - g->pad[2];
            if (ptaps > 0 && cig > 0) {
                if (sw == 1)
                    memcpy(yrow, crow, (size_t)nqw * sizeof(FC_T));
                else
                    for (ptrdiff_t j = 0; j < nqw; j++) yrow[j * sw] = crow[j];
            } else {
                const FC_T b = bg ? bg[co] : (FC_T)0;
                for (ptrdiff_t j = 0; j < nqw; j++) yrow[j * sw] = b;
            }
        }
    }
    return FC_CONVT_OK;
}

/* Stride-phase decomposition. Work units (batch, group, phase, chunk of phase rows) write
 * disjoint outputs; with enough of them each thread takes whole units (single-threaded GEMM),
 * otherwise the units run in turn with the GEMM threaded. */
static int FC_TN(convt_run_phase)(int isa, const fc_convt_geometry *g, const FC_T *x,
                                  const FC_T *packed, const FC_T *bias, FC_T *y, int nthreads)
{
    const ptrdiff_t cog = g->c_out / g->groups;
    const ptrdiff_t nphases = g->s[0] * g->s[1] * g->s[2];
    const ptrdiff_t chunk = FC_TN(convt_phase_chunk_rows)(g);
    const ptrdiff_t max_rows = ((g->osize[0] + g->s[0] - 1) / g->s[0]) *
                               ((g->osize[1] + g->s[1] - 1) / g->s[1]);
    const ptrdiff_t chunks = (max_rows + chunk - 1) / chunk;
    const ptrdiff_t units = g->batch * g->groups * nphases * chunks;
    const ptrdiff_t max_cols = FC_MIN(chunk, max_rows) * ((g->osize[2] + g->s[2] - 1) / g->s[2]);
    ptrdiff_t group_size = 0;
    for (ptrdiff_t p = 0; p < nphases; p++) group_size += FC_TN(convt_phase_a_size)(isa, g, p);
    const int outer = units >= 2 * (ptrdiff_t)nthreads ? nthreads : 1;
    const int inner = outer == 1 ? nthreads : 1;
    int failed = 0;

    FC_OMP(parallel num_threads(outer) if (outer > 1) reduction(|| : failed))
    {
        FC_T *cmat = (FC_T *)fc_malloc((size_t)(cog * max_cols) * sizeof(FC_T));
        failed = cmat == NULL;
        /* every thread meets the worksharing loop, even one whose allocation failed */
        FC_OMP(for schedule(dynamic, 1))
        for (ptrdiff_t u = 0; u < units; u++) {
            if (cmat == NULL) continue;
            const ptrdiff_t c = u % chunks;
            ptrdiff_t rest = u / chunks;
            const ptrdiff_t phase = rest % nphases;
            rest /= nphases;
            const ptrdiff_t gr = rest % g->groups, n = rest / g->groups;
            FC_TN(convt_phase) ph;
            FC_TN(convt_phase_init)(g, phase, &ph);
            const ptrdiff_t rows = ph.nq[0] * ph.nq[1];
            const ptrdiff_t row0 = c * chunk, row1 = FC_MIN(rows, row0 + chunk);
            if (row0 >= row1 || ph.nq[2] == 0) continue;
            ptrdiff_t offset = gr * group_size;
            for (ptrdiff_t p = 0; p < phase; p++) offset += FC_TN(convt_phase_a_size)(isa, g, p);
            if (FC_TN(convt_phase_unit)(isa, g, x, packed + offset, bias, y, n, gr, &ph, row0,
                                        row1, cmat, inner) != FC_CONVT_OK)
                failed = 1;
        }
        fc_free(cmat);
    }
    return failed ? FC_CONVT_NOMEM : FC_CONVT_OK;
}

int FC_TN(fc_convt_run)(int isa, int algorithm, const fc_convt_geometry *g, const FC_T *x,
                        const FC_T *prepared, const FC_T *bias, FC_T *y, int nthreads)
{
    if (g->batch == 0 || g->c_out == 0) return FC_CONVT_OK;
    if (algorithm == FC_CONVT_PHASE)
        return FC_TN(convt_run_phase)(isa, g, x, prepared, bias, y, nthreads);
    return FC_TN(convt_run_gemm)(isa, g, x, prepared, bias, y, nthreads);
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
 * Phase: per group and phase, A (C_out/g x C_in/g * phase taps), gathered then packed. */
int FC_CAT(fc_convt_prepare_, FC_DT)(int isa, int algorithm, const fc_convt_geometry *g,
                                      const FC_T *w, FC_T *out)
{
    const ptrdiff_t cig = g->c_in / g->groups, cog = g->c_out / g->groups;
    const ptrdiff_t taps = g->k[0] * g->k[1] * g->k[2];
    if (algorithm == FC_CONVT_GEMM) {
        const ptrdiff_t m = cog * taps;
        const size_t size = FC_CONVT_PACKED_A_SIZE(isa, (int)m, (int)cig);
        for (ptrdiff_t gr = 0; gr < g->groups; gr++)
            FC_CAT(fc_gemm_pack_a_, FC_DT)(isa, (int)m, (int)cig, w + gr * cig * m, 1, m,
                                           out + gr * size);
        return FC_CONVT_OK;
    }
    FC_T *gathered = (FC_T *)fc_malloc((size_t)(cog * cig * taps) * sizeof(FC_T));
    if (gathered == NULL) return FC_CONVT_NOMEM;
    const ptrdiff_t nphases = g->s[0] * g->s[1] * g->s[2];
    for (ptrdiff_t gr = 0; gr < g->groups; gr++)
        for (ptrdiff_t phase = 0; phase < nphases; phase++) {
            ptrdiff_t tk[3][FC_CONVT_MAX_PHASE_KERNEL], nt[3], rest = phase;
            for (int dim = 2; dim >= 0; dim--) {
                nt[dim] = fc_convt_phase_taps(g->k[dim], g->s[dim], g->d[dim], rest % g->s[dim],
                                              tk[dim], NULL);
                rest /= g->s[dim];
            }
            const ptrdiff_t kdim = cig * nt[0] * nt[1] * nt[2];
            if (kdim == 0) continue;
            FC_T *dst = gathered;
            for (ptrdiff_t co = 0; co < cog; co++)
                for (ptrdiff_t ci = 0; ci < cig; ci++)
                    for (ptrdiff_t a = 0; a < nt[0]; a++)
                        for (ptrdiff_t b = 0; b < nt[1]; b++)
                            for (ptrdiff_t c = 0; c < nt[2]; c++) {
                                ptrdiff_t t = (tk[0][a] * g->k[1] + tk[1][b]) * g->k[2] + tk[2][c];
                                *dst++ = w[((gr * cig + ci) * cog + co) * taps + t];
                            }
            FC_CAT(fc_gemm_pack_a_, FC_DT)(isa, (int)cog, (int)kdim, gathered, kdim, 1, out);
            out += FC_TN(convt_phase_a_size)(isa, g, phase);
        }
    fc_free(gathered);
    return FC_CONVT_OK;
}
#endif

#undef FC_TN
#undef FC_GEMM_DTYPE
#undef FC_CONVT_GEMM_RUN
#undef FC_CONVT_PACKED_A_SIZE
#undef FC_CONVT_STRIDED_B
#undef FC_CONVT_PACK_B_STRIDED
