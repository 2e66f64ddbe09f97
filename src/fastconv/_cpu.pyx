# Directives (boundscheck, wraparound, cdivision, ...) are set in setup.py for every .pyx so
# that FASTCONV_DEBUG=1 can turn the checks back on.
"""What the compiled core was built with and what this CPU offers. No user-facing errors here."""

cdef extern from "fastconv/isa.h":
    int FC_ISA_SCALAR, FC_ISA_AVX2, FC_ISA_AVX512, FC_ISA_NEON, FC_ISA_COUNT
    int fc_isa_compiled(int isa)

cdef extern from "fastconv/cpu.h":
    int fc_cpu_has(int isa) nogil

cdef extern from "fastconv/omp.h":
    int fc_omp_enabled() nogil
    int fc_omp_max_threads() nogil
    const char *FC_OPENMP_RUNTIME

ISA_NAMES = ("scalar", "avx2", "avx512", "neon")


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
