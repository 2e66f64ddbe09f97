/* Convolution kernels for avx2 (compiled with that ISA's flags only): the direct,
 * depthwise, im2col+GEMM and deformable templates of fastconv/direct.h, depthwise.h, im2col.h
 * and deform.h, once per dtype. 32-byte vectors; 6 output channels per direct-kernel register block. */
#define FC_ISA_NAME avx2
#define FC_ISA_ENUM FC_ISA_AVX2
#define FC_VEC_BYTES 32
#define FC_DIRECT_OB 6

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
