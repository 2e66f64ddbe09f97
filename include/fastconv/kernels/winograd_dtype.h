/* Winograd driver for one dtype (included by winograd_template.h with FC_WT, FC_WSFX, FC_WL,
 * FC_WDTYPE, FC_WCFG, FC_WCFG_GET, FC_WPACKSIZE set): the weight transform
 * fc_winograd_transform_weights_<t>_<isa>, the per-tile code for m = 2, 4, 6 and the driver
 * fc_winograd_conv2d_<t>_<isa> that runs the work units on OpenMP threads. */

/* U = G g G^T in double for every (k, c), from weights of the working dtype, rounded once to
 * FC_WT, in the packed-A layout of this ISA's GEMM. Work goes panel by panel (MR output
 * channels), a chunk of input channels at a time: the chunk's (channel, row) pairs are exactly
 * the next chunk x MR values of every xi's packed matrix, so they are the vector lanes of the
 * arithmetic (at most FC_WINO_WPAIRS), and each xi's results are copied out as one contiguous
 * run (writing alpha^2 strided streams directly would alias in the caches: the matrices are a
 * power-of-two apart). Every element is written exactly once (rows past Kg in the last panel
 * get zeros). */
#ifndef FC_WINO_WPAIRS
#define FC_WINO_WPAIRS 64
#endif
void FC_CAT(FC_CAT(FC_CAT(fc_winograd_transform_weights_, FC_WSFX), _), FC_WISA)(
    int tile, int c_out, int cg, int groups, const FC_WT *w, const double *G, FC_WT *packed,
    int nthreads)
{
    const int alpha = tile + 2, kg = c_out / groups;
    const int mr = FC_WCFG_GET(FC_WISA_ENUM)->mr;
    const int panels = (kg + mr - 1) / mr;
    const int chunk = FC_MAX(1, FC_WINO_WPAIRS / mr); /* input channels per step */
    const size_t one = FC_WPACKSIZE(FC_WISA_ENUM, kg, cg);
    const size_t step = (size_t)groups * one; /* from one xi to the next */
    double gm[8][3]; /* local copy: stores to `packed` cannot alias it */
    for (int a = 0; a < alpha; a++)
        for (int j = 0; j < 3; j++) gm[a][j] = G[a * 3 + j];
    FC_FP_CAPTURE();
    FC_OMP(parallel num_threads(nthreads) if (nthreads > 1))
    {
    FC_FP_ADOPT();
    FC_OMP(for schedule(static))
    for (int job = 0; job < groups * panels; job++) {
        const int gi = job / panels, p = job % panels;
        const int rows = FC_MIN(mr, kg - p * mr); /* real output channels in this panel */
        double gk[9][FC_WINO_WPAIRS], tmp[8][3][FC_WINO_WPAIRS];
        FC_WT out[FC_WINO_WPAIRS];
        FC_WT *base = packed + (size_t)gi * one + (size_t)p * mr * cg;
        const FC_WT *wp = w + (size_t)(gi * kg + p * mr) * cg * 9;
        for (int c0 = 0; c0 < cg; c0 += chunk) {
            const int nc = FC_MIN(chunk, cg - c0);
            const int n = nc * mr; /* pairs: lane cc * mr + r = (channel c0 + cc, row r) */
            for (int r = 0; r < mr; r++) {
                if (r < rows) {
                    const FC_WT *g = wp + ((size_t)r * cg + c0) * 9; /* nc x 9, contiguous */
                    for (int cc = 0; cc < nc; cc++)
                        for (int e = 0; e < 9; e++) gk[e][cc * mr + r] = (double)g[cc * 9 + e];
                } else {
                    for (int cc = 0; cc < nc; cc++)
                        for (int e = 0; e < 9; e++) gk[e][cc * mr + r] = 0.0;
                }
            }
            for (int a = 0; a < alpha; a++)
                for (int j = 0; j < 3; j++)
                    for (int i = 0; i < n; i++)
                        tmp[a][j][i] = gm[a][0] * gk[j][i] + gm[a][1] * gk[3 + j][i]
                                       + gm[a][2] * gk[6 + j][i];
            for (int a = 0; a < alpha; a++)
                for (int b = 0; b < alpha; b++) {
                    for (int i = 0; i < n; i++)
                        out[i] = (FC_WT)(tmp[a][0][i] * gm[b][0] + tmp[a][1][i] * gm[b][1]
                                         + tmp[a][2][i] * gm[b][2]);
                    FC_WT *dst = base + (size_t)(a * alpha + b) * step + (size_t)c0 * mr;
                    for (int i = 0; i < n; i++) dst[i] = out[i];
                }
        }
    }
    FC_FP_RESTORE();
    }
}

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

/* The unit of tile size m (see winograd_tile.h). */
static void FC_CAT(fc_wino_unit_, FC_WSFX)(int m, const FC_CAT(fc_wino_call_, FC_WSFX) *call,
                                          long t0, int nt, int gi, int c_lo, int c_hi, int k0,
                                          int k1, FC_WT *v, FC_WT *mm, int *tiles)
{
    switch (m) {
    case 2: FC_CAT(FC_CAT(fc_wino_unit_f2_, FC_WSFX), _)(call, t0, nt, gi, c_lo, c_hi, k0, k1,
                                                       v, mm, tiles); break;
    case 4: FC_CAT(FC_CAT(fc_wino_unit_f4_, FC_WSFX), _)(call, t0, nt, gi, c_lo, c_hi, k0, k1,
                                                       v, mm, tiles); break;
    default: FC_CAT(FC_CAT(fc_wino_unit_f6_, FC_WSFX), _)(call, t0, nt, gi, c_lo, c_hi, k0, k1,
                                                        v, mm, tiles); break;
    }
}

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

    if (ksplit > 1 && nthreads > 1) {
        /* The output channels of each block are split between threads: rather than every split
         * transforming the block's whole input again (the team did it ksplit times), the team
         * transforms it once into one shared V, each thread a range of input channels, then
         * splits the products and output transforms. */
        FC_WT *vshared = (FC_WT *)fc_malloc(v_elems * sizeof(FC_WT));
        if (vshared == NULL) return -1;
        const int cchunks = FC_MIN(call.cg, 4 * nthreads);
        FC_FP_CAPTURE();
        FC_OMP(parallel num_threads(nthreads))
        {
            FC_FP_ADOPT();
            FC_WT *scratch = (FC_WT *)fc_malloc(bytes - v_elems * sizeof(FC_WT));
            if (scratch == NULL) {
                FC_OMP(atomic write)
                failed = 1;
            }
            FC_WT *mm = scratch;
            int *tiles = scratch ? (int *)(mm + m_elems) : NULL;
            /* every thread runs the same sequence of work-sharing loops (and barriers) */
            for (long bg = 0; bg < nblocks * geo->groups; bg++) {
                const int gi = (int)(bg % geo->groups);
                const long t0 = bg / geo->groups * block;
                const int nt = (int)FC_MIN((long)block, ntiles - t0);
                FC_OMP(for schedule(static))
                for (int q = 0; q < cchunks; q++) {
                    const int c_lo = (int)((long)call.cg * q / cchunks);
                    const int c_hi = (int)((long)call.cg * (q + 1) / cchunks);
                    if (scratch != NULL)
                        FC_CAT(fc_wino_unit_, FC_WSFX)(m, &call, t0, nt, gi, c_lo, c_hi, 0, 0,
                                                       vshared, NULL, tiles);
                }
                FC_OMP(for schedule(static))
                for (int split = 0; split < ksplit; split++) {
                    const int k0 = split * kper, k1 = FC_MIN(call.kg, k0 + kper);
                    if (scratch != NULL && k0 < k1)
                        FC_CAT(fc_wino_unit_, FC_WSFX)(m, &call, t0, nt, gi, 0, 0, k0, k1,
                                                       vshared, mm, tiles);
                }
            }
            fc_free(scratch);
            FC_FP_RESTORE();
        }
        fc_free(vshared);
        return failed ? -1 : 0;
    }

    FC_FP_CAPTURE();
    FC_OMP(parallel num_threads(nthreads) if (nthreads > 1))
    {
        FC_FP_ADOPT();
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
            FC_CAT(fc_wino_unit_, FC_WSFX)(m, &call, t0, nt, gi, 0, call.cg, k0, k1, v, mm,
                                           tiles);
        }
        fc_free(scratch);
        FC_FP_RESTORE();
    }
    return failed ? -1 : 0;
}
