/* Vector layer of the pooling template, AVX2: 8 floats or 4 doubles per vector.
 * Define FC_POOL_F64 (0 or 1) and FC_SFX before including; pool_rows.h undefines. */
#include <immintrin.h>
#include <math.h>

#ifndef FC_POOL_AVX2_ONCE
#define FC_POOL_AVX2_ONCE
/* max that keeps a NaN from either operand: maxps returns its 2nd operand on NaN */
FC_INLINE __m256 fc_max_nan_ps(__m256 a, __m256 b)
{
    return _mm256_blendv_ps(_mm256_max_ps(b, a), b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}
FC_INLINE __m256d fc_max_nan_pd(__m256d a, __m256d b)
{
    return _mm256_blendv_pd(_mm256_max_pd(b, a), b, _mm256_cmp_pd(b, b, _CMP_UNORD_Q));
}
/* (a0..a7, b0..b7) -> even (a0 a2 .. b6) and odd (a1 a3 .. b7) columns */
#define FC_DEINT_PS(a, b, even, odd)                                                          \
    do {                                                                                      \
        __m256 a_ = (a), b_ = (b);                                                            \
        (even) = _mm256_castpd_ps(_mm256_permute4x64_pd(                                      \
            _mm256_castps_pd(_mm256_shuffle_ps(a_, b_, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));     \
        (odd) = _mm256_castpd_ps(_mm256_permute4x64_pd(                                       \
            _mm256_castps_pd(_mm256_shuffle_ps(a_, b_, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));     \
    } while (0)
#define FC_DEINT_PD(a, b, even, odd)                                                          \
    do {                                                                                      \
        __m256d a_ = (a), b_ = (b);                                                           \
        (even) = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a_, b_), 0xD8);                     \
        (odd) = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a_, b_), 0xD8);                      \
    } while (0)
/* horizontal sums and maxima (the max returns a NaN lane when there is one) */
FC_INLINE float fc_hsum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}
FC_INLINE double fc_hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
FC_INLINE float fc_hmax_ps(__m256 v)
{
    float lanes[8];
    if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
        _mm256_storeu_ps(lanes, v);
        for (int k = 0;; k++)
            if (lanes[k] != lanes[k]) return lanes[k];
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps(m, m, 1)));
}
FC_INLINE double fc_hmax_pd(__m256d v)
{
    double lanes[4];
    if (_mm256_movemask_pd(_mm256_cmp_pd(v, v, _CMP_UNORD_Q))) {
        _mm256_storeu_pd(lanes, v);
        for (int k = 0;; k++)
            if (lanes[k] != lanes[k]) return lanes[k];
    }
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_max_sd(m, _mm_unpackhi_pd(m, m)));
}
/* lane masks for lanes [lo, hi): maskload/maskstore skip (and never fault on) the others */
FC_INLINE __m256i fc_lanes_epi32(int64_t lo, int64_t hi)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)lo - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx));
}
FC_INLINE __m256i fc_lanes_epi64(int64_t lo, int64_t hi)
{
    const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_and_si256(_mm256_cmpgt_epi64(idx, _mm256_set1_epi64x(lo - 1)),
                            _mm256_cmpgt_epi64(_mm256_set1_epi64x(hi), idx));
}
FC_INLINE __m256 fc_loadm_ps(const float *p, int64_t lo, int64_t hi, __m256 fill)
{
    const __m256i m = fc_lanes_epi32(lo, hi);
    return _mm256_blendv_ps(fill, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
FC_INLINE __m256d fc_loadm_pd(const double *p, int64_t lo, int64_t hi, __m256d fill)
{
    const __m256i m = fc_lanes_epi64(lo, hi);
    return _mm256_blendv_pd(fill, _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
}
#endif

#define FC_POOL_FLOAT 1
#define FC_POW pow
/* bitwise |: a select, not a branch (random data mispredicts every other one) */
#define FC_SMAX(a, b) (((b) > (a)) | ((b) != (b)) ? (b) : (a))
#if FC_POOL_F64
#define FC_T double
#define FC_TLOWEST (-INFINITY)
#define FC_VN 4
#define FC_V __m256d
#define FC_VLOAD(ptr) _mm256_loadu_pd(ptr)
#define FC_VSTORE(ptr, v) _mm256_storeu_pd(ptr, v)
#define FC_VSET1(s) _mm256_set1_pd(s)
#define FC_VMAX(a, b) fc_max_nan_pd(a, b)
#define FC_VADD(a, b) _mm256_add_pd(a, b)
#define FC_VMUL(a, b) _mm256_mul_pd(a, b)
#define FC_VDIV(a, b) _mm256_div_pd(a, b)
#define FC_VABS(v) _mm256_andnot_pd(_mm256_set1_pd(-0.0), v)
#define FC_VSQRT(v) _mm256_sqrt_pd(v)
#define FC_VHSUM(v) fc_hsum_pd(v)
#define FC_VHMAX(v) fc_hmax_pd(v)
#define FC_SQRT(v) sqrt(v)
#define FC_VDEINT(a, b, even, odd) FC_DEINT_PD(a, b, even, odd)
#define FC_VLOADM(ptr, lo, hi, idv, ids) fc_loadm_pd(ptr, lo, hi, idv)
#define FC_VSTOREN(ptr, v, n) _mm256_maskstore_pd(ptr, fc_lanes_epi64(0, n), v)
#define FC_VMAXFAST(a, b) _mm256_max_pd(a, b)
#define FC_VNAN_T int
#define FC_VNAN_ACC(acc, a, b) ((acc) |= _mm256_movemask_pd(_mm256_cmp_pd(a, b, _CMP_UNORD_Q)))
#define FC_VNAN_ANY(acc) ((acc) != 0)
#define FC_VSHIFT1(e, n) _mm256_permute4x64_pd(_mm256_blend_pd(e, n, 1), _MM_SHUFFLE(0, 3, 2, 1))
#else
#define FC_T float
#define FC_TLOWEST (-INFINITY)
#define FC_VN 8
#define FC_V __m256
#define FC_VLOAD(ptr) _mm256_loadu_ps(ptr)
#define FC_VSTORE(ptr, v) _mm256_storeu_ps(ptr, v)
#define FC_VSET1(s) _mm256_set1_ps(s)
#define FC_VMAX(a, b) fc_max_nan_ps(a, b)
#define FC_VADD(a, b) _mm256_add_ps(a, b)
#define FC_VMUL(a, b) _mm256_mul_ps(a, b)
#define FC_VDIV(a, b) _mm256_div_ps(a, b)
#define FC_VABS(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v)
#define FC_VSQRT(v) _mm256_sqrt_ps(v)
#define FC_VHSUM(v) fc_hsum_ps(v)
#define FC_VHMAX(v) fc_hmax_ps(v)
#define FC_SQRT(v) sqrtf(v)
#define FC_VDEINT(a, b, even, odd) FC_DEINT_PS(a, b, even, odd)
#define FC_VLOADM(ptr, lo, hi, idv, ids) fc_loadm_ps(ptr, lo, hi, idv)
#define FC_VSTOREN(ptr, v, n) _mm256_maskstore_ps(ptr, fc_lanes_epi32(0, n), v)
#define FC_VMAXFAST(a, b) _mm256_max_ps(a, b)
#define FC_VNAN_T int
#define FC_VNAN_ACC(acc, a, b) ((acc) |= _mm256_movemask_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q)))
#define FC_VNAN_ANY(acc) ((acc) != 0)
#define FC_VSHIFT1(e, n)                                                                      \
    _mm256_permutevar8x32_ps(_mm256_blend_ps(e, n, 1), _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0))
#endif
