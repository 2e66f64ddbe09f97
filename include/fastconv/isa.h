/* The instruction sets fastconv can be built for: the one registry from which every per-ISA
 * declaration and dispatch in C, and the ISA names Python sees (fastconv._cpu), derive.
 *
 * Adding an ISA: an enum value and a line in each list below, its FC_HAVE_ default and
 * FC_IF_ wrapper, its flags and probe in setup.py's ISA_FLAGS, its detection in cpu.h, and its
 * kernel files src/fastconv/_isa/<area>_<isa>.c. setup.py defines FC_HAVE_<ISA>=1 on every
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

/* FC_IF_<ISA>(code): the code where that ISA's kernels are compiled in, nothing elsewhere. */
#if FC_HAVE_AVX2
#define FC_IF_AVX2(...) __VA_ARGS__
#else
#define FC_IF_AVX2(...)
#endif
#if FC_HAVE_AVX512
#define FC_IF_AVX512(...) __VA_ARGS__
#else
#define FC_IF_AVX512(...)
#endif
#if FC_HAVE_NEON
#define FC_IF_NEON(...) __VA_ARGS__
#else
#define FC_IF_NEON(...)
#endif

/* X(ENUM, name, ...) for every SIMD ISA compiled into this build, best first (the scalar
 * kernels are every dispatch's default). The extra arguments are passed to X as they are:
 *   switch (isa) { FC_FOR_EACH_SIMD_ISA(MY_CASE, f32) default: return my_kernel_f32_scalar(); }
 */
#define FC_FOR_EACH_SIMD_ISA(X, ...)                 \
    FC_IF_AVX512(X(FC_ISA_AVX512, avx512, __VA_ARGS__)) \
    FC_IF_AVX2(X(FC_ISA_AVX2, avx2, __VA_ARGS__))       \
    FC_IF_NEON(X(FC_ISA_NEON, neon, __VA_ARGS__))

/* The same for every compiled ISA, scalar included (declarations). */
#define FC_FOR_EACH_ISA(X, ...) \
    FC_FOR_EACH_SIMD_ISA(X, __VA_ARGS__) X(FC_ISA_SCALAR, scalar, __VA_ARGS__)

/* Every ISA fastconv knows, compiled in or not, by number: the names Python uses. */
static const char *const fc_isa_names[FC_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};
/* The order of preference, best first. */
static const int fc_isa_preference[FC_ISA_COUNT] = {FC_ISA_AVX512, FC_ISA_AVX2, FC_ISA_NEON,
                                                    FC_ISA_SCALAR};

/* Kernel blocking per ISA, read by its translation units (conv_<isa>.c) and by Python's
 * algorithm rule (fastconv._cpu.DIRECT_BLOCK): vector bytes, and the output channels of one
 * direct-kernel register block. */
#define FC_VEC_BYTES_scalar 16
#define FC_DIRECT_OB_scalar 4
#define FC_VEC_BYTES_avx2 32
#define FC_DIRECT_OB_avx2 6
#define FC_VEC_BYTES_avx512 64
#define FC_DIRECT_OB_avx512 8
#define FC_VEC_BYTES_neon 16
#define FC_DIRECT_OB_neon 8
static const int fc_isa_direct_block[FC_ISA_COUNT][2] = {
    {FC_VEC_BYTES_scalar, FC_DIRECT_OB_scalar},
    {FC_VEC_BYTES_avx2, FC_DIRECT_OB_avx2},
    {FC_VEC_BYTES_avx512, FC_DIRECT_OB_avx512},
    {FC_VEC_BYTES_neon, FC_DIRECT_OB_neon}};

/* Whether kernels for `isa` were compiled into this build. */
static inline int fc_isa_compiled(int isa)
{
#define FC_ISA_COMPILED_CASE(ENUM, name, _) case ENUM: return 1;
    switch (isa) {
        FC_FOR_EACH_ISA(FC_ISA_COMPILED_CASE, _)
    default: return 0;
    }
#undef FC_ISA_COMPILED_CASE
}

#endif
