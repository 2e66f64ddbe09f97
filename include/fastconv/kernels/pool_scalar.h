/* Vector layer of the pooling template, scalar: a "vector" is one element of FC_T.
 * Works for every dtype (the integer ones serve max pooling). Define FC_T, FC_SFX,
 * FC_TLOWEST and FC_POOL_FLOAT before including; pool_rows.h undefines everything. */
#include <math.h>

#define FC_VN 1
#define FC_V FC_T
#define FC_VLOAD(ptr) (*(ptr))
#define FC_VSTORE(ptr, v) (*(ptr) = (v))
#define FC_VSET1(s) (s)
/* NaN wins from either side; among numbers the larger */
/* bitwise |: a select, not a branch (random data mispredicts every other one) */
#define FC_SMAX(a, b) (((b) > (a)) | ((b) != (b)) ? (b) : (a))
#define FC_VMAX(a, b) FC_SMAX(a, b)
#define FC_VADD(a, b) ((a) + (b))
#define FC_VMUL(a, b) ((a) * (b))
#define FC_VDIV(a, b) ((a) / (b))
#define FC_VABS(v) ((FC_T)fabs((double)(v)))
#define FC_SQRT(v) ((FC_T)sqrt((double)(v)))
#define FC_VSQRT(v) FC_SQRT(v)
#define FC_POW pow
#define FC_VDEINT(a, b, even, odd) ((even) = (a), (odd) = (b))
#define FC_VSHIFT1(e, n) (n)
/* the stride-2 kernels: a plain max (maxss / cmov) with NaN inputs noted aside */
#define FC_VMAXFAST(a, b) ((b) > (a) ? (b) : (a))
#define FC_VNAN_T int
#define FC_VNAN_ACC(acc, a, b) ((acc) |= ((a) != (a)) | ((b) != (b)))
#define FC_VNAN_ANY(acc) ((acc) != 0)
