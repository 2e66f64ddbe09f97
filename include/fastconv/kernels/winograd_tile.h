/* One work unit of F(FC_WM x FC_WM, 3 x 3) for one dtype (included by winograd_dtype.h):
 * tiles [t0, t0 + nt) of the flattened (image, tile row, tile column) space, group gi; step 1
 * for input channels [c_lo, c_hi) of the group, steps 2-3 for output channels [k0, k1) (k0 a
 * multiple of MR). A unit usually does all three on its own V; when the output channels of a
 * block are split between threads, the team first shares step 1 of the block, each thread a
 * range of channels of one V, then splits steps 2-3 (an empty range skips a step).
 *
 *   1. input transform: for each FC_WL tiles and each channel, gather the alpha x alpha
 *      patches (zeros outside the image: the padding and the overhang of partial tiles), apply
 *      B^T . B with the lanes = tiles, and store each of the alpha^2 results into the packed
 *      GEMM B panel of that xi (NR tiles side by side, one row per channel);
 *   2. alpha^2 GEMMs M[xi] (Ku x tiles) = U[xi] (Ku x Cg) V[xi] (Cg x tiles) with the ISA's
 *      micro-kernel, KC-blocked; each MR-row slice of U meets every B panel while in L1;
 *   3. output transform A^T . A per output channel, FC_WL tiles at a time, bias added, each
 *      tile stored with its rows / columns beyond the output cropped.
 */
#define ALPHA (FC_WM + 2)
#define WL FC_WL
#define FC_WC(c) ((FC_WT)(c))
#define WINO_BT FC_CAT(FC_CAT(FC_WINO_F, FC_WM), _BT)
#define WINO_AT FC_CAT(FC_CAT(FC_WINO_F, FC_WM), _AT)

static void FC_CAT(FC_CAT(FC_CAT(fc_wino_unit_f, FC_WM), FC_CAT(_, FC_WSFX)), _)(
    const FC_CAT(fc_wino_call_, FC_WSFX) *call, long t0, int nt, int gi, int c_lo, int c_hi,
    int k0, int k1, FC_WT *FC_RESTRICT v, FC_WT *FC_RESTRICT mm, int *tiles)
{
    const FC_WCFG *cfg = call->cfg;
    const int mr = cfg->mr, nr = cfg->nr, kcb = cfg->kc;
    const int cg = call->cg, kg = call->kg, ku = k1 - k0;
    const int h = call->in_h, w = call->in_w, oh = call->out_h, ow = call->out_w;
    const int tpad = (nt + nr - 1) / nr * nr;
    /* elements from one xi to the next, skewed by a cache line so that the alpha^2 streams
     * written (V) and read (M) side by side do not all map to the same cache sets */
    const size_t vs = (size_t)tpad * cg + FC_WINO_SKEW(FC_WT);
    const size_t ms = (size_t)tpad * ku + FC_WINO_SKEW(FC_WT);
    const long per_image = (long)call->tiles_h * call->tiles_w;
    int *tile_n = tiles, *tile_y = tiles + nt, *tile_x = tiles + 2 * nt;
    /* Lane buffers are local arrays, not scratch pointers: the compiler then knows they alias
     * nothing and vectorises every lane loop without run-time alias checks. */
    FC_WT d[ALPHA * ALPHA * WL], t[ALPHA * ALPHA * WL], u[ALPHA * ALPHA * WL];
    FC_WT s[FC_WM * ALPHA * WL], o[FC_WM * FC_WM * WL];

    for (int i = 0; i < nt; i++) {
        long tile = t0 + i, rem = tile % per_image;
        tile_n[i] = (int)(tile / per_image);
        tile_y[i] = (int)(rem / call->tiles_w) * FC_WM;
        tile_x[i] = (int)(rem % call->tiles_w) * FC_WM;
    }

    if (c_hi > c_lo) {
        /* 1. input transform, straight into the packed B panels; per group of WL tiles the
         * patch offsets are worked out once, then every channel is gathered and transformed */
        const size_t hw = (size_t)h * w;
        const FC_WT *xg = call->x + (size_t)gi * cg * hw; /* channel 0 of the group, image 0 */
        for (int l0 = 0; l0 < tpad; l0 += WL) {
            ptrdiff_t off[WL]; /* patch top-left, from xg; -1: not a full interior patch */
            int interior = 1;
#ifdef FC_WINO_GATHER8
            int wide_lane[WL]; /* the patch rows can be read 8 values wide */
#endif
            for (int l = 0; l < WL; l++) {
                const int i = l0 + l;
                off[l] = -1;
#ifdef FC_WINO_GATHER8
                wide_lane[l] = 0;
#endif
                if (i >= nt) {
                    interior = 0;
                    continue;
                }
                const int r0 = tile_y[i] - call->pad_top, c0 = tile_x[i] - call->pad_left;
                if (r0 >= 0 && c0 >= 0 && r0 + ALPHA <= h && c0 + ALPHA <= w)
                    off[l] = (ptrdiff_t)tile_n[i] * call->c_in * hw + (ptrdiff_t)r0 * w + c0;
                else
                    interior = 0;
#ifdef FC_WINO_GATHER8
                /* reading past the patch's right edge stays inside the image (next row) */
                wide_lane[l] = c0 + 8 <= w || r0 + ALPHA < h;
#endif
            }
            for (int c = c_lo; c < c_hi; c++) {
                const FC_WT *xc = xg + (size_t)c * hw;
                /* gather WL patches, lane l = tile l0 + l (zeros outside the image) */
#ifdef FC_WINO_GATHER8
                if (ALPHA <= 8 && WL % 8 == 0) {
                    /* 8 patches at a time by in-register transposes; a patch at the border (or
                     * past the last tile) is staged zero-padded into edge[l] first */
                    FC_WT edge[WL][64];
                    for (int l8 = 0; l8 < WL; l8 += 8) {
                        const FC_WT *src8[8];
                        ptrdiff_t ws8[8];
                        for (int j = 0; j < 8; j++) {
                            const int l = l8 + j, i = l0 + l;
                            if (off[l] >= 0 && wide_lane[l]) {
                                src8[j] = xc + off[l];
                                ws8[j] = w;
                                continue;
                            }
                            for (int e = 0; e < 64; e++) edge[l][e] = 0;
                            if (i < nt) {
                                const FC_WT *src = xc + (size_t)tile_n[i] * call->c_in * hw;
                                const int r0 = tile_y[i] - call->pad_top;
                                const int c0 = tile_x[i] - call->pad_left;
                                for (int a = FC_MAX(0, -r0); a < ALPHA && r0 + a < h; a++)
                                    for (int b = FC_MAX(0, -c0); b < ALPHA && c0 + b < w; b++)
                                        edge[l][a * 8 + b] = src[(size_t)(r0 + a) * w + c0 + b];
                            }
                            src8[j] = edge[l];
                            ws8[j] = 8;
                        }
                        FC_WINO_GATHER8(d + l8, WL, src8, ws8, ALPHA, ALPHA);
                    }
                } else
#endif
                if (interior) {
                    for (int l = 0; l < WL; l++) {
                        const FC_WT *src = xc + off[l];
                        for (int a = 0; a < ALPHA; a++)
                            for (int b = 0; b < ALPHA; b++)
                                d[(a * ALPHA + b) * WL + l] = src[(size_t)a * w + b];
                    }
                } else {
                    for (int l = 0; l < WL; l++) {
                        const int i = l0 + l;
                        if (i >= nt) {
                            for (int e = 0; e < ALPHA * ALPHA; e++) d[e * WL + l] = 0;
                        } else if (off[l] >= 0) {
                            const FC_WT *src = xc + off[l];
                            for (int a = 0; a < ALPHA; a++)
                                for (int b = 0; b < ALPHA; b++)
                                    d[(a * ALPHA + b) * WL + l] = src[(size_t)a * w + b];
                        } else {
                            const FC_WT *src = xc + (size_t)tile_n[i] * call->c_in * hw;
                            const int r0 = tile_y[i] - call->pad_top;
                            const int c0 = tile_x[i] - call->pad_left;
                            for (int a = 0; a < ALPHA; a++) {
                                const int r = r0 + a;
                                for (int b = 0; b < ALPHA; b++) {
                                    const int col = c0 + b;
                                    d[(a * ALPHA + b) * WL + l] =
                                        (r >= 0 && r < h && col >= 0 && col < w)
                                            ? src[(size_t)r * w + col] : (FC_WT)0;
                                }
                            }
                        }
                    }
                }
                /* rows: t[a][.] = sum_k B^T[a][k] d[k][.] over alpha x WL contiguous values */
                for (int e = 0; e < ALPHA * WL; e++) {
#define IN(k) d[(k) * ALPHA * WL + e]
#define OUT(a) t[(a) * ALPHA * WL + e]
                    WINO_BT(OUT, IN)
#undef IN
#undef OUT
                }
                /* columns: u[a][b][.] = sum_k B^T[b][k] t[a][k][.] */
                for (int a = 0; a < ALPHA; a++) {
                    for (int l = 0; l < WL; l++) {
#define IN(k) t[(a * ALPHA + (k)) * WL + l]
#define OUT(b) u[(a * ALPHA + (b)) * WL + l]
                        WINO_BT(OUT, IN)
#undef IN
#undef OUT
                    }
                }
                /* into panel l0 / nr, row c, lanes l0 % nr .. of each xi's B matrix */
                if (nr % WL == 0) {
                    FC_WT *dst = v + ((size_t)(l0 / nr) * cg + c) * nr + (l0 % nr);
                    for (int e = 0; e < ALPHA * ALPHA; e++)
                        for (int l = 0; l < WL; l++) dst[(size_t)e * vs + l] = u[e * WL + l];
                } else { /* a GEMM whose NR is not a multiple of WL: lane by lane */
                    for (int l = 0; l < WL && l0 + l < tpad; l++) {
                        const int lane = l0 + l;
                        FC_WT *dst = v + ((size_t)(lane / nr) * cg + c) * nr + lane % nr;
                        for (int e = 0; e < ALPHA * ALPHA; e++) dst[(size_t)e * vs] = u[e * WL + l];
                    }
                }
            }
        }
    }

    if (k1 > k0) {
        /* 2. alpha^2 GEMMs through the shared micro-kernel. Per xi: each MR-row slice of U (read
         * once, from L2 or L3) meets every B panel of the block (L2) while it sits in L1; the head
         * of the next slice is prefetched, as the shared GEMM driver does. */
        for (int xi = 0; xi < ALPHA * ALPHA; xi++) {
            const FC_WT *a = call->packed + ((size_t)xi * call->groups + gi) * call->packed_stride;
            const FC_WT *bv = v + xi * vs;
            FC_WT *cm = mm + xi * ms;
            for (int kb = 0; kb < cg; kb += kcb) {
                const int kc = FC_MIN(kcb, cg - kb);
                for (int p = k0 / mr; p * mr < k1; p++) {
                    const FC_WT *ap = a + (size_t)p * mr * cg + (size_t)kb * mr;
                    if ((p + 1) * mr < k1) FC_WINO_PREFETCH(ap + (size_t)mr * cg, kc * mr);
                    FC_WT *crow = cm + (size_t)(p * mr - k0) * tpad;
                    const int rows = FC_MIN(mr, k1 - p * mr);
                    for (int q = 0; q < tpad / nr; q++)
                        cfg->ukernel(kc, ap, bv + ((size_t)q * cg + kb) * nr, crow + (size_t)q * nr,
                                     tpad, rows, FC_MIN(nr, nt - q * nr), NULL, kb > 0);
                }
            }
        }

        /* 3. output transform, bias, crop */
        for (int k = k0; k < k1; k++) {
            const int kk = gi * kg + k;
            const FC_WT bk = call->bias ? call->bias[kk] : (FC_WT)0;
            const FC_WT *src = mm + (size_t)(k - k0) * tpad;
            FC_WT *yk = call->y + (size_t)kk * oh * ow;
            for (int l0 = 0; l0 < nt; l0 += WL) {
                for (int e = 0; e < ALPHA * ALPHA; e++)
                    for (int l = 0; l < WL; l++) u[e * WL + l] = src[(size_t)e * ms + l0 + l];
                for (int e = 0; e < ALPHA * WL; e++) {
#define IN(a) u[(a) * ALPHA * WL + e]
#define OUT(i) s[(i) * ALPHA * WL + e]
                    WINO_AT(OUT, IN)
#undef IN
#undef OUT
                }
                for (int i = 0; i < FC_WM; i++) {
                    for (int l = 0; l < WL; l++) {
#define IN(b) s[(i * ALPHA + (b)) * WL + l]
#define OUT(j) o[(i * FC_WM + (j)) * WL + l]
                        WINO_AT(OUT, IN)
#undef IN
#undef OUT
                    }
                }
                for (int e = 0; e < FC_WM * FC_WM * WL; e++) o[e] += bk;
                const int lanes_used = FC_MIN(WL, nt - l0);
                int l_first = 0; /* lanes before it are stored already */
#ifdef FC_WINO_SCATTER8X4
                if (FC_WM == 4 && WL % 8 == 0) {
                    /* runs of 8 full tiles: transposing vector stores */
                    for (; l_first + 8 <= lanes_used; l_first += 8) {
                        FC_WT *dst8[8];
                        int full = 1;
                        for (int j = 0; j < 8; j++) {
                            const int i = l0 + l_first + j;
                            full &= tile_y[i] + FC_WM <= oh && tile_x[i] + FC_WM <= ow;
                            dst8[j] = yk + (size_t)tile_n[i] * call->c_out * oh * ow
                                      + (size_t)tile_y[i] * ow + tile_x[i];
                        }
                        if (!full) break;
                        FC_WINO_SCATTER8X4(o + l_first, WL, dst8, ow);
                    }
                }
#endif
                for (int l = l_first; l < lanes_used; l++) {
                    const int i = l0 + l;
                    FC_WT *out = yk + (size_t)tile_n[i] * call->c_out * oh * ow
                                 + (size_t)tile_y[i] * ow + tile_x[i];
                    if (tile_y[i] + FC_WM <= oh && tile_x[i] + FC_WM <= ow) {
                        for (int r = 0; r < FC_WM; r++)
                            for (int col = 0; col < FC_WM; col++)
                                out[(size_t)r * ow + col] = o[(r * FC_WM + col) * WL + l];
                    } else {
                        const int rows = FC_MIN(FC_WM, oh - tile_y[i]);
                        const int cols = FC_MIN(FC_WM, ow - tile_x[i]);
                        for (int r = 0; r < rows; r++)
                            for (int col = 0; col < cols; col++)
                                out[(size_t)r * ow + col] = o[(r * FC_WM + col) * WL + l];
                    }
                }
            }
        }
    }
}

#undef ALPHA
#undef WL
#undef FC_WC
#undef WINO_BT
#undef WINO_AT
