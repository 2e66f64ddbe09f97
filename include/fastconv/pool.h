/* Pooling: the plan the Python front hands over, and the entry points of the kernels.
 *
 * Every pool is run as a 3-D pool over (D, H, W): 1-D and 2-D pools have size-1 leading dims
 * with kernel, stride and dilation 1 and no padding. The plan is finished and trusted: sizes,
 * explicit pads and the output size come from fastconv.shapes via the Python front.
 */
#ifndef FASTCONV_POOL_H
#define FASTCONV_POOL_H

#include "common.h"
#include "fastconv/isa.h"

enum fc_pool_kind { FC_POOL_MAX = 0, FC_POOL_AVG = 1, FC_POOL_LP = 2 };

/* dtype codes; floats first (every pool), then the integers (max pooling only). */
enum fc_dtype {
    FC_F32 = 0, FC_F64, FC_I8, FC_U8, FC_I16, FC_U16, FC_I32, FC_U32, FC_I64, FC_U64,
    FC_DTYPE_COUNT
};

typedef struct fc_pool_plan {
    int64_t planes;                 /* N * C */
    int64_t isize[3], osize[3];     /* input and output (D, H, W) */
    int64_t kernel[3], stride[3], dilation[3];
    int64_t pad[3];                 /* padding before; the after-side is implied by out */
    int64_t limit[3];               /* isize + pad after: count_include_pad counts [-pad, limit) */
    int kind;                       /* enum fc_pool_kind */
    int count_include_pad;
    double divisor;                 /* > 0: divisor_override */
    double p;                       /* Lp norm (kind LP); INFINITY means max |x| */
    int isa;                        /* enum fc_isa */
    int nthreads;
} fc_pool_plan;

/* Windowed pool of `planes` contiguous (D, H, W) planes into contiguous (OD, OH, OW) planes.
 * indices (max only, may be NULL): int64 flat index of each maximum within its input plane.
 * Returns 0, or -1 when scratch memory could not be allocated. */
int fc_pool(const fc_pool_plan *plan, int dtype, const void *x, void *y, int64_t *indices);

/* Adaptive pool: bins holds (start, end) pairs, osize[0] for D, then osize[1] for H, then osize[2] for W. */
int fc_adaptive_pool(int kind, int dtype, int64_t planes, const int64_t isize[3],
                     const int64_t osize[3], const int64_t *bins, const void *x, void *y,
                     int64_t *indices, int nthreads);

/* Global pool: each of `planes` contiguous planes of `size` elements -> one value. */
int fc_global_pool(int kind, int dtype, int64_t planes, int64_t size, const void *x, void *y,
                   int isa, int nthreads);

/* Max unpooling: y (planes x out_size, zero-filled here) gets x[i] at indices[i] of its plane;
 * elements are copied bitwise (elsize bytes), indices are trusted to lie in [0, out_size). */
int fc_max_unpool(int elsize, int64_t planes, int64_t in_size, int64_t out_size, const void *x,
                  const int64_t *indices, void *y, int nthreads);
/* The max-pool gradient: per plane, y (out_size, zeroed here) += g (in_size) at indices
 * (float32 elsize 4 / float64 elsize 8; index -1, a window without a real element, skipped). */
int fc_max_pool_backward(int elsize, int64_t planes, int64_t in_size, int64_t out_size,
                         const void *g, const int64_t *indices, void *y, int nthreads);

/* What every output row needs, computed once per call by the dispatcher (shared, read-only):
 * output row q = od * OH + oh reads the input rows at plane offsets
 * rowoff[rowstart[q] .. rowstart[q + 1]) (the valid (kd, kh) taps, in window order). */
typedef struct fc_pool_tables {
    const int64_t *rowstart;        /* OD * OH + 1 */
    const int64_t *rowoff;
    const double *vdiv;             /* OD * OH: (D, H) part of the average's divisor */
    const double *vinv;             /* OD * OH: 1 / vdiv */
    const double *hdiv;             /* OW + 64: W part (or divisor_override, vdiv then 1) */
} fc_pool_tables;

/* Per-ISA kernels (the dispatcher in pool_scalar.c picks one). */
typedef void (*fc_pool_rows_fn)(const fc_pool_plan *p, const fc_pool_tables *t, const void *x,
                                void *y, int64_t row0, int64_t row1, void *scratch);
typedef void (*fc_global_fn)(int kind, const void *x, void *y, int64_t plane0, int64_t plane1,
                             int64_t size);

#define FC_POOL_DECLARE_ISA(sfx)                                                              \
    void fc_pool_rows_f32_##sfx(const fc_pool_plan *, const fc_pool_tables *, const void *,   \
                                void *, int64_t, int64_t, void *);                            \
    void fc_pool_rows_f64_##sfx(const fc_pool_plan *, const fc_pool_tables *, const void *,   \
                                void *, int64_t, int64_t, void *);                            \
    void fc_global_f32_##sfx(int, const void *, void *, int64_t, int64_t, int64_t);           \
    void fc_global_f64_##sfx(int, const void *, void *, int64_t, int64_t, int64_t);

#define FC_POOL_DECLARE_X(ENUM, ISA, _) FC_POOL_DECLARE_ISA(ISA)
FC_FOR_EACH_ISA(FC_POOL_DECLARE_X, _)
#undef FC_POOL_DECLARE_X

/* Scratch elements one thread's row kernel needs (row buffer + stride phases + slack). */
static inline int64_t fc_pool_scratch_elems(const fc_pool_plan *p)
{
    int64_t wb = p->pad[2] + p->isize[2];
    int64_t need = (p->osize[2] - 1) * p->stride[2] + (p->kernel[2] - 1) * p->dilation[2] + 1;
    if (need > wb) wb = need;
    /* + the flat kernel-2 path's block buffer (FC_POOL_FLAT_ELEMS + 2 vectors) */
    return 2 * wb + 4 * p->stride[2] + p->osize[2] + 512 + 1024 + 64;
}

/* Width of the padded row buffer: every tap of every output column lies inside it. */
static inline int64_t fc_pool_row_width(const fc_pool_plan *p)
{
    int64_t wb = p->pad[2] + p->isize[2];
    int64_t need = (p->osize[2] - 1) * p->stride[2] + (p->kernel[2] - 1) * p->dilation[2] + 1;
    return need > wb ? need : wb;
}

#endif
