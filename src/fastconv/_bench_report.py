"""What ``fastconv bench`` reports: the text table, a Markdown summary, JSON, the plot.

Every function takes the rows :func:`fastconv._bench_cli.run` measured: one dict per layer,
thread count and contender, with ``layer``, ``kind``, ``threads``, ``contender``, ``peer``,
``auto``, ``error``, ``ok`` and, when timed, ``seconds`` (the chosen statistic), ``median``,
``min``, ``samples``, ``spread``, ``gflops`` and/or ``gbs``, and ``ratios`` (peer time / this
time, for fastconv rows). :func:`machine` describes where they were measured.

Examples
--------
>>> from fastconv._bench_report import format_table
>>> rows = [dict(layer="l", threads=1, contender="conv2d()", peer=False, auto=False,
...              error=1e-7, ok=True, seconds=0.002, gflops=100.0, ratios={"torch": 1.5}),
...         dict(layer="l", threads=1, contender="torch", peer=True, auto=False,
...              error=2e-7, ok=True, seconds=0.003, gflops=66.7)]
>>> print(format_table(rows, ["torch"]))
layer  thr  contender     ms  iqr%  GFLOP/s  GB/s  xtorch      err
-----  ---  ---------  -----  ----  -------  ----  ------  -------
l        1  conv2d()   2.000          100.0          1.50  1.0e-07
l        1  torch      3.000           66.7                2.0e-07
"""

import os
import sys


def format_table(rows: list[dict], peers: list[str]) -> str:
    """The aligned text table: layer, threads, contender, ms, rate, ratio per peer, error.

    ``iqr%`` is the timings' interquartile range as a percentage of their median: how much to
    trust that row (large on a machine shared with other jobs).
    """
    short = {"torch": "xtorch", "onnxruntime": "xort"}
    head = ["layer", "thr", "contender", "ms", "iqr%", "GFLOP/s", "GB/s",
            *(short.get(p, "x" + p) for p in peers), "err"]
    lines = []
    for row in rows:
        seconds = row.get("seconds")
        name = row["contender"] + ("*" if row["auto"] else "")
        spread = row.get("spread")
        cells = [row["layer"], str(row["threads"]), name,
                 f"{seconds * 1e3:.3f}" if seconds else "-",
                 f"{100 * spread:.0f}" if spread is not None and spread < 100 else "",
                 f"{row['gflops']:.1f}" if "gflops" in row else "",
                 f"{row['gbs']:.1f}" if "gbs" in row else ""]
        cells += [f"{row['ratios'][p]:.2f}" if p in row.get("ratios", {}) else ""
                  for p in peers]
        cells.append("FAILED" if "failure" in row else
                     f"{row['error']:.1e}" + ("" if row["ok"] else " WRONG"))
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


def cpu_sample() -> tuple[float, float, float] | None:
    """(CPU-seconds all processes have run, CPU-seconds this process has run, wall clock).

    From ``/proc/stat`` (Linux); None elsewhere. Two samples give, with :func:`other_cpus`, how
    many CPUs the *other* processes of the machine kept busy in between.
    """
    import time

    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]  # user .. steal
        hz = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    if len(ticks) < 5:
        return None
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / hz, time.process_time(), time.perf_counter()


def other_cpus(before, after) -> float | None:
    """CPUs other processes kept busy on average between two :func:`cpu_sample` s."""
    if before is None or after is None or after[2] <= before[2]:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    # /proc/stat counts in clock ticks (10 ms): over a short interval the quotient can exceed
    # the CPUs there are (or go below zero); neither is a measurement
    return min(float(os.cpu_count() or 1), max(0.0, others / (after[2] - before[2])))


def busy_cpus(interval: float = 0.25) -> float | None:
    """How many CPUs other processes keep busy, measured over ``interval`` seconds (Linux).

    A benchmark started beside a compiler or another benchmark reports about 1.

    Examples
    --------
    >>> from fastconv._bench_report import busy_cpus
    >>> busy = busy_cpus(0.05)
    >>> busy is None or busy >= 0
    True
    """
    import time

    before = cpu_sample()
    time.sleep(interval)
    return other_cpus(before, cpu_sample())


def format_markdown(rows: list[dict], peers: list[str]) -> str:
    """A Markdown summary per layer and thread count: fastconv against each peer.

    Like for like: PyTorch's functional call against fastconv's functional call (both prepare
    the weights on every call); ONNX Runtime's session (weights prepacked) against fastconv's
    fastest layer object (weights prepared once), or the function for pools. Ratios are peer
    time / fastconv time (> 1: fastconv faster); the rate (GFLOP/s, GB/s for pools and
    depthwise layers) is that of the fastest fastconv contender.
    """
    names = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime"}
    head = ["layer", "threads", "function ms", "fastest layer object", "ms", "best rate"]
    for p in peers:
        head += [f"{names.get(p, p)} ms", f"x {names.get(p, p)}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["layer"], row["threads"]), []).append(row)
    for (layer, threads), group in groups.items():
        timed = [r for r in group if "seconds" in r]
        function = next((r for r in timed if not r["peer"] and r["contender"].endswith("()")),
                        None)
        objects = [r for r in timed if not r["peer"] and not r["contender"].endswith("()")]
        best_object = min(objects, key=lambda r: r["seconds"]) if objects else None
        fastest = min((r for r in (function, best_object) if r), key=lambda r: r["seconds"],
                      default=None)
        if fastest is None:
            continue
        rate = f"{fastest['gbs']:.1f} GB/s" if "gbs" in fastest \
            else f"{fastest['gflops']:.1f} GFLOP/s"
        cells = [layer, str(threads),
                 f"{function['seconds'] * 1e3:.3f}" if function else "",
                 best_object["contender"] if best_object else "",
                 f"{best_object['seconds'] * 1e3:.3f}" if best_object else "", rate]
        for p in peers:
            peer = next((r for r in timed if r["contender"] == p), None)
            ours = (function if p == "torch" else best_object) or fastest
            cells += ["", ""] if peer is None else \
                [f"{peer['seconds'] * 1e3:.3f}", f"{peer['seconds'] / ours['seconds']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine(thread_counts: list[int], dtype: str, peers: tuple[str, ...] = ()) -> dict:
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
        "busy_cpus_before": busy_cpus(),
        "threads": thread_counts, "dtype": dtype,
        "versions": {"fastconv": cfg.get("version"), "python": cfg.get("python"),
                     "numpy": cfg.get("numpy"), **_bench_peers.versions(peers)},
    }


def write_json(path: str, rows: list[dict], description: dict, argv: list[str]) -> None:
    """The command, the machine and every row, as strict JSON (a non-finite number -> null)."""
    import json
    import math

    def strict(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: strict(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [strict(v) for v in value]
        return value

    with open(path, "w") as f:
        json.dump(strict({"command": ["fastconv", "bench", *argv], "machine": description,
                          "results": rows}), f, indent=1, allow_nan=False)


def plot(path: str, rows: list[dict], description: dict) -> str | None:
    """Bars of GFLOP/s (GB/s for pools) per layer and runtime; an error message or None.

    fastconv's bar is its best algorithm for the layer (the table has every one); one panel per
    thread count and unit, the panels of a unit on one scale so that thread counts compare.
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
                             sharex="row",
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


