/* Template: window-by-window kernels that must know *where* each maximum is (the index scan
 * after the vectorised max pool), or whose windows vary in size (adaptive bins). Scalar, any
 * dtype; included by pool_scalar.c after defining FC_T, FC_SFX and FC_POOL_FLOAT.
 *
 * Max order: windows are scanned in row-major (d, h, w) order; the first element equal to the
 * maximum wins (ties keep the first element), a NaN maximum points at the first NaN. Taps
 * outside the input are never visited (tap ranges are clamped per dim, so the inner loops
 * carry no bounds checks).
 */
#ifndef FC_POOL_DIRECT_ONCE
#define FC_POOL_DIRECT_ONCE
/* Taps t in [lo, hi) of output o whose position o*s - pad + t*d lies in [0, n). */
FC_INLINE void fc_tap_range(int64_t o, int64_t s, int64_t pad, int64_t d, int64_t k, int64_t n,
                            int64_t *lo, int64_t *hi)
{
    const int64_t start = o * s - pad;
    int64_t a = start >= 0 ? 0 : (-start + d - 1) / d;
    int64_t b = start > n - 1 ? 0 : (n - 1 - start) / d + 1;
    *lo = a;
    *hi = b < k ? b : k;
}
#endif

#define FC_DIRECT_FN(name) FC_CAT(FC_CAT(name, _), FC_SFX)

/* Indices of maxima already computed (y, by the vectorised row kernels): each window is
 * scanned in row-major order up to the first element equal to its maximum (the first NaN when
 * the maximum is NaN), so ties go to the first element as required, and most windows stop
 * half-way with one mispredicted branch instead of one per tap. The value is then re-read
 * from that element (a -0.0 / +0.0 tie keeps the element's own sign). Empty windows keep
 * their identity value and get index -1. */
void FC_DIRECT_FN(fc_pool_find_idx)(const fc_pool_plan *p, const void *xv, void *yv,
                                    int64_t *indices, int64_t row0, int64_t row1)
{
    const FC_T *x = (const FC_T *)xv;
    FC_T *y = (FC_T *)yv;
    const int64_t id_ = p->isize[0], ih_ = p->isize[1], iw = p->isize[2];
    const int64_t od_ = p->osize[0], oh_ = p->osize[1], ow_ = p->osize[2];
    const int64_t kw = p->kernel[2], sw = p->stride[2], pw = p->pad[2], dw = p->dilation[2];
    const int64_t last = iw - 1 + pw - (kw - 1) * dw;
    const int64_t in0 = (pw + sw - 1) / sw;
    int64_t in1 = last >= 0 ? last / sw + 1 : 0;
    in1 = in1 > ow_ ? ow_ : in1 < in0 ? in0 : in1;
    for (int64_t r = row0; r < row1; r++) {
        const int64_t plane = r / (od_ * oh_), rem = r % (od_ * oh_);
        const int64_t od = rem / oh_, oh = rem % oh_;
        const FC_T *xp = x + plane * id_ * ih_ * iw;
        int64_t a0, a1, b0, b1;
        fc_tap_range(od, p->stride[0], p->pad[0], p->dilation[0], p->kernel[0], id_, &a0, &a1);
        fc_tap_range(oh, p->stride[1], p->pad[1], p->dilation[1], p->kernel[1], ih_, &b0, &b1);
        for (int64_t ow = 0; ow < ow_; ow++) {
            int64_t c0 = 0, c1 = kw;
            if (ow < in0 || ow >= in1) fc_tap_range(ow, sw, pw, dw, kw, iw, &c0, &c1);
            const FC_T best = y[r * ow_ + ow];
            const int nan = best != best;
            int64_t where = -1;
            for (int64_t a = a0; a < a1 && where < 0; a++) {
                const int64_t d = od * p->stride[0] - p->pad[0] + a * p->dilation[0];
                for (int64_t b = b0; b < b1 && where < 0; b++) {
                    const int64_t h = oh * p->stride[1] - p->pad[1] + b * p->dilation[1];
                    const int64_t base = (d * ih_ + h) * iw + ow * sw - pw;
                    for (int64_t c = c0; c < c1; c++) {
                        const FC_T v = xp[base + c * dw];
                        if (v == best || (nan && v != v)) {
                            where = base + c * dw;
                            break;
                        }
                    }
                }
            }
            if (where >= 0) y[r * ow_ + ow] = xp[where];
            indices[r * ow_ + ow] = where;
        }
    }
}

/* Windows far wider than their row (a kernel of 2**31 - 1 over 8 columns): output by output
 * over the clipped taps only, instead of laying out the padded row as the row kernels do.
 * Same divisor tables as the row kernels; a fc_pool_rows_fn (scratch unused). */
void FC_DIRECT_FN(fc_pool_wide)(const fc_pool_plan *p, const fc_pool_tables *t, const void *xv,
                                void *yv, int64_t row0, int64_t row1, void *scratch)
{
    const FC_T *x = (const FC_T *)xv;
    FC_T *y = (FC_T *)yv;
    const int64_t iw = p->isize[2], ow_ = p->osize[2], rows_per_plane = p->osize[0] * p->osize[1];
    const int64_t plane_size = p->isize[0] * p->isize[1] * iw;
    const int64_t kw = p->kernel[2], sw = p->stride[2], pw = p->pad[2], dw = p->dilation[2];
    const int kind = p->kind;
    (void)scratch;
    for (int64_t r = row0; r < row1; r++) {
        const int64_t plane = r / rows_per_plane, q = r % rows_per_plane;
        const FC_T *xp = x + plane * plane_size;
        const int64_t *off = t->rowoff + t->rowstart[q];
        const int64_t nrows = t->rowstart[q + 1] - t->rowstart[q];
        for (int64_t j = 0; j < ow_; j++) {
            int64_t c0, c1;
            fc_tap_range(j, sw, pw, dw, kw, iw, &c0, &c1);
            FC_T acc = kind == FC_POOL_MAX ? FC_TLOWEST : (FC_T)0;
            for (int64_t i = 0; i < nrows; i++) {
                const FC_T *row = xp + off[i] + j * sw - pw;
                for (int64_t c = c0; c < c1; c++) {
                    const FC_T v = row[c * dw];
#if FC_POOL_FLOAT
                    if (kind == FC_POOL_AVG)
                        acc += v;
                    else if (kind == FC_POOL_LP && isinf(p->p))
                        acc = FC_SMAX(acc, (FC_T)fabs((double)v));
                    else if (kind == FC_POOL_LP)
                        acc += (FC_T)FC_POW(fabs((double)v), p->p);
                    else
#endif
                        acc = FC_SMAX(acc, v);
                }
            }
#if FC_POOL_FLOAT
            if (kind == FC_POOL_AVG)
                acc = (FC_T)((double)acc / (t->vdiv[q] * t->hdiv[j]));
            else if (kind == FC_POOL_LP && !isinf(p->p))
                acc = (FC_T)FC_POW((double)acc, 1.0 / p->p);
#endif
            y[r * ow_ + j] = acc;
        }
    }
}

/* Adaptive pooling over bins (start, end pairs for D, then H, then W); rows = (plane, od, oh). */
void FC_DIRECT_FN(fc_adaptive)(int kind, const int64_t *isz, const int64_t *osz,
                               const int64_t *bins, const void *xv, void *yv, int64_t *indices,
                               int64_t row0, int64_t row1)
{
    const FC_T *x = (const FC_T *)xv;
    FC_T *y = (FC_T *)yv;
    const int64_t id_ = isz[0], ih_ = isz[1], iw = isz[2];
    const int64_t od_ = osz[0], oh_ = osz[1], ow_ = osz[2];
    const int64_t *bd = bins, *bh = bins + 2 * od_, *bw = bins + 2 * (od_ + oh_);
    for (int64_t r = row0; r < row1; r++) {
        const int64_t plane = r / (od_ * oh_), rem = r % (od_ * oh_);
        const int64_t od = rem / oh_, oh = rem % oh_;
        const FC_T *xp = x + plane * id_ * ih_ * iw;
        for (int64_t ow = 0; ow < ow_; ow++) {
            const int64_t w0 = bw[2 * ow], w1 = bw[2 * ow + 1];
            const int64_t d0 = bd[2 * od], d1 = bd[2 * od + 1];
            const int64_t h0 = bh[2 * oh], h1 = bh[2 * oh + 1];
            if (kind == FC_POOL_MAX) {
                /* the max as `v > best ? v : best` (one maxss / cmov, no branch) with NaNs
                 * counted aside; the index, when wanted, by a scan for the first maximum */
                FC_T best = FC_TLOWEST;
                int nan = 0;
                for (int64_t d = d0; d < d1; d++)
                    for (int64_t h = h0; h < h1; h++) {
                        const FC_T *row = xp + (d * ih_ + h) * iw;
                        for (int64_t w = w0; w < w1; w++) {
                            const FC_T v = row[w];
                            best = v > best ? v : best;
                            nan |= v != v;
                        }
                    }
                int64_t where = -1;
                if (indices || nan) {
                    for (int64_t d = d0; d < d1 && where < 0; d++)
                        for (int64_t h = h0; h < h1 && where < 0; h++) {
                            const int64_t base = (d * ih_ + h) * iw;
                            for (int64_t w = w0; w < w1; w++) {
                                const FC_T v = xp[base + w];
                                if (nan ? v != v : v == best) {
                                    where = base + w;
                                    break;
                                }
                            }
                        }
                    best = xp[where];  /* the first NaN, or the maximum's own sign of zero */
                }
                y[r * ow_ + ow] = best;
                if (indices) indices[r * ow_ + ow] = where;
            } else {
                double sum = 0;
                for (int64_t d = d0; d < d1; d++)
                    for (int64_t h = h0; h < h1; h++) {
                        const FC_T *row = xp + (d * ih_ + h) * iw;
                        for (int64_t w = w0; w < w1; w++) sum += (double)row[w];
                    }
                const double count = (double)((d1 - d0) * (h1 - h0) * (w1 - w0));
                y[r * ow_ + ow] = (FC_T)(sum / count);
            }
        }
    }
}

#undef FC_DIRECT_FN
