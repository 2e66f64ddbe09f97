/* Vector layer of the pooling template, AArch64 NEON: 4 floats or 2 doubles per vector.
 * Define FC_POOL_F64 (0 or 1) and FC_SFX before including; pool_rows.h undefines.
 * FMAX already returns NaN when either operand is NaN. */
#include <arm_neon.h>
#include <math.h>

#define FC_POOL_FLOAT 1
#define FC_POW pow
/* bitwise |: a select, not a branch (random data mispredicts every other one) */
#define FC_SMAX(a, b) (((b) > (a)) | ((b) != (b)) ? (b) : (a))
#if FC_POOL_F64
#define FC_T double
#define FC_TLOWEST (-INFINITY)
#define FC_VN 2
#define FC_V float64x2_t
#define FC_VLOAD(ptr) vld1q_f64(ptr)
#define FC_VSTORE(ptr, v) vst1q_f64(ptr, v)
#define FC_VSET1(s) vdupq_n_f64(s)
#define FC_VMAX(a, b) vmaxq_f64(a, b)
#define FC_VSHIFT1(e, n) vextq_f64(e, n, 1)
#define FC_VADD(a, b) vaddq_f64(a, b)
#define FC_VMUL(a, b) vmulq_f64(a, b)
#define FC_VDIV(a, b) vdivq_f64(a, b)
#define FC_VABS(v) vabsq_f64(v)
#define FC_VSQRT(v) vsqrtq_f64(v)
#define FC_SQRT(v) sqrt(v)
#define FC_VDEINT(a, b, even, odd)                                                            \
    do {                                                                                      \
        float64x2_t a_ = (a), b_ = (b);                                                       \
        (even) = vuzp1q_f64(a_, b_);                                                          \
        (odd) = vuzp2q_f64(a_, b_);                                                           \
    } while (0)
#else
#define FC_T float
#define FC_TLOWEST (-INFINITY)
#define FC_VN 4
#define FC_V float32x4_t
#define FC_VLOAD(ptr) vld1q_f32(ptr)
#define FC_VSTORE(ptr, v) vst1q_f32(ptr, v)
#define FC_VSET1(s) vdupq_n_f32(s)
#define FC_VMAX(a, b) vmaxq_f32(a, b)
#define FC_VSHIFT1(e, n) vextq_f32(e, n, 1)
#define FC_VADD(a, b) vaddq_f32(a, b)
#define FC_VMUL(a, b) vmulq_f32(a, b)
#define FC_VDIV(a, b) vdivq_f32(a, b)
#define FC_VABS(v) vabsq_f32(v)
#define FC_VSQRT(v) vsqrtq_f32(v)
#define FC_SQRT(v) sqrtf(v)
#define FC_VDEINT(a, b, even, odd)                                                            \
    do {                                                                                      \
        float32x4_t a_ = (a), b_ = (b);                                                       \
        (even) = vuzp1q_f32(a_, b_);                                                          \
        (odd) = vuzp2q_f32(a_, b_);                                                           \
    } while (0)
#endif
