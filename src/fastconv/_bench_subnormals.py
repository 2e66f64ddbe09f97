"""What subnormal inputs cost: every operator and algorithm timed on normal input and on the same
input scaled into the subnormal range, with fastconv's default flushing and with IEEE
subnormals (``fastconv bench --subnormals``, ``benchmarks/bench_subnormals.py``).

With flushing the ratio must be ~1 on every CPU; with IEEE arithmetic it shows what the CPU
charges for subnormals (Intel cores: a microcode assist per instruction, 10-70x; AMD Zen cores:
little or nothing).
"""

import numpy as np

from ._timing import interleaved


def _cases(threads: int):
    import fastconv

    r = np.random.default_rng(0)
    x = np.abs(r.standard_normal((1, 32, 40, 40))).astype(np.float32) + 0.5
    w = r.standard_normal((32, 32, 3, 3)).astype(np.float32)
    dw = r.standard_normal((32, 1, 3, 3)).astype(np.float32)
    x1 = x.reshape(1, 32, 1600)
    w1 = w[:, :, 1]
    x3 = x.reshape(1, 32, 4, 20, 20)
    w3 = r.standard_normal((32, 32, 3, 3, 3)).astype(np.float32)
    t = threads
    cases = {f"conv2d {a}": (lambda a_, alg=a: fastconv.conv2d(a_, w, padding=1, algorithm=alg,
                                                                threads=t))
             for a in ("direct", "im2col", "winograd_f2", "winograd_f4", "winograd_f6")}
    cases.update({
        "conv2d depthwise": lambda a: fastconv.conv2d(a, dw, padding=1, groups=32, threads=t),
        "conv1d": lambda a: fastconv.conv1d(a.reshape(x1.shape), w1, padding=1, threads=t),
        "conv3d": lambda a: fastconv.conv3d(a.reshape(x3.shape), w3, padding=1, threads=t),
        "conv_transpose2d gemm": lambda a: fastconv.conv_transpose2d(a, w, stride=2,
                                                                     algorithm="gemm", threads=t),
        "conv_transpose2d phase": lambda a: fastconv.conv_transpose2d(
            a, w, stride=2, algorithm="phase", threads=t),
        "max_pool2d": lambda a: fastconv.max_pool2d(a, 3, 1, 1, threads=t),
        "avg_pool2d": lambda a: fastconv.avg_pool2d(a, 3, 1, 1, threads=t),
        "lp_pool2d": lambda a: fastconv.lp_pool2d(a, 2.0, 3, 1, threads=t),
        "adaptive_avg_pool2d": lambda a: fastconv.adaptive_avg_pool2d(a, 7, threads=t),
        "global_avg_pool": lambda a: fastconv.global_avg_pool(a, threads=t),
    })
    return x, cases


def measure(threads: int = 1, repeats: int = 9) -> list[dict]:
    """Per operator: median seconds on normal input, on subnormal input with flushing (the
    default) and with IEEE subnormals, interleaved in one loop."""
    import fastconv

    x, cases = _cases(threads)
    tiny = (x * 1e-39).astype(np.float32)  # every element subnormal in float32
    assert np.all(tiny < np.finfo(np.float32).tiny) and np.all(tiny > 0)
    rows = []
    for name, call in cases.items():
        def ieee(call=call):
            with fastconv.flush_denormal(False):
                return call(tiny)

        def flushed(call=call):
            with fastconv.flush_denormal(True):
                return call(tiny)

        def normal(call=call):
            with fastconv.flush_denormal(True):
                return call(x)

        t = interleaved({"normal": normal, "flush": flushed, "ieee": ieee}, repeats=repeats,
                        min_time=0.02)
        rows.append({"operator": name, "normal_s": t["normal"], "flush_s": t["flush"],
                     "ieee_s": t["ieee"], "flush_ratio": t["flush"] / t["normal"],
                     "ieee_ratio": t["ieee"] / t["normal"]})
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'operator':<26} {'normal ms':>10} {'subnormal, flushed':>19} "
             f"{'subnormal, IEEE':>16}"]
    for r in rows:
        lines.append(f"{r['operator']:<26} {r['normal_s'] * 1e3:>10.3f} "
                     f"{r['flush_ratio']:>18.2f}x {r['ieee_ratio']:>15.2f}x")
    return "\n".join(lines)


def main(threads: list[int], repeats: int = 9) -> int:
    from ._bench_report import machine

    cpu = machine(threads, "float32", ())["cpu"]
    worst = 1.0
    for t in threads:
        rows = measure(t, repeats)
        print(f"subnormal input / normal input, median time, {cpu}, {t} thread(s)")
        print(format_rows(rows))
        worst = max(worst, *(r["flush_ratio"] for r in rows))
    print(f"worst ratio with flushing (the default): {worst:.2f}x")
    return 0
