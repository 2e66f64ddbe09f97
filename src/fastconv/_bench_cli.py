"""``fastconv bench``: time real-network layers, every algorithm, against PyTorch / ONNX Runtime.

For each layer of the chosen suite (or ``--layer``) and each thread count, the contenders are:
the functional call (``conv2d(...)``, ``algorithm="auto"``), a prepared layer object per
algorithm that can serve the layer (``Conv2d(..., algorithm=a)``; the one ``"auto"`` picks is
starred), and each peer that is importable. Every contender's result is first checked against
a float64 reference (:mod:`fastconv._bench_reference`); a wrong result is reported and not
timed. Timing (:mod:`fastconv._timing`): warm-up, then the median of enough repeats,
interleaving the contenders call by call at one thread and in short alternating blocks at more
(so that one runtime's spinning workers do not steal the next one's cores).

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

columns: ms = median milliseconds per call; GFLOP/s = 2*MACs of the direct convolution / time
(Winograd credited the same: "effective"); pools and depthwise layers also in GB/s = (input +
output [+ weight] bytes) / time; xtorch, xort = peer time / this time (> 1: fastconv faster);
err = max|result - float64 reference| / max|reference|. '*' marks the algorithm "auto" picks.

examples:
  fastconv bench --suite resnet18 --threads 1,2
  fastconv bench --suite all --threads 1 --json results.json --plot results.png
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
    parser.add_argument("--suite", choices=("resnet18", "vgg16", "mobilenet", "unet", "all"),
                        help="a named suite of layers (default: resnet18 unless --layer)")
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
    parser.add_argument("--max-time", type=float, default=4.0, metavar="SECONDS",
                        help="stop adding calls for a layer after this long (default 4)")
    parser.add_argument("--json", metavar="FILE", help="write raw figures and the machine here")
    parser.add_argument("--plot", metavar="FILE.png", help="draw GFLOP/s bars (needs matplotlib)")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
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
        error = relative_error(np.asarray(c.run()), expected)
        ok = c.peer or error <= _tolerance(args.dtype, c.algorithm)
        rows.append(dict(layer=layer.name, kind=layer.kind, shape=list(layer.input_shape),
                         threads=threads, contender=c.name, algorithm=c.algorithm,
                         peer=c.peer, auto=c.auto, error=error, ok=ok))
        if ok:
            timed[c.name] = c.run
    progress.show(f"{layer.name} {threads}T: timing {len(timed)} contenders")
    time_it = _timing.interleaved_samples if threads == 1 else _timing.blocked_samples
    samples = time_it(timed, repeats=args.repeats, warmup=2, min_time=args.min_time,
                      max_time=args.max_time) if timed else {}
    itemsize = np.dtype(args.dtype).itemsize
    for row in rows:
        seconds = samples.get(row["contender"])
        if seconds:
            row["seconds"] = statistics.median(seconds)
            row["samples"] = seconds
            row.update(_rates(layer, row["seconds"], itemsize))
    peer_seconds = {r["contender"]: r["seconds"] for r in rows if r["peer"] and "seconds" in r}
    for row in rows:
        if not row["peer"] and "seconds" in row:
            row["ratios"] = {p: s / row["seconds"] for p, s in peer_seconds.items()}
    return rows


def run(layers: list, thread_counts: list[int], args, peers: tuple[str, ...],
        progress: Progress) -> list[dict]:
    """Every row of the table: per thread count, per layer, per contender."""
    from ._bench_peers import restore_torch_threads

    rows = []
    with restore_torch_threads():
        for threads in thread_counts:
            for layer in layers:
                rows.extend(_measure(layer, threads, args, peers, progress))
                progress.step(f"{layer.name} {threads}T done")
    progress.close()
    return rows


# ---- reporting -------------------------------------------------------------------------------
def format_table(rows: list[dict], peers: list[str]) -> str:
    """The aligned text table: layer, threads, contender, ms, rate, ratio per peer, error."""
    short = {"torch": "xtorch", "onnxruntime": "xort"}
    head = ["layer", "thr", "contender", "ms", "GFLOP/s", "GB/s",
            *(short.get(p, "x" + p) for p in peers), "err"]
    lines = []
    for row in rows:
        seconds = row.get("seconds")
        name = row["contender"] + ("*" if row["auto"] else "")
        cells = [row["layer"], str(row["threads"]), name,
                 f"{seconds * 1e3:.3f}" if seconds else "-",
                 f"{row['gflops']:.1f}" if "gflops" in row else "",
                 f"{row['gbs']:.1f}" if "gbs" in row else ""]
        cells += [f"{row['ratios'][p]:.2f}" if p in row.get("ratios", {}) else ""
                  for p in peers]
        cells.append(f"{row['error']:.1e}" + ("" if row["ok"] else " WRONG"))
        lines.append(cells)
    widths = [max(len(head[i]), *(len(line[i]) for line in lines)) if lines else len(head[i])
              for i in range(len(head))]
    left = {0, 2}

    def fmt(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out, previous = [fmt(head), fmt(["-" * w for w in widths])], None
    for row, cells in zip(rows, lines):
        key = (row["layer"], row["threads"])
        if previous is not None and key != previous:
            out.append("")
        previous = key
        out.append(fmt(cells))
    return "\n".join(out)


def _cpu_details() -> dict:
    """Vendor, family, model and cache sizes where the OS tells them (Linux, macOS)."""
    details: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "cpu family", "model", "stepping") \
                        and key not in details:
                    details[key.replace(" ", "_")] = value.strip()
                if not line.strip() and details:
                    break
        base = "/sys/devices/system/cpu/cpu0/cache"
        for index in sorted(os.listdir(base)):
            with open(f"{base}/{index}/level") as f:
                level = f.read().strip()
            with open(f"{base}/{index}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{index}/size") as f:
                size = f.read().strip()
            if kind != "Instruction":
                details[f"L{level}{'d' if level == '1' else ''}"] = size
    except OSError:
        pass
    if sys.platform == "darwin":
        import subprocess

        try:
            details["brand"] = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return details


def machine(thread_counts: list[int], args, peers: tuple[str, ...] = ()) -> dict:
    """What the figures were measured on: CPU, instruction set, threads, versions."""
    import platform

    from . import _bench_peers
    from ._config import config

    cfg = config()
    return {
        "cpu": cfg.get("processor"), "cpu_details": _cpu_details(),
        "machine": cfg.get("machine"),
        "platform": platform.platform(), "cpu_count": cfg.get("cpu_count"),
        "isa": cfg.get("isa"), "isa_available": cfg.get("isa_available"),
        "openmp": cfg.get("openmp"), "openmp_runtime": cfg.get("openmp_runtime"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "threads": thread_counts, "dtype": args.dtype,
        "versions": {"fastconv": cfg.get("version"), "python": cfg.get("python"),
                     "numpy": cfg.get("numpy"), **_bench_peers.versions(peers)},
    }


def write_json(path: str, rows: list[dict], description: dict, argv: list[str]) -> None:
    import json

    with open(path, "w") as f:
        json.dump({"command": ["fastconv", "bench", *argv], "machine": description,
                   "results": rows}, f, indent=1)


def plot(path: str, rows: list[dict], description: dict) -> str | None:
    """Bars of GFLOP/s (GB/s for pools) per layer and runtime; an error message or None.

    fastconv's bar is its best algorithm for the layer (the table has every one); one panel per
    thread count and unit.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return ("--plot needs matplotlib, which is not installed: pip install matplotlib "
                "(the table and --json do not need it)")
    panels: dict[tuple[int, str], dict[str, dict[str, float]]] = {}
    for row in rows:
        unit = "gflops" if "gflops" in row else "gbs" if "gbs" in row else None
        if unit is None:
            continue
        runtime = row["contender"] if row["peer"] else "fastconv"
        layer = panels.setdefault((row["threads"], unit), {}).setdefault(row["layer"], {})
        layer[runtime] = max(layer.get(runtime, 0.0), row[unit])
    if not panels:
        return "--plot: nothing was timed"
    units = [u for u in ("gflops", "gbs") if any(k[1] == u for k in panels)]
    thread_counts = sorted({k[0] for k in panels})
    runtimes = ["fastconv"] + [p for p in ("torch", "onnxruntime")
                               if any(p in layer for panel in panels.values()
                                      for layer in panel.values())]
    colors = {"fastconv": "#d62728", "torch": "#1f77b4", "onnxruntime": "#7f7f7f"}
    layer_names = {u: list(dict.fromkeys(n for k, panel in panels.items() if k[1] == u
                                         for n in panel)) for u in units}
    heights = [0.25 * len(layer_names[u]) * len(runtimes) + 1.2 for u in units]
    fig, axes = plt.subplots(len(units), len(thread_counts), squeeze=False, sharey="row",
                             figsize=(4.5 * len(thread_counts) + 1.5, sum(heights) + 0.8),
                             gridspec_kw={"height_ratios": heights})
    bar = 0.8 / len(runtimes)
    for r, unit in enumerate(units):
        names = layer_names[unit]
        for c, threads in enumerate(thread_counts):
            ax, panel = axes[r, c], panels.get((threads, unit), {})
            for i, runtime in enumerate(runtimes):
                values = [panel.get(n, {}).get(runtime, 0.0) for n in names]
                label = "fastconv (best algorithm)" if runtime == "fastconv" else runtime
                ax.barh([j + (i - (len(runtimes) - 1) / 2) * bar for j in range(len(names))],
                        values, height=bar, color=colors.get(runtime),
                        label=label if (r, c) == (0, 0) else None)
            ax.set_yticks(range(len(names)), names)
            ax.set_ylim(len(names) - 0.5, -0.5)
            ax.set_xlabel("GFLOP/s (direct-convolution flops)" if unit == "gflops"
                          else "GB/s (input + output bytes)")
            ax.set_title(f"{threads} thread{'s' if threads > 1 else ''}", fontsize=10)
            ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="upper right", fontsize=8, ncol=len(runtimes))
    fig.suptitle(f"fastconv {description['versions']['fastconv']} on {description['cpu']} "
                 f"({description['isa']}, {description['dtype']})", fontsize=10, x=0.02,
                 ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    if args.list:
        from ._suite import suite

        for layer in suite("all"):
            print(f"{layer.name:<24} {layer.kind:<15} {'x'.join(map(str, layer.input_shape)):<16} "
                  f"{','.join(layer.suites)}")
        return 0
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
    from . import _bench_peers

    peers = tuple(p for p in peers if _bench_peers.available(p))
    description = machine(thread_counts, args, peers)
    v = description["versions"]
    parts = [f"fastconv {v['fastconv']}", str(description["cpu"]), f"isa {description['isa']}",
             f"OpenMP {description['openmp_runtime'] if description['openmp'] else 'off'}",
             args.dtype, *(f"{p} {v[p]}" for p in peers)]
    print(" | ".join(parts if peers else [*parts, "no peers"]))
    progress = Progress(len(layers) * len(thread_counts), enabled=not args.quiet)
    progress.show("starting")
    rows = run(layers, thread_counts, args, peers, progress)
    print(format_table(rows, list(peers)))
    wrong = [r for r in rows if not r["ok"]]
    if args.json:
        write_json(args.json, rows, description, argv)
        print(f"wrote {args.json}")
    if args.plot:
        message = plot(args.plot, rows, description)
        print(message or f"wrote {args.plot}", file=sys.stderr if message else sys.stdout)
    if wrong:
        names = ", ".join(f"{r['layer']} {r['contender']}" for r in wrong)
        print(f"fastconv bench: wrong results (not timed): {names}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
