"""Convolution speed on named real-network layers, against PyTorch and ONNX Runtime.

Two ways to run it:

- ``python -m pytest benchmarks/bench_conv.py --benchmark-only`` (pytest-benchmark), one test
  per layer, contender (fastconv function / fastconv layer object / torch / onnxruntime) and
  thread count;
- ``python benchmarks/bench_conv.py [--threads 1,2] [--layers resnet18.conv2,...] [--markdown]``:
  one table, every contender timed in the same run, interleaved (``benchmarks/timing.py``),
  medians.
  (With more than one thread each contender is timed in its own block instead: see table().)
  Columns: ms per call, GFLOP/s (``layer.flops() / time``; GB/s for depthwise), and the ratios
  ``torch / fastconv function`` and ``onnxruntime / fastconv layer`` (> 1: fastconv faster).

float32, NCHW, the shapes of ``benchmarks/layers.py`` (``CONV``).
"""

import argparse
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layers import CONV  # noqa: E402
from peers import ort_conv, ort_version, torch_conv, torch_version  # noqa: E402
from timing import interleaved  # noqa: E402

import fastconv  # noqa: E402

THREADS = (1, 2)


def _arrays(layer, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(layer.input_shape, dtype=np.float32)
    w = rng.standard_normal(layer.weight_shape, dtype=np.float32) * 0.1
    b = rng.standard_normal(layer.c_out, dtype=np.float32)
    return x, w, b


def _conv_function(ndim):
    return {1: fastconv.conv1d, 2: fastconv.conv2d, 3: fastconv.conv3d}[ndim]


def _conv_layer_class(ndim):
    return {1: fastconv.Conv1d, 2: fastconv.Conv2d, 3: fastconv.Conv3d}[ndim]


def contenders(layer, threads: int) -> dict:
    """name -> no-argument callable, for every contender available here."""
    x, w, b = _arrays(layer)
    nd = len(layer.spatial)
    fn = _conv_function(nd)
    conv_layer = _conv_layer_class(nd)(w, b, stride=layer.stride, padding=layer.padding,
                                       groups=layer.groups)
    out = {
        "fastconv": lambda: fn(x, w, b, stride=layer.stride, padding=layer.padding,
                               groups=layer.groups, threads=threads),
        "fastconv.layer": lambda: conv_layer(x, threads=threads),
    }
    t = torch_conv(x, w, b, layer.stride, layer.padding, layer.groups, threads)
    if t is not None:
        out["torch"] = t
    o = ort_conv(x, w, b, layer.stride, layer.padding, layer.groups, threads)
    if o is not None:
        out["onnxruntime"] = o
    return out


def _bytes(layer) -> int:
    """Bytes a memory-bound layer must move: input + output + weights, float32."""
    out_elems = layer.batch * layer.c_out * int(np.prod(layer.output_spatial()))
    return 4 * (int(np.prod(layer.input_shape)) + out_elems + int(np.prod(layer.weight_shape)))


# ---- pytest-benchmark --------------------------------------------------------------------
@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("who", ("fastconv", "fastconv.layer", "torch", "onnxruntime"))
@pytest.mark.parametrize("layer", CONV, ids=[layer.name for layer in CONV])
def test_conv(benchmark, layer, who, threads):
    fns = contenders(layer, threads)
    if who not in fns:
        pytest.skip(f"{who} is not installed")
    benchmark.extra_info.update(layer=layer.name, threads=threads, flops=layer.flops())
    benchmark(fns[who])


# ---- standalone table --------------------------------------------------------------------
def table(layers, threads_list, repeats: int = 11, min_time: float = 0.3) -> list[dict]:
    rows = []
    for threads in threads_list:
        for layer in layers:
            fns = contenders(layer, threads)
            if threads == 1:
                times = interleaved(fns, repeats=repeats, warmup=2, min_time=min_time)
            else:
                # Multi-threaded runtimes leave their worker threads spinning after a call
                # (libgomp in fastconv and in PyTorch, ORT's pool); interleaved, each one's
                # spinners steal the cores of the next contender (measured: 10-50x slowdowns
                # on 2 cores). So each contender gets its own block, after its own warm-up.
                times = {}
                for name, fn in fns.items():
                    times.update(interleaved({name: fn}, repeats=repeats, warmup=3,
                                             min_time=min_time))
            rows.append(dict(layer=layer, threads=threads, times=times))
            print(_format_row(rows[-1]), flush=True)
    return rows


def _format_row(row) -> str:
    layer, t = row["layer"], row["times"]
    f, lay = t["fastconv"], t["fastconv.layer"]
    depthwise = layer.groups > 1 and layer.groups == layer.c_in
    rate = (f"{_bytes(layer) / lay / 1e9:7.1f} GB/s" if depthwise
            else f"{layer.flops() / lay / 1e9:7.1f} GF/s")
    parts = [f"{layer.name:20s} {row['threads']}T", f"fn {f * 1e3:8.3f} ms",
             f"layer {lay * 1e3:8.3f} ms {rate}"]
    if "torch" in t:
        parts.append(f"torch {t['torch'] * 1e3:8.3f} ms  torch/fn {t['torch'] / f:5.2f}x")
    if "onnxruntime" in t:
        parts.append(f"ort {t['onnxruntime'] * 1e3:8.3f} ms  ort/layer "
                     f"{t['onnxruntime'] / lay:5.2f}x")
    return " | ".join(parts)


def markdown(rows) -> str:
    """The table as Markdown, one line per (layer, threads), for issue notes and reports."""
    lines = ["| layer | thr | fn ms | layer ms | layer rate | torch ms | torch/fn | ort ms | "
             "ort/layer |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        layer, t = row["layer"], row["times"]
        f, lay = t["fastconv"], t["fastconv.layer"]
        depthwise = layer.groups > 1 and layer.groups == layer.c_in
        rate = (f"{_bytes(layer) / lay / 1e9:.1f} GB/s" if depthwise
                else f"{layer.flops() / lay / 1e9:.0f} GF/s")
        torch = (f"{t['torch'] * 1e3:.3f} | {t['torch'] / f:.2f}x" if "torch" in t
                 else "- | -")
        ort = (f"{t['onnxruntime'] * 1e3:.3f} | {t['onnxruntime'] / lay:.2f}x"
               if "onnxruntime" in t else "- | -")
        lines.append(f"| {layer.name} | {row['threads']} | {f * 1e3:.3f} | {lay * 1e3:.3f} | "
                     f"{rate} | {torch} | {ort} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="fastconv convolution vs PyTorch and ONNX Runtime on named layers "
                    "(float32, batch 1 unless the layer says otherwise).",
        epilog="example: python benchmarks/bench_conv.py --threads 1,2 "
               "--layers resnet18.conv2,resnet.stem")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--layers", default="", help="comma-separated layer names (default: all)")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--markdown", action="store_true",
                        help="also print the table as Markdown at the end")
    args = parser.parse_args(argv)
    # Idle OpenMP workers sleep instead of spinning, so the runtimes in this one process
    # (fastconv's libgomp, PyTorch's) do not steal each other's cores. Read when libgomp
    # loads, i.e. at the first fastconv or torch call, after this line.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    threads_list = [int(t) for t in args.threads.split(",")]
    names = [n for n in args.layers.split(",") if n]
    layers = [layer for layer in CONV if not names or layer.name in names]
    print(f"fastconv {fastconv.__version__} isa={fastconv.config()['isa']} | torch "
          f"{torch_version()} | onnxruntime {ort_version()}")
    rows = table(layers, threads_list, repeats=args.repeats)
    if args.markdown:
        print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
