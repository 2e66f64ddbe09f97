/* Winograd driver for one dtype (included by winograd_template.h with FC_WT, FC_WSFX, FC_WL,
 * FC_WDTYPE, FC_WCFG, FC_WCFG_GET, FC_WPACKSIZE set): the per-tile code for m = 2, 4, 6 and the
 * driver fc_winograd_conv2d_<t>_<isa> that runs the work units on OpenMP threads. */

/* What every work unit of one call shares (read-only). */
typedef struct {
    const FC_WT *x, *packed, *bias;
    FC_WT *y;
    const FC_WCFG *cfg;
    int c_in, c_out, groups, cg, kg;
    int in_h, in_w, out_h, out_w, pad_top, pad_left;
    int tiles_h, tiles_w;
    size_t packed_stride; /* elements of one packed-A matrix (Kg x Cg) */
} FC_CAT(fc_wino_call_, FC_WSFX);

#define FC_WM 2
#include "fastconv/kernels/winograd_tile.h"
#undef FC_WM
#define FC_WM 4
#include "fastconv/kernels/winograd_tile.h"
#undef FC_WM
#define FC_WM 6
#include "fastconv/kernels/winograd_tile.h"
#undef FC_WM

int FC_CAT(FC_CAT(FC_CAT(fc_winograd_conv2d_, FC_WSFX), _), FC_WISA)(
    const fc_winograd_geometry *geo, const FC_WT *x, const FC_WT *packed, const FC_WT *bias,
    FC_WT *y, int nthreads)
{
    FC_CAT(fc_wino_call_, FC_WSFX) call;
    const int m = geo->tile;
    call.x = x;
    call.packed = packed;
    call.bias = bias;
    call.y = y;
    call.cfg = FC_WCFG_GET(FC_WISA_ENUM);
    call.c_in = geo->c_in;
    call.c_out = geo->c_out;
    call.groups = geo->groups;
    call.cg = geo->c_in / geo->groups;
    call.kg = geo->c_out / geo->groups;
    call.in_h = geo->in_h;
    call.in_w = geo->in_w;
    call.out_h = geo->out_h;
    call.out_w = geo->out_w;
    call.pad_top = geo->pad_top;
    call.pad_left = geo->pad_left;
    call.tiles_h = (geo->out_h + m - 1) / m;
    call.tiles_w = (geo->out_w + m - 1) / m;
    call.packed_stride = FC_WPACKSIZE(FC_WISA_ENUM, call.kg, call.cg);

    const int mr = call.cfg->mr, alpha2 = (m + 2) * (m + 2);
    const long ntiles = (long)geo->batch * call.tiles_h * call.tiles_w;
    const int block = geo->block_tiles; /* resolved: a multiple of NR */
    const long nblocks = (ntiles + block - 1) / block;
    const int kpanels = (call.kg + mr - 1) / mr;
    const int ksplit = FC_MIN(geo->k_split, kpanels);
    const int kper = (kpanels + ksplit - 1) / ksplit * mr; /* channels per split */
    const long units = nblocks * geo->groups * ksplit;
    /* per-thread scratch, in elements: V and M (alpha^2 skewed matrices each); then the
     * tile table (fc_winograd_scratch_bytes must agree) */
    const size_t v_elems = (size_t)alpha2 * ((size_t)block * call.cg + FC_WINO_SKEW(FC_WT));
    const size_t m_elems =
        (size_t)alpha2 * ((size_t)block * FC_MIN(kper, call.kg) + FC_WINO_SKEW(FC_WT));
    const size_t bytes = (v_elems + m_elems) * sizeof(FC_WT) + 3 * (size_t)block * sizeof(int);
    int failed = 0;

    FC_OMP(parallel num_threads(nthreads) if (nthreads > 1))
    {
        FC_WT *scratch = (FC_WT *)fc_malloc(bytes);
        if (scratch == NULL) {
            FC_OMP(atomic write)
            failed = 1;
        }
        FC_OMP(for schedule(dynamic, 1))
        for (long u = 0; u < units; u++) {
            if (scratch == NULL) continue;
            const int split = (int)(u % ksplit);
            const int gi = (int)(u / ksplit % geo->groups);
            const long b = u / ksplit / geo->groups;
            const int k0 = split * kper, k1 = FC_MIN(call.kg, k0 + kper);
            if (k0 >= k1) continue;
            const long t0 = b * block;
            const int nt = (int)FC_MIN((long)block, ntiles - t0);
            FC_WT *v = scratch, *mm = v + v_elems;
            int *tiles = (int *)(mm + m_elems);
            switch (m) {
            case 2: FC_CAT(FC_CAT(fc_wino_unit_f2_, FC_WSFX), _)(&call, t0, nt, gi, k0, k1,
                                                               v, mm, tiles); break;
            case 4: FC_CAT(FC_CAT(fc_wino_unit_f4_, FC_WSFX), _)(&call, t0, nt, gi, k0, k1,
                                                               v, mm, tiles); break;
            default: FC_CAT(FC_CAT(fc_wino_unit_f6_, FC_WSFX), _)(&call, t0, nt, gi, k0, k1,
                                                                v, mm, tiles); break;
            }
        }
        fc_free(scratch);
    }
    return failed ? -1 : 0;
}
