/* fastconv's thread runtime: a caller-participates team (issue 16 chose it over OpenMP; the
 * measurements are in docs/design.md, "Threads"). Today the pooling drivers run on it
 * (included once, by pool_scalar.c); the convolutions still run OpenMP regions (omp.h) until
 * they move here. The state below is static: every extension module that links a driver
 * including this file has its own team, so the move must give the team one home (one object
 * that every extension calls) before a second driver includes it.
 *
 * Why not an OpenMP parallel region: its closing barrier waits for every team member, so on a
 * busy machine a worker the OS has not yet scheduled costs its whole scheduling delay (measured
 * here: 0.3 ms of pooling took 15-25 ms at 2 threads under load). A pool is memory-bound and
 * short; here the caller claims chunks itself and waits only for chunks that a worker has
 * actually started, so a late worker finds nothing left and costs nothing (ONNX Runtime's
 * thread pool works the same way).
 *
 * Protocol: a job is published as one 64-bit ticket (generation | chunk count | next chunk).
 * Anyone claims chunk `next` by a compare-and-swap that advances it; a worker that read a stale
 * ticket fails its CAS. A claimed chunk keeps its job alive (the caller waits for `done` to
 * reach the chunk count: the worker reads the caller's arrays), so the job's body and context
 * are only read after a claim.
 *
 * Busy machines: workers are ordinary (SCHED_OTHER) threads, like OpenMP's and ONNX Runtime's,
 * so a worker woken for a job preempts a niced background job on its CPU. (They once ran under
 * SCHED_BATCH, which never preempts on wake-up: with niced builds on both cores of a 2-core
 * machine the worker then got its CPU only at the next tick, after the job, and 2 threads ran
 * exactly as fast as 1; as ordinary threads they run 1.8x faster there, and with an un-niced
 * busy process alongside both kinds are within 3% of 1 thread.) After its last chunk a worker
 * polls for the next job for FC_TEAM_POLL_NS (back-to-back calls then need no wake-up, which
 * costs 10-20 us on a VM), then sleeps on a condition variable. A worker preempted mid-chunk
 * still holds the caller up: when the caller waits for stragglers longer than its own part of
 * the job took, the team runs the next calls on the caller alone for a while (2 ms, doubling on
 * repeated stalls up to 256 ms), then tries again; on an idle machine it never backs off.
 *
 * One parallel call at a time: a concurrent caller (another Python thread) runs its chunks
 * alone. After fork() the child starts with no workers. Without pthreads or with the serial
 * build (FC_OPENMP unset) every chunk runs on the caller.
 */
#ifndef FASTCONV_RUNTIME_TEAM_H
#define FASTCONV_RUNTIME_TEAM_H

#include <stdint.h>

#include "fastconv/common.h"
#include "fastconv/fpstate.h"

/* body(ctx, chunk, slot): slot in [0, nthreads) names the participant (0: the caller), for
 * per-participant scratch; no two participants share a slot during a job. */
typedef void (*fc_team_body)(void *ctx, int64_t chunk, int slot);

#if defined(FC_OPENMP) && FC_OPENMP && (defined(__unix__) || defined(__APPLE__))
#define FC_TEAM_THREADED 1
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FC_TEAM_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define FC_TEAM_RELAX() __asm__ __volatile__("yield")
#else
#define FC_TEAM_RELAX() ((void)0)
#endif

#define FC_TEAM_MAX_WORKERS 255
#define FC_TEAM_CHUNK_BITS 20
#define FC_TEAM_MAX_CHUNKS ((1 << FC_TEAM_CHUNK_BITS) - 1)
/* a worker polls for the next job this long (ns) after its last chunk, then sleeps; the caller
 * waits for stragglers FC_TEAM_SPINS pauses, then yielding */
#define FC_TEAM_POLL_NS 20000LL
#define FC_TEAM_SPINS 4000
/* back-off after a stalled job (ns): first, and at most */
#define FC_TEAM_MIN_BACKOFF 2000000LL
#define FC_TEAM_MAX_BACKOFF 256000000LL
/* a wait for stragglers shorter than this (ns) is never a stall */
#define FC_TEAM_STALL_FLOOR 50000LL

static struct {
    pthread_mutex_t call_lock;      /* held by the caller of the running job */
    pthread_mutex_t sleep_lock;
    pthread_cond_t wake;
    _Atomic uint64_t ticket;        /* gen:24 | nchunks:20 | next:20 */
    _Atomic int64_t done;           /* chunks finished in the current job */
    _Atomic int sleepers;
    _Atomic int nthreads;           /* participants of the current job, caller included */
    fc_team_body body;              /* read only after a successful claim */
    void *ctx;
    fc_fpstate fpmode;              /* the caller's flush bits, taken by the workers */
    int nworkers;                   /* started (under call_lock) */
    uint32_t gen;
    int64_t solo_until;             /* run calls on the caller alone until then (ns) */
    int64_t backoff;                /* the next back-off (ns) */
} fc_team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

FC_INLINE int64_t fc_team_next(uint64_t t) { return (int64_t)(t & FC_TEAM_MAX_CHUNKS); }
FC_INLINE int64_t fc_team_count(uint64_t t)
{
    return (int64_t)((t >> FC_TEAM_CHUNK_BITS) & FC_TEAM_MAX_CHUNKS);
}

/* Claim the next chunk of the published job; -1 when none is left. */
static int64_t fc_team_claim(void)
{
    uint64_t t = atomic_load_explicit(&fc_team.ticket, memory_order_acquire);
    while (fc_team_next(t) < fc_team_count(t)) {
        if (atomic_compare_exchange_weak_explicit(&fc_team.ticket, &t, t + 1,
                                                  memory_order_acq_rel, memory_order_acquire))
            return fc_team_next(t);
    }
    return -1;
}

/* A claimable chunk for worker `slot` (workers past the job's thread count stay out). */
static int fc_team_has_work(int slot)
{
    const uint64_t t = atomic_load(&fc_team.ticket);
    return fc_team_next(t) < fc_team_count(t) && slot < atomic_load(&fc_team.nthreads);
}

static int64_t fc_team_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *fc_team_worker(void *arg)
{
    const int slot = (int)(intptr_t)arg;
    for (;;) {
        int64_t idle_since = fc_team_now();
        for (unsigned polls = 1;; polls++) {
            if (fc_team_has_work(slot)) {
                /* nthreads was read before the claim: a successful claim proves the job (and
                 * so its thread count) did not change in between */
                const int64_t chunk = fc_team_claim();
                if (chunk < 0) continue;
                /* the workers are fastconv's own threads: they keep the last job's mode */
                const fc_fpstate now = fc_fp_get();
                if ((now & FC_FP_FLUSH_BITS) != fc_team.fpmode)
                    fc_fp_set((now & ~FC_FP_FLUSH_BITS) | fc_team.fpmode);
                fc_team.body(fc_team.ctx, chunk, slot);
                atomic_fetch_add_explicit(&fc_team.done, 1, memory_order_release);
                idle_since = -1;  /* the poll window restarts after each chunk */
                continue;
            }
            if (polls % 16) {
                FC_TEAM_RELAX();
                continue;
            }
            const int64_t now = fc_team_now();
            if (idle_since < 0)
                idle_since = now;
            else if (now - idle_since > FC_TEAM_POLL_NS)
                break;
        }
        pthread_mutex_lock(&fc_team.sleep_lock);
        atomic_fetch_add(&fc_team.sleepers, 1);
        while (!fc_team_has_work(slot)) pthread_cond_wait(&fc_team.wake, &fc_team.sleep_lock);
        atomic_fetch_sub(&fc_team.sleepers, 1);
        pthread_mutex_unlock(&fc_team.sleep_lock);
    }
    return NULL;
}

static void fc_team_after_fork_child(void)
{
    /* the child has only the forking thread: no workers, nothing locked */
    pthread_mutex_init(&fc_team.call_lock, NULL);
    pthread_mutex_init(&fc_team.sleep_lock, NULL);
    pthread_cond_init(&fc_team.wake, NULL);
    atomic_store(&fc_team.ticket, 0);
    atomic_store(&fc_team.sleepers, 0);
    fc_team.nworkers = 0;
}

/* Start workers up to `want` (call_lock held); returns how many exist. */
static int fc_team_grow(int want)
{
    static int atfork_registered = 0;
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, fc_team_after_fork_child);
        atfork_registered = 1;
    }
    if (want > FC_TEAM_MAX_WORKERS) want = FC_TEAM_MAX_WORKERS;
    while (fc_team.nworkers < want) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        const int err = pthread_create(&thread, &attr, fc_team_worker,
                                       (void *)(intptr_t)(fc_team.nworkers + 1));
        pthread_attr_destroy(&attr);
        if (err) break;  /* fewer threads than asked: still correct */
        fc_team.nworkers++;
    }
    return fc_team.nworkers;
}

/* Run body(ctx, c, slot) for every chunk c in [0, nchunks) on up to `nthreads` threads. */
static void fc_team_run(fc_team_body body, void *ctx, int64_t nchunks, int nthreads)
{
    if (nchunks <= 0) return;
    if (nthreads <= 1 || nchunks == 1 || nchunks > FC_TEAM_MAX_CHUNKS ||
        pthread_mutex_trylock(&fc_team.call_lock) != 0) {
        for (int64_t c = 0; c < nchunks; c++) body(ctx, c, 0);
        return;
    }
    const int64_t start = fc_team_now();
    if (start < fc_team.solo_until) {
        pthread_mutex_unlock(&fc_team.call_lock);
        for (int64_t c = 0; c < nchunks; c++) body(ctx, c, 0);
        return;
    }
    /* workers started for an earlier, wider call stay out: slots must stay < nthreads */
    const int started = fc_team_grow(nthreads - 1);
    const int workers = started < nthreads - 1 ? started : nthreads - 1;
    fc_team.body = body;
    fc_team.ctx = ctx;
    fc_team.fpmode = fc_fp_get() & FC_FP_FLUSH_BITS;
    atomic_store(&fc_team.nthreads, workers + 1);
    atomic_store(&fc_team.done, 0);
    fc_team.gen = (fc_team.gen + 1) & 0xFFFFFF;
    atomic_store(&fc_team.ticket, ((uint64_t)fc_team.gen << (2 * FC_TEAM_CHUNK_BITS)) |
                                      ((uint64_t)nchunks << FC_TEAM_CHUNK_BITS));
    if (atomic_load(&fc_team.sleepers) > 0) {
        pthread_mutex_lock(&fc_team.sleep_lock);
        pthread_cond_broadcast(&fc_team.wake);
        pthread_mutex_unlock(&fc_team.sleep_lock);
    }
    int64_t mine = 0;
    for (int64_t c; (c = fc_team_claim()) >= 0; mine++) body(ctx, c, 0);
    if (mine) atomic_fetch_add_explicit(&fc_team.done, mine, memory_order_release);
    /* only chunks a running worker has claimed are outstanding */
    const int64_t own_done = fc_team_now();
    for (int spins = 0; atomic_load_explicit(&fc_team.done, memory_order_acquire) < nchunks;
         spins++) {
        if (spins < FC_TEAM_SPINS)
            FC_TEAM_RELAX();
        else
            sched_yield();
    }
    const int64_t end = fc_team_now(), waited = end - own_done;
    if (waited > FC_TEAM_STALL_FLOOR && waited > own_done - start) {
        /* a straggler cost more than the job itself: the workers' cores are busy */
        if (fc_team.backoff < FC_TEAM_MIN_BACKOFF) fc_team.backoff = FC_TEAM_MIN_BACKOFF;
        fc_team.solo_until = end + fc_team.backoff;
        if (fc_team.backoff < FC_TEAM_MAX_BACKOFF) fc_team.backoff *= 2;
    } else {
        fc_team.backoff = FC_TEAM_MIN_BACKOFF;
    }
    pthread_mutex_unlock(&fc_team.call_lock);
}

#else
#define FC_TEAM_THREADED 0
static void fc_team_run(fc_team_body body, void *ctx, int64_t nchunks, int nthreads)
{
    (void)nthreads;
    for (int64_t c = 0; c < nchunks; c++) body(ctx, c, 0);
}
#endif

/* Chunks for `items` units of work on `nthreads` threads: several per thread, so the
 * threads that run share the work out dynamically. */
static int64_t fc_team_chunks(int64_t items, int nthreads)
{
    if (nthreads <= 1) return items > 0 ? 1 : 0;
    const int64_t want = (int64_t)nthreads * 16;
    return items < want ? items : want;
}

#endif
