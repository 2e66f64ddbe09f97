/* Convolution kernels for neon (compiled with that ISA's flags only): the direct,
 * depthwise, im2col+GEMM and deformable templates of fastconv/direct.h, depthwise.h, im2col.h
 * and deform.h, once per dtype. Vector width and the direct kernel's register block come from fastconv/isa.h. */
#define FC_ISA_NAME neon
#define FC_ISA_ENUM FC_ISA_NEON
#define FC_VEC_BYTES FC_CAT(FC_VEC_BYTES_, FC_ISA_NAME)
#define FC_DIRECT_OB FC_CAT(FC_DIRECT_OB_, FC_ISA_NAME)

#define FC_T float
#define FC_T_BYTES 4
#define FC_DT f32
#define FC_GEMM_DT FC_GEMM_F32
#include "fastconv/direct.h"
#include "fastconv/depthwise.h"
#include "fastconv/im2col.h"
#include "fastconv/deform.h"
#undef FC_T
#undef FC_T_BYTES
#undef FC_DT
#undef FC_GEMM_DT

#define FC_T double
#define FC_T_BYTES 8
#define FC_DT f64
#define FC_GEMM_DT FC_GEMM_F64
#include "fastconv/direct.h"
#include "fastconv/depthwise.h"
#include "fastconv/im2col.h"
#include "fastconv/deform.h"
#undef FC_T
#undef FC_T_BYTES
#undef FC_DT
#undef FC_GEMM_DT
