/* Depthwise convolution (groups == c_in, channel multiplier m = c_out / c_in >= 1; geometry
 * and contract: fastconv/conv.h).
 *
 * Memory-bound: each input plane is read from memory once and each output plane written once,
 * so the kernel is a stencil along the output width, not a GEMM.
 *
 * Two paths. 2-D 3x3 kernels with stride 1 or 2 (the same in H and W), dilation 1 and a left
 * pad of 0 or 1 (MobileNet's and most CNNs' depthwise layers, any other pads) take "k3r"
 * (below, before fc_conv_depthwise): no staging at all; each unit (output channel, block of
 * rows) reads its input plane in place and keeps the rows being summed in registers. It is
 * FMA-bound: mobilenet.dw (32 x 112 x 112) at 1 thread went from 0.21 ms (staged) to 0.095 ms
 * on the Zen 4 development VM, the 64-channel stride-2 layer from 0.42 to 0.12 ms.
 * Everything else takes the staged path:
 *
 * Work unit: (image, input channel c, output depth od, block of output rows). The unit first
 * stages the input rows its block reads (every kd whose depth lies inside the input) into
 * per-thread scratch rows that carry the zero border along W and are split into `stride_w`
 * phases (padded position q goes to phase q % sw, index q / sw), so every tap reads a
 * contiguous run of a scratch row whatever the stride, dilation and padding. The block is
 * sized so these rows stay in L1/L2. Then, for each of the m output channels of c and each
 * output row, taps whose input row lies outside the input in D or H are dropped, and tiles of
 * TWV vectors of output columns accumulate in registers over the remaining taps (FMA with a
 * broadcast weight), starting from the bias, and are stored once.
 *
 * Template: included by _isa/conv_<isa>.c once per dtype with FC_T, FC_T_BYTES, FC_DT,
 * FC_ISA_NAME and FC_VEC_BYTES defined. Vectors are GCC/clang vector extensions, so each
 * translation unit's -m flags pick the instructions (the ISA's full width).
 */
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "fastconv/common.h"
#include "fastconv/conv.h"
#include "fastconv/omp.h"

#define FC_L (FC_VEC_BYTES / (int)sizeof(FC_T)) /* lanes per vector */
#define FC_VEC FC_CAT(fc_dwvec_, FC_DT)
#define FC_VECU FC_CAT(fc_dwvecu_, FC_DT)
#define FC_FN(name) FC_CAT(FC_CAT(FC_CAT(fc_conv_, name), FC_CAT(_, FC_DT)), FC_CAT(_, FC_ISA_NAME))
#define FC_LOCAL(name) FC_CAT(FC_CAT(name, _), FC_DT)

typedef FC_T FC_VEC __attribute__((vector_size(FC_VEC_BYTES)));
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

/* Vectors of output columns per register tile: 8 independent FMA chains hide the FMA latency
 * (each tap adds into every accumulator once). */
#define FC_DW_TWV 8
#define FC_DW_TW (FC_DW_TWV * FC_L)
/* Target bytes of one unit's staged rows (fits L2 with room for the output rows). */
#define FC_DW_STAGE_BYTES (96 * 1024)

/* 3-wide kernels with stride and dilation 1 in W ("k3", 64-byte vectors): taps at staged
 * offsets 0, 1, 2. Each input vector is loaded once, aligned, and the taps at +1 and +2 are
 * shifted out of it and the next vector in registers: loads at +1 and +2 straddle cache lines,
 * which on Zen 5 cost more time than the FMAs themselves (measured: 90 -> 69 cycles per pair of
 * 112-wide rows). Every path (one row, a pair of rows) adds a row's three taps with the same
 * expression, dw_k3, so results do not depend on which rows are paired (the thread count). */
#if FC_VEC_BYTES >= 64 && FC_VEC_BYTES / FC_T_BYTES == 16
#define FC_DW_K3 1
#define FC_DW_SHIFT1(a, b) \
    __builtin_shufflevector(a, b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
#define FC_DW_SHIFT2(a, b) \
    __builtin_shufflevector(a, b, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)
#elif FC_VEC_BYTES >= 64 && FC_VEC_BYTES / FC_T_BYTES == 8
#define FC_DW_K3 1
#define FC_DW_SHIFT1(a, b) __builtin_shufflevector(a, b, 1, 2, 3, 4, 5, 6, 7, 8)
#define FC_DW_SHIFT2(a, b) __builtin_shufflevector(a, b, 2, 3, 4, 5, 6, 7, 8, 9)
#else
#define FC_DW_K3 0
#endif
#if FC_DW_K3
/* acc + the row's three taps (s1, s2: cur shifted by one and two columns) */
FC_INLINE FC_VEC FC_LOCAL(dw_k3)(FC_VEC acc, FC_VEC cur, FC_VEC s1, FC_VEC s2, FC_VEC w0,
                                  FC_VEC w1, FC_VEC w2)
{
    return acc + (w0 * cur + w1 * s1 + w2 * s2);
}
#endif

/* One tile of twv vectors at column ow0 of an output row: y[ow0 + i] = bias + sum over the
 * nrows input rows r and the KW taps kw of wrow[r][kw] * rowp[r][kw_off[kw] + ow0 + i], for
 * i < valid (the staged rows are readable up to a full tile). */
FC_INLINE void FC_LOCAL(dw_tile)(const int twv, const int k3, ptrdiff_t nrows,
                                 const FC_T *const *rowp, const FC_T *const *wrow,
                                 ptrdiff_t kw_n, const ptrdiff_t *kw_off, ptrdiff_t ow0,
                                 ptrdiff_t valid, FC_T add, FC_T *yr)
{
    FC_VEC acc[FC_DW_TWV];
    for (int v = 0; v < twv; v++) acc[v] = add - (FC_VEC){0};
    for (ptrdiff_t r = 0; r < nrows; r++) {
        const FC_T *xr = rowp[r] + ow0;
        const FC_T *wr = wrow[r];
#if FC_DW_K3
        if (k3) {
            /* x - 0 is x for every x (-0 included), so these are plain broadcasts */
            const FC_VEC w0 = wr[0] - (FC_VEC){0}, w1 = wr[1] - (FC_VEC){0},
                         w2 = wr[2] - (FC_VEC){0};
            FC_VEC cur = *(const FC_VECU *)xr;
            for (int v = 0; v < twv; v++) {
                const FC_VEC nxt = *(const FC_VECU *)(xr + (v + 1) * FC_L);
                acc[v] = FC_LOCAL(dw_k3)(acc[v], cur, FC_DW_SHIFT1(cur, nxt),
                                         FC_DW_SHIFT2(cur, nxt), w0, w1, w2);
                cur = nxt;
            }
            continue;
        }
#endif
        for (ptrdiff_t kw = 0; kw < kw_n; kw++) {
            const FC_T *xp = xr + kw_off[kw];
            const FC_VEC w = wr[kw] - (FC_VEC){0};
            for (int v = 0; v < twv; v++) acc[v] += w * *(const FC_VECU *)(xp + v * FC_L);
        }
    }
    if (valid == (ptrdiff_t)twv * FC_L) {
        for (int v = 0; v < twv; v++) *(FC_VECU *)(yr + ow0 + v * FC_L) = acc[v];
    } else {
        int full = (int)(valid / FC_L);
        for (int v = 0; v < full; v++) *(FC_VECU *)(yr + ow0 + v * FC_L) = acc[v];
        FC_T tmp[FC_L];
        *(FC_VECU *)tmp = acc[full < twv ? full : twv - 1];
        for (ptrdiff_t i = (ptrdiff_t)full * FC_L; i < valid; i++)
            yr[ow0 + i] = tmp[i - full * FC_L];
    }
}

/* One output row of width ow: full tiles, then one tile of the vectors that remain. */
static void FC_LOCAL(dw_row)(ptrdiff_t nrows, const FC_T *const *rowp, const FC_T *const *wrow,
                             ptrdiff_t kw_n, const ptrdiff_t *kw_off, ptrdiff_t ow, FC_T add,
                             FC_T *yr, const int k3)
{
#define FC_DW_TILE(TWV, VALID)                                                                \
    do {                                                                                      \
        if (FC_DW_K3 && k3)                                                                   \
            FC_LOCAL(dw_tile)(TWV, 1, nrows, rowp, wrow, kw_n, kw_off, ow0, VALID, add, yr);  \
        else                                                                                  \
            FC_LOCAL(dw_tile)(TWV, 0, nrows, rowp, wrow, kw_n, kw_off, ow0, VALID, add, yr);  \
    } while (0)
    ptrdiff_t ow0 = 0;
    for (; ow0 + FC_DW_TW <= ow; ow0 += FC_DW_TW) FC_DW_TILE(FC_DW_TWV, FC_DW_TW);
    ptrdiff_t rest = ow - ow0;
    if (rest <= 0) return;
    /* constant tile widths so the accumulators stay in registers */
    switch ((rest + FC_L - 1) / FC_L) {
    case 1: FC_DW_TILE(1, rest); break;
    case 2: FC_DW_TILE(2, rest); break;
    case 3: FC_DW_TILE(3, rest); break;
    case 4: FC_DW_TILE(4, rest); break;
    case 5: FC_DW_TILE(5, rest); break;
    case 6: FC_DW_TILE(6, rest); break;
    case 7: FC_DW_TILE(7, rest); break;
    default: FC_DW_TILE(8, rest); break;
    }
#undef FC_DW_TILE
}

#if FC_VEC_BYTES >= 64
/* Two output rows at once (32 vector registers hold both tiles): input rows shared by both
 * are loaded once. Row r serves the first output row with weights wa[r], the second with wb[r]
 * (either may be NULL: that row is outside the output row's kernel window). */
#define FC_DW_PAIR 1
FC_INLINE void FC_LOCAL(dw_tile2)(const int twv, const int k3, ptrdiff_t nrows,
                                  const FC_T *const *rowp, const FC_T *const *wa,
                                  const FC_T *const *wb, ptrdiff_t kw_n,
                                  const ptrdiff_t *kw_off, ptrdiff_t ow0, ptrdiff_t valid,
                                  FC_T add, FC_T *ya, FC_T *yb)
{
    FC_VEC acc_a[FC_DW_TWV], acc_b[FC_DW_TWV];
    for (int v = 0; v < twv; v++) acc_a[v] = acc_b[v] = add - (FC_VEC){0};
    for (ptrdiff_t r = 0; r < nrows; r++) {
        const FC_T *xr = rowp[r] + ow0;
        const FC_T *wra = wa[r], *wrb = wb[r];
#if FC_DW_K3
        if (k3) {
            const FC_T *wpa = wra ? wra : wrb, *wpb = wrb ? wrb : wra;
            const FC_VEC a0 = wpa[0] - (FC_VEC){0}, a1 = wpa[1] - (FC_VEC){0},
                         a2 = wpa[2] - (FC_VEC){0};
            const FC_VEC b0 = wpb[0] - (FC_VEC){0}, b1 = wpb[1] - (FC_VEC){0},
                         b2 = wpb[2] - (FC_VEC){0};
            FC_VEC cur = *(const FC_VECU *)xr;
            for (int v = 0; v < twv; v++) {
                const FC_VEC nxt = *(const FC_VECU *)(xr + (v + 1) * FC_L);
                const FC_VEC s1 = FC_DW_SHIFT1(cur, nxt), s2 = FC_DW_SHIFT2(cur, nxt);
                if (wra) acc_a[v] = FC_LOCAL(dw_k3)(acc_a[v], cur, s1, s2, a0, a1, a2);
                if (wrb) acc_b[v] = FC_LOCAL(dw_k3)(acc_b[v], cur, s1, s2, b0, b1, b2);
                cur = nxt;
            }
            continue;
        }
#endif
        for (ptrdiff_t kw = 0; kw < kw_n; kw++) {
            const FC_T *xp = xr + kw_off[kw];
            FC_VEC xv[FC_DW_TWV];
            for (int v = 0; v < twv; v++) xv[v] = *(const FC_VECU *)(xp + v * FC_L);
            if (wra) {
                const FC_VEC w = wra[kw] - (FC_VEC){0};
                for (int v = 0; v < twv; v++) acc_a[v] += w * xv[v];
            }
            if (wrb) {
                const FC_VEC w = wrb[kw] - (FC_VEC){0};
                for (int v = 0; v < twv; v++) acc_b[v] += w * xv[v];
            }
        }
    }
    FC_T *ys[2] = {ya, yb};
    for (int k = 0; k < 2; k++) {
        FC_VEC *acc = k ? acc_b : acc_a;
        FC_T *yr = ys[k];
        if (valid == (ptrdiff_t)twv * FC_L) {
            for (int v = 0; v < twv; v++) *(FC_VECU *)(yr + ow0 + v * FC_L) = acc[v];
        } else {
            int full = (int)(valid / FC_L);
            for (int v = 0; v < full; v++) *(FC_VECU *)(yr + ow0 + v * FC_L) = acc[v];
            FC_T tmp[FC_L];
            *(FC_VECU *)tmp = acc[full < twv ? full : twv - 1];
            for (ptrdiff_t i = (ptrdiff_t)full * FC_L; i < valid; i++)
                yr[ow0 + i] = tmp[i - full * FC_L];
        }
    }
}

static void FC_LOCAL(dw_row2)(ptrdiff_t nrows, const FC_T *const *rowp, const FC_T *const *wa,
                              const FC_T *const *wb, ptrdiff_t kw_n, const ptrdiff_t *kw_off,
                              ptrdiff_t ow, FC_T add, FC_T *ya, FC_T *yb, const int k3)
{
#define FC_DW_TILE2(TWV, VALID)                                                               \
    do {                                                                                      \
        if (k3)                                                                               \
            FC_LOCAL(dw_tile2)(TWV, 1, nrows, rowp, wa, wb, kw_n, kw_off, ow0, VALID, add, ya, \
                               yb);                                                           \
        else                                                                                  \
            FC_LOCAL(dw_tile2)(TWV, 0, nrows, rowp, wa, wb, kw_n, kw_off, ow0, VALID, add, ya, \
                               yb);                                                           \
    } while (0)
    ptrdiff_t ow0 = 0;
    for (; ow0 + FC_DW_TW <= ow; ow0 += FC_DW_TW) FC_DW_TILE2(FC_DW_TWV, FC_DW_TW);
    ptrdiff_t rest = ow - ow0;
    if (rest <= 0) return;
    switch ((rest + FC_L - 1) / FC_L) {
    case 1: FC_DW_TILE2(1, rest); break;
    case 2: FC_DW_TILE2(2, rest); break;
    case 3: FC_DW_TILE2(3, rest); break;
    case 4: FC_DW_TILE2(4, rest); break;
    case 5: FC_DW_TILE2(5, rest); break;
    case 6: FC_DW_TILE2(6, rest); break;
    case 7: FC_DW_TILE2(7, rest); break;
    default: FC_DW_TILE2(8, rest); break;
    }
#undef FC_DW_TILE2
}
#else
#define FC_DW_PAIR 0
#endif

/* Input row xr (length w) into a scratch row of nph phases of plen elements: padded position
 * q = iw + pad with q % sw == ph_val[k] goes to phase k, index q / sw; everything else is zero.
 * (Only the phases some tap reads are staged: at most KW of them, whatever the stride.) */
static void FC_LOCAL(dw_stage_row)(const FC_T *xr, ptrdiff_t w, ptrdiff_t pad, ptrdiff_t sw,
                                   ptrdiff_t plen, ptrdiff_t nph, const ptrdiff_t *ph_val,
                                   FC_T *dst)
{
    if (sw == 1) {
        /* short rows: whole-vector stores beat three libc calls per row (measured: a third of
         * the time of a 112 x 112 layer). The zero vectors may run past the lead (the copy
         * overwrites them) and past plen (the row has FC_L elements of slack). */
        ptrdiff_t lead = FC_MIN(pad, plen), n = FC_MAX(FC_MIN(w, plen - lead), 0), i = 0;
        const FC_VEC zero = {0};
        for (i = 0; i < lead; i += FC_L) *(FC_VECU *)(dst + i) = zero;
        FC_T *d = dst + lead;
        if (n >= FC_L) {
            for (i = 0; i + FC_L <= n; i += FC_L) *(FC_VECU *)(d + i) = *(const FC_VECU *)(xr + i);
            if (i < n) /* the last, overlapping vector */
                *(FC_VECU *)(d + n - FC_L) = *(const FC_VECU *)(xr + n - FC_L);
        } else {
            for (i = 0; i < n; i++) d[i] = xr[i];
        }
        for (i = lead + n; i < plen; i += FC_L) *(FC_VECU *)(dst + i) = zero;
        return;
    }
    for (ptrdiff_t k = 0; k < nph; k++) {
        const ptrdiff_t p = ph_val[k];
        FC_T *d = dst + k * plen;
        /* iw with (iw + pad) % sw == p: iw = first + j*sw, landing at index (iw + pad) / sw */
        ptrdiff_t first = ((p - pad) % sw + sw) % sw;
        ptrdiff_t at = (first + pad) / sw;
        ptrdiff_t count = first < w ? (w - 1 - first) / sw + 1 : 0;
        count = FC_MAX(FC_MIN(count, plen - at), 0);
        at = FC_MIN(at, plen);
        memset(d, 0, (size_t)at * sizeof(FC_T));
        const FC_T *s = xr + first;
        ptrdiff_t j = 0;
#if FC_VEC_BYTES / FC_T_BYTES > 1
        if (sw == 2) /* even lanes of two vectors, while both stay inside the row */
            for (; j + FC_L <= count && first + 2 * (j + FC_L) <= w; j += FC_L) {
                FC_VEC a = *(const FC_VECU *)(s + 2 * j), b = *(const FC_VECU *)(s + 2 * j + FC_L);
                *(FC_VECU *)(d + at + j) = FC_EVEN_LANES(a, b);
            }
#endif
        for (; j < count; j++) d[at + j] = s[j * sw];
        memset(d + at + count, 0, (size_t)(plen - at - count) * sizeof(FC_T));
    }
}

/* ---- 3x3, stride 1 or 2 (the same in H and W), dilation 1, pad 0 or 1 along W ("k3r") ----
 *
 * MobileNet's depthwise layers, without staging: the unit reads its input rows where they
 * are. A strip of V vectors of output columns goes down the unit's output rows; each input
 * row is loaded once, a vector at a time (aligned to the row start), its three taps are
 * built in registers (shifts across neighbouring vectors for stride 1; even/odd lanes and a
 * shift for stride 2; zeros outside the row), and added into the accumulators of every output
 * row that reads it (3 for stride 1, 2 for stride 2): rows live in registers, not in scratch.
 * Rows outside the input in H are zero vectors, multiplied like the others (0 * Inf = NaN).
 * Every output element is bias + (w[0][0..2] . row 0) + (w[1][..] . row 1) + (w[2][..] . row
 * 2), added in that order whatever the strip, block or thread, so the answer does not depend
 * on the thread count. */
#define FC_K3R_LIKELY(x) __builtin_expect(!!(x), 1)
/* the loops over a strip's vectors, unrolled so that its accumulators stay in registers */
#define FC_K3R_UNROLL _Pragma("GCC unroll 8")
#if FC_VEC_BYTES / FC_T_BYTES == 16
#define FC_K3R_A1(a, b) \
    __builtin_shufflevector(a, b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16)
#define FC_K3R_A2(a, b) \
    __builtin_shufflevector(a, b, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)
#define FC_K3R_AL(a, b) \
    __builtin_shufflevector(a, b, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30)
#define FC_K3R_ODD(a, b) \
    __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define FC_K3R_V 4
#elif FC_VEC_BYTES / FC_T_BYTES == 8
#define FC_K3R_A1(a, b) __builtin_shufflevector(a, b, 1, 2, 3, 4, 5, 6, 7, 8)
#define FC_K3R_A2(a, b) __builtin_shufflevector(a, b, 2, 3, 4, 5, 6, 7, 8, 9)
#define FC_K3R_AL(a, b) __builtin_shufflevector(a, b, 7, 8, 9, 10, 11, 12, 13, 14)
#define FC_K3R_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#define FC_K3R_V (FC_VEC_BYTES >= 64 ? 4 : 2)
#elif FC_VEC_BYTES / FC_T_BYTES == 4
#define FC_K3R_A1(a, b) __builtin_shufflevector(a, b, 1, 2, 3, 4)
#define FC_K3R_A2(a, b) __builtin_shufflevector(a, b, 2, 3, 4, 5)
#define FC_K3R_AL(a, b) __builtin_shufflevector(a, b, 3, 4, 5, 6)
#define FC_K3R_ODD(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#define FC_K3R_V (FC_VEC_BYTES >= 32 ? 2 : 3)
#elif FC_VEC_BYTES / FC_T_BYTES == 2
#define FC_K3R_A1(a, b) __builtin_shufflevector(a, b, 1, 2)
#define FC_K3R_A2(a, b) (b)
#define FC_K3R_AL(a, b) __builtin_shufflevector(a, b, 1, 2)
#define FC_K3R_ODD(a, b) __builtin_shufflevector(a, b, 1, 3)
#define FC_K3R_V 3
#endif

/* Columns [c, c + FC_L) of input row xr (NULL: a row of zeros) of width iw, zero outside;
 * the edges out of line, so that the strips keep their accumulators in registers. */
static __attribute__((noinline)) FC_VEC FC_LOCAL(k3r_load_edge)(const FC_T *xr, ptrdiff_t c,
                                                               ptrdiff_t iw)
{
    /* lanes [lo, hi) lie inside the row (the caller has ruled out none) */
    const int lo = (int)FC_MAX(-c, 0), hi = (int)FC_MIN(iw - c, FC_L);
#if defined(__AVX512F__) && FC_VEC_BYTES == 64
    /* a masked load: the lanes outside the row are neither read nor faulted on */
    const unsigned m = ((hi >= 32 ? 0u : 1u << hi) - 1u) & ~((1u << lo) - 1u);
#if FC_T_BYTES == 4
    return (FC_VEC)_mm512_maskz_loadu_ps((__mmask16)m, xr + c);
#else
    return (FC_VEC)_mm512_maskz_loadu_pd((__mmask8)m, xr + c);
#endif
#else
    FC_T tmp[FC_L];
    *(FC_VECU *)tmp = (FC_VEC){0};
    for (int i = lo; i < hi; i++) tmp[i] = xr[c + i];
    return *(const FC_VECU *)tmp;
#endif
}

FC_INLINE FC_VEC FC_LOCAL(k3r_load)(const FC_T *xr, ptrdiff_t c, ptrdiff_t iw)
{
    if (FC_K3R_LIKELY(xr && c >= 0 && c + FC_L <= iw)) return *(const FC_VECU *)(xr + c);
    if (!xr || c + FC_L <= 0 || c >= iw) return (FC_VEC){0};
    return FC_LOCAL(k3r_load_edge)(xr, c, iw);
}

/* The three taps t[0..2] of output vector v of a strip at output column ow0 of input row xr:
 * t[kw][i] = x[(ow0 + v*L + i) * S - P + kw]. st[]: the sliding state (S == 1: input vectors
 * at v-1, v, v+1; S == 2: their even and odd lanes), kept by the caller between v's. */
FC_INLINE void FC_LOCAL(k3r_taps)(const int S, const int P, const FC_T *xr, ptrdiff_t ow0,
                                  int v, ptrdiff_t iw, FC_VEC *st, FC_VEC *t)
{
    if (S == 1) {
        /* st: prev, cur, next (columns ow0 + (v-1, v, v+1) * L) */
        if (v == 0) {
            st[0] = P ? FC_LOCAL(k3r_load)(xr, ow0 - FC_L, iw) : (FC_VEC){0};
            st[1] = FC_LOCAL(k3r_load)(xr, ow0, iw);
        } else {
            st[0] = st[1];
            st[1] = st[2];
        }
        st[2] = FC_LOCAL(k3r_load)(xr, ow0 + (v + 1) * FC_L, iw);
        if (P) {
            t[0] = FC_K3R_AL(st[0], st[1]);
            t[1] = st[1];
            t[2] = FC_K3R_A1(st[1], st[2]);
        } else {
            t[0] = st[1];
            t[1] = FC_K3R_A1(st[1], st[2]);
            t[2] = FC_K3R_A2(st[1], st[2]);
        }
    } else {
        /* st: even, odd lanes at v-1 (0, 1), v (2, 3), v+1 (4, 5); input column 2*(ow0+vL) */
        const ptrdiff_t b = 2 * (ow0 + (ptrdiff_t)v * FC_L);
        if (v == 0) {
            if (P) {
                FC_VEC a = FC_LOCAL(k3r_load)(xr, b - 2 * FC_L, iw);
                FC_VEC c = FC_LOCAL(k3r_load)(xr, b - FC_L, iw);
                st[1] = FC_K3R_ODD(a, c);
            }
            FC_VEC a = FC_LOCAL(k3r_load)(xr, b, iw), c = FC_LOCAL(k3r_load)(xr, b + FC_L, iw);
            st[2] = FC_EVEN_LANES(a, c);
            st[3] = FC_K3R_ODD(a, c);
        } else if (P) {
            st[1] = st[3];
            FC_VEC a = FC_LOCAL(k3r_load)(xr, b, iw), c = FC_LOCAL(k3r_load)(xr, b + FC_L, iw);
            st[2] = FC_EVEN_LANES(a, c);
            st[3] = FC_K3R_ODD(a, c);
        } else {
            st[2] = st[4];
            st[3] = st[5];
        }
        if (P) {
            t[0] = FC_K3R_AL(st[1], st[3]);
            t[1] = st[2];
            t[2] = st[3];
        } else {
            FC_VEC a = FC_LOCAL(k3r_load)(xr, b + 2 * FC_L, iw);
            FC_VEC c = FC_LOCAL(k3r_load)(xr, b + 3 * FC_L, iw);
            st[4] = FC_EVEN_LANES(a, c);
            st[5] = FC_K3R_ODD(a, c);
            t[0] = st[2];
            t[1] = st[3];
            t[2] = FC_K3R_A1(st[2], st[4]);
        }
    }
}

/* acc[v] += w[0] * taps[0] + ... in tap order, one FMA each (row r's contribution) */
#define FC_K3R_ADD(acc, wk, t) \
    do {                       \
        acc += (wk)[0] * (t)[0]; \
        acc += (wk)[1] * (t)[1]; \
        acc += (wk)[2] * (t)[2]; \
    } while (0)

/* Output rows [oh0, oh1) of plane yp (width ow), columns [ow0, ow0 + V*L) (clipped to ow),
 * from input plane xp (ih x iw) with weights w (3 x 3) and bias `add`; pad_h rows above. */
FC_INLINE void FC_LOCAL(k3r_strip)(const int S, const int P, const int V, const FC_T *xp,
                                   ptrdiff_t ih, ptrdiff_t iw, ptrdiff_t pad_h, const FC_T *w,
                                   FC_T add, FC_T *yp, ptrdiff_t ow, ptrdiff_t oh0,
                                   ptrdiff_t oh1, ptrdiff_t ow0)
{
    /* scalar weights: broadcast by the FMAs (AVX-512: from memory, for free) */
    const FC_T *wv[3] = {w, w + 3, w + 6};
    const FC_VEC bv = add - (FC_VEC){0};
    FC_VEC a0[FC_K3R_V], a1[FC_K3R_V], a2[FC_K3R_V], st[6], t[3];
#define FC_K3R_ROW(R) (FC_K3R_LIKELY((R) >= 0 && (R) < ih) ? xp + (R) * iw : (const FC_T *)NULL)
#define FC_K3R_STORE(ACC, OH)                                                    \
    do {                                                                         \
        FC_T *yr = yp + (OH) * ow;                                               \
        FC_K3R_UNROLL for (int v = 0; v < V; v++) {                              \
            const ptrdiff_t col = ow0 + (ptrdiff_t)v * FC_L;                     \
            if (FC_K3R_LIKELY(col + FC_L <= ow)) {                                   \
                *(FC_VECU *)(yr + col) = ACC[v];                                 \
            } else {                                                             \
                FC_T tmp[FC_L];                                                  \
                *(FC_VECU *)tmp = ACC[v];                                        \
                for (ptrdiff_t i = 0; i < ow - col; i++) yr[col + i] = tmp[i];   \
            }                                                                    \
        }                                                                        \
    } while (0)
    if (S == 1) {
        /* a0: row r (rows 0, 1 added), a1: row r + 1 (row 0 added) */
        const ptrdiff_t top = oh0 - pad_h;
        const FC_T *r0 = FC_K3R_ROW(top), *r1 = FC_K3R_ROW(top + 1);
        FC_K3R_UNROLL for (int v = 0; v < V; v++) {
            FC_LOCAL(k3r_taps)(1, P, r0, ow0, v, iw, st, t);
            a0[v] = bv;
            FC_K3R_ADD(a0[v], wv[0], t);
        }
        FC_K3R_UNROLL for (int v = 0; v < V; v++) {
            FC_LOCAL(k3r_taps)(1, P, r1, ow0, v, iw, st, t);
            a1[v] = bv;
            FC_K3R_ADD(a0[v], wv[1], t);
            FC_K3R_ADD(a1[v], wv[0], t);
        }
        for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
            const FC_T *r2 = FC_K3R_ROW(oh - pad_h + 2);
            FC_K3R_UNROLL for (int v = 0; v < V; v++) {
                FC_LOCAL(k3r_taps)(1, P, r2, ow0, v, iw, st, t);
                a2[v] = bv;
                FC_K3R_ADD(a0[v], wv[2], t);
                FC_K3R_ADD(a1[v], wv[1], t);
                FC_K3R_ADD(a2[v], wv[0], t);
            }
            FC_K3R_STORE(a0, oh);
            FC_K3R_UNROLL for (int v = 0; v < V; v++) {
                a0[v] = a1[v];
                a1[v] = a2[v];
            }
        }
    } else {
        /* a0: row r (row 0 added) */
        const FC_T *r0 = FC_K3R_ROW(2 * oh0 - pad_h);
        FC_K3R_UNROLL for (int v = 0; v < V; v++) {
            FC_LOCAL(k3r_taps)(2, P, r0, ow0, v, iw, st, t);
            a0[v] = bv;
            FC_K3R_ADD(a0[v], wv[0], t);
        }
        for (ptrdiff_t oh = oh0; oh < oh1; oh++) {
            const FC_T *r1 = FC_K3R_ROW(2 * oh - pad_h + 1), *r2 = FC_K3R_ROW(2 * oh - pad_h + 2);
            FC_K3R_UNROLL for (int v = 0; v < V; v++) {
                FC_LOCAL(k3r_taps)(2, P, r1, ow0, v, iw, st, t);
                FC_K3R_ADD(a0[v], wv[1], t);
            }
            FC_K3R_UNROLL for (int v = 0; v < V; v++) {
                FC_LOCAL(k3r_taps)(2, P, r2, ow0, v, iw, st, t);
                a1[v] = bv;
                FC_K3R_ADD(a0[v], wv[2], t);
                FC_K3R_ADD(a1[v], wv[0], t);
            }
            FC_K3R_STORE(a0, oh);
            FC_K3R_UNROLL for (int v = 0; v < V; v++) a0[v] = a1[v];
        }
    }
#undef FC_K3R_ROW
#undef FC_K3R_STORE
}

/* One unit: output rows [oh0, oh1) of output channel o, all strips. */
static void FC_LOCAL(k3r_unit)(const int S, const int P, const FC_T *xp, ptrdiff_t ih,
                               ptrdiff_t iw, ptrdiff_t pad_h, const FC_T *w, FC_T add,
                               FC_T *yp, ptrdiff_t ow, ptrdiff_t oh0, ptrdiff_t oh1)
{
#define FC_K3R_CASE(SS, PP)                                                                    \
    if (S == SS && P == PP) {                                                                  \
        for (ptrdiff_t ow0 = 0; ow0 < ow; ow0 += FC_K3R_V * FC_L) {                           \
            const ptrdiff_t nv = FC_MIN((ow - ow0 + FC_L - 1) / FC_L, FC_K3R_V);               \
            switch (nv) {                                                                      \
            case 1:                                                                            \
                FC_LOCAL(k3r_strip)(SS, PP, 1, xp, ih, iw, pad_h, w, add, yp, ow, oh0, oh1,   \
                                    ow0);                                                      \
                break;                                                                         \
            case 2:                                                                            \
                FC_LOCAL(k3r_strip)(SS, PP, 2, xp, ih, iw, pad_h, w, add, yp, ow, oh0, oh1,   \
                                    ow0);                                                      \
                break;                                                                         \
            case 3:                                                                            \
                FC_LOCAL(k3r_strip)(SS, PP, FC_MIN(3, FC_K3R_V), xp, ih, iw, pad_h, w, add,   \
                                    yp, ow, oh0, oh1, ow0);                                    \
                break;                                                                         \
            default:                                                                           \
                FC_LOCAL(k3r_strip)(SS, PP, FC_K3R_V, xp, ih, iw, pad_h, w, add, yp, ow, oh0, \
                                    oh1, ow0);                                                 \
                break;                                                                         \
            }                                                                                  \
        }                                                                                      \
        return;                                                                                \
    }
    FC_K3R_CASE(1, 1)
    FC_K3R_CASE(1, 0)
    FC_K3R_CASE(2, 1)
    FC_K3R_CASE(2, 0)
#undef FC_K3R_CASE
}

/* The k3r path, when the geometry is one it serves (else 0: use the staged path). */
static int FC_LOCAL(k3r)(const fc_conv_geometry *g, const FC_T *x, const FC_T *w,
                         const FC_T *bias, FC_T *y, int nthreads)
{
    const ptrdiff_t S = g->s[2], P = g->pad[2];
    if (g->k[0] != 1 || g->k[1] != 3 || g->k[2] != 3 || g->in[0] != 1 || g->out[0] != 1
        || g->pad[0] != 0 || g->d[1] != 1 || g->d[2] != 1 || g->s[1] != S || (S != 1 && S != 2)
        || (P != 0 && P != 1) || g->pad[1] < 0)
        return 0;
    const ptrdiff_t C = g->c_in, mult = g->c_out / g->c_in, IH = g->in[1], IW = g->in[2];
    const ptrdiff_t OH = g->out[1], OW = g->out[2], pad_h = g->pad[1];
    const ptrdiff_t planes = g->n * g->c_out;
    /* rows per unit: whole planes when they are enough to share between the threads (a
     * block's first rows are read once more: ~2 / ohb of its work) */
    ptrdiff_t blocks = 1;
    if (nthreads > 1 && planes < 8 * nthreads)
        blocks = FC_MIN((8 * nthreads + planes - 1) / planes, FC_MAX(OH / 8, 1));
    const ptrdiff_t ohb = (OH + blocks - 1) / blocks;
    blocks = (OH + ohb - 1) / ohb;
    const ptrdiff_t units = planes * blocks;
    /* units handed out in chunks of about 1/16 of a thread's share: small planes (7 x 7) are
     * a fraction of a microsecond each, less than fetching the shared counter */
    const int chunk = (int)FC_MAX(units / (16 * (ptrdiff_t)nthreads), 1);
    /* The first thread arrives last at the region's end. Under OMP_WAIT_POLICY=PASSIVE (as
     * benchmarks/bench_conv.py sets it) a thread reaching the final barrier early sleeps at
     * once, and the first thread, woken only when the last one arrives, then costs a wake-up
     * of its idle vCPU. So the others count themselves done and the first thread waits for
     * them with a bounded spin (they are on their last chunk), then a moment more so that
     * they are inside the barrier. Measured, mobilenet.dw at 2 threads, interleaved A/B in
     * one process, 3 runs: median 0.066 / 0.069 / 0.098 ms against 0.080 / 0.086 / 0.110
     * without. (Spinning with PAUSE lost instead: the hypervisor's pause-loop exits.) */
    int done = 0;
    FC_FP_CAPTURE();
    FC_OMP(parallel num_threads(nthreads) if (nthreads > 1))
    {
        FC_FP_ADOPT();
        FC_OMP(for schedule(dynamic, chunk) nowait)
        for (ptrdiff_t unit = 0; unit < units; unit++) {
            const ptrdiff_t blk = unit % blocks, plane = unit / blocks;
            const ptrdiff_t o = plane % g->c_out, n = plane / g->c_out, c = o / mult;
            const ptrdiff_t oh0 = blk * ohb, oh1 = FC_MIN(oh0 + ohb, OH);
            FC_LOCAL(k3r_unit)((int)S, (int)P, x + (n * C + c) * IH * IW, IH, IW, pad_h,
                               w + o * 9, bias ? bias[o] : (FC_T)0, y + plane * OH * OW, OW,
                               oh0, oh1);
        }
        const int others = fc_omp_num_threads() - 1;
        if (others > 0 && fc_omp_thread_num() != 0) {
            FC_OMP(atomic update)
            done++;
        } else if (others > 0) {
            /* ~10-20 us at most: a thread sharing its CPU with a late one must not hold it */
            for (long spin = 0; spin < 20000; spin++) {
                int d;
                FC_OMP(atomic read)
                d = done;
                if (d >= others) break;
            }
            for (volatile int k = 0; k < 300; k++) {
            }
        }
        FC_FP_RESTORE();
    }
    return 1;
}
#undef FC_K3R_A1
#undef FC_K3R_A2
#undef FC_K3R_AL
#undef FC_K3R_ODD
#undef FC_K3R_V
#undef FC_K3R_ADD
#undef FC_K3R_LIKELY
#undef FC_K3R_UNROLL

int FC_FN(depthwise)(const fc_conv_geometry *g, const FC_T *x, const FC_T *w, const FC_T *bias,
                     FC_T *y, int nthreads)
{
    if (FC_LOCAL(k3r)(g, x, w, bias, y, nthreads)) return FC_CONV_OK;
    const ptrdiff_t C = g->c_in, mult = g->c_out / g->c_in;
    const ptrdiff_t KD = g->k[0], KH = g->k[1], KW = g->k[2];
    const ptrdiff_t ID = g->in[0], IH = g->in[1], IW = g->in[2];
    const ptrdiff_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const ptrdiff_t sd = g->s[0], sh = g->s[1], sw = g->s[2];
    const ptrdiff_t dd = g->d[0], dh = g->d[1], dw = g->d[2];
    const ptrdiff_t nrow_all = KD * KH;
    /* a phase holds the tiles' reach: OW rounded up to a full tile + the kernel's span */
    const ptrdiff_t owpad = (OW + FC_DW_TW - 1) / FC_DW_TW * FC_DW_TW;
    const ptrdiff_t plen = owpad + (KW - 1) * dw / sw + 1;
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
    /* (plus a vector of slack for dw_stage_row's whole-vector zeroing) */
    const ptrdiff_t row_len = (nph * plen + 2 * FC_L - 1) / FC_L * FC_L;
    /* output rows per unit: staged rows within FC_DW_STAGE_BYTES, and enough units to share */
    const ptrdiff_t span_h = (KH - 1) * dh + 1;
    ptrdiff_t rows_fit = FC_DW_STAGE_BYTES / (ptrdiff_t)sizeof(FC_T) / (KD * row_len);
    ptrdiff_t ohb = rows_fit > span_h ? (rows_fit - span_h) / sh + 1 : 1;
    const ptrdiff_t planes = g->n * C * OD;
    if (nthreads > 1 && planes < 4 * nthreads) {
        ptrdiff_t want = (4 * nthreads + planes - 1) / planes;
        ohb = FC_MIN(ohb, FC_MAX((OH + want - 1) / want, 1));
    }
    ohb = FC_MAX(FC_MIN(ohb, OH), 1);
    const ptrdiff_t blocks = (OH + ohb - 1) / ohb, units = planes * blocks;
    const ptrdiff_t stage_rows = FC_MIN((ohb - 1) * sh + span_h, IH);
    /* pairs of output rows: input row `top + k` feeds kernel row pair_a[k] of the first output
     * row and pair_b[k] of the second (-1: none); the same for every pair, so tabulated once
     * (k < sh + span_h <= IH whenever the pair path runs) */
    const ptrdiff_t pair_rows = FC_MIN(sh + span_h, IH);
    ptrdiff_t *pair_a = (ptrdiff_t *)fc_malloc((size_t)(2 * pair_rows) * sizeof(ptrdiff_t));
    if (!pair_a) {
        fc_free(ph_val);
        return FC_CONV_NOMEM;
    }
    ptrdiff_t *pair_b = pair_a + pair_rows;
    for (ptrdiff_t k = 0; k < pair_rows; k++) {
        const ptrdiff_t kb = k - sh;
        pair_a[k] = k % dh == 0 && k / dh < KH ? k / dh : -1;
        pair_b[k] = kb >= 0 && kb % dh == 0 && kb / dh < KH ? kb / dh : -1;
    }
    int failed = 0;

    FC_FP_CAPTURE();
    FC_OMP(parallel num_threads(nthreads) if (nthreads > 1))
    {
        FC_FP_ADOPT();
        /* the staged rows, then one row of zeros: the rows outside the input (zero padding
         * in D and H) are multiplied like the others, so 0 * Inf gives NaN as it should */
        FC_T *rows = (FC_T *)fc_malloc((size_t)((KD * stage_rows + 1) * row_len) * sizeof(FC_T));
        const FC_T *zero = rows ? rows + KD * stage_rows * row_len : NULL;
        if (rows) memset(rows + KD * stage_rows * row_len, 0, (size_t)row_len * sizeof(FC_T));
        /* the input rows of the current output row(s) and their weight rows (a pair of output
         * rows reads at most KD * min(KH * dh + sh, IH) input rows, one row KD * KH) */
        const ptrdiff_t nrow_max = KD * FC_MAX(KH, FC_MIN(span_h + sh, IH));
        const FC_T **rowp = (const FC_T **)fc_malloc((size_t)nrow_max * sizeof(FC_T *));
        const FC_T **wa = (const FC_T **)fc_malloc((size_t)nrow_max * sizeof(FC_T *));
        const FC_T **wb = (const FC_T **)fc_malloc((size_t)nrow_max * sizeof(FC_T *));
        /* where tap kw starts in a staged row: its phase, then its index in the phase */
        ptrdiff_t *kw_off = (ptrdiff_t *)fc_malloc((size_t)KW * sizeof(ptrdiff_t));
        if (kw_off)
            for (ptrdiff_t kw = 0; kw < KW; kw++)
                kw_off[kw] = ph_idx[kw] * plen + (kw * dw) / sw;
        if (!rows || !rowp || !wa || !wb || !kw_off) {
            FC_OMP(atomic write)
            failed = 1;
        } else {
            /* dynamic: on a shared machine one slow thread must not hold up the rest */
            FC_OMP(for schedule(dynamic, 1))
            for (ptrdiff_t unit = 0; unit < units; unit++) {
                const ptrdiff_t blk = unit % blocks, plane = unit / blocks;
                const ptrdiff_t od = plane % OD, c = plane / OD % C, n = plane / (OD * C);
                const ptrdiff_t oh0 = blk * ohb, oh1 = FC_MIN(oh0 + ohb, OH);
                /* input rows [ih_lo, ih_hi) of this block, clipped to the input */
                const ptrdiff_t ih_lo = FC_MAX(oh0 * sh - g->pad[1], 0);
                const ptrdiff_t ih_hi = FC_MIN((oh1 - 1) * sh + (KH - 1) * dh - g->pad[1] + 1, IH);
                const FC_T *xc = x + (n * C + c) * ID * IH * IW;
                /* 3 taps at staged offsets 0, 1, 2: shifted in registers (dw_tile2) */
                const int k3 = KW == 3 && sw == 1 && dw == 1;
                const int d_inside = od * sd - g->pad[0] >= 0
                                     && od * sd + (KD - 1) * dd - g->pad[0] < ID;
                (void)d_inside; /* used by the pair path only */
                for (ptrdiff_t kd = 0; kd < KD; kd++) {
                    const ptrdiff_t id = od * sd + kd * dd - g->pad[0];
                    if (id < 0 || id >= ID) continue;
                    for (ptrdiff_t ih = ih_lo; ih < ih_hi; ih++)
                        FC_LOCAL(dw_stage_row)(xc + (id * IH + ih) * IW, IW, g->pad[2], sw, plen,
                                               nph, ph_val,
                                               rows + (kd * stage_rows + ih - ih_lo) * row_len);
                }
                for (ptrdiff_t j = 0; j < mult; j++) {
                    const ptrdiff_t o = c * mult + j;
                    const FC_T *wo = w + o * nrow_all * KW;
                    const FC_T add = bias ? bias[o] : (FC_T)0;
                    for (ptrdiff_t oh = oh0; oh < oh1;) {
#if FC_DW_PAIR
                        /* two output rows whose windows lie inside the input: the union of
                         * their input rows, each with the weight row it has for either output
                         * row (NULL: none) */
                        const ptrdiff_t top = oh * sh - g->pad[1];
                        if (oh + 1 < oh1 && d_inside && top >= 0 && top + sh + span_h <= IH) {
                            ptrdiff_t nrows = 0;
                            for (ptrdiff_t kd = 0; kd < KD; kd++) {
                                const FC_T *wr = wo + kd * KH * KW;
                                const FC_T *r0 = rows + (kd * stage_rows + top - ih_lo) * row_len;
                                for (ptrdiff_t k = 0; k < sh + span_h; k++) {
                                    if (pair_a[k] < 0 && pair_b[k] < 0) continue;
                                    wa[nrows] = pair_a[k] >= 0 ? wr + pair_a[k] * KW : NULL;
                                    wb[nrows] = pair_b[k] >= 0 ? wr + pair_b[k] * KW : NULL;
                                    rowp[nrows++] = r0 + k * row_len;
                                }
                            }
                            FC_T *ya = y + (((n * g->c_out + o) * OD + od) * OH + oh) * OW;
                            FC_LOCAL(dw_row2)(nrows, rowp, wa, wb, KW, kw_off, OW, add, ya,
                                              ya + OW, k3);
                            oh += 2;
                            continue;
                        }
#endif
                        /* one output row: its KD x KH input rows, the zero row outside */
                        ptrdiff_t nrows = 0;
                        for (ptrdiff_t kd = 0; kd < KD; kd++) {
                            const ptrdiff_t id = od * sd + kd * dd - g->pad[0];
                            for (ptrdiff_t kh = 0; kh < KH; kh++) {
                                const ptrdiff_t ih = oh * sh + kh * dh - g->pad[1];
                                rowp[nrows] = id < 0 || id >= ID || ih < 0 || ih >= IH
                                                  ? zero
                                                  : rows + (kd * stage_rows + ih - ih_lo)
                                                               * row_len;
                                wa[nrows] = wo + (kd * KH + kh) * KW;
                                nrows++;
                            }
                        }
                        FC_T *yr = y + (((n * g->c_out + o) * OD + od) * OH + oh) * OW;
                        FC_LOCAL(dw_row)(nrows, rowp, wa, KW, kw_off, OW, add, yr, k3);
                        oh++;
                    }
                }
            }
        }
        fc_free(rows);
        fc_free((void *)rowp);
        fc_free((void *)wa);
        fc_free((void *)wb);
        fc_free(kw_off);
        FC_FP_RESTORE();
    }
    fc_free(pair_a);
    fc_free(ph_val);
    return failed ? FC_CONV_NOMEM : FC_CONV_OK;
}

#undef FC_L
#undef FC_VEC
#undef FC_VECU
#undef FC_FN
#undef FC_LOCAL
#undef FC_DW_TWV
#undef FC_DW_TW
#undef FC_DW_STAGE_BYTES
#undef FC_DW_PAIR
#undef FC_DW_K3
#undef FC_DW_SHIFT1
#undef FC_DW_SHIFT2
#undef FC_EVEN_LANES
