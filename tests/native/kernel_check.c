/* Kernel check: every SIMD kernel of this build against the scalar kernels and a float64
 * reference, in C, without Python. Built and run by tools/test_neon.sh: cross-compiled for
 * aarch64 and run under qemu-user (the NEON kernels: no development machine is ARM), or
 * natively (scalar against AVX2 / AVX-512 on x86-64).
 *
 * Linked with the objects of src/fastconv/_isa/<area>_<isa>.c, each compiled with its ISA's
 * flags as setup.py does, and with the same FC_HAVE_<ISA> / FC_OPENMP macros. For every area
 * (packed GEMM, direct / depthwise / im2col convolution, Winograd F(2,3) / F(4,3) / F(6,3),
 * transposed convolution "gemm" and "phase", windowed and global pooling), dtype (float32,
 * float64) and a small sweep of shapes chosen for the edges (reduction shorter than a block or
 * longer than KC, column counts that are not a multiple of NR, partial tiles, strides,
 * dilations, asymmetric padding, groups, misaligned arrays, one and two threads), each ISA's
 * result is compared with the scalar ISA's and with a naive float64 reference (and, last, the
 * subnormal mode of fastconv/fpstate.h is checked on every area and ISA):
 *     max|actual - expected| / max(max|expected|, tiny) <= tolerance
 * (the measure of tests/reference.py, with its tolerances: 1e-5 float32, 1e-12 float64, the
 * Winograd bounds per tile; twice that between two ISAs; max pooling exact). NaN positions
 * must match. Prints one line per failure (every line with -v) and, last, "N passed, N failed";
 * exits 1 if any check failed.
 *
 * After the fixed cases, N random ones per area (-r N, default 40; seeded by -s SEED, default 1,
 * so a run is reproducible; the random case's shape is in its label).
 *
 * Usage: kernel_check [-v] [-t THREADS] [-r N] [-s SEED]   (THREADS: threaded runs, default 2)
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastconv/col2im.h"
#include "fastconv/common.h"
#include "fastconv/conv.h"
#include "fastconv/cpu.h"
#include "fastconv/fpstate.h"
#include "fastconv/gemm.h"
#include "fastconv/isa.h"
#include "fastconv/omp.h"
#include "fastconv/pool.h"
#include "fastconv/winograd.h"

#define ISA_NAMES fc_isa_names /* the registry's names (fastconv/isa.h) */

static int verbose = 0, threads = 2, n_random = 40;
static unsigned long long seed = 1;
static long n_passed = 0, n_failed = 0;

/* ---------------------------------------------------------------- random data, buffers */

static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;

static unsigned long long rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* uniform in [-1, 1), exactly representable in float (the float32 and float64 runs and the
 * reference see the same values) */
static double rnd(void)
{
    return (double)(float)((double)(rng_next() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static double *rnd_array(size_t n)
{
    double *a = (double *)malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = rnd();
    return a;
}

/* uniform integer in [lo, hi] */
static ptrdiff_t irand(ptrdiff_t lo, ptrdiff_t hi)
{
    return lo + (ptrdiff_t)(rng_next() % (unsigned long long)(hi - lo + 1));
}

#define MAX_RANDOM 1000
/* The fixed cases of an area followed by n_random generated ones (labels in `names`). */
#define WITH_RANDOM(type, cases, gen, all, total)                                             \
    const size_t total = sizeof cases / sizeof cases[0] + (size_t)n_random;                   \
    type *all = (type *)malloc(total * sizeof(type));                                         \
    memcpy(all, cases, sizeof cases);                                                         \
    for (size_t r_ = sizeof cases / sizeof cases[0]; r_ < total; r_++) gen(&all[r_]);

/* A working-dtype copy of n doubles, `skew` elements past malloc's alignment (0 or 1: the
 * kernels must not assume aligned inputs and outputs) and nothing after the last element, so
 * that AddressSanitizer (tools/test_neon.sh --sanitize) reports any read or write past the
 * end. Free with free(base). */
typedef struct {
    void *base, *p;
} tbuf;

static tbuf to_t(const double *src, size_t n, int f64, int skew)
{
    size_t es = f64 ? sizeof(double) : sizeof(float);
    tbuf b;
    b.base = malloc((n + (size_t)skew) * es + (n ? 0 : 1));
    b.p = (char *)b.base + skew * es;
    for (size_t i = 0; i < n; i++) {
        if (f64)
            ((double *)b.p)[i] = src ? src[i] : 0.0;
        else
            ((float *)b.p)[i] = src ? (float)src[i] : 0.0f;
    }
    return b;
}

static void from_t(const void *p, size_t n, int f64, double *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

/* ---------------------------------------------------------------- the check */

/* max|actual - expected| / max(max|expected|, tiny) over the finite expected entries; a NaN
 * expected entry needs a NaN actual one, an infinite one the same infinity. */
static void check(const char *what, const double *actual, const double *expected, size_t n,
                  double tol)
{
    double amax = 0.0, emax = 0.0;
    size_t worst = 0, bad_special = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        const double a = actual[i], e = expected[i];
        if (isnan(e) || isinf(e) || isnan(a) || isinf(a)) {
            int same = isnan(e) ? isnan(a) : a == e;
            if (!same && bad_special == (size_t)-1) bad_special = i;
            continue;
        }
        if (fabs(e) > amax) amax = fabs(e);
        if (fabs(a - e) > emax) {
            emax = fabs(a - e);
            worst = i;
        }
    }
    const double err = emax / fmax(amax, DBL_MIN);
    const int ok = err <= tol && bad_special == (size_t)-1;
    if (ok)
        n_passed++;
    else
        n_failed++;
    if (!ok && bad_special != (size_t)-1)
        printf("FAIL %s: at %zu got %g, expected %g (NaN / infinity)\n", what, bad_special,
               actual[bad_special], expected[bad_special]);
    else if (!ok || verbose)
        printf("%s %s: err %.3g (tol %.1g; worst at %zu: %.9g vs %.9g) over %zu values\n",
               ok ? "ok  " : "FAIL", what, err, tol, worst, n ? actual[worst] : 0.0,
               n ? expected[worst] : 0.0, n);
}

static void check_true(const char *what, int cond)
{
    if (cond)
        n_passed++;
    else
        n_failed++;
    if (!cond || verbose) printf("%s %s\n", cond ? "ok  " : "FAIL", what);
}

static char label[512];

static const char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(label, sizeof label, f, ap);
    va_end(ap);
    return label;
}

/* Tolerances of tests/reference.py (against float64), doubled between two ISAs. */
static double tol_of(int f64) { return f64 ? 1e-12 : 1e-5; }

/* The ISAs to check: compiled in and runnable here, scalar excluded (it is the baseline). */
static int isas[FC_ISA_COUNT], n_isas = 0;

/* ---------------------------------------------------------------- GEMM */

typedef struct {
    int M, N, K;
    int trans_a, trans_b; /* A / B given transposed (column strides != 1) */
    int bias, accumulate, ldc_pad;
} gemm_case;

static void gemm_ref(const gemm_case *c, const double *A, const double *B, const double *bias,
                     const double *C0, double *C)
{
    const int ldc = c->N + c->ldc_pad;
    for (int m = 0; m < c->M; m++)
        for (int n = 0; n < c->N; n++) {
            double s = c->accumulate ? C0[m * ldc + n] : 0.0;
            for (int k = 0; k < c->K; k++) {
                double a = c->trans_a ? A[k * c->M + m] : A[m * c->K + k];
                double b = c->trans_b ? B[n * c->K + k] : B[k * c->N + n];
                s += a * b;
            }
            C[m * ldc + n] = s + (c->bias ? bias[m] : 0.0);
        }
}

/* C (M x ldc) of `isa`, as doubles (only the N columns are compared; the padding must stay). */
static int gemm_run(int isa, int f64, const gemm_case *c, const double *A, const double *B,
                    const double *bias, const double *C0, double *C, int nt, int skew)
{
    const int M = c->M, N = c->N, K = c->K, ldc = N + c->ldc_pad;
    tbuf a = to_t(A, (size_t)M * K, f64, skew), b = to_t(B, (size_t)K * N, f64, skew);
    tbuf bi = to_t(bias, (size_t)M, f64, 0), cc = to_t(C0, (size_t)M * ldc, f64, skew);
    const ptrdiff_t ars = c->trans_a ? 1 : K, acs = c->trans_a ? M : 1;
    const ptrdiff_t brs = c->trans_b ? 1 : N, bcs = c->trans_b ? K : 1;
    int rc;
    if (f64) {
        double *packed = (double *)fc_malloc(fc_gemm_packed_a_size_f64(isa, M, K) * 8);
        fc_gemm_pack_a_f64(isa, M, K, (const double *)a.p, ars, acs, packed);
        fc_gemm_strided_b_f64 ctx = {(const double *)b.p, brs, bcs, isa};
        rc = fc_gemm_f64(isa, M, N, K, packed, fc_gemm_pack_b_strided_f64, &ctx,
                         (double *)cc.p, ldc, c->bias ? (const double *)bi.p : NULL,
                         c->accumulate, nt);
        fc_free(packed);
    } else {
        float *packed = (float *)fc_malloc(fc_gemm_packed_a_size_f32(isa, M, K) * 4);
        fc_gemm_pack_a_f32(isa, M, K, (const float *)a.p, ars, acs, packed);
        fc_gemm_strided_b_f32 ctx = {(const float *)b.p, brs, bcs, isa};
        rc = fc_gemm_f32(isa, M, N, K, packed, fc_gemm_pack_b_strided_f32, &ctx, (float *)cc.p,
                         ldc, c->bias ? (const float *)bi.p : NULL, c->accumulate, nt);
        fc_free(packed);
    }
    from_t(cc.p, (size_t)M * ldc, f64, C);
    free(a.base), free(b.base), free(bi.base), free(cc.base);
    return rc;
}

static void test_gemm(void)
{
    static const gemm_case cases[] = {
        /* M  N   K   tA tB bias acc ldc_pad */
        {1, 1, 1, 0, 0, 0, 0, 0},
        {8, 8, 8, 0, 0, 1, 0, 0},
        {7, 3, 5, 0, 0, 1, 0, 0},       /* everything below one tile */
        {9, 13, 1, 0, 0, 0, 1, 3},      /* k = 1, m and n one past a tile */
        {17, 33, 31, 1, 0, 1, 1, 0},    /* A transposed */
        {5, 40, 17, 0, 1, 1, 0, 5},     /* B transposed */
        {12, 7, 0, 0, 0, 1, 1, 0},      /* K = 0: C = C + bias */
        {33, 45, 300, 0, 0, 1, 0, 0},   /* K > KC: two reduction blocks */
        {3, 2100, 9, 0, 0, 0, 0, 0},    /* N > NC (f32 neon / scalar: 2048) */
        {140, 20, 40, 0, 0, 1, 1, 2},   /* M > MC (128) */
        {64, 5, 70, 1, 1, 0, 0, 0},     /* small N, many row panels: shared B on 2 threads */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const gemm_case *c = &cases[ci];
        const int ldc = c->N + c->ldc_pad;
        const size_t nc = (size_t)c->M * ldc;
        double *A = rnd_array((size_t)c->M * c->K), *B = rnd_array((size_t)c->K * c->N);
        double *bias = rnd_array((size_t)c->M), *C0 = rnd_array(nc);
        double *ref = (double *)malloc(nc * sizeof(double)), *base = malloc(nc * sizeof(double));
        double *out = (double *)malloc(nc * sizeof(double));
        for (size_t i = 0; i < nc; i++) ref[i] = C0[i]; /* the ldc padding stays as it was */
        gemm_ref(c, A, B, bias, C0, ref);
        for (int f64 = 0; f64 < 2; f64++) {
            const char *dt = f64 ? "f64" : "f32";
            gemm_run(FC_ISA_SCALAR, f64, c, A, B, bias, C0, base, 1, 0);
            check(fmt("gemm scalar %s M=%d N=%d K=%d vs reference", dt, c->M, c->N, c->K),
                  base, ref, nc, tol_of(f64));
            for (int ii = 0; ii < n_isas; ii++)
                for (int nt = 1; nt <= threads; nt += threads - 1 > 0 ? threads - 1 : 1) {
                    const int isa = isas[ii], skew = (int)(ci & 1);
                    int rc = gemm_run(isa, f64, c, A, B, bias, C0, out, nt, skew);
                    check_true(fmt("gemm %s %s M=%d N=%d K=%d returns 0", ISA_NAMES[isa], dt,
                                   c->M, c->N, c->K), rc == 0);
                    check(fmt("gemm %s %s M=%d N=%d K=%d tA=%d tB=%d threads=%d vs reference",
                              ISA_NAMES[isa], dt, c->M, c->N, c->K, c->trans_a, c->trans_b, nt),
                          out, ref, nc, tol_of(f64));
                    check(fmt("gemm %s %s M=%d N=%d K=%d threads=%d vs scalar", ISA_NAMES[isa],
                              dt, c->M, c->N, c->K, nt),
                          out, base, nc, 2 * tol_of(f64));
                    if (threads == 1) break;
                }
        }
        free(A), free(B), free(bias), free(C0), free(ref), free(base), free(out);
    }
}

/* ---------------------------------------------------------------- convolution */

typedef struct {
    const char *name;
    ptrdiff_t n, c_in, c_out, groups;
    ptrdiff_t in[3], k[3], s[3], d[3], pad[3], pad_after[3];
} conv_case;

static void conv_geometry(const conv_case *c, fc_conv_geometry *g)
{
    g->n = c->n, g->c_in = c->c_in, g->c_out = c->c_out, g->groups = c->groups;
    for (int i = 0; i < 3; i++) {
        g->in[i] = c->in[i], g->k[i] = c->k[i], g->s[i] = c->s[i], g->d[i] = c->d[i];
        g->pad[i] = c->pad[i];
        g->out[i] = (c->in[i] + c->pad[i] + c->pad_after[i] - c->d[i] * (c->k[i] - 1) - 1)
                        / c->s[i] + 1;
    }
}

static size_t prod3(const ptrdiff_t *v) { return (size_t)(v[0] * v[1] * v[2]); }

/* y (n, c_out, out) = conv(x (n, c_in, in), w (c_out, c_in / groups, k)) + bias, zero pads */
static void conv_ref(const fc_conv_geometry *g, const double *x, const double *w,
                     const double *bias, double *y)
{
    const ptrdiff_t cpg = g->c_in / g->groups, opg = g->c_out / g->groups;
    const size_t isz = prod3(g->in), osz = prod3(g->out), ksz = prod3(g->k);
    for (ptrdiff_t n = 0; n < g->n; n++)
        for (ptrdiff_t co = 0; co < g->c_out; co++)
            for (ptrdiff_t od = 0; od < g->out[0]; od++)
                for (ptrdiff_t oh = 0; oh < g->out[1]; oh++)
                    for (ptrdiff_t ow = 0; ow < g->out[2]; ow++) {
                        double s = bias ? bias[co] : 0.0;
                        const ptrdiff_t gi = co / opg;
                        for (ptrdiff_t ci = 0; ci < cpg; ci++)
                            for (ptrdiff_t kd = 0; kd < g->k[0]; kd++)
                                for (ptrdiff_t kh = 0; kh < g->k[1]; kh++)
                                    for (ptrdiff_t kw = 0; kw < g->k[2]; kw++) {
                                        ptrdiff_t id = od * g->s[0] - g->pad[0] + kd * g->d[0];
                                        ptrdiff_t ih = oh * g->s[1] - g->pad[1] + kh * g->d[1];
                                        ptrdiff_t iw = ow * g->s[2] - g->pad[2] + kw * g->d[2];
                                        if (id < 0 || id >= g->in[0] || ih < 0 ||
                                            ih >= g->in[1] || iw < 0 || iw >= g->in[2])
                                            continue;
                                        s += x[(n * g->c_in + gi * cpg + ci) * isz +
                                               (id * g->in[1] + ih) * g->in[2] + iw] *
                                             w[(co * cpg + ci) * ksz +
                                               (kd * g->k[1] + kh) * g->k[2] + kw];
                                    }
                        y[(n * g->c_out + co) * osz + (od * g->out[1] + oh) * g->out[2] + ow] = s;
                    }
}

enum { K_DIRECT = 0, K_DEPTHWISE = 1, K_IM2COL = 2 };
static const char *const CONV_KERNELS[] = {"direct", "depthwise", "im2col"};

static int conv_run(int isa, int kernel, int f64, const fc_conv_geometry *g, const double *x,
                    const double *w, const double *bias, double *y, int nt, int skew)
{
    const size_t nx = (size_t)g->n * g->c_in * prod3(g->in);
    const size_t ny = (size_t)g->n * g->c_out * prod3(g->out);
    const size_t nw = (size_t)g->c_out * (g->c_in / g->groups) * prod3(g->k);
    tbuf xb = to_t(x, nx, f64, skew), wb = to_t(w, nw, f64, skew);
    tbuf bb = to_t(bias, (size_t)g->c_out, f64, 0), yb = to_t(NULL, ny, f64, skew);
    const void *wp = wb.p;
    void *packed = NULL;
    int rc;
    if (kernel == K_IM2COL) {
        size_t size = fc_conv_packed_group_size(isa, f64, g) * (size_t)g->groups;
        packed = fc_malloc(size * (f64 ? 8 : 4));
        if (f64)
            fc_conv_pack_weight_f64(isa, g, (const double *)wb.p, (double *)packed, nt);
        else
            fc_conv_pack_weight_f32(isa, g, (const float *)wb.p, (float *)packed, nt);
        wp = packed;
    }
    if (f64) {
        const double *X = (const double *)xb.p, *W = (const double *)wp;
        const double *B = bias ? (const double *)bb.p : NULL;
        double *Y = (double *)yb.p;
        rc = kernel == K_DIRECT      ? fc_conv_direct_f64(isa, g, X, W, B, Y, nt)
             : kernel == K_DEPTHWISE ? fc_conv_depthwise_f64(isa, g, X, W, B, Y, nt)
                                     : fc_conv_im2col_f64(isa, g, X, W, B, Y, nt);
    } else {
        const float *X = (const float *)xb.p, *W = (const float *)wp;
        const float *B = bias ? (const float *)bb.p : NULL;
        float *Y = (float *)yb.p;
        rc = kernel == K_DIRECT      ? fc_conv_direct_f32(isa, g, X, W, B, Y, nt)
             : kernel == K_DEPTHWISE ? fc_conv_depthwise_f32(isa, g, X, W, B, Y, nt)
                                     : fc_conv_im2col_f32(isa, g, X, W, B, Y, nt);
    }
    from_t(yb.p, ny, f64, y);
    free(xb.base), free(wb.base), free(bb.base), free(yb.base);
    if (packed) fc_free(packed);
    return rc;
}

static char conv_names[MAX_RANDOM][96];
static int conv_named = 0;

/* A random convolution: rank 1-3, dense, grouped or depthwise (multiplier 1-2), kernel up to 5
 * (3 in 3-D), stride 1-3, dilation 1-2, pads before and after up to the dilated extent - 1. */
static void random_conv(conv_case *c)
{
    const int rank = (int)irand(1, 3), kind = (int)irand(0, 2);
    c->n = irand(1, 2);
    if (kind == 2) {
        c->c_in = c->groups = irand(1, 8);
        c->c_out = c->c_in * irand(1, 2);
    } else {
        c->groups = kind == 0 ? 1 : irand(2, 3);
        c->c_in = c->groups * irand(1, 6);
        c->c_out = c->groups * irand(1, 10);
    }
    for (int i = 0; i < 3; i++) {
        c->in[i] = c->k[i] = c->s[i] = c->d[i] = 1, c->pad[i] = c->pad_after[i] = 0;
        if (i < 3 - rank) continue;
        c->k[i] = irand(1, rank == 3 ? 3 : 5), c->s[i] = irand(1, 3), c->d[i] = irand(1, 2);
        const ptrdiff_t ext = c->d[i] * (c->k[i] - 1) + 1;
        c->pad[i] = irand(0, ext - 1), c->pad_after[i] = irand(0, ext - 1);
        c->in[i] = irand(FC_MAX(1, ext - c->pad[i] - c->pad_after[i]),
                         rank == 3 ? 7 : rank == 2 ? 24 : 60);
    }
    char *name = conv_names[conv_named++ % MAX_RANDOM];
    snprintf(name, 96, "random n%td c%td->%td g%td in %tdx%tdx%td k %tdx%tdx%td s %td,%td,%td "
             "d %td,%td,%td p %td/%td,%td/%td,%td/%td", c->n, c->c_in, c->c_out, c->groups,
             c->in[0], c->in[1], c->in[2], c->k[0], c->k[1], c->k[2], c->s[0], c->s[1], c->s[2],
             c->d[0], c->d[1], c->d[2], c->pad[0], c->pad_after[0], c->pad[1], c->pad_after[1],
             c->pad[2], c->pad_after[2]);
    c->name = name;
}

static void test_conv(void)
{
    static const conv_case cases[] = {
        /* name            n  cin cout g   in           k          s          d          pad   pad_after */
        {"3x3 p1",          2, 5, 11, 1, {1, 9, 13}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"3x3 s2 p1",       1, 3, 8, 1, {1, 15, 17}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"1x1",             2, 16, 9, 1, {1, 7, 7}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {"1x1 s2",          1, 6, 10, 1, {1, 9, 11}, {1, 1, 1}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {"1x1 wide",        1, 4, 5, 1, {1, 48, 45}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {"5x5 d2 p2/3",     1, 4, 6, 1, {1, 14, 19}, {1, 5, 5}, {1, 1, 1}, {1, 2, 2}, {0, 2, 3}, {0, 3, 2}},
        {"7x7 s2 p3 stem",  1, 3, 16, 1, {1, 20, 21}, {1, 7, 7}, {1, 2, 2}, {1, 1, 1}, {0, 3, 3}, {0, 3, 3}},
        {"3x3 s3 p0",       1, 5, 7, 1, {1, 13, 16}, {1, 3, 3}, {1, 3, 3}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {"3x3 K>KC",        1, 32, 12, 1, {1, 6, 9}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"3x3 groups 2",    2, 6, 10, 2, {1, 8, 10}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"3x3 groups 3 s2", 1, 9, 6, 3, {1, 11, 9}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 0}, {0, 0, 1}},
        {"dw 3x3 p1",       2, 8, 8, 8, {1, 10, 14}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"dw 3x3 s2 p1",    1, 6, 6, 6, {1, 15, 31}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"dw 3x3 s2 p0",    1, 4, 4, 4, {1, 12, 12}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}},
        {"dw 3x3 x2 mult",  1, 3, 6, 3, {1, 9, 21}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"dw 5x5 p2",       1, 5, 5, 5, {1, 11, 23}, {1, 5, 5}, {1, 1, 1}, {1, 1, 1}, {0, 2, 2}, {0, 2, 2}},
        {"dw 3x3 d2 s1",    1, 4, 4, 4, {1, 13, 17}, {1, 3, 3}, {1, 1, 1}, {1, 2, 2}, {0, 2, 2}, {0, 2, 2}},
        {"dw 3x3 s3 p2",    1, 4, 8, 4, {1, 13, 17}, {1, 3, 3}, {1, 3, 3}, {1, 1, 1}, {0, 2, 2}, {0, 1, 0}},
        {"1d k5",           2, 4, 7, 1, {1, 1, 37}, {1, 1, 5}, {1, 1, 1}, {1, 1, 1}, {0, 0, 2}, {0, 0, 2}},
        {"1d k3 s3 d2",     1, 3, 9, 1, {1, 1, 41}, {1, 1, 3}, {1, 1, 3}, {1, 1, 2}, {0, 0, 1}, {0, 0, 0}},
        {"1d dw k7",        1, 8, 8, 8, {1, 1, 50}, {1, 1, 7}, {1, 1, 1}, {1, 1, 1}, {0, 0, 3}, {0, 0, 3}},
        {"3d 3x3x3 p1",     1, 3, 5, 1, {5, 6, 7}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
        {"3d s2",           1, 4, 3, 1, {6, 7, 9}, {2, 3, 3}, {2, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 0}},
        {"3d dw",           1, 4, 4, 4, {4, 6, 9}, {3, 3, 3}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}},
    };
    WITH_RANDOM(conv_case, cases, random_conv, all, total)
    for (size_t ci = 0; ci < total; ci++) {
        const conv_case *c = &all[ci];
        fc_conv_geometry g;
        conv_geometry(c, &g);
        const size_t nx = (size_t)g.n * g.c_in * prod3(g.in);
        const size_t ny = (size_t)g.n * g.c_out * prod3(g.out);
        const size_t nw = (size_t)g.c_out * (g.c_in / g.groups) * prod3(g.k);
        double *x = rnd_array(nx), *w = rnd_array(nw), *bias = rnd_array((size_t)g.c_out);
        double *ref = malloc(ny * sizeof(double)), *base = malloc(ny * sizeof(double));
        double *out = malloc(ny * sizeof(double));
        const int with_bias = (ci % 3) != 2;
        conv_ref(&g, x, w, with_bias ? bias : NULL, ref);
        const int depthwise = g.groups == g.c_in;
        for (int kernel = 0; kernel < 3; kernel++) {
            if (kernel == K_DEPTHWISE && !depthwise) continue;
            if (kernel == K_DIRECT && depthwise) continue; /* the front sends those to depthwise */
            for (int f64 = 0; f64 < 2; f64++) {
                const char *dt = f64 ? "f64" : "f32";
                conv_run(FC_ISA_SCALAR, kernel, f64, &g, x, w, with_bias ? bias : NULL, base, 1,
                         0);
                check(fmt("conv %s scalar %s [%s] vs reference", CONV_KERNELS[kernel], dt,
                          c->name),
                      base, ref, ny, tol_of(f64));
                for (int ii = 0; ii < n_isas; ii++)
                    for (int nt = 1; nt <= threads; nt += threads - 1 > 0 ? threads - 1 : 1) {
                        const int isa = isas[ii];
                        int rc = conv_run(isa, kernel, f64, &g, x, w, with_bias ? bias : NULL,
                                          out, nt, (int)((ci + nt) & 1));
                        check_true(fmt("conv %s %s %s [%s] returns 0", CONV_KERNELS[kernel],
                                       ISA_NAMES[isa], dt, c->name),
                                   rc == FC_CONV_OK);
                        check(fmt("conv %s %s %s [%s] threads=%d vs reference",
                                  CONV_KERNELS[kernel], ISA_NAMES[isa], dt, c->name, nt),
                              out, ref, ny, tol_of(f64));
                        check(fmt("conv %s %s %s [%s] threads=%d vs scalar",
                                  CONV_KERNELS[kernel], ISA_NAMES[isa], dt, c->name, nt),
                              out, base, ny, 2 * tol_of(f64));
                        if (threads == 1) break;
                    }
            }
        }
        free(x), free(w), free(bias), free(ref), free(base), free(out);
    }
    free(all);
}

/* ---------------------------------------------------------------- Winograd */

/* G of F(m, 3) (alpha x 3), as fastconv._winograd_plan.matrices derives it from the points
 * (without its snapping of entries to k/1024: a difference of an ulp). */
static void winograd_G(int tile, double *G)
{
    static const double r2 = 1.4142135623730951;
    const double p2[] = {0.0, 1.0, -1.0};
    const double p4[] = {0.0, r2 / 2, -r2 / 2, r2, -r2};
    const double p6[] = {0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5};
    const double *pts = tile == 2 ? p2 : tile == 4 ? p4 : p6;
    const int alpha = tile + 2, n = alpha - 1;
    for (int j = 0; j < n; j++) {
        double f = 1.0;
        for (int l = 0; l < n; l++)
            if (l != j) f *= pts[j] - pts[l];
        for (int k = 0; k < 3; k++) G[j * 3 + k] = pow(pts[j], k) / f;
    }
    G[n * 3 + 0] = 0.0, G[n * 3 + 1] = 0.0, G[n * 3 + 2] = 1.0;
}

typedef struct {
    int batch, c_in, c_out, groups, h, w, top, bottom, left, right;
    int block_tiles, k_split;
} wino_case;

static int wino_run(int isa, int f64, int tile, const wino_case *c, const double *x,
                    const double *w, const double *bias, double *y, int nt, int skew)
{
    const int cg = c->c_in / c->groups;
    fc_winograd_geometry geo = {c->batch, c->c_in, c->c_out, c->groups, c->h, c->w,
                                c->h + c->top + c->bottom - 2, c->w + c->left + c->right - 2,
                                c->top, c->left, tile, c->block_tiles, c->k_split};
    const size_t nx = (size_t)c->batch * c->c_in * c->h * c->w;
    const size_t ny = (size_t)c->batch * c->c_out * geo.out_h * geo.out_w;
    const size_t nw = (size_t)c->c_out * cg * 9;
    double G[8 * 3];
    winograd_G(tile, G);
    tbuf xb = to_t(x, nx, f64, skew), wb = to_t(w, nw, f64, 0);
    tbuf bb = to_t(bias, (size_t)c->c_out, f64, 0), yb = to_t(NULL, ny, f64, skew);
    const size_t np = fc_winograd_packed_weights_size(isa, f64, tile, c->c_out, cg, c->groups);
    void *packed = fc_malloc(np * (f64 ? 8 : 4));
    int rc;
    fc_winograd_resolve(isa, f64 ? FC_GEMM_F64 : FC_GEMM_F32, &geo, nt);
    if (f64) {
        fc_winograd_transform_weights_f64(isa, tile, c->c_out, cg, c->groups,
                                          (const double *)wb.p, G, (double *)packed, nt);
        rc = fc_winograd_conv2d_f64(isa, &geo, (const double *)xb.p, (const double *)packed,
                                    bias ? (const double *)bb.p : NULL, (double *)yb.p, nt);
    } else {
        fc_winograd_transform_weights_f32(isa, tile, c->c_out, cg, c->groups,
                                          (const float *)wb.p, G, (float *)packed, nt);
        rc = fc_winograd_conv2d_f32(isa, &geo, (const float *)xb.p, (const float *)packed,
                                    bias ? (const float *)bb.p : NULL, (float *)yb.p, nt);
    }
    from_t(yb.p, ny, f64, y);
    free(xb.base), free(wb.base), free(bb.base), free(yb.base), fc_free(packed);
    return rc;
}

/* A random Winograd layer: batch 1-2, groups 1-2, 1-10 input and 1-12 output channels per
 * group, 1-20 rows and columns, pads 0-2, sometimes explicit blocks and channel splits. */
static void random_wino(wino_case *c)
{
    c->batch = (int)irand(1, 2), c->groups = (int)irand(1, 2);
    c->c_in = c->groups * (int)irand(1, 10), c->c_out = c->groups * (int)irand(1, 12);
    c->top = (int)irand(0, 2), c->bottom = (int)irand(0, 2);
    c->left = (int)irand(0, 2), c->right = (int)irand(0, 2);
    c->h = (int)irand(FC_MAX(1, 3 - c->top - c->bottom), 20);
    c->w = (int)irand(FC_MAX(1, 3 - c->left - c->right), 20);
    c->block_tiles = irand(0, 2) == 0 ? (int)irand(1, 24) : 0;
    c->k_split = irand(0, 2) == 0 ? (int)irand(1, 3) : 0;
}

static void test_winograd(void)
{
    static const wino_case cases[] = {
        /* batch cin cout g  h   w  top bot left right block split */
        {2, 5, 9, 1, 11, 13, 1, 1, 1, 1, 0, 0},
        {1, 8, 8, 2, 9, 10, 1, 0, 0, 2, 0, 0},   /* groups, asymmetric pads */
        {1, 4, 17, 1, 16, 16, 0, 0, 0, 0, 0, 0}, /* no pads, c_out past two MR panels */
        {3, 6, 10, 1, 7, 6, 2, 2, 1, 1, 0, 0},   /* batch > 1 on small images: blocks span images */
        {1, 12, 20, 1, 14, 15, 1, 1, 1, 1, 8, 2}, /* explicit small blocks and 2 channel splits */
    };
    static const double bound32[7] = {0, 0, 3e-6, 0, 1e-5, 0, 6e-5};
    static const double bound64[7] = {0, 0, 6e-15, 0, 2e-14, 0, 1e-13};
    WITH_RANDOM(wino_case, cases, random_wino, all, total)
    for (size_t ci = 0; ci < total; ci++) {
        const wino_case *c = &all[ci];
        char desc[128];
        snprintf(desc, sizeof desc, "b%d c%d->%d g%d %dx%d pads %d/%d,%d/%d block %d split %d",
                 c->batch, c->c_in, c->c_out, c->groups, c->h, c->w, c->top, c->bottom,
                 c->left, c->right, c->block_tiles, c->k_split);
        const int cg = c->c_in / c->groups;
        const int oh = c->h + c->top + c->bottom - 2, ow = c->w + c->left + c->right - 2;
        fc_conv_geometry g = {c->batch, c->c_in, c->c_out, c->groups, {1, c->h, c->w},
                              {1, oh, ow}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, c->top, c->left}};
        const size_t nx = (size_t)c->batch * c->c_in * c->h * c->w;
        const size_t ny = (size_t)c->batch * c->c_out * oh * ow;
        double *x = rnd_array(nx), *w = rnd_array((size_t)c->c_out * cg * 9);
        double *bias = rnd_array((size_t)c->c_out);
        double *ref = malloc(ny * sizeof(double)), *base = malloc(ny * sizeof(double));
        double *out = malloc(ny * sizeof(double));
        const int with_bias = ci != 2;
        conv_ref(&g, x, w, with_bias ? bias : NULL, ref);
        for (int tile = 2; tile <= 6; tile += 2)
            for (int f64 = 0; f64 < 2; f64++) {
                const char *dt = f64 ? "f64" : "f32";
                const double tol = f64 ? bound64[tile] : bound32[tile];
                wino_run(FC_ISA_SCALAR, f64, tile, c, x, w, with_bias ? bias : NULL, base, 1, 0);
                check(fmt("winograd F(%d,3) scalar %s [%s] vs reference", tile, dt, desc),
                      base, ref, ny, tol);
                for (int ii = 0; ii < n_isas; ii++)
                    for (int nt = 1; nt <= threads; nt += threads - 1 > 0 ? threads - 1 : 1) {
                        const int isa = isas[ii];
                        int rc = wino_run(isa, f64, tile, c, x, w, with_bias ? bias : NULL, out,
                                          nt, (int)(ci & 1));
                        check_true(fmt("winograd F(%d,3) %s %s [%s] returns 0", tile,
                                       ISA_NAMES[isa], dt, desc),
                                   rc == 0);
                        check(fmt("winograd F(%d,3) %s %s [%s] threads=%d vs reference",
                                  tile, ISA_NAMES[isa], dt, desc, nt),
                              out, ref, ny, tol);
                        check(fmt("winograd F(%d,3) %s %s [%s] threads=%d vs scalar", tile,
                                  ISA_NAMES[isa], dt, desc, nt),
                              out, base, ny, 2 * tol);
                        if (threads == 1) break;
                    }
            }
        free(x), free(w), free(bias), free(ref), free(base), free(out);
    }
    free(all);
}

/* ---------------------------------------------------------------- transposed convolution */

typedef struct {
    const char *name;
    ptrdiff_t batch, c_in, c_out, groups;
    ptrdiff_t in[3], k[3], s[3], d[3], pad[3], pad_after[3], out_pad[3];
} convt_case;

static void convt_geometry(const convt_case *c, fc_convt_geometry *g)
{
    g->batch = c->batch, g->c_in = c->c_in, g->c_out = c->c_out, g->groups = c->groups;
    for (int i = 0; i < 3; i++) {
        g->isize[i] = c->in[i], g->k[i] = c->k[i], g->s[i] = c->s[i], g->d[i] = c->d[i];
        g->pad[i] = c->pad[i];
        g->osize[i] = (c->in[i] - 1) * c->s[i] - c->pad[i] - c->pad_after[i] +
                      c->d[i] * (c->k[i] - 1) + 1 + c->out_pad[i];
    }
}

/* y (batch, c_out, osize) from x (batch, c_in, isize), w (c_in, c_out / groups, k) */
static void convt_ref(const fc_convt_geometry *g, const double *x, const double *w,
                      const double *bias, double *y)
{
    const ptrdiff_t cpg = g->c_in / g->groups, opg = g->c_out / g->groups;
    const size_t isz = prod3(g->isize), osz = prod3(g->osize), ksz = prod3(g->k);
    for (ptrdiff_t n = 0; n < g->batch; n++)
        for (ptrdiff_t co = 0; co < g->c_out; co++)
            for (size_t o = 0; o < osz; o++)
                y[(n * g->c_out + co) * osz + o] = bias ? bias[co] : 0.0;
    for (ptrdiff_t n = 0; n < g->batch; n++)
        for (ptrdiff_t ci = 0; ci < g->c_in; ci++) {
            const ptrdiff_t gi = ci / cpg;
            for (ptrdiff_t col = 0; col < opg; col++)
                for (ptrdiff_t i0 = 0; i0 < g->isize[0]; i0++)
                    for (ptrdiff_t i1 = 0; i1 < g->isize[1]; i1++)
                        for (ptrdiff_t i2 = 0; i2 < g->isize[2]; i2++) {
                            const double xv = x[(n * g->c_in + ci) * isz +
                                                (i0 * g->isize[1] + i1) * g->isize[2] + i2];
                            for (ptrdiff_t k0 = 0; k0 < g->k[0]; k0++)
                                for (ptrdiff_t k1 = 0; k1 < g->k[1]; k1++)
                                    for (ptrdiff_t k2 = 0; k2 < g->k[2]; k2++) {
                                        ptrdiff_t o0 = i0 * g->s[0] - g->pad[0] + k0 * g->d[0];
                                        ptrdiff_t o1 = i1 * g->s[1] - g->pad[1] + k1 * g->d[1];
                                        ptrdiff_t o2 = i2 * g->s[2] - g->pad[2] + k2 * g->d[2];
                                        if (o0 < 0 || o0 >= g->osize[0] || o1 < 0 ||
                                            o1 >= g->osize[1] || o2 < 0 || o2 >= g->osize[2])
                                            continue;
                                        const double wv =
                                            w[(ci * opg + col) * ksz +
                                              (k0 * g->k[1] + k1) * g->k[2] + k2];
                                        y[(n * g->c_out + gi * opg + col) * osz +
                                          (o0 * g->osize[1] + o1) * g->osize[2] + o2] += xv * wv;
                                    }
                        }
        }
}

static int convt_run(int isa, int algorithm, int prepared, int f64, const fc_convt_geometry *g,
                     const double *x, const double *w, const double *bias, double *y, int nt,
                     int skew)
{
    const size_t nx = (size_t)g->batch * g->c_in * prod3(g->isize);
    const size_t ny = (size_t)g->batch * g->c_out * prod3(g->osize);
    const size_t nw = (size_t)g->c_in * (g->c_out / g->groups) * prod3(g->k);
    tbuf xb = to_t(x, nx, f64, skew), wb = to_t(w, nw, f64, 0);
    tbuf bb = to_t(bias, (size_t)g->c_out, f64, 0), yb = to_t(NULL, ny, f64, skew);
    void *prep = NULL;
    int rc = FC_CONVT_OK;
    if (prepared) {
        size_t np = f64 ? fc_convt_prepared_size_f64(isa, algorithm, g)
                        : fc_convt_prepared_size_f32(isa, algorithm, g);
        prep = fc_malloc((np ? np : 1) * (f64 ? 8 : 4));
        rc = f64 ? fc_convt_prepare_f64(isa, algorithm, g, (const double *)wb.p, (double *)prep)
                 : fc_convt_prepare_f32(isa, algorithm, g, (const float *)wb.p, (float *)prep);
    }
    if (rc == FC_CONVT_OK) {
        if (f64)
            rc = fc_convt_run_f64(isa, algorithm, g, (const double *)xb.p, (const double *)prep,
                                  (const double *)wb.p, bias ? (const double *)bb.p : NULL,
                                  (double *)yb.p, nt);
        else
            rc = fc_convt_run_f32(isa, algorithm, g, (const float *)xb.p, (const float *)prep,
                                  (const float *)wb.p, bias ? (const float *)bb.p : NULL,
                                  (float *)yb.p, nt);
    }
    from_t(yb.p, ny, f64, y);
    free(xb.base), free(wb.base), free(bb.base), free(yb.base);
    if (prep) fc_free(prep);
    return rc;
}

static char convt_names[MAX_RANDOM][112];
static int convt_named = 0;

/* A random transposed convolution: rank 1-3, groups 1-2, kernel 1-4, stride 1-3, dilation 1-2,
 * crops up to dilation * (kernel - 1) each side, output padding below max(stride, dilation). */
static void random_convt(convt_case *c)
{
    const int rank = (int)irand(1, 3);
    c->batch = irand(1, 2), c->groups = irand(1, 2);
    c->c_in = c->groups * irand(1, 6), c->c_out = c->groups * irand(1, 8);
    for (int i = 0; i < 3; i++) {
        c->in[i] = c->k[i] = c->s[i] = c->d[i] = 1;
        c->pad[i] = c->pad_after[i] = c->out_pad[i] = 0;
        if (i < 3 - rank) continue;
        c->k[i] = irand(1, 4), c->s[i] = irand(1, 3), c->d[i] = irand(1, 2);
        c->in[i] = irand(1, rank == 3 ? 4 : rank == 2 ? 9 : 25);
        const ptrdiff_t full = (c->in[i] - 1) * c->s[i] + c->d[i] * (c->k[i] - 1) + 1;
        c->pad[i] = irand(0, c->d[i] * (c->k[i] - 1));
        c->pad_after[i] = irand(0, c->d[i] * (c->k[i] - 1));
        c->out_pad[i] = irand(0, FC_MAX(c->s[i], c->d[i]) - 1);
        while (full - c->pad[i] - c->pad_after[i] + c->out_pad[i] < 1)
            c->pad_after[i] > 0 ? c->pad_after[i]-- : c->pad[i]--;
    }
    char *name = convt_names[convt_named++ % MAX_RANDOM];
    snprintf(name, 112, "random b%td c%td->%td g%td in %tdx%tdx%td k %tdx%tdx%td s %td,%td,%td "
             "d %td,%td,%td p %td/%td,%td/%td,%td/%td op %td,%td,%td", c->batch, c->c_in,
             c->c_out, c->groups, c->in[0], c->in[1], c->in[2], c->k[0], c->k[1], c->k[2],
             c->s[0], c->s[1], c->s[2], c->d[0], c->d[1], c->d[2], c->pad[0], c->pad_after[0],
             c->pad[1], c->pad_after[1], c->pad[2], c->pad_after[2], c->out_pad[0],
             c->out_pad[1], c->out_pad[2]);
    c->name = name;
}

static void test_convt(void)
{
    static const convt_case cases[] = {
        /* name          b  cin cout g  in            k          s          d          pad        pad_after  out_pad */
        {"3x3 s2 p1 op1", 2, 5, 7, 1, {1, 6, 7}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, {0, 1, 1}},
        {"4x4 s2 p1",     1, 6, 9, 1, {1, 5, 9}, {1, 4, 4}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, {0, 0, 0}},
        {"2x2 s2",        2, 4, 10, 1, {1, 7, 5}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}},
        {"3x3 s1 p1",     1, 9, 5, 1, {1, 8, 11}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, {0, 0, 0}},
        {"3x3 s2 d2",     1, 3, 4, 1, {1, 6, 6}, {1, 3, 3}, {1, 2, 2}, {1, 2, 2}, {0, 2, 1}, {0, 1, 2}, {0, 1, 0}},
        {"3x3 s3 g2",     1, 6, 8, 2, {1, 5, 4}, {1, 3, 3}, {1, 3, 3}, {1, 1, 1}, {0, 0, 1}, {0, 0, 1}, {0, 2, 1}},
        {"1d k5 s2",      2, 4, 6, 1, {1, 1, 23}, {1, 1, 5}, {1, 1, 2}, {1, 1, 1}, {0, 0, 2}, {0, 0, 2}, {0, 0, 1}},
        {"1d k2 s2",      1, 3, 5, 1, {1, 1, 30}, {1, 1, 2}, {1, 1, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}},
        {"3d 3 s2 p1",    1, 3, 4, 1, {3, 4, 5}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, {1, 1, 1}, {1, 0, 1}},
        {"3d 2 s2",       1, 4, 3, 1, {2, 3, 4}, {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0}, {0, 0, 0}, {0, 0, 0}},
        {"3x3 K>KC phase", 1, 70, 30, 1, {1, 4, 5}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, {0, 1, 1}, {0, 1, 1}},
    };
    static const char *const ALG[] = {"gemm", "phase"};
    WITH_RANDOM(convt_case, cases, random_convt, all, total)
    for (size_t ci = 0; ci < total; ci++) {
        const convt_case *c = &all[ci];
        fc_convt_geometry g;
        convt_geometry(c, &g);
        const size_t nx = (size_t)g.batch * g.c_in * prod3(g.isize);
        const size_t ny = (size_t)g.batch * g.c_out * prod3(g.osize);
        const size_t nw = (size_t)g.c_in * (g.c_out / g.groups) * prod3(g.k);
        double *x = rnd_array(nx), *w = rnd_array(nw), *bias = rnd_array((size_t)g.c_out);
        double *ref = malloc(ny * sizeof(double)), *base = malloc(ny * sizeof(double));
        double *out = malloc(ny * sizeof(double));
        const int with_bias = (ci % 3) != 1;
        convt_ref(&g, x, w, with_bias ? bias : NULL, ref);
        for (int alg = 0; alg < 2; alg++)
            for (int f64 = 0; f64 < 2; f64++) {
                const char *dt = f64 ? "f64" : "f32";
                convt_run(FC_ISA_SCALAR, alg, 0, f64, &g, x, w, with_bias ? bias : NULL, base, 1,
                          0);
                check(fmt("convt %s scalar %s [%s] vs reference", ALG[alg], dt, c->name), base,
                      ref, ny, tol_of(f64));
                for (int ii = 0; ii < n_isas; ii++)
                    for (int prepared = 0; prepared < 2; prepared++) {
                        const int isa = isas[ii], nt = prepared ? threads : 1;
                        int rc = convt_run(isa, alg, prepared, f64, &g, x, w,
                                           with_bias ? bias : NULL, out, nt,
                                           (int)((ci + prepared) & 1));
                        check_true(fmt("convt %s %s %s [%s] returns 0", ALG[alg], ISA_NAMES[isa],
                                       dt, c->name),
                                   rc == FC_CONVT_OK);
                        check(fmt("convt %s %s %s [%s] prepared=%d threads=%d vs reference",
                                  ALG[alg], ISA_NAMES[isa], dt, c->name, prepared, nt),
                              out, ref, ny, tol_of(f64));
                        check(fmt("convt %s %s %s [%s] prepared=%d threads=%d vs scalar",
                                  ALG[alg], ISA_NAMES[isa], dt, c->name, prepared, nt),
                              out, base, ny, 2 * tol_of(f64));
                    }
            }
        free(x), free(w), free(bias), free(ref), free(base), free(out);
    }
    free(all);
}

/* ---------------------------------------------------------------- pooling */

typedef struct {
    const char *name;
    int64_t planes;
    int64_t in[3], k[3], s[3], d[3], pad[3];
    int ceil_mode;
} pool_case;

/* the plan the Python front builds (fastconv.pool._make_window): symmetric pads, the output
 * size of fastconv.shapes.pool_output_size, limit = input + pad after */
static void pool_plan(const pool_case *c, int kind, int cip, double divisor, double p,
                      fc_pool_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->planes = c->planes;
    for (int i = 0; i < 3; i++) {
        const int64_t span = c->in[i] + 2 * c->pad[i] - c->d[i] * (c->k[i] - 1) - 1;
        int64_t o = (c->ceil_mode ? (span + c->s[i] - 1) / c->s[i] : span / c->s[i]) + 1;
        /* ceil mode: the last window must start inside the input or the left padding */
        if (c->ceil_mode && (o - 1) * c->s[i] >= c->in[i] + c->pad[i]) o--;
        plan->isize[i] = c->in[i], plan->osize[i] = o;
        plan->kernel[i] = c->k[i], plan->stride[i] = c->s[i], plan->dilation[i] = c->d[i];
        plan->pad[i] = c->pad[i], plan->limit[i] = c->in[i] + c->pad[i];
    }
    plan->kind = kind, plan->count_include_pad = cip, plan->divisor = divisor, plan->p = p;
}

static double nan_max(double a, double b) { return (b > a || isnan(b)) ? b : a; }

static void pool_ref(const fc_pool_plan *p, const double *x, double *y)
{
    const int64_t *is = p->isize, *os = p->osize;
    const int64_t isz = is[0] * is[1] * is[2], osz = os[0] * os[1] * os[2];
    for (int64_t pl = 0; pl < p->planes; pl++)
        for (int64_t o = 0; o < osz; o++) {
            const int64_t oo[3] = {o / (os[1] * os[2]), o / os[2] % os[1], o % os[2]};
            /* a window of padding only: max -inf, the sums and Lp (inf too: |x| >= 0) 0 */
            double acc = p->kind == FC_POOL_MAX ? -INFINITY : 0.0;
            int64_t counted[3] = {0, 0, 0};
            for (int dim = 0; dim < 3; dim++)
                for (int64_t t = 0; t < p->kernel[dim]; t++) {
                    const int64_t pos = oo[dim] * p->stride[dim] - p->pad[dim] + t * p->dilation[dim];
                    const int in = pos >= 0 && pos < is[dim];
                    const int inside_limit = pos >= -p->pad[dim] && pos < p->limit[dim];
                    counted[dim] += p->count_include_pad ? inside_limit : in;
                }
            for (int64_t a = 0; a < p->kernel[0]; a++)
                for (int64_t b = 0; b < p->kernel[1]; b++)
                    for (int64_t c = 0; c < p->kernel[2]; c++) {
                        const int64_t i0 = oo[0] * p->stride[0] - p->pad[0] + a * p->dilation[0];
                        const int64_t i1 = oo[1] * p->stride[1] - p->pad[1] + b * p->dilation[1];
                        const int64_t i2 = oo[2] * p->stride[2] - p->pad[2] + c * p->dilation[2];
                        if (i0 < 0 || i0 >= is[0] || i1 < 0 || i1 >= is[1] || i2 < 0 ||
                            i2 >= is[2])
                            continue;
                        const double v = x[pl * isz + (i0 * is[1] + i1) * is[2] + i2];
                        if (p->kind == FC_POOL_MAX)
                            acc = nan_max(acc, v);
                        else if (p->kind == FC_POOL_AVG)
                            acc += v;
                        else if (isinf(p->p))
                            acc = nan_max(acc, fabs(v));
                        else
                            acc += pow(fabs(v), p->p);
                    }
            if (p->kind == FC_POOL_AVG)
                acc /= p->divisor > 0 ? p->divisor
                                      : (double)(counted[0] * counted[1] * counted[2]);
            else if (p->kind == FC_POOL_LP && !isinf(p->p) && p->p != 1.0)
                acc = pow(acc, 1.0 / p->p);
            y[pl * osz + o] = acc;
        }
}

static int pool_run(int isa, int f64, const fc_pool_plan *plan0, const double *x, double *y,
                    int64_t *indices, int nt, int skew)
{
    fc_pool_plan plan = *plan0;
    plan.isa = isa, plan.nthreads = nt;
    const size_t nx = (size_t)(plan.planes * plan.isize[0] * plan.isize[1] * plan.isize[2]);
    const size_t ny = (size_t)(plan.planes * plan.osize[0] * plan.osize[1] * plan.osize[2]);
    tbuf xb = to_t(x, nx, f64, skew), yb = to_t(NULL, ny, f64, skew);
    int rc = fc_pool(&plan, f64 ? FC_F64 : FC_F32, xb.p, yb.p, indices);
    from_t(yb.p, ny, f64, y);
    free(xb.base), free(yb.base);
    return rc;
}

static char pool_names[MAX_RANDOM][112];
static int pool_named = 0;

/* A random windowed pool: rank 1-3, kernel 1-4, stride 1-3 (or the kernel), dilation 1-2, pads
 * up to half the dilated extent (sometimes up to all of it but one), ceil mode or not. */
static void random_pool(pool_case *c)
{
    const int rank = (int)irand(1, 3);
    c->planes = irand(1, 4), c->ceil_mode = (int)irand(0, 1);
    for (int i = 0; i < 3; i++) {
        c->in[i] = c->k[i] = c->s[i] = c->d[i] = 1, c->pad[i] = 0;
        if (i < 3 - rank) continue;
        c->k[i] = irand(1, 4), c->d[i] = irand(1, 2);
        c->s[i] = irand(0, 2) == 0 ? c->k[i] : irand(1, 3);
        const ptrdiff_t ext = c->d[i] * (c->k[i] - 1) + 1;
        c->pad[i] = irand(0, irand(0, 3) == 0 ? ext - 1 : (ext - 1) / 2);
        c->in[i] = irand(FC_MAX(1, ext - 2 * c->pad[i]), rank == 3 ? 8 : rank == 2 ? 24 : 80);
    }
    char *name = pool_names[pool_named++ % MAX_RANDOM];
    snprintf(name, 112, "random planes %lld in %lldx%lldx%lld k %lldx%lldx%lld s %lld,%lld,%lld "
             "d %lld,%lld,%lld p %lld,%lld,%lld%s", (long long)c->planes, (long long)c->in[0],
             (long long)c->in[1], (long long)c->in[2], (long long)c->k[0], (long long)c->k[1],
             (long long)c->k[2], (long long)c->s[0], (long long)c->s[1], (long long)c->s[2],
             (long long)c->d[0], (long long)c->d[1], (long long)c->d[2], (long long)c->pad[0],
             (long long)c->pad[1], (long long)c->pad[2], c->ceil_mode ? " ceil" : "");
    c->name = name;
}

static void test_pool(void)
{
    static const pool_case cases[] = {
        /* name             planes in            k          s          d          pad      ceil */
        {"2x2 s2 pairs",     6, {1, 14, 14}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, 0},
        {"2x2 s2 flat",      3, {1, 9, 13}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, 0},
        {"2x2 s2 wide",      2, {1, 6, 150}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, 0},
        {"3x3 s2 p1",        3, {1, 15, 17}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, 0},
        {"3x3 s2 ceil",      2, {1, 12, 20}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 0, 0}, 1},
        {"2x2 s2 p1",        2, {1, 11, 21}, {1, 2, 2}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, 0},
        {"3x3 s1 p1",        2, {1, 10, 23}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1}, {0, 1, 1}, 0},
        {"3x3 s2 wide",      1, {1, 7, 301}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1}, {0, 1, 1}, 0},
        {"3x3 d2 s1",        2, {1, 13, 19}, {1, 3, 3}, {1, 1, 1}, {1, 2, 2}, {0, 2, 2}, 0},
        {"5x3 s3x2 p2x1",    2, {1, 16, 25}, {1, 5, 3}, {1, 3, 2}, {1, 1, 2}, {0, 2, 1}, 1},
        {"4x4 s3 ceil",      2, {1, 17, 22}, {1, 4, 4}, {1, 3, 3}, {1, 1, 1}, {0, 1, 1}, 1},
        {"1d k3 s2",         4, {1, 1, 33}, {1, 1, 3}, {1, 1, 2}, {1, 1, 1}, {0, 0, 1}, 0},
        {"1d k4 s1",         3, {1, 1, 40}, {1, 1, 4}, {1, 1, 1}, {1, 1, 1}, {0, 0, 2}, 0},
        {"3d 2x2x2 s2",      2, {6, 8, 10}, {2, 2, 2}, {2, 2, 2}, {1, 1, 1}, {0, 0, 0}, 0},
        {"3d 3x3x3 s2 p1",   2, {5, 7, 9}, {3, 3, 3}, {2, 2, 2}, {1, 1, 1}, {1, 1, 1}, 1},
    };
    struct {
        int kind, cip;
        double divisor, p;
        const char *name;
    } modes[] = {
        {FC_POOL_MAX, 0, 0, 0, "max"},
        {FC_POOL_AVG, 1, 0, 0, "avg"},
        {FC_POOL_AVG, 0, 0, 0, "avg excl-pad"},
        {FC_POOL_AVG, 1, 3, 0, "avg divisor=3"},
        {FC_POOL_LP, 0, 0, 2.0, "lp p=2"},
        {FC_POOL_LP, 0, 0, 1.0, "lp p=1"},
        {FC_POOL_LP, 0, 0, 3.0, "lp p=3"},
        {FC_POOL_LP, 0, 0, INFINITY, "lp p=inf"},
    };
    WITH_RANDOM(pool_case, cases, random_pool, all, total)
    for (size_t ci = 0; ci < total; ci++) {
        const pool_case *c = &all[ci];
        const size_t nx = (size_t)(c->planes * c->in[0] * c->in[1] * c->in[2]);
        double *x = rnd_array(nx), *xnan = malloc(nx * sizeof(double));
        for (size_t i = 0; i < nx; i++) xnan[i] = (i * 7919) % 97 == 5 ? NAN : x[i];
        for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
            fc_pool_plan plan;
            pool_plan(c, modes[mi].kind, modes[mi].cip, modes[mi].divisor, modes[mi].p, &plan);
            const size_t ny = (size_t)(plan.planes * plan.osize[0] * plan.osize[1] *
                                       plan.osize[2]);
            double *ref = malloc(ny * sizeof(double)), *base = malloc(ny * sizeof(double));
            double *out = malloc(ny * sizeof(double));
            int64_t *ibase = malloc(ny * sizeof(int64_t)), *iout = malloc(ny * sizeof(int64_t));
            const int is_max = modes[mi].kind == FC_POOL_MAX;
            const int nan_runs = is_max || (modes[mi].kind == FC_POOL_AVG && modes[mi].cip);
            for (int nan = 0; nan <= nan_runs; nan++) {
                const double *xin = nan ? xnan : x;
                const char *tag = nan ? " NaN" : "";
                pool_ref(&plan, xin, ref);
                for (int f64 = 0; f64 < 2; f64++) {
                    const char *dt = f64 ? "f64" : "f32";
                    /* max is exact; Lp's pow may differ by an ulp between libm and a
                     * vectorised path, far below the tolerance */
                    const double tol = is_max ? 0.0 : tol_of(f64);
                    pool_run(FC_ISA_SCALAR, f64, &plan, xin, base, is_max ? ibase : NULL, 1, 0);
                    check(fmt("pool %s%s scalar %s [%s] vs reference", modes[mi].name, tag, dt,
                              c->name),
                          base, ref, ny, tol);
                    for (int ii = 0; ii < n_isas; ii++)
                        for (int nt = 1; nt <= threads;
                             nt += threads - 1 > 0 ? threads - 1 : 1) {
                            const int isa = isas[ii];
                            int rc = pool_run(isa, f64, &plan, xin, out, is_max ? iout : NULL,
                                              nt, (int)((ci + nt) & 1));
                            check_true(fmt("pool %s %s %s [%s] returns 0", modes[mi].name,
                                           ISA_NAMES[isa], dt, c->name),
                                       rc == 0);
                            check(fmt("pool %s%s %s %s [%s] threads=%d vs reference",
                                      modes[mi].name, tag, ISA_NAMES[isa], dt, c->name, nt),
                                  out, ref, ny, tol);
                            check(fmt("pool %s%s %s %s [%s] threads=%d vs scalar",
                                      modes[mi].name, tag, ISA_NAMES[isa], dt, c->name, nt),
                                  out, base, ny, 2 * tol);
                            if (is_max)
                                check_true(fmt("pool max%s %s %s [%s] threads=%d: indices as "
                                               "scalar's",
                                               tag, ISA_NAMES[isa], dt, c->name, nt),
                                           memcmp(ibase, iout, ny * sizeof(int64_t)) == 0);
                            if (threads == 1) break;
                        }
                }
            }
            free(ref), free(base), free(out), free(ibase), free(iout);
        }
        free(x), free(xnan);
    }
    free(all);
}

static void global_ref(int kind, const double *x, double *y, int64_t planes, int64_t size)
{
    for (int64_t c = 0; c < planes; c++) {
        double acc = kind == FC_POOL_MAX ? -INFINITY : 0.0;
        for (int64_t i = 0; i < size; i++)
            acc = kind == FC_POOL_MAX ? nan_max(acc, x[c * size + i]) : acc + x[c * size + i];
        y[c] = kind == FC_POOL_MAX ? acc : acc / (double)size;
    }
}

static void test_global_pool(void)
{
    static const int64_t sizes[] = {1, 3, 4, 7, 8, 9, 16, 49, 50, 196, 1001};
    const int64_t planes = 5;
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const int64_t size = sizes[si];
        const size_t n = (size_t)(planes * size);
        double *x = rnd_array(n), *ref = malloc(planes * sizeof(double));
        double *base = malloc(planes * sizeof(double)), *out = malloc(planes * sizeof(double));
        if (si % 2) x[n / 2] = NAN; /* a NaN in plane 2: max and mean return NaN there */
        for (int kind = 0; kind < 2; kind++) {
            global_ref(kind, x, ref, planes, size);
            for (int f64 = 0; f64 < 2; f64++) {
                const char *dt = f64 ? "f64" : "f32";
                const char *kn = kind == FC_POOL_MAX ? "max" : "avg";
                const double tol = kind == FC_POOL_MAX ? 0.0 : tol_of(f64);
                tbuf xb = to_t(x, n, f64, (int)(si & 1)), yb = to_t(NULL, (size_t)planes, f64, 0);
                fc_global_pool(kind, f64 ? FC_F64 : FC_F32, planes, size, xb.p, yb.p,
                               FC_ISA_SCALAR, 1);
                from_t(yb.p, (size_t)planes, f64, base);
                check(fmt("global %s scalar %s size=%lld vs reference", kn, dt, (long long)size),
                      base, ref, (size_t)planes, tol);
                for (int ii = 0; ii < n_isas; ii++) {
                    const int isa = isas[ii];
                    fc_global_pool(kind, f64 ? FC_F64 : FC_F32, planes, size, xb.p, yb.p, isa,
                                   threads);
                    from_t(yb.p, (size_t)planes, f64, out);
                    check(fmt("global %s %s %s size=%lld vs reference", kn, ISA_NAMES[isa], dt,
                              (long long)size),
                          out, ref, (size_t)planes, tol);
                    check(fmt("global %s %s %s size=%lld vs scalar", kn, ISA_NAMES[isa], dt,
                              (long long)size),
                          out, base, (size_t)planes, 2 * tol);
                }
                free(xb.base), free(yb.base);
            }
        }
        free(x), free(ref), free(base), free(out);
    }
}

/* ---------------------------------------------------------------- subnormal mode */

/* fastconv/fpstate.h on this CPU (AArch64 FPCR.FZ under qemu, x86 MXCSR natively), as the
 * Cython drivers use it: fc_fp_enter(flush) around a call. With flushing every area's results
 * from normal inputs whose products (or, for the average pool, inputs) are subnormal must be
 * exactly zero, on one thread and on the threaded runs' workers; without it, not all zero. After
 * fc_fp_leave the caller's state is back, and the OpenMP workers do not keep flushing. */
static int count_nonzero(const double *y, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++) k += y[i] != 0.0;
    return k;
}

static void test_fpstate(void)
{
    if (FC_FP_FLUSH_BITS == 0) {
        printf("     (no subnormal mode on this architecture: fpstate checks skipped)\n");
        return;
    }
    const fc_fpstate before = fc_fp_get();
    check_true("fpstate: the caller starts with IEEE subnormals", !fc_fp_flushing());
    int all[FC_ISA_COUNT], n_all = 0;
    all[n_all++] = FC_ISA_SCALAR;
    for (int i = 0; i < n_isas; i++) all[n_all++] = isas[i];
    const gemm_case gc = {16, 70, 8, 0, 0, 0, 0, 0};
    const conv_case cc = {"3x3", 1, 4, 9, 1, {1, 9, 11}, {1, 3, 3}, {1, 1, 1}, {1, 1, 1},
                          {0, 1, 1}, {0, 1, 1}};
    const wino_case wc = {1, 4, 8, 1, 10, 10, 1, 1, 1, 1, 0, 0};
    const convt_case tc = {"3x3 s2", 1, 4, 5, 1, {1, 5, 6}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1},
                           {0, 1, 1}, {0, 1, 1}, {0, 1, 1}};
    const pool_case pc = {"3x3 s2 p1", 4, {1, 9, 12}, {1, 3, 3}, {1, 2, 2}, {1, 1, 1},
                          {0, 1, 1}, 0};
    fc_conv_geometry cg;
    fc_convt_geometry tg;
    fc_pool_plan pp;
    conv_geometry(&cc, &cg);
    convt_geometry(&tc, &tg);
    pool_plan(&pc, FC_POOL_AVG, 1, 0, 0, &pp);
    enum { N = 4096 };
    double *a = malloc(N * sizeof(double)), *b = malloc(N * sizeof(double));
    double *sub = malloc(N * sizeof(double)), *y = malloc(N * sizeof(double));
    for (int f64 = 0; f64 < 2; f64++) {
        /* normal factors with a subnormal product: 1e-20^2 (float), 1e-160^2 (double) */
        const double f = f64 ? 1e-160 : 1e-20, tiny = f64 ? 1e-310 : 1e-39;
        for (int i = 0; i < N; i++) {
            a[i] = f * (1.5 + 0.5 * rnd()), b[i] = f * (1.5 + 0.5 * rnd());
            sub[i] = tiny * (1.5 + 0.5 * rnd());
        }
        for (int flush = 0; flush < 2; flush++)
            for (int ii = 0; ii < n_all; ii++)
                for (int nt = 1; nt <= threads; nt += threads - 1 > 0 ? threads - 1 : 1) {
                    const int isa = all[ii];
                    for (int area = 0; area < 6; area++) {
                        static const char *const AREA[] = {"gemm", "conv direct", "conv im2col",
                                                           "winograd F(4,3)", "convt phase",
                                                           "avg pool"};
                        size_t n = 0;
                        const fc_fpstate saved = fc_fp_enter(flush);
                        switch (area) {
                        case 0:
                            gemm_run(isa, f64, &gc, a, b, NULL, NULL, y, nt, 0);
                            n = (size_t)gc.M * gc.N;
                            break;
                        case 1:
                        case 2:
                            conv_run(isa, area == 1 ? K_DIRECT : K_IM2COL, f64, &cg, a, b, NULL,
                                     y, nt, 0);
                            n = (size_t)cg.n * cg.c_out * prod3(cg.out);
                            break;
                        case 3:
                            wino_run(isa, f64, 4, &wc, a, b, NULL, y, nt, 0);
                            n = (size_t)wc.batch * wc.c_out * (wc.h + wc.top + wc.bottom - 2) *
                                (wc.w + wc.left + wc.right - 2);
                            break;
                        case 4:
                            convt_run(isa, FC_CONVT_PHASE, 0, f64, &tg, a, b, NULL, y, nt, 0);
                            n = (size_t)tg.batch * tg.c_out * prod3(tg.osize);
                            break;
                        default:
                            pool_run(isa, f64, &pp, sub, y, NULL, nt, 0);
                            n = (size_t)(pp.planes * pp.osize[0] * pp.osize[1] * pp.osize[2]);
                        }
                        const int kept = fc_fp_flushing();
                        fc_fp_leave(saved);
                        /* all of the state as it was (x86: the sticky exception flags too) */
                        const int restored = fc_fp_get() == saved &&
                                             (saved & FC_FP_FLUSH_BITS) ==
                                                 (before & FC_FP_FLUSH_BITS);
                        int workers = 0;
                        FC_OMP(parallel num_threads(2) reduction(| : workers))
                        workers |= fc_fp_flushing();
                        const int nz = count_nonzero(y, n);
                        check_true(fmt("fpstate %s %s %s threads=%d flush=%d: %d of %zu results "
                                       "nonzero, mode kept in the call, restored after it, "
                                       "workers not flushing",
                                       AREA[area], ISA_NAMES[isa], f64 ? "f64" : "f32", nt,
                                       flush, nz, n),
                                   (flush ? nz == 0 : nz > 0) && kept == flush && restored &&
                                       !workers);
                    }
                    if (threads == 1) break;
                }
    }
    free(a), free(b), free(sub), free(y);
}

/* ---------------------------------------------------------------- CPU detection, tables */

static void test_cpu(void)
{
#if defined(__aarch64__) || defined(_M_ARM64)
    check_true("cpu.h on aarch64: NEON compiled in", fc_isa_compiled(FC_ISA_NEON));
    check_true("cpu.h on aarch64: NEON reported", fc_cpu_has(FC_ISA_NEON));
    check_true("cpu.h on aarch64: no x86 ISA reported",
               !fc_cpu_has(FC_ISA_AVX2) && !fc_cpu_has(FC_ISA_AVX512));
#elif defined(__x86_64__) || defined(_M_X64)
    check_true("cpu.h on x86-64: NEON not reported", !fc_cpu_has(FC_ISA_NEON));
#endif
    check_true("cpu.h: scalar reported", fc_cpu_has(FC_ISA_SCALAR));
    for (int i = 0; i < n_isas; i++) {
        const fc_gemm_config_f32 *c32 = fc_gemm_config_get_f32(isas[i]);
        const fc_gemm_config_f64 *c64 = fc_gemm_config_get_f64(isas[i]);
        check_true(fmt("gemm config tables of %s present", ISA_NAMES[isas[i]]), c32 && c64);
        if (!c32 || !c64) continue;
        /* the Winograd transforms run FC_WL32 / FC_WL64 tiles side by side: NR must be a
         * multiple of one vector (4 floats / 2 doubles at least) */
        check_true(fmt("gemm %s: nr %% 4 == 0 (f32), nr %% 2 == 0 (f64), kc <= nc",
                       ISA_NAMES[isas[i]]),
                   c32->nr % 4 == 0 && c64->nr % 2 == 0 && c32->kc > 0 && c64->kc > 0);
        /* the FMA peak loop (fastconv bench): 12 chains of full vectors, 2 flops per lane */
        static const int vec_bytes[FC_ISA_COUNT] = {0, 32, 64, 16};
        const long iters = 1000;
        for (int f64 = 0; f64 < 2; f64++) {
            const double lanes = vec_bytes[isas[i]] / (f64 ? 8.0 : 4.0);
            const double flops = fc_gemm_fma_peak_run(isas[i], f64, iters, threads);
            check_true(fmt("fma peak loop %s %s: %.0f flops on %d threads", ISA_NAMES[isas[i]],
                           f64 ? "f64" : "f32", flops, threads),
                       flops == 2.0 * 12.0 * lanes * (double)iters * threads);
        }
        if (verbose)
            printf("     %s: f32 %s (MR %d NR %d KC %d MC %d NC %d), f64 %s (MR %d NR %d)\n",
                   ISA_NAMES[isas[i]], c32->name, c32->mr, c32->nr, c32->kc, c32->mc, c32->nc,
                   c64->name, c64->mr, c64->nr);
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            n_random = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [-v] [-t THREADS] [-r N] [-s SEED]\n", argv[0]);
            return 2;
        }
    }
    if (n_random < 0) n_random = 0;
    if (n_random > MAX_RANDOM) n_random = MAX_RANDOM;
    rng_state ^= seed * 0xD1B54A32D192ED03ull; /* xorshift: any seed but one gives a nonzero state */
    if (!rng_state) rng_state = 1;
    if (threads < 1) threads = 1;
    if (!fc_omp_enabled()) threads = 1;
    for (int isa = 1; isa < FC_ISA_COUNT; isa++)
        if (fc_isa_compiled(isa) && fc_cpu_has(isa)) isas[n_isas++] = isa;
    printf("fastconv kernel check: ISAs compiled and runnable:");
    for (int i = 0; i < n_isas; i++) printf(" %s", ISA_NAMES[isas[i]]);
    printf("%s (against scalar and a float64 reference); OpenMP %s, threaded runs on %d; "
           "%d random cases per area, seed %llu\n",
           n_isas ? "" : " none beyond scalar", fc_omp_enabled() ? "on" : "off", threads,
           n_random, seed);
    fflush(stdout);
    test_cpu();
    test_gemm();
    test_conv();
    test_winograd();
    test_convt();
    test_pool();
    test_global_pool();
    test_fpstate();
    printf("%ld passed, %ld failed\n", n_passed, n_failed);
    return n_failed ? 1 : 0;
}
