/* Transposed convolution drivers compiled with the avx512 flags (see fastconv/col2im.h). */
#include "fastconv/isa.h"

#if FC_HAVE_AVX512
#define FC_CONVT_ISA avx512

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
#endif
