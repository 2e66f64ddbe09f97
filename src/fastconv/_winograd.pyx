# Directives (boundscheck, wraparound, cdivision, ...) are set in setup.py for every .pyx.
"""Compiled driver of Winograd F(m x m, 3 x 3) convolution (fastconv/winograd.h).

The caller (``fastconv._winograd_plan``) validates: C-contiguous arrays of one dtype with the
shapes of its docstring, explicit non-negative zero pads, positive output sizes, an ISA that is
compiled in and runs on this CPU, ``threads >= 1``. These functions trust that, release the GIL
and raise only MemoryError (scratch allocation failed).
"""

from fastconv._fpstate cimport fc_fp_enter, fc_fp_leave

from fastconv._subnormals import flushing

cdef extern from "fastconv/gemm.h":
    int FC_GEMM_F32, FC_GEMM_F64

cdef extern from "fastconv/winograd.h":
    ctypedef struct fc_winograd_geometry:
        int batch, c_in, c_out, groups
        int in_h, in_w, out_h, out_w
        int pad_top, pad_left
        int tile, block_tiles, k_split

    size_t fc_winograd_packed_weights_size(int isa, int dtype, int tile, int c_out,
                                           int cin_per_group, int groups) nogil
    void fc_winograd_transform_weights_f32(int isa, int tile, int c_out, int cin_per_group,
                                           int groups, const float *w, const double *G,
                                           float *packed, int nthreads) nogil
    void fc_winograd_transform_weights_f64(int isa, int tile, int c_out, int cin_per_group,
                                           int groups, const double *w, const double *G,
                                           double *packed, int nthreads) nogil
    void fc_winograd_resolve(int isa, int dtype, fc_winograd_geometry *geo, int nthreads) nogil
    size_t fc_winograd_scratch_bytes(int isa, int dtype, const fc_winograd_geometry *geo,
                                     int nthreads) nogil
    int fc_winograd_conv2d_f32(int isa, const fc_winograd_geometry *geo, const float *x,
                               const float *packed, const float *bias, float *y,
                               int nthreads) nogil
    int fc_winograd_conv2d_f64(int isa, const fc_winograd_geometry *geo, const double *x,
                               const double *packed, const double *bias, double *y,
                               int nthreads) nogil

ctypedef fused real:
    float
    double


def packed_weights_size(int isa, bint f64, int tile, int c_out, int cin_per_group, int groups):
    """Elements of the packed transformed weights."""
    return fc_winograd_packed_weights_size(isa, FC_GEMM_F64 if f64 else FC_GEMM_F32, tile,
                                           c_out, cin_per_group, groups)


def transform_weights(const real[:, :, :, ::1] w, const double[:, ::1] g, int tile,
                      int groups, int isa, int nthreads, real[::1] packed):
    """``packed`` = U = G w G^T (computed in float64 from ``w`` of the working dtype) in the
    packed GEMM layout."""
    cdef int c_out = w.shape[0], cg = w.shape[1]
    fp = fc_fp_enter(flushing())
    with nogil:
        if real is float:
            fc_winograd_transform_weights_f32(isa, tile, c_out, cg, groups, &w[0, 0, 0, 0],
                                              &g[0, 0], &packed[0], nthreads)
        else:
            fc_winograd_transform_weights_f64(isa, tile, c_out, cg, groups, &w[0, 0, 0, 0],
                                              &g[0, 0], &packed[0], nthreads)
    fc_fp_leave(fp)


cdef fc_winograd_geometry _geometry(tuple x_shape, int c_out, int tile, int groups,
                                    int pad_top, int pad_left, int out_h, int out_w,
                                    int block_tiles, int k_split):
    cdef fc_winograd_geometry geo
    geo.batch, geo.c_in, geo.in_h, geo.in_w = x_shape
    geo.c_out, geo.groups = c_out, groups
    geo.out_h, geo.out_w = out_h, out_w
    geo.pad_top, geo.pad_left = pad_top, pad_left
    geo.tile, geo.block_tiles, geo.k_split = tile, block_tiles, k_split
    return geo


def plan(tuple x_shape, int c_out, int tile, int groups, int out_h, int out_w, int isa,
         bint f64, int nthreads, int block_tiles=0, int k_split=0):
    """The decomposition a call would use: dict(block_tiles, k_split, scratch_bytes)."""
    cdef int dtype = FC_GEMM_F64 if f64 else FC_GEMM_F32
    cdef fc_winograd_geometry geo = _geometry(x_shape, c_out, tile, groups, 0, 0, out_h, out_w,
                                              block_tiles, k_split)
    fc_winograd_resolve(isa, dtype, &geo, nthreads)
    return dict(block_tiles=geo.block_tiles, k_split=geo.k_split,
                scratch_bytes=fc_winograd_scratch_bytes(isa, dtype, &geo, nthreads))


def conv2d(const real[:, :, :, ::1] x, const real[::1] packed, const real[::1] bias,
           real[:, :, :, ::1] out, int tile, int groups, int pad_top, int pad_left, int isa,
           int nthreads, int block_tiles=0, int k_split=0):
    """out = conv2d(x, weights packed in ``packed``) (+ bias), GIL released."""
    cdef int dtype = FC_GEMM_F64 if real is double else FC_GEMM_F32
    cdef fc_winograd_geometry geo = _geometry(
        (x.shape[0], x.shape[1], x.shape[2], x.shape[3]), out.shape[1], tile, groups,
        pad_top, pad_left, out.shape[2], out.shape[3], block_tiles, k_split)
    cdef const real *bias_ptr = NULL
    cdef int status
    if out.shape[0] == 0 or out.shape[1] == 0:
        return
    if bias is not None:
        bias_ptr = &bias[0]
    fp = fc_fp_enter(flushing())
    with nogil:
        fc_winograd_resolve(isa, dtype, &geo, nthreads)
        if real is float:
            status = fc_winograd_conv2d_f32(isa, &geo, &x[0, 0, 0, 0], &packed[0], bias_ptr,
                                            &out[0, 0, 0, 0], nthreads)
        else:
            status = fc_winograd_conv2d_f64(isa, &geo, &x[0, 0, 0, 0], &packed[0], bias_ptr,
                                            &out[0, 0, 0, 0], nthreads)
    fc_fp_leave(fp)
    if status != 0:
        raise MemoryError("fastconv winograd: could not allocate the per-thread scratch")
