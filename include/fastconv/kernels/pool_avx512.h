/* Vector layer of the pooling template, AVX-512F only: 16 floats or 8 doubles per vector.
 * Define FC_POOL_F64 (0 or 1) and FC_SFX before including; pool_rows.h undefines. */
#include <immintrin.h>
#include <math.h>

#ifndef FC_POOL_AVX512_ONCE
#define FC_POOL_AVX512_ONCE
/* max that keeps a NaN from either operand: maxps returns its 2nd operand on NaN */
FC_INLINE __m512 fc_max_nan_ps512(__m512 a, __m512 b)
{
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), _mm512_max_ps(b, a), b);
}
FC_INLINE __m512d fc_max_nan_pd512(__m512d a, __m512d b)
{
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(b, b, _CMP_UNORD_Q), _mm512_max_pd(b, a), b);
}
/* (a, b) -> even and odd columns, through one two-source permute each */
#define FC_DEINT_PS512(a, b, even, odd)                                                       \
    do {                                                                                      \
        const __m512i ie_ = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8,   \
                                             6, 4, 2, 0);                                     \
        const __m512i io_ = _mm512_add_epi32(ie_, _mm512_set1_epi32(1));                      \
        __m512 a_ = (a), b_ = (b);                                                            \
        (even) = _mm512_permutex2var_ps(a_, ie_, b_);                                         \
        (odd) = _mm512_permutex2var_ps(a_, io_, b_);                                          \
    } while (0)
#define FC_DEINT_PD512(a, b, even, odd)                                                       \
    do {                                                                                      \
        const __m512i ie_ = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);                      \
        const __m512i io_ = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);                      \
        __m512d a_ = (a), b_ = (b);                                                           \
        (even) = _mm512_permutex2var_pd(a_, ie_, b_);                                         \
        (odd) = _mm512_permutex2var_pd(a_, io_, b_);                                          \
    } while (0)
/* horizontal max that returns a NaN lane when there is one */
FC_INLINE float fc_hmax_ps512(__m512 v)
{
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    if (nan) return _mm512_cvtss_f32(_mm512_maskz_compress_ps(nan, v));
    return _mm512_reduce_max_ps(v);
}
FC_INLINE double fc_hmax_pd512(__m512d v)
{
    const __mmask8 nan = _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
    if (nan) return _mm512_cvtsd_f64(_mm512_maskz_compress_pd(nan, v));
    return _mm512_reduce_max_pd(v);
}
/* lanes [lo, hi) set */
FC_INLINE __mmask16 fc_lanes16(int64_t lo, int64_t hi)
{
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
FC_INLINE __mmask8 fc_lanes8m(int64_t lo, int64_t hi)
{
    return (__mmask8)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}
#endif

#define FC_POOL_FLOAT 1
#define FC_POW pow
/* bitwise |: a select, not a branch (random data mispredicts every other one) */
#define FC_SMAX(a, b) (((b) > (a)) | ((b) != (b)) ? (b) : (a))
#if FC_POOL_F64
#define FC_T double
#define FC_TLOWEST (-INFINITY)
#define FC_VN 8
#define FC_V __m512d
#define FC_VLOAD(ptr) _mm512_loadu_pd(ptr)
#define FC_VSTORE(ptr, v) _mm512_storeu_pd(ptr, v)
#define FC_VSET1(s) _mm512_set1_pd(s)
#define FC_VMAX(a, b) fc_max_nan_pd512(a, b)
#define FC_VADD(a, b) _mm512_add_pd(a, b)
#define FC_VMUL(a, b) _mm512_mul_pd(a, b)
#define FC_VDIV(a, b) _mm512_div_pd(a, b)
#define FC_VABS(v) _mm512_abs_pd(v)
#define FC_VSQRT(v) _mm512_sqrt_pd(v)
#define FC_VHSUM(v) _mm512_reduce_add_pd(v)
#define FC_VHMAX(v) fc_hmax_pd512(v)
#define FC_SQRT(v) sqrt(v)
#define FC_VDEINT(a, b, even, odd) FC_DEINT_PD512(a, b, even, odd)
#define FC_VLOADM(ptr, lo, hi, idv, ids) _mm512_mask_loadu_pd(idv, fc_lanes8m(lo, hi), ptr)
#define FC_VMAXFAST(a, b) _mm512_max_pd(a, b)
#define FC_VNAN_T __mmask8
#define FC_VNAN_ACC(acc, a, b) ((acc) |= _mm512_cmp_pd_mask(a, b, _CMP_UNORD_Q))
#define FC_VNAN_ANY(acc) ((acc) != 0)
#define FC_VSHIFT1(e, n)                                                                      \
    _mm512_castsi512_pd(_mm512_alignr_epi64(_mm512_castpd_si512(n), _mm512_castpd_si512(e), 1))
#define FC_VSTOREN(ptr, v, n) _mm512_mask_storeu_pd(ptr, fc_lanes8m(0, n), v)
#else
#define FC_T float
#define FC_TLOWEST (-INFINITY)
#define FC_VN 16
#define FC_V __m512
#define FC_VLOAD(ptr) _mm512_loadu_ps(ptr)
#define FC_VSTORE(ptr, v) _mm512_storeu_ps(ptr, v)
#define FC_VSET1(s) _mm512_set1_ps(s)
#define FC_VMAX(a, b) fc_max_nan_ps512(a, b)
#define FC_VADD(a, b) _mm512_add_ps(a, b)
#define FC_VMUL(a, b) _mm512_mul_ps(a, b)
#define FC_VDIV(a, b) _mm512_div_ps(a, b)
#define FC_VABS(v) _mm512_abs_ps(v)
#define FC_VSQRT(v) _mm512_sqrt_ps(v)
#define FC_VHSUM(v) _mm512_reduce_add_ps(v)
#define FC_VHMAX(v) fc_hmax_ps512(v)
#define FC_SQRT(v) sqrtf(v)
#define FC_VDEINT(a, b, even, odd) FC_DEINT_PS512(a, b, even, odd)
#define FC_VLOADM(ptr, lo, hi, idv, ids) _mm512_mask_loadu_ps(idv, fc_lanes16(lo, hi), ptr)
#define FC_VMAXFAST(a, b) _mm512_max_ps(a, b)
#define FC_VNAN_T __mmask16
#define FC_VNAN_ACC(acc, a, b) ((acc) |= _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q))
#define FC_VNAN_ANY(acc) ((acc) != 0)
#define FC_VSHIFT1(e, n)                                                                      \
    _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(n), _mm512_castps_si512(e), 1))
#define FC_VSTOREN(ptr, v, n) _mm512_mask_storeu_ps(ptr, fc_lanes16(0, n), v)
#endif
