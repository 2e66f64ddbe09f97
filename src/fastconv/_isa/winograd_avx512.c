/* Winograd F(2,3) / F(4,3) / F(6,3) drivers for AVX-512F (-mavx512f -mavx2 -mfma): the template in
 * fastconv/kernels/winograd_template.h with the tile transforms vectorised 16 float / 8
 * double tiles wide (one vector), products through the avx512 GEMM micro-kernel. */
#define FC_WISA avx512
#define FC_WISA_ENUM FC_ISA_AVX512
#define FC_WL32 16
#define FC_WL64 8
#include "fastconv/kernels/winograd_gather_avx.h"
#include "fastconv/kernels/winograd_template.h"
