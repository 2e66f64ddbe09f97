"""Build fastconv's compiled core.

Every ``src/fastconv/_*.pyx`` becomes an extension module ``fastconv._*``. The C kernels live in
``src/fastconv/_isa/<area>_<isa>.c``: each file is compiled once, with the flags of its
instruction set only (never ``-march=native``), and the objects are linked into every extension;
the best ISA the CPU supports is picked at import. OpenMP is used when a tiny OpenMP program
compiles *and runs* with the compiler in use; ``FASTCONV_OPENMP=0`` forces a serial build.
``FASTCONV_DEBUG=1`` turns Cython's bounds and wraparound checks back on.
The kernel translation units and the extensions compile in parallel: ``build_ext -j N`` /
``--parallel N``, else ``FASTCONV_BUILD_JOBS=N`` (or ``MAX_JOBS``, as PyTorch's builds read it)
from the environment, else every CPU this process may use; ``1`` builds serially.
``FASTCONV_AREAS=gemm,conv`` (developers only) builds just those areas' ``.pyx`` and kernels, plus
``_cpu``; an area is the name of ``_<area>.pyx`` or of ``_isa/<area>_<isa>.c``. List the kernels
an extension calls as well (``_conv``, ``_winograd`` and ``_conv_transpose`` call ``gemm``; the
kernels of ``_conv_transpose.pyx`` are ``convt``): only the listed kernels are linked.
"""

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from concurrent.futures import ThreadPoolExecutor
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ISA_DIR = os.path.join("src", "fastconv", "_isa")
INCLUDE = [os.path.join(HERE, "include"), np.get_include()]


def log(msg):
    print(f"fastconv build: {msg}", flush=True)


def _machine():
    m = platform.machine().lower()
    if m in ("x86_64", "amd64", "x64"):
        return "x86_64"
    if m in ("aarch64", "arm64"):
        return "aarch64"
    return m


# Per instruction set: compiler flags (gcc/clang, msvc) and a program that must compile with them.
ISA_FLAGS = {
    "x86_64": {
        "avx2": (["-mavx2", "-mfma"], ["/arch:AVX2"],
                 "#include <immintrin.h>\nint main(void){__m256 a=_mm256_set1_ps(1.f);"
                 "a=_mm256_fmadd_ps(a,a,a);return (int)_mm256_cvtss_f32(a);}\n"),
        "avx512": (["-mavx512f", "-mavx2", "-mfma"], ["/arch:AVX512"],
                   "#include <immintrin.h>\nint main(void){__m512 a=_mm512_set1_ps(1.f);"
                   "a=_mm512_fmadd_ps(a,a,a);return (int)_mm512_reduce_add_ps(a);}\n"),
    },
    "aarch64": {
        "neon": ([], [],
                 "#include <arm_neon.h>\nint main(void){float32x4_t a=vdupq_n_f32(1.f);"
                 "a=vfmaq_f32(a,a,a);return (int)vgetq_lane_f32(a,0);}\n"),
    },
}

OPENMP_PROGRAM = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel num_threads(2) reduction(+:n)
    n += 1;
    printf("%d %d\n", n, omp_get_max_threads());
    return n == 2 ? 0 : 1;
}
"""


class BuildExt(build_ext):
    """Picks flags by compiler type, probes OpenMP and ISA support, builds the kernel objects."""

    def _try(self, source, flags, link_flags=(), run=False):
        tmp = tempfile.mkdtemp(prefix="fastconv-probe-")
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(source)
            objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=list(flags))
            if not run:
                return True
            exe = os.path.join(tmp, "probe")
            self.compiler.link_executable(objs, exe, output_dir=tmp,
                                          extra_postargs=list(link_flags))
            exe_path = exe + (".exe" if sys.platform == "win32" else "")
            subprocess.run([exe_path], check=True, capture_output=True, timeout=60)
            return True
        except Exception as exc:  # any failure means "not usable"; the reason is printed
            self._last_error = f"{type(exc).__name__}: {exc}"
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _openmp(self, msvc):
        if os.environ.get("FASTCONV_OPENMP", "1").strip().lower() in ("0", "false", "no", "off"):
            log("OpenMP disabled by FASTCONV_OPENMP=0: serial build")
            return [], [], ""
        if msvc:
            cflags, lflags, runtime = ["/openmp"], [], "vcomp"
        elif sys.platform == "darwin":
            cflags, lflags, runtime = ["-Xpreprocessor", "-fopenmp"], ["-lomp"], "libomp"
        else:
            cflags, lflags = ["-fopenmp"], ["-fopenmp"]
            cc = " ".join(getattr(self.compiler, "compiler", None) or [])
            runtime = "libomp" if "clang" in cc else "libgomp"
        self._last_error = ""
        if self._try(OPENMP_PROGRAM, cflags, lflags, run=True):
            log(f"OpenMP works with this compiler ({runtime}): parallel build")
            return cflags, lflags, runtime
        log(f"OpenMP test program failed to compile or run ({self._last_error}): serial build")
        return [], [], ""

    def build_extensions(self):
        msvc = self.compiler.compiler_type == "msvc"
        base = ["/O2"] if msvc else ["-O3", "-fno-strict-aliasing"]
        # Python's own CFLAGS carry -g, which makes the modules ten times larger; keep debug
        # information only when asked for (FASTCONV_DEBUG=1, or -g in CC / CFLAGS)
        asked = " ".join(os.environ.get(v, "") for v in ("CC", "CFLAGS")).split()
        if not msvc and "-g" not in asked and os.environ.get("FASTCONV_DEBUG", "0") in ("", "0"):
            base.append("-g0")
        omp_c, omp_l, omp_runtime = self._openmp(msvc)

        isas = [("scalar", [])]
        for isa, (gnu, ms, probe) in ISA_FLAGS.get(_machine(), {}).items():
            flags = ms if msvc else gnu
            self._last_error = ""
            if self._try(probe, base + flags):
                isas.append((isa, flags))
            else:
                log(f"compiler cannot build {isa} kernels ({self._last_error}): skipped")
        log("kernels for: " + ", ".join(name for name, _ in isas))

        macros = [("NPY_NO_DEPRECATED_API", "NPY_1_23_API_VERSION"),
                  ("NPY_TARGET_VERSION", "NPY_1_23_API_VERSION")]
        macros += [(f"FC_HAVE_{name.upper()}", "1") for name, _ in isas]
        if omp_c:
            macros += [("FC_OPENMP", "1"), ("FC_OPENMP_RUNTIME", f'"{omp_runtime}"')]

        self._force_if_config_changed(repr((omp_c, omp_l, isas, macros, base)))
        jobs = self._jobs()
        headers = glob(os.path.join("include", "fastconv", "**", "*.h"), recursive=True)
        units = [(p, flags) for name, flags in isas
                 for p in sorted(glob(os.path.join(ISA_DIR, f"*_{name}.c")))
                 if _in_areas(os.path.basename(p)[: -len(f"_{name}.c")])]

        def compile_unit(unit):
            source, flags = unit
            return self.compiler.compile(
                [source], output_dir=self.build_temp, macros=macros, include_dirs=INCLUDE,
                extra_postargs=base + flags + omp_c, depends=headers)

        # one compiler process per translation unit, ``jobs`` at a time (each waits in its
        # own thread: the compiler runs as a subprocess), objects kept in a fixed order
        log(f"compiling {len(units)} kernel units and {len(self.extensions)} extensions, "
            f"{jobs} at a time")
        if jobs > 1 and len(units) > 1:
            with ThreadPoolExecutor(jobs) as pool:
                objects = [o for objs in pool.map(compile_unit, units) for o in objs]
        else:
            objects = [o for unit in units for o in compile_unit(unit)]
        self.parallel = jobs if jobs > 1 else None  # setuptools builds the extensions likewise
        for ext in self.extensions:
            ext.define_macros = list(ext.define_macros) + macros
            ext.include_dirs = list(ext.include_dirs) + INCLUDE
            ext.extra_compile_args = list(ext.extra_compile_args) + base + omp_c
            ext.extra_link_args = list(ext.extra_link_args) + omp_l
        # One static library: each extension links only the kernel objects it uses.
        if objects:
            self.compiler.create_static_lib(objects, "fastconv_kernels",
                                            output_dir=self.build_temp)
            for ext in self.extensions:
                ext.libraries = ["fastconv_kernels", *ext.libraries]
                ext.library_dirs = [self.build_temp, *ext.library_dirs]
        super().build_extensions()

    def _jobs(self) -> int:
        """Compiler processes at once: -j / --parallel, FASTCONV_BUILD_JOBS or MAX_JOBS, else
        the CPUs this process may use."""
        if self.parallel:
            return (os.cpu_count() or 1) if self.parallel is True else int(self.parallel)
        for variable in ("FASTCONV_BUILD_JOBS", "MAX_JOBS"):
            value = os.environ.get(variable, "").strip()
            if value:
                if not value.isdigit() or int(value) < 1:
                    raise SystemExit(f"fastconv build: {variable} must be an int >= 1, got "
                                     f"{value!r}")
                return int(value)
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            return os.cpu_count() or 1

    def _force_if_config_changed(self, config):
        # setuptools skips extensions whose outputs look newer than their sources, so switching
        # FASTCONV_OPENMP or the ISA set would otherwise reuse the previous build's modules.
        os.makedirs(self.build_temp, exist_ok=True)
        stamp = os.path.join(self.build_temp, "fastconv-build-config")
        try:
            with open(stamp) as f:
                previous = f.read()
        except OSError:
            previous = None
        if previous != config:
            self.force = True
            with open(stamp, "w") as f:
                f.write(config)


def _in_areas(area):
    areas = os.environ.get("FASTCONV_AREAS", "").strip()
    return not areas or area == "cpu" or area in areas.split(",")


def extensions():
    debug = os.environ.get("FASTCONV_DEBUG", "0") not in ("", "0")
    exts = [
        # the kernel objects are linked into every extension: a changed kernel source or header
        # must relink it (setuptools skips extensions newer than their dependencies)
        Extension(f"fastconv.{os.path.splitext(os.path.basename(p))[0]}", [p],
                  depends=glob(os.path.join("include", "fastconv", "**", "*.h"), recursive=True)
                  + glob(os.path.join(ISA_DIR, "*.c")))
        for p in sorted(glob(os.path.join("src", "fastconv", "_*.pyx")))
        if _in_areas(os.path.basename(p)[1:-4])
    ]
    directives = {
        "language_level": 3, "boundscheck": debug, "wraparound": debug,
        "initializedcheck": debug, "cdivision": True, "embedsignature": True,
    }
    return cythonize(exts, compiler_directives=directives, include_path=["src"])


if sysconfig.get_config_var("Py_GIL_DISABLED"):
    log("free-threaded Python: extensions declare they do not need the GIL")

setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
