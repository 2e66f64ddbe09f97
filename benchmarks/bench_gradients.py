"""Backward passes: fastconv.gradients vs PyTorch's ``torch.autograd.grad`` of the same forward.

float32, batch 1, the named layers of ``fastconv._suite`` (resnet18's 3x3 layers, resnet.stem,
resnet.down, resnet50.1x1, mobilenet.dw, dcgan's transposed convolution, the pools). Each side
computes the full backward: grad_input, grad_weight and grad_bias for the convolutions (only
grad_input for the pools). PyTorch's forward graph is built once and ``torch.autograd.grad(...,
retain_graph=True)`` times its backward alone; fastconv's max-pool backward is given the
forward's indices (what PyTorch keeps from its forward too).

One process, 1 and 2 threads (``torch.set_num_threads`` and ``threads=``). One thread: calls
interleaved round-robin (``timing.interleaved``), medians. Two threads: each contender in
blocks of calls after a pause (``fastconv._timing.blocked_samples``: libgomp's spinning workers
of one runtime would otherwise steal the second core of the other), 3 passes, medians.

    flock /tmp/cpu.lock python benchmarks/bench_gradients.py [NAME ...]   # prints the table
"""

import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from timing import interleaved  # noqa: E402

import fastconv  # noqa: E402
from fastconv import gradients as gr  # noqa: E402
from fastconv._suite import by_name  # noqa: E402
from fastconv._timing import blocked_samples  # noqa: E402

LAYERS = ("resnet18.conv2", "resnet18.conv3", "resnet18.conv4", "resnet18.conv5",
          "resnet.stem", "resnet.down", "resnet50.1x1", "mobilenet.dw", "dcgan",
          "resnet.maxpool", "vgg.maxpool", "avgpool", "adaptive_avg")
THREADS = (1, 2)


def _case(name: str, threads: int):
    """(fastconv callable, torch callable) of the full backward of layer ``name``."""
    import torch

    F = torch.nn.functional
    layer = by_name(name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.input_shape).astype(np.float32)
    tx = torch.tensor(x, requires_grad=True)
    if layer.kind in ("conv", "conv_transpose"):
        w = (rng.standard_normal(layer.weight_shape) * 0.1).astype(np.float32)
        transposed = layer.kind == "conv_transpose"
        b = rng.standard_normal(layer.c_out).astype(np.float32)
        tw, tb = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
        if transposed:
            ty = F.conv_transpose2d(tx, tw, tb, layer.stride, layer.padding)
            bwd = gr.conv_transpose2d_backward
        else:
            ty = F.conv2d(tx, tw, tb, layer.stride, layer.padding, 1, layer.groups)
            bwd = gr.conv2d_backward
        g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        tg = torch.tensor(g)
        if transposed:
            def ours():
                return bwd(g, x, w, layer.stride, layer.padding, threads=threads)
        else:
            def ours():
                return bwd(g, x, w, layer.stride, layer.padding, 1, layer.groups,
                           threads=threads)

        def theirs():
            return torch.autograd.grad(ty, (tx, tw, tb), tg, retain_graph=True)

        return ours, theirs
    if layer.kind == "adaptive_avg":
        ty = F.adaptive_avg_pool2d(tx, layer.output_size)
        g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)

        def ours():
            return gr.adaptive_avg_pool2d_backward(g, x, layer.output_size, threads=threads)
    elif layer.kind == "max":
        ty = F.max_pool2d(tx, layer.kernel, layer.stride, layer.padding)
        g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        _, idx = fastconv.max_pool2d(x, layer.kernel, layer.stride, layer.padding,
                                     return_indices=True)

        def ours():
            return gr.max_pool2d_backward(g, x.shape, layer.kernel, layer.stride,
                                          layer.padding, indices=idx, threads=threads)
    else:
        ty = F.avg_pool2d(tx, layer.kernel, layer.stride, layer.padding)
        g = rng.standard_normal(tuple(ty.shape)).astype(np.float32)

        def ours():
            return gr.avg_pool2d_backward(g, x.shape, layer.kernel, layer.stride,
                                          layer.padding, threads=threads)
    tg = torch.tensor(g)

    def theirs():
        return torch.autograd.grad(ty, (tx,), tg, retain_graph=True)

    return ours, theirs


def main(names) -> None:
    import torch

    print(f"fastconv {fastconv.__version__} ({fastconv.config()['isa']}) vs torch "
          f"{torch.__version__}: full backward, float32, batch 1, median ms")
    print(f"{'layer':<16} {'thr':>3} {'fastconv':>9} {'torch':>9} {'speed-up':>8}")
    for name in names:
        for threads in THREADS:
            torch.set_num_threads(threads)
            ours, theirs = _case(name, threads)
            contenders = {"fastconv": ours, "torch": theirs}
            if threads == 1:
                t = interleaved(contenders, repeats=15, warmup=3)
            else:
                samples = blocked_samples(contenders, repeats=15, warmup=3)
                t = {k: statistics.median(v) for k, v in samples.items()}
            print(f"{name:<16} {threads:>3} {t['fastconv'] * 1e3:9.3f} {t['torch'] * 1e3:9.3f} "
                  f"{t['torch'] / t['fastconv']:7.2f}x", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or LAYERS)
