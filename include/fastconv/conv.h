/* Convolution: the problem description shared by every algorithm, and the ISA dispatch.
 *
 * Every convolution is described as a 3-D one: conv1d and conv2d set the missing leading
 * spatial dims to size 1 (kernel 1, stride 1, dilation 1, no padding), so one set of kernels
 * serves all three ranks.
 *
 * Contract (the Python front, fastconv.conv, validates everything once): arrays are
 * C-contiguous and of one dtype; x is (n, c_in, in[0], in[1], in[2]), the weight
 * (c_out, c_in / groups, k[0], k[1], k[2]), y (n, c_out, out[0], out[1], out[2]); `pad` is the
 * zero padding before each dim (the padding after is implied by `out`); bias may be NULL.
 * Functions return FC_CONV_OK, or FC_CONV_NOMEM when scratch allocation failed.
 *
 * Algorithms (the choice between them is made in Python, fastconv/_algorithms.py):
 * - direct (fastconv/direct.h): register-blocked output channels x output width, the input rows
 *   of one output row copied once into zero-bordered, stride-deinterleaved scratch rows;
 * - depthwise (fastconv/depthwise.h): groups == c_in, one input plane at a time with its zero
 *   border, vectorised along the output width;
 * - im2col (fastconv/im2col.h): the packed GEMM of fastconv/gemm.h with M = c_out / groups,
 *   K = c_in / groups * prod(k), N = prod(out); the im2col columns are written straight into
 *   the GEMM's packed B panels by its pack_b callback, and a 1x1 / stride 1 / unpadded
 *   convolution hands the input itself to the GEMM as B.
 */
#ifndef FASTCONV_CONV_H
#define FASTCONV_CONV_H

#include <stddef.h>

#include "fastconv/common.h"
#include "fastconv/isa.h"

enum { FC_CONV_OK = 0, FC_CONV_NOMEM = -1 };

typedef struct {
    ptrdiff_t n, c_in, c_out, groups;
    ptrdiff_t in[3], out[3], k[3], s[3], d[3], pad[3];
} fc_conv_geometry;

/* Per-ISA entry points, defined in _isa/conv_<isa>.c (one translation unit per ISA). */
#define FC_CONV_DECLARE_ISA(T, DT, ISA)                                                       \
    int fc_conv_direct_##DT##_##ISA(const fc_conv_geometry *g, const T *x, const T *w,        \
                                    const T *bias, T *y, int nthreads);                       \
    int fc_conv_depthwise_##DT##_##ISA(const fc_conv_geometry *g, const T *x, const T *w,     \
                                       const T *bias, T *y, int nthreads);                    \
    int fc_conv_im2col_##DT##_##ISA(const fc_conv_geometry *g, const T *x, const T *packed_w, \
                                    const T *bias, T *y, int nthreads);
#define FC_CONV_DECLARE(ISA)                \
    FC_CONV_DECLARE_ISA(float, f32, ISA)    \
    FC_CONV_DECLARE_ISA(double, f64, ISA)

#define FC_CONV_DECLARE_X(ENUM, ISA, _) FC_CONV_DECLARE(ISA)
FC_FOR_EACH_ISA(FC_CONV_DECLARE_X, _)
#undef FC_CONV_DECLARE_X

/* Packed GEMM weights for im2col: one packed A (fastconv/gemm.h layout) per group, each of
 * fc_conv_packed_group_size elements, group after group. */
size_t fc_conv_packed_group_size(int isa, int dtype, const fc_conv_geometry *g);
void fc_conv_pack_weight_f32(int isa, const fc_conv_geometry *g, const float *w, float *packed,
                             int nthreads);
void fc_conv_pack_weight_f64(int isa, const fc_conv_geometry *g, const double *w,
                             double *packed, int nthreads);

/* fc_conv_<algorithm>_<dtype>(isa, ...): the kernels of `isa` (compiled in and runnable). */
#define FC_CONV_CASE(ENUM, ISA, NAME, DT) \
    case ENUM: return fc_conv_##NAME##_##DT##_##ISA(g, x, w, bias, y, nthreads);
#define FC_CONV_DISPATCH(T, DT, NAME)                                                          \
    static inline int fc_conv_##NAME##_##DT(int isa, const fc_conv_geometry *g, const T *x,   \
                                            const T *w, const T *bias, T *y, int nthreads)    \
    {                                                                                          \
        switch (isa) {                                                                         \
            FC_FOR_EACH_SIMD_ISA(FC_CONV_CASE, NAME, DT)                                       \
        default: return fc_conv_##NAME##_##DT##_scalar(g, x, w, bias, y, nthreads);            \
        }                                                                                      \
    }
FC_CONV_DISPATCH(float, f32, direct)
FC_CONV_DISPATCH(double, f64, direct)
FC_CONV_DISPATCH(float, f32, depthwise)
FC_CONV_DISPATCH(double, f64, depthwise)
FC_CONV_DISPATCH(float, f32, im2col)
FC_CONV_DISPATCH(double, f64, im2col)
#undef FC_CONV_DISPATCH
#undef FC_CONV_CASE

#endif
