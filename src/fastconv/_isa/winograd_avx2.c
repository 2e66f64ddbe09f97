/* Winograd F(2,3) / F(4,3) / F(6,3) drivers for AVX2 + FMA (-mavx2 -mfma): the template in
 * fastconv/kernels/winograd_template.h with the tile transforms vectorised 8 float / 4
 * double tiles wide (one vector), products through the avx2 GEMM micro-kernel. */
#define FC_WISA avx2
#define FC_WISA_ENUM FC_ISA_AVX2
#define FC_WL32 8
#define FC_WL64 4
#include "fastconv/kernels/winograd_gather_avx.h"
#include "fastconv/kernels/winograd_template.h"
