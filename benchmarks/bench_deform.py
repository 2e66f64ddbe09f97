"""Deformable convolution: fastconv vs its own im2col conv2d, ONNX Runtime and torchvision.

Run as a script (``flock /tmp/cpu.lock python benchmarks/bench_deform.py``): for each layer of
issue 18, at 1 and 2 threads, the contenders are timed interleaved in one process (medians,
``fastconv._timing.interleaved``) and a Markdown table of milliseconds and ratios is printed.

- ``deform``: ``fastconv.DeformConv2d`` (weights packed once), random offsets (std 1.5: most
  samples fractional, some outside) and, where the layer has one, a mask;
- ``conv2d``: ``fastconv.Conv2d(..., algorithm="im2col")`` on the same shape (the GEMM the
  deformable kernel shares: the sampling's cost is the difference);
- ``ort``: ONNX Runtime's DeformConv, a one-node opset-19 model built with ``onnx.helper``
  (weights and bias as initializers);
- ``torchvision``: ``torchvision.ops.deform_conv2d`` if its compiled ops load (it is installed
  without its dependencies next to the CPU torch wheel; ``torchvision._meta_registrations`` is
  stubbed first, as it needs a matching torch).

Every contender's output is checked against fastconv's before timing (float32, 1e-4 relative).
"""

import argparse
import sys
import types

import numpy as np

import fastconv
from fastconv._timing import interleaved

# name, (C_in, C_out, H, W), kernel, offset groups, mask
LAYERS = [
    ("dcnv2_resnet50_stage3_3x3_256_28", (256, 256, 28, 28), 3, 1, True),
    ("3x3_64_56", (64, 64, 56, 56), 3, 1, False),
    ("3x3_512_7_og4", (512, 512, 7, 7), 3, 4, False),
]


def _torchvision():
    """``(torch, torchvision.ops.deform_conv2d)`` or a reason string."""
    try:
        sys.modules.setdefault("torchvision._meta_registrations",
                               types.ModuleType("torchvision._meta_registrations"))
        import torch
        import torchvision.ops
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        return f"torchvision not importable: {type(exc).__name__}: {exc}"
    try:
        x = torch.zeros(1, 1, 3, 3)
        torchvision.ops.deform_conv2d(x, torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 1, 1))
    except Exception as exc:  # noqa: BLE001
        return f"torchvision's C++ ops do not load: {type(exc).__name__}: {str(exc)[:120]}"
    return torch, torchvision.ops.deform_conv2d


def _ort(x, w, b, offset, mask, padding, offset_groups, threads):
    try:
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        return f"onnx/onnxruntime not installed ({exc})"
    kh, kw = w.shape[2:]
    names = ["X", "W", "offset", "B"] + (["mask"] if mask is not None else [])
    node = helper.make_node("DeformConv", names, ["Y"], kernel_shape=[kh, kw],
                            pads=[padding] * 4, offset_group=offset_groups)
    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("X", f, list(x.shape)),
              helper.make_tensor_value_info("offset", f, list(offset.shape))]
    if mask is not None:
        inputs.append(helper.make_tensor_value_info("mask", f, list(mask.shape)))
    graph = helper.make_graph([node], "deform", inputs,
                              [helper.make_tensor_value_info("Y", f, None)],
                              initializer=[numpy_helper.from_array(w, "W"),
                                           numpy_helper.from_array(b, "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 9
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    feed = {"X": x, "offset": offset}
    if mask is not None:
        feed["mask"] = mask
    return lambda: sess.run(None, feed)[0]


def _close(name, got, ref):
    err = float(np.max(np.abs(np.asarray(got, np.float64) - ref)) / np.max(np.abs(ref)))
    if not err <= 1e-4:
        raise AssertionError(f"{name}: max|err|/max|ref| = {err:.2e}")


def _contenders(layer, conv, x, w, b, offset, mask, pad, og, threads, tv, ref, notes):
    """name -> no-argument callable of every contender available (outputs checked)."""
    contenders = {
        "deform": lambda: layer(x, offset, mask, threads=threads),
        "conv2d": lambda: conv(x, threads=threads),
    }
    run = _ort(x, w, b, offset, mask, pad, og, threads)
    if isinstance(run, str):
        if run not in notes:
            notes.append(run)
    else:
        _close("ort", run(), ref)
        contenders["ort"] = run
    if not isinstance(tv, str):
        torch, deform_conv2d = tv
        a = [torch.from_numpy(v) if v is not None else None for v in (x, offset, w, b, mask)]

        def tv_run():
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            with torch.inference_mode():
                return deform_conv2d(a[0], a[1], a[2], a[3], padding=(pad, pad), mask=a[4])

        _close("torchvision", tv_run().numpy(), ref)
        contenders["torchvision"] = tv_run
    return contenders


def bench(repeats: int, threads_list, layers):
    tv = _torchvision()
    notes = []
    if isinstance(tv, str):
        notes.append(tv)
    rows = []
    for name, (c_in, c_out, h, w_), k, og, with_mask in layers:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((1, c_in, h, w_)).astype(np.float32)
        w = (rng.standard_normal((c_out, c_in, k, k)) / np.sqrt(c_in * k * k)).astype(np.float32)
        b = rng.standard_normal(c_out).astype(np.float32)
        pad = k // 2
        offset = (1.5 * rng.standard_normal((1, 2 * og * k * k, h, w_))).astype(np.float32)
        mask = rng.uniform(size=(1, og * k * k, h, w_)).astype(np.float32) if with_mask \
            else None
        layer = fastconv.DeformConv2d(w, b, padding=pad)
        conv = fastconv.Conv2d(w, b, padding=pad, algorithm="im2col")
        ref = layer(x, offset, mask, threads=1).astype(np.float64)
        for threads in threads_list:
            contenders = _contenders(layer, conv, x, w, b, offset, mask, pad, og, threads, tv,
                                     ref, notes)
            med = interleaved(contenders, repeats=repeats, warmup=2, min_time=0.3)
            rows.append((name, threads, med))
    return rows, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    rows, notes = bench(args.repeats, args.threads, LAYERS)
    others = [c for c in ("ort", "torchvision") if any(c in med for _, _, med in rows)]
    head = "| layer | threads | deform ms | conv2d ms | deform/conv2d speed |" + "".join(
        f" {c} ms | speedup vs {c} |" for c in others)
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, threads, med in rows:
        d = med["deform"]
        line = (f"| {name} | {threads} | {d * 1e3:.2f} | {med['conv2d'] * 1e3:.2f} | "
                f"{med['conv2d'] / d:.0%} |")
        for c in others:
            line += f" {med[c] * 1e3:.2f} | {med[c] / d:.2f}x |" if c in med else " - | - |"
        print(line)
    for note in notes:
        print(f"\nnote: {note}")


if __name__ == "__main__":
    main()
