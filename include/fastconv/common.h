/* Portability macros shared by every fastconv C header. */
#ifndef FASTCONV_COMMON_H
#define FASTCONV_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(_MSC_VER)
#define FC_INLINE static __forceinline
#define FC_RESTRICT __restrict
#define FC_ALIGNED(n) __declspec(align(n))
#else
#define FC_INLINE static inline __attribute__((always_inline))
#define FC_RESTRICT __restrict__
#define FC_ALIGNED(n) __attribute__((aligned(n)))
#endif

/* Token pasting for dtype templates: CAT(gemm_, f32) -> gemm_f32. */
#define FC_CAT_(a, b) a##b
#define FC_CAT(a, b) FC_CAT_(a, b)

#define FC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define FC_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Every scratch buffer is 64-byte aligned: one cache line, one AVX-512 vector. */
#define FC_ALIGNMENT 64

static inline void *fc_malloc(size_t bytes)
{
    size_t rounded = (bytes + FC_ALIGNMENT - 1) / FC_ALIGNMENT * FC_ALIGNMENT;
    if (rounded == 0) rounded = FC_ALIGNMENT;
#if defined(_MSC_VER)
    return _aligned_malloc(rounded, FC_ALIGNMENT);
#else
    return aligned_alloc(FC_ALIGNMENT, rounded);
#endif
}

static inline void fc_free(void *p)
{
#if defined(_MSC_VER)
    _aligned_free(p);
#else
    free(p);
#endif
}

#endif
