# Directives (boundscheck, wraparound, cdivision, ...) are set in setup.py for every .pyx so
# that FASTCONV_DEBUG=1 can turn the checks back on.
"""Pooling drivers: hand finished plans to the C kernels with the GIL released.

Contract (the Python front in ``fastconv.pool`` guarantees it, nothing here re-checks): every
array is C-contiguous, ``x`` and ``y`` share the dtype named by ``dtype`` (an ``fc_dtype`` code),
``y`` and ``indices`` have the output's shape, sizes and pads come from ``fastconv.shapes``,
and unpooling indices lie inside their plane. The only failure is running out of memory.
"""

cimport numpy as cnp
from fastconv._fpstate cimport fc_fp_enter, fc_fp_leave
from libc.stdint cimport int64_t

from fastconv._subnormals import flushing

cnp.import_array()

cdef extern from "fastconv/pool.h" nogil:
    ctypedef struct fc_pool_plan:
        int64_t planes
        int64_t isize[3]
        int64_t osize[3]
        int64_t kernel[3]
        int64_t stride[3]
        int64_t dilation[3]
        int64_t pad[3]
        int64_t limit[3]
        int kind
        int count_include_pad
        double divisor
        double p
        int isa
        int nthreads

    int fc_pool(const fc_pool_plan *plan, int dtype, const void *x, void *y,
                int64_t *indices)
    int fc_adaptive_pool(int kind, int dtype, int64_t planes, const int64_t *isize,
                         const int64_t *osize, const int64_t *bins, const void *x, void *y,
                         int64_t *indices, int nthreads)
    int fc_global_pool(int kind, int dtype, int64_t planes, int64_t size, const void *x,
                       void *y, int isa, int nthreads)
    int fc_max_unpool(int elsize, int64_t planes, int64_t in_size, int64_t out_size,
                      const void *x, const int64_t *indices, void *y, int nthreads)
    int fc_max_pool_backward(int elsize, int64_t planes, int64_t in_size, int64_t out_size,
                             const void *g, const int64_t *indices, void *y, int nthreads)

MAX = 0
AVG = 1
LP = 2


cdef inline void *_data(cnp.ndarray a):
    return cnp.PyArray_DATA(a)


cdef inline int64_t *_index_data(object a):
    return NULL if a is None else <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>a)


def pool(int kind, int dtype, cnp.ndarray x, cnp.ndarray y, object indices, tuple isize,
         tuple osize, tuple kernel, tuple stride, tuple dilation, tuple pad, tuple limit,
         bint count_include_pad, double divisor, double p, int isa, int nthreads):
    """Windowed pool of (planes, D, H, W) ``x`` into ``y`` (3-tuples of sizes, pads before)."""
    cdef fc_pool_plan plan
    cdef int i, err
    plan.planes = x.shape[0]
    for i in range(3):
        plan.isize[i] = isize[i]
        plan.osize[i] = osize[i]
        plan.kernel[i] = kernel[i]
        plan.stride[i] = stride[i]
        plan.dilation[i] = dilation[i]
        plan.pad[i] = pad[i]
        plan.limit[i] = limit[i]
    plan.kind = kind
    plan.count_include_pad = count_include_pad
    plan.divisor = divisor
    plan.p = p
    plan.isa = isa
    plan.nthreads = nthreads
    cdef const void *xp = _data(x)
    cdef void *yp = _data(y)
    cdef int64_t *ip = _index_data(indices)
    fp = fc_fp_enter(flushing())
    with nogil:
        err = fc_pool(&plan, dtype, xp, yp, ip)
    fc_fp_leave(fp)
    if err:
        raise MemoryError("fastconv pooling could not allocate its per-thread row buffers")


def adaptive_pool(int kind, int dtype, cnp.ndarray x, cnp.ndarray y, object indices,
                  tuple isize, tuple osize, cnp.ndarray bins, int nthreads):
    """Adaptive pool of (planes, D, H, W) ``x``; ``bins`` is int64 (start, end) per output."""
    cdef int64_t isz[3]
    cdef int64_t osz[3]
    cdef int i
    for i in range(3):
        isz[i] = isize[i]
        osz[i] = osize[i]
    cdef int64_t planes = x.shape[0]
    cdef const void *xp = _data(x)
    cdef void *yp = _data(y)
    cdef int64_t *ip = _index_data(indices)
    cdef const int64_t *bp = <const int64_t *>_data(bins)
    fp = fc_fp_enter(flushing())
    with nogil:
        fc_adaptive_pool(kind, dtype, planes, isz, osz, bp, xp, yp, ip, nthreads)
    fc_fp_leave(fp)


def global_pool(int kind, int dtype, cnp.ndarray x, cnp.ndarray y, int isa, int nthreads):
    """Reduce each row of the (planes, size) array ``x`` into ``y`` (planes,)."""
    cdef int64_t planes = x.shape[0]
    cdef int64_t size = x.shape[1]
    cdef const void *xp = _data(x)
    cdef void *yp = _data(y)
    fp = fc_fp_enter(flushing())
    with nogil:
        fc_global_pool(kind, dtype, planes, size, xp, yp, isa, nthreads)
    fc_fp_leave(fp)


def max_unpool(cnp.ndarray x, cnp.ndarray indices, cnp.ndarray y, int nthreads):
    """Scatter (planes, n) ``x`` to ``indices`` of zeroed (planes, m) ``y``."""
    cdef int elsize = x.dtype.itemsize
    cdef int64_t planes = x.shape[0]
    cdef int64_t in_size = x.shape[1]
    cdef int64_t out_size = y.shape[1]
    cdef const void *xp = _data(x)
    cdef const int64_t *ip = <const int64_t *>_data(indices)
    cdef void *yp = _data(y)
    fp = fc_fp_enter(flushing())
    with nogil:
        fc_max_unpool(elsize, planes, in_size, out_size, xp, ip, yp, nthreads)
    fc_fp_leave(fp)


def max_pool_backward(cnp.ndarray g, cnp.ndarray indices, cnp.ndarray y, int nthreads):
    """Sum (planes, n) float ``g`` into ``indices`` of (planes, m) ``y`` (zeroed here); index
    -1 skipped."""
    cdef int elsize = g.dtype.itemsize
    cdef int64_t planes = g.shape[0]
    cdef int64_t in_size = g.shape[1]
    cdef int64_t out_size = y.shape[1]
    cdef const void *gp = _data(g)
    cdef const int64_t *ip = <const int64_t *>_data(indices)
    cdef void *yp = _data(y)
    fp = fc_fp_enter(flushing())
    with nogil:
        fc_max_pool_backward(elsize, planes, in_size, out_size, gp, ip, yp, nthreads)
    fc_fp_leave(fp)
