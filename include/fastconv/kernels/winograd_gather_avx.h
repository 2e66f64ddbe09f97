/* Patch gather of the Winograd input transform with AVX (included by _isa/winograd_avx2.c and
 * winograd_avx512.c, whose flags enable AVX2): 8 patches -> tile-lane layout by 8 x 8 in-register
 * transposes instead of 64 scalar moves per patch row. Used for float32 interior patches
 * (winograd_tile.h), which the compilers do not vectorise themselves (stride-m lanes).
 *
 *   d[(a * cols + b) * dstride + l] = src[l][a * w[l] + b],  l < 8, a < rows, b < cols <= 8
 *
 * Reads 8 floats per patch row: the caller guarantees src[l][a * w[l] + 7] is inside its
 * array (patches at the image border are staged into 8 x 8 zero-padded buffers, w[l] = 8). */
#ifndef FASTCONV_KERNELS_WINOGRAD_GATHER_AVX_H
#define FASTCONV_KERNELS_WINOGRAD_GATHER_AVX_H

#include <immintrin.h>
#include <stddef.h>

static inline void fc_wino_gather8_f32(float *d, int dstride, const float *const src[8],
                                       const ptrdiff_t w[8], int rows, int cols)
{
    for (int a = 0; a < rows; a++) {
        const __m256 r0 = _mm256_loadu_ps(src[0] + a * w[0]);
        const __m256 r1 = _mm256_loadu_ps(src[1] + a * w[1]);
        const __m256 r2 = _mm256_loadu_ps(src[2] + a * w[2]);
        const __m256 r3 = _mm256_loadu_ps(src[3] + a * w[3]);
        const __m256 r4 = _mm256_loadu_ps(src[4] + a * w[4]);
        const __m256 r5 = _mm256_loadu_ps(src[5] + a * w[5]);
        const __m256 r6 = _mm256_loadu_ps(src[6] + a * w[6]);
        const __m256 r7 = _mm256_loadu_ps(src[7] + a * w[7]);
        const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
        const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
        __m256 col[8]; /* col[b][l] = src[l][a * w[l] + b] */
        col[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
        col[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
        col[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
        col[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
        col[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
        col[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
        col[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
        col[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
        for (int b = 0; b < cols; b++) _mm256_storeu_ps(d + (a * cols + b) * dstride, col[b]);
    }
}
#define FC_WINO_GATHER8_F32 fc_wino_gather8_f32

/* The way back for 4 x 4 output tiles (F(4,3)): 8 tiles of o[(r * 4 + c) * ostride + l]
 * stored row by row, dst[l][r * w + c] = o[(r * 4 + c) * ostride + l], by 4 x 8 transposes
 * (16 scalar stores per tile otherwise). Full tiles only. */
static inline void fc_wino_scatter8x4_f32(const float *o, int ostride, float *const dst[8],
                                          ptrdiff_t w)
{
    for (int r = 0; r < 4; r++) {
        const float *row = o + (size_t)r * 4 * ostride;
        const __m256 c0 = _mm256_loadu_ps(row), c1 = _mm256_loadu_ps(row + ostride);
        const __m256 c2 = _mm256_loadu_ps(row + 2 * ostride);
        const __m256 c3 = _mm256_loadu_ps(row + 3 * ostride);
        const __m256 t0 = _mm256_unpacklo_ps(c0, c1), t1 = _mm256_unpackhi_ps(c0, c1);
        const __m256 t2 = _mm256_unpacklo_ps(c2, c3), t3 = _mm256_unpackhi_ps(c2, c3);
        /* s0 = tiles 0 | 4, s1 = 1 | 5, s2 = 2 | 6, s3 = 3 | 7 (4 values each) */
        const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        const ptrdiff_t off = r * w;
        _mm_storeu_ps(dst[0] + off, _mm256_castps256_ps128(s0));
        _mm_storeu_ps(dst[1] + off, _mm256_castps256_ps128(s1));
        _mm_storeu_ps(dst[2] + off, _mm256_castps256_ps128(s2));
        _mm_storeu_ps(dst[3] + off, _mm256_castps256_ps128(s3));
        _mm_storeu_ps(dst[4] + off, _mm256_extractf128_ps(s0, 1));
        _mm_storeu_ps(dst[5] + off, _mm256_extractf128_ps(s1, 1));
        _mm_storeu_ps(dst[6] + off, _mm256_extractf128_ps(s2, 1));
        _mm_storeu_ps(dst[7] + off, _mm256_extractf128_ps(s3, 1));
    }
}
#define FC_WINO_SCATTER8X4_F32 fc_wino_scatter8x4_f32

#endif
