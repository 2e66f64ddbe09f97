"""The depthwise kernel (groups == C_in, channel multiplier >= 1) against the float64 reference.

Output widths straddle the kernel's register tile (4 vectors: 16/32/64 float32 columns for
scalar-and-NEON/AVX2/AVX-512) and its partial last vector; strides 1-3 exercise the phase split
of the staged rows, dilation and padding wider than the input their zero borders; every ISA,
threads 1 and 2, both dtypes. ``algorithm="direct"`` routes depthwise problems to this kernel.
"""

import numpy as np
import pytest
from reference import assert_close, ref_conv

import fastconv
from fastconv import _algorithms, _threads
from fastconv import conv as conv_module

DTYPES = (np.float32, np.float64)

# (ndim, batch, channels, multiplier, size, kernel, keywords)
CASES = {
    "w1": (2, 1, 3, 1, (5, 1), (3, 1), dict(padding=(1, 0))),
    "w15.m2": (2, 2, 4, 2, (6, 15), (3, 3), dict(padding=1)),
    "w16": (2, 1, 5, 1, (4, 16), (3, 3), dict(padding=1)),
    "w17.s2": (2, 1, 3, 1, (9, 35), (3, 3), dict(stride=2, padding=1)),
    "w65.valid": (2, 1, 2, 1, (5, 67), (3, 3), dict()),
    "w70.s3.d2": (2, 1, 3, 3, (11, 215), (3, 3), dict(stride=3, dilation=2, padding=2)),
    "w130.rect": (2, 1, 2, 1, (3, 130), (1, 5), dict(padding=(0, 2), stride=(2, 1))),
    "kernel_gt_input": (2, 2, 3, 2, (2, 3), (5, 5), dict(padding=2)),
    "pad_only_rows": (2, 1, 2, 1, (3, 4), (3, 3), dict(padding=(4, 1))),
    "same.even": (2, 1, 6, 1, (7, 10), (4, 4), dict(padding="same")),
    "1d.m4": (1, 2, 3, 4, (50,), (7,), dict(padding=3, dilation=1)),
    "1d.s2.full": (1, 1, 4, 1, (33,), (4,), dict(padding="full", stride=2)),
    "3d": (3, 1, 3, 1, (4, 5, 19), (3, 3, 3), dict(padding=1)),
    "3d.m2.s2": (3, 2, 2, 2, (5, 6, 7), (3, 2, 3), dict(stride=(2, 1, 2), padding=(1, 0, 1))),
}


def _data(ndim, batch, channels, mult, size, kernel, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, channels) + size).astype(dtype)
    w = rng.standard_normal((channels * mult, 1) + kernel).astype(dtype)
    b = rng.standard_normal(channels * mult).astype(dtype)
    return x, w, b


def _conv(ndim):
    return {1: fastconv.conv1d, 2: fastconv.conv2d, 3: fastconv.conv3d}[ndim]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("name", list(CASES))
def test_depthwise_matches_reference(isa, name, threads, monkeypatch):
    # small problems would otherwise run on one thread (fastconv._threads.for_work); the
    # functional calls' plan cache must not serve plans made without this
    monkeypatch.setattr(_threads, "for_work", lambda allowed, *work: allowed)
    monkeypatch.setattr(conv_module, "_FUNCTION_PLANS", {})
    ndim, batch, channels, mult, size, kernel, kw = CASES[name]
    for dtype in DTYPES:
        x, w, b = _data(ndim, batch, channels, mult, size, kernel, dtype)
        expected = ref_conv(x, w, b, groups=channels, **kw)
        y = _conv(ndim)(x, w, b, groups=channels, algorithm="direct", threads=threads, **kw)
        assert_close(y, expected, dtype)
        # no bias: the accumulators start from zero
        y = _conv(ndim)(x, w, None, groups=channels, algorithm="direct", threads=threads, **kw)
        assert_close(y, ref_conv(x, w, None, groups=channels, **kw), dtype)


def test_depthwise_threads_split_rows_identically():
    # batch 1, 2 channels: the kernel splits output rows into blocks to feed two threads
    x, w, b = _data(2, 1, 2, 1, (384, 390), (3, 3), np.float32, seed=1)
    assert _threads.for_work(2, x.size * 9, _threads.CONV_MIN_WORK_PER_THREAD) == 2
    one = fastconv.conv2d(x, w, b, groups=2, padding=1, threads=1)
    two = fastconv.conv2d(x, w, b, groups=2, padding=1, threads=2)
    np.testing.assert_array_equal(one, two)
    assert_close(two, ref_conv(x, w, b, groups=2, padding=1), np.float32)


def test_depthwise_is_chosen_and_agrees_with_gemm():
    x, w, b = _data(2, 2, 8, 2, (20, 21), (3, 3), np.float32, seed=2)
    layer = fastconv.Conv2d(w, b, groups=8, padding=1)
    assert layer.algorithm_for(x.shape) == "direct"
    problem = _algorithms.Problem(2, 8, 16, 8, (20, 21), (3, 3), (1, 1), (1, 1),
                                  ((1, 1), (1, 1)), (20, 21))
    assert _algorithms.kernel("direct", problem) == "depthwise"
    via_gemm = fastconv.conv2d(x, w, b, groups=8, padding=1, algorithm="im2col")
    assert_close(layer(x), via_gemm.astype(np.float64), np.float32)


def test_depthwise_non_contiguous_input():
    base, w, b = _data(2, 1, 6, 1, (10, 24), (3, 3), np.float32, seed=3)
    x = base[:, ::-1, :, ::2]
    y = fastconv.conv2d(x, w, b, groups=6, padding=1)
    assert_close(y, ref_conv(np.ascontiguousarray(x), w, b, groups=6, padding=1), np.float32)


@pytest.mark.parametrize("ndim", (2, 3))
def test_depthwise_multiplies_the_zero_padding(ndim):
    # an Inf weight over the padding gives 0 * Inf = NaN, as in the reference (rows outside the
    # input in D and H are multiplied, not skipped)
    x = np.ones((1, 2) + (4,) * ndim, np.float32)
    w = np.full((2, 1) + (3,) * ndim, np.inf, np.float32)
    y = _conv(ndim)(x, w, padding=1, groups=2, algorithm="direct")
    assert_close(y, ref_conv(x, w, padding=1, groups=2), np.float32)


def test_depthwise_huge_stride_stages_only_the_phases_it_reads():
    x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(1, 2, 8, 8)
    w = np.ones((2, 1, 3, 3), np.float32)
    y = fastconv.conv2d(x, w, stride=2**30, groups=2, algorithm="direct")
    assert_close(y, ref_conv(x, w, stride=2**30, groups=2), np.float32)


# The 3x3 path that reads its input rows in place (fastconv/depthwise.h, "k3r"): stride 1 or 2,
# pad 0 or 1 before W (any after), any pad in H. Widths straddle its strips (up to 4 vectors:
# 64/32 columns for AVX-512 float32/float64, 16/8 AVX2, 12/6 scalar) and partial vectors; heights
# as small as one output row; TensorFlow-style SAME (pad after only) and pads of 2 in H.
K3R_PADS = {
    "p1": 1,
    "valid": 0,
    "same": "same",
    "same_lower": "same_lower",
    "tf_s2": ((0, 1), (0, 1)),
    "h2": ((2, 1), (1, 1)),
    "h0w1": ((0, 2), (1, 0)),
}
K3R_WIDTHS = (1, 2, 3, 5, 7, 8, 9, 12, 13, 16, 17, 25, 31, 33, 63, 64, 65, 97, 112, 129)


@pytest.mark.parametrize("stride", (1, 2))
@pytest.mark.parametrize("pad", list(K3R_PADS))
def test_depthwise_3x3_in_place_rows(isa, stride, pad, monkeypatch):
    monkeypatch.setattr(_threads, "for_work", lambda allowed, *work: allowed)
    monkeypatch.setattr(conv_module, "_FUNCTION_PLANS", {})
    padding = K3R_PADS[pad]
    for dtype in DTYPES:
        for i, width in enumerate(K3R_WIDTHS):
            height = (1, 2, 3, 4, 6, 11)[i % 6]
            mult = 1 + i % 3
            x, w, b = _data(2, 1 + i % 2, 3, mult, (height, width), (3, 3), dtype, seed=i)
            try:
                expected = ref_conv(x, w, b, stride=stride, padding=padding, groups=3)
            except ValueError:  # output would be empty
                continue
            for threads in (1, 2):
                y = fastconv.conv2d(x, w, b if i % 4 else None, stride=stride, padding=padding,
                                    groups=3, threads=threads)
                if not i % 4:
                    expected_nb = ref_conv(x, w, None, stride=stride, padding=padding, groups=3)
                    assert_close(y, expected_nb, dtype)
                else:
                    assert_close(y, expected, dtype)


@pytest.mark.parametrize("stride", (1, 2))
def test_depthwise_3x3_thread_blocks_agree_exactly(isa, stride):
    # 2 planes on 2 threads: the rows are cut into blocks, each starting its rolling sums anew
    x, w, b = _data(2, 1, 2, 1, (97, 70), (3, 3), np.float32, seed=5)
    one = fastconv.conv2d(x, w, b, stride=stride, padding=1, groups=2, threads=1)
    two = fastconv.conv2d(x, w, b, stride=stride, padding=1, groups=2, threads=2)
    np.testing.assert_array_equal(one, two)
    assert_close(two, ref_conv(x, w, b, stride=stride, padding=1, groups=2), np.float32)


@pytest.mark.parametrize("stride", (1, 2))
def test_depthwise_3x3_padding_meets_infinite_weights(isa, stride):
    # each of the nine taps Inf in turn: NaN exactly where that tap reads the zero padding
    x = np.ones((1, 9, 5, 18), np.float32)
    w = np.ones((9, 1, 3, 3), np.float32)
    w.reshape(9, 9)[np.arange(9), np.arange(9)] = np.inf
    y = fastconv.conv2d(x, w, stride=stride, padding=1, groups=9)
    expected = ref_conv(x, w, stride=stride, padding=1, groups=9)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    assert np.isnan(y).any() and not np.isnan(y).all()
    assert_close(y, expected, np.float32)
