/* Pooling, portable C: the scalar instantiation of every kernel template (all dtypes), the
 * direct kernels (max with indices, adaptive bins), max unpooling, and the dispatcher that
 * picks the ISA kernel and runs it over OpenMP threads.
 *
 * Work is split into contiguous ranges of output rows (plane, od, oh), one range per thread:
 * with many planes a thread gets whole planes, with few planes it gets rows of them. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastconv/isa.h"
#include "fastconv/omp.h"
#include "fastconv/pool.h"

/* One dtype: scalar vector layer, then the direct and the row templates. */
#define FC_T float
#define FC_SFX f32_scalar
#define FC_TLOWEST (-INFINITY)
#define FC_POOL_FLOAT 1
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T double
#define FC_SFX f64_scalar
#define FC_TLOWEST (-INFINITY)
#define FC_POOL_FLOAT 1
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T int8_t
#define FC_SFX i8_scalar
#define FC_TLOWEST INT8_MIN
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T uint8_t
#define FC_SFX u8_scalar
#define FC_TLOWEST 0
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T int16_t
#define FC_SFX i16_scalar
#define FC_TLOWEST INT16_MIN
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T uint16_t
#define FC_SFX u16_scalar
#define FC_TLOWEST 0
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T int32_t
#define FC_SFX i32_scalar
#define FC_TLOWEST INT32_MIN
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T uint32_t
#define FC_SFX u32_scalar
#define FC_TLOWEST 0
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T int64_t
#define FC_SFX i64_scalar
#define FC_TLOWEST INT64_MIN
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

#define FC_T uint64_t
#define FC_SFX u64_scalar
#define FC_TLOWEST 0
#define FC_POOL_FLOAT 0
#include "fastconv/kernels/pool_scalar.h"
#include "fastconv/kernels/pool_direct.h"
#include "fastconv/kernels/pool_rows.h"

/* ---- tables, indexed by enum fc_dtype ---- */
#define FC_ALL_DTYPES(prefix)                                                                 \
    {prefix##_f32_scalar, prefix##_f64_scalar, prefix##_i8_scalar, prefix##_u8_scalar,       \
     prefix##_i16_scalar, prefix##_u16_scalar, prefix##_i32_scalar, prefix##_u32_scalar,     \
     prefix##_i64_scalar, prefix##_u64_scalar}

typedef void (*fc_max_idx_fn)(const fc_pool_plan *, const void *, void *, int64_t *, int64_t,
                              int64_t);
typedef void (*fc_adaptive_fn)(int, const int64_t *, const int64_t *, const int64_t *,
                               const void *, void *, int64_t *, int64_t, int64_t);

static const fc_pool_rows_fn rows_scalar[FC_DTYPE_COUNT] = FC_ALL_DTYPES(fc_pool_rows);
static const fc_global_fn global_scalar[FC_DTYPE_COUNT] = FC_ALL_DTYPES(fc_global);
static const fc_max_idx_fn max_idx[FC_DTYPE_COUNT] = FC_ALL_DTYPES(fc_pool_max_idx);
static const fc_adaptive_fn adaptive[FC_DTYPE_COUNT] = FC_ALL_DTYPES(fc_adaptive);

/* The vectorised kernels exist for float32 and float64; integers always use the scalar ones. */
static fc_pool_rows_fn pick_rows(int isa, int dtype)
{
    const int f64 = dtype == FC_F64;
    if (dtype > FC_F64) return rows_scalar[dtype];
    switch (isa) {
#if FC_HAVE_AVX512
    case FC_ISA_AVX512: return f64 ? fc_pool_rows_f64_avx512 : fc_pool_rows_f32_avx512;
#endif
#if FC_HAVE_AVX2
    case FC_ISA_AVX2: return f64 ? fc_pool_rows_f64_avx2 : fc_pool_rows_f32_avx2;
#endif
#if FC_HAVE_NEON
    case FC_ISA_NEON: return f64 ? fc_pool_rows_f64_neon : fc_pool_rows_f32_neon;
#endif
    default: return rows_scalar[dtype];
    }
}

static fc_global_fn pick_global(int isa, int dtype)
{
    const int f64 = dtype == FC_F64;
    if (dtype > FC_F64) return global_scalar[dtype];
    switch (isa) {
#if FC_HAVE_AVX512
    case FC_ISA_AVX512: return f64 ? fc_global_f64_avx512 : fc_global_f32_avx512;
#endif
#if FC_HAVE_AVX2
    case FC_ISA_AVX2: return f64 ? fc_global_f64_avx2 : fc_global_f32_avx2;
#endif
#if FC_HAVE_NEON
    case FC_ISA_NEON: return f64 ? fc_global_f64_neon : fc_global_f32_neon;
#endif
    default: return global_scalar[dtype];
    }
}

static int team_size(int nthreads, int64_t items)
{
    if (nthreads < 1) nthreads = 1;
    return items < nthreads ? (int)(items > 0 ? items : 1) : nthreads;
}

/* The per-row tables of fc_pool_tables; returns 0, or -1 when out of memory. */
static int build_tables(const fc_pool_plan *p, fc_pool_tables *t, void **owned)
{
    const int64_t od_ = p->osize[0], oh_ = p->osize[1], ow = p->osize[2];
    const int64_t nq = od_ * oh_;
    int64_t *rowstart = (int64_t *)fc_malloc((size_t)(nq + 1) * sizeof(int64_t));
    int64_t *rowoff = (int64_t *)fc_malloc((size_t)(nq * p->kernel[0] * p->kernel[1] + 1) *
                                           sizeof(int64_t));
    double *vdiv = (double *)fc_malloc((size_t)(nq + 1) * sizeof(double));
    double *hdiv = (double *)fc_malloc((size_t)(ow + 64) * sizeof(double));
    owned[0] = rowstart, owned[1] = rowoff, owned[2] = vdiv, owned[3] = hdiv;
    if (!rowstart || !rowoff || !vdiv || !hdiv) return -1;
    const int cip = p->count_include_pad;
    int64_t n = 0;
    for (int64_t q = 0; q < nq; q++) {
        const int64_t od = q / oh_, oh = q % oh_;
        int64_t cd = 0, ch = 0;
        rowstart[q] = n;
        for (int64_t a = 0; a < p->kernel[0]; a++) {
            const int64_t d = od * p->stride[0] - p->pad[0] + a * p->dilation[0];
            const int dval = d >= 0 && d < p->isize[0];
            cd += cip ? d < p->limit[0] : dval;
            for (int64_t b = 0; b < p->kernel[1]; b++) {
                const int64_t h = oh * p->stride[1] - p->pad[1] + b * p->dilation[1];
                const int hval = h >= 0 && h < p->isize[1];
                if (a == 0) ch += cip ? h < p->limit[1] : hval;
                if (dval && hval) rowoff[n++] = (d * p->isize[1] + h) * p->isize[2];
            }
        }
        vdiv[q] = p->divisor > 0 ? 1.0 : (double)(cd * ch);
    }
    rowstart[nq] = n;
    for (int64_t j = 0; j < ow + 64; j++) {
        int64_t count = 0;
        for (int64_t k = 0; k < p->kernel[2] && j < ow; k++) {
            const int64_t w = j * p->stride[2] - p->pad[2] + k * p->dilation[2];
            count += cip ? w < p->limit[2] : w >= 0 && w < p->isize[2];
        }
        hdiv[j] = p->divisor > 0 ? p->divisor : j < ow ? (double)count : 1.0;
    }
    t->rowstart = rowstart, t->rowoff = rowoff, t->vdiv = vdiv, t->hdiv = hdiv;
    return 0;
}

/* Rows are handed out in chunks (dynamic schedule): a thread that the OS delays on a busy
 * machine holds up at most one chunk. */
#define FC_POOL_CHUNKS_PER_THREAD 8

int fc_pool(const fc_pool_plan *p, int dtype, const void *x, void *y, int64_t *indices)
{
    const int64_t rows = p->planes * p->osize[0] * p->osize[1];
    if (rows == 0 || p->osize[2] == 0) return 0;
    const int nt = team_size(p->nthreads, rows);
    if (indices != NULL) {
        FC_OMP(parallel num_threads(nt))
        {
            const int t = fc_omp_thread_num(), team = fc_omp_num_threads();
            max_idx[dtype](p, x, y, indices, rows * t / team, rows * (t + 1) / team);
        }
        return 0;
    }
    const fc_pool_rows_fn fn = pick_rows(p->isa, dtype);
    const int64_t scratch_bytes = fc_pool_scratch_elems(p) * 8;
    fc_pool_tables tables;
    void *owned[4] = {NULL, NULL, NULL, NULL};
    int failed = build_tables(p, &tables, owned);
    const int64_t chunks = nt == 1 ? 1 : FC_MIN(rows, (int64_t)nt * FC_POOL_CHUNKS_PER_THREAD);
    /* one scratch block per thread, allocated up front: every thread then enters the
     * worksharing loop, as OpenMP requires */
    const int64_t stride = (scratch_bytes + FC_ALIGNMENT - 1) / FC_ALIGNMENT * FC_ALIGNMENT;
    char *scratch = failed ? NULL : (char *)fc_malloc((size_t)(stride * nt));
    if (scratch) {
        memset(scratch, 0, (size_t)(stride * nt));
        FC_OMP(parallel num_threads(nt))
        {
            void *mine = scratch + stride * fc_omp_thread_num();
            FC_OMP(for schedule(dynamic, 1))
            for (int64_t c = 0; c < chunks; c++)
                fn(p, &tables, x, y, rows * c / chunks, rows * (c + 1) / chunks, mine);
        }
        fc_free(scratch);
    } else {
        failed = 1;
    }
    for (int i = 0; i < 4; i++) fc_free(owned[i]);
    return failed ? -1 : 0;
}

int fc_adaptive_pool(int kind, int dtype, int64_t planes, const int64_t isize[3],
                     const int64_t osize[3], const int64_t *bins, const void *x, void *y,
                     int64_t *indices, int nthreads)
{
    const int64_t rows = planes * osize[0] * osize[1];
    if (rows == 0 || osize[2] == 0) return 0;
    const int nt = team_size(nthreads, rows);
    FC_OMP(parallel num_threads(nt))
    {
        const int t = fc_omp_thread_num(), team = fc_omp_num_threads();
        adaptive[dtype](kind, isize, osize, bins, x, y, indices, rows * t / team,
                        rows * (t + 1) / team);
    }
    return 0;
}

int fc_global_pool(int kind, int dtype, int64_t planes, int64_t size, const void *x, void *y,
                   int isa, int nthreads)
{
    if (planes == 0 || size == 0) return 0;
    const fc_global_fn fn = pick_global(isa, dtype);
    const int nt = team_size(nthreads, planes);
    FC_OMP(parallel num_threads(nt))
    {
        const int t = fc_omp_thread_num(), team = fc_omp_num_threads();
        fn(kind, x, y, planes * t / team, planes * (t + 1) / team, size);
    }
    return 0;
}

/* Scatter one plane per iteration; elements copied as raw bytes of their width. */
#define FC_UNPOOL_PLANES(type)                                                                \
    do {                                                                                      \
        const type *xs = (const type *)x;                                                     \
        type *ys = (type *)y;                                                                 \
        FC_OMP(parallel for num_threads(nt) schedule(static))                                 \
        for (int64_t c = 0; c < planes; c++) {                                                \
            type *yp = ys + c * out_size;                                                     \
            memset(yp, 0, (size_t)out_size * sizeof(type));                                   \
            for (int64_t i = 0; i < in_size; i++)                                             \
                yp[indices[c * in_size + i]] = xs[c * in_size + i];                           \
        }                                                                                     \
    } while (0)

int fc_max_unpool(int elsize, int64_t planes, int64_t in_size, int64_t out_size, const void *x,
                  const int64_t *indices, void *y, int nthreads)
{
    const int nt = team_size(nthreads, planes);
    switch (elsize) {
    case 1: FC_UNPOOL_PLANES(uint8_t); break;
    case 2: FC_UNPOOL_PLANES(uint16_t); break;
    case 4: FC_UNPOOL_PLANES(uint32_t); break;
    default: FC_UNPOOL_PLANES(uint64_t); break;
    }
    return 0;
}
