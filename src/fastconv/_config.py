"""``fastconv.config()`` and ``show_config()``: what this build is and what it will use."""

import platform
import sys

from . import _dispatch, _threads
from ._extension import load
from ._version import __version__


def config() -> dict:
    """Version, instruction sets, OpenMP and thread settings, as a dict."""
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
        "max_threads": _threads.get_num_threads(),
        "cpu_count": _threads.cpu_count(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def show_config() -> None:
    """Print :func:`config` as aligned ``key: value`` lines."""
    cfg = config()
    width = max(map(len, cfg))
    for key, value in cfg.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        print(f"{key:<{width}} : {value}")
