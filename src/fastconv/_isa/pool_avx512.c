/* Pooling kernels for avx512: the row and global-reduction templates in float32 and float64. */
#include "fastconv/pool.h"

#define FC_POOL_F64 0
#define FC_SFX f32_avx512
#include "fastconv/kernels/pool_avx512.h"
#include "fastconv/kernels/pool_rows.h"
#undef FC_POOL_F64

#define FC_POOL_F64 1
#define FC_SFX f64_avx512
#include "fastconv/kernels/pool_avx512.h"
#include "fastconv/kernels/pool_rows.h"
#undef FC_POOL_F64
