/* Transposed convolution: geometry, weight preparation and the two algorithms' drivers.
 *
 * Every rank is computed as 3-D: the Python front gives 1-D and 2-D problems leading spatial
 * dims of size 1 (kernel 1, stride 1, no padding), so one driver serves conv_transpose1d/2d/3d.
 *
 * The compiled side trusts its inputs (validated once, in Python): contiguous NCDHW arrays of
 * the working dtype, explicit `pad` (the padding before each dim; the output size already
 * includes the padding after and output_padding) and a preallocated output. The only failure
 * is allocation (return FC_CONVT_NOMEM).
 *
 * Both algorithms run in ONE parallel region per call: work units (about 4 per thread, handed
 * out dynamically) write disjoint outputs and call the shared packed GEMM (fastconv/gemm.h)
 * single-threaded, so the only synchronisation is the region's end (a thread descheduled on a
 * shared machine costs at most one unit). The weight comes either prepared (packed GEMM A,
 * fc_convt_prepare_<t>: layer objects) or raw (prepared == NULL: each unit packs the rows it
 * needs, in parallel and in cache: functional calls).
 *
 * Algorithms
 * - FC_CONVT_GEMM (GEMM + col2im): per group, cols = W^T (C_out/g * taps x C_in/g) times
 *   X (C_in/g x input pixels). A unit is (batch, group, block of output channels): its GEMM
 *   (up to MC rows, so B is packed just in time into L1) covers one chunk of input rows at a
 *   time (about 512 KiB of columns, L2-resident), each followed by col2im of the block's
 *   channels. When taps meet, each channel is summed over the chunks in a phase-major plane of
 *   its full output (every tap adds contiguous runs) and written once, cropped, interleaved and
 *   with its bias. When no two taps meet (kernel == stride, dilation 1) col2im is a plain store
 *   with the bias (an interleave for kernel == stride along W) and the chunks are units too.
 *   Scratch per thread: the column block (about 512 KiB; at least MR rows x one input row),
 *   one phase-major plane per channel of the block when taps meet (the block shrinks to one
 *   channel when planes are large), the unit's packed A rows if not prepared.
 * - FC_CONVT_PHASE (stride-phase decomposition): output position o with (o + pad) % s == r
 *   only receives the kernel taps k with (k * d) % s == r, from input q - (k*d - r) / s where
 *   o + pad = q*s + r. So each of the prod(s) phases is an ordinary small convolution of the
 *   input with the sub-kernel of those taps: a GEMM (C_out/g x the phase's outputs, K = taps x
 *   C_in/g) with no inserted zeros, whose B is packed straight from the input by a callback (no
 *   im2col matrix) and whose result (bias fused) goes to that phase's strided outputs. A unit is
 *   (batch, group, phase, chunk of phase rows). Scratch per thread: the unit's GEMM result
 *   (about 256 KiB, at least one phase row), plus the phase's gathered and packed A if not
 *   prepared.
 */
#ifndef FASTCONV_COL2IM_H
#define FASTCONV_COL2IM_H

#include <stddef.h>

#include "fastconv/common.h"

#define FC_CONVT_OK 0
#define FC_CONVT_NOMEM 1

/* The phase algorithm keeps per-dim tap lists on the stack: kernel sizes up to this. */
#define FC_CONVT_MAX_PHASE_KERNEL 64

enum fc_convt_algorithm { FC_CONVT_GEMM = 0, FC_CONVT_PHASE = 1 };

typedef struct {
    ptrdiff_t batch, c_in, c_out, groups;
    ptrdiff_t isize[3], osize[3]; /* input and output spatial sizes (D, H, W) */
    ptrdiff_t k[3], s[3], d[3];
    ptrdiff_t pad[3]; /* padding before each dim */
} fc_convt_geometry;

/* Per-dim tap list of one stride phase r: taps k with (k*d) % s == r, and their input offsets
 * (k*d - r) / s. At most k taps per dim. */
FC_INLINE ptrdiff_t fc_convt_phase_taps(ptrdiff_t k, ptrdiff_t s, ptrdiff_t d, ptrdiff_t r,
                                        ptrdiff_t *taps, ptrdiff_t *offsets)
{
    ptrdiff_t n = 0;
    for (ptrdiff_t t = 0; t < k; t++) {
        if ((t * d) % s == r) {
            if (taps) taps[n] = t;
            if (offsets) offsets[n] = (t * d - r) / s;
            n++;
        }
    }
    return n;
}

/* Elements of the prepared weight of `algorithm` for `isa` (the GEMM's packed A panels). */
size_t fc_convt_prepared_size_f32(int isa, int algorithm, const fc_convt_geometry *g);
size_t fc_convt_prepared_size_f64(int isa, int algorithm, const fc_convt_geometry *g);

/* Packs weight (C_in, C_out/groups, kD, kH, kW) into the GEMM left operands of `algorithm`
 * for `isa`, into `prepared` (fc_convt_prepared_size_<t> elements, 64-byte aligned).
 * Returns FC_CONVT_NOMEM if its gather buffer could not be allocated. */
int fc_convt_prepare_f32(int isa, int algorithm, const fc_convt_geometry *g, const float *weight,
                         float *prepared);
int fc_convt_prepare_f64(int isa, int algorithm, const fc_convt_geometry *g,
                         const double *weight, double *prepared);

/* y (batch, c_out, out...) = conv_transpose(x (batch, c_in, in...)) + bias (may be NULL), with
 * the weight prepared for the same isa and algorithm, or, with prepared == NULL, the raw weight
 * (C_in, C_out/groups, kD, kH, kW); nthreads is used as given. */
int fc_convt_run_f32(int isa, int algorithm, const fc_convt_geometry *g, const float *x,
                     const float *prepared, const float *weight, const float *bias, float *y,
                     int nthreads);
int fc_convt_run_f64(int isa, int algorithm, const fc_convt_geometry *g, const double *x,
                     const double *prepared, const double *weight, const double *bias,
                     double *y, int nthreads);

#endif
