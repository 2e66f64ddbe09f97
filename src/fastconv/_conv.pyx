# Directives (boundscheck, wraparound, cdivision, ...) are set in setup.py for every .pyx so
# that FASTCONV_DEBUG=1 can turn the checks back on.
"""Convolution drivers: weight packing and the compiled kernels, GIL released.

Contract (the Python front, ``fastconv.conv``, validates everything once and builds the plan):
arrays are C-contiguous, of one dtype (float32 or float64), flattened to 1-D, shaped as 3-D
problems ``x (N, C_in, D, H, W)``, ``weight (C_out, C_in // groups, kD, kH, kW)``,
``y (N, C_out, oD, oH, oW)``; ``geometry`` is ``(n, c_in, c_out, groups, in, out, kernel,
stride, dilation, pad_before)`` with 3-tuples for the spatial entries; ``isa`` is an available
ISA number (``fastconv._dispatch.isa_index``). Nothing here raises a user-facing error except
``MemoryError`` when scratch memory cannot be allocated.
"""

cimport numpy as cnp
from fastconv._fpstate cimport fc_fp_enter, fc_fp_leave
from cython cimport floating
from libc.stddef cimport ptrdiff_t

import numpy as np

from fastconv._subnormals import flushing

cnp.import_array()

cdef extern from "fastconv/conv.h" nogil:
    int FC_CONV_OK
    ctypedef struct fc_conv_geometry:
        ptrdiff_t n, c_in, c_out, groups
        ptrdiff_t in_ "in"[3]
        ptrdiff_t out[3]
        ptrdiff_t k[3]
        ptrdiff_t s[3]
        ptrdiff_t d[3]
        ptrdiff_t pad[3]
    size_t fc_conv_packed_group_size(int isa, int dtype, const fc_conv_geometry *g)
    void fc_conv_pack_weight_f32(int isa, const fc_conv_geometry *g, const float *w,
                                 float *packed, int nthreads)
    void fc_conv_pack_weight_f64(int isa, const fc_conv_geometry *g, const double *w,
                                 double *packed, int nthreads)
    int fc_conv_direct_f32(int isa, const fc_conv_geometry *g, const float *x, const float *w,
                           const float *bias, float *y, int nthreads)
    int fc_conv_direct_f64(int isa, const fc_conv_geometry *g, const double *x,
                           const double *w, const double *bias, double *y, int nthreads)
    int fc_conv_depthwise_f32(int isa, const fc_conv_geometry *g, const float *x,
                              const float *w, const float *bias, float *y, int nthreads)
    int fc_conv_depthwise_f64(int isa, const fc_conv_geometry *g, const double *x,
                              const double *w, const double *bias, double *y, int nthreads)
    int fc_conv_im2col_f32(int isa, const fc_conv_geometry *g, const float *x,
                           const float *packed_w, const float *bias, float *y, int nthreads)
    int fc_conv_im2col_f64(int isa, const fc_conv_geometry *g, const double *x,
                           const double *packed_w, const double *bias, double *y,
                           int nthreads)

cdef extern from "fastconv/deform.h" nogil:
    int fc_deform_conv_f32(int isa, const fc_conv_geometry *g, ptrdiff_t offset_groups,
                           const float *x, const float *offset, const float *mask,
                           const float *packed_w, const float *bias, float *y, int nthreads)
    int fc_deform_conv_f64(int isa, const fc_conv_geometry *g, ptrdiff_t offset_groups,
                           const double *x, const double *offset, const double *mask,
                           const double *packed_w, const double *bias, double *y,
                           int nthreads)

# Kernel numbers of `Runner`; the names are those of fastconv._algorithms.
KERNELS = {"direct": 0, "depthwise": 1, "im2col": 2}


cdef void _fill(fc_conv_geometry *g, tuple geometry):
    n, c_in, c_out, groups, size_in, size_out, kernel, stride, dilation, pad = geometry
    g.n = n
    g.c_in = c_in
    g.c_out = c_out
    g.groups = groups
    for i in range(3):
        g.in_[i] = size_in[i]
        g.out[i] = size_out[i]
        g.k[i] = kernel[i]
        g.s[i] = stride[i]
        g.d[i] = dilation[i]
        g.pad[i] = pad[i]


def packed_weight_size(tuple geometry, int isa, dtype):
    """Elements of the packed GEMM weight (all groups) for ``im2col``."""
    cdef fc_conv_geometry g
    _fill(&g, geometry)
    cdef int dt = 0 if np.dtype(dtype) == np.float32 else 1
    return <ptrdiff_t>fc_conv_packed_group_size(isa, dt, &g) * g.groups


def pack_weight(tuple geometry, const floating[::1] weight, int isa, int nthreads=1):
    """The weight packed for the GEMM of ``isa`` (one packed A per group), as a new array."""
    cdef fc_conv_geometry g
    _fill(&g, geometry)
    dtype = np.float32 if floating is float else np.float64
    packed = np.empty(packed_weight_size(geometry, isa, dtype), dtype=dtype)
    cdef floating[::1] dst = packed
    fp = fc_fp_enter(flushing())
    with nogil:
        if floating is float:
            fc_conv_pack_weight_f32(isa, &g, &weight[0], &dst[0], nthreads)
        else:
            fc_conv_pack_weight_f64(isa, &g, &weight[0], &dst[0], nthreads)
    fc_fp_leave(fp)
    return packed


def deform(tuple geometry, ptrdiff_t offset_groups, const floating[::1] x,
           const floating[::1] offset, const floating[::1] mask, const floating[::1] weight,
           const floating[::1] bias, floating[::1] y, int isa, int nthreads):
    """Deformable convolution (fastconv/deform.h) into ``y``; ``weight`` packed as for im2col.

    ``geometry`` as for :class:`Runner` (a 2-D problem: leading spatial dims 1); ``offset`` is
    ``(N, 2 * offset_groups * kH * kW, oH, oW)``, ``mask`` ``(N, offset_groups * kH * kW, oH,
    oW)`` or None, ``bias`` ``(C_out,)`` or None, all flat. The arrays must be non-empty.
    """
    cdef fc_conv_geometry g
    _fill(&g, geometry)
    cdef const floating *b = NULL
    cdef const floating *m = NULL
    if bias is not None:
        b = &bias[0]
    if mask is not None:
        m = &mask[0]
    cdef int rc
    fp = fc_fp_enter(flushing())
    with nogil:
        if floating is float:
            rc = fc_deform_conv_f32(isa, &g, offset_groups, &x[0], &offset[0], m, &weight[0], b,
                                    &y[0], nthreads)
        else:
            rc = fc_deform_conv_f64(isa, &g, offset_groups, &x[0], &offset[0], m, &weight[0], b,
                                    &y[0], nthreads)
    fc_fp_leave(fp)
    if rc != FC_CONV_OK:
        raise MemoryError(
            f"fastconv: could not allocate scratch memory for a deformable convolution of "
            f"geometry {geometry}")


cdef class Runner:
    """One planned call of a kernel: geometry, ISA and thread count converted once, so that a
    call only fetches the arrays' data pointers (re-reading the geometry tuple and dispatching
    on memoryviews' dtype at every call cost microseconds on small layers).

    ``runner(x, weight, bias, y)``: C-contiguous 1-D arrays (``weight`` packed for im2col;
    ``bias`` may be None) of the dtype the runner was made for; their sizes are checked against
    the geometry.
    """

    cdef fc_conv_geometry g
    cdef int kernel, isa, nthreads, f64
    cdef ptrdiff_t x_size, y_size, w_size, b_size
    cdef object dtype

    def __cinit__(self, int kernel, tuple geometry, dtype, ptrdiff_t weight_size, int isa,
                  int nthreads):
        _fill(&self.g, geometry)
        self.kernel, self.isa, self.nthreads = kernel, isa, nthreads
        self.dtype = np.dtype(dtype)
        if self.dtype != np.float32 and self.dtype != np.float64:
            raise TypeError(f"fastconv: Runner dtype must be float32 or float64, got {dtype}")
        self.f64 = self.dtype == np.float64
        self.x_size = self.g.n * self.g.c_in * self.g.in_[0] * self.g.in_[1] * self.g.in_[2]
        self.y_size = self.g.n * self.g.c_out * self.g.out[0] * self.g.out[1] * self.g.out[2]
        self.w_size = weight_size
        self.b_size = self.g.c_out

    cdef inline const void *_data(self, cnp.ndarray a, ptrdiff_t size, str name) except NULL:
        if (cnp.PyArray_TYPE(a) != (<int>cnp.NPY_DOUBLE if self.f64 else <int>cnp.NPY_FLOAT)
                or not cnp.PyArray_IS_C_CONTIGUOUS(a) or cnp.PyArray_SIZE(a) != size):
            raise ValueError(f"fastconv internal error: {name} must be a C-contiguous "
                             f"{self.dtype} array of {size} elements")
        return cnp.PyArray_DATA(a)

    def __call__(self, cnp.ndarray x, cnp.ndarray weight, object bias, cnp.ndarray y):
        cdef const void *xp = self._data(x, self.x_size, "x")
        cdef const void *wp = self._data(weight, self.w_size, "weight")
        cdef const void *bp = NULL
        if bias is not None:
            bp = self._data(<cnp.ndarray>bias, self.b_size, "bias")
        if not cnp.PyArray_ISWRITEABLE(y):
            raise ValueError("fastconv internal error: y must be writeable")
        cdef void *yp = <void *>self._data(y, self.y_size, "y")
        cdef int rc
        fp = fc_fp_enter(flushing())
        with nogil:
            if self.f64:
                if self.kernel == 0:
                    rc = fc_conv_direct_f64(self.isa, &self.g, <const double *>xp,
                                            <const double *>wp, <const double *>bp,
                                            <double *>yp, self.nthreads)
                elif self.kernel == 1:
                    rc = fc_conv_depthwise_f64(self.isa, &self.g, <const double *>xp,
                                               <const double *>wp, <const double *>bp,
                                               <double *>yp, self.nthreads)
                else:
                    rc = fc_conv_im2col_f64(self.isa, &self.g, <const double *>xp,
                                            <const double *>wp, <const double *>bp,
                                            <double *>yp, self.nthreads)
            else:
                if self.kernel == 0:
                    rc = fc_conv_direct_f32(self.isa, &self.g, <const float *>xp,
                                            <const float *>wp, <const float *>bp, <float *>yp,
                                            self.nthreads)
                elif self.kernel == 1:
                    rc = fc_conv_depthwise_f32(self.isa, &self.g, <const float *>xp,
                                               <const float *>wp, <const float *>bp,
                                               <float *>yp, self.nthreads)
                else:
                    rc = fc_conv_im2col_f32(self.isa, &self.g, <const float *>xp,
                                            <const float *>wp, <const float *>bp, <float *>yp,
                                            self.nthreads)
        fc_fp_leave(fp)
        if rc != FC_CONV_OK:
            raise MemoryError("fastconv: could not allocate scratch memory for a convolution")
