/* The floating-point mode of a compiled call: flush subnormals to zero or not.
 *
 * Intel cores take a microcode assist (~100 cycles) for every arithmetic instruction that meets
 * a subnormal operand or result; with FTZ (results) and DAZ (operands) set they do not, and the
 * only change to a result is that magnitudes below the smallest normal number become zero.
 * ncnn and XNNPACK run this way. The policy (API.md, "Subnormals"):
 *  - the calling thread enters a call with fc_fp_enter(flush) and leaves it with
 *    fc_fp_leave(saved), so the caller's state is back when the call returns, error or not;
 *  - every parallel region takes the caller's mode on each of its threads for the region's
 *    length: FC_FP_CAPTURE() before the region, FC_FP_ADOPT() first thing inside it and
 *    FC_FP_RESTORE() last thing inside it. The OpenMP workers are shared with other libraries
 *    of the process: they leave with the caller's own flush bits, not fastconv's mode.
 * The state is x86's MXCSR (FTZ bit 15, DAZ bit 6) or AArch64's FPCR (FZ bit 24, which
 * flushes both operands and results); elsewhere these are no-ops. */
#ifndef FASTCONV_FPSTATE_H
#define FASTCONV_FPSTATE_H

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <xmmintrin.h>
typedef unsigned int fc_fpstate;
#define FC_FP_FLUSH_BITS 0x8040u
static inline fc_fpstate fc_fp_get(void) { return _mm_getcsr(); }
static inline void fc_fp_set(fc_fpstate s) { _mm_setcsr(s); }
#elif defined(__aarch64__)
#include <stdint.h>
typedef uint64_t fc_fpstate;
#define FC_FP_FLUSH_BITS ((uint64_t)1 << 24)
static inline fc_fpstate fc_fp_get(void)
{
    uint64_t s;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(s));
    return s;
}
static inline void fc_fp_set(fc_fpstate s) { __asm__ __volatile__("msr fpcr, %0" : : "r"(s)); }
#else
typedef unsigned int fc_fpstate;
#define FC_FP_FLUSH_BITS 0u
static inline fc_fpstate fc_fp_get(void) { return 0; }
static inline void fc_fp_set(fc_fpstate s) { (void)s; }
#endif

/* The calling thread's flush bits from before the call (fc_fp_enter records them), for the
 * OpenMP workers to go back to: a worker that libgomp creates inside a call inherits the
 * caller's flushing state, so "restore what the worker had" would leave it flushing. One slot
 * per thread, shared by every translation unit of an extension (a weak definition). */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((weak)) fc_fpstate *fc_fp_home_slot(void)
{
    static _Thread_local fc_fpstate home;
    return &home;
}
#else /* one slot per translation unit: the workers then go back to IEEE subnormals */
static fc_fpstate *fc_fp_home_slot(void)
{
    static __declspec(thread) fc_fpstate home;
    return &home;
}
#endif

/* Set the flush bits (flush != 0) or clear them (IEEE subnormals); returns the state before. */
static inline fc_fpstate fc_fp_enter(int flush)
{
    const fc_fpstate saved = fc_fp_get();
    const fc_fpstate mode = flush ? (saved | FC_FP_FLUSH_BITS) : (saved & ~FC_FP_FLUSH_BITS);
    *fc_fp_home_slot() = saved & FC_FP_FLUSH_BITS;
    if (mode != saved) fc_fp_set(mode);
    return saved;
}

static inline void fc_fp_leave(fc_fpstate saved)
{
    if (fc_fp_get() != saved) fc_fp_set(saved);
}

/* Whether the flush bits are set on this thread (for tests). */
static inline int fc_fp_flushing(void)
{
    return FC_FP_FLUSH_BITS != 0 && (fc_fp_get() & FC_FP_FLUSH_BITS) == FC_FP_FLUSH_BITS;
}

/* Only the flush bits travel into a region: a worker keeps its own rounding and exception
 * masks. The master (thread 0) leaves the region in the call's mode; a worker leaves it with
 * the caller's own flush bits. */
#define FC_FP_CAPTURE()                                                                  \
    const fc_fpstate fc_fp_mode_ = fc_fp_get() & FC_FP_FLUSH_BITS;                       \
    const fc_fpstate fc_fp_home_ = *fc_fp_home_slot()
#define FC_FP_ADOPT()                                                                    \
    const fc_fpstate fc_fp_saved_ = fc_fp_get() & ~FC_FP_FLUSH_BITS;                     \
    if ((fc_fp_get() & FC_FP_FLUSH_BITS) != fc_fp_mode_) fc_fp_set(fc_fp_saved_ | fc_fp_mode_)
#define FC_FP_RESTORE()                                                                  \
    fc_fp_leave(fc_fp_saved_ | (fc_omp_thread_num() == 0 ? fc_fp_mode_ : fc_fp_home_))

#endif
