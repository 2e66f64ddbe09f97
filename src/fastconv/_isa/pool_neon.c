/* Pooling kernels for neon: the row and global-reduction templates in float32 and float64. */
#include "fastconv/pool.h"

#define FC_POOL_F64 0
#define FC_SFX f32_neon
#include "fastconv/kernels/pool_neon.h"
#include "fastconv/kernels/pool_rows.h"
#undef FC_POOL_F64

#define FC_POOL_F64 1
#define FC_SFX f64_neon
#include "fastconv/kernels/pool_neon.h"
#include "fastconv/kernels/pool_rows.h"
#undef FC_POOL_F64
