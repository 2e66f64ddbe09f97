"""Whole torchvision models: fastconv.onnx against ONNX Runtime, end to end.

Needs torch, torchvision (random weights: nothing is downloaded) and onnxruntime::

    pip install torch==2.13.0 onnxruntime && pip install --no-deps torchvision==0.28.0
    fastconv bench --suite models --threads 1,2
    python benchmarks/bench_models.py --models resnet18 mobilenet_v2 --profile

Each model is exported once with ``torch.onnx.export`` (opset 17, batch 1) into ``--dir``; both
runtimes load the same file; ONNX Runtime runs with ``ORT_ENABLE_ALL`` and the same thread
count. Timing: ``fastconv._timing.blocked_samples`` (rounds of blocks, each after a pause so
that neither runtime's spinning workers steal the other's cores), medians. The table gives
the speed ratio (ONNX Runtime's median / fastconv's) and max|diff| / max|ORT|.
"""

import argparse
import os
import statistics
import sys
import types

MODELS = ("resnet18", "resnet50", "mobilenet_v2", "squeezenet1_1", "unet")
#: input size per model (torchvision's classifiers: 224; the UNet: 256)
SIZE = {"unet": 256}


def unet():
    """A small UNet (3 levels, 32-128 channels): 3x3 conv + BN + ReLU pairs, max-pool down,
    ConvTranspose 2x2 stride 2 up, skip Concats; one output channel."""
    import torch
    from torch import nn

    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out),
                             nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1),
                             nn.BatchNorm2d(c_out), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.d1, self.d2, self.d3 = block(3, 32), block(32, 64), block(64, 128)
            self.pool = nn.MaxPool2d(2)
            self.u2, self.c2 = nn.ConvTranspose2d(128, 64, 2, stride=2), block(128, 64)
            self.u1, self.c1 = nn.ConvTranspose2d(64, 32, 2, stride=2), block(64, 32)
            self.head = nn.Conv2d(32, 1, 1)

        def forward(self, x):
            x1 = self.d1(x)
            x2 = self.d2(self.pool(x1))
            x3 = self.d3(self.pool(x2))
            y = self.c2(torch.cat([self.u2(x3), x2], 1))
            y = self.c1(torch.cat([self.u1(y), x1], 1))
            return self.head(y)

    return UNet()


def export(name: str, directory: str) -> str:
    path = os.path.join(directory, f"{name}.onnx")
    if os.path.exists(path):
        return path
    # torchvision's meta registrations need a newer torch build than the CPU wheel: stub them
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    import torch
    import torchvision.models as tvm

    torch.manual_seed(0)
    model = (unet() if name == "unet" else getattr(tvm, name)(weights=None)).eval()
    n = SIZE.get(name, 224)
    x = torch.randn(1, 3, n, n)
    with torch.no_grad():
        torch.onnx.export(model, (x,), path, opset_version=17, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"}},
                          dynamo=False)
    return path


def bench(path: str, threads: int, repeats: int, profile: bool, size: int = 224):
    import numpy as np
    import onnxruntime as ort

    import fastconv.onnx
    from fastconv._timing import blocked_samples

    x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
    model = fastconv.onnx.load(path, threads=threads)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    ours, ref = model(x), sess.run(None, {"input": x})[0]
    diff = float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))
    samples = blocked_samples({"fastconv": lambda: model(x),
                               "onnxruntime": lambda: sess.run(None, {"input": x})},
                              repeats=repeats, passes=5)
    med = {k: statistics.median(v) * 1e3 for k, v in samples.items()}
    prof = model.profile(x, repeat=max(5, repeats // 4)) if profile else None
    return med, diff, prof


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench_models", description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--dir", default="/tmp/fastconv_models")
    parser.add_argument("--profile", action="store_true",
                        help="print fastconv's per-op times for each model")
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    rows = []
    for name in args.models:
        try:
            path = export(name, args.dir)
        except ImportError as exc:
            print(f"bench models: exporting {name} needs torch and torchvision ({exc})",
                  file=sys.stderr)
            return 2
        for threads in args.threads:
            try:
                med, diff, prof = bench(path, threads, args.repeat, args.profile,
                                        SIZE.get(name, 224))
            except ImportError as exc:
                print(f"bench models: needs onnx and onnxruntime ({exc})", file=sys.stderr)
                return 2
            ratio = med["onnxruntime"] / med["fastconv"]
            rows.append((name, threads, med["fastconv"], med["onnxruntime"], ratio, diff))
            print(f"{name:<14} threads {threads}: fastconv {med['fastconv']:8.2f} ms  "
                  f"onnxruntime {med['onnxruntime']:8.2f} ms  ratio {ratio:.2f}x  "
                  f"diff {diff:.1e}", flush=True)
            if prof is not None:
                for op, ms in list(prof.by_op().items())[:8]:
                    print(f"    {op:<40} {ms:8.2f} ms")
    print("\n| model | threads | fastconv ms | onnxruntime ms | ratio | max diff |")
    print("|---|---|---|---|---|---|")
    for name, threads, ours, theirs, ratio, diff in rows:
        print(f"| {name} | {threads} | {ours:.2f} | {theirs:.2f} | {ratio:.2f}x | {diff:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
