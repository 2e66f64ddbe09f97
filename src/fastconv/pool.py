"""Pooling: max, average, Lp, adaptive, global, unpooling, spatial pyramid and mixed pooling.

The Python side validates every argument once, takes sizes and padding from
:mod:`fastconv.shapes`, and hands the compiled driver (``fastconv._pool``) a C-contiguous input
of the working dtype, explicit pads and a preallocated output. Every rank runs as a 3-D pool:
1-D and 2-D inputs get leading spatial dims of size 1 (kernel 1, stride 1, no padding).

Semantics are PyTorch's ``torch.nn.functional`` ones, with ONNX's extensions: pads up to the
dilated kernel extent, dilation for average and Lp pooling, Lp pooling of ``|x|``. Max pooling
(and global max, adaptive max, unpooling) keeps integer dtypes; everything else computes in
float32 or float64.
"""

import math
import sys
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from . import _dispatch, _threads
from ._extension import load
from ._layout import with_layout
from ._validate import (
    MAX_SIZE,
    batched,
    check_alloc,
    check_array,
    check_choice,
    check_int,
    check_out,
    compute_dtype,
    int_tuple,
    working_copy,
)
from .shapes import (
    conv_transpose_output_size,
    pool_output_size,
    resolve_padding,
)

# load the OpenMP runtime now, so that a threadpoolctl block entered before the first call
# finds it to limit
_threads.preload_runtime()

__all__ = [
    *(f"{kind}_pool{d}d" for kind in ("max", "avg", "lp") for d in (1, 2, 3)),
    *(f"adaptive_{kind}_pool{d}d" for kind in ("avg", "max") for d in (1, 2, 3)),
    *(f"max_unpool{d}d" for d in (1, 2, 3)),
    "global_avg_pool", "global_max_pool", "spatial_pyramid_pool2d", "mixed_pool2d",
    *(f"{kind}Pool{d}d" for kind in ("Max", "Avg", "Lp", "AdaptiveAvg", "AdaptiveMax")
      for d in (1, 2, 3)),
    "MixedPool2d", "SpatialPyramidPool2d", "GlobalAvgPool", "GlobalMaxPool",
]

# Kernel kinds, as the compiled driver numbers them (enum fc_pool_kind).
_MAX, _AVG, _LP = 0, 1, 2
# dtype codes of the compiled driver (enum fc_dtype), by (kind, itemsize).
_DTYPE_CODES = {("f", 4): 0, ("f", 8): 1, ("i", 1): 2, ("u", 1): 3, ("i", 2): 4, ("u", 2): 5,
                ("i", 4): 6, ("u", 4): 7, ("i", 8): 8, ("u", 8): 9}


# ------------------------------------------------------------------------------------------
# Shared preparation
# ------------------------------------------------------------------------------------------
_DRIVER = None
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def _driver():
    global _DRIVER
    if _DRIVER is None:
        _DRIVER = load("_pool")
    return _DRIVER


def _working_dtype(arr: np.ndarray, keep_int: bool) -> np.dtype:
    """Integers stay as they are for max-type pools; everything else is float32 / float64."""
    if keep_int and arr.dtype.kind in "iu":
        return arr.dtype.newbyteorder("=")
    return compute_dtype(arr)


def _prepare(x: object, spatial: int, keep_int: bool = False):
    """``(x as a contiguous (N, C, *spatial) array of the working dtype, dtype, unbatched)``."""
    if type(x) is np.ndarray and x.flags.c_contiguous and (x.dtype is _F32 or x.dtype is _F64):
        # the common case, without the general checks' cost (small pools are call-bound)
        if x.ndim == spatial + 2:
            return x, x.dtype, False
        if x.ndim == spatial + 1:
            return x[np.newaxis], x.dtype, True
    arr = check_array(x, "x")
    arr4, unbatched = batched(arr, spatial)
    dtype = _working_dtype(arr, keep_int)
    return working_copy(arr4, dtype), dtype, unbatched


def _code(dtype: np.dtype) -> int:
    return _DTYPE_CODES[(dtype.kind, dtype.itemsize)]


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}")
    return bool(value)


def _output(out: object, shape: tuple[int, ...], unbatched: bool, dtype: np.dtype,
            inputs: Sequence[np.ndarray | None]) -> np.ndarray:
    """The (N, C, ...) array to fill: ``out`` (validated against the caller's shape) or new."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    user_shape = shape[1:] if unbatched else shape
    return check_out(out, user_shape, dtype, inputs).reshape(shape)  # type: ignore[union-attr]


def _finish(y: np.ndarray, unbatched: bool, out: object) -> np.ndarray:
    if out is not None:
        return out  # type: ignore[return-value]
    return y[0] if unbatched else y


def _lead3(values: tuple[int, ...], fill: int) -> tuple[int, ...]:
    """Per-dim values of a 1-D/2-D/3-D pool as a (D, H, W) triple."""
    return (fill,) * (3 - len(values)) + tuple(values)


def _thread_count(threads: object, work: float) -> int:
    return _threads.for_work(_threads.resolve(threads), work)


class _Window(NamedTuple):
    """A validated window on a given input size, with the compiled driver's (D, H, W) args."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    out_size: tuple[int, ...]
    driver_args: tuple[tuple[int, ...], ...]  # isize, osize, kernel, stride, dilation, pad, limit
    taps: int


def _make_window(in_size, k, s, d, pads, out_size) -> _Window:
    args = (_lead3(in_size, 1), _lead3(out_size, 1), _lead3(k, 1), _lead3(s, 1), _lead3(d, 1),
            _lead3(tuple(pb for pb, _ in pads), 0),
            _lead3(tuple(i + pa for i, (_, pa) in zip(in_size, pads)), 1))
    return _Window(k, s, d, pads, out_size, args, math.prod(k))


# Validated windows by their arguments: the size rules cost more than a small pool itself.
_WINDOW_CACHE: dict = {}
_WINDOW_CACHE_SIZE = 512


def _plain(value: object) -> bool:
    """Whether ``value`` can be a cache key as it is: ints (not bools), str, None, and tuples
    of them. Anything else (floats, bools, lists, NumPy ints) is validated on every call, so
    2.0 or True never hit the entry of 2."""
    kind = type(value)
    if kind is int or kind is str or value is None:
        return True
    return kind is tuple and all(_plain(v) for v in value)  # type: ignore[union-attr]


def _window(x_shape: tuple[int, ...], spatial: int, kernel_size, stride, padding, dilation,
            ceil_mode) -> _Window:
    """Kernel, stride, dilation, pad pairs and output size of a windowed pool (cached)."""
    cacheable = (type(ceil_mode) is bool and _plain(kernel_size) and _plain(stride)
                 and _plain(padding) and _plain(dilation))
    if cacheable:
        key = (x_shape[2:], spatial, kernel_size, stride, padding, dilation, ceil_mode)
        hit = _WINDOW_CACHE.get(key)
        if hit is not None:
            return hit
    in_size = tuple(x_shape[2:])
    k = int_tuple(kernel_size, spatial, "kernel_size")
    s = k if stride is None else int_tuple(stride, spatial, "stride")
    d = int_tuple(dilation, spatial, "dilation")
    if isinstance(padding, str) and padding == "full":
        raise ValueError("padding='full' is for convolutions; a pool takes an int, a tuple, "
                         "(before, after) pairs, 'valid', 'same' or 'same_lower'")
    pads = resolve_padding(padding, in_size, k, s, d)
    out_size = tuple(pool_output_size(in_size, k, s, pads, d, ceil_mode))
    result = _make_window(in_size, k, s, d, pads, out_size)
    if cacheable:
        if len(_WINDOW_CACHE) >= _WINDOW_CACHE_SIZE:
            _WINDOW_CACHE.clear()
        _WINDOW_CACHE[key] = result
    return result


def _run_window(kind: int, xc: np.ndarray, y: np.ndarray, indices: np.ndarray | None,
                w: _Window, threads, count_include_pad: bool = True, divisor: float = 0.0,
                p: float = 0.0) -> None:
    planes = xc.reshape(xc.shape[0] * xc.shape[1], math.prod(xc.shape[2:]))
    nthreads = _thread_count(threads, y.size * w.taps)
    _driver().pool(kind, _code(xc.dtype), planes, y, indices, *w.driver_args, count_include_pad,
                   divisor, p, _dispatch.isa_index(), nthreads)


# ------------------------------------------------------------------------------------------
# Windowed pools
# ------------------------------------------------------------------------------------------
def _max_pool(x, spatial, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
              threads, out):
    return_indices = _check_bool(return_indices, "return_indices")
    xc, dtype, unbatched = _prepare(x, spatial, keep_int=True)
    w = _window(xc.shape, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    shape = xc.shape[:2] + w.out_size
    y = _output(out, shape, unbatched, dtype, (x,))
    indices = np.empty(shape, dtype=np.int64) if return_indices else None
    _run_window(_MAX, xc, y, indices, w, threads)
    values = _finish(y, unbatched, out)
    if return_indices:
        return values, (indices[0] if unbatched else indices)  # type: ignore[index]
    return values


def _avg_pool(x, spatial, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
              divisor_override, threads, out):
    count_include_pad = _check_bool(count_include_pad, "count_include_pad")
    divisor = 0.0
    if divisor_override is not None:
        divisor = float(check_int(divisor_override, "divisor_override", 1))
    xc, dtype, unbatched = _prepare(x, spatial)
    w = _window(xc.shape, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    shape = xc.shape[:2] + w.out_size
    y = _output(out, shape, unbatched, dtype, (x,))
    _run_window(_AVG, xc, y, None, w, threads, count_include_pad, divisor)
    return _finish(y, unbatched, out)


def _check_norm(norm_type: object) -> float:
    if isinstance(norm_type, (bool, np.bool_)) or not isinstance(
            norm_type, (int, float, np.integer, np.floating)):
        raise TypeError(f"norm_type must be a positive number (or inf), got {norm_type!r} of "
                        f"type {type(norm_type).__name__}")
    p = float(norm_type)
    if not p > 0:  # also refuses NaN
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type!r}")
    return p


def _lp_pool(x, spatial, norm_type, kernel_size, stride, padding, dilation, ceil_mode, threads,
             out):
    p = _check_norm(norm_type)
    xc, dtype, unbatched = _prepare(x, spatial)
    w = _window(xc.shape, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    shape = xc.shape[:2] + w.out_size
    y = _output(out, shape, unbatched, dtype, (x,))
    _run_window(_LP, xc, y, None, w, threads, p=p)
    return _finish(y, unbatched, out)


_WINDOW_PARAMS = """
    kernel_size : int or tuple of int
        Window size, one int for every spatial dim or one per dim.
    stride : int, tuple of int or None
        Window step; None (default) means ``kernel_size``.
    padding : int, tuple, or str
        An int or per-dim ints (symmetric), per-dim ``(before, after)`` pairs, ``"valid"``,
        ``"same"`` or ``"same_lower"``. Each pad must be smaller than the dilated kernel
        extent ``(k - 1) * dilation + 1``.
    dilation : int or tuple of int
        Spacing between window taps.
    ceil_mode : bool
        Round the output size up; a last window that would start in the right padding is
        dropped (PyTorch's rule)."""

_COMMON_KW = """
    threads : int or None, keyword-only
        Threads to use (None: :func:`fastconv.get_num_threads`; -1: every CPU).
    out : numpy.ndarray or None, keyword-only
        C-contiguous array of the output's shape and dtype to fill and return."""


def _plain_doc(doc: str | None) -> str:
    """A hand-written docstring with the shared ``threads`` / ``out`` entries filled in."""
    return (doc or "").replace("{COMMON}", _COMMON_KW)


def _doc(template: str, **subs: str) -> str:
    """A docstring from a per-rank template (``{D}``, ``{dims}``, ... filled in)."""
    return template.replace("{WINDOW}", _WINDOW_PARAMS).replace("{COMMON}", _COMMON_KW).format(
        **subs)


def max_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, threads=None, out=None):
    return _max_pool(x, 1, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     threads, out)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, threads=None, out=None):
    return _max_pool(x, 2, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     threads, out)


def max_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False, *, threads=None, out=None):
    return _max_pool(x, 3, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                     threads, out)


_MAX_DOC = """{D}-D max pooling over ``x`` of shape ``(N, C, {dims})`` or unbatched ``(C, {dims})``.

    Padded positions are ignored (never win). Integer dtypes are kept; other non-float dtypes
    compute in float32 / float64.

    Parameters
    ----------
    x : array_like
        Input, channels first.
{WINDOW}
    return_indices : bool
        Also return the int64 row-major flat index of each maximum within its own ``(n, c)``
        input plane (PyTorch's convention): ties go to the first element in row-major window
        order, and a NaN in a window gives NaN and the index of the first NaN.
{COMMON}

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, numpy.ndarray) with ``return_indices``
        Pooled values, and their indices.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange({numel}, dtype=np.float32).reshape(1, 1, {shape})
    >>> fastconv.max_pool{D}d(x, 2){example}
    """


def avg_pool1d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, threads=None, out=None):
    return _avg_pool(x, 1, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                     divisor_override, threads, out)


def avg_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, threads=None, out=None):
    return _avg_pool(x, 2, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                     divisor_override, threads, out)


def avg_pool3d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               count_include_pad=True, divisor_override=None, *, threads=None, out=None):
    return _avg_pool(x, 3, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                     divisor_override, threads, out)


_AVG_DOC = """{D}-D average pooling over ``x`` of shape ``(N, C, {dims})`` or ``(C, {dims})``.

    Parameters
    ----------
    x : array_like
        Input, channels first; computed in float32 (float32, float16, small ints) or float64.
{WINDOW}
    count_include_pad : bool
        Count explicit and ``"same"`` padding in the divisor (never the overhang that
        ``ceil_mode`` adds past the padding); False counts only real elements.
    divisor_override : int or None
        Divide every window sum by this instead.
{COMMON}

    Returns
    -------
    numpy.ndarray
        Window means.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange({numel}, dtype=np.float32).reshape(1, 1, {shape})
    >>> fastconv.avg_pool{D}d(x, 2){example}
    """


def lp_pool1d(x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              *, threads=None, out=None):
    return _lp_pool(x, 1, norm_type, kernel_size, stride, padding, dilation, ceil_mode,
                    threads, out)


def lp_pool2d(x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              *, threads=None, out=None):
    return _lp_pool(x, 2, norm_type, kernel_size, stride, padding, dilation, ceil_mode,
                    threads, out)


def lp_pool3d(x, norm_type, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
              *, threads=None, out=None):
    return _lp_pool(x, 3, norm_type, kernel_size, stride, padding, dilation, ceil_mode,
                    threads, out)


_LP_DOC = """{D}-D power-average pooling, ONNX's LpPool: ``(sum over window |x|^p)^(1/p)``.

    Differs from PyTorch's ``lp_pool`` for odd ``p`` (PyTorch sums ``x^p``). Padding counts as
    zeros; ``norm_type=inf`` gives the window's ``max |x|``.

    Parameters
    ----------
    x : array_like
        Input ``(N, C, {dims})`` or ``(C, {dims})``; computed in float32 or float64.
    norm_type : float
        ``p > 0``, or ``inf``.
{WINDOW}
{COMMON}

    Returns
    -------
    numpy.ndarray
        Window p-norms.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange({numel}, dtype=np.float32).reshape(1, 1, {shape})
    >>> fastconv.lp_pool{D}d(x, 1, 2){example}
    """

_EXAMPLES = {
    1: dict(dims="W", numel="4", shape="4",
            max="\n    array([[[1., 3.]]], dtype=float32)",
            avg="\n    array([[[0.5, 2.5]]], dtype=float32)",
            lp="\n    array([[[1., 5.]]], dtype=float32)"),
    2: dict(dims="H, W", numel="16", shape="4, 4",
            max="\n    array([[[[ 5.,  7.],\n             [13., 15.]]]], dtype=float32)",
            avg="\n    array([[[[ 2.5,  4.5],\n             [10.5, 12.5]]]], dtype=float32)",
            lp="\n    array([[[[10., 18.],\n             [42., 50.]]]], dtype=float32)"),
    3: dict(dims="D, H, W", numel="8", shape="2, 2, 2",
            max="\n    array([[[[[7.]]]]], dtype=float32)",
            avg="\n    array([[[[[3.5]]]]], dtype=float32)",
            lp="\n    array([[[[[28.]]]]], dtype=float32)"),
}

for _d, _ex in _EXAMPLES.items():
    for _fn, _tmpl, _key in ((f"max_pool{_d}d", _MAX_DOC, "max"),
                             (f"avg_pool{_d}d", _AVG_DOC, "avg"),
                             (f"lp_pool{_d}d", _LP_DOC, "lp")):
        globals()[_fn].__doc__ = _doc(_tmpl, D=str(_d), dims=_ex["dims"], numel=_ex["numel"],
                                      shape=_ex["shape"], example=_ex[_key])


# ------------------------------------------------------------------------------------------
# Adaptive pools
# ------------------------------------------------------------------------------------------
class _Bins(NamedTuple):
    """Adaptive bins on a given input size: the output size, the equivalent ordinary window
    when the bins are equal and disjoint (``in % out == 0``), and the (start, end) table."""

    out_size: tuple[int, ...]
    window: _Window | None
    table: np.ndarray
    driver_args: tuple[tuple[int, ...], ...]  # isize, osize


_BINS_CACHE: dict = {}
# Element counts up to this are allocatable as far as their byte count goes (any dtype, int64
# indices included): check_alloc is needed only past it.
_ALLOC_SURE = sys.maxsize // 16


def _adaptive_sizes(in_size: tuple[int, ...], spatial: int, output_size) -> tuple[int, ...]:
    """The validated output size: an int, None or one int-or-None per spatial dim."""
    if isinstance(output_size, (str, bytes)) or not (
            output_size is None or isinstance(output_size, (Sequence, np.ndarray))
            or hasattr(output_size, "__index__")):
        raise TypeError(f"output_size must be an int, None or a tuple of {spatial} of them, "
                        f"got {output_size!r} of type {type(output_size).__name__}")
    if output_size is None or not isinstance(output_size, (Sequence, np.ndarray)):
        sizes = (output_size,) * spatial
    elif len(output_size) != spatial:
        raise ValueError(f"output_size must be an int, None or a tuple of {spatial} of them "
                         f"(one per spatial dim), got {output_size!r}")
    else:
        sizes = tuple(output_size)
    per_dim = isinstance(output_size, (Sequence, np.ndarray))
    return tuple(i if s is None else
                 check_int(s, f"output_size[{d}]" if per_dim else "output_size", 1, MAX_SIZE)
                 for d, (i, s) in enumerate(zip(in_size, sizes)))


def _bin_table(in_size: tuple[int, ...], out_size: tuple[int, ...]) -> np.ndarray:
    """(start, end) pairs of every bin, D then H then W (size-1 leading dims for 1-D/2-D):
    ``[floor(i*in/out), ceil((i+1)*in/out))``, as :func:`fastconv.shapes.adaptive_pool_bins`
    (the tests hold the two equal), in NumPy so that a huge output size is not a Python loop."""
    parts = []
    for n, o in zip(_lead3(in_size, 1), _lead3(out_size, 1)):
        i = np.arange(o, dtype=np.int64)
        parts.append(np.stack([i * n // o, -(-(i + 1) * n // o)], axis=1).ravel())
    return np.concatenate(parts)


def _adaptive_bins(in_size: tuple[int, ...], spatial: int, output_size) -> _Bins:
    cacheable = _plain(output_size)
    if cacheable:
        hit = _BINS_CACHE.get((in_size, output_size))
        if hit is not None:
            return hit
    if min(in_size) < 1:
        raise ValueError(f"x must have non-empty spatial dims for adaptive pooling, got input "
                         f"size {tuple(in_size)}")
    out_size = _adaptive_sizes(in_size, spatial, output_size)
    # output sizes past the input's are allowed (bins then overlap) but must be allocatable
    check_alloc(out_size, np.float64, f"the output for output_size={output_size!r}")
    window = None
    if all(i % o == 0 for i, o in zip(in_size, out_size)):
        k = tuple(i // o for i, o in zip(in_size, out_size))
        window = _make_window(in_size, k, k, (1,) * spatial, ((0, 0),) * spatial, out_size)
    result = _Bins(out_size, window, _bin_table(in_size, out_size),
                   (_lead3(in_size, 1), _lead3(out_size, 1)))
    if cacheable:
        if len(_BINS_CACHE) >= _WINDOW_CACHE_SIZE:
            _BINS_CACHE.clear()
        _BINS_CACHE[(in_size, output_size)] = result
    return result


def _adaptive(kind: int, x, spatial: int, output_size, return_indices: bool, threads, out):
    xc, dtype, unbatched = _prepare(x, spatial, keep_int=kind == _MAX)
    bins = _adaptive_bins(xc.shape[2:], spatial, output_size)
    shape = xc.shape[:2] + bins.out_size
    if math.prod(shape) > _ALLOC_SURE:  # the full check costs a tenth of a small pool
        check_alloc(shape, dtype)
    y = _output(out, shape, unbatched, dtype, (x,))
    if not return_indices and bins.window is not None:
        # equal, disjoint bins: an ordinary pool with kernel = stride = in / out
        _run_window(kind, xc, y, None, bins.window, threads)
        return _finish(y, unbatched, out)
    indices = np.empty(shape, dtype=np.int64) if return_indices else None
    planes = xc.reshape(xc.shape[0] * xc.shape[1], math.prod(xc.shape[2:]))
    _driver().adaptive_pool(kind, _code(dtype), planes, y, indices, *bins.driver_args,
                            bins.table, _thread_count(threads, xc.size + y.size))
    values = _finish(y, unbatched, out)
    if return_indices:
        return values, (indices[0] if unbatched else indices)  # type: ignore[index]
    return values


def adaptive_avg_pool1d(x, output_size, *, threads=None, out=None):
    return _adaptive(_AVG, x, 1, output_size, False, threads, out)


def adaptive_avg_pool2d(x, output_size, *, threads=None, out=None):
    return _adaptive(_AVG, x, 2, output_size, False, threads, out)


def adaptive_avg_pool3d(x, output_size, *, threads=None, out=None):
    return _adaptive(_AVG, x, 3, output_size, False, threads, out)


def adaptive_max_pool1d(x, output_size, return_indices=False, *, threads=None, out=None):
    return _adaptive(_MAX, x, 1, output_size, _check_bool(return_indices, "return_indices"),
                     threads, out)


def adaptive_max_pool2d(x, output_size, return_indices=False, *, threads=None, out=None):
    return _adaptive(_MAX, x, 2, output_size, _check_bool(return_indices, "return_indices"),
                     threads, out)


def adaptive_max_pool3d(x, output_size, return_indices=False, *, threads=None, out=None):
    return _adaptive(_MAX, x, 3, output_size, _check_bool(return_indices, "return_indices"),
                     threads, out)


_ADAPTIVE_DOC = """{D}-D adaptive {what} pooling to a fixed output size (PyTorch's bins).

    Output bin ``i`` of a dim covers input ``[floor(i*in/out), ceil((i+1)*in/out))``.{extra}

    Parameters
    ----------
    x : array_like
        Input ``(N, C, {dims})`` or unbatched ``(C, {dims})``.
    output_size : int, None or tuple of (int or None)
        Output spatial size; a None entry keeps that input size.{indices}
{COMMON}

    Returns
    -------
    numpy.ndarray{ret}

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange({numel}, dtype=np.float32).reshape(1, 1, {shape})
    >>> fastconv.adaptive_{kind}_pool{D}d(x, 1){example}
    """
_ADAPTIVE_IDX = """
    return_indices : bool
        Also return int64 flat indices into each input plane (ties: first in row-major
        order; NaN: the first NaN)."""

for _d, _ex in _EXAMPLES.items():
    for _kind in ("avg", "max"):
        _val = {"avg": {1: "1.5", 2: "7.5", 3: "3.5"}, "max": {1: "3.", 2: "15.", 3: "7."}}
        _v = _val[_kind][_d]
        _nest = "[" * (_d + 2) + _v + "]" * (_d + 2)
        globals()[f"adaptive_{_kind}_pool{_d}d"].__doc__ = _doc(
            _ADAPTIVE_DOC, D=str(_d), what="average" if _kind == "avg" else "max", kind=_kind,
            dims=_ex["dims"], numel=_ex["numel"], shape=_ex["shape"],
            extra=" Integer dtypes are kept." if _kind == "max" else "",
            indices=_ADAPTIVE_IDX if _kind == "max" else "",
            ret=", and int64 indices with ``return_indices``" if _kind == "max" else "",
            example=f"\n    array({_nest}, dtype=float32)")


# ------------------------------------------------------------------------------------------
# Global pools
# ------------------------------------------------------------------------------------------
def _check_spatial_dims(spatial_dims: object) -> int | None:
    if spatial_dims is None:
        return None
    return check_int(spatial_dims, "spatial_dims", 1, 3)


def _global(kind: int, x, spatial_dims, threads, out):
    spatial = _check_spatial_dims(spatial_dims)
    if (spatial is None and type(x) is np.ndarray and x.flags.c_contiguous
            and (x.dtype is _F32 or x.dtype is _F64)):
        xc = arr = x  # the common case, without the general checks' cost
    else:
        arr = check_array(x, "x")
        xc = None
    unbatched = False
    if spatial is not None:
        # the rule of the 1-D/2-D/3-D operators: (N, C, *spatial) or unbatched (C, *spatial)
        arr, unbatched = batched(arr, spatial)
    elif arr.ndim < 3:
        raise ValueError(f"x must have shape (N, C, *spatial) with at least one spatial dim, "
                         f"got shape {arr.shape} (without spatial_dims the spatial rank is "
                         f"ndim - 2: pass spatial_dims= to give an unbatched input)")
    if xc is None:
        xc = working_copy(arr, _working_dtype(arr, keep_int=kind == _MAX))
    dtype = xc.dtype
    n, c = xc.shape[:2]
    size = math.prod(xc.shape[2:])
    if size == 0:
        raise ValueError(f"x must have non-empty spatial dims, got shape {np.shape(x)}")
    shape = (n, c) + (1,) * (xc.ndim - 2)
    y = _output(out, shape, unbatched, dtype, (x,))
    _driver().global_pool(kind, _code(dtype), xc.reshape(n * c, size), y.reshape(n * c),
                          _dispatch.isa_index(), _thread_count(threads, xc.size))
    return _finish(y, unbatched, out)


_GLOBAL_X = """
    x : array_like
        ``(N, C, *spatial)``. Without ``spatial_dims`` the batch dim is required and the
        spatial rank is ``x.ndim - 2``: a 3-D input is a batch of 1-D signals ``(N, C, W)``,
        never an unbatched image (it cannot be both); give an unbatched ``(C, H, W)`` as
        ``x[None]`` or with ``spatial_dims=2``.
    spatial_dims : {1, 2, 3} or None, keyword-only
        The spatial rank, when known: ``x`` may then be ``(N, C, *spatial)`` or unbatched
        ``(C, *spatial)`` (the rule of every 1-D/2-D/3-D operator), and an unbatched input
        gives an unbatched ``(C, 1, ..., 1)`` output."""


def global_avg_pool(x, *, spatial_dims=None, threads=None, out=None):
    """Mean over every spatial dim: ``(N, C, *spatial)`` → ``(N, C, 1, ..., 1)``.

    A reduction over each contiguous ``(n, c)`` plane.

    Parameters
    ----------{GLOBAL_X}
{COMMON}

    Returns
    -------
    numpy.ndarray
        ``(N, C, 1, ..., 1)`` means (``(C, 1, ..., 1)`` for an unbatched input).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fastconv.global_avg_pool(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[[[1.5]],
    <BLANKLINE>
            [[5.5]]]])
    >>> fastconv.global_avg_pool(np.arange(8.0).reshape(2, 2, 2), spatial_dims=2).shape
    (2, 1, 1)
    """
    return _global(_AVG, x, spatial_dims, threads, out)


def global_max_pool(x, *, spatial_dims=None, threads=None, out=None):
    """Max over every spatial dim: ``(N, C, *spatial)`` → ``(N, C, 1, ..., 1)``.

    NaN propagates; integer dtypes are kept.

    Parameters
    ----------{GLOBAL_X}
{COMMON}

    Returns
    -------
    numpy.ndarray
        ``(N, C, 1, ..., 1)`` maxima (``(C, 1, ..., 1)`` for an unbatched input).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fastconv.global_max_pool(np.arange(6).reshape(1, 2, 3))
    array([[[2],
            [5]]])
    """
    return _global(_MAX, x, spatial_dims, threads, out)


global_avg_pool.__doc__ = _plain_doc(global_avg_pool.__doc__).replace("{GLOBAL_X}", _GLOBAL_X)
global_max_pool.__doc__ = _plain_doc(global_max_pool.__doc__).replace("{GLOBAL_X}", _GLOBAL_X)


# ------------------------------------------------------------------------------------------
# Max unpooling
# ------------------------------------------------------------------------------------------
def _max_unpool(x, indices, spatial, kernel_size, stride, padding, output_size, threads, out):
    xc, dtype, unbatched = _prepare(x, spatial, keep_int=True)
    idx = check_array(indices, "indices")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array, got dtype {idx.dtype}")
    idx4, _ = batched(idx, spatial, "indices")
    if idx4.shape != xc.shape:
        raise ValueError(f"indices must have the shape of x, got {idx.shape} for x of shape "
                         f"{np.shape(x)}")
    in_size = tuple(xc.shape[2:])
    k = int_tuple(kernel_size, spatial, "kernel_size")
    s = k if stride is None else int_tuple(stride, spatial, "stride")
    if isinstance(padding, str) and padding != "valid":
        raise ValueError(f"max_unpool padding must be an int, per-dim ints, (before, after) "
                         f"pairs or 'valid', got {padding!r}")
    pads = resolve_padding(padding, in_size, k, s)
    if output_size is None:
        out_size = tuple(conv_transpose_output_size(in_size, k, s, pads))
    else:
        sizes = list(int_tuple(output_size, len(output_size), "output_size")
                     if isinstance(output_size, (Sequence, np.ndarray)) else
                     int_tuple(output_size, spatial, "output_size"))
        if len(sizes) not in (spatial, spatial + 1, spatial + 2):
            raise ValueError(f"output_size must give the {spatial} spatial sizes (or the full "
                             f"shape), got {output_size!r}")
        out_size = tuple(sizes[-spatial:])
        default = conv_transpose_output_size(in_size, k, s, pads)
        for dim, (size, dflt, step) in enumerate(zip(out_size, default, s)):
            # PyTorch's rule: within a stride of the default size
            if not dflt - step < size < dflt + step:
                raise ValueError(f"output_size must lie within a stride of the default size "
                                 f"{tuple(default)} (strictly between {dflt - step} and "
                                 f"{dflt + step} in spatial dim {dim}), got {output_size!r}")
    check_alloc(xc.shape[:2] + out_size, dtype)
    plane = math.prod(out_size)
    idx64 = np.ascontiguousarray(idx4, dtype=np.int64)
    if idx64.size and (int(idx64.min()) < 0 or int(idx64.max()) >= plane):
        bad = int(idx64.min()) if int(idx64.min()) < 0 else int(idx64.max())
        raise ValueError(f"indices must lie in [0, {plane}) for output size {out_size}, got "
                         f"index {bad}")
    shape = xc.shape[:2] + out_size
    y = _output(out, shape, unbatched, dtype, [np.asarray(x), idx])
    n, c = xc.shape[:2]
    _driver().max_unpool(xc.reshape(n * c, math.prod(in_size)),
                         idx64.reshape(n * c, math.prod(in_size)),
                         y.reshape(n * c, plane), _thread_count(threads, y.size))
    return _finish(y, unbatched, out)


def max_unpool1d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 threads=None, out=None):
    return _max_unpool(x, indices, 1, kernel_size, stride, padding, output_size, threads, out)


def max_unpool2d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 threads=None, out=None):
    return _max_unpool(x, indices, 2, kernel_size, stride, padding, output_size, threads, out)


def max_unpool3d(x, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                 threads=None, out=None):
    return _max_unpool(x, indices, 3, kernel_size, stride, padding, output_size, threads, out)


_UNPOOL_DOC = """{D}-D max unpooling: the partial inverse of max pooling with ``return_indices``.

    Scatters each value of ``x`` to its flat ``indices`` position in a zero output plane of its
    own ``(n, c)``; every other output element is 0. Integer dtypes are kept.

    Parameters
    ----------
    x : array_like
        Pooled values ``(N, C, {dims})`` or ``(C, {dims})``.
    indices : array_like of int
        Same shape as ``x``: flat indices into each output plane.
    kernel_size, stride, padding : as for ``max_pool{D}d``
        Give the default output size ``(in - 1)*stride - pad_before - pad_after + kernel``.
    output_size : tuple of int or None
        The output's spatial sizes (or full shape) instead.
{COMMON}

    Returns
    -------
    numpy.ndarray
        The unpooled array.

    Raises
    ------
    ValueError
        If an index lies outside its output plane.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.array([[[1.0, 5.0, 2.0, 4.0]]])
    >>> y, i = fastconv.max_pool1d(x, 2, return_indices=True)
    >>> fastconv.max_unpool1d(y, i, 2)
    array([[[0., 5., 0., 4.]]])
    """
for _d, _ex in _EXAMPLES.items():
    globals()[f"max_unpool{_d}d"].__doc__ = _doc(_UNPOOL_DOC, D=str(_d), dims=_ex["dims"])


# ------------------------------------------------------------------------------------------
# Spatial pyramid and mixed pooling
# ------------------------------------------------------------------------------------------
def _check_levels(levels: object) -> tuple[int, ...]:
    if isinstance(levels, (str, bytes)) or not isinstance(levels, (Sequence, np.ndarray)):
        raise TypeError(f"levels must be a sequence of ints >= 1, got {levels!r}")
    checked = tuple(check_int(level, f"levels[{i}]", 1, MAX_SIZE)
                    for i, level in enumerate(levels))
    if not checked:
        raise ValueError("levels must name at least one level, got ()")
    return checked


def spatial_pyramid_pool2d(x, levels=(1, 2, 4), mode="max", *, threads=None, out=None):
    """Spatial pyramid pooling (He et al., SPP-net): a fixed-length vector from any H, W.

    At each level ``l`` an adaptive ``(l, l)`` pool (bins as :func:`adaptive_max_pool2d`),
    flattened channel-major, the levels concatenated.

    Parameters
    ----------
    x : array_like
        ``(N, C, H, W)`` or unbatched ``(C, H, W)``; computed in float32 or float64.
    levels : sequence of int
        Bins per side at each level.
    mode : {"max", "avg"}
        Pool of each bin.
{COMMON}

    Returns
    -------
    numpy.ndarray
        ``(N, C * sum(l*l for l in levels))``, or ``(C * sum(...),)`` unbatched.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> fastconv.spatial_pyramid_pool2d(x, levels=(1, 2))
    array([[15.,  5.,  7., 13., 15.]], dtype=float32)
    """
    mode = check_choice(mode, "mode", ("max", "avg"))
    levels = _check_levels(levels)
    xc, dtype, unbatched = _prepare(x, 2)
    n, c = xc.shape[:2]
    width = c * sum(level * level for level in levels)
    y = _output(out, (n, width), unbatched, dtype, (x,))
    kind = _MAX if mode == "max" else _AVG
    start = 0
    for level in levels:
        part = _adaptive(kind, xc, 2, (level, level), False, threads, None)
        y[:, start:start + c * level * level] = part.reshape(n, c * level * level)
        start += c * level * level
    return _finish(y, unbatched, out)


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(
            alpha, (int, float, np.integer, np.floating)):
        raise TypeError(f"alpha must be a number in [0, 1], got {alpha!r} of type "
                        f"{type(alpha).__name__}")
    value = float(alpha)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return value


def _mixed_rng(mode: str, seed: object, rng: object):
    """The generator of ``mode="random"`` (None for ``"blend"``): ``rng``, or one from ``seed``."""
    if mode == "blend":
        if seed is not None or rng is not None:
            raise ValueError(f"seed and rng are for mode='random', got mode='blend' with "
                             f"seed={seed!r}, rng={rng!r}")
        return None
    if seed is not None and rng is not None:
        raise ValueError(f"give seed or rng, not both: got seed={seed!r} and rng={rng!r}")
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {rng!r} of type "
                            f"{type(rng).__name__}")
        return rng
    if seed is not None and (isinstance(seed, (bool, np.bool_, float, np.floating))
                             or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {seed!r} of type "
                        f"{type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    return np.random.default_rng(None if seed is None else int(seed))


def mixed_pool2d(x, kernel_size, stride=None, padding=0, alpha=0.5, *, mode="blend",
                 dilation=1, ceil_mode=False, seed=None, rng=None, threads=None, out=None):
    """Mixed pooling (Yu et al., 2014): max and average pooling over the same window, mixed.

    ``mode="blend"`` (default): ``alpha * max_pool2d + (1 - alpha) * avg_pool2d``.
    ``mode="random"``: the paper's training-time rule, each pooling region (every output
    element, per image and channel) is *either* its max or its average, the max with
    probability ``alpha``: region ``(n, c, i, j)`` takes the max when
    ``rng.random(output_shape)[n, c, i, j] < alpha``. A call with the same ``seed`` (or a
    generator in the same state) makes the same choices. At inference the paper fixes the
    choice; ``mode="blend"`` with the same ``alpha`` gives its expectation.

    Both pools use the same window; padding is excluded from both (the average divides by the
    number of real elements).

    Parameters
    ----------
    x : array_like
        ``(N, C, H, W)`` or unbatched ``(C, H, W)``; computed in float32 or float64.
    kernel_size, stride, padding : as for :func:`max_pool2d`
    alpha : float
        ``0 <= alpha <= 1``: the weight of the max (``"blend"``) or the probability that a
        region takes the max (``"random"``).
    mode : {"blend", "random"}, keyword-only
    dilation : int or tuple of int, keyword-only
        Spacing between window taps, as for :func:`max_pool2d`.
    ceil_mode : bool, keyword-only
        Round the output size up (PyTorch's rule, as for :func:`max_pool2d`).
    seed : int or None, keyword-only
        ``mode="random"``: seed of a new ``numpy.random.default_rng``.
    rng : numpy.random.Generator or None, keyword-only
        ``mode="random"``: the generator to draw from (advanced by the call). Neither ``seed``
        nor ``rng``: fresh entropy.
{COMMON}

    Returns
    -------
    numpy.ndarray
        The mixed pool.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> fastconv.mixed_pool2d(x, 2, alpha=0.5)
    array([[[[ 3.75,  5.75],
             [11.75, 13.75]]]], dtype=float32)
    >>> y = fastconv.mixed_pool2d(x, 2, mode="random", seed=0)
    >>> bool(np.all((y == fastconv.max_pool2d(x, 2)) | (y == fastconv.avg_pool2d(x, 2))))
    True
    """
    a = _check_alpha(alpha)
    mode = check_choice(mode, "mode", ("blend", "random"))
    generator = _mixed_rng(mode, seed, rng)
    xc, dtype, unbatched = _prepare(x, 2)
    w = _window(xc.shape, 2, kernel_size, stride, padding, dilation, ceil_mode)
    shape = xc.shape[:2] + w.out_size
    y = _output(out, shape, unbatched, dtype, (x,))
    avg = np.empty(shape, dtype=dtype)
    _run_window(_MAX, xc, y, None, w, threads)
    _run_window(_AVG, xc, avg, None, w, threads, count_include_pad=False)
    if generator is None:
        y *= dtype.type(a)
        y += dtype.type(1.0 - a) * avg
    else:
        take_avg = generator.random(shape[1:] if unbatched else shape) >= a
        np.copyto(y, avg, where=take_avg.reshape(shape))
    return _finish(y, unbatched, out)


spatial_pyramid_pool2d.__doc__ = _plain_doc(spatial_pyramid_pool2d.__doc__)
mixed_pool2d.__doc__ = _plain_doc(mixed_pool2d.__doc__)


# ------------------------------------------------------------------------------------------
# Layer objects
# ------------------------------------------------------------------------------------------
class _PoolLayer:
    """A pooling function with its parameters fixed: ``layer(x, *, threads=None, out=None)``."""

    _function = staticmethod(lambda x, **kw: x)
    _spatial = 2
    _params: tuple[str, ...] = ()

    def __init__(self, **params):
        self._args = params
        # Validate at construction: a tiny call through the same checks as a real one.
        self._check()

    def _check(self) -> None:
        raise NotImplementedError

    def __call__(self, x, *, threads=None, out=None):
        return type(self)._function(x, **self._args, threads=threads, out=out)

    def backward(self, grad_output, x, *, threads=None):
        """The gradient with respect to ``x`` of a call ``y = layer(x)``
        (:mod:`fastconv.gradients`, the layer's parameters).

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> x = np.array([[[1.0, 3.0, 2.0, 0.0]]])
        >>> fastconv.MaxPool1d(2).backward(np.array([[[10.0, 20.0]]]), x)
        array([[[ 0., 10., 20.,  0.]]])
        """
        from . import gradients

        fn = getattr(gradients, f"{type(self)._function.__name__}_backward", None)
        if fn is None:
            raise NotImplementedError(f"{type(self).__name__} has no backward yet")
        args = {k: v for k, v in self._args.items() if k != "return_indices"}
        return fn(grad_output, x, **args, threads=threads)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self._args.items())
        return f"{type(self).__name__}({args})"

    def __getattr__(self, name: str):
        args = self.__dict__.get("_args", {})
        if name in args:
            return args[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


class _WindowLayer(_PoolLayer):
    def _check(self) -> None:
        spatial = self._spatial
        a = self._args
        k = int_tuple(a["kernel_size"], spatial, "kernel_size")
        if a.get("stride") is not None:
            int_tuple(a["stride"], spatial, "stride")
        if "dilation" in a:
            int_tuple(a["dilation"], spatial, "dilation")
        _check_bool(a.get("ceil_mode", False), "ceil_mode")
        if "return_indices" in a:
            _check_bool(a["return_indices"], "return_indices")
        if "count_include_pad" in a:
            _check_bool(a["count_include_pad"], "count_include_pad")
        if a.get("divisor_override") is not None:
            check_int(a["divisor_override"], "divisor_override", 1)
        if "norm_type" in a:
            _check_norm(a["norm_type"])
        padding = a.get("padding", 0)
        if isinstance(padding, str):
            check_choice(padding, "padding", ("valid", "same", "same_lower"))
        # against an input large enough for any window: checks the padding form and the
        # pad < dilated-extent rule now rather than at the first call
        pool_output_size((1 << 20,) * spatial, k, a.get("stride") or k, padding,
                         a.get("dilation", 1))


def _window_layer(name: str, function, spatial: int, kind: str):
    if kind == "max":
        def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     return_indices=False):
            _PoolLayer.__init__(self, kernel_size=kernel_size, stride=stride, padding=padding,
                                dilation=dilation, ceil_mode=ceil_mode,
                                return_indices=return_indices)
    elif kind == "avg":
        def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
            _PoolLayer.__init__(self, kernel_size=kernel_size, stride=stride, padding=padding,
                                dilation=dilation, ceil_mode=ceil_mode,
                                count_include_pad=count_include_pad,
                                divisor_override=divisor_override)
    else:
        def __init__(self, norm_type, kernel_size, stride=None, padding=0, dilation=1,
                     ceil_mode=False):
            _PoolLayer.__init__(self, norm_type=norm_type, kernel_size=kernel_size,
                                stride=stride, padding=padding, dilation=dilation,
                                ceil_mode=ceil_mode)
    doc = (f"Layer form of :func:`fastconv.{function.__name__}` (same parameters), called as "
           f"``layer(x, *, threads=None, out=None)``.\n\n    Examples\n    --------\n"
           f"    >>> import numpy as np, fastconv\n"
           f"    >>> layer = fastconv.{name}({'2, ' if kind == 'lp' else ''}2)\n"
           f"    >>> layer(np.ones((1, 1) + (4,) * {spatial}, np.float32)).shape\n"
           f"    {(1, 1) + (2,) * spatial}\n")
    return type(name, (_WindowLayer,), {"_function": staticmethod(function),
                                        "_spatial": spatial, "__init__": __init__,
                                        "__doc__": doc, "__module__": __name__})


class _AdaptiveLayer(_PoolLayer):
    def _check(self) -> None:
        size = self._args["output_size"]
        sizes = size if isinstance(size, (Sequence, np.ndarray)) else (size,) * self._spatial
        if len(sizes) != self._spatial:
            raise ValueError(f"output_size must be an int, None or a tuple of {self._spatial} "
                             f"of them, got {size!r}")
        for i, s in enumerate(sizes):
            if s is not None:
                check_int(s, f"output_size[{i}]", 1)
        if "return_indices" in self._args:
            _check_bool(self._args["return_indices"], "return_indices")


def _adaptive_layer(name: str, function, spatial: int, kind: str):
    if kind == "max":
        def __init__(self, output_size, return_indices=False):
            _PoolLayer.__init__(self, output_size=output_size, return_indices=return_indices)
    else:
        def __init__(self, output_size):
            _PoolLayer.__init__(self, output_size=output_size)
    doc = (f"Layer form of :func:`fastconv.{function.__name__}` (same parameters), called as "
           f"``layer(x, *, threads=None, out=None)``.\n\n    Examples\n    --------\n"
           f"    >>> import numpy as np, fastconv\n"
           f"    >>> fastconv.{name}(1)(np.ones((1, 1) + (4,) * {spatial}, np.float32)).shape\n"
           f"    {(1, 1) + (1,) * spatial}\n")
    return type(name, (_AdaptiveLayer,), {"_function": staticmethod(function),
                                          "_spatial": spatial, "__init__": __init__,
                                          "__doc__": doc, "__module__": __name__})


MaxPool1d = _window_layer("MaxPool1d", max_pool1d, 1, "max")
MaxPool2d = _window_layer("MaxPool2d", max_pool2d, 2, "max")
MaxPool3d = _window_layer("MaxPool3d", max_pool3d, 3, "max")
AvgPool1d = _window_layer("AvgPool1d", avg_pool1d, 1, "avg")
AvgPool2d = _window_layer("AvgPool2d", avg_pool2d, 2, "avg")
AvgPool3d = _window_layer("AvgPool3d", avg_pool3d, 3, "avg")
LpPool1d = _window_layer("LpPool1d", lp_pool1d, 1, "lp")
LpPool2d = _window_layer("LpPool2d", lp_pool2d, 2, "lp")
LpPool3d = _window_layer("LpPool3d", lp_pool3d, 3, "lp")
AdaptiveAvgPool1d = _adaptive_layer("AdaptiveAvgPool1d", adaptive_avg_pool1d, 1, "avg")
AdaptiveAvgPool2d = _adaptive_layer("AdaptiveAvgPool2d", adaptive_avg_pool2d, 2, "avg")
AdaptiveAvgPool3d = _adaptive_layer("AdaptiveAvgPool3d", adaptive_avg_pool3d, 3, "avg")
AdaptiveMaxPool1d = _adaptive_layer("AdaptiveMaxPool1d", adaptive_max_pool1d, 1, "max")
AdaptiveMaxPool2d = _adaptive_layer("AdaptiveMaxPool2d", adaptive_max_pool2d, 2, "max")
AdaptiveMaxPool3d = _adaptive_layer("AdaptiveMaxPool3d", adaptive_max_pool3d, 3, "max")


class MixedPool2d(_WindowLayer):
    """Layer form of :func:`fastconv.mixed_pool2d`, called as
    ``layer(x, *, threads=None, out=None)``.

    With ``mode="random"`` the layer keeps one generator (from ``seed`` or ``rng``, made at
    construction), so successive calls draw new choices, reproducibly for a given seed.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> fastconv.MixedPool2d(2, alpha=0.25)(x)
    array([[[[ 3.125,  5.125],
             [11.125, 13.125]]]], dtype=float32)
    >>> layer = fastconv.MixedPool2d(2, mode="random", seed=7)
    >>> first = layer(x)
    >>> bool(np.array_equal(fastconv.MixedPool2d(2, mode="random", seed=7)(x), first))
    True
    """

    _function = staticmethod(mixed_pool2d)
    _spatial = 2

    def __init__(self, kernel_size, stride=None, padding=0, alpha=0.5, *, mode="blend",
                 dilation=1, ceil_mode=False, seed=None, rng=None):
        _check_alpha(alpha)
        mode = check_choice(mode, "mode", ("blend", "random"))
        generator = _mixed_rng(mode, seed, rng)
        _PoolLayer.__init__(self, kernel_size=kernel_size, stride=stride, padding=padding,
                            alpha=alpha, mode=mode, dilation=dilation, ceil_mode=ceil_mode)
        if generator is not None:
            self._args["rng"] = generator


class SpatialPyramidPool2d(_PoolLayer):
    """Layer form of :func:`fastconv.spatial_pyramid_pool2d`, called as
    ``layer(x, *, threads=None, out=None)``.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> spp = fastconv.SpatialPyramidPool2d((1, 2, 4), mode="avg")
    >>> spp(np.ones((2, 8, 13, 17), np.float32)).shape
    (2, 168)
    """

    _function = staticmethod(spatial_pyramid_pool2d)

    def __init__(self, levels=(1, 2, 4), mode="max"):
        _PoolLayer.__init__(self, levels=levels, mode=mode)

    def _check(self) -> None:
        self._args["levels"] = _check_levels(self._args["levels"])
        check_choice(self._args["mode"], "mode", ("max", "avg"))


class _GlobalLayer(_PoolLayer):
    def __init__(self, spatial_dims=None):
        _PoolLayer.__init__(self, spatial_dims=spatial_dims)

    def _check(self) -> None:
        _check_spatial_dims(self._args["spatial_dims"])


class GlobalAvgPool(_GlobalLayer):
    """Layer form of :func:`fastconv.global_avg_pool` (same ``spatial_dims`` rule), called as
    ``layer(x, *, threads=None, out=None)``.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fastconv.GlobalAvgPool()(np.ones((2, 3, 4, 5), np.float32)).shape
    (2, 3, 1, 1)
    >>> fastconv.GlobalAvgPool(spatial_dims=2)(np.ones((3, 4, 5), np.float32)).shape
    (3, 1, 1)
    """

    _function = staticmethod(global_avg_pool)


class GlobalMaxPool(_GlobalLayer):
    """Layer form of :func:`fastconv.global_max_pool` (same ``spatial_dims`` rule), called as
    ``layer(x, *, threads=None, out=None)``.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fastconv.GlobalMaxPool()(np.arange(6.0).reshape(1, 2, 3))
    array([[[2.],
            [5.]]])
    """

    _function = staticmethod(global_max_pool)


# data_format= (channels-last data) on every pooling function: fastconv._layout. The layer
# objects above keep the plain functions.
for _d in (1, 2, 3):
    for _name in (f"max_pool{_d}d", f"avg_pool{_d}d", f"lp_pool{_d}d",
                  f"adaptive_avg_pool{_d}d", f"adaptive_max_pool{_d}d"):
        globals()[_name] = with_layout(_d)(globals()[_name])
    globals()[f"max_unpool{_d}d"] = with_layout(_d, arrays=("x", "indices"))(
        globals()[f"max_unpool{_d}d"])
global_avg_pool = with_layout(None)(global_avg_pool)
global_max_pool = with_layout(None)(global_max_pool)
spatial_pyramid_pool2d = with_layout(2, output=False)(spatial_pyramid_pool2d)
mixed_pool2d = with_layout(2)(mixed_pool2d)
del _d, _name
