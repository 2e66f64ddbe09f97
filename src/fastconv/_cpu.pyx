# Directives (boundscheck, wraparound, cdivision, ...) are set in setup.py for every .pyx so
# that FASTCONV_DEBUG=1 can turn the checks back on.
"""What the compiled core was built with and what this CPU offers. No user-facing errors here."""

cdef extern from "fastconv/isa.h":
    int FC_ISA_COUNT
    const char *const fc_isa_names[]
    const int fc_isa_preference[]
    const int fc_isa_direct_block[][2]
    int fc_isa_compiled(int isa)

cdef extern from "fastconv/cpu.h":
    int fc_cpu_has(int isa) nogil

cdef extern from "fastconv/omp.h":
    int fc_omp_enabled() nogil
    int fc_omp_max_threads() nogil
    const char *FC_OPENMP_RUNTIME

# The registry of include/fastconv/isa.h: names by ISA number, and the order of preference.
ISA_NAMES = tuple(fc_isa_names[i].decode() for i in range(FC_ISA_COUNT))
ISA_PREFERENCE = tuple(ISA_NAMES[fc_isa_preference[i]] for i in range(FC_ISA_COUNT))
# The direct kernel's register block per ISA: (vector bytes, output channels per block).
DIRECT_BLOCK = {ISA_NAMES[i]: (fc_isa_direct_block[i][0], fc_isa_direct_block[i][1])
                for i in range(FC_ISA_COUNT)}


def compiled_isas():
    """Names of the instruction sets whose kernels are in this build."""
    return tuple(n for i, n in enumerate(ISA_NAMES) if fc_isa_compiled(i))


def cpu_isas():
    """Names of the instruction sets this CPU (and OS) can run."""
    return tuple(n for i, n in enumerate(ISA_NAMES) if fc_cpu_has(i))


def openmp_enabled():
    return bool(fc_omp_enabled())


def openmp_runtime():
    return FC_OPENMP_RUNTIME.decode() or None


def omp_max_threads():
    """omp_get_max_threads() in the calling thread (1 in a serial build)."""
    return fc_omp_max_threads()


# The floating-point state of threads, for the tests of the subnormal policy.
cdef extern from "fastconv/fpstate.h" nogil:
    ctypedef unsigned long long fc_fpstate
    fc_fpstate fc_fp_get()
    void fc_fp_set(fc_fpstate state)
    int fc_fp_flushing()
    unsigned long long FC_FP_FLUSH_BITS

cdef extern from *:
    """
    #include "fastconv/omp.h"
    /* Threads of a plain OpenMP region (one that does not take fastconv's mode, as another
     * library's would) that find the flush bits set. */
    static int fc_fp_team_flushing(int nthreads)
    {
        int count = 0;
        FC_OMP(parallel num_threads(nthreads) reduction(+ : count))
        count += fc_fp_flushing();
        return count;
    }
    """
    int fc_fp_team_flushing(int nthreads) nogil


def fp_state():
    """The calling thread's floating-point control word (x86 MXCSR, AArch64 FPCR; 0 elsewhere)."""
    return fc_fp_get()


def fp_set_state(state):
    """Set the calling thread's floating-point control word."""
    fc_fp_set(state)


def fp_flush_bits():
    """The bits of the control word that flush subnormals (0 where fastconv cannot set them)."""
    return FC_FP_FLUSH_BITS


def fp_team_flushing(int nthreads):
    """How many threads of a plain OpenMP region of ``nthreads`` have the flush bits set."""
    return fc_fp_team_flushing(nthreads)
