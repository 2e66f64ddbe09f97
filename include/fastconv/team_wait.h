/* The end of a team's dynamically shared work, for thread 0 (the caller's thread).
 *
 * OpenMP's closing barrier puts a thread that arrives early to sleep when the workers wait
 * passively (fastconv's default: fastconv._extension sets OMP_WAIT_POLICY=PASSIVE), and waking
 * it again costs tens of microseconds on a loaded machine; thread 0, which then still has to
 * return to the caller, would pay that on every call. So a work loop ends
 *
 *     FC_OMP(for schedule(dynamic, 1) nowait)
 *     for (u = 0; u < units; u++) { ...; FC_TEAM_DONE_ADD(&done); }
 *     fc_team_wait_done(&done, units);
 *
 * and thread 0, once out of units, spins on the count of finished units (about one unit's
 * time at most, as units are handed out dynamically) so that it reaches the barrier last.
 * Capped at FC_TEAM_SPIN_LIMIT polls (~0.1 ms): a worker that was descheduled (more threads
 * than cores, or other load) may need this core.
 */
#ifndef FASTCONV_TEAM_WAIT_H
#define FASTCONV_TEAM_WAIT_H

#include "fastconv/omp.h"

#ifndef FC_TEAM_SPIN_LIMIT
#define FC_TEAM_SPIN_LIMIT 4096L
#endif
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FC_TEAM_PAUSE() __builtin_ia32_pause()
#elif defined(__GNUC__) && defined(__aarch64__)
#define FC_TEAM_PAUSE() __asm__ __volatile__("yield")
#else
#define FC_TEAM_PAUSE() ((void)0)
#endif
#if defined(__GNUC__) || defined(__clang__)
#define FC_TEAM_DONE_ADD(p) __atomic_fetch_add((p), 1, __ATOMIC_RELEASE)
#define FC_TEAM_DONE_GET(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#else
#define FC_TEAM_DONE_ADD(p) FC_OMP(atomic update) (*(p))++
#define FC_TEAM_DONE_GET(p) (*(volatile long *)(p))
#endif

static inline void fc_team_wait_done(long *done, long units)
{
    if (fc_omp_thread_num() != 0) return;
    for (long spin = 0; spin < FC_TEAM_SPIN_LIMIT && FC_TEAM_DONE_GET(done) < units; spin++)
        FC_TEAM_PAUSE();
}

#endif
