"""Transposed convolution: fastconv (layer object and functional call) vs PyTorch and ONNX Runtime.

The ``CONV_TRANSPOSE`` shapes of ``benchmarks/layers.py`` (issue 7's table), float32, 1 and 2
threads, every contender timed in the same run, round-robin. GFLOP/s = ``layer.flops() / t``
(2 * N * C_in * (C_out / g) * prod(kernel) * prod(input spatial)); ratios > 1: fastconv faster
(targets: ``torch / function >= 1.5``, ``onnxruntime / layer >= 1.2``). Peers that are not
installed are skipped.

    python benchmarks/bench_conv_transpose.py [--threads 1,2] [--layers dcgan,unet] [--rounds 9]
                                              [--stat median|block-min]
    python -m pytest benchmarks/bench_conv_transpose.py --benchmark-only   # fastconv only

Timing on a shared machine: the contenders take turns in blocks of a few calls (round-robin, so
load drift hits them all alike) and the first call of each block is dropped: it is the one that
meets the previous contender's idle worker threads still spinning. ``OMP_WAIT_POLICY`` defaults
to ``PASSIVE`` here (idle OpenMP workers of fastconv's and PyTorch's libgomp sleep instead of
spinning; on a loaded machine a spinning waiter holds the core its late team-mate needs, and a
call then waits for the next scheduler tick); set it in the environment to measure another
policy. The policy in effect is printed with the table.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layers import CONV_TRANSPOSE, ConvTranspose  # noqa: E402
from peers import ort_session, ort_version, torch_call, torch_version  # noqa: E402
from timing import blocked_samples  # noqa: E402

import fastconv  # noqa: E402

THREADS = (1, 2)


def _data(layer: ConvTranspose, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(layer.input_shape).astype(np.float32)
    w = (rng.standard_normal(layer.weight_shape) * 0.1).astype(np.float32)
    b = rng.standard_normal(layer.c_out).astype(np.float32)
    return x, w, b


def contenders(layer: ConvTranspose, threads: int) -> dict:
    """name -> no-argument callable, for every contender available here."""
    x, w, b = _data(layer)
    nd = len(layer.spatial)
    obj = getattr(fastconv, f"ConvTranspose{nd}d")(w, b, layer.stride, layer.padding,
                                                   groups=layer.groups)
    fn = getattr(fastconv, f"conv_transpose{nd}d")
    out = {
        "fastconv.layer": lambda: obj(x, threads=threads),
        "fastconv.func": lambda: fn(x, w, b, layer.stride, layer.padding, groups=layer.groups,
                                    threads=threads),
    }
    t = torch_call(f"conv_transpose{nd}d", (x, w, b), threads, stride=layer.stride,
                   padding=layer.padding, groups=layer.groups)
    if t is not None:
        out["torch"] = t
    attrs = dict(kernel_shape=list(layer.kernel), strides=[layer.stride] * nd,
                 pads=[layer.padding] * (2 * nd), group=layer.groups)
    run = ort_session("ConvTranspose", [x.shape], [w, b], attrs, threads)
    if run is not None:
        out["onnxruntime"] = lambda: run(x)[0]
    return out


def _check(layer: ConvTranspose, fns: dict) -> None:
    """Every contender must compute the same thing (else the timing means nothing)."""
    reference = np.asarray(fns["fastconv.layer"]())
    for name, fn in fns.items():
        got = np.asarray(fn())
        err = np.max(np.abs(got - reference)) / max(np.max(np.abs(reference)), 1e-30)
        if not err < 1e-4:
            raise AssertionError(f"{name} disagrees with fastconv on {layer.name}: {err:.2e}")


def round_robin(fns: dict, rounds: int = 9, block: int = 4, min_time: float = 0.1,
                stat: str = "median") -> dict:
    """Seconds per call of each contender: after a warm-up round, ``rounds`` turns of ``block``
    calls each (more rounds until the fastest has run ``min_time``), the first call of a block
    dropped. ``stat``: ``"median"`` of every call, or ``"block-min"``, the median over the
    turns of each turn's fastest call (a call preempted by another process for a scheduler
    slice, 4-12 ms on a loaded machine, then counts only if every call of its turn was)."""
    calls: dict = {name: [] for name in fns}
    for fn in fns.values():  # warm-up round: first-touch allocations, peers' lazy set-up
        for _ in range(block):
            fn()
    done = 0
    while done < rounds or (min(sum(map(sum, t)) for t in calls.values()) < min_time
                            and done < 10 * rounds):
        names = list(fns)
        names = names[done % len(names):] + names[:done % len(names)]
        for name in names:
            turn = []
            for i in range(block):
                start = time.perf_counter()
                fns[name]()
                if i:
                    turn.append(time.perf_counter() - start)
            calls[name].append(turn)
        done += 1
    if stat == "block-min":
        return {name: statistics.median(min(t) for t in turns) for name, turns in calls.items()}
    return {name: statistics.median(x for t in turns for x in t) for name, turns in calls.items()}


def measure(layer: ConvTranspose, threads: int, rounds: int = 9, stat: str = "median") -> dict:
    """Seconds per call of each contender. One thread: :func:`round_robin`. More: each
    contender in its own blocks after a pause (``timing.blocked_samples``), since a runtime's
    idle workers keep spinning after its call (ONNX Runtime's for ~40 ms) and would hold the
    cores of whoever runs next."""
    fns = contenders(layer, threads)
    _check(layer, fns)
    if threads == 1:
        return round_robin(fns, rounds, stat=stat)
    samples = blocked_samples(fns, repeats=4 * rounds, warmup=3, min_time=0.1)
    return {name: statistics.median(t) for name, t in samples.items()}


def _row(layer: ConvTranspose, threads: int, t: dict) -> str:
    lay, fun = t["fastconv.layer"], t["fastconv.func"]
    torch_t, ort_t = t.get("torch"), t.get("onnxruntime")
    nan = float("nan")
    nd = len(layer.spatial)
    algo = getattr(fastconv, f"ConvTranspose{nd}d")(
        np.zeros(layer.weight_shape, np.float32), None, layer.stride, layer.padding,
        groups=layer.groups).algorithm_for(layer.input_shape)
    return (f"{layer.name:<17} {threads:>3} {algo:>5} {lay * 1e3:>9.3f} {fun * 1e3:>8.3f} "
            f"{layer.flops() / lay / 1e9:>8.1f} {torch_t * 1e3 if torch_t else nan:>9.3f} "
            f"{ort_t * 1e3 if ort_t else nan:>8.3f} {torch_t / fun if torch_t else nan:>9.2f}x "
            f"{ort_t / lay if ort_t else nan:>8.2f}x")


HEADER = (f"{'case':<17} {'thr':>3} {'algo':>5} {'layer ms':>9} {'func ms':>8} {'GFLOP/s':>8} "
          f"{'torch ms':>9} {'ort ms':>8} {'torch/func':>10} {'ort/layer':>9}")


def table(layers=CONV_TRANSPOSE, threads_list=THREADS, rounds: int = 9,
          stat: str = "median") -> None:
    """Prints issue 7's table, one row per case and thread count, as it is measured."""
    print(f"fastconv {fastconv.__version__} isa={fastconv.config()['isa']} | torch "
          f"{torch_version()} | onnxruntime {ort_version()} | OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')} | times: {stat}")
    print(HEADER)
    print("-" * len(HEADER))
    for layer in layers:
        for threads in threads_list:
            print(_row(layer, threads, measure(layer, threads, rounds, stat)), flush=True)
    print("GFLOP/s of the layer object; ratios > 1: fastconv faster "
          "(targets: torch/func >= 1.5, ort/layer >= 1.2)")


# ---- pytest-benchmark (fastconv only; the peers are compared in the table) ----
try:
    import pytest
except ImportError:  # standalone use without pytest
    pytest = None

if pytest is not None:
    @pytest.mark.parametrize("threads", THREADS)
    @pytest.mark.parametrize("who", ("fastconv.layer", "fastconv.func"))
    @pytest.mark.parametrize("layer", CONV_TRANSPOSE, ids=lambda c: c.name)
    def test_conv_transpose(benchmark, layer, who, threads):
        call = contenders(layer, threads)[who]
        benchmark.extra_info.update(layer=layer.name, threads=threads, flops=layer.flops())
        benchmark(call)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="fastconv transposed convolution vs PyTorch and ONNX Runtime (issue 7).")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--layers", default="", help="comma-separated case names (default: all)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--stat", choices=("median", "block-min"), default="median",
                        help="median of all calls, or median of each turn's fastest call")
    args = parser.parse_args(argv)
    # Read by each libgomp (fastconv's, PyTorch's) when it loads: after this line.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    names = [n for n in args.layers.split(",") if n]
    layers = [layer for layer in CONV_TRANSPOSE if not names or layer.name in names]
    table(layers, [int(t) for t in args.threads.split(",")], args.rounds, args.stat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
