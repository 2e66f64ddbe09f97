"""The subnormal policy, written down once (API.md, "Subnormals").

- By default every compiled call runs with flush-to-zero and denormals-are-zero set on each
  thread it uses, and the caller's floating-point state is put back before the call returns
  (the compiled side does that: ``include/fastconv/fpstate.h``). Subnormal inputs then never
  slow a call down (Intel cores take a microcode assist for each one), and results differ from
  IEEE arithmetic only by magnitudes below the smallest normal number.
- ``FASTCONV_FLUSH_DENORMAL=0`` in the environment (read at import) or
  ``set_flush_denormal(False)`` selects IEEE subnormals for the process;
  ``with flush_denormal(flag):`` for the current thread / async context only (a
  ``ContextVar``, like ``num_threads``), so concurrent callers do not see each other's choice.
"""

import contextlib
import contextvars
import os
from collections.abc import Iterator

_FALSE = ("0", "false", "no", "off")
_TRUE = ("1", "true", "yes", "on")


def _env_default() -> bool:
    value = os.environ.get("FASTCONV_FLUSH_DENORMAL", "").strip().lower()
    if value in _FALSE:
        return False
    if value and value not in _TRUE:
        import warnings

        warnings.warn(f"FASTCONV_FLUSH_DENORMAL={value!r} is not one of "
                      f"{', '.join(_TRUE + _FALSE)}: subnormals are flushed (the default)",
                      RuntimeWarning, stacklevel=2)
    return True


_process_default = _env_default()
_context: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "fastconv_flush_denormal", default=None)


def _check(flag: object) -> bool:
    # bool, NumPy's bool_ (without importing NumPy: fastconv.shapes must not) or the ints 0/1
    if isinstance(flag, bool) or type(flag).__name__ == "bool_" or (
            isinstance(flag, int) and flag in (0, 1)):
        return bool(flag)
    raise TypeError(f"flag must be True or False, got {flag!r}")


def flushing() -> bool:
    """The mode the next compiled call of this thread runs in (the drivers ask at each call)."""
    flag = _context.get()
    return _process_default if flag is None else flag


def get_flush_denormal() -> bool:
    """Whether fastconv's compiled code flushes subnormal numbers to zero (the default).

    Examples
    --------
    >>> import fastconv
    >>> fastconv.get_flush_denormal() in (True, False)
    True
    """
    return flushing()


def set_flush_denormal(flag: bool) -> None:
    """Flush subnormals to zero in fastconv's compiled code (``True``, the default) or compute
    with IEEE subnormals (``False``), for the whole process.

    With flushing, an input or intermediate value below the smallest normal number
    (``np.finfo(dtype).tiny``) counts as zero, so such inputs never make a call slower; the
    caller's own floating-point state is unchanged after every call either way.

    Examples
    --------
    >>> import fastconv
    >>> before = fastconv.get_flush_denormal()
    >>> fastconv.set_flush_denormal(False)
    >>> fastconv.get_flush_denormal()
    False
    >>> fastconv.set_flush_denormal(before)
    """
    global _process_default
    _process_default = _check(flag)


@contextlib.contextmanager
def flush_denormal(flag: bool) -> Iterator[None]:
    """Flush subnormals (or not) inside the ``with`` block (this thread/context only).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.full((1, 1, 4), 1e-40, np.float32)  # subnormal in float32
    >>> with fastconv.flush_denormal(True):
    ...     float(fastconv.avg_pool1d(x, 2)[0, 0, 0])
    0.0
    >>> with fastconv.flush_denormal(False):
    ...     float(fastconv.avg_pool1d(x, 2)[0, 0, 0]) > 0
    True
    """
    token = _context.set(_check(flag))
    try:
        yield
    finally:
        _context.reset(token)
