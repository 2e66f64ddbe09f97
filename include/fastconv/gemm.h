/* The packed GEMM shared by im2col / 1x1 / Winograd / transposed convolution.
 *
 *     C (M x N, row stride ldc, unit column stride)
 *         = A (M x K) . B (K x N)  (+ bias[m] on row m)  (+ C, if accumulate)
 *
 * M = output channels, N = output pixels, K = reduction, so C lands in NCHW.
 *
 * Contract (the compiled side trusts its inputs; Python validates once):
 * - `isa` is an enum fc_isa value that is compiled in (fc_isa_compiled) and runnable on this CPU.
 * - A is packed once with fc_gemm_pack_a_<t> (conv weights: at layer construction).
 *   Packed A layout: ceil(M/MR) row panels; panel p holds, for k = 0..K-1, the MR values
 *   A[p*MR + r][k], r = 0..MR-1, contiguous (rows >= M are zero). So panel p starts at
 *   packed + p*MR*K and the slice k0..k0+kc-1 of it at packed + p*MR*K + k0*MR.
 *   fc_gemm_packed_a_size_<t> gives its size in ELEMENTS (not bytes).
 * - B never exists as a matrix: the driver asks a callback `pack_b(ctx, k0, kc, n0, nc, dst)`
 *   to write the block of rows k0..k0+kc-1, columns n0..n0+nc-1 into dst in the NR-panel
 *   layout: ceil(nc/NR) column panels one after another; panel q holds kc rows of NR contiguous
 *   values, dst[(q*kc + k)*NR + j] = B[k0 + k][n0 + q*NR + j], and columns at or beyond nc in the
 *   last panel are ZERO (the kernel multiplies them; they must not be NaN/garbage).
 *   Guarantees to the callback: k0 is a multiple of KC, kc <= KC, n0 is a multiple of NR,
 *   nc <= NC, dst is 64-byte aligned and holds ceil(nc/NR)*NR*kc elements. The callback is
 *   called concurrently from several threads (with different dst), so it must only read ctx.
 *   fc_gemm_pack_b_strided_<t> with an fc_gemm_strided_b_<t> ctx serves plain strided matrices.
 * - bias may be NULL. accumulate != 0 adds the old C. C must not alias A, B or bias.
 * - nthreads is used exactly (the Python side decided). nthreads == 1 opens no OpenMP region,
 *   so it is safe to call from inside another parallel region (e.g. conv over the batch).
 * - Reentrant: no global mutable state. Returns 0, or -1 if scratch allocation failed (C is then
 *   unspecified).
 * - Scratch, malloc'ed per call: one packed B block per thread, fc_gemm_scratch_bytes(isa, dtype,
 *   N, K) per thread (at most KC * NC * sizeof(T): 3 MiB for float32 on avx512, 2 MiB on avx2);
 *   or, on several threads when N has fewer than 4 NR panels per thread, one packed B shared by
 *   all threads instead, K * (N rounded up to NR) * sizeof(T) <= 8 MiB in total.
 * - Results do not depend on nthreads: every C element sums its K blocks in the same order.
 */
#ifndef FASTCONV_GEMM_H
#define FASTCONV_GEMM_H

#include <stddef.h>

#include "fastconv/common.h"
#include "fastconv/isa.h"

/* dtype argument of the query functions */
enum fc_gemm_dtype { FC_GEMM_F32 = 0, FC_GEMM_F64 = 1 };

/* ---- micro-kernel and config table (one per ISA per dtype, filled by _isa/gemm_<isa>.c) ----
 *
 * A micro-kernel computes one MR x NR tile over kc reduction steps from a packed A slice
 * (kc x MR, MR contiguous per k) and a packed B panel (kc x NR, NR contiguous per k), then
 * writes the top-left m x n corner (m <= MR, n <= NR) of the tile into c (row stride ldc):
 *     c = (accumulate ? c : 0) + tile (+ bias[i] on row i, if bias != NULL).
 * kc may be 0 (then c = (accumulate ? c : 0) + bias). The SIMD kernels make narrow tiles cheap
 * (a B vector whose lanes would all be padding is skipped; a few leftover columns are computed
 * as vectors over the MR rows), so a last column panel of n << NR costs about n/NR of a tile.
 */
typedef void (*fc_gemm_ukernel_f32_fn)(int kc, const float *a, const float *b, float *c,
                                       ptrdiff_t ldc, int m, int n, const float *bias,
                                       int accumulate);
typedef void (*fc_gemm_ukernel_f64_fn)(int kc, const double *a, const double *b, double *c,
                                       ptrdiff_t ldc, int m, int n, const double *bias,
                                       int accumulate);
/* Packs A (M x K, element strides rs, cs) in MR-row panels (layout above). */
typedef void (*fc_gemm_pack_a_f32_fn)(int mr, int M, int K, const float *A, ptrdiff_t rs,
                                      ptrdiff_t cs, float *dst);
typedef void (*fc_gemm_pack_a_f64_fn)(int mr, int M, int K, const double *A, ptrdiff_t rs,
                                      ptrdiff_t cs, double *dst);
/* Packs the kc x nc block at B (element strides rs, cs) in NR-column panels (layout above). */
typedef void (*fc_gemm_pack_b_block_f32_fn)(int nr, int kc, int nc, const float *B,
                                            ptrdiff_t rs, ptrdiff_t cs, float *dst);
typedef void (*fc_gemm_pack_b_block_f64_fn)(int nr, int kc, int nc, const double *B,
                                            ptrdiff_t rs, ptrdiff_t cs, double *dst);

typedef struct {
    const char *name;   /* the micro-kernel's name, e.g. "fc_gemm_f32_8x32__avx512f_broadcast" */
    int mr, nr;         /* micro-tile */
    int kc, mc, nc;     /* cache blocking: KC (L1 B panel), MC (L2 A block), NC (L3 B block) */
    fc_gemm_ukernel_f32_fn ukernel;
    fc_gemm_pack_a_f32_fn pack_a;
    fc_gemm_pack_b_block_f32_fn pack_b;
} fc_gemm_config_f32;

typedef struct {
    const char *name;
    int mr, nr;
    int kc, mc, nc;
    fc_gemm_ukernel_f64_fn ukernel;
    fc_gemm_pack_a_f64_fn pack_a;
    fc_gemm_pack_b_block_f64_fn pack_b;
} fc_gemm_config_f64;

/* The table of `isa` (NULL if not compiled in). Read-only. */
const fc_gemm_config_f32 *fc_gemm_config_get_f32(int isa);
const fc_gemm_config_f64 *fc_gemm_config_get_f64(int isa);

/* Shortcuts for callback writers: MR, NR, KC, MC, NC of `isa` for dtype FC_GEMM_F32/F64. */
int fc_gemm_mr(int isa, int dtype);
int fc_gemm_nr(int isa, int dtype);
int fc_gemm_kc(int isa, int dtype);
int fc_gemm_mc(int isa, int dtype);
int fc_gemm_nc(int isa, int dtype);
/* Scratch bytes one thread of fc_gemm_<t> allocates for this N, K. */
size_t fc_gemm_scratch_bytes(int isa, int dtype, int N, int K);

/* ---- A: packed once ---- */
size_t fc_gemm_packed_a_size_f32(int isa, int M, int K); /* in elements */
size_t fc_gemm_packed_a_size_f64(int isa, int M, int K); /* in elements */
/* A[m][k] = A[m*rs + k*cs] (element strides, any sign): transposed views need no copy.
 * `packed` must hold fc_gemm_packed_a_size_<t> elements (64-byte alignment recommended). */
void fc_gemm_pack_a_f32(int isa, int M, int K, const float *A, ptrdiff_t rs, ptrdiff_t cs,
                        float *packed);
void fc_gemm_pack_a_f64(int isa, int M, int K, const double *A, ptrdiff_t rs, ptrdiff_t cs,
                        double *packed);

/* ---- B: a callback writing one packed block (layout and guarantees above) ---- */
typedef void (*fc_pack_b_f32_fn)(const void *ctx, int k0, int kc, int n0, int nc, float *dst);
typedef void (*fc_pack_b_f64_fn)(const void *ctx, int k0, int kc, int n0, int nc, double *dst);

/* Ready-made callback for a plain matrix B[k][n] = b[k*rs + n*cs] (element strides, any sign);
 * isa must be the one passed to the driver (it fixes NR and the packing code used). */
typedef struct {
    const float *b;
    ptrdiff_t rs, cs;
    int isa;
} fc_gemm_strided_b_f32;
typedef struct {
    const double *b;
    ptrdiff_t rs, cs;
    int isa;
} fc_gemm_strided_b_f64;
void fc_gemm_pack_b_strided_f32(const void *ctx, int k0, int kc, int n0, int nc, float *dst);
void fc_gemm_pack_b_strided_f64(const void *ctx, int k0, int kc, int n0, int nc, double *dst);

/* ---- the driver ---- */
int fc_gemm_f32(int isa, int M, int N, int K, const float *packed_a, fc_pack_b_f32_fn pack_b,
                const void *ctx, float *C, ptrdiff_t ldc, const float *bias, int accumulate,
                int nthreads);
int fc_gemm_f64(int isa, int M, int N, int K, const double *packed_a, fc_pack_b_f64_fn pack_b,
                const void *ctx, double *C, ptrdiff_t ldc, const double *bias, int accumulate,
                int nthreads);

/* ---- benchmark hook: the FMA peak of `isa` ----
 * Runs `iters` iterations of 12 independent FMA chains of full vectors on each of nthreads
 * threads and returns the flops done (2 per lane per FMA); time it from the caller. */
double fc_gemm_fma_peak_run(int isa, int dtype, long iters, int nthreads);

/* ---- benchmark hook: read bandwidth ----
 * Each of nthreads threads sums its share of the 64-byte lines of `buf` (`bytes` long, 64-byte
 * aligned) `passes` times with 8 independent 64-bit accumulators; returns the bytes read. */
double fc_read_bandwidth_run(const void *buf, size_t bytes, long passes, int nthreads);

/* Per-ISA pieces, defined in _isa/gemm_<isa>.c (used by the scalar TU's dispatch). */
#define FC_GEMM_DECLARE_X(ENUM, ISA, _)                                           \
    extern const fc_gemm_config_f32 fc_gemm_config_f32_##ISA;                     \
    extern const fc_gemm_config_f64 fc_gemm_config_f64_##ISA;                     \
    double fc_gemm_fma_loop_f32_##ISA(long iters), fc_gemm_fma_loop_f64_##ISA(long iters);
FC_FOR_EACH_ISA(FC_GEMM_DECLARE_X, _)
#undef FC_GEMM_DECLARE_X

#endif
