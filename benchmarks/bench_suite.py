"""Every layer of ``fastconv bench``'s catalogue under pytest-benchmark: one test per layer,
contender (the functional call, one layer object per algorithm that can serve the layer, each
installed peer) and thread count.

    python -m pytest benchmarks/bench_suite.py --benchmark-only                  # everything
    python -m pytest benchmarks/bench_suite.py --benchmark-only -k "resnet18 and 1T"

The layers, contenders and peers are exactly those of ``fastconv bench`` (``fastconv._suite``,
``fastconv._bench_cli``, ``fastconv._bench_peers``); each result is checked against the float64
reference before it is timed, like there. ``extra_info`` carries the flops / bytes, so
``--benchmark-json`` output converts to GFLOP/s and GB/s.
"""

from functools import cache

import numpy as np
import pytest

from fastconv import _bench_cli, _bench_peers, _suite
from fastconv._bench_reference import reference, relative_error

THREADS = (1, 2)
LAYERS = _suite.suite("all")


@cache
def _arrays(name: str):
    layer = _suite.by_name(name)
    x, w, b = _bench_cli._arrays(layer, "float32")
    return x, w, b


@cache
def _expected(name: str):
    return reference(_suite.by_name(name), *_arrays(name))


@cache
def _contenders(name: str, threads: int) -> dict:
    """who -> Contender, for the fastconv calls and the installed peers (built once)."""
    layer = _suite.by_name(name)
    x, w, b = _arrays(name)
    found = {c.name.split("[")[-1].rstrip("]") if "[" in c.name else "function": c
             for c in _bench_cli._fastconv_contenders(layer, x, w, b, threads, set())}
    for who, run in _bench_peers.runners(layer, x, w, b, threads).items():
        found[who] = _bench_cli.Contender(who, run, who, peer=True)
    return found


WHO = ("function", "direct", "im2col", "winograd_f2", "winograd_f4", "winograd_f6", "gemm",
       "phase", "torch", "onnxruntime")


@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}T")
@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("layer", LAYERS, ids=[layer.name for layer in LAYERS])
def test_layer(benchmark, layer, who, threads):
    found = _contenders(layer.name, threads)
    if who not in found:
        pytest.skip(f"{who} cannot serve {layer.name} here (or is not installed)")
    contender = found[who]
    error = relative_error(np.asarray(contender.run()), _expected(layer.name))
    if not contender.peer:
        assert error <= _bench_cli._tolerance("float32", contender.algorithm), error
    benchmark.extra_info.update(layer=layer.name, threads=threads, flops=layer.flops(),
                                bytes=layer.bytes(), error=error)
    with _bench_peers.restore_torch_threads():
        benchmark(contender.run)
