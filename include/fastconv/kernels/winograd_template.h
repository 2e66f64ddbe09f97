/* Winograd driver template, instantiated once per ISA translation unit (_isa/winograd_<isa>.c).
 *
 * Before including, define FC_WISA (token: scalar, avx2, avx512, neon), FC_WISA_ENUM (the
 * enum fc_isa value) and FC_WL32 / FC_WL64 (tiles transformed side by side: one SIMD vector
 * of the ISA for float / double; must divide the GEMM's NR). The tile transforms are written
 * as plain loops over these lanes so that each ISA's compiler flags vectorise them; the
 * products go through the ISA's GEMM micro-kernel (fastconv/gemm.h config table).
 * Defines fc_winograd_conv2d_f32_<isa> and fc_winograd_conv2d_f64_<isa> (fastconv/winograd.h).
 */
#include "fastconv/gemm.h"
#include "fastconv/kernels/winograd_transforms.h"
#include "fastconv/omp.h"
#include "fastconv/winograd.h"

/* Elements added between the alpha^2 matrices of V and of M in the scratch: one cache line,
 * so that streams a power of two apart do not share cache sets. Keeps 64-byte alignment. */
/* Read hint for the first min(bytes, 2 KiB) of p (the next U slice). */
#ifndef FC_WINO_PREFETCH
#if defined(__GNUC__) || defined(__clang__)
#define FC_WINO_PREFETCH(p, bytes)                                                            \
    do {                                                                                      \
        const char *pf_ = (const char *)(p);                                                  \
        const int pf_n_ = FC_MIN((int)((bytes) * sizeof(*(p))), 2048);                        \
        for (int pf_o_ = 0; pf_o_ < pf_n_; pf_o_ += 64) __builtin_prefetch(pf_ + pf_o_);      \
    } while (0)
#else
#define FC_WINO_PREFETCH(p, bytes) ((void)(p))
#endif
#endif
#ifndef FC_WINO_SKEW
#define FC_WINO_SKEW(T) (64 / sizeof(T))
#endif

/* -------- float -------- */
#define FC_WT float
#define FC_WSFX f32
#define FC_WL FC_WL32
#define FC_WDTYPE FC_GEMM_F32
#define FC_WCFG fc_gemm_config_f32
#define FC_WCFG_GET fc_gemm_config_get_f32
#define FC_WPACKSIZE fc_gemm_packed_a_size_f32
#ifdef FC_WINO_GATHER8_F32 /* the ISA's 8-patch transposing gather, if it has one */
#define FC_WINO_GATHER8 FC_WINO_GATHER8_F32
#endif
#ifdef FC_WINO_SCATTER8X4_F32 /* and its 8-tile transposing store of 4 x 4 outputs */
#define FC_WINO_SCATTER8X4 FC_WINO_SCATTER8X4_F32
#endif
#include "fastconv/kernels/winograd_dtype.h"
#undef FC_WINO_GATHER8
#undef FC_WINO_SCATTER8X4
#undef FC_WT
#undef FC_WSFX
#undef FC_WL
#undef FC_WDTYPE
#undef FC_WCFG
#undef FC_WCFG_GET
#undef FC_WPACKSIZE

/* -------- double -------- */
#define FC_WT double
#define FC_WSFX f64
#define FC_WL FC_WL64
#define FC_WDTYPE FC_GEMM_F64
#define FC_WCFG fc_gemm_config_f64
#define FC_WCFG_GET fc_gemm_config_get_f64
#define FC_WPACKSIZE fc_gemm_packed_a_size_f64
#include "fastconv/kernels/winograd_dtype.h"
#undef FC_WT
#undef FC_WSFX
#undef FC_WL
#undef FC_WDTYPE
#undef FC_WCFG
#undef FC_WCFG_GET
#undef FC_WPACKSIZE
