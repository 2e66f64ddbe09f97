# Directives (boundscheck, wraparound, cdivision, ...) are set in setup.py for every .pyx so
# that FASTCONV_DEBUG=1 can turn the checks back on.
"""Test and benchmark hooks for the packed GEMM (fastconv/gemm.h). No user-facing errors here.

The caller (``fastconv._testing``) validates: 2-D arrays of one dtype with matching shapes,
element strides (byte strides divisible by the item size), a C-contiguous ``out`` and an ISA
that is compiled in and runs on this CPU. These functions trust that and release the GIL.
"""

from libc.stddef cimport ptrdiff_t

from fastconv._fpstate cimport fc_fp_enter, fc_fp_leave

from fastconv._subnormals import flushing

cdef extern from "fastconv/common.h":
    void *fc_malloc(size_t bytes) nogil
    void fc_free(void *p) nogil

cdef extern from "fastconv/gemm.h":
    int FC_GEMM_F32, FC_GEMM_F64

    ctypedef struct fc_gemm_config_f32:
        const char *name
        int mr, nr, kc, mc, nc
    ctypedef struct fc_gemm_config_f64:
        const char *name
        int mr, nr, kc, mc, nc
    const fc_gemm_config_f32 *fc_gemm_config_get_f32(int isa) nogil
    const fc_gemm_config_f64 *fc_gemm_config_get_f64(int isa) nogil
    size_t fc_gemm_scratch_bytes(int isa, int dtype, int N, int K) nogil

    ctypedef void (*fc_pack_b_f32_fn)(const void *ctx, int k0, int kc, int n0, int nc,
                                      float *dst) noexcept nogil
    ctypedef void (*fc_pack_b_f64_fn)(const void *ctx, int k0, int kc, int n0, int nc,
                                      double *dst) noexcept nogil
    ctypedef struct fc_gemm_strided_b_f32:
        const float *b
        ptrdiff_t rs, cs
        int isa
    ctypedef struct fc_gemm_strided_b_f64:
        const double *b
        ptrdiff_t rs, cs
        int isa
    void fc_gemm_pack_b_strided_f32(const void *ctx, int k0, int kc, int n0, int nc,
                                    float *dst) noexcept nogil
    void fc_gemm_pack_b_strided_f64(const void *ctx, int k0, int kc, int n0, int nc,
                                    double *dst) noexcept nogil

    size_t fc_gemm_packed_a_size_f32(int isa, int M, int K) nogil
    size_t fc_gemm_packed_a_size_f64(int isa, int M, int K) nogil
    void fc_gemm_pack_a_f32(int isa, int M, int K, const float *A, ptrdiff_t rs, ptrdiff_t cs,
                            float *packed) nogil
    void fc_gemm_pack_a_f64(int isa, int M, int K, const double *A, ptrdiff_t rs,
                            ptrdiff_t cs, double *packed) nogil
    int fc_gemm_f32(int isa, int M, int N, int K, const float *packed_a,
                    fc_pack_b_f32_fn pack_b, const void *ctx, float *C, ptrdiff_t ldc,
                    const float *bias, int accumulate, int nthreads) nogil
    int fc_gemm_f64(int isa, int M, int N, int K, const double *packed_a,
                    fc_pack_b_f64_fn pack_b, const void *ctx, double *C, ptrdiff_t ldc,
                    const double *bias, int accumulate, int nthreads) nogil
    double fc_gemm_fma_peak_run(int isa, int dtype, long iters, int nthreads) nogil
    double fc_read_bandwidth_run(const void *buf, size_t nbytes, long passes,
                                 int nthreads) nogil

ctypedef fused real:
    float
    double


def config(int isa, bint f64):
    """The config table of ``isa``: dict(kernel, mr, nr, kc, mc, nc), or None if not built."""
    cdef const fc_gemm_config_f32 *c32
    cdef const fc_gemm_config_f64 *c64
    if f64:
        c64 = fc_gemm_config_get_f64(isa)
        if c64 == NULL:
            return None
        return dict(kernel=c64.name.decode(), mr=c64.mr, nr=c64.nr, kc=c64.kc, mc=c64.mc,
                    nc=c64.nc)
    c32 = fc_gemm_config_get_f32(isa)
    if c32 == NULL:
        return None
    return dict(kernel=c32.name.decode(), mr=c32.mr, nr=c32.nr, kc=c32.kc, mc=c32.mc,
                nc=c32.nc)


def scratch_bytes(int isa, bint f64, int n, int k):
    """Bytes of scratch each thread of the driver allocates for this N, K."""
    return fc_gemm_scratch_bytes(isa, FC_GEMM_F64 if f64 else FC_GEMM_F32, n, k)


def gemm(const real[:, :] a, const real[:, :] b, const real[:] bias, real[:, ::1] out,
         bint accumulate, int isa, int nthreads):
    """out = a @ b (+ bias[:, None]) (+ out if accumulate): pack a, pack b through the
    strided callback, run the driver. Raises MemoryError if scratch allocation fails."""
    cdef int M = a.shape[0], K = a.shape[1], N = b.shape[1]
    cdef ptrdiff_t item = sizeof(real)
    cdef ptrdiff_t a_rs = a.strides[0] // item, a_cs = a.strides[1] // item
    cdef const real *a_ptr = NULL
    cdef const real *bias_ptr = NULL
    cdef fc_gemm_strided_b_f32 ctx32
    cdef fc_gemm_strided_b_f64 ctx64
    cdef real *packed
    cdef int status = 0
    if M == 0 or N == 0:
        return
    if K > 0:
        a_ptr = &a[0, 0]
    if bias is not None:
        bias_ptr = &bias[0]
    if real is float:
        packed = <real *>fc_malloc(fc_gemm_packed_a_size_f32(isa, M, K) * sizeof(real))
    else:
        packed = <real *>fc_malloc(fc_gemm_packed_a_size_f64(isa, M, K) * sizeof(real))
    if packed == NULL:
        raise MemoryError("fastconv gemm: could not allocate the packed A matrix")
    fp = fc_fp_enter(flushing())
    with nogil:
        if real is float:
            ctx32.b = &b[0, 0] if K > 0 else NULL
            ctx32.rs = b.strides[0] // item
            ctx32.cs = b.strides[1] // item
            ctx32.isa = isa
            fc_gemm_pack_a_f32(isa, M, K, a_ptr, a_rs, a_cs, packed)
            status = fc_gemm_f32(isa, M, N, K, packed, fc_gemm_pack_b_strided_f32, &ctx32,
                                 &out[0, 0], out.strides[0] // item, bias_ptr, accumulate,
                                 nthreads)
        else:
            ctx64.b = &b[0, 0] if K > 0 else NULL
            ctx64.rs = b.strides[0] // item
            ctx64.cs = b.strides[1] // item
            ctx64.isa = isa
            fc_gemm_pack_a_f64(isa, M, K, a_ptr, a_rs, a_cs, packed)
            status = fc_gemm_f64(isa, M, N, K, packed, fc_gemm_pack_b_strided_f64, &ctx64,
                                 &out[0, 0], out.strides[0] // item, bias_ptr, accumulate,
                                 nthreads)
        fc_free(packed)
    fc_fp_leave(fp)
    if status != 0:
        raise MemoryError("fastconv gemm: could not allocate the packing scratch")


def fma_peak_flops(int isa, bint f64, long iters, int nthreads):
    """Run the FMA peak loop of ``isa`` (``iters`` rounds of 12 chains per thread), GIL
    released; returns the flops done. The caller times it."""
    cdef double flops
    fp = fc_fp_enter(flushing())
    with nogil:
        flops = fc_gemm_fma_peak_run(isa, FC_GEMM_F64 if f64 else FC_GEMM_F32, iters, nthreads)
    fc_fp_leave(fp)
    return flops


def read_bandwidth_bytes(const unsigned char[::1] buf, long passes, int nthreads):
    """Read the whole-64-byte-line part of ``buf`` ``passes`` times on ``nthreads`` threads
    (each its own share), GIL released; returns the bytes read. The caller times it."""
    cdef double done
    cdef size_t nbytes = buf.shape[0]
    if nbytes < 64:
        return 0.0
    with nogil:
        done = fc_read_bandwidth_run(&buf[0], nbytes, passes, nthreads)
    return done


cdef class PackedGemm:
    """``out = a @ b`` with ``a`` packed once at construction (as convolution packs its
    weights); ``run()`` calls only the driver (B packing through the strided callback
    included), GIL released. For benchmarks: a, b, out are kept alive here."""

    cdef object _keep
    cdef void *_packed
    cdef fc_gemm_strided_b_f32 _ctx32
    cdef fc_gemm_strided_b_f64 _ctx64
    cdef void *_out
    cdef ptrdiff_t _ldc
    cdef int _m, _n, _k, _isa, _nthreads
    cdef bint _f64

    def __cinit__(self):
        self._packed = NULL

    def __init__(self, a, b, out, int isa, int nthreads):
        cdef float[:, :] a32, b32, out32
        cdef double[:, :] a64, b64, out64
        self._keep = (a, b, out)
        self._m, self._k, self._n = a.shape[0], a.shape[1], b.shape[1]
        self._isa, self._nthreads, self._f64 = isa, nthreads, a.dtype.itemsize == 8
        if self._m == 0 or self._n == 0 or self._k == 0:
            raise ValueError("PackedGemm needs M, N, K > 0")
        if self._f64:
            a64, b64, out64 = a, b, out
            self._packed = fc_malloc(fc_gemm_packed_a_size_f64(isa, self._m, self._k) * 8)
            if self._packed == NULL:
                raise MemoryError("fastconv gemm: could not allocate the packed A matrix")
            fc_gemm_pack_a_f64(isa, self._m, self._k, &a64[0, 0], a64.strides[0] // 8,
                               a64.strides[1] // 8, <double *>self._packed)
            self._ctx64.b = &b64[0, 0]
            self._ctx64.rs = b64.strides[0] // 8
            self._ctx64.cs = b64.strides[1] // 8
            self._ctx64.isa = isa
            self._out, self._ldc = &out64[0, 0], out64.strides[0] // 8
        else:
            a32, b32, out32 = a, b, out
            self._packed = fc_malloc(fc_gemm_packed_a_size_f32(isa, self._m, self._k) * 4)
            if self._packed == NULL:
                raise MemoryError("fastconv gemm: could not allocate the packed A matrix")
            fc_gemm_pack_a_f32(isa, self._m, self._k, &a32[0, 0], a32.strides[0] // 4,
                               a32.strides[1] // 4, <float *>self._packed)
            self._ctx32.b = &b32[0, 0]
            self._ctx32.rs = b32.strides[0] // 4
            self._ctx32.cs = b32.strides[1] // 4
            self._ctx32.isa = isa
            self._out, self._ldc = &out32[0, 0], out32.strides[0] // 4

    def __dealloc__(self):
        fc_free(self._packed)

    def run(self):
        """Run the driver once; returns ``out``."""
        cdef int status
        fp = fc_fp_enter(flushing())
        with nogil:
            if self._f64:
                status = fc_gemm_f64(self._isa, self._m, self._n, self._k,
                                     <const double *>self._packed, fc_gemm_pack_b_strided_f64,
                                     &self._ctx64, <double *>self._out, self._ldc, NULL, 0,
                                     self._nthreads)
            else:
                status = fc_gemm_f32(self._isa, self._m, self._n, self._k,
                                     <const float *>self._packed, fc_gemm_pack_b_strided_f32,
                                     &self._ctx32, <float *>self._out, self._ldc, NULL, 0,
                                     self._nthreads)
        fc_fp_leave(fp)
        if status != 0:
            raise MemoryError("fastconv gemm: could not allocate the packing scratch")
        return self._keep[2]
