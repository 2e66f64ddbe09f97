"""fastconv.dask on a 2-worker LocalCluster vs fastconv in memory vs dask-image (issue 20).

The 3-layer block of docs/dask.md (conv 3->3 3x3 pad 1 -> ReLU -> max pool 2 -> conv 3->3
3x3 pad 1) over an 8192x8192x3 float32 image (768 MiB):

- ``fastconv.dask.apply`` on a ``LocalCluster(n_workers=2, threads_per_worker=1,
  memory_limit="2GiB")``, the input persisted on the workers first (generated there), the
  result persisted (never gathered): the time from submitting to all chunks done;
- the same block in memory with fastconv at 2 threads, on a NumPy array;
- the first convolution alone: ``fastconv.dask.conv2d`` vs dask-image's
  ``ndfilters.convolve`` channel by channel (9 single-channel convolutions summed per output
  channel, zero border), both on the same cluster (skipped if dask-image is not installed);
- peak resident memory of each worker process, polled every 200 ms.

Throughput = input pixels / second; medians of --repeat runs, the in-memory and the cluster
runs interleaved (on a shared machine both then see the same load).

    flock /tmp/cpu.lock python benchmarks/bench_dask.py [--size 8192] [--chunk 2048]
"""

import argparse
import statistics
import threading
import time

import numpy as np

REPEAT = 3


def _block(rng):
    import fastconv

    w1 = rng.standard_normal((3, 3, 3, 3)).astype(np.float32)
    w2 = rng.standard_normal((3, 3, 3, 3)).astype(np.float32)
    return [fastconv.Conv2d(w1, padding=1), _relu, fastconv.MaxPool2d(2),
            fastconv.Conv2d(w2, padding=1)]


def _relu(y):
    return np.maximum(y, 0, out=y)


class _PeakRSS:
    """Polls every worker's resident set size; ``peak`` maps worker address -> bytes."""

    def __init__(self, client):
        self.client, self.peak, self._stop = client, {}, threading.Event()

    def _poll(self):
        while not self._stop.is_set():
            for addr, rss in self.client.run(_rss).items():
                self.peak[addr] = max(self.peak.get(addr, 0), rss)
            time.sleep(0.2)

    def __enter__(self):
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _rss():
    import psutil

    return psutil.Process().memory_info().rss


def _persist_time(client, y, repeat=REPEAT):
    """Median seconds to persist ``y`` on the cluster, its chunks released between runs (a
    kept result would make the next persist free)."""
    from distributed import wait

    keys = {str(k) for k in y.__dask_keys__() for k in _flat_keys(k)}

    def gone(dask_scheduler=None, keys=keys):
        return not any(str(k) in keys for k in dask_scheduler.tasks)

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = client.persist(y)
        wait(r)
        times.append(time.perf_counter() - t0)
        del r  # released by the scheduler soon after
        while not client.run_on_scheduler(gone):
            time.sleep(0.01)
    return statistics.median(times)


def _flat_keys(k):
    if isinstance(k, list):
        for v in k:
            yield from _flat_keys(v)
    else:
        yield k


def _time(fn, repeat=REPEAT):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    import fastconv
    import fastconv.dask

    n, chunk = args.size, args.chunk
    rng = np.random.default_rng(0)
    block = _block(rng)
    pixels = n * n

    # in memory, 2 threads
    x_np = rng.standard_normal((1, 3, n, n), dtype=np.float32)

    def in_memory():
        y = x_np
        for layer in block:
            y = layer(y) if layer is _relu else layer(y, threads=2)
        return y

    in_memory()  # warm-up
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, memory_limit="2GiB")
    client = Client(cluster)
    try:
        x = da.random.default_rng(0).standard_normal((1, 3, n, n), dtype=np.float32,
                                                     chunks=(1, 3, chunk, chunk))
        x = client.persist(x)
        wait(x)
        y = fastconv.dask.apply(block, x)
        # interleaved (the machine is shared: both sides see the same load)
        mem_times, dask_times = [], []
        with _PeakRSS(client) as mem:
            for _ in range(args.repeat):
                mem_times.append(_time(in_memory, 1))
                dask_times.append(_persist_time(client, y, 1))
        x_np = None  # noqa: F841 (frees the array)
        t_mem, t_dask = statistics.median(mem_times), statistics.median(dask_times)
        # a check: the output's corner against the in-memory block on the input's corner
        # (outputs [0, 100) read input rows and columns below 210)
        want = client.compute(x[:, :, :256, :256]).result()
        for layer in block:
            want = layer(want)
        got = client.compute(y[:, :, :100, :100]).result()
        assert np.array_equal(got, want[:, :, :100, :100])

        w1 = block[0].weight
        conv = fastconv.dask.conv2d(x, w1, padding=1)
        t_conv = _persist_time(client, conv)
        t_dimg = None
        try:
            from dask_image import ndfilters
        except ImportError:
            ndfilters = None
        if ndfilters is not None:
            outs = []
            for o in range(3):
                acc = None
                for c in range(3):
                    # convolve flips the kernel: flip it back for a cross-correlation
                    term = ndfilters.convolve(x[0, c], w1[o, c, ::-1, ::-1], mode="constant")
                    acc = term if acc is None else acc + term
                outs.append(acc)
            dimg = da.stack(outs)[None]
            t_dimg = _persist_time(client, dimg)
            small = client.compute(dimg[:, :, 100:300, 100:300]).result()
            ref = client.compute(conv[:, :, 100:300, 100:300]).result()
            assert np.allclose(small, ref, rtol=1e-4, atol=1e-4)
    finally:
        client.close()
        cluster.close()

    mpix = pixels / 1e6
    print(f"image {n}x{n}x3 float32 ({pixels * 12 / 2**20:.0f} MiB), chunks {chunk}x{chunk}, "
          f"block conv3x3(3->3) > ReLU > maxpool2 > conv3x3(3->3)")
    print("| what | seconds | Mpixel/s | ratio |")
    print("|---|---|---|---|")
    print(f"| fastconv in memory, 2 threads | {t_mem:.3f} | {mpix / t_mem:.1f} | 1 |")
    print(f"| fastconv.dask.apply, LocalCluster 2x1 | {t_dask:.3f} | {mpix / t_dask:.1f} | "
          f"{t_mem / t_dask:.2f} of in-memory |")
    print(f"| first conv: fastconv.dask.conv2d | {t_conv:.3f} | {mpix / t_conv:.1f} | |")
    if t_dimg is not None:
        print(f"| first conv: dask-image ndfilters.convolve x9 | {t_dimg:.3f} | "
              f"{mpix / t_dimg:.1f} | fastconv {t_dimg / t_conv:.1f}x faster |")
    else:
        print("| first conv: dask-image | not installed | | |")
    peaks = ", ".join(f"{v / 2**20:.0f} MiB" for v in mem.peak.values())
    print(f"peak worker RSS during apply (limit 2 GiB): {peaks}")


if __name__ == "__main__":
    main()
