"""``fastconv run MODEL.onnx``: run an ONNX model, time it, compare with ONNX Runtime."""

import argparse
import json
import statistics
import sys
import time

EPILOG = """examples:
  fastconv run resnet18.onnx
  fastconv run resnet18.onnx --input 1x3x224x224 --threads 2 --repeat 50
  fastconv run model.onnx --input-file x.npy --compare onnxruntime --json result.json
  fastconv run unet.onnx --input 1x3x256x256 --summary --profile

Symbolic dims of the declared input shape default to 1. With --compare onnxruntime (and
onnxruntime installed) both run with the same thread count, onnxruntime with
ORT_ENABLE_ALL, in rounds of blocks of calls (each after a short pause, so that neither
runtime's spinning worker threads slow the other); the speed ratio is onnxruntime's
median / fastconv's, the difference max|fastconv - onnxruntime| / max|onnxruntime|."""


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--input must look like 1x3x224x224, got {text!r}")\
            from None
    if not dims or any(d < 0 for d in dims):
        raise argparse.ArgumentTypeError(f"--input must look like 1x3x224x224, got {text!r}")
    return dims


def _percentile(samples: list[float], q: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _progress(done: int, total: int, enabled: bool) -> None:
    if not enabled:
        return
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastconv run",
        description="Run an ONNX model on fastconv and print its latency (median, p90); "
                    "with onnxruntime installed, also the speed ratio and the largest "
                    "difference to it.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the .onnx file")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--input", type=_parse_shape, action="append",
                       help="input shape NxCxHxW (once per model input); random data")
    group.add_argument("--input-file", action="append",
                       help="a .npy file with the input (once per model input)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both runtimes (default: fastconv's default)")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--compare", choices=("onnxruntime", "none"), default="onnxruntime",
                        help="compare with onnxruntime when installed (default), or not")
    parser.add_argument("--algorithm", default="auto", help="convolution algorithm (auto)")
    parser.add_argument("--summary", action="store_true", help="print the model summary")
    parser.add_argument("--profile", action="store_true", help="print per-node times")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE "
                                                       "('-' for standard output)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be >= 1 and --warmup >= 0")

    import numpy as np

    import fastconv
    from fastconv._timing import SETTLE_SECONDS, WARMUP_SECONDS, blocked_samples

    try:
        import fastconv.onnx as fonnx
    except ImportError as exc:
        print(f"fastconv run: {exc}", file=sys.stderr)
        return 2
    threads = fastconv.get_num_threads() if args.threads is None else args.threads
    try:
        t0 = time.perf_counter()
        model = fonnx.load(args.model, algorithm=args.algorithm, threads=threads)
        load_s = time.perf_counter() - t0
    except (ValueError, TypeError) as exc:
        print(f"fastconv run: {exc}", file=sys.stderr)
        return 1
    spec = model._input_spec
    feeds = {}
    rng = np.random.default_rng(0)
    for i, name in enumerate(model.input_names):
        dims, dtype = spec[name]
        if args.input_file:
            if i >= len(args.input_file):
                parser.error(f"give one --input-file per model input {model.input_names}")
            feeds[name] = np.load(args.input_file[i])
            continue
        if args.input:
            if i >= len(args.input):
                parser.error(f"give one --input per model input {model.input_names}")
            shape = args.input[i]
        elif dims is None:
            parser.error(f"input {name!r} has no declared shape: give --input")
        else:
            shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)
        dtype = np.dtype(dtype or np.float32)
        x = rng.standard_normal(shape) if dtype.kind == "f" else rng.integers(0, 10, shape)
        feeds[name] = x.astype(dtype)
    try:
        t0 = time.perf_counter()
        ours = model.run(None, feeds)
        first_s = time.perf_counter() - t0
    except ValueError as exc:
        print(f"fastconv run: {exc}", file=sys.stderr)
        return 1

    contenders = {"fastconv": lambda: model.run(None, feeds)}
    ort_out = None
    if args.compare == "onnxruntime":
        try:
            import onnxruntime as ort
        except ImportError:
            print("(onnxruntime is not installed: no comparison)", file=sys.stderr)
        else:
            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
            ort_out = sess.run(None, feeds)
            contenders["onnxruntime"] = lambda: sess.run(None, feeds)

    names = list(contenders)
    total = (args.warmup + args.repeat) * len(names)
    show = sys.stderr.isatty() and total > 10
    done = [0]

    def counted(fn):
        def call():
            fn()
            done[0] += 1
            _progress(min(done[0], total), total, show)
        return call

    # blocks of calls, each after a pause: a runtime's spinning workers (onnxruntime's pool,
    # OpenMP) must not steal the cores of the other one (fastconv._timing.blocked_samples)
    samples = blocked_samples({n: counted(fn) for n, fn in contenders.items()},
                              repeats=args.repeat, warmup=args.warmup,
                              passes=min(5, args.repeat),
                              settle=SETTLE_SECONDS if len(names) > 1 else 0.0,
                              warmup_time=WARMUP_SECONDS if len(names) > 1 else 0.0)
    if show and done[0] < total:
        _progress(total, total, show)

    result = {"model": args.model, "threads": threads,
              "inputs": {k: list(v.shape) for k, v in feeds.items()},
              "load_ms": load_s * 1e3, "first_call_ms": first_s * 1e3, "repeat": args.repeat}
    for n in names:
        result[n] = {"median_ms": statistics.median(samples[n]) * 1e3,
                     "p90_ms": _percentile(samples[n], 0.9) * 1e3}
    lines = [f"model {args.model}  inputs {result['inputs']}  threads {threads}",
             f"load {load_s * 1e3:.1f} ms, first call {first_s * 1e3:.1f} ms"]
    for n in names:
        lines.append(f"{n:<12} median {result[n]['median_ms']:8.3f} ms   "
                     f"p90 {result[n]['p90_ms']:8.3f} ms")
    if ort_out is not None:
        ratio = result["onnxruntime"]["median_ms"] / result["fastconv"]["median_ms"]
        diff = max(float(np.max(np.abs(a.astype(np.float64) - b)) /
                         max(float(np.max(np.abs(b))), 1e-30)) if b.size else 0.0
                   for a, b in zip(ours, ort_out))
        result["speedup_vs_onnxruntime"] = ratio
        result["max_rel_diff_vs_onnxruntime"] = diff
        lines.append(f"speed vs onnxruntime: {ratio:.2f}x   max|diff|/max|ref| {diff:.2e}")
    print("\n".join(lines))
    if args.summary:
        print()
        print(model.summary(tuple(feeds[model.input_names[0]].shape)
                            if len(feeds) == 1 else None))
    if args.profile:
        prof = model.profile(**feeds, repeat=args.repeat)
        print()
        print(prof)
        result["profile"] = [dict(node=a, op=b, kind=c, ms=d) for a, b, c, d in prof.rows]
    if args.json:
        text = json.dumps(result, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as f:
                f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
