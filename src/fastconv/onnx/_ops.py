"""The ONNX tensor ops fastconv runs in NumPy (never on NumPy's BLAS: matrix products go to
``fastconv.linear``), and the activations a convolution's output stage applies in place.

Every op is ``fn(attrs, opset, *inputs) -> tuple of outputs``; ``attrs`` is the node's
attribute dict (Python values), missing optional inputs are None.
"""

import math

import numpy as np

from .. import fully_connected

# ------------------------------------------------------------------------------------------
# Activations, in place on a float array (the fused output stage of a convolution)
# ------------------------------------------------------------------------------------------


def sigmoid_(y):
    with np.errstate(over="ignore"):
        np.negative(y, out=y)
        np.exp(y, out=y)
    y += 1
    np.reciprocal(y, out=y)
    return y


def _leaky(alpha):
    def act(y):
        if 0 <= alpha <= 1:
            np.maximum(y, y * y.dtype.type(alpha), out=y)
        else:
            np.copyto(y, y * y.dtype.type(alpha), where=y < 0)
        return y
    return act


def _clip(lo, hi):
    def act(y):
        np.clip(y, lo, hi, out=y)
        return y
    return act


def _hard_sigmoid(alpha, beta):
    def act(y):
        y *= y.dtype.type(alpha)
        y += y.dtype.type(beta)
        np.clip(y, 0, 1, out=y)
        return y
    return act


def _times(gate):
    def act(y):
        y *= gate(y.copy())
        return y
    return act


def _relu(y):
    np.maximum(y, 0, out=y)
    return y


def _tanh(y):
    np.tanh(y, out=y)
    return y


def activation(op: str, attrs: dict, consts: list):
    """The in-place activation of a node (``op``, its attributes, its constant extra inputs),
    or None if it is not one fastconv fuses."""
    if op == "Relu":
        return _relu
    if op == "Sigmoid":
        return sigmoid_
    if op == "Tanh":
        return _tanh
    if op == "LeakyRelu":
        return _leaky(attrs.get("alpha", 0.01))
    if op == "HardSigmoid":
        return _hard_sigmoid(attrs.get("alpha", 0.2), attrs.get("beta", 0.5))
    if op == "HardSwish":
        return _times(_hard_sigmoid(1 / 6, 0.5))
    if op == "SiLU":
        return _times(sigmoid_)
    if op == "Clip":
        lo = consts[0] if len(consts) > 0 and consts[0] is not None else attrs.get("min")
        hi = consts[1] if len(consts) > 1 and consts[1] is not None else attrs.get("max")
        lo = None if lo is None else float(np.asarray(lo))
        hi = None if hi is None else float(np.asarray(hi))
        if lo is None and hi is None:
            return lambda y: y
        return _clip(-np.inf if lo is None else lo, np.inf if hi is None else hi)
    return None


ACTIVATIONS = ("Relu", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid", "HardSwish", "Clip")

# ------------------------------------------------------------------------------------------
# Tensor ops
# ------------------------------------------------------------------------------------------


def _erf(x):
    """erf in float64 (Numerical Recipes' Chebyshev erfc: fractional error < 1.2e-7); NumPy
    has none, and a per-element ``math.erf`` would be a Python loop."""
    xd = np.asarray(x, np.float64)
    s = np.sign(xd)
    a = np.abs(xd)
    t = 1.0 / (1.0 + 0.5 * a)
    y = t * np.exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (
        0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (
            1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
    return (s * (1.0 - y)).astype(np.asarray(x).dtype)


def _axes(attrs, axes_input, key="axes"):
    if axes_input is not None:
        return [int(a) for a in np.asarray(axes_input).reshape(-1)]
    value = attrs.get(key)
    return None if value is None else [int(a) for a in value]


def _reduce(fn):
    def op(attrs, opset, x, axes=None):
        ax = _axes(attrs, axes)
        keep = bool(attrs.get("keepdims", 1))
        if not ax:
            if attrs.get("noop_with_empty_axes", 0):
                return (x,)
            ax = None
        else:
            ax = tuple(a % x.ndim for a in ax) if x.ndim else None
        return (np.asarray(fn(x, axis=ax, keepdims=keep)).astype(x.dtype, copy=False),)
    return op


def _softmax(log):
    def op(attrs, opset, x):
        axis = attrs.get("axis", -1 if opset >= 13 else 1)
        shape = x.shape
        if opset < 13:  # coerced to 2-D at axis
            axis = axis % x.ndim
            x = x.reshape(math.prod(shape[:axis]), -1)
            axis = 1
        m = x.max(axis=axis, keepdims=True)
        e = x - m
        if log:
            y = e - np.log(np.exp(e).sum(axis=axis, keepdims=True))
        else:
            np.exp(e, out=e)
            e /= e.sum(axis=axis, keepdims=True)
            y = e
        return (y.reshape(shape),)
    return op


def _binary(fn):
    return lambda attrs, opset, a, b: (fn(a, b),)


def _unary(fn):
    return lambda attrs, opset, x: (fn(x),)


def _div(attrs, opset, a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):
        return (np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b)),)
    return (np.true_divide(a, b),)


def _variadic(fn):
    def op(attrs, opset, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = fn(y, x)
        return (y,)
    return op


def _mean(attrs, opset, *xs):
    y = xs[0]
    for x in xs[1:]:
        y = y + x
    return (y / len(xs),)


def _concat(attrs, opset, *xs):
    return (np.concatenate([x for x in xs if x is not None], axis=attrs["axis"]),)


def _flatten(attrs, opset, x):
    axis = attrs.get("axis", 1) % (x.ndim + 1) if x.ndim else 0
    return (x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:])),)


def _reshape(attrs, opset, x, shape):
    shape = [int(s) for s in np.asarray(shape).reshape(-1)]
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return (x.reshape(shape),)


def _transpose(attrs, opset, x):
    perm = attrs.get("perm")
    return (np.transpose(x, perm),)


def _squeeze(attrs, opset, x, axes=None):
    ax = _axes(attrs, axes)
    if ax is None:
        return (np.squeeze(x),)
    return (np.squeeze(x, axis=tuple(a % x.ndim for a in ax)),)


def _unsqueeze(attrs, opset, x, axes=None):
    ax = _axes(attrs, axes)
    rank = x.ndim + len(ax)
    return (np.expand_dims(x, tuple(sorted(a % rank for a in ax))),)


def _slice(attrs, opset, x, starts=None, ends=None, axes=None, steps=None):
    if starts is None:  # opset < 10: attributes
        starts, ends, axes = attrs["starts"], attrs["ends"], attrs.get("axes")
    starts = np.asarray(starts).reshape(-1).tolist()
    ends = np.asarray(ends).reshape(-1).tolist()
    axes = list(range(len(starts))) if axes is None else np.asarray(axes).reshape(-1).tolist()
    steps = [1] * len(starts) if steps is None else np.asarray(steps).reshape(-1).tolist()
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        n = x.shape[a]
        # ONNX clamps like Python slicing, except that huge values mean "to the end"
        s = max(-n - 1, min(int(s), n))
        e = max(-n - 1, min(int(e), n))
        if st < 0:
            s = n - 1 if s >= n else s
            if e < -n:
                e = None
        elif e < -n:
            e = 0
        index[a % x.ndim] = slice(s, e, int(st))
    return (x[tuple(index)],)


def _split(attrs, opset, x, split=None, num_outputs=None):
    axis = attrs.get("axis", 0) % x.ndim
    if split is None:
        split = attrs.get("split")
    n = x.shape[axis]
    if split is None:
        k = attrs["_num_outputs"]
        size = -(-n // k)
        split = [size] * (k - 1) + [n - size * (k - 1)]
    cuts = np.cumsum(np.asarray(split).reshape(-1))[:-1]
    return tuple(np.split(x, cuts, axis=axis))


def _gather(attrs, opset, x, indices):
    axis = attrs.get("axis", 0) % x.ndim
    idx = np.asarray(indices)
    idx = np.where(idx < 0, idx + x.shape[axis], idx)
    return (np.take(x, idx, axis=axis),)


def _shape(attrs, opset, x):
    shape = np.array(x.shape, dtype=np.int64)
    start, end = attrs.get("start", 0), attrs.get("end")
    return (shape[start:end],)


def _cast(attrs, opset, x):
    from onnx import helper

    return (np.asarray(x).astype(helper.tensor_dtype_to_np_dtype(attrs["to"])),)


def _constant_of_shape(attrs, opset, shape):
    value = attrs.get("value")
    value = np.zeros(1, np.float32) if value is None else np.asarray(value)
    return (np.full([int(s) for s in np.asarray(shape).reshape(-1)], value.reshape(-1)[0],
                    dtype=value.dtype),)


def _expand(attrs, opset, x, shape):
    shape = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    return (x * np.ones(shape, dtype=x.dtype) if x.dtype != bool
            else np.broadcast_to(x, np.broadcast_shapes(x.shape, shape)).copy(),)


def _pad(attrs, opset, x, pads=None, value=None, axes=None):
    pads = attrs.get("pads") if pads is None else pads
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    mode = attrs.get("mode", "constant")
    if value is None:
        value = attrs.get("value", 0.0)
    ax = list(range(x.ndim)) if axes is None else [int(a) % x.ndim
                                                     for a in np.asarray(axes).reshape(-1)]
    k = len(ax)
    width = [(0, 0)] * x.ndim
    for i, a in enumerate(ax):
        width[a] = (pads[i], pads[i + k])
    crop = tuple(slice(-b if b < 0 else 0, x.shape[a] + e if e < 0 else None)
                 for a, (b, e) in enumerate(width))
    x = x[crop]
    width = [(max(b, 0), max(e, 0)) for b, e in width]
    if mode == "constant":
        return (np.pad(x, width, mode="constant",
                       constant_values=np.asarray(value).reshape(-1)[0]
                       if np.size(value) else 0),)
    return (np.pad(x, width, mode={"reflect": "reflect", "edge": "edge",
                                   "wrap": "wrap"}[mode]),)


def _matmul(attrs, opset, a, b):
    return (matmul(a, b),)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul`` semantics on fastconv's GEMM (``fastconv.linear``), no BLAS."""
    if a.ndim == 1 and b.ndim == 1:
        return fully_connected.linear(a, b[np.newaxis])[0]
    if b.ndim == 1:
        return fully_connected.linear(a, b[np.newaxis])[..., 0]
    if a.ndim == 1:
        return fully_connected.linear(a, b.T)
    if b.ndim == 2:
        return fully_connected.linear(a, b.T)
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = np.broadcast_to(a, batch + a.shape[-2:])
    b = np.broadcast_to(b, batch + b.shape[-2:])
    dtype = np.result_type(a, b, np.float32)
    y = np.empty(batch + (a.shape[-2], b.shape[-1]), dtype)
    for i in np.ndindex(*batch):
        fully_connected.linear(a[i], b[i].T, out=y[i])
    return y


def _gemm(attrs, opset, a, b, c=None):
    if attrs.get("transA", 0):
        a = a.T
    w = b if attrs.get("transB", 0) else b.T
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    y = fully_connected.linear(a, w)
    if alpha != 1:
        y *= y.dtype.type(alpha)
    if c is not None and beta != 0:
        y += (c * beta).astype(y.dtype) if beta != 1 else c
    return (y,)


def _batch_norm(attrs, opset, x, scale, bias, mean, var, *rest):
    eps = attrs.get("epsilon", 1e-5)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    s = (scale / np.sqrt(var + eps)).astype(x.dtype)
    y = x * s.reshape(shape)
    y += (bias - mean * s).astype(x.dtype).reshape(shape)
    return (y,)


def _layer_norm(attrs, opset, x, scale, bias=None):
    axis = attrs.get("axis", -1) % x.ndim
    eps = attrs.get("epsilon", 1e-5)
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=axes, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    y = d * inv * scale
    if bias is not None:
        y = y + bias
    return (y.astype(x.dtype, copy=False),)


def _gelu(attrs, opset, x):
    if attrs.get("approximate", "none") == "tanh":
        c = math.sqrt(2 / math.pi)
        return ((0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3)))).astype(x.dtype),)
    return ((0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype),)


def _dropout(attrs, opset, x, *rest):
    return (x, np.ones(x.shape, dtype=bool))


def _act(op):
    def run(attrs, opset, x, *consts):
        fn = activation(op, attrs, list(consts))
        return (fn(np.array(x, dtype=x.dtype if x.dtype.kind == "f" else np.float32)),)
    return run


def _where(attrs, opset, c, a, b):
    return (np.where(c, a, b),)


def _range(attrs, opset, start, limit, delta):
    return (np.arange(start, limit, delta).astype(np.result_type(start)),)


def _tile(attrs, opset, x, repeats):
    return (np.tile(x, [int(r) for r in np.asarray(repeats).reshape(-1)]),)


def _size(attrs, opset, x):
    return (np.array(x.size, dtype=np.int64),)


OPS = {
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply),
    "Div": _div, "Pow": lambda attrs, opset, a, b: (np.power(a, b).astype(a.dtype),),
    "Equal": _binary(np.equal), "Less": _binary(np.less), "Greater": _binary(np.greater),
    "LessOrEqual": _binary(np.less_equal), "GreaterOrEqual": _binary(np.greater_equal),
    "And": _binary(np.logical_and), "Or": _binary(np.logical_or), "Not": _unary(np.logical_not),
    "Sqrt": _unary(np.sqrt), "Exp": _unary(np.exp), "Log": _unary(np.log),
    "Neg": _unary(np.negative), "Abs": _unary(np.abs), "Floor": _unary(np.floor),
    "Ceil": _unary(np.ceil), "Reciprocal": _unary(np.reciprocal), "Sin": _unary(np.sin),
    "Cos": _unary(np.cos), "Erf": _unary(_erf),
    "Max": _variadic(np.maximum), "Min": _variadic(np.minimum), "Sum": _variadic(np.add),
    "Mean": _mean,
    "Concat": _concat, "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze, "Slice": _slice, "Split": _split,
    "Gather": _gather, "Shape": _shape, "Size": _size, "Identity": lambda a, o, x: (x,),
    "Dropout": _dropout, "Cast": _cast,
    "CastLike": lambda attrs, opset, x, like: (x.astype(like.dtype),),
    "ConstantOfShape": _constant_of_shape, "Expand": _expand, "Tile": _tile, "Range": _range,
    "Where": _where, "Pad": _pad,
    "ReduceMean": _reduce(np.mean), "ReduceSum": _reduce(np.sum), "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min), "ReduceProd": _reduce(np.prod),
    "Softmax": _softmax(False), "LogSoftmax": _softmax(True),
    "MatMul": _matmul, "Gemm": _gemm, "BatchNormalization": _batch_norm,
    "LayerNormalization": _layer_norm, "Gelu": _gelu,
    **{op: _act(op) for op in ACTIVATIONS},
}
