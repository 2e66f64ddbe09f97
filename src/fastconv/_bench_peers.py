"""Peer runtimes for ``fastconv bench``: PyTorch and ONNX Runtime, each optional.

Neither is a dependency of fastconv: each is imported on first use, and a peer that is not
importable (or cannot express a layer, such as ONNX Runtime's missing adaptive pooling) gives
no runner, so the benchmark skips it silently.

- PyTorch: ``torch.nn.functional`` under ``torch.inference_mode``; its thread count is
  process-wide, so each runner sets it before the call (:func:`restore_torch_threads` puts the
  caller's back afterwards).
- ONNX Runtime: a one-node model (written in ONNX's protobuf encoding here, so the ``onnx``
  package is not needed), weights as initializers (so ORT prepacks them when the session is
  created, like a fastconv layer object),
  ``intra_op_num_threads`` threads, sequential execution.

Every runner is a no-argument callable returning the result as a NumPy array.

Examples
--------
>>> import numpy as np
>>> from fastconv._bench_peers import restore_torch_threads, runners
>>> from fastconv._suite import Conv
>>> layer = Conv("tiny", 2, 3, (5, 5), (3, 3), padding=1)
>>> x = np.ones(layer.input_shape, np.float32)
>>> w = np.ones(layer.weight_shape, np.float32)
>>> with restore_torch_threads():
...     peers = runners(layer, x, w, None, threads=1)  # {} where neither peer is installed
...     all(run().shape == layer.output_shape for run in peers.values())
True

PyTorch's thread count is process-wide, and PyTorch's wheel brings the OpenMP runtime that
fastconv then shares, so a PyTorch runner also changes the OpenMP default fastconv sees: run
them inside ``restore_torch_threads()``, as ``fastconv bench`` does.
"""

from collections.abc import Callable
from functools import cache

import numpy as np

from .shapes import resolve_padding

__all__ = ["PEERS", "available", "restore_torch_threads", "runners", "versions"]

#: Peer names, in table order.
PEERS = ("torch", "onnxruntime")

Runner = Callable[[], np.ndarray]


@cache
def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


@cache
def _onnx():
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def available(name: str) -> bool:
    """Whether peer ``name`` (``"torch"`` or ``"onnxruntime"``) can be imported.

    Examples
    --------
    >>> from fastconv._bench_peers import available
    >>> available("torch") in (True, False)
    True
    """
    return (_torch() if name == "torch" else _onnx()) is not None


def versions(peers: tuple[str, ...] = PEERS) -> dict[str, str]:
    """``{peer: version}`` of those of ``peers`` that are importable (imports them).

    Examples
    --------
    >>> from fastconv._bench_peers import versions
    >>> set(versions()) <= {"torch", "onnxruntime"}
    True
    >>> versions(())
    {}
    """
    out = {}
    if "torch" in peers and _torch() is not None:
        out["torch"] = _torch().__version__
    if "onnxruntime" in peers and _onnx() is not None:
        out["onnxruntime"] = _onnx().__version__
    return out


class restore_torch_threads:
    """Context manager: PyTorch's thread count is put back as it was on exit.

    Examples
    --------
    >>> from fastconv._bench_peers import restore_torch_threads
    >>> with restore_torch_threads():
    ...     pass
    """

    def __enter__(self):
        torch = _torch()
        self._saved = None if torch is None else torch.get_num_threads()
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            _torch().set_num_threads(self._saved)
        return False


def _pairs(layer, kernel) -> tuple[tuple[int, int], ...]:
    """The layer's padding as explicit (before, after) pairs."""
    dilation = getattr(layer, "dilation", 1)
    stride = layer.stride if layer.stride is not None else kernel
    if layer.kind == "conv_transpose":
        return tuple(resolve_padding(layer.padding, layer.spatial, kernel, stride, dilation,
                                     transposed=True, output_padding=layer.output_padding))
    return tuple(resolve_padding(layer.padding, layer.spatial, kernel, stride, dilation))


def _per_dim(value, ndim: int) -> list[int]:
    return list(value) if isinstance(value, (tuple, list)) else [int(value)] * ndim


# ---- PyTorch ---------------------------------------------------------------------------------
def _torch_runner(layer, x, w, b, threads: int) -> Runner | None:
    torch = _torch()
    if torch is None:
        return None
    F = torch.nn.functional
    nd = layer.ndim
    tx = torch.from_numpy(np.ascontiguousarray(x))
    tw = None if w is None else torch.from_numpy(np.ascontiguousarray(w))
    tb = None if b is None else torch.from_numpy(np.ascontiguousarray(b))
    if layer.kind in ("conv", "conv_transpose", "max", "avg"):
        kernel = layer.kernel
        pairs = _pairs(layer, kernel)
        if any(before != after for before, after in pairs):
            return None  # PyTorch pads symmetrically only
        padding = tuple(before for before, _ in pairs)
    if layer.kind == "conv":
        fn = getattr(F, f"conv{nd}d")

        def call():
            return fn(tx, tw, tb, stride=layer.stride, padding=padding,
                      dilation=layer.dilation, groups=layer.groups)
    elif layer.kind == "conv_transpose":
        fn = getattr(F, f"conv_transpose{nd}d")

        def call():
            return fn(tx, tw, tb, stride=layer.stride, padding=padding,
                      output_padding=layer.output_padding, groups=layer.groups,
                      dilation=layer.dilation)
    elif layer.kind in ("max", "avg"):
        if any(2 * p > k for p, k in zip(padding, layer.kernel)):
            return None  # PyTorch refuses pads beyond half the kernel
        fn = getattr(F, f"{layer.kind}_pool{nd}d")
        stride = layer.stride or layer.kernel

        def call():
            return fn(tx, layer.kernel, stride, padding)
    elif layer.kind in ("global_avg", "global_max", "adaptive_avg", "adaptive_max"):
        kind = "avg" if layer.kind.endswith("avg") else "max"
        fn = getattr(F, f"adaptive_{kind}_pool{nd}d")
        size = (1,) * nd if layer.kind.startswith("global") else layer.output_size

        def call():
            return fn(tx, size)
    else:
        return None

    def run() -> np.ndarray:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            return call().numpy()

    return run


# ---- ONNX Runtime ----------------------------------------------------------------------------
# The one-node models are written directly in ONNX's protobuf encoding (onnx.proto field
# numbers), so ONNX Runtime alone is enough: the ``onnx`` package is not needed.
_FLOAT, _DOUBLE = 1, 11  # TensorProto.DataType
_ATTR_INT, _ATTR_INTS = 2, 7  # AttributeProto.AttributeType


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # int64 fields: negative values are ten-byte two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value) -> bytes:
    """One protobuf field: an int (varint) or bytes / str (length-delimited)."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else bytes(value)
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _attribute(name: str, value) -> bytes:
    if isinstance(value, (list, tuple)):
        return _field(1, name) + b"".join(_field(8, int(v)) for v in value) \
            + _field(20, _ATTR_INTS)
    return _field(1, name) + _field(3, int(value)) + _field(20, _ATTR_INT)


def _tensor(name: str, array: np.ndarray, elem: int) -> bytes:
    return b"".join(_field(1, d) for d in array.shape) + _field(2, elem) + _field(8, name) \
        + _field(9, np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes())


def _value_info(name: str, elem: int, shape) -> bytes:
    tensor_type = _field(1, elem)
    if shape is not None:
        tensor_type += _field(2, b"".join(_field(1, _field(1, d)) for d in shape))
    return _field(1, name) + _field(2, _field(1, tensor_type))


def _onnx_model(op_type: str, x: np.ndarray, weights: list, attrs: dict) -> bytes:
    """A serialized ModelProto: Y = op_type(X, W0, W1, ...), the weights as initializers."""
    elem = _FLOAT if x.dtype == np.float32 else _DOUBLE
    w_names = [f"W{i}" for i in range(len(weights))]
    node = b"".join(_field(1, n) for n in ("X", *w_names)) + _field(2, "Y") \
        + _field(3, op_type) + _field(4, op_type) \
        + b"".join(_field(5, _attribute(k, v)) for k, v in attrs.items())
    graph = _field(1, node) + _field(2, f"fastconv_bench_{op_type}") \
        + b"".join(_field(5, _tensor(n, np.asarray(w, x.dtype), elem))
                   for w, n in zip(weights, w_names)) \
        + _field(11, _value_info("X", elem, x.shape)) + _field(12, _value_info("Y", elem, None))
    opset = _field(1, "") + _field(2, 17)
    return _field(1, 8) + _field(7, graph) + _field(8, opset)  # ir_version 8, opset 17


def _ort_session(op_type: str, x: np.ndarray, weights: list, attrs: dict,
                 threads: int) -> Runner:
    ort = _onnx()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(_onnx_model(op_type, x, weights, attrs), options,
                                   providers=["CPUExecutionProvider"])
    feed = {"X": np.ascontiguousarray(x)}
    return lambda: session.run(None, feed)[0]


def _ort_runner(layer, x, w, b, threads: int) -> Runner | None:
    if _onnx() is None:
        return None
    nd = layer.ndim
    if layer.kind in ("conv", "conv_transpose"):
        pairs = _pairs(layer, layer.kernel)
        attrs = dict(kernel_shape=list(layer.kernel), strides=_per_dim(layer.stride, nd),
                     dilations=_per_dim(layer.dilation, nd), group=layer.groups,
                     pads=[p[0] for p in pairs] + [p[1] for p in pairs])
        if layer.kind == "conv_transpose":
            attrs["output_padding"] = _per_dim(layer.output_padding, nd)
        weights = [w] + ([] if b is None else [b])
        op = "Conv" if layer.kind == "conv" else "ConvTranspose"
        return _ort_session(op, x, weights, attrs, threads)
    if layer.kind in ("global_avg", "global_max"):
        op = "GlobalAveragePool" if layer.kind == "global_avg" else "GlobalMaxPool"
        return _ort_session(op, x, [], {}, threads)
    if layer.kind in ("max", "avg"):
        kernel, stride = layer.kernel, layer.stride or layer.kernel
        pairs = _pairs(layer, kernel)
    elif layer.kind == "adaptive_avg":
        # ONNX has no adaptive pooling; when the bins are equal it is a plain average pool.
        if any(i % o for i, o in zip(layer.spatial, layer.output_size)):
            return None
        kernel = stride = tuple(i // o for i, o in zip(layer.spatial, layer.output_size))
        pairs = ((0, 0),) * nd
    else:
        return None
    attrs = dict(kernel_shape=list(kernel), strides=_per_dim(stride, nd),
                 pads=[p[0] for p in pairs] + [p[1] for p in pairs])
    if layer.kind == "max":
        op = "MaxPool"
    else:
        op, attrs["count_include_pad"] = "AveragePool", 1
    return _ort_session(op, x, [], attrs, threads)


def runners(layer, x: np.ndarray, w: np.ndarray | None, b: np.ndarray | None, threads: int,
            peers: tuple[str, ...] = PEERS) -> dict[str, Runner]:
    """``{peer: runner}`` computing ``layer`` on these arrays, for each peer that can.

    Parameters
    ----------
    layer : fastconv._suite.Conv, ConvTranspose or Pool
    x, w, b : numpy.ndarray
        Input, weight and bias (``w`` and ``b`` None for pools, ``b`` may be None).
    threads : int
        Threads each peer may use.
    peers : tuple of str
        Which peers to try, a subset of :data:`PEERS`.

    Returns
    -------
    dict of peer name -> no-argument callable returning the result as a NumPy array; peers
    that are not installed, or cannot express the layer (or dtype: ONNX Runtime's CPU ``Conv``
    is float32 only), are left out.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._bench_peers import runners
    >>> from fastconv._suite import Pool
    >>> from fastconv._bench_peers import restore_torch_threads
    >>> layer = Pool("p", "max", 2, (4, 4), (2, 2), 2)
    >>> x = np.arange(32, dtype=np.float32).reshape(layer.input_shape)
    >>> with restore_torch_threads():
    ...     results = [run() for run in runners(layer, x, None, None, 1).values()]
    >>> all(r[0, 0, 0].tolist() == [5.0, 7.0] for r in results)
    True
    """
    make = {"torch": _torch_runner, "onnxruntime": _ort_runner}
    out = {}
    for name in peers:
        try:
            run = make[name](layer, x, w, b, threads)
        except Exception:  # noqa: BLE001 - e.g. ONNX Runtime has no float64 Conv: skip it
            run = None
        if run is not None:
            out[name] = run
    return out
