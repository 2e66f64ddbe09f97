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

#define FC_POOL_OP(a, b) (red_max ? FC_VMAX(a, b) : FC_VADD(a, b))

/* The common windows, fused: stride 2, dilation 1, kernel width 2 or 3, max or average.
 * Straight from the input rows of the window (no row buffer): per block of VN outputs each
 * row contributes two (kernel 3: four) vector loads, reduced vertically in registers, then
 * one deinterleave into even/odd columns gives taps 0 and 1 (and the shifted pair tap 2).
 * Blocks that reach into the padding or past the row use masked loads filled with the
 * identity; the interior blocks have no bounds checks. Average: sum * hscale[j] * vscale. */
FC_INLINE void FC_POOL_FN(fc_pool_s2_row)(const FC_T *const *rows, int64_t nrows, FC_T *out,
                                          int64_t ow, int64_t iw, int64_t pw, const int kw,
                                          const int red_max, const FC_T *hscale, FC_T vscale,
                                          int64_t pf, const FC_T *x_end)
{
    const FC_T fill = red_max ? FC_TLOWEST : (FC_T)0;
    const FC_V fillv = FC_VSET1(fill);
    const int64_t reach = 2 * FC_VN + 2 * (kw - 2);  /* columns a block reads from c0 */
    for (int64_t j = 0; j < ow; j += FC_VN) {
        const int64_t c0 = 2 * j - pw;
        const int64_t lanes = ow - j < FC_VN ? ow - j : FC_VN;
        /* Plain loads when the windows of the stored lanes lie inside the row: the other
         * lanes may read into the next row (never past the array), their outputs are not
         * stored. Narrow rows (a 14-wide plane) thus need no masks either. */
        const int full = c0 >= 0 && c0 + 2 * (lanes - 1) + kw <= iw &&
                         (c0 + reach <= iw || rows[nrows - 1] + c0 + reach <= x_end);
        FC_V a, b, a2 = fillv, b2 = fillv;
        if (full) {
            const FC_T *src = rows[0] + c0;
            FC_PREFETCH(src + pf);
            FC_PREFETCH(src + pf + FC_VN);
            a = FC_VLOAD(src);
            b = FC_VLOAD(src + FC_VN);
            if (kw == 3) {
                a2 = FC_VLOAD(src + 2);
                b2 = FC_VLOAD(src + 2 + FC_VN);
            }
            for (int64_t r = 1; r < nrows; r++) {
                src = rows[r] + c0;
                FC_PREFETCH(src + pf);
                FC_PREFETCH(src + pf + FC_VN);
                a = FC_POOL_OP(a, FC_VLOAD(src));
                b = FC_POOL_OP(b, FC_VLOAD(src + FC_VN));
                if (kw == 3) {
                    a2 = FC_POOL_OP(a2, FC_VLOAD(src + 2));
                    b2 = FC_POOL_OP(b2, FC_VLOAD(src + 2 + FC_VN));
                }
            }
        } else {
            a = b = fillv;
            for (int64_t r = 0; r < nrows; r++) {
                const FC_T *row = rows[r];
                FC_PREFETCH(row + c0 + pf);
                FC_PREFETCH(row + c0 + pf + FC_VN);
                a = FC_POOL_OP(a, FC_POOL_FN(fc_load_cols)(row, c0, iw, fillv, fill));
                b = FC_POOL_OP(b, FC_POOL_FN(fc_load_cols)(row, c0 + FC_VN, iw, fillv, fill));
                if (kw == 3) {
                    a2 = FC_POOL_OP(a2, FC_POOL_FN(fc_load_cols)(row, c0 + 2, iw, fillv, fill));
                    b2 = FC_POOL_OP(b2, FC_POOL_FN(fc_load_cols)(row, c0 + 2 + FC_VN, iw, fillv,
                                                                 fill));
                }
            }
        }
        FC_V e, o, res;
        FC_VDEINT(a, b, e, o);
        res = FC_POOL_OP(e, o);
        if (kw == 3) {
            FC_V e2, o2;
            FC_VDEINT(a2, b2, e2, o2);
            (void)o2;
            res = FC_POOL_OP(res, e2);
        }
        if (!red_max) res = FC_VMUL(FC_VMUL(res, FC_VLOAD(hscale + j)), FC_VSET1(vscale));
        if (j + FC_VN <= ow)
            FC_VSTORE(out + j, res);
        else
            FC_VSTOREN(out + j, res, ow - j);
    }
}

/* One specialisation per (kernel width, max/avg): the branches above fold away. */
static void FC_POOL_FN(fc_pool_s2_dispatch)(const FC_T *const *rows, int64_t nrows, FC_T *out,
                                            int64_t ow, int64_t iw, int64_t pw, int kw,
                                            int red_max, const FC_T *hscale, FC_T vscale,
                                            int64_t pf, const FC_T *x_end)
{
    if (kw == 2 && red_max)
        FC_POOL_FN(fc_pool_s2_row)(rows, nrows, out, ow, iw, pw, 2, 1, hscale, vscale, pf,
                                   x_end);
    else if (kw == 2)
        FC_POOL_FN(fc_pool_s2_row)(rows, nrows, out, ow, iw, pw, 2, 0, hscale, vscale, pf,
                                   x_end);
    else if (red_max)
        FC_POOL_FN(fc_pool_s2_row)(rows, nrows, out, ow, iw, pw, 3, 1, hscale, vscale, pf,
                                   x_end);
    else
        FC_POOL_FN(fc_pool_s2_row)(rows, nrows, out, ow, iw, pw, 3, 0, hscale, vscale, pf,
                                   x_end);
}
#undef FC_POOL_OP

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
            const FC_T vscale = p->kind == FC_POOL_AVG ? (FC_T)(1.0 / t->vdiv[q]) : (FC_T)1;
            /* prefetch the same columns of the next output row's window */
            FC_POOL_FN(fc_pool_s2_dispatch)(rows, nrows, yp, ow, iw, pw, (int)kw, red_max,
                                            hscale, vscale, p->stride[1] * iw, x_end);
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
            const FC_V vs = FC_VSET1((FC_T)(1.0 / t->vdiv[q]));
            int64_t j = 0;
            for (; j + FC_VN <= ow; j += FC_VN)
                FC_VSTORE(yp + j, FC_VMUL(FC_VMUL(FC_VLOAD(yp + j), FC_VLOAD(hscale + j)), vs));
            for (; j < ow; j++) yp[j] = yp[j] * hscale[j] * (FC_T)(1.0 / t->vdiv[q]);
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

/* Global pooling: a reduction over each contiguous plane (sum or max), several accumulators. */
void FC_POOL_FN(fc_global)(int kind, const void *xv, void *yv, int64_t plane0, int64_t plane1,
                           int64_t size)
{
    const FC_T *x = (const FC_T *)xv;
    FC_T *y = (FC_T *)yv;
    for (int64_t c = plane0; c < plane1; c++) {
        const FC_T *xp = x + c * size;
        int64_t i = 0;
        FC_T r;
        if (kind == FC_POOL_MAX) {
            r = xp[0];
            if (size >= 2 * FC_VN) {
                FC_V m0 = FC_VLOAD(xp), m1 = FC_VLOAD(xp + FC_VN);
                for (i = 2 * FC_VN; i + 2 * FC_VN <= size; i += 2 * FC_VN) {
                    m0 = FC_VMAX(m0, FC_VLOAD(xp + i));
                    m1 = FC_VMAX(m1, FC_VLOAD(xp + i + FC_VN));
                }
                FC_T lanes[FC_VN];
                FC_VSTORE(lanes, FC_VMAX(m0, m1));
                for (int k = 0; k < FC_VN; k++) r = FC_SMAX(r, lanes[k]);
            }
            for (; i < size; i++) r = FC_SMAX(r, xp[i]);
        }
#if FC_POOL_FLOAT
        else {
            r = 0;
            if (size >= 2 * FC_VN) {
                FC_V s0 = FC_VLOAD(xp), s1 = FC_VLOAD(xp + FC_VN);
                for (i = 2 * FC_VN; i + 2 * FC_VN <= size; i += 2 * FC_VN) {
                    s0 = FC_VADD(s0, FC_VLOAD(xp + i));
                    s1 = FC_VADD(s1, FC_VLOAD(xp + i + FC_VN));
                }
                FC_T lanes[FC_VN];
                FC_VSTORE(lanes, FC_VADD(s0, s1));
                for (int k = 0; k < FC_VN; k++) r += lanes[k];
            }
            for (; i < size; i++) r += xp[i];
            r = (FC_T)(r / (FC_T)size);
        }
#else
        else r = 0;
#endif
        y[c] = r;
    }
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
