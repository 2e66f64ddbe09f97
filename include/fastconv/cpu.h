/* Run-time CPU feature detection. An ISA is usable only when the CPU has the instructions
 * *and* the OS saves the wider registers on context switch (XGETBV), as NumPy checks. */
#ifndef FASTCONV_CPU_H
#define FASTCONV_CPU_H

#include "isa.h"

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#define FC_X86 1
#if defined(_MSC_VER)
#include <intrin.h>
static inline void fc_cpuid(int leaf, int sub, unsigned r[4])
{
    int regs[4];
    __cpuidex(regs, leaf, sub);
    for (int i = 0; i < 4; i++) r[i] = (unsigned)regs[i];
}
static inline unsigned long long fc_xgetbv0(void) { return _xgetbv(0); }
#else
#include <cpuid.h>
static inline void fc_cpuid(int leaf, int sub, unsigned r[4])
{
    r[0] = r[1] = r[2] = r[3] = 0;
    __get_cpuid_count((unsigned)leaf, (unsigned)sub, &r[0], &r[1], &r[2], &r[3]);
}
static inline unsigned long long fc_xgetbv0(void)
{
    unsigned eax, edx;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}
#endif

static inline int fc_cpu_has(int isa)
{
    unsigned r1[4], r7[4];
    if (isa == FC_ISA_SCALAR) return 1;
    if (isa == FC_ISA_NEON) return 0;
    fc_cpuid(0, 0, r1);
    if (r1[0] < 7) return 0;
    fc_cpuid(1, 0, r1);
    fc_cpuid(7, 0, r7);
    int osxsave = (r1[2] >> 27) & 1, avx = (r1[2] >> 28) & 1, fma = (r1[2] >> 12) & 1;
    if (!osxsave || !avx) return 0;
    unsigned long long xcr0 = fc_xgetbv0();
    int ymm_saved = (xcr0 & 0x6) == 0x6;
    int zmm_saved = (xcr0 & 0xE6) == 0xE6;
    int avx2 = (r7[1] >> 5) & 1, avx512f = (r7[1] >> 16) & 1;
    if (isa == FC_ISA_AVX2) return ymm_saved && avx2 && fma;
    if (isa == FC_ISA_AVX512) return zmm_saved && avx512f && avx2 && fma;
    return 0;
}
#elif defined(__aarch64__) || defined(_M_ARM64)
static inline int fc_cpu_has(int isa) { return isa == FC_ISA_SCALAR || isa == FC_ISA_NEON; }
#else
static inline int fc_cpu_has(int isa) { return isa == FC_ISA_SCALAR; }
#endif

#endif
