"""A compact float64 NumPy reference of the layers ``fastconv bench`` times.

``fastconv bench`` checks every contender's result against this before timing it, so that a
figure is never quoted for a wrong answer. It is the tests' reference (``tests/reference.py``)
cut down to the layers of :mod:`fastconv._suite` (zero padding, PyTorch's semantics), written
the same way: loops over kernel taps, each tap contracting channels with ``np.einsum`` (BLAS)
on a strided view, so a ResNet or VGG layer takes a fraction of a second. Sizes and padding
come from :mod:`fastconv.shapes`.

Examples
--------
>>> import numpy as np
>>> from fastconv._bench_reference import reference, relative_error
>>> from fastconv._suite import Conv
>>> layer = Conv("tiny", 1, 1, (3, 3), (3, 3), padding=1)
>>> x, w = np.ones(layer.input_shape), np.ones(layer.weight_shape)
>>> reference(layer, x, w, None)[0, 0]
array([[4., 6., 4.],
       [6., 9., 6.],
       [4., 6., 4.]])
>>> relative_error(np.float32([1.0, 2.0]), np.array([1.0, 2.0]))
0.0
"""

import numpy as np

from .shapes import adaptive_pool_bins, resolve_padding

__all__ = ["reference", "relative_error"]


def _tuple(value, ndim: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * ndim


def _taps(kernel: tuple[int, ...]):
    return np.ndindex(*kernel)


def _conv(layer, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    nd, g = layer.ndim, layer.groups
    s, d = _tuple(layer.stride, nd), _tuple(layer.dilation, nd)
    pads = resolve_padding(layer.padding, layer.spatial, layer.kernel, s, d)
    out = layer.output_spatial()
    xp = np.pad(x, ((0, 0), (0, 0), *pads))
    xg = xp.reshape(x.shape[0], g, x.shape[1] // g, *xp.shape[2:])
    wg = w.reshape(g, w.shape[0] // g, *w.shape[1:])
    y = np.zeros((x.shape[0], g, w.shape[0] // g, *out))
    for tap in _taps(layer.kernel):
        window = tuple(slice(t * di, t * di + (o - 1) * si + 1, si)
                       for t, di, o, si in zip(tap, d, out, s))
        y += np.einsum("ngc...,goc->ngo...", xg[(slice(None),) * 3 + window],
                       wg[(slice(None),) * 3 + tap], optimize=True)
    y = y.reshape(x.shape[0], w.shape[0], *out)
    return y if b is None else y + b.reshape((1, -1) + (1,) * nd)


def _conv_transpose(layer, x: np.ndarray, w: np.ndarray, b) -> np.ndarray:
    """Scatter: every input element times the kernel lands at ``j*s + t*d``, then crop."""
    nd, g = layer.ndim, layer.groups
    s, d = _tuple(layer.stride, nd), _tuple(layer.dilation, nd)
    op = _tuple(layer.output_padding, nd)
    pads = resolve_padding(layer.padding, layer.spatial, layer.kernel, s, d, transposed=True,
                           output_padding=op)
    n, c_in = x.shape[:2]
    c_out_g = w.shape[1]
    full = tuple((i - 1) * si + (k - 1) * di + 1 + o + pa
                 for i, si, k, di, o, (_, pa) in zip(layer.spatial, s, layer.kernel, d, op, pads))
    y = np.zeros((n, g, c_out_g, *full))
    xg = x.reshape(n, g, c_in // g, *layer.spatial)
    wg = w.reshape(g, c_in // g, c_out_g, *layer.kernel)
    for tap in _taps(layer.kernel):
        window = tuple(slice(t * di, t * di + (i - 1) * si + 1, si)
                       for t, di, i, si in zip(tap, d, layer.spatial, s))
        y[(slice(None),) * 3 + window] += np.einsum(
            "ngc...,gco->ngo...", xg, wg[(slice(None),) * 3 + tap], optimize=True)
    crop = tuple(slice(pb, pb + o) for (pb, _), o in zip(pads, layer.output_spatial()))
    y = y[(slice(None),) * 3 + crop].reshape(n, g * c_out_g, *layer.output_spatial())
    return y if b is None else y + b.reshape((1, -1) + (1,) * nd)


def _window_pool(layer, x: np.ndarray) -> np.ndarray:
    """Max or average (padding counted in the divisor, PyTorch's default) over each window."""
    nd = layer.ndim
    k = _tuple(layer.kernel, nd)
    s = _tuple(layer.stride or layer.kernel, nd)
    pads = resolve_padding(layer.padding, layer.spatial, k, s)
    out = layer.output_spatial()
    fill = -np.inf if layer.kind == "max" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), *pads), constant_values=fill)
    y = np.full(x.shape[:2] + out, fill)
    for tap in _taps(k):
        window = tuple(slice(t, t + (o - 1) * si + 1, si) for t, o, si in zip(tap, out, s))
        part = xp[(slice(None),) * 2 + window]
        y = np.maximum(y, part) if layer.kind == "max" else y + part
    return y if layer.kind == "max" else y / np.prod(k)


def _adaptive_pool(layer, x: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    reduce = np.mean if layer.kind.endswith("avg") else np.max
    bins = adaptive_pool_bins(layer.spatial, size)
    y = np.empty(x.shape[:2] + tuple(size))
    for index in np.ndindex(*size):
        window = tuple(slice(*bins[dim][i]) for dim, i in enumerate(index))
        part = x[(slice(None),) * 2 + window]
        y[(slice(None),) * 2 + index] = reduce(part.reshape(*x.shape[:2], -1), axis=-1)
    return y


def reference(layer, x, w=None, b=None) -> np.ndarray:
    """The float64 result of ``layer`` (a :mod:`fastconv._suite` entry) on these arrays.

    Parameters
    ----------
    layer : fastconv._suite.Conv, ConvTranspose or Pool
    x : array_like
        Input of shape ``layer.input_shape``.
    w, b : array_like, optional
        Weight and bias of a convolution (None for pools; ``b`` may be None).

    Returns
    -------
    numpy.ndarray
        float64, of shape ``layer.output_shape``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._bench_reference import reference
    >>> from fastconv._suite import Pool
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> reference(Pool("p", "avg", 1, (4, 4), (2, 2), 2), x)[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    x = np.asarray(x, np.float64)
    w = None if w is None else np.asarray(w, np.float64)
    b = None if b is None else np.asarray(b, np.float64)
    if layer.kind == "conv":
        return _conv(layer, x, w, b)
    if layer.kind == "conv_transpose":
        return _conv_transpose(layer, x, w, b)
    if layer.kind in ("max", "avg"):
        return _window_pool(layer, x)
    if layer.kind.startswith("global"):
        return _adaptive_pool(layer, x, (1,) * layer.ndim)
    if layer.kind.startswith("adaptive"):
        return _adaptive_pool(layer, x, layer.output_spatial())
    raise ValueError(f"no reference for a layer of kind {layer.kind!r}")


def relative_error(actual, expected) -> float:
    """``max|actual - expected| / max|expected|``: the accuracy measure of the API contract.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._bench_reference import relative_error
    >>> relative_error(np.array([1.0, 2.1]), np.array([1.0, 2.0]))  # doctest: +ELLIPSIS
    0.0500...
    """
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        return float("inf")
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    err = float(np.max(np.abs(actual - expected))) if expected.size else 0.0
    return err / scale if scale > 0 else err
