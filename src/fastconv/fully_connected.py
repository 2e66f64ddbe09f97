"""Fully connected layers (``torch.nn.functional.linear``) on fastconv's packed GEMM.

``y = x @ weight.T + bias`` is a 1x1 convolution: the rows of ``x`` (all leading dims
flattened) are the positions of a 1-D signal with ``in_features`` channels, so
``y.T = conv1d(x.T, weight[:, :, None], bias)``. The convolution's ``"im2col"`` path hands a
1x1 input straight to the GEMM (``include/fastconv/gemm.h``), with the weight packed into
panels (once, for :class:`Linear`). NumPy's BLAS (``@``, ``np.dot``) is never called: its idle
threads would spin on the cores fastconv uses.
"""

import numpy as np

from . import conv
from ._validate import check_array, check_out, compute_dtype

__all__ = ["linear", "Linear"]


def _check(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> None:
    if weight.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape "
                         f"{weight.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},) (out_features), got "
                         f"{bias.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have shape (..., {weight.shape[1]}) (in_features of weight "
                         f"{weight.shape}), got {x.shape}")


def _apply(layer_call, x: np.ndarray, out_features: int, dtype: np.dtype, out, inputs,
           bias: np.ndarray | None):
    lead = x.shape[:-1]
    shape = (*lead, out_features)
    out = check_out(out, shape, dtype, inputs)
    rows = int(np.prod(lead, dtype=np.int64)) if lead else 1
    if rows == 0 or out_features == 0:
        return np.zeros(shape, dtype) if out is None else out
    if x.shape[-1] == 0:  # empty reduction: the bias alone (the GEMM needs K >= 1)
        y = np.empty(shape, dtype) if out is None else out
        y[...] = 0 if bias is None else bias
        return y
    x2 = x.reshape(rows, x.shape[-1])
    if rows == 1:  # (1, in) is (in, 1) in memory: no transposes
        y = out.reshape(out_features, 1) if out is not None else None
        res = layer_call(x2.reshape(-1, 1), y)
        return res.reshape(shape) if out is None else out
    yt = layer_call(x2.T, None)  # (out_features, rows)
    if out is None:
        return np.ascontiguousarray(yt.T).reshape(shape)
    out.reshape(rows, out_features)[...] = yt.T
    return out


def linear(x, weight, bias=None, *, threads=None, out=None):
    """Fully connected layer, as ``torch.nn.functional.linear``: ``y = x @ weight.T + bias``.

    Computed on fastconv's packed GEMM (as a 1x1 convolution), never on NumPy's BLAS.

    Parameters
    ----------
    x : array_like
        ``(..., in_features)``.
    weight : array_like
        ``(out_features, in_features)``.
    bias : array_like, optional
        ``(out_features,)``.
    threads : int, optional
        Threads to use (None: ``fastconv.get_num_threads()``; -1: every CPU).
    out : numpy.ndarray, optional
        C-contiguous array of the output's exact shape and dtype to fill and return.

    Returns
    -------
    numpy.ndarray
        ``(..., out_features)``, float32 or float64 as ``np.result_type(x, weight, float32)``.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.array([[1.0, 2.0, 3.0]], dtype=np.float32)
    >>> w = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]], dtype=np.float32)
    >>> fastconv.linear(x, w, bias=np.array([0.5, -1.0], dtype=np.float32))
    array([[1.5, 5. ]], dtype=float32)
    """
    x = check_array(x, "x")
    weight = check_array(weight, "weight")
    if bias is not None:
        bias = check_array(bias, "bias")
    _check(x, weight, bias)
    dtype = compute_dtype(x, weight)
    w3 = weight[:, :, np.newaxis]

    def call(xt, y):
        return conv.conv1d(xt, w3, bias, algorithm="im2col", threads=threads, out=y)

    return _apply(call, x, weight.shape[0], dtype, out, [x, weight, bias], bias)


class Linear:
    """Fully connected layer object: the weight is copied and packed for the GEMM once.

    Parameters
    ----------
    weight : array_like
        ``(out_features, in_features)``.
    bias : array_like, optional
        ``(out_features,)``.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fc = fastconv.Linear(np.eye(3, dtype=np.float32) * 2)
    >>> fc(np.ones((2, 3), np.float32))
    array([[2., 2., 2.],
           [2., 2., 2.]], dtype=float32)
    """

    def __init__(self, weight, bias=None):
        weight = check_array(weight, "weight")
        if bias is not None:
            bias = check_array(bias, "bias")
        _check(np.empty((0, weight.shape[1] if weight.ndim == 2 else 0)), weight, bias)
        self._conv = conv.Conv1d(weight[:, :, np.newaxis], bias, algorithm="im2col")
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]

    @property
    def weight(self) -> np.ndarray:
        """The layer's own (read-only) copy of the weight, ``(out_features, in_features)``."""
        return self._conv.weight[:, :, 0]

    @property
    def bias(self) -> np.ndarray | None:
        """The layer's own (read-only) copy of the bias, or None."""
        return self._conv.bias

    def __call__(self, x, *, threads=None, out=None) -> np.ndarray:
        """``x @ weight.T + bias`` for ``x`` of shape ``(..., in_features)``."""
        x = check_array(x, "x")
        _check(x, self._conv.weight[:, :, 0], None)
        dtype = compute_dtype(x, self._conv.weight)
        conv_layer = self._conv

        def call(xt, y):
            return conv_layer(xt, threads=threads, out=y)

        return _apply(call, x, self.out_features, dtype, out, [x], self._conv.bias)

    def __repr__(self) -> str:
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={'yes' if self.bias is not None else 'None'})")
