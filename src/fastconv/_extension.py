"""Import of the compiled modules, with a plain-words error when they were never built."""

import importlib
from types import ModuleType

_BUILD_HELP = (
    "fastconv's compiled extension `fastconv.{name}` could not be imported ({error}). "
    "Install fastconv with pip so that it is built: `pip install .` in a source checkout "
    "(needs a C compiler; Cython and NumPy are fetched automatically), or "
    "`pip install fastconv` for a wheel. `fastconv.shapes` works without it."
)


def load(name: str) -> ModuleType:
    """Return the compiled module ``fastconv.<name>`` or raise a helpful ImportError."""
    try:
        return importlib.import_module(f"fastconv.{name}")
    except ImportError as exc:
        raise ImportError(_BUILD_HELP.format(name=name, error=exc)) from exc
