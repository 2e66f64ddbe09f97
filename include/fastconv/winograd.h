/* Winograd F(m x m, 3 x 3) convolution, m = 2, 4, 6 (stride 1, dilation 1, explicit zero pads).
 *
 *   U = G g G^T          weights, once (fc_winograd_transform_weights_<t>), packed for the GEMM
 *   V = B^T d B          each alpha x alpha input tile (alpha = m + 2), written straight into
 *                        the GEMM's packed B panels (NR tiles side by side, vectorised across
 *                        tiles)
 *   M[xi] = U[xi] V[xi]  alpha^2 GEMMs per work unit through the shared micro-kernel
 *                        (fastconv/gemm.h config table: same MR x NR tile as the rest)
 *   Y = A^T M A (+ bias) each m x m output tile, partial tiles cropped while storing
 *
 * Work units: (group, block of tiles, range of output channels). A block is up to
 * `block_tiles` consecutive tiles of the flattened (image, tile row, tile column) space, so a
 * block may span images (batch > 1 with small images still fills the GEMM). Blocks are sized so
 * that a unit's transformed input and GEMM output stay in a 1 MiB L2 (at least NR tiles); when
 * there are fewer units than threads, output channels are split too (each split redoes the
 * cheap input transform). OpenMP over units, dynamic schedule; no state shared between units.
 *
 * Packed weights: for xi in 0..alpha^2-1, for group gi: one packed-A matrix (GEMM layout) of
 * (C_out / groups) x (C_in / groups), fc_gemm_packed_a_size_<t>(isa, Kg, Cg) elements each,
 * at offset (xi * groups + gi) * that size.
 *
 * Scratch (per thread, allocated per call): alpha^2 * (Tpad * (Cg + Ku) + 2 cache lines)
 * elements for V and M (Tpad = block tiles rounded up to NR, Ku = output channels of the unit;
 * each xi's matrix is skewed by a cache line) plus 12 bytes per tile of the block;
 * fc_winograd_scratch_bytes tells the exact figure. The lane buffers of the transforms are
 * local arrays (at most 3 x 64 x 16 elements).
 *
 * Contract: the compiled side trusts its inputs (Python validated). x is C-contiguous
 * (N, C, H, W), y C-contiguous (N, K, out_h, out_w) with out_h = H + pads - 2 > 0 (same for
 * width); bias may be NULL. Returns 0, or -1 if scratch allocation failed (y unspecified).
 * Results do not depend on nthreads, block sizes or channel splits (every output element sums
 * its channels in the same order).
 */
#ifndef FASTCONV_WINOGRAD_H
#define FASTCONV_WINOGRAD_H

#include <stddef.h>

#include "fastconv/common.h"
#include "fastconv/isa.h"

typedef struct {
    int batch, c_in, c_out, groups;
    int in_h, in_w, out_h, out_w;
    int pad_top, pad_left; /* zero rows / columns before the input; after: implied by out_* */
    int tile;              /* m: 2, 4 or 6 */
    int block_tiles;       /* tiles per work unit; 0 = automatic (L2-sized) */
    int k_split;           /* output-channel splits per block; 0 = automatic */
} fc_winograd_geometry;

/* Elements of the packed transformed weights. dtype: FC_GEMM_F32 / FC_GEMM_F64. */
size_t fc_winograd_packed_weights_size(int isa, int dtype, int tile, int c_out,
                                       int cin_per_group, int groups);
/* Transforms w (C_out x Cg x 3 x 3, C-contiguous, the working dtype) with G (alpha x 3,
 * float64) in float64, rounds once to the working dtype and writes the packed layout above. */
void fc_winograd_transform_weights_f32(int isa, int tile, int c_out, int cin_per_group,
                                       int groups, const float *w, const double *G,
                                       float *packed, int nthreads);
void fc_winograd_transform_weights_f64(int isa, int tile, int c_out, int cin_per_group,
                                       int groups, const double *w, const double *G,
                                       double *packed, int nthreads);

/* The decomposition the driver will use (after resolving the automatic fields) and the peak
 * scratch bytes of one call with nthreads threads. */
void fc_winograd_resolve(int isa, int dtype, fc_winograd_geometry *geo, int nthreads);
size_t fc_winograd_scratch_bytes(int isa, int dtype, const fc_winograd_geometry *geo,
                                 int nthreads);

int fc_winograd_conv2d_f32(int isa, const fc_winograd_geometry *geo, const float *x,
                           const float *packed, const float *bias, float *y, int nthreads);
int fc_winograd_conv2d_f64(int isa, const fc_winograd_geometry *geo, const double *x,
                           const double *packed, const double *bias, double *y, int nthreads);

/* Per-ISA weight transforms and drivers (defined in _isa/winograd_<isa>.c; geo resolved). */
#define FC_WINOGRAD_DECLARE(ISA)                                                              \
    void fc_winograd_transform_weights_f32_##ISA(int tile, int c_out, int cg, int groups,     \
                                                 const float *w, const double *G,             \
                                                 float *packed, int nthreads);                \
    void fc_winograd_transform_weights_f64_##ISA(int tile, int c_out, int cg, int groups,     \
                                                 const double *w, const double *G,            \
                                                 double *packed, int nthreads);               \
    int fc_winograd_conv2d_f32_##ISA(const fc_winograd_geometry *geo, const float *x,         \
                                     const float *packed, const float *bias, float *y,        \
                                     int nthreads);                                           \
    int fc_winograd_conv2d_f64_##ISA(const fc_winograd_geometry *geo, const double *x,        \
                                     const double *packed, const double *bias, double *y,     \
                                     int nthreads);
#define FC_WINOGRAD_DECLARE_X(ENUM, ISA, _) FC_WINOGRAD_DECLARE(ISA)
FC_FOR_EACH_ISA(FC_WINOGRAD_DECLARE_X, _)
#undef FC_WINOGRAD_DECLARE_X
#undef FC_WINOGRAD_DECLARE

#endif
