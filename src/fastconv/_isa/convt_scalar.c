/* Transposed convolution: portable drivers, weight preparation, and the per-ISA dispatch
 * (see fastconv/col2im.h). Compiled without ISA flags. */
#include "fastconv/col2im.h"
#include "fastconv/isa.h"

#define FC_CONVT_ISA scalar
#define FC_CONVT_COMMON
#define FC_T float
#define FC_DT f32
#include "fastconv/kernels/col2im_template.h"
#undef FC_T
#undef FC_DT

#define FC_T double
#define FC_DT f64
#include "fastconv/kernels/col2im_template.h"
#undef FC_T
#undef FC_DT

/* Entry points of the other ISA translation units, and the dispatch by the ISA number the
 * Python side chose. An ISA that was not compiled in falls back to the portable driver. */
#define FC_CONVT_ENTRY(dt, T, name)                                                            \
    int fc_convt_run_##dt##_##name(int isa, int algorithm, const fc_convt_geometry *g,         \
                                  const T *x, const T *prepared, const T *weight,             \
                                  const T *bias, T *y, int nthreads);
#define FC_CONVT_ARGS isa, algorithm, g, x, prepared, weight, bias, y, nthreads

#define FC_CONVT_DECLARE_X(ENUM, ISA, _) \
    FC_CONVT_ENTRY(f32, float, ISA)       \
    FC_CONVT_ENTRY(f64, double, ISA)
FC_FOR_EACH_SIMD_ISA(FC_CONVT_DECLARE_X, _)
#undef FC_CONVT_DECLARE_X

#define FC_CONVT_CASE(ENUM, ISA, DT) \
    case ENUM: return fc_convt_run_##DT##_##ISA(FC_CONVT_ARGS);

int fc_convt_run_f32(int isa, int algorithm, const fc_convt_geometry *g, const float *x,
                     const float *prepared, const float *weight, const float *bias, float *y,
                     int nthreads)
{
    switch (isa) {
        FC_FOR_EACH_SIMD_ISA(FC_CONVT_CASE, f32)
    default: return fc_convt_run_f32_scalar(FC_CONVT_ARGS);
    }
}

int fc_convt_run_f64(int isa, int algorithm, const fc_convt_geometry *g, const double *x,
                     const double *prepared, const double *weight, const double *bias, double *y,
                     int nthreads)
{
    switch (isa) {
        FC_FOR_EACH_SIMD_ISA(FC_CONVT_CASE, f64)
    default: return fc_convt_run_f64_scalar(FC_CONVT_ARGS);
    }
}
