"""``fastconv bench``: time real-network layers, every algorithm, against PyTorch / ONNX Runtime.

For each layer of the chosen suite (or ``--layer``) and each thread count, the contenders are:
the functional call (``conv2d(...)``, ``algorithm="auto"``), a prepared layer object per
algorithm that can serve the layer (``Conv2d(..., algorithm=a)``; the one ``"auto"`` picks is
starred), and each peer that is importable. Every contender's result is first checked against
a float64 reference (:mod:`fastconv._bench_reference`); a wrong result is reported and not
timed. Timing (:mod:`fastconv._timing`): warm-up, then the median of enough repeats,
interleaving the contenders call by call at one thread and in short alternating blocks at more
(so that one runtime's spinning workers do not steal the next one's cores).

The table, Markdown, JSON and plot are made by :mod:`fastconv._bench_report`; the layers come
from :mod:`fastconv._suite`, the peers from :mod:`fastconv._bench_peers`.

Heavy imports (NumPy, the compiled modules, the peers, matplotlib) happen inside :func:`main`,
so ``fastconv bench --help`` is instant. ``main(argv)`` returns the exit code: 0; 1 when a
fastconv result was wrong; 2 for bad arguments.
"""

import argparse
import os
import sys
import time

EPILOG = """\
suites: resnet18, vgg16, mobilenet, unet, all (default: resnet18).

--layer takes a catalogue name (resnet18.conv2, resnet.maxpool, ...; see --list) or a custom
shape [NAME=]CxSIZE:LAYER, LAYER being one layer in the language of `fastconv shapes`:
  64x56x56:conv3p1c64          3x3 convolution, 64 -> 64 channels, 56x56, padding 1
  32x112x112:conv3p1g32        depthwise (groups = channels)
  3x224x224:conv7s2p3c64       a ResNet stem
  256x1024:conv3p1             1-D;  32x16x56x56:conv3p1 is 3-D
  128x32x32:convt2s2c64        transposed convolution (stride 2, 64 output channels)
  64x112x112:maxpool3s2p1      max pooling (avgpool, gap, gmp, adaptiveavg7 too)
--batch sets the batch of custom layers (default 1).

columns: ms = median (--stat min: fastest) milliseconds per call; iqr% = interquartile range
of the timings / median (how far to trust the row); GFLOP/s = 2*MACs of the direct
convolution / time (Winograd credited the same: "effective"); pools and depthwise layers also
in GB/s = (input + output [+ weight] bytes) / time; xtorch, xort = peer time / this time
(> 1: fastconv faster); err = max|result - float64 reference| / max|reference|.
'*' marks the algorithm "auto" picks.

examples:
  fastconv bench --suite resnet18 --threads 1,2
  fastconv bench --suite all --threads 1,2 --json out.json --markdown out.md --plot out.png
  fastconv bench --suite models --threads 1,2   # whole models vs onnxruntime (torch needed)
  fastconv bench --suite vgg16 --stat min        # on a machine shared with other jobs
  fastconv bench --layer resnet18.conv2 --layer 64x112x112:maxpool3s2p1 --no-peers
  fastconv bench --layer big=256x28x28:conv3p1c256 --batch 8 --algorithms im2col,winograd_f4
"""

#: Candidate ``algorithm=`` values per layer kind, tried in this order; those that cannot
#: serve a layer (ValueError from the layer object) are left out. ``"winograd"`` (tile chosen
#: automatically) is left out: it is one of the three fixed tiles.
CONV_ALGORITHMS = ("direct", "im2col", "winograd_f2", "winograd_f4", "winograd_f6")

#: Accepted ``max|err| / max|ref|`` per working dtype: the API's accuracy policy for float32.
#: Winograd tiles use their documented bound (``fastconv._winograd_plan.ERROR_BOUND``) when
#: it is looser.
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}

POOL_FUNCTIONS = {"max": "max_pool{n}d", "avg": "avg_pool{n}d", "global_avg": "global_avg_pool",
                  "global_max": "global_max_pool", "adaptive_avg": "adaptive_avg_pool{n}d",
                  "adaptive_max": "adaptive_max_pool{n}d"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastconv bench",
        description="Time fastconv on real-network layers, for every algorithm that can serve "
                    "each one, next to PyTorch and ONNX Runtime when they are installed. Each "
                    "result is checked against a float64 reference before it is timed.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("resnet18", "vgg16", "mobilenet", "unet", "all",
                                            "models"),
                        help="a named suite of layers (default: resnet18 unless --layer); "
                             "models: whole torchvision models exported to ONNX, fastconv.onnx "
                             "vs onnxruntime (needs torch, torchvision, onnxruntime)")
    parser.add_argument("--layer", action="append", default=[], metavar="SPEC",
                        help="a catalogue layer name or [NAME=]CxSIZE:LAYER (repeatable)")
    parser.add_argument("--batch", type=int, default=1, help="batch of custom --layer shapes")
    parser.add_argument("--threads", default="1", metavar="1,2",
                        help="comma-separated thread counts (default 1; -1 = all CPUs)")
    parser.add_argument("--algorithms", default="", metavar="A,B",
                        help="only these algorithm= values (e.g. im2col,winograd_f4; "
                             "'function' = the functional call)")
    parser.add_argument("--peers", default="torch,onnxruntime",
                        help="peers to time when importable (default: torch,onnxruntime)")
    parser.add_argument("--no-peers", action="store_true", help="time fastconv only")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--repeats", type=int, default=9,
                        help="timed calls per contender at least (default 9)")
    parser.add_argument("--min-time", type=float, default=0.05, metavar="SECONDS",
                        help="more calls until each contender ran this long (default 0.05)")
    parser.add_argument("--spread", type=float, default=0.1, metavar="FRACTION",
                        help="at one thread, more rounds while any contender's interquartile "
                             "range exceeds this fraction of its median (default 0.1)")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="figure per contender: median (default) or, on a machine shared "
                             "with other jobs, min (the least disturbed call)")
    parser.add_argument("--max-time", type=float, default=4.0, metavar="SECONDS",
                        help="stop adding calls for a layer after this long (default 4)")
    parser.add_argument("--json", metavar="FILE", help="write raw figures and the machine here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw GFLOP/s bars (needs matplotlib)")
    parser.add_argument("--markdown", metavar="FILE",
                        help="write a Markdown summary (fastest fastconv vs each peer)")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--subnormals", action="store_true",
                        help="time every operator on subnormal input, with fastconv's default "
                             "flush-to-zero and with IEEE subnormals, against normal input")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


# ---- what to run -----------------------------------------------------------------------------
def _custom_layer(text: str, batch: int):
    """A catalogue entry from ``[NAME=]CxSIZE:LAYER``."""
    from . import _suite
    from .shapes import _layers as spec_layers
    from .shapes._spec import parse

    name, _, rest = text.rpartition("=") if "=" in text.split(":", 1)[0] else ("", "", text)
    shape_text, sep, spec = rest.partition(":")
    dims = shape_text.lower().split("x")
    if not sep or len(dims) < 2 or not all(d.isdigit() and int(d) > 0 for d in dims):
        raise ValueError(f"--layer must be a catalogue name or [NAME=]CxSIZE:LAYER such as "
                         f"64x56x56:conv3p1c64, got {text!r}")
    channels, spatial = int(dims[0]), tuple(int(d) for d in dims[1:])
    net = parse(spec)
    if len(net) != 1:
        raise ValueError(f"--layer takes one layer after ':', got {len(net)} in {spec!r}")
    spec_layer = net[0]
    name = name or text
    nd = len(spatial)

    def per_dim(value):
        return tuple(value) if isinstance(value, tuple) else (value,) * nd

    if isinstance(spec_layer, (spec_layers.Conv, spec_layers.ConvTranspose)):
        kind = _suite.Conv if isinstance(spec_layer, spec_layers.Conv) else _suite.ConvTranspose
        extra = {} if kind is _suite.Conv else {"output_padding": spec_layer.output_padding}
        return kind(name, channels, spec_layer.out_channels or channels, spatial,
                    per_dim(spec_layer.kernel_size), spec_layer.stride, spec_layer.padding,
                    spec_layer.groups, batch, dilation=spec_layer.dilation, **extra)
    if isinstance(spec_layer, spec_layers.Pool):
        if spec_layer.mode == "lp" or spec_layer.dilation != 1 or spec_layer.ceil_mode:
            raise ValueError(f"--layer {text!r}: bench times max and avg pools without "
                             f"dilation or ceil mode")
        return _suite.Pool(name, spec_layer.mode, channels, spatial,
                           per_dim(spec_layer.kernel_size), spec_layer.stride,
                           spec_layer.padding, batch=batch)
    if isinstance(spec_layer, spec_layers.AdaptivePool):
        size = per_dim(spec_layer.output_size)
        kind = "global" if all(s == 1 for s in size) else "adaptive"
        return _suite.Pool(name, f"{kind}_{spec_layer.mode}", channels, spatial,
                           output_size=size, batch=batch)
    raise ValueError(f"--layer {text!r}: bench times convolutions, transposed convolutions "
                     f"and pools, not {spec_layer.describe()!r}")


def _layers(args) -> list:
    from . import _suite

    layers = [] if args.layer and not args.suite else _suite.suite(args.suite or "resnet18")
    for text in args.layer:
        if ":" in text:
            layers.append(_custom_layer(text, args.batch))
        else:
            layers.append(_suite.by_name(text))
    return layers


def _thread_counts(text: str) -> list[int]:
    from . import _threads

    try:
        counts = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        counts = []
    if not counts or any(t < 1 and t != -1 for t in counts):
        raise ValueError(f"--threads must be comma-separated counts >= 1 (or -1), got {text!r}")
    return [_threads.cpu_count() if t == -1 else t for t in counts]


def _arrays(layer, dtype):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal(layer.input_shape).astype(dtype)
    if layer.kind not in ("conv", "conv_transpose"):
        return x, None, None
    w = (rng.standard_normal(layer.weight_shape) * 0.1).astype(dtype)
    return x, w, rng.standard_normal(layer.c_out).astype(dtype)


def _tolerance(dtype: str, algorithm: str) -> float:
    tol = TOLERANCE[dtype]
    if algorithm.startswith("winograd_"):
        try:
            from ._winograd_plan import ALGORITHM_TILE, ERROR_BOUND
        except ImportError:
            return 1e-3 if dtype == "float32" else 1e-10
        tol = max(tol, ERROR_BOUND[dtype][ALGORITHM_TILE[algorithm]])
    return tol


class Contender:
    """One timed thing: a fastconv call (an algorithm) or a peer."""

    def __init__(self, name: str, run, algorithm: str, peer: bool = False, auto: bool = False):
        self.name, self.run, self.algorithm = name, run, algorithm
        self.peer, self.auto = peer, auto


def _fastconv_contenders(layer, x, w, b, threads: int, wanted: set[str]) -> list[Contender]:
    """The functional call and one layer object per algorithm that can serve ``layer``."""
    import fastconv

    nd = layer.ndim
    out = []
    if layer.kind in ("conv", "conv_transpose"):
        if layer.kind == "conv":
            fn_name, cls = f"conv{nd}d", getattr(fastconv, f"Conv{nd}d")
            kwargs = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                          groups=layer.groups)
            algorithms = CONV_ALGORITHMS
        else:
            from . import conv_transpose

            fn_name, cls = f"conv_transpose{nd}d", getattr(fastconv, f"ConvTranspose{nd}d")
            kwargs = dict(stride=layer.stride, padding=layer.padding,
                          output_padding=layer.output_padding, groups=layer.groups,
                          dilation=layer.dilation)
            algorithms = tuple(a for a in getattr(conv_transpose, "ALGORITHMS", ("auto",))
                               if a != "auto") or ("auto",)
        fn = getattr(fastconv, fn_name)
        auto_choice = cls(w, b, **kwargs).algorithm_for(layer.input_shape)
        if not wanted or "function" in wanted:
            out.append(Contender(f"{fn_name}()", lambda: fn(x, w, b, threads=threads, **kwargs),
                                 auto_choice))
        for algorithm in algorithms:
            if wanted and algorithm not in wanted:
                continue
            try:
                obj = cls(w, b, algorithm=algorithm, **kwargs)
                chosen = obj.algorithm_for(layer.input_shape)
            except ValueError:
                continue  # this algorithm cannot serve this layer
            out.append(Contender(f"{cls.__name__}[{chosen}]",
                                 lambda obj=obj: obj(x, threads=threads), chosen,
                                 auto=chosen == auto_choice))
        return out
    fn_name = POOL_FUNCTIONS[layer.kind].format(n=nd)
    fn = getattr(fastconv, fn_name)
    if layer.kind in ("max", "avg"):
        def call():
            return fn(x, layer.kernel, layer.stride, layer.padding, threads=threads)
    elif layer.kind.startswith("global"):
        def call():
            return fn(x, threads=threads)
    else:
        def call():
            return fn(x, layer.output_size, threads=threads)
    return [Contender(f"{fn_name}()", call, "pool")]


def _rates(layer, seconds: float, itemsize: int) -> dict:
    """GFLOP/s for compute layers, GB/s for memory-bound ones (pools, depthwise)."""
    rates = {}
    if layer.flops():
        rates["gflops"] = layer.flops() / seconds / 1e9
    if layer.kind not in ("conv", "conv_transpose") or getattr(layer, "depthwise", False):
        rates["gbs"] = layer.bytes(itemsize) / seconds / 1e9
    return rates


# ---- running ---------------------------------------------------------------------------------
class Progress:
    """A one-line progress bar on stderr (no dependency); plain lines when not a terminal."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.total, self.done, self.enabled = total, 0, enabled
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.start = time.perf_counter()

    def show(self, label: str, force: bool = False) -> None:
        """Redraw the bar with ``label``; without a terminal only steps (``force``) print."""
        if not self.enabled or not (self.tty or force):
            return
        width = 24
        filled = width * self.done // max(self.total, 1)
        elapsed = time.perf_counter() - self.start
        text = (f"[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                f"{elapsed:5.1f}s {label}")
        if self.tty:
            self.stream.write("\r\033[K" + text[:120])
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def step(self, label: str = "") -> None:
        self.done += 1
        self.show(label, force=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _measure(layer, threads: int, args, peers: tuple[str, ...], progress: Progress) -> list:
    """Rows (dicts) for one layer at one thread count."""
    import statistics

    import numpy as np

    from . import _bench_peers, _timing
    from ._bench_reference import reference, relative_error

    x, w, b = _arrays(layer, args.dtype)
    expected = reference(layer, x, w, b)
    wanted = {a for a in args.algorithms.split(",") if a}
    contenders = _fastconv_contenders(layer, x, w, b, threads, wanted)
    for name, run in _bench_peers.runners(layer, x, w, b, threads, peers).items():
        contenders.append(Contender(name, run, name, peer=True))
    rows, timed = [], {}
    for c in contenders:
        progress.show(f"{layer.name} {threads}T: checking {c.name}")
        row = dict(layer=layer.name, kind=layer.kind, shape=list(layer.input_shape),
                   threads=threads, contender=c.name, algorithm=c.algorithm, peer=c.peer,
                   auto=c.auto)
        try:
            row["error"] = relative_error(np.asarray(c.run()), expected)
        except Exception as exc:  # noqa: BLE001 - one failing contender must not end the run
            row.update(error=float("inf"), ok=False,
                       failure=f"{type(exc).__name__}: {exc}")
        else:
            row["ok"] = c.peer or row["error"] <= _tolerance(args.dtype, c.algorithm)
        rows.append(row)
        if row["ok"]:
            timed[c.name] = c.run
    progress.show(f"{layer.name} {threads}T: timing {len(timed)} contenders")
    if not timed:
        samples = {}
    elif threads == 1:
        samples = _timing.interleaved_samples(timed, repeats=args.repeats, warmup=2,
                                              min_time=args.min_time, max_time=args.max_time,
                                              target_spread=args.spread)
    else:
        samples = _timing.blocked_samples(timed, repeats=args.repeats, warmup=2,
                                          min_time=args.min_time, max_time=args.max_time)
    itemsize = np.dtype(args.dtype).itemsize
    for row in rows:
        seconds = samples.get(row["contender"])
        if seconds:
            row["median"], row["min"] = statistics.median(seconds), min(seconds)
            row["seconds"] = row[args.stat]
            row["samples"] = seconds
            row["spread"] = _timing.spread(seconds)
            row.update(_rates(layer, row["seconds"], itemsize))
    peer_seconds = {r["contender"]: r["seconds"] for r in rows if r["peer"] and "seconds" in r}
    for row in rows:
        if not row["peer"] and "seconds" in row:
            row["ratios"] = {p: s / row["seconds"] for p, s in peer_seconds.items()}
    return rows


def run(layers: list, thread_counts: list[int], args, peers: tuple[str, ...],
        progress: Progress) -> list[dict]:
    """Every row of the table: per thread count, per layer, per contender.

    Ctrl-C stops the run after the layers already measured, which are still reported.
    """
    from ._bench_peers import restore_torch_threads

    rows = []
    try:
        with restore_torch_threads():
            for threads in thread_counts:
                for layer in layers:
                    rows.extend(_measure(layer, threads, args, peers, progress))
                    progress.step(f"{layer.name} {threads}T done")
    except KeyboardInterrupt:
        progress.close()
        print(f"fastconv bench: interrupted after {progress.done} of {progress.total} "
              f"layer runs; reporting those", file=sys.stderr)
    progress.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.list:
        from ._suite import suite

        print(f"{'layer':<22} {'kind':<15} {'input (NCHW)':<16} {'output':<16} suites")
        for layer in suite("all"):
            shapes = ["x".join(map(str, s)) for s in (layer.input_shape, layer.output_shape)]
            print(f"{layer.name:<22} {layer.kind:<15} {shapes[0]:<16} {shapes[1]:<16} "
                  f"{','.join(layer.suites) or '-'}")
        return 0
    if args.subnormals:
        from ._bench_subnormals import main as subnormals

        return subnormals(_thread_counts(args.threads), args.repeats)
    if args.suite == "models":
        from ._bench_models import main as models

        return models(["--threads", *map(str, _thread_counts(args.threads)),
                       "--repeat", str(max(args.repeats, 20))])
    # Idle OpenMP workers sleep instead of spinning, so the runtimes in this one process
    # (fastconv's libgomp, PyTorch's) do not steal each other's cores; read when libgomp loads.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        layers = _layers(args)
        thread_counts = _thread_counts(args.threads)
        if args.repeats < 1 or args.batch < 1:
            raise ValueError("--repeats and --batch must be >= 1")
        from ._bench_peers import PEERS

        peers = () if args.no_peers else tuple(p for p in args.peers.split(",") if p)
        unknown = [p for p in peers if p not in PEERS]
        if unknown:
            raise ValueError(f"--peers must name {' or '.join(PEERS)}, got {unknown}")
    except ValueError as exc:
        print(f"fastconv bench: {exc}", file=sys.stderr)
        return 2
    from . import _bench_peers, _bench_report

    peers = tuple(p for p in peers if _bench_peers.available(p))
    try:
        description = _bench_report.machine(thread_counts, args.dtype, peers)
    except ImportError as exc:  # the compiled core is not built
        print(f"fastconv bench: {exc}", file=sys.stderr)
        return 2
    v = description["versions"]
    parts = [f"fastconv {v['fastconv']}", str(description["cpu"]), f"isa {description['isa']}",
             f"OpenMP {description['openmp_runtime'] if description['openmp'] else 'off'}",
             args.dtype, *(f"{p} {v[p]}" for p in peers)]
    print(" | ".join(parts if peers else [*parts, "no peers"]))
    busy = description.get("busy_cpus_before")
    if busy is not None and busy >= 0.3:
        print(f"fastconv bench: note: other processes kept {busy:.1f} of "
              f"{description['cpu_count']} CPUs busy just before the run: figures (those with "
              f"more than one thread most) will be noisy; --stat min helps", file=sys.stderr)
    progress = Progress(len(layers) * len(thread_counts), enabled=not args.quiet)
    progress.show("starting")
    before = _bench_report.cpu_sample()
    rows = run(layers, thread_counts, args, peers, progress)
    busy = description["busy_cpus_during"] = _bench_report.other_cpus(
        before, _bench_report.cpu_sample())
    print(_bench_report.format_table(rows, list(peers)))
    wrong = [r for r in rows if not r["ok"] and not r["peer"]]
    for r in rows:
        if "failure" in r:
            print(f"fastconv bench: {r['layer']} {r['contender']} raised {r['failure']}",
                  file=sys.stderr)
    if args.json:
        _bench_report.write_json(args.json, rows, description, argv)
        print(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(_bench_report.format_markdown(rows, list(peers)) + "\n")
        print(f"wrote {args.markdown}")
    if args.plot:
        message = _bench_report.plot(args.plot, rows, description)
        print(message or f"wrote {args.plot}", file=sys.stderr if message else sys.stdout)
    if busy is not None and busy >= 0.3:
        print(f"fastconv bench: note: other processes kept {busy:.1f} of "
              f"{description['cpu_count']} CPUs busy on average during the run: figures (those "
              f"with more than one thread most) are less reliable than on a quiet machine",
              file=sys.stderr)
    if wrong:
        names = ", ".join(f"{r['layer']} {r['contender']}" for r in wrong)
        print(f"fastconv bench: wrong results (not timed): {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
