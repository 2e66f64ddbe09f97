/* Deformable convolution (DCN v1, and v2 with a mask) on the packed GEMM.
 *
 * torchvision's deform_conv2d (= ONNX DeformConv): tap t = (i, j) of output pixel (oh, ow) in
 * offset group og reads the input at the fractional position
 *     h = oh*sh - ph + i*dh + offset[og][t][0][oh, ow],  w = ow*sw - pw + j*dw + offset[og][t][1][oh, ow]
 * by bilinear interpolation: zero if h <= -1, h >= H, w <= -1 or w >= W, else the four corners
 * (floor(h) + {0, 1}, floor(w) + {0, 1}) weighted (1 - lh or lh) * (1 - lw or lw), a corner
 * outside the input reading zero (never read); the value is multiplied by mask[og][t][oh, ow].
 * The input channels are split into `offset_groups` consecutive runs, one per offset group.
 *
 * Per (image, conv group): C (M x N) = A (M x K) . B (K x N) with M = c_out / groups,
 * K = c_in / groups * kH * kW, N = oH * oW, exactly as im2col (fastconv/im2col.h) with the same
 * packed A (fc_conv_pack_weight_*), except that B[(c, t)][p] is the sampled value. B never exists:
 * the GEMM asks `deform_pack_b` for one KC x NC block at a time, and the callback fills each
 * NR-column panel tap by tap: it tabulates the four corner indices and weights (mask included)
 * of the panel's NR pixels for one (offset group, tap) once, then writes the row of every input
 * channel of that offset group in the block from that table (NR-wide loops over pixels, which the
 * compiler vectorises with gathers where the ISA has them). The table is NR entries: it lives on
 * the stack and in L1, so nothing is allocated but the GEMM's own scratch.
 * Zero offsets give weights (1, 0, 0, 0) and so exactly the im2col B: the same GEMM, the same
 * bits as conv2d's im2col; integer offsets give exactly a shifted convolution.
 * Threads: as im2col (whole (image, group) items per thread, or the GEMM's threads).
 *
 * Contract (the Python front, fastconv.deform, validates everything): C-contiguous arrays of one
 * dtype; x (n, c_in, H, W), offset (n, 2 * offset_groups * kH * kW, oH, oW), mask (n,
 * offset_groups * kH * kW, oH, oW) or NULL, y (n, c_out, oH, oW), bias NULL or (c_out,);
 * the 2-D problem is the 3-D fc_conv_geometry with in[0] = out[0] = k[0] = 1;
 * offset_groups divides c_in; H * W, N and K fit an int32. Returns FC_CONV_OK or FC_CONV_NOMEM.
 *
 * This header has two parts: the declarations and ISA dispatch (always), and, when FC_T is
 * defined, the template that _isa/conv_<isa>.c includes once per dtype (needs FC_T, FC_DT,
 * FC_GEMM_DT, FC_ISA_NAME, FC_ISA_ENUM).
 */
#ifndef FASTCONV_DEFORM_H
#define FASTCONV_DEFORM_H

#include <stddef.h>
#include <stdint.h>

#include "fastconv/common.h"
#include "fastconv/conv.h"
#include "fastconv/isa.h"

#define FC_DEFORM_DECLARE_ISA(T, DT, ISA)                                                    \
    int fc_deform_conv_##DT##_##ISA(const fc_conv_geometry *g, ptrdiff_t offset_groups,      \
                                    const T *x, const T *offset, const T *mask,              \
                                    const T *packed_w, const T *bias, T *y, int nthreads);
#define FC_DEFORM_DECLARE_X(ENUM, ISA, _)      \
    FC_DEFORM_DECLARE_ISA(float, f32, ISA)     \
    FC_DEFORM_DECLARE_ISA(double, f64, ISA)
FC_FOR_EACH_ISA(FC_DEFORM_DECLARE_X, _)
#undef FC_DEFORM_DECLARE_X

/* fc_deform_conv_<dtype>(isa, ...): the kernels of `isa` (compiled in and runnable). */
#define FC_DEFORM_ARGS (g, offset_groups, x, offset, mask, packed_w, bias, y, nthreads)
#define FC_DEFORM_CASE(ENUM, ISA, DT) case ENUM: return fc_deform_conv_##DT##_##ISA FC_DEFORM_ARGS;
#define FC_DEFORM_DISPATCH(T, DT)                                                              \
    static inline int fc_deform_conv_##DT(int isa, const fc_conv_geometry *g,                 \
                                          ptrdiff_t offset_groups, const T *x, const T *offset, \
                                          const T *mask, const T *packed_w, const T *bias,     \
                                          T *y, int nthreads)                                  \
    {                                                                                          \
        switch (isa) {                                                                         \
            FC_FOR_EACH_SIMD_ISA(FC_DEFORM_CASE, DT)                                           \
        default: return fc_deform_conv_##DT##_scalar FC_DEFORM_ARGS;                           \
        }                                                                                      \
    }
FC_DEFORM_DISPATCH(float, f32)
FC_DEFORM_DISPATCH(double, f64)
#undef FC_DEFORM_DISPATCH
#undef FC_DEFORM_CASE

/* Largest NR of any GEMM config (the per-panel table has NR entries). */
#define FC_DEFORM_MAX_NR 128

#endif /* FASTCONV_DEFORM_H */

/* ---------------------------------------------------------------------------------------- */
#ifdef FC_T

#include <math.h>

#include "fastconv/fpstate.h"
#include "fastconv/gemm.h"
#include "fastconv/omp.h"

#define FC_DFN(name) \
    FC_CAT(FC_CAT(FC_CAT(fc_deform_, name), FC_CAT(_, FC_DT)), FC_CAT(_, FC_ISA_NAME))
#define FC_DLOCAL(name) FC_CAT(FC_CAT(name, _deform_), FC_DT)
#define FC_DGEMM FC_CAT(fc_gemm_, FC_DT)

typedef struct {
    const fc_conv_geometry *g;
    ptrdiff_t cpog;     /* input channels per offset group */
    ptrdiff_t c_first;  /* channel number (in the image) of x's first channel */
    const FC_T *x;      /* the (image, group) block: c_in / groups channel planes */
    const FC_T *offset; /* the image's offsets: (2 * offset_groups * kH * kW, N) */
    const FC_T *mask;   /* the image's mask: (offset_groups * kH * kW, N), or NULL */
    int nr;
} FC_DLOCAL(ctx);

/* One (offset group, tap) over one panel's NR pixels: column j is
 * w[0][j] * x[i[0][j]] + w[1][j] * x[i[1][j]] + w[2][j] * x[i[2][j]] + w[3][j] * x[i[3][j]],
 * the corners (h0, w0), (h0, w0 + 1), (h0 + 1, w0), (h0 + 1, w0 + 1). A corner outside the
 * input has its bit in `in` clear, weight 0 and index 0 (so every load stays inside the plane),
 * and the select in sample_row keeps whatever the plane holds there (a NaN) out of the sum.
 * `all`: every corner of every column is inside (the loop then has no selects). */
typedef struct {
    int32_t i[4][FC_DEFORM_MAX_NR];
    int32_t in[FC_DEFORM_MAX_NR];
    /* pair[0][j], pair[1][j]: where the upper and the lower corner pair start (i[0][j], i[2][j]
     * where a corner of the pair is inside, else 0); `pairs`: every such pair lies inside the
     * plane, so one 64-bit load per pair may read both corners (float32 with AVX-512) */
    int32_t pair[2][FC_DEFORM_MAX_NR];
    FC_T w[4][FC_DEFORM_MAX_NR];
    int all, pairs;
} FC_DLOCAL(table);

/* The table of (offset group og, tap t) for the pixels p0 .. p0 + cols - 1 (columns cols ..
 * nr - 1: nothing inside, so they read zero). Coordinates and weights are computed in double. */
static void FC_DLOCAL(table_of)(const FC_DLOCAL(ctx) *ctx, ptrdiff_t og, ptrdiff_t t,
                                ptrdiff_t p0, int cols, FC_DLOCAL(table) *tb)
{
    const fc_conv_geometry *g = ctx->g;
    const ptrdiff_t KW = g->k[2], T = g->k[1] * KW;
    const ptrdiff_t H = g->in[1], W = g->in[2], OW = g->out[2];
    const ptrdiff_t N = g->out[1] * OW;
    const ptrdiff_t ki = t / KW, kj = t % KW;
    const FC_T *dy = ctx->offset + (og * 2 * T + 2 * t) * N + p0, *dx = dy + N;
    const FC_T *mk = ctx->mask ? ctx->mask + (og * T + t) * N + p0 : NULL;
    const double h_base = (double)(ki * g->d[1] - g->pad[1]);
    const double w_base = (double)(kj * g->d[2] - g->pad[2]);
    ptrdiff_t oh = p0 / OW, ow = p0 % OW;
    int all = 1, pairs = 1;
    for (int j = 0; j < ctx->nr; j++) {
        int32_t in = 0;
        ptrdiff_t base = 0;
        double w00 = 0, w01 = 0, w10 = 0, w11 = 0;
        if (j < cols) {
            const double h = (double)(oh * g->s[1]) + h_base + (double)dy[j];
            const double w = (double)(ow * g->s[2]) + w_base + (double)dx[j];
            if (h > -1 && h < (double)H && w > -1 && w < (double)W) { /* (NaN: outside) */
                const double fh = floor(h), fw = floor(w);
                const ptrdiff_t h0 = (ptrdiff_t)fh, w0 = (ptrdiff_t)fw;
                const double lh = h - fh, lw = w - fw, m = mk ? (double)mk[j] : 1.0;
                const double hh = (1 - lh) * m, hl = lh * m;
                w00 = hh * (1 - lw);
                w01 = hh * lw;
                w10 = hl * (1 - lw);
                w11 = hl * lw;
                base = h0 * W + w0;
                in = (h0 >= 0 && w0 >= 0) | (h0 >= 0 && w0 + 1 < W) << 1
                     | (h0 + 1 < H && w0 >= 0) << 2 | (h0 + 1 < H && w0 + 1 < W) << 3;
            }
        }
        all &= in == 15;
        tb->in[j] = in;
        tb->pair[0][j] = in & 3 ? (int32_t)base : 0;
        tb->pair[1][j] = in & 12 ? (int32_t)(base + W) : 0;
        if ((in & 3 && (base < 0 || base + 1 >= H * W))
            || (in & 12 && (base + W < 0 || base + W + 1 >= H * W)))
            pairs = 0;
        tb->i[0][j] = in & 1 ? (int32_t)base : 0;
        tb->i[1][j] = in & 2 ? (int32_t)(base + 1) : 0;
        tb->i[2][j] = in & 4 ? (int32_t)(base + W) : 0;
        tb->i[3][j] = in & 8 ? (int32_t)(base + W + 1) : 0;
        tb->w[0][j] = in & 1 ? (FC_T)w00 : 0;
        tb->w[1][j] = in & 2 ? (FC_T)w01 : 0;
        tb->w[2][j] = in & 4 ? (FC_T)w10 : 0;
        tb->w[3][j] = in & 8 ? (FC_T)w11 : 0;
        if (++ow == OW) {
            ow = 0;
            oh++;
        }
    }
    tb->all = all;
    tb->pairs = pairs;
}

/* Hardware gathers where the translation unit's ISA has them (GCC's generic tuning emulates
 * vectorised gathers with scalar loads and inserts: measured 3-4x slower than these on Zen 4).
 * FC_DG_* : vector type, index vector type, lanes, index load, gather, masked gather (masked-off
 * lanes read nothing and give zero), the mask of the lanes whose `in` has `bit`, fma, store. */
#if defined(__AVX512F__) && FC_T_BYTES == 4
#include <immintrin.h>
#define FC_DG 16
#define FC_DG_V __m512
#define FC_DG_I __m512i
#define FC_DG_M __mmask16
#define FC_DG_LOADI(p) _mm512_loadu_si512((const void *)(p))
#define FC_DG_GATHER(i) _mm512_i32gather_ps(i, xc, 4)
#define FC_DG_MGATHER(k, i) _mm512_mask_i32gather_ps(_mm512_setzero_ps(), k, i, xc, 4)
#define FC_DG_MASK(m, bit) _mm512_test_epi32_mask(m, _mm512_set1_epi32(bit))
#define FC_DG_LOAD(p) _mm512_loadu_ps(p)
#define FC_DG_MUL _mm512_mul_ps
#define FC_DG_FMA _mm512_fmadd_ps
#define FC_DG_STORE _mm512_storeu_ps
#elif defined(__AVX512F__) && FC_T_BYTES == 8
#include <immintrin.h>
#define FC_DG 8
#define FC_DG_V __m512d
#define FC_DG_I __m256i
#define FC_DG_M __mmask8
#define FC_DG_LOADI(p) _mm256_loadu_si256((const __m256i *)(p))
#define FC_DG_GATHER(i) _mm512_i32gather_pd(i, xc, 8)
#define FC_DG_MGATHER(k, i) _mm512_mask_i32gather_pd(_mm512_setzero_pd(), k, i, xc, 8)
#define FC_DG_MASK(m, bit) \
    ((__mmask8)_mm512_test_epi32_mask(_mm512_zextsi256_si512(m), _mm512_set1_epi32(bit)))
#define FC_DG_LOAD(p) _mm512_loadu_pd(p)
#define FC_DG_MUL _mm512_mul_pd
#define FC_DG_FMA _mm512_fmadd_pd
#define FC_DG_STORE _mm512_storeu_pd
#elif defined(__AVX2__) && defined(__FMA__) && FC_T_BYTES == 4
#include <immintrin.h>
#define FC_DG 8
#define FC_DG_V __m256
#define FC_DG_I __m256i
#define FC_DG_M __m256
#define FC_DG_LOADI(p) _mm256_loadu_si256((const __m256i *)(p))
#define FC_DG_GATHER(i) _mm256_i32gather_ps(xc, i, 4)
#define FC_DG_MGATHER(k, i) _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xc, i, k, 4)
#define FC_DG_MASK(m, bit)                                                                  \
    _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(m, _mm256_set1_epi32(bit)),     \
                                           _mm256_set1_epi32(bit)))
#define FC_DG_LOAD(p) _mm256_loadu_ps(p)
#define FC_DG_MUL _mm256_mul_ps
#define FC_DG_FMA _mm256_fmadd_ps
#define FC_DG_STORE _mm256_storeu_ps
#elif defined(__AVX2__) && defined(__FMA__) && FC_T_BYTES == 8
#include <immintrin.h>
#define FC_DG 4
#define FC_DG_V __m256d
#define FC_DG_I __m128i
#define FC_DG_M __m256d
#define FC_DG_LOADI(p) _mm_loadu_si128((const __m128i *)(p))
#define FC_DG_GATHER(i) _mm256_i32gather_pd(xc, i, 8)
#define FC_DG_MGATHER(k, i) _mm256_mask_i32gather_pd(_mm256_setzero_pd(), xc, i, k, 8)
#define FC_DG_MASK(m, bit)                                                                  \
    _mm256_castsi256_pd(_mm256_cvtepi32_epi64(                                              \
        _mm_cmpeq_epi32(_mm_and_si128(m, _mm_set1_epi32(bit)), _mm_set1_epi32(bit))))
#define FC_DG_LOAD(p) _mm256_loadu_pd(p)
#define FC_DG_MUL _mm256_mul_pd
#define FC_DG_FMA _mm256_fmadd_pd
#define FC_DG_STORE _mm256_storeu_pd
#endif

/* d[0 .. nr) = the sampled row of one channel plane xc (see the table). The sum is
 * ((w0 a + w1 b) + w2 c) + w3 e in every variant, so weights (1, 0, 0, 0) give a exactly. */
FC_INLINE void FC_DLOCAL(sample_row)(FC_T *FC_RESTRICT d, const FC_T *FC_RESTRICT xc,
                                     const FC_DLOCAL(table) *FC_RESTRICT tb, int nr)
{
    const int32_t *FC_RESTRICT i0 = tb->i[0], *FC_RESTRICT i1 = tb->i[1];
    const int32_t *FC_RESTRICT i2 = tb->i[2], *FC_RESTRICT i3 = tb->i[3];
    const FC_T *FC_RESTRICT w0 = tb->w[0], *FC_RESTRICT w1 = tb->w[1];
    const FC_T *FC_RESTRICT w2 = tb->w[2], *FC_RESTRICT w3 = tb->w[3];
    int j = 0;
#if defined(__AVX512F__) && FC_T_BYTES == 4
    /* Corner pairs: one 64-bit gather lane reads (x[p], x[p + 1]), so 16 pixels take four
     * 8-lane gathers instead of four 16-lane ones (a Zen 4 gather costs about one load per
     * lane); the even and odd floats are then the left and the right corners. Corners outside
     * the input are zeroed by their mask (never multiplied). */
    if (tb->pairs) {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24,
                                               26, 28, 30);
        const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25,
                                              27, 29, 31);
        const __m512d zero = _mm512_setzero_pd();
        for (; j + 16 <= nr; j += 16) {
            const __m512i m = _mm512_loadu_si512((const void *)(tb->in + j));
            const __mmask16 k0 = _mm512_test_epi32_mask(m, _mm512_set1_epi32(1));
            const __mmask16 k1 = _mm512_test_epi32_mask(m, _mm512_set1_epi32(2));
            const __mmask16 k2 = _mm512_test_epi32_mask(m, _mm512_set1_epi32(4));
            const __mmask16 k3 = _mm512_test_epi32_mask(m, _mm512_set1_epi32(8));
            const __mmask16 up = k0 | k1, down = k2 | k3;
            const int32_t *pu = tb->pair[0] + j, *pd = tb->pair[1] + j;
            const __m512 u0 = _mm512_castpd_ps(_mm512_mask_i32gather_pd(
                zero, (__mmask8)up, _mm256_loadu_si256((const __m256i *)pu), xc, 4));
            const __m512 u1 = _mm512_castpd_ps(_mm512_mask_i32gather_pd(
                zero, (__mmask8)(up >> 8), _mm256_loadu_si256((const __m256i *)(pu + 8)), xc, 4));
            const __m512 d0 = _mm512_castpd_ps(_mm512_mask_i32gather_pd(
                zero, (__mmask8)down, _mm256_loadu_si256((const __m256i *)pd), xc, 4));
            const __m512 d1 = _mm512_castpd_ps(_mm512_mask_i32gather_pd(
                zero, (__mmask8)(down >> 8), _mm256_loadu_si256((const __m256i *)(pd + 8)), xc,
                4));
            const __m512 a = _mm512_maskz_mov_ps(k0, _mm512_permutex2var_ps(u0, even, u1));
            const __m512 b = _mm512_maskz_mov_ps(k1, _mm512_permutex2var_ps(u0, odd, u1));
            const __m512 c = _mm512_maskz_mov_ps(k2, _mm512_permutex2var_ps(d0, even, d1));
            const __m512 e = _mm512_maskz_mov_ps(k3, _mm512_permutex2var_ps(d0, odd, d1));
            __m512 v = _mm512_mul_ps(_mm512_loadu_ps(w0 + j), a);
            v = _mm512_fmadd_ps(_mm512_loadu_ps(w1 + j), b, v);
            v = _mm512_fmadd_ps(_mm512_loadu_ps(w2 + j), c, v);
            v = _mm512_fmadd_ps(_mm512_loadu_ps(w3 + j), e, v);
            _mm512_storeu_ps(d + j, v);
        }
    }
#endif
#ifdef FC_DG
    /* (NR is a multiple of the vector width of every ISA with gathers) */
    if (tb->all) {
        for (; j + FC_DG <= nr; j += FC_DG) {
            FC_DG_V v = FC_DG_MUL(FC_DG_LOAD(w0 + j), FC_DG_GATHER(FC_DG_LOADI(i0 + j)));
            v = FC_DG_FMA(FC_DG_LOAD(w1 + j), FC_DG_GATHER(FC_DG_LOADI(i1 + j)), v);
            v = FC_DG_FMA(FC_DG_LOAD(w2 + j), FC_DG_GATHER(FC_DG_LOADI(i2 + j)), v);
            v = FC_DG_FMA(FC_DG_LOAD(w3 + j), FC_DG_GATHER(FC_DG_LOADI(i3 + j)), v);
            FC_DG_STORE(d + j, v);
        }
    } else {
        for (; j + FC_DG <= nr; j += FC_DG) {
            const FC_DG_I m = FC_DG_LOADI(tb->in + j);
            const FC_DG_M k0 = FC_DG_MASK(m, 1), k1 = FC_DG_MASK(m, 2);
            const FC_DG_M k2 = FC_DG_MASK(m, 4), k3 = FC_DG_MASK(m, 8);
            FC_DG_V v = FC_DG_MUL(FC_DG_LOAD(w0 + j), FC_DG_MGATHER(k0, FC_DG_LOADI(i0 + j)));
            v = FC_DG_FMA(FC_DG_LOAD(w1 + j), FC_DG_MGATHER(k1, FC_DG_LOADI(i1 + j)), v);
            v = FC_DG_FMA(FC_DG_LOAD(w2 + j), FC_DG_MGATHER(k2, FC_DG_LOADI(i2 + j)), v);
            v = FC_DG_FMA(FC_DG_LOAD(w3 + j), FC_DG_MGATHER(k3, FC_DG_LOADI(i3 + j)), v);
            FC_DG_STORE(d + j, v);
        }
    }
#endif
    /* the rest (all of it without gathers): one pixel at a time; the loads are conditional,
     * so the compiler does not emulate gathers here (which measured slower than this loop) */
    const int32_t *FC_RESTRICT in = tb->in;
    for (; j < nr; j++) {
        const int m = in[j];
        const FC_T a = m & 1 ? xc[i0[j]] : 0, b = m & 2 ? xc[i1[j]] : 0;
        const FC_T c = m & 4 ? xc[i2[j]] : 0, e = m & 8 ? xc[i3[j]] : 0;
        d[j] = ((w0[j] * a + w1[j] * b) + w2[j] * c) + w3[j] * e;
    }
}

#ifdef FC_DG
#undef FC_DG
#undef FC_DG_V
#undef FC_DG_I
#undef FC_DG_M
#undef FC_DG_LOADI
#undef FC_DG_GATHER
#undef FC_DG_MGATHER
#undef FC_DG_MASK
#undef FC_DG_LOAD
#undef FC_DG_MUL
#undef FC_DG_FMA
#undef FC_DG_STORE
#endif

/* The GEMM's B callback: rows k = c * kH * kW + t (local channel c, tap t), see the header. */
static void FC_DLOCAL(pack_b)(const void *vctx, int k0, int kc, int n0, int nc, FC_T *dst)
{
    const FC_DLOCAL(ctx) *ctx = (const FC_DLOCAL(ctx) *)vctx;
    const fc_conv_geometry *g = ctx->g;
    const int nr = ctx->nr;
    const ptrdiff_t T = g->k[1] * g->k[2], W = g->in[2], plane = g->in[1] * W;
    const ptrdiff_t c_lo = k0 / T, c_hi = (k0 + kc - 1) / T; /* local channels of the block */
    FC_DLOCAL(table) tb;
    for (int q0 = 0; q0 < nc; q0 += nr) {
        const int cols = FC_MIN(nr, nc - q0);
        FC_T *panel = dst + (ptrdiff_t)q0 * kc;
        for (ptrdiff_t t = 0; t < T; t++) {
            /* the channels whose row c * T + t lies in [k0, k0 + kc) */
            const ptrdiff_t ca = c_lo + (c_lo * T + t < k0);
            const ptrdiff_t cb = c_hi - (c_hi * T + t >= k0 + kc); /* inclusive */
            for (ptrdiff_t c = ca; c <= cb;) {
                const ptrdiff_t og = (ctx->c_first + c) / ctx->cpog;
                const ptrdiff_t c_end = FC_MIN(cb + 1, (og + 1) * ctx->cpog - ctx->c_first);
                FC_DLOCAL(table_of)(ctx, og, t, n0 + q0, cols, &tb);
                for (; c < c_end; c++)
                    FC_DLOCAL(sample_row)(panel + (c * T + t - k0) * nr, ctx->x + c * plane, &tb,
                                          nr);
            }
        }
    }
}

/* One (image, group) item: its GEMM on `threads` threads. */
static int FC_DLOCAL(item)(const fc_conv_geometry *g, ptrdiff_t offset_groups, const FC_T *x,
                           const FC_T *offset, const FC_T *mask, const FC_T *packed_w,
                           const FC_T *bias, FC_T *y, ptrdiff_t item, int threads)
{
    const ptrdiff_t G = g->groups, cpg = g->c_in / G, opg = g->c_out / G;
    const ptrdiff_t plane = g->in[1] * g->in[2], T = g->k[1] * g->k[2];
    const int M = (int)opg, K = (int)(cpg * T), N = (int)(g->out[1] * g->out[2]);
    const ptrdiff_t packed_size =
        (ptrdiff_t)FC_CAT(fc_gemm_packed_a_size_, FC_DT)(FC_ISA_ENUM, M, K);
    const ptrdiff_t n = item / G, gi = item % G;
    FC_DLOCAL(ctx) ctx = {
        .g = g,
        .cpog = g->c_in / offset_groups,
        .c_first = gi * cpg,
        .x = x + (n * g->c_in + gi * cpg) * plane,
        .offset = offset + n * 2 * offset_groups * T * N,
        .mask = mask ? mask + n * offset_groups * T * N : NULL,
        .nr = fc_gemm_nr(FC_ISA_ENUM, FC_GEMM_DT),
    };
    return FC_DGEMM(FC_ISA_ENUM, M, N, K, packed_w + gi * packed_size, FC_DLOCAL(pack_b), &ctx,
                    y + (n * g->c_out + gi * opg) * (ptrdiff_t)N, N, bias ? bias + gi * opg : NULL,
                    0, threads);
}

int FC_DFN(conv)(const fc_conv_geometry *g, ptrdiff_t offset_groups, const FC_T *x,
                 const FC_T *offset, const FC_T *mask, const FC_T *packed_w, const FC_T *bias,
                 FC_T *y, int nthreads)
{
    /* Threads as fc_conv_im2col_* (fastconv/im2col.h): whole items when they split evenly or
     * are plenty, else one item after another with the GEMM on every thread. */
    const ptrdiff_t items = g->n * g->groups;
    const int per_item = nthreads == 1 || items % nthreads == 0 || items >= 4 * nthreads;
    int failed = 0;
    if (per_item && nthreads > 1) {
        FC_FP_CAPTURE();
        FC_OMP(parallel num_threads(nthreads))
        {
            FC_FP_ADOPT();
            FC_OMP(for schedule(dynamic, 1))
            for (ptrdiff_t item = 0; item < items; item++)
                if (FC_DLOCAL(item)(g, offset_groups, x, offset, mask, packed_w, bias, y, item,
                                    1) != 0) {
                    FC_OMP(atomic write)
                    failed = 1;
                }
            FC_FP_RESTORE();
        }
    } else {
        for (ptrdiff_t item = 0; item < items; item++)
            if (FC_DLOCAL(item)(g, offset_groups, x, offset, mask, packed_w, bias, y, item,
                                per_item ? 1 : nthreads) != 0)
                failed = 1;
    }
    return failed ? FC_CONV_NOMEM : FC_CONV_OK;
}

#undef FC_DFN
#undef FC_DLOCAL
#undef FC_DGEMM

#endif /* FC_T */
