# Directives (boundscheck, wraparound, cdivision, ...) are set in setup.py for every .pyx so
# that FASTCONV_DEBUG=1 can turn the checks back on.
"""Transposed-convolution drivers: weight preparation and the compiled run, GIL released.

Contract (the Python front, ``fastconv.conv_transpose``, validates everything once): arrays are
C-contiguous float32 or float64 of one dtype, shaped as 3-D problems
``x (N, C_in, D, H, W)``, ``weight (C_in, C_out // groups, kD, kH, kW)``, ``y (N, C_out, oD, oH,
oW)``; ``pad`` is the padding before each dim; the output size already accounts for the padding
after and for ``output_padding``. Nothing here raises a user-facing error except
``MemoryError``.
"""

from libc.stddef cimport ptrdiff_t, size_t

from fastconv._fpstate cimport fc_fp_enter, fc_fp_leave

import numpy as np

from fastconv._subnormals import flushing

cdef extern from "fastconv/col2im.h" nogil:
    int FC_CONVT_OK, FC_CONVT_NOMEM, FC_CONVT_GEMM, FC_CONVT_PHASE
    int FC_CONVT_MAX_PHASE_KERNEL
    ctypedef struct fc_convt_geometry:
        ptrdiff_t batch, c_in, c_out, groups
        ptrdiff_t isize[3]
        ptrdiff_t osize[3]
        ptrdiff_t k[3]
        ptrdiff_t s[3]
        ptrdiff_t d[3]
        ptrdiff_t pad[3]
    size_t fc_convt_prepared_size_f32(int isa, int algorithm, const fc_convt_geometry *g)
    size_t fc_convt_prepared_size_f64(int isa, int algorithm, const fc_convt_geometry *g)
    int fc_convt_prepare_f32(int isa, int algorithm, const fc_convt_geometry *g,
                             const float *weight, float *prepared)
    int fc_convt_prepare_f64(int isa, int algorithm, const fc_convt_geometry *g,
                             const double *weight, double *prepared)
    int fc_convt_run_f32(int isa, int algorithm, const fc_convt_geometry *g, const float *x,
                         const float *prepared, const float *weight, const float *bias,
                         float *y, int nthreads)
    int fc_convt_run_f64(int isa, int algorithm, const fc_convt_geometry *g, const double *x,
                         const double *prepared, const double *weight, const double *bias,
                         double *y, int nthreads)

ALGORITHMS = {"gemm": FC_CONVT_GEMM, "phase": FC_CONVT_PHASE}
MAX_PHASE_KERNEL = FC_CONVT_MAX_PHASE_KERNEL


cdef void _weight_geometry(fc_convt_geometry *g, tuple wshape, int groups, tuple stride,
                           tuple dilation):
    g.c_in = wshape[0]
    g.c_out = wshape[1] * groups
    g.groups = groups
    for i in range(3):
        g.k[i] = wshape[2 + i]
        g.s[i] = stride[i]
        g.d[i] = dilation[i]


cdef object _aligned_empty(size_t n, dtype):
    """A 1-D array of ``n`` elements whose data is 64-byte aligned (the GEMM's packed panels)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n + 64 // itemsize, dtype=dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    return raw[skip:skip + n]


cdef class PreparedWeight:
    """A weight packed once for one algorithm and ISA (what layer objects keep)."""

    cdef readonly object data
    cdef readonly str algorithm
    cdef readonly int isa
    cdef readonly tuple weight_shape
    cdef readonly int groups
    cdef readonly tuple stride, dilation

    def __init__(self, weight, int groups, tuple stride, tuple dilation, str algorithm,
                 int isa):
        cdef fc_convt_geometry g
        _weight_geometry(&g, weight.shape, groups, stride, dilation)
        cdef int alg = ALGORITHMS[algorithm]
        cdef int status = FC_CONVT_OK
        self.algorithm = algorithm
        self.isa = isa
        self.weight_shape = weight.shape
        self.groups = groups
        self.stride = stride
        self.dilation = dilation
        cdef const float[:, :, :, :, ::1] w32
        cdef const double[:, :, :, :, ::1] w64
        cdef float[::1] p32
        cdef double[::1] p64
        if weight.dtype == np.float32:
            self.data = _aligned_empty(fc_convt_prepared_size_f32(isa, alg, &g), np.float32)
            w32 = weight
            p32 = self.data
            if p32.shape[0]:
                fp = fc_fp_enter(flushing())
                with nogil:
                    status = fc_convt_prepare_f32(isa, alg, &g, &w32[0, 0, 0, 0, 0], &p32[0])
                fc_fp_leave(fp)
        else:
            self.data = _aligned_empty(fc_convt_prepared_size_f64(isa, alg, &g), np.float64)
            w64 = weight
            p64 = self.data
            if p64.shape[0]:
                fp = fc_fp_enter(flushing())
                with nogil:
                    status = fc_convt_prepare_f64(isa, alg, &g, &w64[0, 0, 0, 0, 0], &p64[0])
                fc_fp_leave(fp)
        if status == FC_CONVT_NOMEM:
            raise MemoryError("conv_transpose: could not allocate the weight-packing buffer")


def run(x, weight, bias, y, int groups, tuple stride, tuple dilation, tuple pad,
        str algorithm, int isa, int nthreads, PreparedWeight prepared=None):
    """Fill ``y`` with the transposed convolution of ``x`` (see the module contract).

    ``prepared`` (layer objects) must have been made from ``weight`` for this ``algorithm`` and
    ``isa``; without it the compiled side packs the weight as it goes (functional calls).
    """
    cdef fc_convt_geometry g
    _weight_geometry(&g, weight.shape, groups, stride, dilation)
    g.batch = x.shape[0]
    for i in range(3):
        g.isize[i] = x.shape[2 + i]
        g.osize[i] = y.shape[2 + i]
        g.pad[i] = pad[i]
    cdef int alg = ALGORITHMS[algorithm]
    cdef int status = FC_CONVT_OK
    if x.size == 0 or y.size == 0:
        return y
    cdef const float[::1] x32, w32, p32, b32
    cdef float[::1] y32
    cdef const double[::1] x64, w64, p64, b64
    cdef double[::1] y64
    cdef const float *b32p = NULL
    cdef const float *p32p = NULL
    cdef const double *b64p = NULL
    cdef const double *p64p = NULL
    if y.dtype == np.float32:
        x32 = x.reshape(-1)
        y32 = y.reshape(-1)
        w32 = weight.reshape(-1)
        if prepared is not None and prepared.data.shape[0]:
            p32 = prepared.data
            p32p = &p32[0]
        if bias is not None:
            b32 = bias
            b32p = &b32[0]
        fp = fc_fp_enter(flushing())
        with nogil:
            status = fc_convt_run_f32(isa, alg, &g, &x32[0], p32p, &w32[0], b32p, &y32[0],
                                      nthreads)
        fc_fp_leave(fp)
    else:
        x64 = x.reshape(-1)
        y64 = y.reshape(-1)
        w64 = weight.reshape(-1)
        if prepared is not None and prepared.data.shape[0]:
            p64 = prepared.data
            p64p = &p64[0]
        if bias is not None:
            b64 = bias
            b64p = &b64[0]
        fp = fc_fp_enter(flushing())
        with nogil:
            status = fc_convt_run_f64(isa, alg, &g, &x64[0], p64p, &w64[0], b64p, &y64[0],
                                      nthreads)
        fc_fp_leave(fp)
    if status == FC_CONVT_NOMEM:
        raise MemoryError("conv_transpose: could not allocate its scratch buffers")
    return y
