"""Transposed convolution: fastconv (layer object and functional call) vs PyTorch and ONNX Runtime.

The ``CONV_TRANSPOSE`` shapes of ``benchmarks/layers.py``, float32, 1 and 2 threads, timed
round-robin in the same run (``timing.interleaved``: medians). GFLOP/s = ``layer.flops() / t``
(2 * N * C_in * (C_out / g) * prod(kernel) * prod(input spatial)). Peers that are not
installed are skipped.

    python benchmarks/bench_conv_transpose.py            # prints the table
    python -m pytest benchmarks/bench_conv_transpose.py  # pytest-benchmark, fastconv only
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layers import CONV_TRANSPOSE, ConvTranspose  # noqa: E402
from timing import interleaved  # noqa: E402

import fastconv  # noqa: E402

THREADS = (1, 2)


def _data(layer: ConvTranspose, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(layer.input_shape).astype(np.float32)
    w = (rng.standard_normal(layer.weight_shape) * 0.1).astype(np.float32)
    b = rng.standard_normal(layer.c_out).astype(np.float32)
    return x, w, b


def _fastconv(layer: ConvTranspose, x, w, b, threads: int):
    nd = len(layer.spatial)
    obj = getattr(fastconv, f"ConvTranspose{nd}d")(w, b, layer.stride, layer.padding,
                                                   groups=layer.groups)
    fn = getattr(fastconv, f"conv_transpose{nd}d")
    return {
        "fastconv.layer": lambda: obj(x, threads=threads),
        "fastconv.func": lambda: fn(x, w, b, layer.stride, layer.padding, groups=layer.groups,
                                    threads=threads),
    }


def _torch(layer: ConvTranspose, x, w, b, threads: int):
    try:
        import torch
    except ImportError:
        return {}
    nd = len(layer.spatial)
    fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

    def call():
        torch.set_num_threads(threads)
        with torch.no_grad():
            return fn(tx, tw, tb, stride=layer.stride, padding=layer.padding,
                      groups=layer.groups).numpy()

    return {"torch": call}


def _ort_session(layer: ConvTranspose, w, b, threads: int):
    """A one-node ONNX ConvTranspose model with its weights as initializers."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nd = len(layer.spatial)
    node = helper.make_node(
        "ConvTranspose", ["x", "w", "b"], ["y"], strides=[layer.stride] * nd,
        pads=[layer.padding] * (2 * nd), kernel_shape=list(layer.kernel), group=layer.groups)
    graph = helper.make_graph(
        [node], "convt",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(layer.input_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                       [layer.batch, layer.c_out] + [None] * nd)],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    onnx.checker.check_model(model)
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def _onnxruntime(layer: ConvTranspose, x, w, b, threads: int):
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return {}
    try:
        from peers import ort_session  # the shared helper, when it exists
    except ImportError:
        ort_session = None
    session = None
    if ort_session is not None:
        try:
            session = ort_session("ConvTranspose", layer, w, b, threads=threads)
        except TypeError:
            session = None
    if session is None:
        session = _ort_session(layer, w, b, threads)
    name = session.get_inputs()[0].name
    return {"onnxruntime": lambda: session.run(None, {name: x})[0]}


def measure(layer: ConvTranspose, threads: int, repeats: int = 15) -> dict[str, float]:
    """Median seconds per call of every contender on ``layer`` with ``threads`` threads."""
    x, w, b = _data(layer)
    contenders = {**_fastconv(layer, x, w, b, threads), **_torch(layer, x, w, b, threads),
                  **_onnxruntime(layer, x, w, b, threads)}
    reference = contenders["fastconv.layer"]()
    for name, fn in contenders.items():  # every contender must compute the same thing
        got = np.asarray(fn())
        err = np.max(np.abs(got - reference)) / max(np.max(np.abs(reference)), 1e-30)
        if not err < 1e-4:
            raise AssertionError(f"{name} disagrees with fastconv on {layer.name}: {err:.2e}")
    return interleaved(contenders, repeats=repeats, min_time=0.2)


def table(repeats: int = 15) -> str:
    """The benchmark table: ms, GFLOP/s and ratios to the peers, per case and thread count."""
    head = (f"{'case':<18} {'thr':>3} {'layer ms':>9} {'func ms':>8} {'GFLOP/s':>8} "
            f"{'torch ms':>9} {'ort ms':>8} {'func/torch':>10} {'layer/ort':>9}")
    lines = [head, "-" * len(head)]
    for layer in CONV_TRANSPOSE:
        for threads in THREADS:
            t = measure(layer, threads, repeats)
            lay, fun = t["fastconv.layer"], t["fastconv.func"]
            torch_t, ort_t = t.get("torch"), t.get("onnxruntime")
            lines.append(
                f"{layer.name:<18} {threads:>3} {lay * 1e3:>9.3f} {fun * 1e3:>8.3f} "
                f"{layer.flops() / lay / 1e9:>8.1f} "
                f"{torch_t * 1e3 if torch_t else float('nan'):>9.3f} "
                f"{ort_t * 1e3 if ort_t else float('nan'):>8.3f} "
                f"{torch_t / fun if torch_t else float('nan'):>9.2f}x "
                f"{ort_t / lay if ort_t else float('nan'):>8.2f}x")
    lines.append("ratios > 1: fastconv faster (targets: func/torch >= 1.5, layer/ort >= 1.2)")
    return "\n".join(lines)


# ---- pytest-benchmark (fastconv only; the peers are compared in the table) ----
try:
    import pytest
except ImportError:  # standalone use without pytest
    pytest = None

if pytest is not None:
    @pytest.mark.parametrize("threads", THREADS)
    @pytest.mark.parametrize("layer", CONV_TRANSPOSE, ids=lambda c: c.name)
    def test_conv_transpose_layer(benchmark, layer, threads):
        x, w, b = _data(layer)
        call = _fastconv(layer, x, w, b, threads)["fastconv.layer"]
        benchmark.extra_info["gflops"] = layer.flops() / 1e9
        benchmark(call)

    @pytest.mark.parametrize("threads", THREADS)
    @pytest.mark.parametrize("layer", CONV_TRANSPOSE, ids=lambda c: c.name)
    def test_conv_transpose_functional(benchmark, layer, threads):
        x, w, b = _data(layer)
        call = _fastconv(layer, x, w, b, threads)["fastconv.func"]
        benchmark.extra_info["gflops"] = layer.flops() / 1e9
        benchmark(call)


if __name__ == "__main__":
    print(table())
