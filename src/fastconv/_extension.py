"""Import of the compiled modules, with a plain-words error when they were never built."""

import importlib
import os
from types import ModuleType

_BUILD_HELP = (
    "fastconv's compiled extension `fastconv.{name}` could not be imported ({error}). "
    "Install fastconv with pip so that it is built: `pip install .` in a source checkout "
    "(needs a C compiler; Cython and NumPy are fetched automatically), or "
    "`pip install fastconv` for a wheel. `fastconv.shapes` works without it."
)


#: Set for the OpenMP runtime when the user has not chosen: idle workers sleep instead of
#: spinning. With spinning (libgomp's default) a worker that finished its share burns the core
#: its team-mate or the next library's thread needs; on a loaded 2-core machine a 1.5 ms
#: transposed convolution took 10-28 ms at 2 threads, 1.6-1.8 ms with passive waiting.
#: libgomp reads it once, when it is loaded, so it only applies if fastconv loads it first.
OMP_WAIT_POLICY = "PASSIVE"


def _prefer_passive_openmp() -> None:
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = OMP_WAIT_POLICY


def load(name: str) -> ModuleType:
    """Return the compiled module ``fastconv.<name>`` or raise a helpful ImportError."""
    _prefer_passive_openmp()
    try:
        return importlib.import_module(f"fastconv.{name}")
    except ImportError as exc:
        raise ImportError(_BUILD_HELP.format(name=name, error=exc)) from exc
