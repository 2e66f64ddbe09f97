"""This CPU's own limits, measured: FMA peak per instruction set, and read bandwidth.

``fastconv info --peak`` prints them; ``benchmarks/bench_gemm.py`` and ``fastconv._testing``
quote GEMM rates as a fraction of the same peak loop.

- **FMA peak**: the C loop ``fc_gemm_fma_peak_run`` (``src/fastconv/_isa/gemm_<isa>.c``),
  compiled with each ISA's flags beside its kernels: 12 independent chains of full-vector FMAs
  per thread, enough to hide the FMA latency on two pipes (4-5 cycles x 2 FMA units = 8-10
  chains in flight). ``2 * lanes`` flops per FMA.
- **Read bandwidth**: ``fc_read_bandwidth_run`` sums a buffer much larger than the last-level
  cache (256 MiB by default) with 8 independent 64-bit accumulators, each thread its own share:
  the rate at which one core (or n) pulls data from DRAM.

Every figure is the best of a few runs, each sized by calibration to last ``seconds``, and
timed by the process's CPU time shared out over the threads, ``min(wall, cpu / threads)``: on
a machine shared with other jobs, time spent waiting for a core does not count, so the figure
is what the cores do when they run (on a quiet machine it is the wall-clock rate). Except the
bandwidth at several threads, which share the memory: wall-clock time only (so other jobs
lower it).

Examples
--------
>>> from fastconv import _peak
>>> _peak.fma_peak_gflops(threads=1, seconds=0.002, repeats=1) > 0
True
"""

import time

import numpy as np

from . import _dispatch, _threads
from ._extension import load

__all__ = ["BANDWIDTH_BYTES", "fma_peak_gflops", "peak_runner", "read_bandwidth_gbs", "measure",
           "format_report"]

#: Buffer of the read-bandwidth loop: far beyond any last-level cache of a CPU this runs on.
BANDWIDTH_BYTES = 256 << 20


def _isa_index(isa: str | None) -> int:
    if isa is None:
        return _dispatch.isa_index()
    if isa not in _dispatch.available_isas():
        raise ValueError(f"isa={isa!r} is not available here (available: "
                         f"{', '.join(_dispatch.available_isas())})")
    return _dispatch.isa_names().index(isa)


def peak_runner(isa: str | None = None, threads: int = 1, dtype: object = "float32",
                seconds: float = 0.01, clock=time.thread_time):
    """A callable running the FMA peak loop of ``isa`` for about ``seconds`` (calibrated on
    ``clock`` at one thread) on ``threads`` threads, and the flops one call does."""
    gemm_lib = load("_gemm")
    index, f64 = _isa_index(isa), np.dtype(dtype) == np.float64
    iters = 1 << 12
    while True:
        start = clock()
        flops = gemm_lib.fma_peak_flops(index, f64, iters, 1)
        if clock() - start > seconds or iters > 1 << 34:
            break
        iters *= 2
    return (lambda: gemm_lib.fma_peak_flops(index, f64, iters, threads)), flops * threads


def fma_peak_gflops(isa: str | None = None, dtype: object = "float32", threads: int = 1,
                    seconds: float = 0.03, repeats: int = 3) -> float:
    """The FMA peak of ``isa`` (default: the one in use) in GFLOP/s on ``threads`` threads:
    best wall-clock rate of ``repeats`` runs of about ``seconds`` each."""
    nthreads = _threads.check_threads(threads)
    run, flops = peak_runner(isa, nthreads, dtype, seconds)
    run()  # wake the workers
    return max(flops / _seconds(run, nthreads) for _ in range(max(1, repeats))) / 1e9


def _seconds(run, threads: int, cpu: bool = True) -> float:
    """Duration of ``run()``: ``min(wall, process CPU time / threads)`` (module docstring), or
    the wall-clock time alone (``cpu=False``)."""
    wall, used = time.perf_counter(), time.process_time()
    run()
    wall, used = time.perf_counter() - wall, time.process_time() - used
    return max(min(wall, used / threads) if cpu and used > 0 else wall, 1e-9)


def read_bandwidth_gbs(threads: int = 1, nbytes: int | None = None, seconds: float = 0.1,
                       repeats: int = 3) -> float:
    """DRAM read bandwidth in GB/s (1e9 bytes) on ``threads`` threads: best of ``repeats``
    runs over an ``nbytes`` buffer (default :data:`BANDWIDTH_BYTES`), each about ``seconds``
    long (at least one pass)."""
    gemm_lib = load("_gemm")
    nbytes = BANDWIDTH_BYTES if nbytes is None else nbytes
    nthreads = _threads.check_threads(threads)
    raw = np.empty(nbytes + 64, np.uint8)
    offset = (-raw.ctypes.data) % 64
    buf = raw[offset:offset + nbytes]
    buf[:] = 1  # touch every page before timing
    gemm_lib.read_bandwidth_bytes(buf, 1, nthreads)
    start = time.perf_counter()
    gemm_lib.read_bandwidth_bytes(buf, 1, nthreads)
    passes = max(1, int(seconds / max(time.perf_counter() - start, 1e-6)))
    done = nbytes // 64 * 64 * passes

    def run():
        return gemm_lib.read_bandwidth_bytes(buf, passes, nthreads)

    # several threads share the memory: only wall-clock time says what they pull together
    return max(done / _seconds(run, nthreads, cpu=nthreads == 1)
               for _ in range(max(1, repeats))) / 1e9


def measure(threads=(1, 2), dtypes=("float32", "float64"), isas=None,
            bandwidth: bool = True) -> dict:
    """Every figure ``fastconv info --peak`` prints, as a dict:
    ``{"fma": {isa: {dtype: {threads: GFLOP/s}}}, "bandwidth": {threads: GB/s}}``."""
    isas = list(_dispatch.available_isas() if isas is None else isas)
    result: dict = {"fma": {}, "bandwidth": {}}
    for isa in isas:
        result["fma"][isa] = {dt: {t: fma_peak_gflops(isa, dt, t) for t in threads}
                              for dt in dtypes}
    if bandwidth:
        result["bandwidth"] = {t: read_bandwidth_gbs(t) for t in threads}
    return result


def format_report(figures: dict, cpu: str = "") -> str:
    """The table ``fastconv info --peak`` prints for :func:`measure`'s result."""
    lines = [f"measured peak of this CPU{f' ({cpu})' if cpu else ''}:"]
    threads = sorted({t for per_isa in figures["fma"].values() for per_dt in per_isa.values()
                      for t in per_dt} | set(figures.get("bandwidth", {})))
    head = "".join(f"{f'{t} thread' + ('s' if t > 1 else ''):>13}" for t in threads)
    lines.append(f"  {'FMA peak, GFLOP/s':<26}{head}")
    for isa, per_isa in figures["fma"].items():
        for dtype, per_dt in per_isa.items():
            cells = "".join(f"{per_dt[t]:13.1f}" if t in per_dt else f"{'-':>13}"
                            for t in threads)
            lines.append(f"  {isa + ' ' + dtype:<26}{cells}")
    if figures.get("bandwidth"):
        bw = figures["bandwidth"]
        cells = "".join(f"{bw[t]:13.1f}" if t in bw else f"{'-':>13}" for t in threads)
        lines.append(f"  {'read bandwidth, GB/s':<26}{cells}")
        lines.append(f"  (FMA: 12 independent full-vector chains per thread; read: "
                     f"{BANDWIDTH_BYTES >> 20} MiB buffer, 8 x 64-bit accumulators. Timed by "
                     f"CPU time, except the read bandwidth at several threads: wall clock, so "
                     f"other jobs on the machine lower it)")
    return "\n".join(lines)
