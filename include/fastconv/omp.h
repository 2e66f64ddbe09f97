/* OpenMP through one door: with FC_OPENMP unset every call degrades to the serial answer,
 * so kernels are written once and build with or without OpenMP. */
#ifndef FASTCONV_OMP_H
#define FASTCONV_OMP_H

/* every parallel region carries the caller's subnormal mode to its threads (fpstate.h) */
#include "fastconv/fpstate.h"

#if defined(FC_OPENMP) && FC_OPENMP
#include <omp.h>
#define FC_PRAGMA_(x) _Pragma(#x)
#define FC_OMP(x) FC_PRAGMA_(omp x)
static inline int fc_omp_enabled(void) { return 1; }
static inline int fc_omp_max_threads(void) { return omp_get_max_threads(); }
static inline int fc_omp_thread_num(void) { return omp_get_thread_num(); }
static inline int fc_omp_num_threads(void) { return omp_get_num_threads(); }
#else
#define FC_OMP(x)
static inline int fc_omp_enabled(void) { return 0; }
static inline int fc_omp_max_threads(void) { return 1; }
static inline int fc_omp_thread_num(void) { return 0; }
static inline int fc_omp_num_threads(void) { return 1; }
#endif

#ifndef FC_OPENMP_RUNTIME
#define FC_OPENMP_RUNTIME ""
#endif

#endif
