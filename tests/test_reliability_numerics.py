"""Numerics: NaN and Inf propagate as in the reference, float64 is accurate to 1e-12.
Subnormals: tests/test_subnormals.py (results) and benchmarks/bench_subnormals.py (speed)."""

import numpy as np
import pytest
from reference import (
    assert_close,
    ref_avg_pool,
    ref_conv,
    ref_conv_transpose,
    ref_lp_pool,
    ref_max_pool,
)

import fastconv


def _x(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _poison(x, values=(np.nan, np.inf, -np.inf)):
    """``x`` with a NaN, +Inf and -Inf at fixed places (well apart)."""
    x = x.copy()
    flat = x.reshape(-1)
    for i, v in enumerate(values):
        flat[(i + 1) * flat.size // (len(values) + 1)] = v
    return x


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("algorithm", ["direct", "im2col", "auto", "layer"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_nonfinite_weight_meets_padding(isa, ndim, bad, algorithm, dtype):
    # found by tools/fuzz.py: kernels that skip zero padding lost a NaN/Inf weight whose tap
    # only ever lands in the padding; the reference (and PyTorch) give 0 * NaN = NaN there
    x = _x((2, 2) + (2,) * ndim, dtype)
    w = _x((3, 2) + (2,) * ndim, dtype, seed=1)
    w[(1, 0) + (0,) * ndim] = bad  # stride 2, dilation 2, padding 1: tap 0 meets padding only
    kw = dict(stride=2, padding=1, dilation=2)
    expected = ref_conv(x, w, **kw)
    assert np.isnan(expected[:, 1]).all()
    if algorithm == "layer":
        y = getattr(fastconv, f"Conv{ndim}d")(w, **kw)(x)
    else:
        y = getattr(fastconv, f"conv{ndim}d")(x, w, algorithm=algorithm, **kw)
    assert_close(y, expected, dtype)


@pytest.mark.parametrize("algorithm", ["direct", "im2col", "auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_nan_inf_in_input(isa, algorithm, dtype):
    x = _poison(_x((2, 4, 11, 12), dtype))
    w = _x((6, 4, 3, 3), dtype, seed=1)
    for kw in (dict(padding=1), dict(stride=2, dilation=2, padding=(2, 1))):
        y = fastconv.conv2d(x, w, algorithm=algorithm, threads=2, **kw)
        assert_close(y, ref_conv(x, w, **kw), dtype)


@pytest.mark.parametrize("algorithm", ["winograd_f2", "winograd_f4", "winograd_f6"])
def test_winograd_nan_spreads_within_its_tile(algorithm):
    """A NaN input poisons at most the output tiles whose input tiles contain it."""
    x = _x((1, 4, 16, 16))
    x[0, 0, 5, 5] = np.nan
    w = _x((4, 4, 3, 3), seed=1)
    try:
        y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
    except ValueError as exc:
        pytest.skip(f"{algorithm} not in this build: {exc}")
    expected = ref_conv(x, w, padding=1)
    assert np.all(np.isnan(y[np.isnan(expected)]))  # every NaN of the reference is there
    m = int(algorithm[-1])  # output tile m x m; its input tile (m + 2)^2 holds the NaN
    rows = np.flatnonzero(np.isnan(y).any(axis=(0, 1, 3)))
    assert rows.max() - rows.min() < 2 * m + 3  # no further than the neighbouring tiles
    finite = ~np.isnan(y)
    assert_close(np.where(finite, y, 0), np.where(finite, expected, 0), np.float32, algorithm)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_transpose_nan_inf_in_input(isa, dtype):
    x = _poison(_x((2, 4, 7, 6), dtype))
    w = _x((4, 3, 3, 3), dtype, seed=1)
    for algorithm in ("gemm", "phase"):
        y = fastconv.conv_transpose2d(x, w, stride=2, padding=1, algorithm=algorithm)
        assert_close(y, ref_conv_transpose(x, w, stride=2, padding=1), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pools_nan_inf(isa, dtype):
    x = _poison(_x((2, 3, 12, 13), dtype))
    y, idx = fastconv.max_pool2d(x, 3, 2, 1, return_indices=True)
    ey, ei = ref_max_pool(x, 3, 2, 1, return_indices=True)
    assert_close(y, ey, dtype)
    np.testing.assert_array_equal(idx, ei)  # a NaN's window reports the NaN's index
    assert_close(fastconv.avg_pool2d(x, 3, 2, 1), ref_avg_pool(x, 3, 2, 1), dtype)
    assert_close(fastconv.lp_pool2d(x, 2, 3, 2), ref_lp_pool(x, 2, 3, 2), dtype)


@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_conv_inf_weight_over_zero_padding(algorithm):
    """Zero padding is multiplied like any input: Inf weight x padding = NaN (grouped direct
    conv skipped it until session 2)."""
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.full((2, 1, 3, 3), np.inf, np.float32)
    y = fastconv.conv2d(x, w, padding=1, groups=2, algorithm=algorithm)
    assert_close(y, ref_conv(x, w, padding=1, groups=2), np.float32)


def _max_rel(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def test_float64_accuracy(isa):
    x = _x((2, 8, 15, 14), np.float64)
    w = _x((8, 8, 3, 3), np.float64, seed=1)
    for algorithm in ("direct", "im2col"):
        y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
        assert _max_rel(y, ref_conv(x, w, padding=1)) <= 1e-12, algorithm
    wt = _x((8, 4, 4, 4), np.float64, seed=2)
    assert _max_rel(fastconv.conv_transpose2d(x, wt, stride=2),
                    ref_conv_transpose(x, wt, stride=2)) <= 1e-12
    assert _max_rel(fastconv.avg_pool2d(x, 3, 1, 1), ref_avg_pool(x, 3, 1, 1)) <= 1e-12
    assert _max_rel(fastconv.lp_pool2d(x, 3, 2), ref_lp_pool(x, 3, 2)) <= 1e-12
