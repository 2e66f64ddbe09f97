/* im2col + packed GEMM convolution (geometry and contract: fastconv/conv.h).
 *
 * Per (image, group): C (M x N) = A (M x K) . B (K x N) with M = c_out / groups,
 * K = c_in / groups * kD * kH * kW, N = oD * oH * oW, so C is the group's NCHW output block.
 * A is the weight, packed once (fc_conv_pack_weight_*: by layer objects at construction).
 * B is the im2col matrix, B[(c, kd, kh, kw)][(od, oh, ow)] = x[c, od*sd + kd*dd - pd, ...] (zero
 * in the padding), and it never exists: the GEMM driver asks `im2col_pack_b` for one KC x NC
 * block at a time and the callback writes the values straight into the NR-column panel layout.
 * A panel's NR output pixels are split once into runs along output rows, and where each kernel
 * tap reads each run (input offset, zero ends) is tabulated once per panel, since it is the
 * same for every input channel; each (k, run) is then one copy from an input row with zero
 * ends: vector loads for stride 1, two vector loads and an even-lane shuffle for stride 2.
 * A 1x1, stride-1, unpadded convolution needs no im2col: B is the input block itself, packed
 * by the GEMM's own strided packer.
 * Threads: over (image, group) items, or inside the GEMM when the items are too few to share
 * (see fc_conv_im2col_*).
 *
 * Template: included by _isa/conv_<isa>.c once per dtype; needs FC_T, FC_T_BYTES, FC_DT,
 * FC_GEMM_DT (FC_GEMM_F32/F64), FC_ISA_NAME, FC_ISA_ENUM (the fc_isa value of the translation
 * unit) and FC_VEC_BYTES (the vector width the callback's copies use).
 */
#include <string.h>

#include "fastconv/common.h"
#include "fastconv/conv.h"
#include "fastconv/gemm.h"
#include "fastconv/omp.h"

#define FC_FN(name) FC_CAT(FC_CAT(FC_CAT(fc_conv_, name), FC_CAT(_, FC_DT)), FC_CAT(_, FC_ISA_NAME))
#define FC_LOCAL(name) FC_CAT(FC_CAT(name, _), FC_DT)
#define FC_GEMM FC_CAT(fc_gemm_, FC_DT)
#define FC_STRIDED_B FC_CAT(fc_gemm_strided_b_, FC_DT)
#define FC_PACK_B_STRIDED FC_CAT(fc_gemm_pack_b_strided_, FC_DT)

/* Largest NR of any GEMM config (a panel splits into at most NR runs). */
#define FC_IM2COL_MAX_NR 128
/* Capacity of the per-panel (tap, run) table of the fast path, in entries. */
#define FC_IM2COL_TABLE 1024

#define FC_IL (FC_VEC_BYTES / FC_T_BYTES) /* lanes per vector (FC_T_BYTES: sizeof(FC_T)) */
#define FC_IVEC FC_CAT(fc_i2c_vec_, FC_DT)
#define FC_IVECU FC_CAT(fc_i2c_vecu_, FC_DT)
typedef FC_T FC_IVEC __attribute__((vector_size(FC_VEC_BYTES)));
typedef FC_T FC_IVECU __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T)), may_alias));

typedef struct {
    const fc_conv_geometry *g;
    const FC_T *x;   /* the (image, group) block: c_in / groups channels */
    int nr;
} FC_LOCAL(im2col_ctx);

/* Where one kernel tap reads one run: the run's column i is x_channel[off + i * sw] for
 * lo <= i < hi, zero elsewhere (lo = hi = 0: the whole run reads padding). */
typedef struct {
    ptrdiff_t off;
    int lo, hi;
    int fast; /* no zero ends, and whole vectors read from off on stay inside the plane */
} FC_LOCAL(im2col_span);

/* The even lanes of a, then of b (stride-2 deinterleave). */
#if FC_IL == 1
#define FC_IM2COL_EVEN(a, b) (a)
#elif FC_IL == 2
#define FC_IM2COL_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2)
#elif FC_IL == 4
#define FC_IM2COL_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#elif FC_IL == 8
#define FC_IM2COL_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#else
#define FC_IM2COL_EVEN(a, b) \
    __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#endif

/* d[0..len) = the run of one tap (see im2col_span), with whole-vector copies: a vector may
 * run past the run's end into d[len..room) (room: what is left of the callback's block;
 * blocks are written in order, so the later runs, rows and panels overwrite it) and past `hi`
 * in the source as long as it stays inside the channel plane (`limit` elements from xc); the
 * zero ends are written after the copies. */
FC_INLINE void FC_LOCAL(im2col_copy_run)(FC_T *FC_RESTRICT d, int len, ptrdiff_t room,
                                         const FC_T *xc,
                                         ptrdiff_t limit, FC_LOCAL(im2col_span) e,
                                         ptrdiff_t sw)
{
    const FC_T *s = xc + e.off;
    int i = e.lo;
    if (sw == 1) {
        for (; i < e.hi && i + FC_IL <= room && e.off + i + FC_IL <= limit; i += FC_IL)
            *(FC_IVECU *)(d + i) = *(const FC_IVECU *)(s + i);
        for (; i < e.hi; i++) d[i] = s[i];
    } else if (sw == 2) {
#if FC_IL > 1
        /* even lanes of two vectors */
        for (; i < e.hi && i + FC_IL <= room && e.off + 2 * (i + FC_IL) <= limit; i += FC_IL) {
            FC_IVEC a = *(const FC_IVECU *)(s + 2 * i), b = *(const FC_IVECU *)(s + 2 * i + FC_IL);
#if FC_IL == 2
            *(FC_IVECU *)(d + i) = __builtin_shufflevector(a, b, 0, 2);
#elif FC_IL == 4
            *(FC_IVECU *)(d + i) = __builtin_shufflevector(a, b, 0, 2, 4, 6);
#elif FC_IL == 8
            *(FC_IVECU *)(d + i) = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
#else
            *(FC_IVECU *)(d + i) = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16,
                                                            18, 20, 22, 24, 26, 28, 30);
#endif
        }
#endif
        for (; i < e.hi; i++) d[i] = s[2 * i];
    } else {
        for (; i < e.hi; i++) d[i] = s[i * sw];
    }
    for (i = 0; i < e.lo; i++) d[i] = 0;
    for (i = e.hi; i < len; i++) d[i] = 0;
}

/* Runs of all panels of a block the k-major path (im2col_pack_b_kmajor) tabulates at most. */
#define FC_IM2COL_KMAJOR_RUNS 256

/* Copies the (k, run) spans of the k-major path. */
FC_INLINE void FC_LOCAL(im2col_fast_copy)(FC_T *FC_RESTRICT d, const FC_T *FC_RESTRICT src,
                                          int len, ptrdiff_t sw)
{
    if (sw == 1) {
        for (int i = 0; i < len; i += FC_IL)
            *(FC_IVECU *)(d + i) = *(const FC_IVECU *)(src + i);
    } else {
        for (int i = 0; i < len; i += FC_IL)
            *(FC_IVECU *)(d + i) = FC_IM2COL_EVEN(*(const FC_IVECU *)(src + 2 * i),
                                                  *(const FC_IVECU *)(src + 2 * i + FC_IL));
    }
}

/* Where tap t reads the run of len output pixels from (od, oh, ow) (see im2col_span); `fast`:
 * the whole-vector copy (sw <= 2) may read it, which reads the run rounded up to a vector, plus
 * one more vector for stride 2. */
static void FC_LOCAL(im2col_span_of)(const fc_conv_geometry *g, ptrdiff_t t, ptrdiff_t od,
                                     ptrdiff_t oh, ptrdiff_t ow, int len,
                                     FC_LOCAL(im2col_span) *e)
{
    const ptrdiff_t KH = g->k[1], KW = g->k[2];
    const ptrdiff_t ID = g->in[0], IH = g->in[1], IW = g->in[2], sw = g->s[2];
    const ptrdiff_t kw = t % KW, kh = t / KW % KH, kd = t / (KW * KH);
    const ptrdiff_t id = od * g->s[0] + kd * g->d[0] - g->pad[0];
    const ptrdiff_t ih = oh * g->s[1] + kh * g->d[1] - g->pad[1];
    const ptrdiff_t iw0 = ow * sw + kw * g->d[2] - g->pad[2];
    e->off = 0;
    e->lo = e->hi = 0;
    e->fast = 0;
    if (id < 0 || id >= ID || ih < 0 || ih >= IH) return;
    /* columns i with 0 <= iw0 + i*sw < IW */
    ptrdiff_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
    ptrdiff_t hi = iw0 < IW ? (IW - 1 - iw0) / sw + 1 : 0;
    lo = FC_MIN(lo, (ptrdiff_t)len);
    hi = FC_MAX(FC_MIN(hi, (ptrdiff_t)len), lo);
    e->off = (id * IH + ih) * IW + iw0;
    e->lo = (int)lo;
    e->hi = (int)hi;
    const ptrdiff_t reach = (len + FC_IL - 1) / FC_IL * FC_IL * sw;
    e->fast = sw <= 2 && lo == 0 && hi == len
              && e->off + reach + (sw == 2 ? FC_IL : 0) <= ID * IH * IW;
}

/* The block in k-major order: row kk of every panel, then row kk + 1. Consecutive panels hold
 * consecutive output pixels, so one k walks its input rows in order (and the next taps of the
 * same input row find them in L1), where panel-major order jumps between the rows of 40-odd
 * channels per panel and stalls on L2 (measured: 16% of a stride-2 3x3 layer, mostly in the
 * loads). The runs and spans of all panels are tabulated once; returns 0 if they do not fit
 * (the caller then goes panel by panel). A whole-vector copy may run past its run into the
 * rest of its panel row (later runs and the zero tail overwrite it) or into the panel's next
 * row (written at the next kk), never past the panel (the next panel's rows are written). */
static int FC_LOCAL(im2col_pack_b_kmajor)(const FC_LOCAL(im2col_ctx) *ctx, int k0, int kc,
                                          int n0, int nc, FC_T *dst)
{
    const fc_conv_geometry *g = ctx->g;
    const int nr = ctx->nr;
    const ptrdiff_t KD = g->k[0], KH = g->k[1], KW = g->k[2], T = KD * KH * KW;
    const ptrdiff_t ID = g->in[0], IH = g->in[1], IW = g->in[2], plane = ID * IH * IW;
    const ptrdiff_t OH = g->out[1], OW = g->out[2];
    const ptrdiff_t sw = g->s[2];
    int run_q[FC_IM2COL_KMAJOR_RUNS], run_j[FC_IM2COL_KMAJOR_RUNS], run_len[FC_IM2COL_KMAJOR_RUNS];
    int run_d[FC_IM2COL_KMAJOR_RUNS], run_h[FC_IM2COL_KMAJOR_RUNS], run_w[FC_IM2COL_KMAJOR_RUNS];
    unsigned char in_row[FC_IM2COL_KMAJOR_RUNS]; /* whole vectors stay inside the panel row */
    FC_LOCAL(im2col_span) span[FC_IM2COL_TABLE];
    int nrun = 0;
    for (int q0 = 0; q0 < nc; q0 += nr) {
        const int cols = FC_MIN(nr, nc - q0);
        for (int j = 0; j < cols;) {
            if (nrun == FC_IM2COL_KMAJOR_RUNS) return 0;
            ptrdiff_t p = n0 + q0 + j;
            ptrdiff_t ow = p % OW, rest = p / OW;
            int len = (int)FC_MIN((ptrdiff_t)(cols - j), OW - ow);
            run_q[nrun] = q0 / nr;
            run_j[nrun] = j;
            run_len[nrun] = len;
            run_w[nrun] = (int)ow;
            run_h[nrun] = (int)(rest % OH);
            run_d[nrun] = (int)(rest / OH);
            in_row[nrun] = j + (len + FC_IL - 1) / FC_IL * FC_IL <= nr;
            nrun++;
            j += len;
        }
    }
    if (T * nrun > FC_IM2COL_TABLE) return 0;
    for (ptrdiff_t t = 0; t < T; t++)
        for (int r = 0; r < nrun; r++)
            FC_LOCAL(im2col_span_of)(g, t, run_d[r], run_h[r], run_w[r], run_len[r],
                                     &span[t * nrun + r]);
    const int last_cols = nc - (nc - 1) / nr * nr; /* columns of the last panel */
    const ptrdiff_t panel_elems = (ptrdiff_t)kc * nr;
    FC_T *last_panel = dst + (ptrdiff_t)((nc - 1) / nr) * panel_elems;
    ptrdiff_t t = k0 % T, c = k0 / T;
    for (int kk = 0; kk < kc; kk++) {
        const FC_T *xc = ctx->x + c * plane;
        const FC_LOCAL(im2col_span) *et = span + t * nrun;
        FC_T *row = dst + (ptrdiff_t)kk * nr;
        for (int r = 0; r < nrun; r++) {
            const FC_LOCAL(im2col_span) e = et[r];
            FC_T *panel = dst + (ptrdiff_t)run_q[r] * panel_elems;
            FC_T *d = row + (ptrdiff_t)run_q[r] * panel_elems + run_j[r];
            /* (the last row of a panel must not spill into the next panel, written before) */
            if (e.fast && (kk + 1 < kc || in_row[r]))
                FC_LOCAL(im2col_fast_copy)(d, xc + e.off, run_len[r], sw);
            else
                FC_LOCAL(im2col_copy_run)(d, run_len[r], panel + panel_elems - d, xc, plane, e,
                                          sw);
        }
        for (int j = last_cols; j < nr; j++) last_panel[(ptrdiff_t)kk * nr + j] = 0;
        if (++t == T) {
            t = 0;
            c++;
        }
    }
    return 1;
}

static void FC_LOCAL(im2col_pack_b)(const void *vctx, int k0, int kc, int n0, int nc, FC_T *dst)
{
    if (FC_LOCAL(im2col_pack_b_kmajor)((const FC_LOCAL(im2col_ctx) *)vctx, k0, kc, n0, nc, dst))
        return;

    const FC_LOCAL(im2col_ctx) *ctx = (const FC_LOCAL(im2col_ctx) *)vctx;
    const fc_conv_geometry *g = ctx->g;
    const int nr = ctx->nr;
    const ptrdiff_t KD = g->k[0], KH = g->k[1], KW = g->k[2], T = KD * KH * KW;
    const ptrdiff_t ID = g->in[0], IH = g->in[1], IW = g->in[2], plane = ID * IH * IW;
    const ptrdiff_t OH = g->out[1], OW = g->out[2];
    const ptrdiff_t sw = g->s[2];
    /* runs of the current panel: start column j, length, output (od, oh, ow) */
    int run_j[FC_IM2COL_MAX_NR], run_len[FC_IM2COL_MAX_NR];
    ptrdiff_t run_d[FC_IM2COL_MAX_NR], run_h[FC_IM2COL_MAX_NR], run_w[FC_IM2COL_MAX_NR];
    FC_LOCAL(im2col_span) span[FC_IM2COL_TABLE];
    FC_LOCAL(im2col_span) one;
    const FC_T *dst_end = dst + (ptrdiff_t)((nc + nr - 1) / nr) * nr * kc;

    for (int q0 = 0; q0 < nc; q0 += nr) {
        const int cols = FC_MIN(nr, nc - q0);
        FC_T *panel = dst + (ptrdiff_t)q0 * kc;
        int nrun = 0;
        for (int j = 0; j < cols;) {
            ptrdiff_t p = n0 + q0 + j;
            ptrdiff_t ow = p % OW, rest = p / OW;
            int len = (int)FC_MIN((ptrdiff_t)(cols - j), OW - ow);
            run_j[nrun] = j;
            run_len[nrun] = len;
            run_w[nrun] = ow;
            run_h[nrun] = rest % OH;
            run_d[nrun] = rest / OH;
            nrun++;
            j += len;
        }
        /* Where tap t reads run r, for every tap: the same for every input channel, so the
         * k loop below only copies (a table when it fits, else computed per k). */
        const int table = T * nrun <= FC_IM2COL_TABLE;
        for (ptrdiff_t t = 0; table && t < T; t++)
            for (int r = 0; r < nrun; r++)
                FC_LOCAL(im2col_span_of)(g, t, run_d[r], run_h[r], run_w[r], run_len[r],
                                         &span[t * nrun + r]);
        ptrdiff_t t = k0 % T, c = k0 / T;
        for (int kk = 0; kk < kc; kk++) {
            FC_T *drow = panel + (ptrdiff_t)kk * nr;
            const FC_T *xc = ctx->x + c * plane;
            for (int r = 0; r < nrun; r++) {
                FC_LOCAL(im2col_span) e;
                if (table) {
                    e = span[t * nrun + r];
                    FC_T *d = drow + run_j[r];
                    const int len = run_len[r];
                    if (e.fast && d + (len + FC_IL - 1) / FC_IL * FC_IL <= dst_end) {
                        /* the common case: whole vectors, no ends to zero (a vector may run
                         * past the run: later runs, rows and panels overwrite it) */
                        const FC_T *src = xc + e.off;
                        if (sw == 1) {
                            for (int i = 0; i < len; i += FC_IL)
                                *(FC_IVECU *)(d + i) = *(const FC_IVECU *)(src + i);
                        } else {
                            for (int i = 0; i < len; i += FC_IL)
                                *(FC_IVECU *)(d + i) =
                                    FC_IM2COL_EVEN(*(const FC_IVECU *)(src + 2 * i),
                                                   *(const FC_IVECU *)(src + 2 * i + FC_IL));
                        }
                        continue;
                    }
                } else {
                    FC_LOCAL(im2col_span_of)(g, t, run_d[r], run_h[r], run_w[r], run_len[r],
                                             &one);
                    one.fast = 0;
                    e = one;
                }
                FC_LOCAL(im2col_copy_run)(drow + run_j[r], run_len[r],
                                          dst_end - (drow + run_j[r]), xc, plane, e, sw);
            }
            for (int j = cols; j < nr; j++) drow[j] = 0;
            if (++t == T) {
                t = 0;
                c++;
            }
        }
    }
}

/* One (image, group) item: its GEMM on `threads` threads. */
static int FC_LOCAL(im2col_item)(const fc_conv_geometry *g, const FC_T *x, const FC_T *packed_w,
                                 const FC_T *bias, FC_T *y, ptrdiff_t item, int threads)
{
    const ptrdiff_t G = g->groups, cpg = g->c_in / G, opg = g->c_out / G;
    const ptrdiff_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int M = (int)opg, K = (int)(cpg * g->k[0] * g->k[1] * g->k[2]);
    const int N = (int)(g->out[0] * g->out[1] * g->out[2]);
    const ptrdiff_t packed_size =
        (ptrdiff_t)FC_CAT(fc_gemm_packed_a_size_, FC_DT)(FC_ISA_ENUM, M, K);
    const int pointwise = K == cpg && g->s[0] == 1 && g->s[1] == 1 && g->s[2] == 1
                          && g->pad[0] == 0 && g->pad[1] == 0 && g->pad[2] == 0
                          && (ptrdiff_t)N == in_plane;
    const ptrdiff_t n = item / G, gi = item % G;
    const FC_T *xb = x + (n * g->c_in + gi * cpg) * in_plane;
    FC_T *yb = y + (n * g->c_out + gi * opg) * (ptrdiff_t)N;
    const FC_T *bb = bias ? bias + gi * opg : NULL;
    const FC_T *a = packed_w + gi * packed_size;
    if (pointwise) {
        FC_STRIDED_B ctx = {.b = xb, .rs = (ptrdiff_t)N, .cs = 1, .isa = FC_ISA_ENUM};
        return FC_GEMM(FC_ISA_ENUM, M, N, K, a, FC_PACK_B_STRIDED, &ctx, yb, N, bb, 0, threads);
    }
    FC_LOCAL(im2col_ctx) ctx = {.g = g, .x = xb, .nr = fc_gemm_nr(FC_ISA_ENUM, FC_GEMM_DT)};
    return FC_GEMM(FC_ISA_ENUM, M, N, K, a, FC_LOCAL(im2col_pack_b), &ctx, yb, N, bb, 0,
                   threads);
}

int FC_FN(im2col)(const fc_conv_geometry *g, const FC_T *x, const FC_T *packed_w,
                  const FC_T *bias, FC_T *y, int nthreads)
{
    const ptrdiff_t G = g->groups;
    const ptrdiff_t items = g->n * G;
    /* Threads: whole (image, group) items, each one single-threaded GEMM, handed out
     * dynamically (a thread slowed down by other load on a shared machine does not hold up the
     * rest) when they split evenly or are plenty; otherwise (batch 1 without groups, above all)
     * the items run one after another, each a GEMM on every thread, which splits its columns
     * or, for few columns (7x7 layers), packs B once together and splits the rows. */
    const int per_item = nthreads == 1 || items % nthreads == 0 || items >= 4 * nthreads;
    const int gemm_threads = per_item ? 1 : nthreads;
    int failed = 0;

    /* Not one region with an if() clause: a region nested in another one, even a serialized
     * one, gets freshly created threads from libgomp (not its pool's) at every call. */
    if (per_item && nthreads > 1) {
        FC_FP_CAPTURE();
        FC_OMP(parallel num_threads(nthreads))
        {
            FC_FP_ADOPT();
            FC_OMP(for schedule(dynamic, 1))
            for (ptrdiff_t item = 0; item < items; item++)
                if (FC_LOCAL(im2col_item)(g, x, packed_w, bias, y, item, 1) != 0) {
                    FC_OMP(atomic write)
                    failed = 1;
                }
            FC_FP_RESTORE();
        }
    } else {
        for (ptrdiff_t item = 0; item < items; item++)
            if (FC_LOCAL(im2col_item)(g, x, packed_w, bias, y, item, gemm_threads) != 0)
                failed = 1;
    }
    return failed ? FC_CONV_NOMEM : FC_CONV_OK;
}

#undef FC_FN
#undef FC_IM2COL_KMAJOR_RUNS
#undef FC_LOCAL
#undef FC_IL
#undef FC_IM2COL_EVEN
#undef FC_IVEC
#undef FC_IVECU
#undef FC_GEMM
#undef FC_STRIDED_B
#undef FC_PACK_B_STRIDED
