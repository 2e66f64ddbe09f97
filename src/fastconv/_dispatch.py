"""Which instruction set the kernels use: chosen once at import, capped by FASTCONV_ISA.

The choice lives here, in Python; every compiled driver is handed the ISA number with its
arguments, so the C side keeps no mutable global state.
"""

import contextlib
import os
import warnings
from collections.abc import Iterator

from ._extension import load

_current: str | None = None


def isa_names() -> tuple[str, ...]:
    """Every ISA fastconv knows, by the number the compiled drivers take (the registry in
    include/fastconv/isa.h)."""
    return load("_cpu").ISA_NAMES


def _preference() -> tuple[str, ...]:
    return load("_cpu").ISA_PREFERENCE


def available_isas() -> tuple[str, ...]:
    """ISAs both compiled into this build and supported by this CPU, best first."""
    cpu = load("_cpu")
    usable = set(cpu.compiled_isas()) & set(cpu.cpu_isas())
    return tuple(name for name in _preference() if name in usable)


def _choose(cap: str | None) -> str:
    usable = available_isas()
    if not cap:
        return usable[0]
    cap = cap.strip().lower()
    if cap not in isa_names():
        warnings.warn(
            f"FASTCONV_ISA={cap!r} is not an instruction set fastconv knows; valid names: "
            f"{', '.join(isa_names())} (available on this machine: {', '.join(usable)}); "
            f"ignoring it and using {usable[0]!r}", RuntimeWarning, stacklevel=3)
        return usable[0]
    if cap in usable:
        return cap
    # A cap the CPU (or this build) lacks: the best ISA it has, as the API says. Every usable
    # ISA of this architecture is then below the cap anyway (an x86 CPU without AVX-512 has at
    # most AVX2), and a name from another architecture caps nothing here.
    warnings.warn(
        f"FASTCONV_ISA={cap!r} is not available on this machine (available: "
        f"{', '.join(usable)}); using the best it has, {usable[0]!r}", RuntimeWarning,
        stacklevel=3)
    return usable[0]


def current_isa() -> str:
    """The ISA in use (chosen on first call)."""
    global _current
    if _current is None:
        _current = _choose(os.environ.get("FASTCONV_ISA"))
    return _current


_index: tuple[str | None, int] = (None, 0)  # (ISA name, its number): asked on every call


def isa_index() -> int:
    """The ISA in use as the number the compiled drivers take."""
    global _index
    name = current_isa()
    if _index[0] != name:
        _index = (name, isa_names().index(name))
    return _index[1]


@contextlib.contextmanager
def use_isa(name: str) -> Iterator[None]:
    """Test hook: run the block with kernels of ISA ``name`` (must be available)."""
    global _current
    if name not in available_isas():
        raise ValueError(f"isa={name!r} is not available here: {available_isas()}")
    previous = current_isa()
    _current = name
    try:
        yield
    finally:
        _current = previous
