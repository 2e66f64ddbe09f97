"""Packed GEMM rate against this machine's FMA peak, measured in the same run.

float32 (``--dtype float64`` for the double kernels); M = N = K = 1024 and the tall-skinny
shapes convolution gives the GEMM (M = 64, K = 576, N = 3136: 3x3 conv 64 -> 64 on 56x56;
M = 512, K = 4608, N = 49: 3x3 conv 512 -> 512 on 7x7), on 1 and 2 threads, for every SIMD ISA
available here, each against its own ISA's peak (12 independent full-vector FMA chains per
thread, the C loop compiled beside the kernels). A is packed once (as a conv layer packs its
weights); B is packed on every call.

Three ratios per shape. "median wall" and "best wall": the GEMM's rate over the peak loop's
rate timed the same way in the same interleaved rounds. "vs core peak": against the hardware
peak, timed by CPU time so that a shared machine cannot shrink it: on 1 thread the GEMM's rate
per CPU-second of the calling thread (best round) over the peak loop's; on n threads the best
wall-clock rate over n times the 1-thread CPU-time peak (a conservative figure: it counts the
time a thread waits for a core). On a busy machine the wall-clock peak itself is too low, so
"vs core peak" is the figure to quote.

    python benchmarks/bench_gemm.py [--dtype float64]     # the table
    python -m pytest benchmarks/bench_gemm.py --benchmark-only
"""

import argparse
import statistics
import sys
import time

import numpy as np
import pytest

from fastconv import _dispatch, _peak, _testing

SHAPES = [(1024, 1024, 1024), (64, 576, 3136), (512, 4608, 49)]  # (M, K, N)
THREADS = (1, 2)


def simd_isas() -> list[str]:
    """The vector ISAs available here (scalar is not a speed target)."""
    return [isa for isa in _dispatch.available_isas() if isa != "scalar"] or ["scalar"]


def runner(isa: str, shape: tuple[int, int, int], threads: int, dtype: str = "float32"):
    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    return _testing.packed_gemm(a, b, isa=isa, threads=threads)


def peak_runner(isa: str, threads: int, dtype: str = "float32", seconds: float = 0.01):
    """A callable running the FMA peak loop for ~``seconds`` of CPU, and the flops it does
    (the loop ``fastconv info --peak`` times: :func:`fastconv._peak.peak_runner`)."""
    return _peak.peak_runner(isa, threads, dtype, seconds)


def interleaved_times(contenders: dict, rounds: int,
                      clock=time.perf_counter) -> dict[str, list[float]]:
    """``clock`` seconds of every call, contenders called round-robin (rotating order) after a
    warm-up."""
    names = list(contenders)
    for name in names:
        contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = clock()
            contenders[name]()
            times[name].append(clock() - start)
    return times


def measure(isa: str, threads: int, dtype: str = "float32",
            rounds: int = 21) -> dict[str, tuple[float, float, float, float]]:
    """GFLOP/s of the peak loop and of each shape: (median wall, best wall, "vs core peak" rate,
    the core-peak rate it is compared with; see the module docstring)."""
    contenders, flops = {}, {}
    contenders["peak"], flops["peak"] = peak_runner(isa, threads, dtype)
    for shape in SHAPES:
        name = "x".join(map(str, shape))
        contenders[name] = runner(isa, shape, threads, dtype).run
        flops[name] = 2.0 * shape[0] * shape[1] * shape[2]
    wall = interleaved_times(contenders, rounds)
    if threads == 1:
        cpu = interleaved_times(contenders, rounds, time.thread_time)
    else:
        one_peak, flops["peak1"] = peak_runner(isa, 1, dtype)
        cpu = interleaved_times({"peak1": one_peak}, rounds, time.thread_time)
        cpu["peak"] = cpu["peak1"]
    core_peak = threads * flops["peak" if threads == 1 else "peak1"] / min(cpu["peak"]) / 1e9
    rates = {}
    for name in contenders:
        med, best = (flops[name] / statistics.median(wall[name]) / 1e9,
                     flops[name] / min(wall[name]) / 1e9)
        core = flops[name] / min(cpu[name]) / 1e9 if threads == 1 else best
        rates[name] = (med, best, core_peak if name == "peak" else core, core_peak)
    return rates


def table(dtype: str = "float32") -> str:
    """One line per (ISA, threads, shape): GFLOP/s and its ratio to the peak (module docstring)."""
    lines = [f"{'isa':7} {'kernel':36} {'thr':>3} {'M x K x N':>16}   "
             f"{'median wall':>14}   {'best wall':>14}   {'vs core peak':>14}"]
    for isa in simd_isas():
        kernel = _testing.gemm_config(isa, dtype)["kernel"]
        for threads in THREADS:
            rates = measure(isa, threads, dtype)
            peak = rates.pop("peak")
            lines.append(f"{isa:7} {kernel:36} {threads:>3} {'FMA peak':>16}   "
                         + "   ".join(f"{p:6.0f} GFLOP/s" for p in peak[:3]))
            for name, (med, best, core, core_peak) in rates.items():
                cells = [f"{r:6.0f} ({r / p:5.0%})"
                         for r, p in ((med, peak[0]), (best, peak[1]), (core, core_peak))]
                lines.append(f"{'':7} {'':36} {'':>3} {name:>16}   " + "   ".join(cells))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def peaks() -> dict[tuple[str, int], float]:
    return {(isa, t): _testing.peak_gflops(isa, "float32", threads=t)
            for isa in simd_isas() for t in THREADS}


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "M{}_K{}_N{}".format(*s))
@pytest.mark.parametrize("isa", simd_isas())
def test_gemm_rate(benchmark, peaks, isa, shape, threads):
    run = runner(isa, shape, threads).run
    benchmark.pedantic(run, rounds=15, warmup_rounds=2)
    gflops = 2.0 * shape[0] * shape[1] * shape[2] / benchmark.stats.stats.median / 1e9
    benchmark.extra_info.update(gflops=round(gflops, 1), peak_gflops=round(peaks[isa, threads], 1),
                                ratio_to_peak=round(gflops / peaks[isa, threads], 3),
                                kernel=_testing.gemm_config(isa, "float32")["kernel"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    dtype = parser.parse_args().dtype
    print(f"fastconv packed GEMM, {dtype}, 21 interleaved rounds ({sys.platform}); "
          "A packed once, B packed per call; ratio = rate / FMA-peak rate timed the same way")
    print(table(dtype))
