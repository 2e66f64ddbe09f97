"""Timing on a shared, noisy machine: interleave the contenders, take medians, quote ratios.

Each round calls every contender once, in an order that rotates from round to round, so that
whatever the machine does meanwhile (another process, a frequency change) hits all of them
alike; the median of the rounds is robust to the outliers that remain.

Examples
--------
>>> from fastconv._timing import interleaved
>>> medians = interleaved({"sum": lambda: sum(range(100)), "nothing": lambda: None},
...                       repeats=5, warmup=1)
>>> sorted(medians), all(t >= 0 for t in medians.values())
(['nothing', 'sum'], True)
"""

import statistics
import time
from collections.abc import Callable

__all__ = ["SETTLE_SECONDS", "WARMUP_SECONDS", "blocked_samples", "interleaved",
           "interleaved_samples", "spread"]

#: Sleep before each block of :func:`blocked_samples`: ONNX Runtime's intra-op workers spin for
#: about 40 ms after a call (measured on 2 cores), holding the core the next contender needs.
SETTLE_SECONDS = 0.06

#: Least untimed work per block of :func:`blocked_samples` (see there).
WARMUP_SECONDS = 0.06


def spread(samples: list[float]) -> float:
    """Interquartile range / median: how unsettled a set of timings still is.

    Examples
    --------
    >>> from fastconv._timing import spread
    >>> spread([1.0, 1.0, 1.0, 1.0])
    0.0
    >>> round(spread([1.0, 2.0, 3.0, 4.0, 5.0]), 2)
    0.67
    """
    if len(samples) < 4:
        return float("inf")
    q1, median, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return (q3 - q1) / median if median > 0 else 0.0


def interleaved_samples(contenders: dict[str, Callable[[], object]], repeats: int = 15,
                        warmup: int = 2, min_time: float = 0.0,
                        max_time: float | None = None,
                        target_spread: float | None = None) -> dict[str, list[float]]:
    """Seconds of every timed call of each contender, timed round-robin.

    Parameters
    ----------
    contenders : dict of name -> callable taking no argument
    repeats : int
        Rounds at least (each round calls every contender once).
    warmup : int
        Untimed rounds first (caches, thread pools, lazy initialisation).
    min_time : float
        Keep adding rounds (up to ``50 * repeats``) until every contender has accumulated this
        many seconds, so that fast calls get enough samples for a stable median.
    max_time : float, optional
        Stop adding rounds (after ``repeats`` rounds are done or, if even those would be too
        slow, after 3) once this many seconds have passed in total.
    target_spread : float, optional
        Keep adding rounds (up to ``50 * repeats``, and within ``max_time``) while any
        contender's :func:`spread` exceeds this: enough repeats for a stable median.

    Returns
    -------
    dict of name -> list of seconds, one entry per round.

    Examples
    --------
    >>> from fastconv._timing import interleaved_samples
    >>> samples = interleaved_samples({"a": lambda: None}, repeats=4, warmup=0)
    >>> len(samples["a"])
    4
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    begin = time.perf_counter()
    rounds = 0
    while True:
        spent = time.perf_counter() - begin
        if max_time is not None and spent > max_time and rounds >= min(repeats, 3):
            break
        if rounds >= repeats:
            short = min_time and min(sum(t) for t in times.values()) < min_time
            unsettled = target_spread is not None and any(
                spread(t) > target_spread for t in times.values())
            if rounds >= 50 * repeats or not (short or unsettled):
                break
        order = names[rounds % len(names):] + names[:rounds % len(names)]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
        rounds += 1
    return times


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int = 15,
                warmup: int = 2, min_time: float = 0.0,
                max_time: float | None = None) -> dict[str, float]:
    """Median seconds per call of each contender, timed round-robin so drift hits all alike.

    Parameters are those of :func:`interleaved_samples`.

    Returns
    -------
    dict of name -> median seconds per call.

    Examples
    --------
    >>> from fastconv._timing import interleaved
    >>> list(interleaved({"a": lambda: None, "b": lambda: None}, repeats=3))
    ['a', 'b']
    """
    samples = interleaved_samples(contenders, repeats, warmup, min_time, max_time)
    return {name: statistics.median(t) for name, t in samples.items()}


def blocked_samples(contenders: dict[str, Callable[[], object]], repeats: int = 15,
                    warmup: int = 2, passes: int = 3, min_time: float = 0.0,
                    max_time: float | None = None,
                    settle: float = SETTLE_SECONDS,
                    warmup_time: float = WARMUP_SECONDS) -> dict[str, list[float]]:
    """Like :func:`interleaved_samples`, but each contender runs a block of calls in turn.

    For multi-threaded contenders: a runtime leaves its worker threads spinning for a while
    after each call (libgomp in fastconv and in PyTorch, ONNX Runtime's pool), and with calls
    interleaved one by one those spinners steal the cores of the next contender (10-50x
    slowdowns measured on 2 cores). Here every block starts after ``settle`` seconds of sleep
    (ONNX Runtime's workers spin for about 40 ms after a call), then untimed calls: ``warmup``
    of them and at least ``warmup_time`` seconds' worth (after an idle pause a second core
    needs 30-60 ms of work before multi-threaded calls run at full speed again: measured on
    this project's 2-vCPU machine; every contender gets the same treatment);
    ``passes`` rounds of blocks still spread machine drift over all contenders. ``repeats``
    timed calls in all per contender (at least one per pass), more while ``min_time`` is not
    reached, fewer once ``max_time`` has passed.

    Examples
    --------
    >>> from fastconv._timing import blocked_samples
    >>> samples = blocked_samples({"a": lambda: None, "b": lambda: None}, repeats=6, passes=2,
    ...                           settle=0, warmup_time=0)
    >>> [len(t) for t in samples.values()]
    [6, 6]
    """
    passes = max(1, min(passes, repeats))
    per_pass = -(-repeats // passes)
    times: dict[str, list[float]] = {name: [] for name in contenders}
    begin = time.perf_counter()
    for index in range(passes):
        for name, fn in contenders.items():
            time.sleep(settle)
            warm_start = time.perf_counter()
            warm_calls = 0
            while warm_calls < warmup or time.perf_counter() - warm_start < warmup_time:
                fn()
                warm_calls += 1
            share = min(per_pass, repeats - index * per_pass) if index < passes - 1 \
                else repeats - len(times[name])
            calls = 0
            while calls < share or (min_time and sum(times[name]) < min_time * (index + 1)
                                    / passes and calls < 50 * per_pass):
                if (max_time is not None and calls >= 1
                        and time.perf_counter() - begin > max_time):
                    break
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
                calls += 1
    return times
