/* Template: the windowed-pool row kernel and the global reduction for one (dtype, ISA).
 *
 * Included by src/fastconv/_isa/pool_<isa>.c once per dtype after the vector layer
 * (kernels/pool_<isa>.h) has defined:
 *   FC_T FC_SFX FC_VN FC_V FC_VLOAD FC_VSTORE FC_VSET1 FC_VMAX FC_SMAX FC_TLOWEST FC_POOL_FLOAT
 *   and, when FC_POOL_FLOAT: FC_VADD FC_VMUL FC_VDIV FC_VABS FC_VSQRT FC_VDEINT FC_SQRT FC_POW
 * FC_VMAX / FC_SMAX propagate NaN from either operand; FC_VLOAD / FC_VSTORE are unaligned.
 *
 * One output row (plane, od, oh) is computed in two passes, both along contiguous memory:
 *  1. vertical: the valid input rows of the (kd, kh) window are reduced element-wise into a
 *     row buffer that carries the W padding as identity elements (-inf / 0), so
 *  2. horizontal: output column j reduces buf[j*sw + t*dw]; the buffer is split into its
 *     sw stride phases first, so every tap is a contiguous vector load (stride 2 with
 *     kernel 2 or 3 deinterleaves on the fly instead). No bounds checks in either pass.
 */
#include <math.h>
#include <string.h>

#define FC_POOL_FN(name) FC_CAT(FC_CAT(name, _), FC_SFX)

#ifndef FC_POOL_ROWS_ONCE
#define FC_POOL_ROWS_ONCE
/* the fused stride-2 path keeps the window's row pointers on the stack */
#define FC_POOL_MAX_ROWS 64
/* the flat kernel-2 path: rows of output up to this wide, blocks of this many buffer elements */
#define FC_POOL_FLAT_MAX_OW 64
#define FC_POOL_FLAT_ELEMS 1024
#if defined(__GNUC__) || defined(__clang__)
#define FC_PREFETCH(ptr) __builtin_prefetch(ptr)
#else
#define FC_PREFETCH(ptr) ((void)0)
#endif
/* element transform of the vertical pass (Lp pooling) */
enum { FC_XF_NONE = 0, FC_XF_ABS = 1, FC_XF_SQUARE = 2, FC_XF_POW = 3 };
#endif

/* dst (op)= transform(src) over n elements; `first` overwrites instead of reducing. */
static void FC_POOL_FN(fc_pool_vacc)(FC_T *FC_RESTRICT dst, const FC_T *FC_RESTRICT src,
                                     int64_t n, int first, int red_max, int xform, double p)
{
    int64_t i = 0;
#if FC_POOL_FLOAT
    if (xform == FC_XF_POW) {
        for (; i < n; i++) {
            FC_T v = (FC_T)FC_POW(fabs((double)src[i]), p);
            dst[i] = first ? v : dst[i] + v;
        }
        return;
    }
    if (xform != FC_XF_NONE) {
        for (; i + FC_VN <= n; i += FC_VN) {
            FC_V v = FC_VLOAD(src + i);
            v = xform == FC_XF_ABS ? FC_VABS(v) : FC_VMUL(v, v);
            if (!first) v = red_max ? FC_VMAX(FC_VLOAD(dst + i), v) : FC_VADD(FC_VLOAD(dst + i), v);
            FC_VSTORE(dst + i, v);
        }
        for (; i < n; i++) {
            FC_T v = xform == FC_XF_ABS ? (FC_T)fabs((double)src[i]) : src[i] * src[i];
            dst[i] = first ? v : red_max ? FC_SMAX(dst[i], v) : dst[i] + v;
        }
        return;
    }
#else
    (void)xform;
    (void)p;
#endif
    if (first) {
        memcpy(dst, src, (size_t)n * sizeof(FC_T));
        return;
    }
    if (red_max) {
        for (; i + FC_VN <= n; i += FC_VN)
            FC_VSTORE(dst + i, FC_VMAX(FC_VLOAD(dst + i), FC_VLOAD(src + i)));
        for (; i < n; i++) dst[i] = FC_SMAX(dst[i], src[i]);
    } else {
        for (; i + FC_VN <= n; i += FC_VN)
            FC_VSTORE(dst + i, FC_VADD(FC_VLOAD(dst + i), FC_VLOAD(src + i)));
        for (; i < n; i++) dst[i] += src[i];
    }
}

/* Horizontal pass for stride 2, dilation 1, kernel 2 or 3: deinterleave even/odd columns. */
static void FC_POOL_FN(fc_pool_h_s2)(const FC_T *FC_RESTRICT buf, FC_T *FC_RESTRICT acc,
                                     int64_t ow, int64_t kw, int red_max)
{
    int64_t j = 0;
    for (; j + FC_VN <= ow; j += FC_VN) {
        FC_V e, o, e2, o2;
        FC_VDEINT(FC_VLOAD(buf + 2 * j), FC_VLOAD(buf + 2 * j + FC_VN), e, o);
        FC_V r = red_max ? FC_VMAX(e, o) : FC_VADD(e, o);
        if (kw == 3) {
            FC_VDEINT(FC_VLOAD(buf + 2 * j + 2), FC_VLOAD(buf + 2 * j + 2 + FC_VN), e2, o2);
            (void)o2;
            r = red_max ? FC_VMAX(r, e2) : FC_VADD(r, e2);
        }
        FC_VSTORE(acc + j, r);
    }
    for (; j < ow; j++) {
        const FC_T *w = buf + 2 * j;
        FC_T r = red_max ? FC_SMAX(w[0], w[1]) : w[0] + w[1];
        if (kw == 3) r = red_max ? FC_SMAX(r, w[2]) : r + w[2];
        acc[j] = r;
    }
}

/* Generic horizontal pass: acc[j] = reduce_t buf[j*sw + t*dw] for j < ow. */
static void FC_POOL_FN(fc_pool_h_generic)(const FC_T *FC_RESTRICT buf, FC_T *FC_RESTRICT phases,
                                          FC_T *FC_RESTRICT acc, int64_t wb, int64_t ow,
                                          int64_t kw, int64_t sw, int64_t dw, int red_max)
{
    const FC_T *src = buf;
    int64_t plen = (wb + sw - 1) / sw;
    if (sw > 1) {
        /* phase q holds buf[q + sw*m]: tap t of column j is phase (t*dw)%sw at j + (t*dw)/sw */
        for (int64_t q = 0; q < sw; q++)
            for (int64_t m = 0; q + sw * m < wb; m++) phases[q * plen + m] = buf[q + sw * m];
        src = phases;
    }
    int64_t j = 0;
    for (; j + FC_VN <= ow; j += FC_VN) {
        FC_V r = FC_VLOAD(src + j);
        for (int64_t t = 1; t < kw; t++) {
            int64_t q = t * dw;
            FC_V v = FC_VLOAD(src + (sw > 1 ? (q % sw) * plen + q / sw : q) + j);
            r = red_max ? FC_VMAX(r, v) : FC_VADD(r, v);
        }
        FC_VSTORE(acc + j, r);
    }
    for (; j < ow; j++) {
        FC_T r = buf[j * sw];
        for (int64_t t = 1; t < kw; t++) {
            FC_T v = buf[j * sw + t * dw];
            r = red_max ? FC_SMAX(r, v) : r + v;
        }
        acc[j] = r;
    }
}

#ifndef FC_VLOADM
/* This vector layer has no masked loads: go through a small stack buffer. */
static inline FC_V FC_POOL_FN(fc_loadm)(const FC_T *ptr, int64_t lo, int64_t hi, FC_T fill)
{
    FC_T t[FC_VN];
    for (int64_t i = 0; i < FC_VN; i++) t[i] = i >= lo && i < hi ? ptr[i] : fill;
    return FC_VLOAD(t);
}
static inline void FC_POOL_FN(fc_storen)(FC_T *ptr, FC_V v, int64_t n)
{
    FC_T t[FC_VN];
    FC_VSTORE(t, v);
    for (int64_t i = 0; i < n; i++) ptr[i] = t[i];
}
#define FC_VLOADM(ptr, lo, hi, idv, ids) FC_POOL_FN(fc_loadm)(ptr, lo, hi, ids)
#define FC_VSTOREN(ptr, v, n) FC_POOL_FN(fc_storen)(ptr, v, n)
#endif

/* Columns c .. c+VN-1 of a row of iw elements; columns outside the row read as `fill`. */
FC_INLINE FC_V FC_POOL_FN(fc_load_cols)(const FC_T *row, int64_t c, int64_t iw, FC_V fillv,
                                        FC_T fill)
{
    const int64_t lo = c < 0 ? -c : 0, hi = iw - c < FC_VN ? iw - c : FC_VN;
    if (lo == 0 && hi == FC_VN) return FC_VLOAD(row + c);
    if (hi <= lo) return fillv;
    return FC_VLOADM(row + c, lo, hi, fillv, fill);
}

#ifdef FC_VNAN_T
/* Max pooling here uses the plain (fast) max and notes NaN inputs aside, a pair of vectors per
 * compare; a block whose inputs held a NaN is redone by fc_pool_s2_slow. */
#define FC_S2_MAX(a, b) FC_VMAXFAST(a, b)
#else
#define FC_VNAN_T int
#define FC_VNAN_ACC(acc, a, b) ((void)0)
#define FC_VNAN_ANY(acc) ((void)(acc), 0)
#define FC_S2_MAX(a, b) FC_VMAX(a, b)
#endif
#define FC_POOL_OP(a, b) (red_max ? FC_S2_MAX(a, b) : FC_VADD(a, b))

/* Columns [c, c + VN) reduced over the window's rows; `full`: plain loads (columns outside the
 * row are don't-cares), else columns outside [0, iw) read as the identity. Max: NaN inputs are
 * noted in *nan. */
FC_INLINE FC_V FC_POOL_FN(fc_s2_vert)(const FC_T *const *rows, const int64_t nrows, int64_t c,
                                      const int full, int64_t iw, FC_V fillv, FC_T fill,
                                      const int red_max, int64_t pf, FC_VNAN_T *nan)
{
#define FC_S2_LOAD(r) (full ? FC_VLOAD(rows[r] + c)                                            \
                            : FC_POOL_FN(fc_load_cols)(rows[r], c, iw, fillv, fill))
    if (full)
        for (int64_t r = 0; r < nrows; r++) FC_PREFETCH(rows[r] + c + pf);
    FC_V acc = FC_S2_LOAD(0);
    int64_t r = 1;
    if (red_max) {
        if (nrows == 1) {
            FC_VNAN_ACC(*nan, acc, acc);
            return acc;
        }
        const FC_V v = FC_S2_LOAD(1);
        FC_VNAN_ACC(*nan, acc, v);
        acc = FC_S2_MAX(acc, v);
        for (r = 2; r + 1 < nrows; r += 2) {
            const FC_V v0 = FC_S2_LOAD(r), v1 = FC_S2_LOAD(r + 1);
            FC_VNAN_ACC(*nan, v0, v1);
            acc = FC_S2_MAX(acc, FC_S2_MAX(v0, v1));
        }
        if (r < nrows) {
            const FC_V v0 = FC_S2_LOAD(r);
            FC_VNAN_ACC(*nan, v0, v0);
            acc = FC_S2_MAX(acc, v0);
        }
    } else {
        for (; r < nrows; r++) acc = FC_VADD(acc, FC_S2_LOAD(r));
    }
    return acc;
#undef FC_S2_LOAD
}

/* Max outputs [j, j + n) of a stride-2 row, one by one with NaN-propagating compares (the
 * blocks whose inputs held a NaN). */
static void FC_POOL_FN(fc_pool_s2_slow)(const FC_T *const *rows, int64_t nrows, FC_T *out,
                                        int64_t j, int64_t n, int64_t iw, int64_t pw, int kw)
{
    for (int64_t jj = j; jj < j + n; jj++) {
        FC_T acc = FC_TLOWEST;
        for (int64_t r = 0; r < nrows; r++)
            for (int t = 0; t < kw; t++) {
                const int64_t col = 2 * jj - pw + t;
                if (col >= 0 && col < iw) acc = FC_SMAX(acc, rows[r][col]);
            }
        out[jj] = acc;
    }
}

/* The common windows, fused: stride 2, dilation 1, kernel width 2 or 3, max or average.
 * Straight from the input rows of the window (no row buffer): per block of VN outputs the
 * window's rows are reduced vertically in registers over 2 VN columns (a, b), one
 * deinterleave gives taps 0 and 1 (even and odd columns), and for kernel 3 tap 2 is the even
 * columns shifted by one, the first column of the next block (n, carried over as its a).
 * Vectors that reach into the padding use masked loads filled with the identity; the interior
 * ones have no bounds checks. Average: sum * hscale[j] * vscale. */
FC_INLINE void FC_POOL_FN(fc_pool_s2_row)(const FC_T *const *rows, const int64_t nrows,
                                          FC_T *out, int64_t ow, int64_t iw, int64_t pw,
                                          const int kw, const int red_max,
                                          const FC_T *hscale, FC_T vscale, int64_t pf,
                                          const FC_T *x_end)
{
    const FC_T fill = red_max ? FC_TLOWEST : (FC_T)0;
    const FC_V fillv = FC_VSET1(fill);
    /* one past the last column a stored output reads: columns from there on are don't-cares,
     * so when the row holds them all, a vector past the row's end needs no mask (it reads
     * into the next row, never past the array) */
    const int64_t need_end = 2 * (ow - 1) - pw + kw;
    const int tail_free = iw >= need_end;
    const FC_T *last = rows[nrows - 1];
#define FC_S2_FULL(c)                                                                         \
    ((c) >= 0 && ((c) + FC_VN <= iw || (tail_free && last + (c) + FC_VN <= x_end)))
#define FC_S2_VERT(c, nan)                                                                    \
    (FC_S2_FULL(c) ? FC_POOL_FN(fc_s2_vert)(rows, nrows, c, 1, iw, fillv, fill, red_max, pf,  \
                                            nan)                                              \
                   : FC_POOL_FN(fc_s2_vert)(rows, nrows, c, 0, iw, fillv, fill, red_max, pf,  \
                                            nan))
    int64_t c0 = -pw;
    FC_VNAN_T nan_a = 0, nan_b = 0, nan_n = 0;
    FC_V a = FC_S2_VERT(c0, &nan_a);
    for (int64_t j = 0; j < ow; j += FC_VN, c0 += 2 * FC_VN) {
        const FC_V b = FC_S2_VERT(c0 + FC_VN, &nan_b);
        FC_V e, o, res, n = fillv;
        FC_VDEINT(a, b, e, o);
        res = FC_POOL_OP(e, o);
        const int64_t lanes = ow - j < FC_VN ? ow - j : FC_VN;
        if (kw == 3) {
            /* a partial last block reads tap 2 of its stored outputs from e alone */
            n = lanes == FC_VN ? FC_S2_VERT(c0 + 2 * FC_VN, &nan_n) : fillv;
            res = FC_POOL_OP(res, FC_VSHIFT1(e, n));
        }
#if FC_POOL_FLOAT
        if (!red_max) res = FC_VMUL(FC_VMUL(res, FC_VLOAD(hscale + j)), FC_VSET1(vscale));
#endif
        if (red_max && FC_VNAN_ANY(nan_a | nan_b | nan_n)) {
            FC_POOL_FN(fc_pool_s2_slow)(rows, nrows, out, j, lanes, iw, pw, kw);
        } else if (lanes == FC_VN) {
            FC_VSTORE(out + j, res);
        } else {
            FC_VSTOREN(out + j, res, lanes);
        }
        nan_b = 0;
        if (kw == 3) {
            a = n;
            nan_a = nan_n;
            nan_n = 0;
        } else if (j + FC_VN < ow) {
            nan_a = 0;
            a = FC_S2_VERT(c0 + 2 * FC_VN, &nan_a);
        }
    }
#undef FC_S2_FULL
#undef FC_S2_VERT
}

/* One specialisation per (kernel width, max/avg) and for the common window heights (2, 3, 4
 * rows: 2-D kernels 2 and 3, 3-D kernel 2): the branches above fold away, the row loops
 * unroll. */
#define FC_S2_CALL(nr, k, m)                                                                  \
    FC_POOL_FN(fc_pool_s2_row)(rows, nr, out, ow, iw, pw, k, m, hscale, vscale, pf, x_end)
#define FC_S2_ROWS(k, m)                                                                      \
    do {                                                                                      \
        if (nrows == 2)                                                                       \
            FC_S2_CALL(2, k, m);                                                              \
        else if (nrows == 3)                                                                  \
            FC_S2_CALL(3, k, m);                                                              \
        else if (nrows == 4)                                                                  \
            FC_S2_CALL(4, k, m);                                                              \
        else                                                                                  \
            FC_S2_CALL(nrows, k, m);                                                          \
    } while (0)
static void FC_POOL_FN(fc_pool_s2_dispatch)(const FC_T *const *rows, int64_t nrows, FC_T *out,
                                            int64_t ow, int64_t iw, int64_t pw, int kw,
                                            int red_max, const FC_T *hscale, FC_T vscale,
                                            int64_t pf, const FC_T *x_end)
{
    if (kw == 2 && red_max)
        FC_S2_ROWS(2, 1);
    else if (kw == 2)
        FC_S2_ROWS(2, 0);
    else if (red_max)
        FC_S2_ROWS(3, 1);
    else
        FC_S2_ROWS(3, 0);
}
#undef FC_S2_ROWS
#undef FC_S2_CALL
#undef FC_POOL_OP
#undef FC_S2_MAX

/* Narrow rows (a 14- or 56-wide plane), kernel 2 and stride 2 along W, no W padding, every
 * window inside the row (2*ow <= iw): per block of output rows the vertical pass writes each
 * row's 2*ow reduced columns back to back into `buf`, so the block's outputs are one flat run,
 * out[m] = op(buf[2m], buf[2m+1]), deinterleaved VN at a time: no per-row tails or masks.
 * The average's per-row scale (the whole divisor: W windows are all 2 wide) is applied in the
 * vertical pass. Rows may span planes: each row finds its own input rows. */
FC_INLINE void FC_POOL_FN(fc_pool_k2_flat)(const fc_pool_plan *p, const fc_pool_tables *t,
                                           const FC_T *x, FC_T *y, int64_t row0, int64_t row1,
                                           FC_T *FC_RESTRICT buf, const FC_T *x_end,
                                           const int red_max)
{
    const int64_t iw = p->isize[2], ow = p->osize[2], rows_per_plane = p->osize[0] * p->osize[1];
    const int64_t plane_size = p->isize[0] * p->isize[1] * iw, n2 = 2 * ow;
    const FC_T fill = red_max ? FC_TLOWEST : (FC_T)0;
    const FC_V fillv = FC_VSET1(fill);
    const int64_t block = FC_POOL_FLAT_ELEMS / n2 > 0 ? FC_POOL_FLAT_ELEMS / n2 : 1;
    /* prefetch distance: the same columns a few output rows on, at least ~2 KiB ahead */
    int64_t pf = 2 * p->stride[1] * iw;
    while (pf * (int64_t)sizeof(FC_T) < 2048) pf += p->stride[1] * iw;
    int64_t plane = row0 / rows_per_plane, q = row0 % rows_per_plane;
    for (int64_t r0 = row0; r0 < row1; r0 += block) {
        const int64_t nb = row1 - r0 < block ? row1 - r0 : block;
        for (int64_t i = 0; i < nb; i++) {
            const FC_T *xp = x + plane * plane_size;
            const int64_t *off = t->rowoff + t->rowstart[q];
            const int64_t nrows = t->rowstart[q + 1] - t->rowstart[q];
            FC_T *b = buf + i * n2;
            const FC_V scale = FC_VSET1(red_max ? (FC_T)1 : (FC_T)(t->vinv[q] / t->hdiv[0]));
            for (int64_t c = 0; c < n2; c += FC_VN) {
                FC_V acc = fillv;
                /* past 2*ow the lanes are don't-cares (the next row overwrites them); plain
                 * loads as long as the last window row stays inside the array */
                if (nrows > 0 && xp + off[nrows - 1] + c + FC_VN <= x_end) {
                    FC_PREFETCH(xp + off[0] + c + pf);
                    acc = FC_VLOAD(xp + off[0] + c);
                    for (int64_t k = 1; k < nrows; k++) {
                        FC_PREFETCH(xp + off[k] + c + pf);
                        const FC_V v = FC_VLOAD(xp + off[k] + c);
                        acc = red_max ? FC_VMAX(acc, v) : FC_VADD(acc, v);
                    }
                } else {
                    for (int64_t k = 0; k < nrows; k++) {
                        const FC_V v = FC_POOL_FN(fc_load_cols)(xp + off[k], c, iw, fillv, fill);
                        acc = red_max ? FC_VMAX(acc, v) : FC_VADD(acc, v);
                    }
                }
#if FC_POOL_FLOAT
                if (!red_max) acc = FC_VMUL(acc, scale);
#else
                (void)scale;
#endif
                FC_VSTORE(b + c, acc);
            }
            if (++q == rows_per_plane) {
                q = 0;
                plane++;
            }
        }
        FC_T *out = y + r0 * ow;
        const int64_t total = nb * ow;
        for (int64_t m = 0; m < total; m += FC_VN) {
            FC_V e, o;
            FC_VDEINT(FC_VLOAD(buf + 2 * m), FC_VLOAD(buf + 2 * m + FC_VN), e, o);
            const FC_V res = red_max ? FC_VMAX(e, o) : FC_VADD(e, o);
            if (m + FC_VN <= total)
                FC_VSTORE(out + m, res);
            else
                FC_VSTOREN(out + m, res, total - m);
        }
    }
}

/* The flat kernel-2 path when every window is the same 2 x 2 one of a 2-D pool (kernel =
 * stride = 2 in H and W, no padding, H exactly twice the output's): output row r of the whole
 * batch reads the input rows 2r and 2r + 1 of the batch, which are back to back in memory, so
 * no tables and no per-row divisor: buf gets row 2r (op) row 2r + 1, 2 OW columns each, back to
 * back, and the outputs are the pairs of buf, deinterleaved VN at a time (adaptive pooling of
 * 14x14 to 7x7, U-Net's 56x56 average pools). */
FC_INLINE void FC_POOL_FN(fc_pool_k2_pairs)(const fc_pool_plan *p, const fc_pool_tables *t,
                                            const FC_T *x, FC_T *y, int64_t row0, int64_t row1,
                                            FC_T *FC_RESTRICT buf, const FC_T *x_end,
                                            const int red_max)
{
    const int64_t iw = p->isize[2], ow = p->osize[2], n2 = 2 * ow;
    const FC_T fill = red_max ? FC_TLOWEST : (FC_T)0;
    const FC_V fillv = FC_VSET1(fill);
    const int64_t block = FC_POOL_FLAT_ELEMS / n2 > 0 ? FC_POOL_FLAT_ELEMS / n2 : 1;
    /* every window is whole: one divisor (the H part times the W part, or the override) */
    const FC_V scale = FC_VSET1(red_max ? (FC_T)1 : (FC_T)(t->vinv[0] / t->hdiv[0]));
    for (int64_t r0 = row0; r0 < row1; r0 += block) {
        const int64_t nb = row1 - r0 < block ? row1 - r0 : block;
        for (int64_t i = 0; i < nb; i++) {
            const FC_T *src = x + (r0 + i) * 2 * iw;
            FC_T *b = buf + i * n2;
            for (int64_t c = 0; c < n2; c += FC_VN) {
                FC_V v0, v1;
                /* past 2*ow the lanes are don't-cares (the next row overwrites them) */
                if (src + iw + c + FC_VN <= x_end) {
                    v0 = FC_VLOAD(src + c);
                    v1 = FC_VLOAD(src + iw + c);
                } else {
                    v0 = FC_POOL_FN(fc_load_cols)(src, c, iw, fillv, fill);
                    v1 = FC_POOL_FN(fc_load_cols)(src + iw, c, iw, fillv, fill);
                }
                FC_V acc = red_max ? FC_VMAX(v0, v1) : FC_VADD(v0, v1);
#if FC_POOL_FLOAT
                if (!red_max) acc = FC_VMUL(acc, scale);
#else
                (void)scale;
#endif
                FC_VSTORE(b + c, acc);
            }
        }
        FC_T *out = y + r0 * ow;
        const int64_t total = nb * ow;
        for (int64_t m = 0; m < total; m += FC_VN) {
            FC_V e, o;
            FC_VDEINT(FC_VLOAD(buf + 2 * m), FC_VLOAD(buf + 2 * m + FC_VN), e, o);
            const FC_V res = red_max ? FC_VMAX(e, o) : FC_VADD(e, o);
            if (m + FC_VN <= total)
                FC_VSTORE(out + m, res);
            else
                FC_VSTOREN(out + m, res, total - m);
        }
    }
}

static void FC_POOL_FN(fc_pool_k2_flat_dispatch)(const fc_pool_plan *p, const fc_pool_tables *t,
                                                 const FC_T *x, FC_T *y, int64_t row0,
                                                 int64_t row1, FC_T *buf, const FC_T *x_end)
{
    const int pairs = p->isize[0] == 1 && p->kernel[1] == 2 && p->stride[1] == 2 &&
                      p->dilation[1] == 1 && p->pad[1] == 0 && p->isize[1] == 2 * p->osize[1];
    if (pairs && p->kind == FC_POOL_MAX)
        FC_POOL_FN(fc_pool_k2_pairs)(p, t, x, y, row0, row1, buf, x_end, 1);
    else if (pairs)
        FC_POOL_FN(fc_pool_k2_pairs)(p, t, x, y, row0, row1, buf, x_end, 0);
    else if (p->kind == FC_POOL_MAX)
        FC_POOL_FN(fc_pool_k2_flat)(p, t, x, y, row0, row1, buf, x_end, 1);
    else
        FC_POOL_FN(fc_pool_k2_flat)(p, t, x, y, row0, row1, buf, x_end, 0);
}

void FC_POOL_FN(fc_pool_rows)(const fc_pool_plan *p, const fc_pool_tables *t, const void *xv,
                              void *yv, int64_t row0, int64_t row1, void *scratch)
{
    const FC_T *x = (const FC_T *)xv;
    FC_T *y = (FC_T *)yv;
    const int64_t iw = p->isize[2], ow = p->osize[2], rows_per_plane = p->osize[0] * p->osize[1];
    const int64_t plane_size = p->isize[0] * p->isize[1] * iw;
    const FC_T *x_end = x + p->planes * plane_size;  /* reads stay below this */
    const int64_t kw = p->kernel[2], sw = p->stride[2], dw = p->dilation[2], pw = p->pad[2];
    const int64_t wb = fc_pool_row_width(p);
    int red_max = p->kind == FC_POOL_MAX;
    int xform = 0;
#if FC_POOL_FLOAT
    if (p->kind == FC_POOL_LP) {
        red_max = isinf(p->p);
        xform = red_max || p->p == 1.0 ? FC_XF_ABS : p->p == 2.0 ? FC_XF_SQUARE : FC_XF_POW;
    }
#endif
    const FC_T ident = p->kind == FC_POOL_MAX ? FC_TLOWEST : (FC_T)0;  /* Lp-inf: |x| >= 0 */
    FC_T *buf = (FC_T *)scratch;                 /* wb (+ slack) elements */
    FC_T *phases = buf + wb + 2 * FC_VN + 64;    /* wb + sw (+ slack) elements */
    FC_T *hscale = phases + wb + 2 * sw + 64;    /* ow (+ slack): 1 / column divisor */
    for (int64_t i = 0; i < pw; i++) buf[i] = ident;
    for (int64_t i = pw + iw; i < wb + 2 * FC_VN; i++) buf[i] = ident;
    const int fast_s2 = sw == 2 && dw == 1 && (kw == 2 || kw == 3);
    const int fused = fast_s2 && (p->kind == FC_POOL_MAX || p->kind == FC_POOL_AVG) &&
                      p->kernel[0] * p->kernel[1] <= FC_POOL_MAX_ROWS;
    if (fused && kw == 2 && pw == 0 && 2 * ow <= iw && ow <= FC_POOL_FLAT_MAX_OW) {
        FC_POOL_FN(fc_pool_k2_flat_dispatch)(p, t, x, y, row0, row1, buf, x_end);
        return;
    }
    if (p->kind == FC_POOL_AVG)
        for (int64_t j = 0; j < ow + FC_VN; j++) hscale[j] = (FC_T)(1.0 / t->hdiv[j]);

    /* (plane, q = od * OH + oh) of row r, advanced incrementally: no divisions per row */
    int64_t plane = row0 / rows_per_plane, q = row0 % rows_per_plane - 1;
    for (int64_t r = row0; r < row1; r++) {
        if (++q == rows_per_plane) {
            q = 0;
            plane++;
        }
        const FC_T *xp = x + plane * plane_size;
        FC_T *yp = y + r * ow;
        const int64_t *off = t->rowoff + t->rowstart[q];
        const int64_t nrows = t->rowstart[q + 1] - t->rowstart[q];
        if (fused && nrows > 0) {
            const FC_T *rows[FC_POOL_MAX_ROWS];
            for (int64_t i = 0; i < nrows; i++) rows[i] = xp + off[i];
            const FC_T vscale = p->kind == FC_POOL_AVG ? (FC_T)t->vinv[q] : (FC_T)1;
            /* prefetch the same columns two output rows ahead (measured: one row ahead reaches
             * ~75% of streaming bandwidth on 64x448x448, two ~85-100%, none ~45%) */
            FC_POOL_FN(fc_pool_s2_dispatch)(rows, nrows, yp, ow, iw, pw, (int)kw, red_max,
                                            hscale, vscale, 2 * p->stride[1] * iw, x_end);
            continue;
        }
        for (int64_t i = 0; i < nrows; i++)
            FC_POOL_FN(fc_pool_vacc)(buf + pw, xp + off[i], iw, i == 0, red_max, xform, p->p);
        if (nrows == 0)
            for (int64_t i = 0; i < iw; i++) buf[pw + i] = ident;
        if (fast_s2)
            FC_POOL_FN(fc_pool_h_s2)(buf, yp, ow, kw, red_max);
        else
            FC_POOL_FN(fc_pool_h_generic)(buf, phases, yp, wb, ow, kw, sw, dw, red_max);
#if FC_POOL_FLOAT
        if (p->kind == FC_POOL_AVG) {
            const FC_V vs = FC_VSET1((FC_T)t->vinv[q]);
            int64_t j = 0;
            for (; j + FC_VN <= ow; j += FC_VN)
                FC_VSTORE(yp + j, FC_VMUL(FC_VMUL(FC_VLOAD(yp + j), FC_VLOAD(hscale + j)), vs));
            for (; j < ow; j++) yp[j] = yp[j] * hscale[j] * (FC_T)t->vinv[q];
        } else if (p->kind == FC_POOL_LP && !red_max) {
            if (xform == FC_XF_SQUARE) {
                int64_t j = 0;
                for (; j + FC_VN <= ow; j += FC_VN) FC_VSTORE(yp + j, FC_VSQRT(FC_VLOAD(yp + j)));
                for (; j < ow; j++) yp[j] = FC_SQRT(yp[j]);
            } else if (xform == FC_XF_POW) {
                const double inv = 1.0 / p->p;
                for (int64_t j = 0; j < ow; j++) yp[j] = (FC_T)FC_POW((double)yp[j], inv);
            }
        }
#endif
    }
}

/* Global pooling: a reduction over each contiguous plane (sum or max), not a window loop:
 * two vector accumulators, the tail as one masked load filled with the identity, then one
 * horizontal reduction (a tree; NaN propagates through FC_SMAX). A 7x7 plane is thus three
 * full vectors and one masked one of 16 floats. */
FC_INLINE void FC_POOL_FN(fc_global_planes)(const FC_T *x, FC_T *y, int64_t plane0,
                                            int64_t plane1, int64_t size, const int red_max)
{
    const FC_T fill = red_max ? FC_TLOWEST : (FC_T)0;
    const FC_V fillv = FC_VSET1(fill);
#if FC_POOL_FLOAT
    const FC_T inv_size = (FC_T)(1.0 / (double)size);
#endif
    for (int64_t c = plane0; c < plane1; c++) {
        const FC_T *xp = x + c * size;
        FC_V a0 = fillv, a1 = fillv;
        int64_t i = 0;
        for (; i + 2 * FC_VN <= size; i += 2 * FC_VN) {
            a0 = red_max ? FC_VMAX(a0, FC_VLOAD(xp + i)) : FC_VADD(a0, FC_VLOAD(xp + i));
            a1 = red_max ? FC_VMAX(a1, FC_VLOAD(xp + i + FC_VN))
                         : FC_VADD(a1, FC_VLOAD(xp + i + FC_VN));
        }
        if (i + FC_VN <= size) {
            a0 = red_max ? FC_VMAX(a0, FC_VLOAD(xp + i)) : FC_VADD(a0, FC_VLOAD(xp + i));
            i += FC_VN;
        }
        if (i < size) {
            const FC_V tail = FC_VLOADM(xp + i, 0, size - i, fillv, fill);
            a1 = red_max ? FC_VMAX(a1, tail) : FC_VADD(a1, tail);
        }
#ifdef FC_VHSUM
        const FC_T r = red_max ? FC_VHMAX(FC_VMAX(a0, a1)) : FC_VHSUM(FC_VADD(a0, a1));
#else
        FC_T lanes[FC_VN];
        FC_VSTORE(lanes, red_max ? FC_VMAX(a0, a1) : FC_VADD(a0, a1));
        for (int w = FC_VN / 2; w >= 1; w /= 2)
            for (int k = 0; k < w; k++)
                lanes[k] = red_max ? FC_SMAX(lanes[k], lanes[k + w]) : lanes[k] + lanes[k + w];
        const FC_T r = lanes[0];
#endif
#if FC_POOL_FLOAT
        y[c] = red_max ? r : r * inv_size;
#else
        y[c] = r;  /* integers: max only */
#endif
    }
}

void FC_POOL_FN(fc_global)(int kind, const void *xv, void *yv, int64_t plane0, int64_t plane1,
                           int64_t size)
{
    if (kind == FC_POOL_MAX)
        FC_POOL_FN(fc_global_planes)((const FC_T *)xv, (FC_T *)yv, plane0, plane1, size, 1);
    else
        FC_POOL_FN(fc_global_planes)((const FC_T *)xv, (FC_T *)yv, plane0, plane1, size, 0);
}

#undef FC_POOL_FN

/* The vector layer is redefined for the next dtype. */
#undef FC_T
#undef FC_SFX
#undef FC_VN
#undef FC_V
#undef FC_VLOAD
#undef FC_VSTORE
#undef FC_VSET1
#undef FC_VMAX
#undef FC_SMAX
#undef FC_TLOWEST
#undef FC_POOL_FLOAT
#undef FC_VADD
#undef FC_VMUL
#undef FC_VDIV
#undef FC_VABS
#undef FC_VSQRT
#undef FC_VDEINT
#undef FC_SQRT
#undef FC_POW
#undef FC_VLOADM
#undef FC_VSTOREN
#undef FC_VHSUM
#undef FC_VHMAX
#undef FC_VSHIFT1
#undef FC_VNAN_T
#undef FC_VNAN_ACC
#undef FC_VNAN_ANY
#undef FC_VMAXFAST
