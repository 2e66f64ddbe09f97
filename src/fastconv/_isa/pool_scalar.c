/* Pooling, portable C: the scalar instantiation of every kernel template (all dtypes), the
 * direct kernels (max with indices, adaptive bins), max unpooling, and the dispatcher that
 * picks the ISA kernel and runs it on the thread team of runtime/team.h.
 *
 * Work is cut into chunks of contiguous output rows (plane, od, oh), several per thread, handed
 * out dynamically: with many planes a chunk holds whole planes, with few planes rows of them. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastconv/isa.h"
#include "fastconv/pool.h"
#include "fastconv/runtime/team.h"

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
static const fc_max_idx_fn find_idx[FC_DTYPE_COUNT] = FC_ALL_DTYPES(fc_pool_find_idx);
static const fc_pool_rows_fn wide_rows[FC_DTYPE_COUNT] = FC_ALL_DTYPES(fc_pool_wide);
static const fc_adaptive_fn adaptive[FC_DTYPE_COUNT] = FC_ALL_DTYPES(fc_adaptive);

/* The vectorised kernels exist for float32 and float64; integers always use the scalar ones. */
#define FC_POOL_CASE(ENUM, ISA, NAME) \
    case ENUM: return f64 ? NAME##_f64_##ISA : NAME##_f32_##ISA;

static fc_pool_rows_fn pick_rows(int isa, int dtype)
{
    const int f64 = dtype == FC_F64;
    if (dtype > FC_F64) return rows_scalar[dtype];
    switch (isa) {
        FC_FOR_EACH_SIMD_ISA(FC_POOL_CASE, fc_pool_rows)
    default: return rows_scalar[dtype];
    }
}

static fc_global_fn pick_global(int isa, int dtype)
{
    const int f64 = dtype == FC_F64;
    if (dtype > FC_F64) return global_scalar[dtype];
    switch (isa) {
        FC_FOR_EACH_SIMD_ISA(FC_POOL_CASE, fc_global)
    default: return global_scalar[dtype];
    }
}

static int team_size(int nthreads, int64_t items)
{
    if (nthreads < 1) nthreads = 1;
    return items < nthreads ? (int)(items > 0 ? items : 1) : nthreads;
}

/* Taps of output o (start o*s - pad) that the average's divisor counts: with
 * count_include_pad those inside [-pad, limit) (input and explicit padding, never the ceil-mode
 * overhang), else those inside the input. Arithmetic, so a huge kernel costs nothing. */
static int64_t counted_taps(int64_t o, int64_t s, int64_t pad, int64_t dil, int64_t k,
                            int64_t n, int64_t limit, int cip)
{
    int64_t lo, hi;
    if (!cip) {
        fc_tap_range(o, s, pad, dil, k, n, &lo, &hi);
        return hi > lo ? hi - lo : 0;
    }
    const int64_t start = o * s - pad;
    if (start >= limit) return 0;
    const int64_t c = (limit - 1 - start) / dil + 1;
    return c < k ? c : k;
}

/* The per-row tables of fc_pool_tables; returns 0, or -1 when out of memory. Only the taps
 * inside the input are visited (clipped ranges), so tables stay small for any window. */
static int build_tables(const fc_pool_plan *p, fc_pool_tables *t, void **owned)
{
    const int64_t od_ = p->osize[0], oh_ = p->osize[1], ow = p->osize[2];
    const int64_t nq = od_ * oh_;
    const int cip = p->count_include_pad;
    int64_t total = 0;
    for (int64_t q = 0; q < nq; q++) {
        int64_t a0, a1, b0, b1;
        fc_tap_range(q / oh_, p->stride[0], p->pad[0], p->dilation[0], p->kernel[0],
                     p->isize[0], &a0, &a1);
        fc_tap_range(q % oh_, p->stride[1], p->pad[1], p->dilation[1], p->kernel[1],
                     p->isize[1], &b0, &b1);
        total += (a1 > a0 ? a1 - a0 : 0) * (b1 > b0 ? b1 - b0 : 0);
    }
    int64_t *rowstart = (int64_t *)fc_malloc((size_t)(nq + 1) * sizeof(int64_t));
    int64_t *rowoff = (int64_t *)fc_malloc((size_t)(total + 1) * sizeof(int64_t));
    double *vdiv = (double *)fc_malloc((size_t)(nq + 1) * sizeof(double));
    double *hdiv = (double *)fc_malloc((size_t)(ow + 64) * sizeof(double));
    double *vinv = (double *)fc_malloc((size_t)(nq + 1) * sizeof(double));
    owned[0] = rowstart, owned[1] = rowoff, owned[2] = vdiv, owned[3] = hdiv, owned[4] = vinv;
    if (!rowstart || !rowoff || !vdiv || !hdiv || !vinv) return -1;
    int64_t n = 0;
    for (int64_t q = 0; q < nq; q++) {
        const int64_t od = q / oh_, oh = q % oh_;
        int64_t a0, a1, b0, b1;
        fc_tap_range(od, p->stride[0], p->pad[0], p->dilation[0], p->kernel[0], p->isize[0],
                     &a0, &a1);
        fc_tap_range(oh, p->stride[1], p->pad[1], p->dilation[1], p->kernel[1], p->isize[1],
                     &b0, &b1);
        rowstart[q] = n;
        for (int64_t a = a0; a < a1; a++) {
            const int64_t d = od * p->stride[0] - p->pad[0] + a * p->dilation[0];
            for (int64_t b = b0; b < b1; b++) {
                const int64_t h = oh * p->stride[1] - p->pad[1] + b * p->dilation[1];
                rowoff[n++] = (d * p->isize[1] + h) * p->isize[2];
            }
        }
        const int64_t cd = counted_taps(od, p->stride[0], p->pad[0], p->dilation[0],
                                        p->kernel[0], p->isize[0], p->limit[0], cip);
        const int64_t ch = counted_taps(oh, p->stride[1], p->pad[1], p->dilation[1],
                                        p->kernel[1], p->isize[1], p->limit[1], cip);
        vdiv[q] = p->divisor > 0 ? 1.0 : (double)cd * (double)ch;
        vinv[q] = 1.0 / vdiv[q];
    }
    rowstart[nq] = n;
    for (int64_t j = 0; j < ow + 64; j++) {
        const int64_t count = j < ow ? counted_taps(j, p->stride[2], p->pad[2], p->dilation[2],
                                                    p->kernel[2], p->isize[2], p->limit[2], cip)
                                     : 1;
        hdiv[j] = p->divisor > 0 ? p->divisor : (double)count;
    }
    t->rowstart = rowstart, t->rowoff = rowoff, t->vdiv = vdiv, t->hdiv = hdiv, t->vinv = vinv;
    return 0;
}

/* Work is cut into chunks of whole output rows (or planes); fc_team_run hands them out. */
#define FC_RANGE(items, chunks, c) ((items) * (c) / (chunks))

typedef struct {
    const fc_pool_plan *p;
    const fc_pool_tables *tables;
    const void *x;
    void *y;
    int64_t *indices;
    int64_t rows, chunks;
    fc_pool_rows_fn rows_fn;
    fc_max_idx_fn max_idx_fn;
    char *scratch;
    int64_t scratch_stride;
} fc_pool_job;

/* Values by the row kernel; with indices, then a scan for each maximum (still in cache). */
static void fc_pool_rows_body(void *ctx, int64_t c, int slot)
{
    const fc_pool_job *j = (const fc_pool_job *)ctx;
    const int64_t r0 = FC_RANGE(j->rows, j->chunks, c), r1 = FC_RANGE(j->rows, j->chunks, c + 1);
    j->rows_fn(j->p, j->tables, j->x, j->y, r0, r1, j->scratch + j->scratch_stride * slot);
    if (j->indices) j->max_idx_fn(j->p, j->x, j->y, j->indices, r0, r1);
}

int fc_pool(const fc_pool_plan *p, int dtype, const void *x, void *y, int64_t *indices)
{
    const int64_t rows = p->planes * p->osize[0] * p->osize[1];
    if (rows == 0 || p->osize[2] == 0) return 0;
    const int nt = team_size(p->nthreads, rows);
    fc_pool_job job = {p, NULL, x, y, indices, rows, fc_team_chunks(rows, nt), NULL, NULL,
                       NULL, 0};
    job.max_idx_fn = find_idx[dtype];
    /* The row kernels lay out the padded W extent of a row: windows far wider than the row
     * (kernel and dilation up to 2**31 - 1 each) go output by output over their real taps. */
    const int wide = fc_pool_row_width(p) > 2 * p->isize[2] + 4096;
    job.rows_fn = wide ? wide_rows[dtype] : pick_rows(p->isa, dtype);
    fc_pool_tables tables;
    void *owned[5] = {NULL, NULL, NULL, NULL, NULL};
    int failed = build_tables(p, &tables, owned);
    job.tables = &tables;
    /* one scratch block per participant, allocated up front */
    const int64_t bytes = wide ? FC_ALIGNMENT : fc_pool_scratch_elems(p) * 8;
    job.scratch_stride = (bytes + FC_ALIGNMENT - 1) / FC_ALIGNMENT * FC_ALIGNMENT;
    job.scratch = failed ? NULL : (char *)fc_malloc((size_t)(job.scratch_stride * nt));
    if (job.scratch) {
        memset(job.scratch, 0, (size_t)(job.scratch_stride * nt));
        fc_team_run(fc_pool_rows_body, &job, job.chunks, nt);
        fc_free(job.scratch);
    } else {
        failed = 1;
    }
    for (int i = 0; i < 5; i++) fc_free(owned[i]);
    return failed ? -1 : 0;
}

typedef struct {
    int kind;
    const int64_t *isize, *osize, *bins;
    const void *x;
    void *y;
    int64_t *indices;
    int64_t rows, chunks;
    fc_adaptive_fn fn;
} fc_adaptive_job;

static void fc_adaptive_body(void *ctx, int64_t c, int slot)
{
    const fc_adaptive_job *j = (const fc_adaptive_job *)ctx;
    (void)slot;
    j->fn(j->kind, j->isize, j->osize, j->bins, j->x, j->y, j->indices,
          FC_RANGE(j->rows, j->chunks, c), FC_RANGE(j->rows, j->chunks, c + 1));
}

int fc_adaptive_pool(int kind, int dtype, int64_t planes, const int64_t isize[3],
                     const int64_t osize[3], const int64_t *bins, const void *x, void *y,
                     int64_t *indices, int nthreads)
{
    const int64_t rows = planes * osize[0] * osize[1];
    if (rows == 0 || osize[2] == 0) return 0;
    const int nt = team_size(nthreads, rows);
    fc_adaptive_job job = {kind, isize, osize, bins, x, y, indices, rows,
                           fc_team_chunks(rows, nt), adaptive[dtype]};
    fc_team_run(fc_adaptive_body, &job, job.chunks, nt);
    return 0;
}

typedef struct {
    int kind;
    const void *x;
    void *y;
    int64_t planes, size, chunks;
    fc_global_fn fn;
} fc_global_job;

static void fc_global_body(void *ctx, int64_t c, int slot)
{
    const fc_global_job *j = (const fc_global_job *)ctx;
    (void)slot;
    j->fn(j->kind, j->x, j->y, FC_RANGE(j->planes, j->chunks, c),
          FC_RANGE(j->planes, j->chunks, c + 1), j->size);
}

int fc_global_pool(int kind, int dtype, int64_t planes, int64_t size, const void *x, void *y,
                   int isa, int nthreads)
{
    if (planes == 0 || size == 0) return 0;
    const int nt = team_size(nthreads, planes);
    fc_global_job job = {kind, x, y, planes, size, fc_team_chunks(planes, nt),
                         pick_global(isa, dtype)};
    fc_team_run(fc_global_body, &job, job.chunks, nt);
    return 0;
}

typedef struct {
    int elsize;
    int64_t planes, in_size, out_size, chunks;
    const void *x;
    const int64_t *indices;
    void *y;
    int add; /* max-pool backward: float elements summed into their index, index -1 skipped */
} fc_unpool_job;

/* Sum planes [c0, c1) of x into their indices of zeroed y (the max-pool gradient). */
#define FC_SCATTER_ADD_PLANES(type)                                                           \
    do {                                                                                      \
        const type *xs = (const type *)j->x;                                                  \
        type *ys = (type *)j->y;                                                              \
        for (int64_t c = c0; c < c1; c++) {                                                   \
            type *yp = ys + c * j->out_size;                                                  \
            const type *xp = xs + c * j->in_size;                                             \
            const int64_t *ip = j->indices + c * j->in_size;                                  \
            memset(yp, 0, (size_t)j->out_size * sizeof(type));                               \
            for (int64_t i = 0; i < j->in_size; i++)                                          \
                if (ip[i] >= 0) yp[ip[i]] += xp[i];                                           \
        }                                                                                     \
    } while (0)

/* Scatter planes [c0, c1); elements copied as raw bytes of their width. */
#define FC_UNPOOL_PLANES(type)                                                                \
    do {                                                                                      \
        const type *xs = (const type *)j->x;                                                  \
        type *ys = (type *)j->y;                                                              \
        for (int64_t c = c0; c < c1; c++) {                                                   \
            type *yp = ys + c * j->out_size;                                                  \
            const type *xp = xs + c * j->in_size;                                             \
            const int64_t *ip = j->indices + c * j->in_size;                                  \
            memset(yp, 0, (size_t)j->out_size * sizeof(type));                               \
            for (int64_t i = 0; i < j->in_size; i++) yp[ip[i]] = xp[i];                       \
        }                                                                                     \
    } while (0)

static void fc_unpool_body(void *ctx, int64_t chunk, int slot)
{
    const fc_unpool_job *j = (const fc_unpool_job *)ctx;
    const int64_t c0 = FC_RANGE(j->planes, j->chunks, chunk);
    const int64_t c1 = FC_RANGE(j->planes, j->chunks, chunk + 1);
    (void)slot;
    if (j->add) {
        if (j->elsize == 4) FC_SCATTER_ADD_PLANES(float);
        else FC_SCATTER_ADD_PLANES(double);
        return;
    }
    switch (j->elsize) {
    case 1: FC_UNPOOL_PLANES(uint8_t); break;
    case 2: FC_UNPOOL_PLANES(uint16_t); break;
    case 4: FC_UNPOOL_PLANES(uint32_t); break;
    default: FC_UNPOOL_PLANES(uint64_t); break;
    }
}

int fc_max_unpool(int elsize, int64_t planes, int64_t in_size, int64_t out_size, const void *x,
                  const int64_t *indices, void *y, int nthreads)
{
    if (planes == 0) return 0;
    const int nt = team_size(nthreads, planes);
    fc_unpool_job job = {elsize, planes, in_size, out_size, fc_team_chunks(planes, nt), x,
                         indices, y, 0};
    fc_team_run(fc_unpool_body, &job, job.chunks, nt);
    return 0;
}

int fc_max_pool_backward(int elsize, int64_t planes, int64_t in_size, int64_t out_size,
                         const void *g, const int64_t *indices, void *y, int nthreads)
{
    if (planes == 0) return 0;
    const int nt = team_size(nthreads, planes);
    fc_unpool_job job = {elsize, planes, in_size, out_size, fc_team_chunks(planes, nt), g,
                         indices, y, 1};
    fc_team_run(fc_unpool_body, &job, job.chunks, nt);
    return 0;
}
