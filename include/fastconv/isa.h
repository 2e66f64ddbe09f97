/* Instruction sets fastconv can be built for. setup.py defines FC_HAVE_<ISA>=1 on every
 * translation unit for each ISA whose kernels it compiled; FC_HAVE_SCALAR is always 1. */
#ifndef FASTCONV_ISA_H
#define FASTCONV_ISA_H

enum fc_isa {
    FC_ISA_SCALAR = 0,
    FC_ISA_AVX2 = 1,   /* AVX2 + FMA3 */
    FC_ISA_AVX512 = 2, /* AVX-512F */
    FC_ISA_NEON = 3,   /* AArch64 Advanced SIMD */
    FC_ISA_COUNT = 4
};

#ifndef FC_HAVE_AVX2
#define FC_HAVE_AVX2 0
#endif
#ifndef FC_HAVE_AVX512
#define FC_HAVE_AVX512 0
#endif
#ifndef FC_HAVE_NEON
#define FC_HAVE_NEON 0
#endif

/* Whether kernels for `isa` were compiled into this build. */
static inline int fc_isa_compiled(int isa)
{
    switch (isa) {
    case FC_ISA_SCALAR: return 1;
    case FC_ISA_AVX2: return FC_HAVE_AVX2;
    case FC_ISA_AVX512: return FC_HAVE_AVX512;
    case FC_ISA_NEON: return FC_HAVE_NEON;
    default: return 0;
    }
}

#endif
