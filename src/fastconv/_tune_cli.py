"""``fastconv tune``: fill the ``algorithm="measure"`` cache, and show what it chose.

For each convolution and transposed convolution of the chosen suite (or ``--layer``), at each
thread count, a layer object with ``algorithm="measure"`` measures its candidates
(:mod:`fastconv._measure`; the cache in ``FASTCONV_CACHE_DIR`` is filled), and the table shows
what it chose next to what ``"auto"`` picks, with the ratio ``auto time / measured time`` from
the same interleaved timing. Where the two differ, ``--recheck`` (default) times the auto layer
against the measure layer once more, independently: the ratio a user would see. Pools have no
algorithm to choose and are skipped.

``fastconv tune MODEL.onnx`` hands the model to ``fastconv.onnx.load(algorithm="measure")``
and runs it once on a random input of ``--input``'s shape.

``main(argv)`` returns the exit code: 0; 2 for bad arguments.
"""

import argparse
import sys

EPILOG = """\
suites: resnet18, vgg16, mobilenet, unet, all; --layer takes what `fastconv bench --layer`
takes (a catalogue name, or [NAME=]CxSIZE:LAYER such as 64x56x56:conv3p1c64).

columns: auto = what algorithm="auto" picks; measure = what algorithm="measure" chose (from:
measured now, or the cache); ms = milliseconds per call in the measurement (the fastest of
its interleaved calls: on a shared machine the least disturbed one);
auto/measure = auto's time / the chosen one's (>= 1: measure is at least as fast); recheck =
the same ratio timed again, auto layer against measure layer, where the two differ.

The cache: FASTCONV_CACHE_DIR (default ~/.cache/fastconv), keyed by CPU model, instruction
set, fastconv version, layer, input shape, dtype and threads.

examples:
  fastconv tune --suite resnet18
  fastconv tune --suite all --threads 1,2
  fastconv tune --layer resnet18.conv4 --layer 128x28x28:conv3p1c128 --refresh
  fastconv tune model.onnx --input 1x3x224x224
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastconv tune",
        description="Time every algorithm that can serve each convolution (within the "
                    "accuracy policy), keep the fastest in the algorithm=\"measure\" cache, and "
                    "show it against algorithm=\"auto\".",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", metavar="MODEL.onnx",
                        help="an ONNX model (needs fastconv.onnx)")
    parser.add_argument("--suite", choices=("resnet18", "vgg16", "mobilenet", "unet", "all"),
                        help="a named suite of layers")
    parser.add_argument("--layer", action="append", default=[], metavar="SPEC",
                        help="a catalogue layer name or [NAME=]CxSIZE:LAYER (repeatable)")
    parser.add_argument("--batch", type=int, default=1, help="batch of custom --layer shapes")
    parser.add_argument("--input", metavar="NxCxHxW", help="input shape of MODEL.onnx")
    parser.add_argument("--threads", default="1", metavar="1,2",
                        help="comma-separated thread counts (default 1; -1 = all CPUs)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--refresh", action="store_true",
                        help="measure again even where the cache has a choice")
    parser.add_argument("--no-recheck", dest="recheck", action="store_false",
                        help="do not re-time auto against measure where they differ")
    parser.add_argument("--json", metavar="FILE", help="write the rows as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _layer_objects(layer, dtype: str):
    """(auto layer, measure layer) for a catalogue entry."""
    import fastconv

    w, b = _weights(layer, dtype)
    nd = layer.ndim
    if layer.kind == "conv":
        cls = getattr(fastconv, f"Conv{nd}d")
        kwargs = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                      groups=layer.groups)
    else:
        cls = getattr(fastconv, f"ConvTranspose{nd}d")
        kwargs = dict(stride=layer.stride, padding=layer.padding,
                      output_padding=layer.output_padding, groups=layer.groups,
                      dilation=layer.dilation)
    return cls(w, b, algorithm="auto", **kwargs), cls(w, b, algorithm="measure", **kwargs)


def _weights(layer, dtype: str):
    import numpy as np

    rng = np.random.default_rng(0)
    w = (rng.standard_normal(layer.weight_shape) * 0.1).astype(dtype)
    return w, rng.standard_normal(layer.c_out).astype(dtype)


def tune_layer(layer, threads: int, dtype: str = "float32", refresh: bool = False,
               recheck: bool = True) -> dict:
    """Measure one catalogue layer at ``threads`` threads; the row of the table, as a dict."""
    import numpy as np

    from . import _measure, _timing

    auto_layer, measure_layer = _layer_objects(layer, dtype)
    shape = tuple(layer.input_shape)
    auto = auto_layer.algorithm_for(shape)
    choice: _measure.Choice = measure_layer._measure_choice(shape, np.dtype(dtype), threads,
                                                            refresh=refresh)
    row = dict(layer=layer.name, kind=layer.kind, shape=list(shape), threads=threads,
               dtype=dtype, auto=auto, measure=choice.algorithm, source=choice.source,
               seconds=choice.seconds, saved=choice.saved)
    if auto in choice.seconds and choice.algorithm in choice.seconds:
        chosen = choice.seconds[choice.algorithm]
        row["ratio"] = choice.seconds[auto] / chosen if chosen > 0 else 1.0
    if recheck and choice.algorithm != auto:
        rng = np.random.default_rng(1)
        x = rng.standard_normal(shape).astype(dtype)
        samples = _timing.interleaved_samples(
            {"auto": lambda: auto_layer(x, threads=threads),
             "measure": lambda: measure_layer(x, threads=threads)},
            repeats=7, warmup=1, min_time=0.05, max_time=3.0)
        row["recheck"] = min(samples["auto"]) / min(samples["measure"])
    return row


def format_rows(rows: list[dict]) -> str:
    """The aligned table of :func:`tune_layer` rows."""
    lines = [f"{'layer':<22} {'input':<16} {'thr':>3}  {'auto':<12} {'measure':<12} "
             f"{'from':<8} {'ms auto':>9} {'ms meas.':>9} {'auto/measure':>12} {'recheck':>8}"]
    for r in rows:
        sec = r["seconds"]
        t_auto = f"{sec[r['auto']] * 1e3:9.3f}" if r["auto"] in sec else f"{'-':>9}"
        t_meas = f"{sec[r['measure']] * 1e3:9.3f}" if r["measure"] in sec else f"{'-':>9}"
        ratio = f"{r['ratio']:12.2f}" if "ratio" in r else f"{'-':>12}"
        recheck = f"{r['recheck']:8.2f}" if "recheck" in r else f"{'':>8}"
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"{r['layer'][:22]:<22} {shape:<16} {r['threads']:>3}  {r['auto']:<12} "
                     f"{r['measure']:<12} {r['source']:<8} {t_auto} {t_meas} {ratio} {recheck}")
    return "\n".join(lines)


def _tune_model(args, thread_counts) -> int:
    try:
        import fastconv.onnx as fonnx
    except ImportError as exc:
        print(f"fastconv tune: {args.model}: tuning a whole model needs fastconv.onnx, which "
              f"is not available in this installation ({exc}); tune its layers with --suite "
              f"or --layer meanwhile", file=sys.stderr)
        return 2
    if not args.input:
        print("fastconv tune: MODEL.onnx needs --input NxCxHxW (the input shape to tune for)",
              file=sys.stderr)
        return 2
    import numpy as np

    try:
        shape = tuple(int(d) for d in args.input.lower().split("x"))
        if not shape or min(shape) < 1:
            raise ValueError
    except ValueError:
        print(f"fastconv tune: --input must be sizes joined by 'x' such as 1x3x224x224, got "
              f"{args.input!r}", file=sys.stderr)
        return 2
    x = np.random.default_rng(0).standard_normal(shape).astype(args.dtype)
    for threads in thread_counts:
        try:
            model = fonnx.load(args.model, algorithm="measure", threads=threads)
            model(x)
        except (OSError, ValueError, TypeError) as exc:
            print(f"fastconv tune: {args.model}: {exc}", file=sys.stderr)
            return 2
        print(f"tuned {args.model} for input {args.input}, {threads} thread(s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    from ._bench_cli import Progress, _layers, _thread_counts

    try:
        thread_counts = _thread_counts(args.threads)
        if args.batch < 1:
            raise ValueError(f"--batch must be >= 1, got {args.batch}")
        if args.model is not None:
            if not args.model.lower().endswith(".onnx"):
                raise ValueError(f"the positional argument must be a model file ending in "
                                 f".onnx, got {args.model!r}")
        elif not args.suite and not args.layer:
            raise ValueError("give --suite, --layer or MODEL.onnx (see --help)")
        layers = [] if args.model and not (args.suite or args.layer) else _layers(args)
    except ValueError as exc:
        print(f"fastconv tune: {exc}", file=sys.stderr)
        return 2
    if args.model is not None:
        code = _tune_model(args, thread_counts)
        if code or not layers:
            return code
    from . import _config, _dispatch, _measure

    try:
        isa = _dispatch.current_isa()
    except ImportError as exc:  # the compiled core is not built
        print(f"fastconv tune: {exc}", file=sys.stderr)
        return 2
    convs = [layer for layer in layers if layer.kind in ("conv", "conv_transpose")]
    skipped = len(layers) - len(convs)
    path = _measure.cache_path()
    print(f"fastconv tune | {_config._cpu_model()} | isa {isa} | {args.dtype} | cache "
          f"{path or 'off (FASTCONV_CACHE_DIR is empty)'}")
    progress = Progress(len(convs) * len(thread_counts), enabled=not args.quiet)
    rows = []
    try:
        for threads in thread_counts:
            for layer in convs:
                progress.show(f"{layer.name} {threads}T")
                rows.append(tune_layer(layer, threads, args.dtype, args.refresh,
                                       args.recheck))
                progress.step(f"{layer.name} {threads}T done")
    except KeyboardInterrupt:
        progress.close()
        print("fastconv tune: interrupted; showing the layers done", file=sys.stderr)
    progress.close()
    print(format_rows(rows))
    if skipped:
        print(f"({skipped} pooling layer(s) skipped: nothing to choose)")
    if path is not None and any(r["source"] == "measured" for r in rows) \
            and not any(r["saved"] for r in rows):
        print(f"fastconv tune: note: could not write the cache file {path}; choices are kept "
              f"in memory only (set FASTCONV_CACHE_DIR to a writable directory)",
              file=sys.stderr)
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump({"cpu": _config._cpu_model(), "isa": isa, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
