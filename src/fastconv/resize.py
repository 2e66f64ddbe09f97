"""Resizing (``torch.nn.functional.interpolate``; ONNX ``Resize`` through ``fastconv.onnx``).

Every mode is separable: for each resized axis a small table gives, per output position, the
input indices it reads (1 for nearest, 2 for linear, 4 for cubic, clamped to the edge) and
their weights; the resize is then, axis after axis, a few gathers (``np.take``) and a weighted
sum, all vectorised. The tables are built in float64 from the definitions below, so the same
code serves PyTorch's rules (:func:`interpolate`) and ONNX's coordinate-transformation modes
(:func:`axis_table`, used by the ONNX runner).
"""

import math

import numpy as np

from . import _threads
from ._layout import with_layout
from ._validate import check_array, check_choice, check_int, check_out, compute_dtype

__all__ = ["interpolate"]

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic")
# modes that need a given number of spatial dims (PyTorch's rule)
_MODE_DIMS = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}
#: ONNX's coordinate transformation modes handled natively.
COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "half_pixel_symmetric")
#: ONNX's nearest rounding modes.
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def source_coordinates(in_size: int, out_size: int, mode: str, scale: float) -> np.ndarray:
    """ONNX's ``x_original`` of every output index (float64), for a ``scale`` (out / in).

    Examples
    --------
    >>> from fastconv.resize import source_coordinates
    >>> source_coordinates(2, 4, "half_pixel", 2.0).tolist()
    [-0.25, 0.25, 0.75, 1.25]
    >>> source_coordinates(3, 5, "align_corners", 5 / 3).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    dst = np.arange(out_size, dtype=np.float64)
    if mode == "align_corners":
        if out_size == 1:
            return np.zeros(1)
        return dst * ((in_size - 1) / (out_size - 1))
    if mode == "asymmetric":
        return dst / scale
    if mode == "pytorch_half_pixel":
        if out_size == 1:
            return np.zeros(1)
        return (dst + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        adjustment = out_size / (scale * in_size)
        center = in_size / 2
        offset = center * (1 - adjustment)
        return offset + (dst + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (dst + 0.5) / scale - 0.5
    raise ValueError(f"coordinate_transformation_mode {mode!r} is not supported")


def _cubic_weights(t: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution weights of the taps at -1, 0, 1, 2 for fractions ``t``."""
    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=1)


def axis_table(src: np.ndarray, in_size: int, kind: str, *, nearest_mode: str = "floor",
               cubic_a: float = -0.75, exclude_outside: bool = False):
    """Indices ``(out, taps)`` (int64, clamped to the input) and weights ``(out, taps)``
    (float64; None for nearest) that resize one axis from source coordinates ``src``.

    ``kind`` is ``"nearest"`` (rounded by ``nearest_mode``), ``"linear"`` or ``"cubic"``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.resize import axis_table
    >>> idx, w = axis_table(np.array([0.25, 1.5]), 2, "linear")
    >>> idx.tolist(), w.tolist()
    ([[0, 1], [1, 1]], [[0.75, 0.25], [0.5, 0.5]])
    """
    hi = in_size - 1
    if kind == "nearest":
        if nearest_mode == "floor":
            i = np.floor(src)
        elif nearest_mode == "ceil":
            i = np.ceil(src)
        elif nearest_mode == "round_prefer_ceil":
            i = np.floor(src + 0.5)
        else:  # round_prefer_floor
            i = np.ceil(src - 0.5)
        return np.clip(i, 0, hi).astype(np.int64)[:, None], None
    base = np.floor(src)
    t = src - base
    base = base.astype(np.int64)
    if kind == "linear":
        taps = base[:, None] + np.arange(2)
        w = np.stack([1 - t, t], axis=1)
    else:
        taps = base[:, None] + np.arange(-1, 3)
        w = _cubic_weights(t, cubic_a)
        if exclude_outside:
            w = np.where((taps < 0) | (taps > hi), 0.0, w)
            w = w / w.sum(axis=1, keepdims=True)
    return np.clip(taps, 0, hi), w


def table_order(tables: dict, shape) -> list:
    """The order :func:`resize_tables` applies ``tables`` to an input of ``shape`` in: shrink
    first, the axes whose output is smallest relative to the input go first."""
    return sorted(tables, key=lambda ax: tables[ax][0].shape[0] / max(shape[ax], 1))


def resize_tables(x: np.ndarray, tables: dict, dtype: np.dtype,
                  out: np.ndarray | None = None, order=None) -> np.ndarray:
    """Apply ``{axis: (indices, weights)}`` (from :func:`axis_table`) to ``x``, axis by axis
    (in ``order``, default :func:`table_order`); the result (``dtype``) is written into
    ``out`` if given."""
    y = x
    if order is None:
        order = table_order(tables, x.shape)
    for axis in order:
        idx, w = tables[axis]
        if w is None:
            y = np.take(y, idx[:, 0], axis=axis)
            continue
        shape = [1] * y.ndim
        shape[axis] = -1
        w = w.astype(dtype)
        acc = np.take(y, idx[:, 0], axis=axis)
        acc *= w[:, 0].reshape(shape)
        for t in range(1, idx.shape[1]):
            part = np.take(y, idx[:, t], axis=axis)
            part *= w[:, t].reshape(shape)
            acc += part
        y = acc
    if out is not None:
        out[...] = y
        return out
    if y is x or y.dtype != dtype:
        return np.array(y, dtype=dtype)
    return y


def _per_dim(value, ndim: int, name: str, convert):
    if isinstance(value, (list, tuple, np.ndarray)):
        items = list(value)
        if len(items) != ndim:
            raise ValueError(f"{name} must be one value or {ndim} (one per spatial dim), "
                             f"got {value!r}")
        return tuple(convert(v, f"{name}[{i}]") for i, v in enumerate(items))
    return (convert(value, name),) * ndim


def _check_scale(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                     np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return value


def _torch_nearest_index(in_size: int, out_size: int, scale_factor: float | None,
                         exact: bool) -> np.ndarray:
    # PyTorch computes the source index in float32: scale = 1/scale_factor or in/out
    if not exact and out_size == in_size:
        return np.arange(out_size)
    if not exact and out_size == 2 * in_size:
        return np.arange(out_size) >> 1
    scale = np.float32(1.0 / scale_factor) if scale_factor is not None \
        else np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32)
    if exact:
        dst = dst + np.float32(0.5)
    return np.minimum(np.floor(dst * scale).astype(np.int64), in_size - 1)


def plan(shape, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """:func:`interpolate`'s checks and tables for an input of ``shape`` ``(N, C, *spatial)``:
    the output spatial sizes, the ``{axis: (indices, weights)}`` tables of the resized axes
    (an axis left as it is has none) and the order :func:`resize_tables` applies them in.
    ``fastconv.dask`` slices the same tables per output chunk."""
    mode = check_choice(mode, "mode", MODES)
    spatial = len(shape) - 2
    if spatial not in (1, 2, 3):
        raise ValueError(f"x must have 3, 4 or 5 dims (N, C, *spatial), got shape {shape}")
    need = _MODE_DIMS.get(mode)
    if need is not None and need != spatial:
        raise ValueError(f"mode={mode!r} needs {need + 2}-D input (N, C, {need} spatial dims), "
                         f"got shape {shape}")
    if align_corners is not None and not isinstance(align_corners, (bool, np.bool_)):
        raise TypeError(f"align_corners must be a bool or None, got {align_corners!r}")
    if mode.startswith("nearest") and align_corners is not None:
        raise ValueError(f"align_corners can only be set with the interpolating modes, got "
                         f"align_corners={align_corners!r} with mode={mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("exactly one of size and scale_factor must be given, got "
                         f"size={size!r}, scale_factor={scale_factor!r}")
    in_sizes = tuple(shape[2:])
    if size is not None:
        out_sizes = _per_dim(size, spatial, "size", lambda v, n: check_int(v, n, 1))
        factors = (None,) * spatial
    else:
        factors = _per_dim(scale_factor, spatial, "scale_factor", _check_scale)
        out_sizes = tuple(int(math.floor(n * f)) for n, f in zip(in_sizes, factors))
        for i, n in enumerate(out_sizes):
            if n < 1:
                raise ValueError(f"scale_factor {factors[i]} gives output size {n} < 1 for "
                                 f"input size {in_sizes[i]} in spatial dim {i}")
    if any(n < 1 for n in in_sizes):
        raise ValueError(f"x must have spatial sizes >= 1, got shape {tuple(shape)}")
    tables = {}
    for d, (n_in, n_out, f) in enumerate(zip(in_sizes, out_sizes, factors)):
        if mode.startswith("nearest"):
            idx = _torch_nearest_index(n_in, n_out, f, mode == "nearest-exact")
            if n_in != n_out or not np.array_equal(idx, np.arange(n_in)):
                tables[d + 2] = (idx[:, None], None)
            continue
        if align_corners:
            src = source_coordinates(n_in, n_out, "align_corners", 1.0)
        else:
            ratio = 1.0 / f if f is not None else n_in / n_out
            src = (np.arange(n_out) + 0.5) * ratio - 0.5
            if mode != "bicubic":
                src = np.maximum(src, 0.0)
        if n_in != n_out or not np.array_equal(src, np.arange(n_in)):  # else identity
            tables[d + 2] = axis_table(src, n_in, "cubic" if mode == "bicubic" else "linear")
    return tuple(out_sizes), tables, table_order(tables, shape)


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, *,
                threads=None, out=None):
    """Resize the spatial dims of ``x``, as ``torch.nn.functional.interpolate``.

    Parameters
    ----------
    x : array_like
        ``(N, C, W)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``: every dim after the first two
        is resized (as PyTorch does).
    size : int or tuple of int, optional
        Output spatial size. Exactly one of ``size`` and ``scale_factor`` is given.
    scale_factor : float or tuple of float, optional
        Multiplier of each spatial size; the output size is ``floor(in * scale_factor)`` and
        the coordinates use ``1 / scale_factor`` (PyTorch's ``recompute_scale_factor=None``).
    mode : {"nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic"}
        ``"nearest"``: source index ``floor(dst * scale)`` (PyTorch's, legacy);
        ``"nearest-exact"``: ``floor((dst + 0.5) * scale)``; ``"linear"`` (1 spatial dim),
        ``"bilinear"`` (2), ``"trilinear"`` (3): (multi)linear interpolation; ``"bicubic"``
        (2): Keys' cubic convolution with ``A = -0.75``, reading edge values beyond the
        borders.
    align_corners : bool, optional
        Interpolating modes only: True maps the corner pixels' centres onto each other
        (``src = dst * (in - 1) / (out - 1)``); False/None: ``src = (dst + 0.5) * scale - 0.5``.
    threads : int, optional
        Accepted for a uniform signature; the resize runs in NumPy (one thread).
    out : numpy.ndarray, optional
        C-contiguous array of the output's exact shape and dtype to fill and return.

    Returns
    -------
    numpy.ndarray
        ``(N, C, *size)``, float32 or float64 as ``np.result_type(x, np.float32)``.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.array([[[1.0, 2.0, 4.0]]], dtype=np.float32)
    >>> fastconv.interpolate(x, scale_factor=2)
    array([[[1., 1., 2., 2., 4., 4.]]], dtype=float32)
    >>> fastconv.interpolate(x, size=5, mode="linear", align_corners=True)
    array([[[1. , 1.5, 2. , 3. , 4. ]]], dtype=float32)
    """
    x = check_array(x, "x")
    _threads.resolve(threads)
    out_sizes, tables, order = plan(x.shape, size, scale_factor, mode, align_corners)
    dtype = compute_dtype(x)
    shape = (*x.shape[:2], *out_sizes)
    out = check_out(out, shape, dtype, [x])
    if x.shape[0] * x.shape[1] == 0:
        return np.empty(shape, dtype) if out is None else out
    return resize_tables(working(x, dtype), tables, dtype, out, order=order)


def working(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return x if x.dtype == dtype else x.astype(dtype)


# data_format= (channels-last data, the format giving the spatial rank): fastconv._layout
interpolate = with_layout(None, rank_argument=None)(interpolate)
