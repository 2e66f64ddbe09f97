"""Peer runtimes timed next to fastconv: PyTorch and ONNX Runtime (each optional).

A peer that is not importable is reported as ``None`` so the benchmark skips it; neither is a
dependency of fastconv or of its tests.

- PyTorch: ``torch.nn.functional`` under ``torch.inference_mode``; threads via
  ``torch.set_num_threads`` (process-wide, so set per measurement).
- ONNX Runtime: a one-node model built with ``onnx.helper`` (weights as initializers, so ORT
  prepacks them when the session is created), ``intra_op_num_threads`` threads.
  :func:`ort_session` is generic: the pooling and transposed-convolution benchmarks reuse it.
"""

from collections.abc import Callable, Sequence

import numpy as np


def torch_module():
    """``torch`` if importable, else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def ort_modules():
    """``(onnx, onnxruntime)`` if both are importable, else None."""
    try:
        import onnx
        import onnxruntime
    except ImportError:
        return None
    return onnx, onnxruntime


def torch_version() -> str | None:
    torch = torch_module()
    return None if torch is None else torch.__version__


def ort_version() -> str | None:
    mods = ort_modules()
    return None if mods is None else mods[1].__version__


def torch_call(name: str, inputs: Sequence[np.ndarray], threads: int,
               **kwargs) -> Callable[[], object] | None:
    """``torch.nn.functional.<name>(*inputs, **kwargs)`` as a no-argument callable (or None).

    The arrays are converted to tensors once; the callable sets the thread count first.
    """
    torch = torch_module()
    if torch is None:
        return None
    fn = getattr(torch.nn.functional, name)
    tensors = [None if a is None else torch.from_numpy(np.ascontiguousarray(a)) for a in inputs]

    def run():
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            return fn(*tensors, **kwargs)

    return run


def torch_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride, padding,
               groups: int, threads: int) -> Callable[[], object] | None:
    """PyTorch's conv{1,2,3}d of these arrays as a callable (or None without PyTorch)."""
    name = f"conv{x.ndim - 2}d"
    return torch_call(name, (x, weight, bias), threads, stride=stride, padding=padding,
                      groups=groups)


def ort_session(op_type: str, input_shapes: Sequence[Sequence[int]],
                weights: Sequence[np.ndarray] = (), attrs: dict | None = None,
                threads: int = 1, dtype=np.float32, outputs: int = 1
                ) -> Callable[..., list] | None:
    """A one-node ONNX Runtime model of ``op_type``, as ``run(*inputs) -> list of outputs``.

    Node inputs are the runtime inputs ``X0, X1, ...`` (shapes ``input_shapes``) followed by the
    initializers ``W0, W1, ...`` (``weights``, baked into the model so ORT prepacks them);
    ``attrs`` are the node's attributes. None when onnx/onnxruntime are not installed.
    """
    mods = ort_modules()
    if mods is None:
        return None
    onnx, ort = mods
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT if np.dtype(dtype) == np.float32 else TensorProto.DOUBLE
    in_names = [f"X{i}" for i in range(len(input_shapes))]
    w_names = [f"W{i}" for i in range(len(weights))]
    out_names = [f"Y{i}" for i in range(outputs)]
    node = helper.make_node(op_type, in_names + w_names, out_names, **(attrs or {}))
    graph = helper.make_graph(
        [node], f"fastconv_bench_{op_type}",
        [helper.make_tensor_value_info(n, elem, list(s)) for n, s in zip(in_names, input_shapes)],
        [helper.make_tensor_value_info(n, elem, None) for n in out_names],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(w), name=n)
                     for w, n in zip(weights, w_names)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])

    def run(*inputs):
        return session.run(None, dict(zip(in_names, inputs)))

    return run


def ort_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, stride: int,
             padding: int, groups: int, threads: int) -> Callable[[], object] | None:
    """ONNX Runtime's Conv on ``x`` (weights prepacked) as a callable (or None)."""
    nd = x.ndim - 2
    attrs = dict(kernel_shape=list(weight.shape[2:]), strides=[stride] * nd,
                 pads=[padding] * (2 * nd), group=groups)
    weights = [weight] + ([] if bias is None else [bias])
    run = ort_session("Conv", [x.shape], weights, attrs, threads, dtype=x.dtype)
    if run is None:
        return None
    return lambda: run(x)
