/* Direct convolution (geometry and contract: fastconv/conv.h).
 *
 * Work item: a band of output rows (n, group, od, oh0 .. oh0 + R - 1), or a column window of
 * a one-row band (below). The input the band reads (every input channel of the group and kd
 * inside the input) is first staged in per-thread
 * scratch with its zero border, as rows of one pitch P laid end to end, so that output (row i
 * of the band, column ow) is flat position q = i * P + ow and every tap (c, kd, kh, kw) reads
 * staged position q + offset(tap) for every output of the band:
 * - stride 1 (H and W): the band's input rows once, P = OW + (kW - 1) * dW (the padded input
 *   width), offset = kh * dH * P + kw * dW;
 * - other strides: for each (c, kd, kh) the input row of every output row of the band, split
 *   into stride_w phases (padded position q goes to phase q % sw, index q / sw; only the at
 *   most kW phases some tap reads) stored as separate planes, P = OW + (kW - 1) * dW / sW + 1,
 *   offset = the plane of phase kw * dW % sW plus kw * dW / sW.
 * The register tiles (OB output channels x TWV vectors, FMA with a broadcast weight, stored
 * once with the bias) then run along q across row ends: only the P - OW border positions per
 * row are wasted (3% for a 56-wide 3x3 layer, against 12% for 32-column tiles within a row).
 * Tiles are stored straight when they lie inside one output row, else piecewise; the last
 * tile of a band takes only the vectors it needs. Channel blocks with fewer than OB channels
 * use one-channel tiles.
 * Bands of one row are also cut into column windows (whole vectors, each staged on its own, P =
 * window + border) when a row's staging outgrows the budget (long 1-D rows) or when there are
 * fewer than 4 items per thread (1-D: a single row); a window reads the input as if padded by
 * pad - window start. 3-D layers with stride and dilation 1 in D run a chunk of consecutive
 * output depths per item and keep the staged depth slices in a ring of kD slots (slice id in
 * slot id % kD), so each further depth stages one slice, not kD. The weights are repacked per
 * call (by the caller when few, else by the whole team), then items are handed out dynamically;
 * thread 0 waits for the last item spinning (fastconv/team_wait.h). (Depthwise convolution has
 * its own kernel, fastconv/depthwise.h.)
 *
 * Template: included by _isa/conv_<isa>.c once per dtype with FC_T (float/double), FC_T_BYTES
 * (its size), FC_DT (f32/f64), FC_ISA_NAME (scalar/avx2/...), FC_VEC_BYTES (SIMD width in
 * bytes) and FC_DIRECT_OB (output channels per register block) defined. Vectors are GCC/clang
 * vector extensions, so each translation unit's -m flags pick the instructions.
 */
#include <string.h>

#include "fastconv/common.h"
#include "fastconv/conv.h"
#include "fastconv/omp.h"
#include "fastconv/team_wait.h"

#define FC_L (FC_VEC_BYTES / (int)sizeof(FC_T)) /* lanes per vector */
#define FC_VEC FC_CAT(fc_vec_, FC_DT)
#define FC_VECU FC_CAT(fc_vecu_, FC_DT)
#define FC_FN(name) FC_CAT(FC_CAT(FC_CAT(fc_conv_, name), FC_CAT(_, FC_DT)), FC_CAT(_, FC_ISA_NAME))
#define FC_LOCAL(name) FC_CAT(FC_CAT(name, _), FC_DT)

typedef FC_T FC_VEC __attribute__((vector_size(FC_VEC_BYTES)));
/* the same vector, readable at any element-aligned address */
typedef FC_T FC_VECU __attribute__((vector_size(FC_VEC_BYTES), aligned(sizeof(FC_T)), may_alias));

/* The even lanes of a, then of b (stride-2 deinterleave). */
#if FC_VEC_BYTES / FC_T_BYTES == 2
#define FC_EVEN_LANES(a, b) __builtin_shufflevector(a, b, 0, 2)
#elif FC_VEC_BYTES / FC_T_BYTES == 4
#define FC_EVEN_LANES(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#elif FC_VEC_BYTES / FC_T_BYTES == 8
#define FC_EVEN_LANES(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#elif FC_VEC_BYTES / FC_T_BYTES == 16
#define FC_EVEN_LANES(a, b) \
    __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#endif

/* Vectors per one-channel tile (partial channel blocks). */
#define FC_DIRECT_TWV_ONE 4

/* Copies input row `xr` (length w) into nph phases of `plen` elements, phase k starting at
 * dst + k * pstride: padded position q = iw + pad with q % sw == ph_val[k] goes to phase k,
 * index q / sw; the rest of each phase is zero. (Only the phases some tap reads are staged:
 * at most kW of them, whatever the stride.) */
static void FC_LOCAL(direct_stage_row)(const FC_T *xr, ptrdiff_t w, ptrdiff_t pad, ptrdiff_t sw,
                                       ptrdiff_t plen, ptrdiff_t pstride, ptrdiff_t nph,
                                       const ptrdiff_t *ph_val, FC_T *dst)
{
    if (sw == 1) {
        ptrdiff_t lead = FC_MIN(pad, plen), n = FC_MAX(FC_MIN(w, plen - lead), 0);
        memset(dst, 0, (size_t)lead * sizeof(FC_T));
        memcpy(dst + lead, xr, (size_t)n * sizeof(FC_T));
        memset(dst + lead + n, 0, (size_t)(plen - lead - n) * sizeof(FC_T));
        return;
    }
    for (ptrdiff_t k = 0; k < nph; k++) {
        const ptrdiff_t p = ph_val[k];
        FC_T *d = dst + k * pstride;
        /* iw with (iw + pad) % sw == p: iw = first + j*sw, landing at index (iw + pad) / sw */
        ptrdiff_t first = ((p - pad) % sw + sw) % sw;
        ptrdiff_t at = FC_MIN((first + pad) / sw, plen);
        ptrdiff_t count = first < w ? (w - 1 - first) / sw + 1 : 0;
        count = FC_MAX(FC_MIN(count, plen - at), 0);
        memset(d, 0, (size_t)at * sizeof(FC_T));
        const FC_T *src = xr + first;
        ptrdiff_t j = 0;
#if FC_VEC_BYTES / FC_T_BYTES > 1
        if (sw == 2) /* even lanes of two vectors, while both stay inside the row */
            for (; j + FC_L <= count && first + 2 * (j + FC_L) <= w; j += FC_L) {
                FC_VEC a = *(const FC_VECU *)(src + 2 * j);
                FC_VEC b = *(const FC_VECU *)(src + 2 * j + FC_L);
                *(FC_VECU *)(d + at + j) = FC_EVEN_LANES(a, b);
            }
#endif
        for (; j < count; j++) d[at + j] = src[j * sw];
        memset(d + at + count, 0, (size_t)(plen - at - count) * sizeof(FC_T));
    }
}

/* Weights repacked per (group, block of OB output channels): [tap][OB], zero beyond c_out;
 * this call packs block bk of group gi. */
static void FC_LOCAL(direct_pack_weight)(const fc_conv_geometry *g, const FC_T *w, FC_T *packed,
                                         ptrdiff_t ntap_all, ptrdiff_t gi, ptrdiff_t bk)
{
    ptrdiff_t opg = g->c_out / g->groups, nblk = (opg + FC_DIRECT_OB - 1) / FC_DIRECT_OB;
    FC_T *dst = packed + (gi * nblk + bk) * ntap_all * FC_DIRECT_OB;
    for (ptrdiff_t b = 0; b < FC_DIRECT_OB; b++) {
        ptrdiff_t o = bk * FC_DIRECT_OB + b;
        const FC_T *src = w + (gi * opg + o) * ntap_all;
        if (o < opg)
            for (ptrdiff_t t = 0; t < ntap_all; t++) dst[t * FC_DIRECT_OB + b] = src[t];
        else
            for (ptrdiff_t t = 0; t < ntap_all; t++) dst[t * FC_DIRECT_OB + b] = 0;
    }
}

#define FC_FLAT_TWV (FC_VEC_BYTES >= 64 ? 3 : 2)
#define FC_FLAT_TW (FC_FLAT_TWV * FC_L)
#define FC_FLAT_TW_MAX (FC_DIRECT_TWV_ONE * FC_L)
/* Packed weights (elements) up to which the caller packs them alone, before the team starts. */
#define FC_DIRECT_SERIAL_PACK (64 * 1024)
/* Target bytes of one band's staged rows (L2 holds them with room for weights and output). */
#define FC_FLAT_STAGE_BYTES (320 * 1024)

/* Store tile values tmp[0..len) of flat positions q0.. into the band's output y_band (row
 * length OW), skipping the border positions ow >= OW. Segments of at least a vector are
 * stored as vectors, the last one overlapping the one before. */
FC_INLINE void FC_LOCAL(flat_store)(const FC_T *tmp, ptrdiff_t q0, ptrdiff_t len, ptrdiff_t P,
                                    ptrdiff_t OW, FC_T *y_band)
{
    ptrdiff_t i = q0 / P, col = q0 - i * P;
    for (ptrdiff_t k = 0; k < len;) {
        ptrdiff_t seg = FC_MIN(P - col, len - k);
        ptrdiff_t n = FC_MIN(seg, OW - col);
        FC_T *dst = y_band + i * OW + col;
        const FC_T *src = tmp + k;
        if (n >= FC_L) {
            ptrdiff_t e = 0;
            for (; e + FC_L <= n; e += FC_L) *(FC_VECU *)(dst + e) = *(const FC_VECU *)(src + e);
            if (e < n) *(FC_VECU *)(dst + n - FC_L) = *(const FC_VECU *)(src + n - FC_L);
        } else {
            for (ptrdiff_t e = 0; e < n; e++) dst[e] = src[e];
        }
        k += seg;
        i++;
        col = 0;
    }
}

/* ob output channels x twv vectors at flat position q0 (len <= twv * L of them real). */
FC_INLINE void FC_LOCAL(flat_tile)(const int ob, const int twv, ptrdiff_t ntaps,
                                   const FC_T *const *tap_x, const ptrdiff_t *tap_w,
                                   const FC_T *w, ptrdiff_t q0, ptrdiff_t len, ptrdiff_t P,
                                   ptrdiff_t OW, FC_T *const *y_band, const FC_T *bias_b)
{
    FC_VEC acc[FC_DIRECT_OB * FC_FLAT_TWV > FC_DIRECT_TWV_ONE ? FC_DIRECT_OB * FC_FLAT_TWV
                                                                : FC_DIRECT_TWV_ONE];
    for (int i = 0; i < ob * twv; i++) acc[i] = (FC_VEC){0};
    for (ptrdiff_t t = 0; t < ntaps; t++) {
        const FC_T *xp = tap_x[t] + q0;
        const FC_T *wp = w + tap_w[t];
        FC_VEC xv[FC_DIRECT_TWV_ONE > FC_FLAT_TWV ? FC_DIRECT_TWV_ONE : FC_FLAT_TWV];
        for (int v = 0; v < twv; v++) xv[v] = *(const FC_VECU *)(xp + v * FC_L);
        for (int b = 0; b < ob; b++) {
            FC_VEC wv = wp[b] - (FC_VEC){0}; /* a plain broadcast (x - 0 is x) */
            for (int v = 0; v < twv; v++) acc[b * twv + v] += wv * xv[v];
        }
    }
    const ptrdiff_t i = q0 / P, col = q0 - i * P;
    for (int b = 0; b < ob; b++) {
        FC_T add = bias_b ? bias_b[b] : (FC_T)0;
        if (len == (ptrdiff_t)twv * FC_L && col + len <= OW) {
            FC_T *yr = y_band[b] + i * OW + col;
            for (int v = 0; v < twv; v++) *(FC_VECU *)(yr + v * FC_L) = acc[b * twv + v] + add;
        } else {
            FC_T tmp[FC_FLAT_TW_MAX > FC_FLAT_TW ? FC_FLAT_TW_MAX : FC_FLAT_TW];
            for (int v = 0; v < twv; v++) *(FC_VECU *)(tmp + v * FC_L) = acc[b * twv + v] + add;
            FC_LOCAL(flat_store)(tmp, q0, len, P, OW, y_band[b]);
        }
    }
}

/* The full-width tiles of ob == OB channels along flat positions [0, flat), then one narrower
 * tile (fewer vectors) for what is left. */
FC_INLINE void FC_LOCAL(flat_run)(ptrdiff_t ntaps, const FC_T *const *tap_x,
                                  const ptrdiff_t *tap_w, const FC_T *w, ptrdiff_t flat,
                                  ptrdiff_t P, ptrdiff_t OW, FC_T *const *y_band,
                                  const FC_T *bias_b)
{
    ptrdiff_t q0 = 0;
    for (; q0 + FC_FLAT_TW <= flat; q0 += FC_FLAT_TW)
        FC_LOCAL(flat_tile)(FC_DIRECT_OB, FC_FLAT_TWV, ntaps, tap_x, tap_w, w, q0, FC_FLAT_TW,
                            P, OW, y_band, bias_b);
    const ptrdiff_t rest = flat - q0;
    if (rest <= 0) return;
    const ptrdiff_t nv = (rest + FC_L - 1) / FC_L;
    if (nv == 1)
        FC_LOCAL(flat_tile)(FC_DIRECT_OB, 1, ntaps, tap_x, tap_w, w, q0, rest, P, OW, y_band,
                            bias_b);
#if FC_FLAT_TWV > 2
    else if (nv == 2)
        FC_LOCAL(flat_tile)(FC_DIRECT_OB, 2, ntaps, tap_x, tap_w, w, q0, rest, P, OW, y_band,
                            bias_b);
#endif
    else
        FC_LOCAL(flat_tile)(FC_DIRECT_OB, FC_FLAT_TWV, ntaps, tap_x, tap_w, w, q0, rest, P, OW,
                            y_band, bias_b);
}

static int FC_LOCAL(direct_flat)(const fc_conv_geometry *g, const FC_T *x, const FC_T *w,
                                 const FC_T *bias, FC_T *y, int nthreads)
{
    const ptrdiff_t G = g->groups, cpg = g->c_in / G, opg = g->c_out / G;
    const ptrdiff_t KD = g->k[0], KH = g->k[1], KW = g->k[2];
    const ptrdiff_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const ptrdiff_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const ptrdiff_t sh = g->s[1], sw = g->s[2], dh = g->d[1], dw = g->d[2];
    const ptrdiff_t ph = g->pad[1], pw = g->pad[2];
    const int unit = sh == 1 && sw == 1; /* stride 1: rows shared by every kh */
    /* staged row length beyond the window's output columns */
    const ptrdiff_t border = unit ? (KW - 1) * dw : (KW - 1) * dw / sw + 1;
    const ptrdiff_t ntap_all = cpg * KD * KH * KW;
    const ptrdiff_t nblk = (opg + FC_DIRECT_OB - 1) / FC_DIRECT_OB;
    const ptrdiff_t span_h = (KH - 1) * dh;
    /* the phases (mod sw) the taps read, compacted: ph_idx[kw] indexes ph_val */
    ptrdiff_t *ph_val = (ptrdiff_t *)fc_malloc((size_t)(2 * KW) * sizeof(ptrdiff_t));
    if (!ph_val) return FC_CONV_NOMEM;
    ptrdiff_t *ph_idx = ph_val + KW, nph = 0;
    for (ptrdiff_t kw = 0; kw < KW; kw++) {
        ptrdiff_t p = (kw * dw) % sw, k = 0;
        while (k < nph && ph_val[k] != p) k++;
        if (k == nph) ph_val[nph++] = p;
        ph_idx[kw] = k;
    }
    /* staged planes per band row: (c, kd) blocks (stride 1) or phases of (c, kd, kh) blocks */
    const ptrdiff_t nplanes = unit ? cpg * KD : cpg * KD * KH * nph;
    const ptrdiff_t stage_elems = FC_FLAT_STAGE_BYTES / (ptrdiff_t)sizeof(FC_T);
    /* band rows: the staged rows within FC_FLAT_STAGE_BYTES, and enough items to share */
    ptrdiff_t rows_fit = stage_elems / (nplanes * (OW + border));
    ptrdiff_t band = FC_MAX(unit ? rows_fit - span_h : rows_fit, 1);
    const ptrdiff_t planes = g->n * G * OD;
    if (nthreads > 1 && planes < 4 * nthreads) {
        ptrdiff_t want = (4 * nthreads + planes - 1) / planes;
        band = FC_MIN(band, FC_MAX((OH + want - 1) / want, 1));
    }
    band = FC_MIN(band, OH);
    const ptrdiff_t bands = (OH + band - 1) / band;
    /* Column windows (bands of one row only): a row whose staging outgrows the budget (long
     * 1-D rows), or too few items for the threads (1-D: one row in all), is cut into windows
     * of whole vectors, each staged and computed on its own. */
    ptrdiff_t win = OW, wins = 1;
    if (band == 1) {
        const ptrdiff_t vecs = (OW + FC_L - 1) / FC_L;
        ptrdiff_t want = (nplanes * (OW + border) * (unit ? 1 + span_h : 1) + stage_elems - 1)
                         / stage_elems;
        if (nthreads > 1 && planes * bands < 4 * nthreads)
            want = FC_MAX(want, (4 * nthreads + planes * bands - 1) / (planes * bands));
        /* at least two full tiles per window */
        want = FC_MIN(want, vecs / (2 * FC_FLAT_TWV));
        if (want > 1) {
            win = (vecs + want - 1) / want * FC_L;
            wins = (OW + win - 1) / win;
        }
    }
    const ptrdiff_t P = win + border;
    /* Depth ring (stride 1 and dilation 1 in D too): an item runs a chunk of consecutive
     * output depths of its band, and depth slice id is staged in slot id % KD, so each next
     * depth stages one new slice instead of KD (measured: staging was 9% of a 3x3x3 layer).
     * Chunks: all depths on one thread, else enough items for 4 per thread. */
    const int dring = unit && KD > 1 && g->s[0] == 1 && g->d[0] == 1;
    ptrdiff_t dchunk = 1;
    if (dring) {
        const ptrdiff_t others = g->n * G * bands * wins;
        const ptrdiff_t per = nthreads > 1 ? (4 * nthreads + others - 1) / others : 1;
        dchunk = FC_MAX((OD + per - 1) / per, 1);
    }
    const ptrdiff_t dchunks = (OD + dchunk - 1) / dchunk;
    const ptrdiff_t items = g->n * G * dchunks * bands * wins;
    /* a staged plane: a (c, kd) block of rows (stride 1) or one phase of a (c, kd, kh) block,
     * plus room for the last tile's overreach and the largest tap offset within the row */
    const ptrdiff_t plane_rows = unit ? band + span_h : band;
    const ptrdiff_t plane = (plane_rows * P + FC_FLAT_TW_MAX + P + FC_L - 1) / FC_L * FC_L;
    const ptrdiff_t pack_units = G * nblk;
    int failed = 0;

    FC_T *packed = (FC_T *)fc_malloc((size_t)(G * nblk * ntap_all * FC_DIRECT_OB) * sizeof(FC_T));
    if (!packed) {
        fc_free(ph_val);
        return FC_CONV_NOMEM;
    }

    /* the weights, repacked per (group, block of OB output channels): by the caller when they
     * are few (an RGB stem: 64 x 147), as the team's barrier after packing would cost a
     * sleeping thread's wake-up (passive OpenMP wait), else by the whole team */
    const int team_pack = nthreads > 1 && G * nblk * ntap_all * FC_DIRECT_OB > FC_DIRECT_SERIAL_PACK;
    if (!team_pack)
        for (ptrdiff_t u = 0; u < pack_units; u++)
            FC_LOCAL(direct_pack_weight)(g, w, packed, ntap_all, u / nblk, u % nblk);
    long done = 0; /* items finished (fastconv/team_wait.h) */

    FC_FP_CAPTURE();
    FC_OMP(parallel num_threads(nthreads) if (nthreads > 1))
    {
        FC_FP_ADOPT();
        if (team_pack) {
            FC_OMP(for schedule(static))
            for (ptrdiff_t u = 0; u < pack_units; u++)
                FC_LOCAL(direct_pack_weight)(g, w, packed, ntap_all, u / nblk, u % nblk);
        }
        FC_T *stage = (FC_T *)fc_malloc((size_t)(nplanes * plane) * sizeof(FC_T));
        const FC_T **tap_x = (const FC_T **)fc_malloc((size_t)ntap_all * sizeof(FC_T *));
        ptrdiff_t *tap_w = (ptrdiff_t *)fc_malloc((size_t)ntap_all * sizeof(ptrdiff_t));
        /* depth ring: the slice staged in each slot, and which kd must be staged now */
        ptrdiff_t *ring = (ptrdiff_t *)fc_malloc((size_t)(2 * KD) * sizeof(ptrdiff_t));
        ptrdiff_t *fresh = ring ? ring + KD : NULL;
        if (!stage || !tap_x || !tap_w || !ring) {
            FC_OMP(atomic write)
            failed = 1;
        } else {
            /* the overreach tails are read (into discarded lanes) but never staged */
            memset(stage, 0, (size_t)(nplanes * plane) * sizeof(FC_T));
            /* dynamic: on a shared machine one slow thread must not hold up the rest */
            FC_OMP(for schedule(dynamic, 1) nowait)
            for (ptrdiff_t item = 0; item < items; item++) {
                const ptrdiff_t wi = item % wins, bi = item / wins % bands;
                const ptrdiff_t dc = item / (wins * bands) % dchunks;
                const ptrdiff_t gi = item / (wins * bands * dchunks) % G;
                const ptrdiff_t n = item / (wins * bands * dchunks * G);
                const ptrdiff_t oh0 = bi * band, rows = FC_MIN(band, OH - oh0);
                /* output columns [c0, c0 + cols) (all of them unless windowed), read from
                 * padded input positions c0 * sw on: the row as staged with less padding */
                const ptrdiff_t c0 = wi * win, cols = FC_MIN(win, OW - c0);
                ptrdiff_t lead = pw - c0 * sw, skip = 0;
                if (lead < 0) {
                    skip = -lead;
                    lead = 0;
                }
                const ptrdiff_t iw_n = IW - skip; /* may be <= 0: only padding */
                for (ptrdiff_t k = 0; k < KD; k++) ring[k] = -1;
                for (ptrdiff_t od = dc * dchunk; od < FC_MIN(OD, (dc + 1) * dchunk); od++) {
                    for (ptrdiff_t kd = 0; kd < KD; kd++) {
                        const ptrdiff_t id = od * g->s[0] + kd * g->d[0] - g->pad[0];
                        fresh[kd] = !dring || (id >= 0 && ring[id % KD] != id);
                    }
                    ptrdiff_t ntaps = 0;
                    for (ptrdiff_t c = 0; c < cpg; c++)
                        for (ptrdiff_t kd = 0; kd < KD; kd++) {
                            ptrdiff_t id = od * g->s[0] + kd * g->d[0] - g->pad[0];
                            if (id < 0 || id >= ID) continue;
                            const FC_T *xp =
                                x + ((n * g->c_in + gi * cpg + c) * ID + id) * IH * IW + skip;
                            const ptrdiff_t tw0 = ((c * KD + kd) * KH) * KW * FC_DIRECT_OB;
                            if (unit) {
                                FC_T *blk = stage + (c * KD + (dring ? id % KD : kd)) * plane;
                                for (ptrdiff_t j = 0; j < rows + span_h && fresh[kd]; j++) {
                                    ptrdiff_t ih = oh0 + j - ph;
                                    if (ih < 0 || ih >= IH)
                                        memset(blk + j * P, 0, (size_t)P * sizeof(FC_T));
                                    else
                                        FC_LOCAL(direct_stage_row)(xp + ih * IW, iw_n, lead, 1,
                                                                   P, P, 1, ph_val,
                                                                   blk + j * P);
                                }
                                for (ptrdiff_t kh = 0; kh < KH; kh++)
                                    for (ptrdiff_t kw = 0; kw < KW; kw++) {
                                        tap_x[ntaps] = blk + kh * dh * P + kw * dw;
                                        tap_w[ntaps++] = tw0 + (kh * KW + kw) * FC_DIRECT_OB;
                                    }
                                continue;
                            }
                            for (ptrdiff_t kh = 0; kh < KH; kh++) {
                                FC_T *blk = stage + ((c * KD + kd) * KH + kh) * nph * plane;
                                for (ptrdiff_t i = 0; i < rows; i++) {
                                    ptrdiff_t ih = (oh0 + i) * sh + kh * dh - ph;
                                    if (ih < 0 || ih >= IH) {
                                        for (ptrdiff_t k = 0; k < nph; k++)
                                            memset(blk + k * plane + i * P, 0,
                                                   (size_t)P * sizeof(FC_T));
                                        continue;
                                    }
                                    FC_LOCAL(direct_stage_row)(xp + ih * IW, iw_n, lead, sw, P,
                                                               plane, nph, ph_val, blk + i * P);
                                }
                                for (ptrdiff_t kw = 0; kw < KW; kw++) {
                                    tap_x[ntaps] = blk + ph_idx[kw] * plane + (kw * dw) / sw;
                                    tap_w[ntaps++] = tw0 + (kh * KW + kw) * FC_DIRECT_OB;
                                }
                            }
                        }
                    for (ptrdiff_t kd = 0; kd < KD && dring; kd++) {
                        const ptrdiff_t id = od * g->s[0] + kd * g->d[0] - g->pad[0];
                        if (id >= 0 && id < ID) ring[id % KD] = id;
                    }
                    /* a window is one row: its width is the "row length" of the stores */
                    const ptrdiff_t ow_eff = wins > 1 ? cols : OW;
                    const ptrdiff_t flat = (rows - 1) * P + cols;
                    for (ptrdiff_t bk = 0; bk < nblk; bk++) {
                        const FC_T *wb = packed + (gi * nblk + bk) * ntap_all * FC_DIRECT_OB;
                        const ptrdiff_t o0 = gi * opg + bk * FC_DIRECT_OB;
                        const ptrdiff_t ob = FC_MIN(FC_DIRECT_OB, opg - bk * FC_DIRECT_OB);
                        FC_T *y_band[FC_DIRECT_OB];
                        for (ptrdiff_t b = 0; b < ob; b++)
                            y_band[b] =
                                y + (((n * g->c_out + o0 + b) * OD + od) * OH + oh0) * OW + c0;
                        const FC_T *bias_b = bias ? bias + o0 : NULL;
                        if (ob == FC_DIRECT_OB) {
                            FC_LOCAL(flat_run)(ntaps, tap_x, tap_w, wb, flat, P, ow_eff, y_band,
                                               bias_b);
                        } else {
                            for (ptrdiff_t b = 0; b < ob; b++)
                                for (ptrdiff_t q0 = 0; q0 < flat; q0 += FC_FLAT_TW_MAX)
                                    FC_LOCAL(flat_tile)(1, FC_DIRECT_TWV_ONE, ntaps, tap_x,
                                                        tap_w, wb + b, q0,
                                                        FC_MIN(FC_FLAT_TW_MAX, flat - q0), P,
                                                        ow_eff, y_band + b,
                                                        bias_b ? bias_b + b : NULL);
                        }
                    }
                }
                if (nthreads > 1) FC_TEAM_DONE_ADD(&done);
            }
        }
        if (nthreads > 1) fc_team_wait_done(&done, (long)items);
        fc_free(stage);
        fc_free((void *)tap_x);
        fc_free(tap_w);
        fc_free(ring);
        FC_FP_RESTORE();
    }
    fc_free(packed);
    fc_free(ph_val);
    return failed ? FC_CONV_NOMEM : FC_CONV_OK;
}

int FC_FN(direct)(const fc_conv_geometry *g, const FC_T *x, const FC_T *w, const FC_T *bias,
                  FC_T *y, int nthreads)
{
    return FC_LOCAL(direct_flat)(g, x, w, bias, y, nthreads);
}

#undef FC_L
#undef FC_VEC
#undef FC_VECU
#undef FC_FN
#undef FC_LOCAL
#undef FC_DIRECT_TWV_ONE
#undef FC_FLAT_TWV
#undef FC_EVEN_LANES
#undef FC_FLAT_TW
#undef FC_FLAT_TW_MAX
#undef FC_FLAT_STAGE_BYTES
#undef FC_DIRECT_SERIAL_PACK
