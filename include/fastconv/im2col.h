/* im2col + packed GEMM convolution (geometry and contract: fastconv/conv.h).
 *
 * Per (image, group): C (M x N) = A (M x K) . B (K x N) with M = c_out / groups,
 * K = c_in / groups * kD * kH * kW, N = oD * oH * oW, so C is the group's NCHW output block.
 * A is the weight, packed once (fc_conv_pack_weight_*: by layer objects at construction).
 * B is the im2col matrix, B[(c, kd, kh, kw)][(od, oh, ow)] = x[c, od*sd + kd*dd - pd, ...] (zero
 * in the padding), and it never exists: the GEMM driver asks `im2col_pack_b` for one KC x NC
 * block at a time and the callback writes the values straight into the NR-column panel layout.
 * A panel's NR output pixels are split once into runs along output rows; each run of each
 * kernel tap is then one (strided, for stride_w > 1) copy from an input row with zero ends.
 * A 1x1, stride-1, unpadded convolution needs no im2col: B is the input block itself, packed
 * by the GEMM's own strided packer.
 * Threads: over (image, group, chunk of output columns) units, dynamically scheduled, each a
 * single-threaded GEMM (see fc_conv_im2col_*).
 *
 * Template: included by _isa/conv_<isa>.c once per dtype; needs FC_T, FC_DT, FC_GEMM_DT
 * (FC_GEMM_F32/F64), FC_ISA_NAME and FC_ISA_ENUM (the fc_isa value of the translation unit).
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

typedef struct {
    const fc_conv_geometry *g;
    const FC_T *x;   /* the (image, group) block: c_in / groups channels */
    ptrdiff_t n_base; /* output pixel of the GEMM's column 0 */
    int nr;
} FC_LOCAL(im2col_ctx);

static void FC_LOCAL(im2col_pack_b)(const void *vctx, int k0, int kc, int n0, int nc, FC_T *dst)
{
    const FC_LOCAL(im2col_ctx) *ctx = (const FC_LOCAL(im2col_ctx) *)vctx;
    const fc_conv_geometry *g = ctx->g;
    const int nr = ctx->nr;
    const ptrdiff_t KD = g->k[0], KH = g->k[1], KW = g->k[2];
    const ptrdiff_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const ptrdiff_t OH = g->out[1], OW = g->out[2];
    const ptrdiff_t sw = g->s[2];
    /* runs of the current panel: start column j, length, output (od, oh, ow) */
    int run_j[FC_IM2COL_MAX_NR], run_len[FC_IM2COL_MAX_NR];
    ptrdiff_t run_d[FC_IM2COL_MAX_NR], run_h[FC_IM2COL_MAX_NR], run_w[FC_IM2COL_MAX_NR];

    for (int q0 = 0; q0 < nc; q0 += nr) {
        const int cols = FC_MIN(nr, nc - q0);
        FC_T *panel = dst + (ptrdiff_t)q0 * kc;
        int nrun = 0;
        for (int j = 0; j < cols;) {
            ptrdiff_t p = ctx->n_base + n0 + q0 + j;
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
        ptrdiff_t kw = k0 % KW, kh = k0 / KW % KH, kd = k0 / (KW * KH) % KD;
        ptrdiff_t c = k0 / (KW * KH * KD);
        for (int kk = 0; kk < kc; kk++) {
            FC_T *drow = panel + (ptrdiff_t)kk * nr;
            const ptrdiff_t tap_d = kd * g->d[0] - g->pad[0], tap_h = kh * g->d[1] - g->pad[1];
            const ptrdiff_t tap_w = kw * g->d[2] - g->pad[2];
            const FC_T *xc = ctx->x + c * ID * IH * IW;
            for (int r = 0; r < nrun; r++) {
                FC_T *d = drow + run_j[r];
                const ptrdiff_t len = run_len[r];
                const ptrdiff_t id = run_d[r] * g->s[0] + tap_d, ih = run_h[r] * g->s[1] + tap_h;
                if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                    for (ptrdiff_t i = 0; i < len; i++) d[i] = 0;
                    continue;
                }
                const FC_T *xr = xc + (id * IH + ih) * IW;
                const ptrdiff_t iw0 = run_w[r] * sw + tap_w;
                /* columns i with 0 <= iw0 + i*sw < IW */
                ptrdiff_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                ptrdiff_t hi = iw0 < IW ? (IW - 1 - iw0) / sw + 1 : 0;
                lo = FC_MIN(lo, len);
                hi = FC_MAX(FC_MIN(hi, len), lo);
                for (ptrdiff_t i = 0; i < lo; i++) d[i] = 0;
                if (sw == 1) {
                    const FC_T *s = xr + iw0;
                    for (ptrdiff_t i = lo; i < hi; i++) d[i] = s[i];
                } else {
                    for (ptrdiff_t i = lo; i < hi; i++) d[i] = xr[iw0 + i * sw];
                }
                for (ptrdiff_t i = hi; i < len; i++) d[i] = 0;
            }
            for (int j = cols; j < nr; j++) drow[j] = 0;
            if (++kw == KW) {
                kw = 0;
                if (++kh == KH) {
                    kh = 0;
                    if (++kd == KD) {
                        kd = 0;
                        c++;
                    }
                }
            }
        }
    }
}

int FC_FN(im2col)(const fc_conv_geometry *g, const FC_T *x, const FC_T *packed_w,
                  const FC_T *bias, FC_T *y, int nthreads)
{
    const ptrdiff_t G = g->groups, cpg = g->c_in / G, opg = g->c_out / G;
    const ptrdiff_t in_plane = g->in[0] * g->in[1] * g->in[2];
    const int M = (int)opg, K = (int)(cpg * g->k[0] * g->k[1] * g->k[2]);
    const int N = (int)(g->out[0] * g->out[1] * g->out[2]);
    const ptrdiff_t packed_size = (ptrdiff_t)FC_CAT(fc_gemm_packed_a_size_, FC_DT)(FC_ISA_ENUM, M, K);
    const int nr = fc_gemm_nr(FC_ISA_ENUM, FC_GEMM_DT);
    const int pointwise = K == cpg && g->s[0] == 1 && g->s[1] == 1 && g->s[2] == 1
                          && g->pad[0] == 0 && g->pad[1] == 0 && g->pad[2] == 0
                          && (ptrdiff_t)N == in_plane;
    const ptrdiff_t items = g->n * G;
    /* Work units: (image, group, column chunk), each one single-threaded GEMM, handed out
     * dynamically so that a thread slowed down by other load on a shared machine does not
     * hold up the rest. Chunks (multiples of NR) give each thread about 4 units. */
    ptrdiff_t chunk = N;
    if (nthreads > 1 && items < 4 * nthreads) {
        ptrdiff_t want = (4 * nthreads + items - 1) / items;
        chunk = (N + want - 1) / want;
        chunk = FC_MAX((chunk + nr - 1) / nr * nr, 4 * (ptrdiff_t)nr);
    }
    const ptrdiff_t chunks = (N + chunk - 1) / chunk, units = items * chunks;
    int failed = 0;

    FC_OMP(parallel for schedule(dynamic, 1) num_threads(nthreads) if (nthreads > 1))
    for (ptrdiff_t unit = 0; unit < units; unit++) {
        ptrdiff_t item = unit / chunks, c0 = unit % chunks * chunk;
        ptrdiff_t n = item / G, gi = item % G;
        int nc = (int)FC_MIN(chunk, N - c0);
        const FC_T *xb = x + (n * g->c_in + gi * cpg) * in_plane;
        FC_T *yb = y + (n * g->c_out + gi * opg) * (ptrdiff_t)N + c0;
        const FC_T *bb = bias ? bias + gi * opg : NULL;
        const FC_T *a = packed_w + gi * packed_size;
        int rc;
        if (pointwise) {
            FC_STRIDED_B ctx = {.b = xb + c0, .rs = (ptrdiff_t)N, .cs = 1, .isa = FC_ISA_ENUM};
            rc = FC_GEMM(FC_ISA_ENUM, M, nc, K, a, FC_PACK_B_STRIDED, &ctx, yb, N, bb, 0, 1);
        } else {
            FC_LOCAL(im2col_ctx) ctx = {.g = g, .x = xb, .n_base = c0, .nr = nr};
            rc = FC_GEMM(FC_ISA_ENUM, M, nc, K, a, FC_LOCAL(im2col_pack_b), &ctx, yb, N, bb, 0,
                         1);
        }
        if (rc != 0) {
            FC_OMP(atomic write)
            failed = 1;
        }
    }
    return failed ? FC_CONV_NOMEM : FC_CONV_OK;
}

#undef FC_FN
#undef FC_LOCAL
#undef FC_GEMM
#undef FC_STRIDED_B
#undef FC_PACK_B_STRIDED
