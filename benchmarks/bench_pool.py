"""Pooling: fastconv vs ONNX Runtime vs PyTorch on the ``POOL`` shapes of ``benchmarks/layers.py``.

float32, 1 and 2 threads, medians. One thread: timed round-robin (``timing.interleaved``). Two
threads: each contender in its own blocks of calls (``timing.blocked_samples``, 3 passes), and
each block starts SETTLE seconds after the previous one: ONNX Runtime's pool threads spin for
20-40 ms after a run (measured here: 38 ms of CPU within 100 ms of one call), so with calls
interleaved one by one the next contender always found its second core taken (fastconv's 2
threads then ran as fast as 1, and ORT's own workers were always warm).
GB/s = (input bytes + output bytes) / time. The machine's streaming-read bandwidth is measured
in the same interleaved rounds as the larger-than-cache case (``maxpool.large``, 64x448x448):
a global average pool over a 256 MiB array (one pass of vector loads) and a NumPy copy for
comparison; the fraction of the read bandwidth reached on that case is printed. Peers that
are not installed are skipped.

    python benchmarks/bench_pool.py            # prints the table
    python -m pytest benchmarks/bench_pool.py  # pytest-benchmark, fastconv only
"""

import os
import statistics
import sys
import time
from math import prod

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layers import POOL, Pool  # noqa: E402
from timing import interleaved  # noqa: E402

import fastconv  # noqa: E402
from fastconv._timing import blocked_samples  # noqa: E402

THREADS = (1, 2)
STREAM_BYTES = 256 << 20
LARGE = "maxpool.large"  # the larger-than-cache case
SETTLE = 0.1  # seconds before each block of multi-threaded calls (see the module docstring)


def _data(layer: Pool, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(layer.input_shape).astype(np.float32)


def _window(layer: Pool):
    """(kernel, stride, padding) of a windowed case; adaptive_avg as its equal-bins pool."""
    if layer.kind == "adaptive_avg":
        k = tuple(i // o for i, o in zip(layer.spatial, layer.output_size))
        return k, k, 0
    return layer.kernel, layer.stride or layer.kernel, layer.padding


def _fastconv(layer: Pool, x: np.ndarray, threads: int):
    nd = len(layer.spatial)
    if layer.kind == "max":
        fn = getattr(fastconv, f"max_pool{nd}d")
        return lambda: fn(x, layer.kernel, layer.stride, layer.padding, threads=threads)
    if layer.kind == "avg":
        fn = getattr(fastconv, f"avg_pool{nd}d")
        return lambda: fn(x, layer.kernel, layer.stride, layer.padding, threads=threads)
    if layer.kind == "global_avg":
        return lambda: fastconv.global_avg_pool(x, threads=threads)
    if layer.kind == "global_max":
        return lambda: fastconv.global_max_pool(x, threads=threads)
    fn = getattr(fastconv, f"adaptive_avg_pool{nd}d")
    return lambda: fn(x, layer.output_size, threads=threads)


def _torch(layer: Pool, x: np.ndarray, threads: int):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    nd = len(layer.spatial)
    tx = torch.from_numpy(x)
    if layer.kind == "max":
        fn = getattr(F, f"max_pool{nd}d")

        def op():
            return fn(tx, layer.kernel, layer.stride, layer.padding)
    elif layer.kind == "avg":
        fn = getattr(F, f"avg_pool{nd}d")

        def op():
            return fn(tx, layer.kernel, layer.stride, layer.padding)
    elif layer.kind == "global_avg":
        def op():
            return tx.mean(dim=tuple(range(2, 2 + nd)), keepdim=True)
    elif layer.kind == "global_max":
        def op():
            return tx.amax(dim=tuple(range(2, 2 + nd)), keepdim=True)
    else:
        fn = getattr(F, f"adaptive_avg_pool{nd}d")

        def op():
            return fn(tx, layer.output_size)

    def call():
        torch.set_num_threads(threads)
        with torch.no_grad():
            return op().numpy()

    return call


def _ort_node(layer: Pool) -> tuple[str, dict]:
    """The one ONNX node of a case: MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool."""
    nd = len(layer.spatial)
    if layer.kind.startswith("global"):
        return ("GlobalAveragePool" if layer.kind == "global_avg" else "GlobalMaxPool"), {}
    k, s, p = _window(layer)
    strides = list(s) if isinstance(s, tuple) else [s] * nd
    op = "MaxPool" if layer.kind == "max" else "AveragePool"
    return op, dict(kernel_shape=list(k), strides=strides, pads=[p] * (2 * nd))


def _ort(layer: Pool, x: np.ndarray, threads: int):
    op, attrs = _ort_node(layer)
    try:  # the shared helper of the benchmarks
        from peers import ort_session
    except ImportError:
        ort_session = _local_ort_session
    run = ort_session(op, [x.shape], attrs=attrs, threads=threads)
    if run is None:
        return None
    return lambda: run(x)[0]


def _local_ort_session(op_type: str, input_shapes, attrs: dict, threads: int):
    """A one-node ONNX Runtime model (used when benchmarks/peers.py is absent)."""
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    node = helper.make_node(op_type, ["x"], ["y"], **attrs)
    graph = helper.make_graph(
        [node], "pool",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shapes[0]))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model.SerializeToString(), opts,
                                   providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"x": x})


def _bytes(layer: Pool, x: np.ndarray, y: np.ndarray) -> int:
    return x.nbytes + y.nbytes


def stream_contenders(threads: int) -> tuple[dict, dict[str, int]]:
    """Streaming-bandwidth probes, timed in the same rounds as the larger-than-cache case (a
    busy shared machine then slows both alike): a vector-load read pass over 256 MiB (a global
    average pool) and a NumPy copy. Returns the callables and the bytes each one moves."""
    big = np.ones((64, STREAM_BYTES // 4 // 64), np.float32)[:, None, :]
    dst = np.empty_like(big)
    calls = {"stream_read": lambda: fastconv.global_avg_pool(big, threads=threads),
             "numpy_copy": lambda: np.copyto(dst, big)}
    return calls, {"stream_read": big.nbytes, "numpy_copy": 2 * big.nbytes}


def settled(contenders: dict) -> dict:
    """The contenders, each sleeping SETTLE seconds before its first call after another's (the
    first, untimed warm-up call of each block), so no runtime's spinning threads remain."""
    last = [None]

    def wrap(name, fn):
        def call():
            if last[0] != name:
                last[0] = name
                time.sleep(SETTLE)
            return fn()
        return call

    return {name: wrap(name, fn) for name, fn in contenders.items()}


def timed(contenders: dict, threads: int, repeats: int) -> dict[str, float]:
    """Median seconds per call: round-robin at one thread, settled blocks at more."""
    if threads == 1:
        return interleaved(contenders, repeats=repeats, min_time=0.2)
    samples = blocked_samples(settled(contenders), repeats=repeats, warmup=2, passes=3,
                              min_time=0.2)
    return {name: statistics.median(t) for name, t in samples.items()}


def run(layers=POOL, threads_list=THREADS, repeats: int = 15) -> list[dict]:
    rows = []
    for threads in threads_list:
        for layer in layers:
            x = _data(layer)
            contenders = {"fastconv": _fastconv(layer, x, threads)}
            for name, make in (("onnxruntime", _ort), ("torch", _torch)):
                fn = make(layer, x, threads)
                if fn is not None:
                    contenders[name] = fn
            y = contenders["fastconv"]()
            ref = contenders.get("onnxruntime", contenders["fastconv"])()
            np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=1e-5, atol=1e-5)
            probes, probe_bytes = ({}, {})
            if layer.name == LARGE:
                probes, probe_bytes = stream_contenders(threads)
            times = timed({**contenders, **probes}, threads, repeats)
            nbytes = _bytes(layer, x, y)
            row = {"case": layer.name, "shape": "x".join(map(str, layer.input_shape)),
                   "threads": threads}
            for name, t in times.items():
                row[f"{name}_ms"] = t * 1e3
                row[f"{name}_GBps"] = probe_bytes.get(name, nbytes) / t / 1e9
            rows.append(row)
    return rows


def _table(rows: list[dict]) -> str:
    head = (f"{'case':<16} {'input':<14} {'thr':>3} {'fastconv ms':>11} {'GB/s':>6} "
            f"{'ORT ms':>8} {'ORT/fc':>6} {'torch ms':>9} {'torch/fc':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ort_ms, torch_ms = r.get("onnxruntime_ms"), r.get("torch_ms")
        lines.append(
            f"{r['case']:<16} {r['shape']:<14} {r['threads']:>3} {r['fastconv_ms']:>11.3f} "
            f"{r['fastconv_GBps']:>6.1f} "
            + (f"{ort_ms:>8.3f} {ort_ms / r['fastconv_ms']:>6.2f} " if ort_ms else f"{'-':>8} "
               f"{'-':>6} ")
            + (f"{torch_ms:>9.3f} {torch_ms / r['fastconv_ms']:>8.2f}" if torch_ms else
               f"{'-':>9} {'-':>8}"))
    for r in rows:
        if "stream_read_GBps" in r:
            lines.append(
                f"threads={r['threads']}: stream read {r['stream_read_GBps']:.1f} GB/s, NumPy "
                f"copy {r['numpy_copy_GBps']:.1f} GB/s (same rounds); {r['case']} reaches "
                f"{r['fastconv_GBps']:.1f} GB/s = "
                f"{r['fastconv_GBps'] / r['stream_read_GBps']:.0%} of stream read")
    return "\n".join(lines)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("layer", POOL, ids=[layer.name for layer in POOL])
def test_pool_fastconv(benchmark, layer, threads):
    x = _data(layer)
    fn = _fastconv(layer, x, threads)
    y = benchmark(fn)
    if benchmark.stats:  # None under --benchmark-disable
        benchmark.extra_info["GBps"] = _bytes(layer, x, y) / benchmark.stats["median"] / 1e9
    assert y.shape == _fastconv(layer, x, 1)().shape and y.size == prod(y.shape)


if __name__ == "__main__":
    print(f"fastconv {fastconv.__version__}, isa {fastconv.config()['isa']}")
    print(_table(run()))
