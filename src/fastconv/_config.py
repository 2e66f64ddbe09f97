"""``fastconv.config()`` and ``show_config()``: what this build is and what it will use."""

import os
import platform
import sys

from . import _dispatch, _subnormals, _threads
from ._extension import load
from ._version import __version__

# load the OpenMP runtime now, so that a threadpoolctl block entered before the first call
# finds it to limit
_threads.preload_runtime()


def config() -> dict:
    """Version, instruction sets, OpenMP and thread settings, as a dict.

    Keys: ``version``; ``isa`` (in use), ``isa_available`` (this CPU and build, best first),
    ``isa_compiled``, ``isa_cpu``; ``openmp`` (bool), ``openmp_runtime``,
    ``omp_wait_policy`` (what idle OpenMP workers do; fastconv sets ``PASSIVE`` unless the
    environment chose); ``flush_denormal`` (subnormals flushed to zero, the default);
    ``max_threads``, ``cpu_count``; ``machine``, ``processor``,
    ``python``, ``numpy``.

    Examples
    --------
    >>> import fastconv
    >>> cfg = fastconv.config()
    >>> cfg["isa"] in cfg["isa_available"] and "scalar" in cfg["isa_compiled"]
    True
    >>> cfg["max_threads"] >= 1
    True
    """
    cpu = load("_cpu")
    import numpy as np

    return {
        "version": __version__,
        "isa": _dispatch.current_isa(),
        "isa_available": list(_dispatch.available_isas()),
        "isa_compiled": list(cpu.compiled_isas()),
        "isa_cpu": list(cpu.cpu_isas()),
        "openmp": cpu.openmp_enabled(),
        "openmp_runtime": cpu.openmp_runtime(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "flush_denormal": _subnormals.get_flush_denormal(),
        "max_threads": _threads.get_num_threads(),
        "cpu_count": _threads.cpu_count(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }


def _cpu_model() -> str:
    """The CPU's model name, and where /proc/cpuinfo gives them its family, model and stepping
    (x86) or part and variant (ARM): virtual machines often name only "AMD EPYC", and every
    figure fastconv prints or caches must say which CPU it came from."""
    name, ids = "", {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not name:
                    name = value.strip()
                elif key in ("cpu family", "model", "stepping", "CPU part", "CPU variant"):
                    ids.setdefault(key, value.strip())
                elif not line.strip() and (name or ids):
                    break  # the first CPU is enough
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    suffix = ", ".join(f"{k} {v}" for k, v in ids.items())
    return name + (f" ({suffix})" if suffix else "")


def show_config() -> None:
    """Print :func:`config` as aligned ``key: value`` lines (what ``fastconv info`` shows).

    Examples
    --------
    >>> import fastconv
    >>> fastconv.show_config()  # doctest: +ELLIPSIS
    version ... : ...
    ...
    """
    cfg = config()
    width = max(map(len, cfg))
    for key, value in cfg.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        print(f"{key:<{width}} : {value}")
