"""Argument checks shared by every operator, done once in Python.

Each check raises ``TypeError`` or ``ValueError`` whose message names the argument and shows the
value; the compiled drivers are handed only what passed these checks.
"""

import operator
import sys
from collections.abc import Sequence
from math import prod

import numpy as np

_REJECTED_KINDS = {"c": "complex", "O": "object", "U": "string", "S": "bytes", "V": "void",
                   "M": "datetime", "m": "timedelta"}

#: Largest per-dim size parameter (kernel, stride, dilation, output padding, output size): the
#: compiled drivers multiply two of them in 64-bit arithmetic, so each must fit a C int.
MAX_SIZE = 2**31 - 1
#: Largest int any parameter may hold (a C int64).
MAX_INT = 2**63 - 1


def check_int(value: object, name: str, minimum: int | None = None,
              maximum: int | None = MAX_INT) -> int:
    """An int (not bool, not float), optionally >= ``minimum`` and <= ``maximum``.

    Examples
    --------
    >>> from fastconv._validate import check_int
    >>> check_int(3, "groups", 1)
    3
    >>> check_int(2**70, "groups")
    Traceback (most recent call last):
    ...
    ValueError: groups must be <= 9223372036854775807, got 1180591620717411303424
    """
    if isinstance(value, (bool, np.bool_)) or isinstance(value, (float, np.floating)):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    try:
        value = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name} must be an int, got {value!r} of type {type(value).__name__}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def int_tuple(value: object, ndim: int, name: str, minimum: int | None = 1,
              maximum: int | None = MAX_SIZE) -> tuple[int, ...]:
    """An int or a sequence of ``ndim`` ints, as a tuple of ``ndim`` ints.

    Each entry must lie in ``[minimum, maximum]``; the default maximum, :data:`MAX_SIZE`, keeps
    products of two sizes inside 64-bit arithmetic in the compiled drivers.

    Examples
    --------
    >>> from fastconv._validate import int_tuple
    >>> int_tuple(2, 3, "stride")
    (2, 2, 2)
    >>> int_tuple((1, 2**40), 2, "stride")
    Traceback (most recent call last):
    ...
    ValueError: stride[1] must be <= 2147483647, got 1099511627776
    """
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        items = list(value)
        if len(items) != ndim:
            raise ValueError(
                f"{name} must be an int or a tuple of {ndim} ints (one per spatial dim), "
                f"got {value!r}")
        return tuple(check_int(v, f"{name}[{i}]", minimum, maximum)
                     for i, v in enumerate(items))
    return (check_int(value, name, minimum, maximum),) * ndim


def check_array(x: object, name: str) -> np.ndarray:
    """``np.asarray(x)`` of a real dtype; rejects None, complex, object, string, datetime."""
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name} could not be converted to an array: {exc}") from None
    kind = _REJECTED_KINDS.get(arr.dtype.kind)
    if kind:
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype} ({kind})")
    return arr


def compute_dtype(*arrays: np.ndarray | None) -> np.dtype:
    """The dtype an operator computes in: float32 or float64, as ``np.result_type(..., float32)``.

    Anything wider than float64 (long double) is computed in float64.
    """
    dt = np.result_type(*(a for a in arrays if a is not None), np.float32)
    return np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)


def batched(x: np.ndarray, spatial: int, name: str = "x") -> tuple[np.ndarray, bool]:
    """View ``x`` as ``(N, C, *spatial)``; also say whether it came unbatched ``(C, *spatial)``."""
    if x.ndim == spatial + 2:
        return x, False
    if x.ndim == spatial + 1:
        return x[np.newaxis], True
    raise ValueError(
        f"{name} must have {spatial + 2} dims (N, C, {_dims(spatial)}) or {spatial + 1} "
        f"(C, {_dims(spatial)}) unbatched, got shape {x.shape}")


def _dims(spatial: int) -> str:
    return ", ".join(("D", "H", "W")[3 - spatial:]) if spatial <= 3 else f"{spatial} dims"


def working_copy(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """C-contiguous array of ``dtype``; a copy only when ``x`` is not already one."""
    return np.ascontiguousarray(x, dtype=dtype)


def check_alloc(shape: Sequence[int], dtype: object, what: str = "the output") -> None:
    """``ValueError`` when an array of ``shape`` and ``dtype`` is too large to even represent.

    Its byte count must fit a signed pointer-sized int (what NumPy can allocate at all); arrays
    that fit but exceed memory still get NumPy's ``MemoryError`` at allocation.

    Examples
    --------
    >>> from fastconv._validate import check_alloc
    >>> check_alloc((2, 3), "float32")
    >>> try:
    ...     check_alloc((2**40, 2**40), "float32", "the output")
    ... except ValueError as exc:
    ...     print(str(exc)[:58])
    the output would have shape (1099511627776, 1099511627776)
    """
    dims = tuple(int(n) for n in shape)
    if any(n < 0 for n in dims):
        raise ValueError(f"{what} would have a negative size in shape {dims}")
    nbytes = prod(dims) * np.dtype(dtype).itemsize
    if nbytes > sys.maxsize or any(n > sys.maxsize for n in dims):
        raise ValueError(f"{what} would have shape {dims}: {nbytes} bytes of "
                         f"{np.dtype(dtype)}, more than can be allocated")


def check_out(out: object, shape: tuple[int, ...], dtype: np.dtype,
              inputs: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """Validate ``out=``: C-contiguous, exact shape and dtype, writeable, no overlap with inputs.

    Every operator calls this with the output shape it is about to allocate, also when ``out``
    is None, so a shape too large to represent is refused here (:func:`check_alloc`) with a
    message that gives it, instead of failing inside NumPy or the compiled driver.
    """
    check_alloc(shape, dtype, "the output")
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray or None, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise ValueError(f"out must have dtype {dtype}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous, got a non-contiguous array")
    if not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    for arr in inputs:
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError("out must not overlap an input array")
    return out


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """One of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value
