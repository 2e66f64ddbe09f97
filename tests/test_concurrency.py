"""Python threads, processes and resources: fastconv is safe to call from anywhere at once.

- Eight Python threads running different operators with different ``threads=`` values give
  exactly the results of serial calls (for every instruction set: the ISA is a process-wide
  choice, so each ISA is tested in turn, not per Python thread).
- The GIL is released during the compiled work: a Python thread keeps counting meanwhile.
- Calls from a ``concurrent.futures`` pool: each call uses its own ``threads=`` team, so N
  workers use up to N * threads OS threads; ``threads=1`` (or ``num_threads(1)``) in the
  workers adds none (docs/reliability.md).
- A process forked after fastconv ran its OpenMP team can still call it.
- 10,000 calls of a mixed workload leave the resident memory flat.
"""

import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastconv


def _rng(seed):
    return np.random.default_rng(seed)


def _workload():
    """Eight different operator calls, each with its own ``threads=`` value."""
    r = _rng(7)
    x2 = r.standard_normal((2, 8, 24, 24)).astype(np.float32)
    x1 = r.standard_normal((2, 8, 50))
    x3 = r.standard_normal((1, 4, 8, 9, 10)).astype(np.float32)
    w2 = r.standard_normal((16, 8, 3, 3)).astype(np.float32)
    w1 = r.standard_normal((4, 8, 5))
    return [
        ("conv2d", lambda t: fastconv.conv2d(x2, w2, padding=1, threads=t), 1),
        ("conv2d-im2col", lambda t: fastconv.conv2d(x2, w2, stride=2, algorithm="im2col",
                                                    threads=t), 2),
        ("conv1d", lambda t: fastconv.conv1d(x1, w1, dilation=2,
                                             threads=t), -1),
        ("conv3d", lambda t: fastconv.conv3d(x3, np.ones((2, 4, 3, 3, 3), np.float32),
                                             threads=t), 2),
        ("conv_transpose2d", lambda t: fastconv.conv_transpose2d(
            x2, np.ones((8, 4, 4, 4), np.float32), stride=2, padding=1, threads=t), 1),
        ("max_pool2d", lambda t: fastconv.max_pool2d(x2, 3, 2, 1, return_indices=True,
                                                     threads=t)[1], 2),
        ("avg_pool3d", lambda t: fastconv.avg_pool3d(x3, 2, ceil_mode=True, threads=t), None),
        ("adaptive_avg_pool2d", lambda t: fastconv.adaptive_avg_pool2d(x2, (5, 7), threads=t),
         2),
    ]


def test_eight_threads_match_serial(isa):
    work = _workload()
    serial = {name: fn(t) for name, fn, t in work}
    barrier = threading.Barrier(len(work))
    results, errors = {}, []

    def worker(name, fn, t):
        try:
            barrier.wait()
            for _ in range(5):  # several rounds, so the calls really overlap
                results.setdefault(name, []).append(fn(t))
        except Exception as exc:  # reported below, in the main thread
            errors.append((name, exc))

    threads = [threading.Thread(target=worker, args=w) for w in work]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    for name, outs in results.items():
        assert len(outs) == 5
        for y in outs:
            np.testing.assert_array_equal(y, serial[name], err_msg=name)


def test_thread_count_does_not_change_results(isa):
    """Per operator, 1 and 2 threads agree (identical for the pools, to rounding for sums)."""
    for name, fn, _ in _workload():
        one, two = fn(1), fn(2)
        if "pool" in name:
            np.testing.assert_array_equal(one, two, err_msg=name)
        else:
            np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-5, err_msg=name)


def _count_while(call):
    """Iterations a Python loop makes while ``call`` runs in another thread, and its duration."""
    done = threading.Event()

    def run():
        call()
        done.set()

    th = threading.Thread(target=run)
    count = 0
    start = time.perf_counter()
    th.start()
    while not done.is_set():
        count += 1
    th.join()
    return count, time.perf_counter() - start


def _python_rate():
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < 0.1:
        count += 1
    return count / (time.perf_counter() - start)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d", "max_pool2d"])
def test_gil_released(op):
    r = _rng(3)
    x = r.standard_normal((4, 64, 56, 56)).astype(np.float32)
    w = r.standard_normal((64, 64, 3, 3)).astype(np.float32)
    wt = np.ones((64, 32, 3, 3), np.float32)
    calls = {  # each a few ms on one thread
        "conv2d": lambda: fastconv.conv2d(x, w, padding=1, threads=1),
        "conv_transpose2d": lambda: fastconv.conv_transpose2d(x, wt, stride=2, threads=1),
        "max_pool2d": lambda: fastconv.max_pool2d(x, 3, 1, 1, threads=1),
    }

    def repeated():  # 0.2 s of calls however fast the kernels get (fixed counts fell to 0.03 s)
        start = time.perf_counter()
        while time.perf_counter() - start < 0.2:
            calls[op]()

    rate = _python_rate()
    count, seconds = _count_while(repeated)
    assert seconds > 0.05, f"{op} too short to tell ({seconds:.3f} s)"
    # With the GIL held for the whole call the loop would run only in the gaps (the switch
    # interval is 5 ms); with it released the loop runs most of the time. 2 cores, shared.
    assert count > 0.2 * rate * seconds, (
        f"{op}: a Python thread ran {count} loop iterations in {seconds:.2f} s, expected more "
        f"than 20% of {rate * seconds:.0f}: is the GIL held?")


def _os_threads():
    return len(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs /proc")
@pytest.mark.skipif(not fastconv.config()["openmp"], reason="serial build")
def test_futures_pool_threads_one_adds_no_threads():
    x = _rng(1).standard_normal((2, 16, 32, 32)).astype(np.float32)
    w = _rng(2).standard_normal((16, 16, 3, 3)).astype(np.float32)
    expected = fastconv.conv2d(x, w, padding=1, threads=1)
    peak = []

    def call(_):
        with fastconv.num_threads(1):
            y = fastconv.conv2d(x, w, padding=1)
        peak.append(_os_threads())
        return y

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        started = threading.Barrier(5)
        for _ in range(4):  # start all four workers now
            pool.submit(started.wait)
        started.wait()
        time.sleep(0.05)
        baseline = _os_threads()  # the interpreter, pytest's and the pool's threads
        for y in pool.map(call, range(16)):
            np.testing.assert_array_equal(y, expected)
    # each worker ran its calls on itself: no OpenMP team was started
    assert max(peak) <= baseline + 0, (baseline, max(peak))


_FORK_CHILD = textwrap.dedent("""
    import os, sys, time, numpy as np, fastconv
    parent_threads, child_threads = int(sys.argv[1]), int(sys.argv[2])
    x = np.random.default_rng(0).standard_normal((2, 16, 32, 32)).astype(np.float32)
    w = np.ones((16, 16, 3, 3), np.float32)
    before = fastconv.conv2d(x, w, padding=1, threads=parent_threads)  # OpenMP team started
    pid = os.fork()
    if pid == 0:
        y = fastconv.conv2d(x, w, padding=1, threads=child_threads)
        p = fastconv.max_pool2d(x, 2, threads=child_threads)
        ok = np.allclose(y, before, rtol=1e-5) and p.shape == (2, 16, 16, 16)
        # libgomp cannot start a team after a fork that followed one: such a child is serial
        serial = parent_threads > 1 and fastconv.config()["openmp_runtime"] == "libgomp"
        ok = ok and (not serial or fastconv.get_num_threads() == 1)
        os._exit(0 if ok else 1)
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exit status", status)
            sys.exit(0 if status == 0 else 1)
        time.sleep(0.05)
    os.kill(pid, 9)
    print("child hung in its first call")
    sys.exit(2)
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("parent, child", [(1, 2), (2, 1), (2, 2)])
def test_calls_after_fork(parent, child):
    proc = subprocess.run([sys.executable, "-c", _FORK_CHILD, str(parent), str(child)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


#: The bound the resident-memory test allows for 10,000 calls after a warm-up.
RSS_GROWTH_LIMIT = 8 << 20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_resident_memory_flat_over_10000_calls():
    r = _rng(5)
    x = r.standard_normal((1, 4, 12, 12)).astype(np.float32)
    w = r.standard_normal((4, 4, 3, 3)).astype(np.float32)
    wt = r.standard_normal((4, 2, 2, 2))
    layer = fastconv.Conv2d(w, padding=1)
    ops = [
        lambda: fastconv.conv2d(x, w, padding=1),
        lambda: fastconv.conv2d(x, w, stride=2, algorithm="im2col", threads=2),
        lambda: layer(x),
        lambda: fastconv.conv_transpose2d(x, wt, stride=2),
        lambda: fastconv.max_pool2d(x, 2, return_indices=True),
        lambda: fastconv.avg_pool2d(x, 3, 1, 1),
        lambda: fastconv.adaptive_max_pool2d(x, 5),
        lambda: fastconv.lp_pool2d(x, 2, 2),
        lambda: fastconv.global_avg_pool(x),
        lambda: fastconv.spatial_pyramid_pool2d(x),
    ]
    bad = np.ones((1, 5, 12, 12), np.float32)
    errors = [lambda: fastconv.conv2d(bad, w), lambda: fastconv.max_pool2d(x, 0)]

    def run(n):
        for i in range(n):
            ops[i % len(ops)]()
            if i % 50 == 0:  # the error paths too
                for e in errors:
                    try:
                        e()
                    except ValueError:
                        pass

    run(1000)  # warm-up: caches, prepared weights, thread pools
    before = _rss_bytes()
    run(10_000)
    growth = _rss_bytes() - before
    assert growth < RSS_GROWTH_LIMIT, f"resident memory grew by {growth / 2**20:.1f} MiB"
