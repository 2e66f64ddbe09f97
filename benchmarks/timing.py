"""Timing on a shared, noisy machine: a re-export of :mod:`fastconv._timing`.

The timer lives inside the package so that ``fastconv bench`` and these benchmark files time
the same way: interleave the contenders, take medians, quote ratios.
"""

from fastconv._timing import (  # noqa: F401
    blocked_samples,
    interleaved,
    interleaved_samples,
)
