/* Winograd F(2,3) / F(4,3) / F(6,3) drivers for AArch64 NEON (compiled only on aarch64): the template in
 * fastconv/kernels/winograd_template.h with the tile transforms vectorised 4 float / 2
 * double tiles wide (one vector), products through the neon GEMM micro-kernel. */
#define FC_WISA neon
#define FC_WISA_ENUM FC_ISA_NEON
#define FC_WL32 4
#define FC_WL64 2
#include "fastconv/kernels/winograd_template.h"
