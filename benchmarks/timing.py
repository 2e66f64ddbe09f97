"""Timing on a shared, noisy machine: interleave the contenders, take medians, quote ratios."""

import statistics
import time
from collections.abc import Callable


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int = 15,
                warmup: int = 2, min_time: float = 0.0) -> dict[str, float]:
    """Median seconds per call of each contender, timed round-robin so drift hits all alike.

    Each round calls every contender once (in rotating order); ``min_time`` keeps adding rounds
    until the slowest contender has accumulated that much time.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    rounds = 0
    while rounds < repeats or (min_time and min(sum(t) for t in times.values()) < min_time
                               and rounds < 50 * repeats):
        order = names[rounds % len(names):] + names[:rounds % len(names)]
        for name in order:
            start = time.perf_counter()
            contenders[name]()
            times[name].append(time.perf_counter() - start)
        rounds += 1
    return {name: statistics.median(t) for name, t in times.items()}
