"""Winograd 3x3 convolution speed on the 3x3 stride-1 layers of issue 5, against PyTorch and ORT.

Two ways to run it:

- ``python -m pytest benchmarks/bench_winograd.py --benchmark-only`` (pytest-benchmark);
- ``python benchmarks/bench_winograd.py [--threads 1,2] [--layers resnet18.conv2,...]``: one
  table, every contender of a layer timed in the same run: with one thread interleaved wall
  medians ("wall" rows) and interleaved best CPU times ("cpu" rows, immune to preemption by
  the other processes of a shared machine: see :func:`cpu_interleaved`); with two threads one
  block of calls per contender (``timing.blocked_samples``), wall medians.

Contenders, float32:

- ``f2`` / ``f4`` / ``f6``: ``winograd_conv2d`` with weights prepared once (what a ``Conv2d``
  layer object does), tile fixed;
- ``fn``: weights transformed on every call (what the functional ``conv2d`` does), tile
  ``--fn-tile`` (default 4);
- ``direct`` / ``im2col`` / ``auto``: fastconv's ``Conv2d`` layer object with that algorithm
  (the non-Winograd kernels, for the auto-selection table; and what ``"auto"`` picks today);
- ``torch`` (``torch.nn.functional.conv2d``) and ``ort`` (ONNX Runtime, weights prepacked).

Columns: GFLOP/s of each contender (``layer.flops() / time``: direct-convolution flops, so a
Winograd rate can exceed the machine's peak) and the ratios ``ort / best tile``, ``ort / auto``
(the ``Conv2d`` layer object: the target of issue 5) and ``torch / fn`` (functional).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layers import by_name  # noqa: E402
from peers import ort_conv, ort_version, torch_conv, torch_version  # noqa: E402
from timing import interleaved  # noqa: E402

import fastconv  # noqa: E402
from fastconv import _winograd_plan as wp  # noqa: E402
from fastconv._timing import blocked_samples  # noqa: E402

#: The 3x3 stride-1 layers of issue 5 (benchmarks/layers.py).
LAYERS = ("resnet18.conv2", "resnet18.conv3", "vgg16.conv3_2", "resnet18.conv2.b8",
          "resnet18.conv3.b8", "resnet18.conv4", "vgg16.conv1_2", "resnet18.conv5")
THREADS = (1, 2)


def contenders(layer, threads: int, fn_tile: int = 4, peers: bool = True) -> dict:
    """name -> no-argument callable."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.input_shape, dtype=np.float32)
    w = rng.standard_normal(layer.weight_shape, dtype=np.float32) * 0.1
    b = rng.standard_normal(layer.c_out, dtype=np.float32)
    p = layer.padding if isinstance(layer.padding, int) else layer.padding[0]
    pads = ((p, p), (p, p))
    out = np.empty(layer.output_shape, np.float32)
    fns = {}
    for tile in wp.TILES:
        prepared = wp.prepare_weights(w, tile, np.float32)
        fns[f"f{tile}"] = (lambda pr=prepared:
                           wp.winograd_conv2d(x, pr, b, pads, threads, out=out))

    def per_call():
        prepared = wp.prepare_weights(w, fn_tile, np.float32, threads=threads)
        return wp.winograd_conv2d(x, prepared, b, pads, threads, out=out)

    fns["fn"] = per_call
    for algorithm in ("direct", "im2col", "auto"):
        layer_object = fastconv.Conv2d(w, b, padding=p, algorithm=algorithm)
        fns[algorithm] = (lambda lo=layer_object: lo(x, threads=threads, out=out))
    if peers:
        t = torch_conv(x, w, b, 1, p, 1, threads)
        if t is not None:
            fns["torch"] = t
        o = ort_conv(x, w, b, 1, p, 1, threads)
        if o is not None:
            fns["ort"] = o
    return fns


# ---- pytest-benchmark --------------------------------------------------------------------
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("who", ("f2", "f4", "f6", "fn", "direct", "im2col", "auto", "torch",
                                 "ort"))
@pytest.mark.parametrize("name", LAYERS)
def test_winograd(benchmark, name, who, threads):
    layer = by_name(name)
    fns = contenders(layer, threads)
    if who not in fns:
        pytest.skip(f"{who} is not installed")
    benchmark.extra_info.update(layer=name, threads=threads, flops=layer.flops())
    benchmark(fns[who])


# ---- standalone table --------------------------------------------------------------------
def cpu_interleaved(contenders: dict, repeats: int, max_time: float) -> dict[str, float]:
    """Best CPU seconds (``time.thread_time``) per call, interleaved as ``timing.interleaved``.

    One thread only: fastconv (nthreads == 1 opens no OpenMP region), PyTorch and ONNX Runtime
    (one intra-op thread) then all compute on the calling thread, so its CPU time is the cost
    of the call even while other processes preempt it (on this shared 2-core machine the wall
    clock of a call is often 2x its CPU time). Minimum, not median: preemption only adds.
    """
    best = {name: float("inf") for name in contenders}
    begin = time.perf_counter()
    for rounds in range(repeats):
        for name, fn in contenders.items():
            start = time.thread_time()
            fn()
            best[name] = min(best[name], time.thread_time() - start)
        if time.perf_counter() - begin > max_time and rounds >= 2:
            break
    return best


def measure(layer, threads: int, repeats: int, fn_tile: int, max_time: float):
    """(wall medians, CPU minima or None) of every contender, seconds per call.

    Two threads: each contender in its own block (``timing.blocked_samples``: the runtimes'
    spinning workers would steal each other's cores if interleaved call by call).
    """
    fns = contenders(layer, threads, fn_tile)
    if threads == 1:
        wall = interleaved(fns, repeats=repeats, warmup=2, max_time=max_time / 2)
        return wall, cpu_interleaved(fns, repeats, max_time / 2)
    samples = blocked_samples(fns, repeats=repeats, warmup=3, max_time=max_time)
    return {k: statistics.median(v) for k, v in samples.items()}, None


def format_row(layer, threads: int, t: dict, clock: str) -> str:
    rate = {k: layer.flops() / v / 1e9 for k, v in t.items()}
    best = min(("f2", "f4", "f6"), key=t.get)
    parts = [f"{layer.name:18s} {threads}T {clock:4s}"]
    parts += [f"{k} {rate[k]:5.0f}" for k in t]
    parts.append(f"best {best}")
    if "ort" in t:
        parts.append(f"ort/{best} {t['ort'] / t[best]:5.2f}x")
        if "auto" in t:  # the Conv2d layer object: issue 5's target
            parts.append(f"ort/auto {t['ort'] / t['auto']:5.2f}x")
    if "torch" in t:
        parts.append(f"torch/fn {t['torch'] / t['fn']:5.2f}x")
    return " | ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--layers", default=",".join(LAYERS), help="comma-separated names")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--fn-tile", type=int, default=4, choices=wp.TILES)
    parser.add_argument("--max-time", type=float, default=6.0, help="seconds per layer")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_conv.main
    print(f"fastconv {fastconv.__version__} isa={fastconv.config()['isa']} | torch "
          f"{torch_version()} | onnxruntime {ort_version()} | GFLOP/s (direct-conv flops)")
    for threads in (int(t) for t in args.threads.split(",")):
        for name in args.layers.split(","):
            layer = by_name(name)
            wall, cpu = measure(layer, threads, args.repeats, args.fn_tile, args.max_time)
            print(format_row(layer, threads, wall, "wall"), flush=True)
            if cpu is not None:
                print(format_row(layer, threads, cpu, "cpu"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
