"""The thread runtime's fixed costs (issue 16): wake latency, idle CPU, the call path.

    flock /tmp/cpu.lock python benchmarks/bench_runtime.py [--quick]

Prints
- back-to-back: 1000 calls of a ~0.05 ms convolution at 1 and at 2 threads (target: 2 threads
  >= 1.6x faster),
- after-idle: the first call after 50 ms of sleep against a back-to-back call (target <= 1.3x),
- idle CPU: CPU time the process uses in the 100 ms after its last call (target < 1 ms),
- fixed cost: ``conv2d`` on 1x16x8x8 with a 16x16x3x3 weight and ``max_pool2d`` on 1x16x8x8
  against ``torch.nn.functional`` (median, interleaved, same process; target <= 1.2x; skipped
  without torch), and the layer object ``Conv2d`` (target <= 1.0x).
Timing method: ``time.perf_counter_ns``; medians of interleaved batches.
"""

import argparse
import os
import resource
import statistics
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # fastconv's own default, before loading

import fastconv  # noqa: E402


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def batch_mean(fn, calls: int) -> float:
    """Mean seconds per call of ``calls`` back-to-back calls."""
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        fn()
    return (time.perf_counter_ns() - t0) * 1e-9 / calls


def layer_case():
    """A convolution layer of about 0.05 ms on one thread (3x3, 32->32 channels, 16x16)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 32, 16, 16), dtype=np.float32)
    layer = fastconv.Conv2d(rng.standard_normal((32, 32, 3, 3), dtype=np.float32), padding=1)
    return x, layer


def back_to_back(reps: int) -> dict:
    x, layer = layer_case()
    out = {}
    for threads in (1, 2):
        layer(x, threads=threads)
        best = min(batch_mean(lambda t=threads: layer(x, threads=t), 1000) for _ in range(reps))
        out[threads] = best
    return out


def after_idle(reps: int) -> tuple[float, float]:
    x, layer = layer_case()
    firsts, warm = [], []
    for _ in range(reps):
        for _ in range(20):
            layer(x, threads=2)
        warm.append(batch_mean(lambda: layer(x, threads=2), 20))
        time.sleep(0.05)
        t0 = time.perf_counter_ns()
        layer(x, threads=2)
        firsts.append((time.perf_counter_ns() - t0) * 1e-9)
    return statistics.median(firsts), statistics.median(warm)


def idle_cpu() -> float:
    x, layer = layer_case()
    for _ in range(200):
        layer(x, threads=2)
    c0 = cpu_seconds()
    time.sleep(0.1)
    return cpu_seconds() - c0


def interleaved(fns: dict, rounds: int, calls: int) -> dict:
    """Median over ``rounds`` of the mean of ``calls`` calls, the functions taking turns."""
    samples: dict = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(50):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(batch_mean(fn, calls))
    return {name: statistics.median(v) for name, v in samples.items()}


def fixed_cost(rounds: int) -> dict | None:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 16, 8, 8), dtype=np.float32)
    w = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    layer = fastconv.Conv2d(w)
    tlayer = torch.nn.Conv2d(16, 16, 3, bias=False)
    with torch.no_grad():
        tlayer.weight.copy_(tw)
    with torch.inference_mode():
        return interleaved({
            "fastconv.conv2d": lambda: fastconv.conv2d(x, w, threads=1),
            "F.conv2d": lambda: F.conv2d(tx, tw),
            "fastconv.Conv2d": lambda: layer(x, threads=1),
            "torch.nn.Conv2d": lambda: tlayer(tx),
            "fastconv.max_pool2d": lambda: fastconv.max_pool2d(x, 2, threads=1),
            "F.max_pool2d": lambda: F.max_pool2d(tx, 2),
        }, rounds, 200)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    reps = 3 if args.quick else 7
    cfg = fastconv.config()
    print(f"CPU {cfg['processor']} | {os.cpu_count()} CPUs | load {os.getloadavg()[0]:.2f} | "
          f"fastconv {cfg['version']} {cfg['isa']} openmp={cfg['openmp']} "
          f"({cfg['openmp_runtime']}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')})")
    b2b = back_to_back(reps)
    print(f"back-to-back, 1000 calls of 3x3 32->32 16x16 (Conv2d): 1 thread "
          f"{b2b[1] * 1e6:.1f} us/call, 2 threads {b2b[2] * 1e6:.1f} us/call, "
          f"speed-up {b2b[1] / b2b[2]:.2f}x (target >= 1.6x)")
    first, warm = after_idle(11 if args.quick else 21)
    print(f"after-idle, 2 threads: first call after 50 ms sleep {first * 1e6:.1f} us, "
          f"back-to-back {warm * 1e6:.1f} us, ratio {first / warm:.2f}x (target <= 1.3x)")
    print(f"idle CPU in the 100 ms after the last call: {idle_cpu() * 1e3:.3f} ms "
          f"(target < 1 ms)")
    costs = fixed_cost(15 if args.quick else 41)
    if costs is None:
        print("fixed cost: torch not installed, skipped")
        return
    for ours, theirs, target in (("fastconv.conv2d", "F.conv2d", 1.2),
                                 ("fastconv.Conv2d", "torch.nn.Conv2d", 1.0),
                                 ("fastconv.max_pool2d", "F.max_pool2d", 1.2)):
        a, b = costs[ours], costs[theirs]
        print(f"fixed cost 1x16x8x8: {ours} {a * 1e6:.2f} us, {theirs} {b * 1e6:.2f} us, "
              f"ratio {a / b:.2f}x (target <= {target}x)")


if __name__ == "__main__":
    main()
