"""Tests of the float64 reference itself: hand-worked cases, adjointness, the tolerance helper,
and (where torch is installed) a cross-check against torch.nn.functional."""

import math

import numpy as np
import pytest
from reference import (
    TOLERANCES,
    assert_close,
    ref_adaptive_avg_pool,
    ref_adaptive_bins,
    ref_adaptive_max_pool,
    ref_avg_pool,
    ref_conv,
    ref_conv_transpose,
    ref_global_avg_pool,
    ref_global_max_pool,
    ref_lp_pool,
    ref_max_pool,
    ref_max_unpool,
    ref_mixed_pool2d,
    ref_pool_output_size,
    ref_resolve_padding,
    ref_spatial_pyramid_pool2d,
)

nan = np.nan


def b(a):
    """A plain nested list → a float64 array with batch and channel dims of size 1."""
    a = np.asarray(a, dtype=np.float64)
    return a.reshape((1, 1) + a.shape)


# --------------------------------------------------------------------------------------------
# The issue's hand-worked cases
# --------------------------------------------------------------------------------------------
def test_issue_single_channel():
    x = b(np.arange(9).reshape(3, 3))
    w = b([[0, 1], [2, 3]])
    np.testing.assert_array_equal(ref_conv(x, w), b([[19, 25], [37, 43]]))


def test_issue_two_channels():
    x0 = np.arange(9.0).reshape(3, 3)
    x = np.stack([x0, x0 + 1])[None]
    w = np.array([[[0, 1], [2, 3]], [[1, 2], [3, 4]]], dtype=float)[None]
    np.testing.assert_array_equal(ref_conv(x, w), b([[56, 72], [104, 120]]))


def test_issue_edge_detector():
    img = np.ones((6, 8))
    img[:, 2:6] = 0
    y = ref_conv(b(img), b([[1, -1]]))[0, 0]
    expected = np.zeros((6, 7))
    expected[:, 1] = 1   # 1 - 0 at the left edge
    expected[:, 5] = -1  # 0 - 1 at the right edge
    np.testing.assert_array_equal(y, expected)


def test_issue_max_pool():
    x = b([[1, 3, 2, 4], [5, 2, 3, 1], [4, 6, 2, 7], [8, 3, 1, 5]])
    np.testing.assert_array_equal(ref_max_pool(x, 2, 2), b([[5, 4], [8, 7]]))


@pytest.mark.parametrize("padding, size", [("valid", 11), ("same", 13), ("full", 15)])
def test_issue_padding_forms(padding, size):
    y = ref_conv(np.ones((1, 1, 13, 13)), np.ones((1, 1, 3, 3)), padding=padding)
    assert y.shape == (1, 1, size, size)


# --------------------------------------------------------------------------------------------
# Padding resolution and sizes
# --------------------------------------------------------------------------------------------
def test_resolve_padding_forms():
    assert ref_resolve_padding(1, (5, 5), 3) == ((1, 1), (1, 1))
    assert ref_resolve_padding((1, 2), (5, 5), 3) == ((1, 1), (2, 2))
    assert ref_resolve_padding(((0, 1), (2, 0)), (5, 5), 3) == ((0, 1), (2, 0))
    assert ref_resolve_padding(((0, 1),), (5,), 3) == ((0, 1),)
    assert ref_resolve_padding("valid", (5, 5, 5), 3) == ((0, 0),) * 3
    assert ref_resolve_padding("full", (5, 5), (3, 2), dilation=(1, 2)) == ((2, 2), (2, 2))
    # same: output ceil(in/s); total (ceil(in/s)-1)*s + (k-1)*d + 1 - in, extra at the end
    assert ref_resolve_padding("same", (13,), 3, 2) == ((1, 1),)
    assert ref_resolve_padding("same", (12,), 3, 2) == ((0, 1),)
    assert ref_resolve_padding("same_lower", (12,), 3, 2) == ((1, 0),)
    assert ref_resolve_padding("same", (10,), 4, 1, 2) == ((3, 3),)
    assert ref_resolve_padding("same", (10,), 1, 3) == ((0, 0),)  # never negative
    # transposed same: output in*s
    assert ref_resolve_padding("same", (4,), 3, 2, transposed=True) == ((0, 1),)
    assert ref_resolve_padding("same_lower", (4,), 3, 2, transposed=True) == ((1, 0),)
    # a kernel shorter than the stride: a negative total, floor-split (issue 21 item 1)
    assert ref_resolve_padding("same", (4,), 1, 2, transposed=True) == ((-1, 0),)
    assert ref_resolve_padding("same_lower", (4,), 1, 2, transposed=True) == ((0, -1),)
    with pytest.raises(ValueError):
        ref_resolve_padding("full", (4,), 3, transposed=True)
    with pytest.raises(ValueError, match="negative"):
        ref_resolve_padding(-1, (5,), 3)


@pytest.mark.parametrize("n, s, k, d", [(12, 2, 3, 1), (13, 2, 3, 1), (7, 3, 2, 2),
                                        (5, 4, 5, 1), (9, 1, 3, 3)])
def test_same_padding_gives_ceil_in_over_s(n, s, k, d):
    for mode in ("same", "same_lower"):
        y = ref_conv(np.ones((1, 1, n)), np.ones((1, 1, k)), stride=s, dilation=d, padding=mode)
        assert y.shape[-1] == math.ceil(n / s)
    x = np.ones((1, 2, n))
    w = np.ones((2, 1, k))
    y = ref_conv_transpose(x, w, stride=s, dilation=d, padding="same",
                           output_padding=max(0, s - (k - 1) * d - 1))
    assert y.shape[-1] == n * s


def test_pool_output_size_ceil_mode_rule():
    # floor: (6 + 2 - 3)//2 + 1 = 3; ceil: 4, last window starts at 5 < 6 + 1: kept
    assert ref_pool_output_size((6,), (3,), (2,), ((1, 1),), (1,), False) == (3,)
    assert ref_pool_output_size((6,), (3,), (2,), ((1, 1),), (1,), True) == (4,)
    # ceil gives 4 but the last window would start at 6 >= 5 + 1 (in the right padding)
    assert ref_pool_output_size((5,), (2,), (2,), ((1, 1),), (1,), True) == (3,)


# --------------------------------------------------------------------------------------------
# Convolution options, by hand
# --------------------------------------------------------------------------------------------
def test_conv_stride():
    x = b(np.arange(7))
    np.testing.assert_array_equal(ref_conv(x, b([1, 2]), stride=2), b([2, 8, 14]))


def test_conv_dilation():
    x = b(np.arange(7))
    np.testing.assert_array_equal(ref_conv(x, b([1, 1]), dilation=3), b([3, 5, 7, 9]))


def test_conv_stride_dilation_2d():
    x = b(np.arange(25).reshape(5, 5))
    y = ref_conv(x, b([[1, 0], [0, 0]]) + b([[0, 0], [0, 1]]), stride=(2, 3), dilation=2)
    # taps (0,0) and (2,2): y[i,j] = x[2i, 3j] + x[2i+2, 3j+2]
    np.testing.assert_array_equal(y, b([[0 + 12], [10 + 22]]))


def test_conv_groups_and_bias():
    x = np.arange(12.0).reshape(1, 4, 3)  # channels [0,1,2], [3,4,5], [6,7,8], [9,10,11]
    w = np.array([[[1], [2]], [[3], [-1]]], dtype=float)  # (C_out=2, C_in/g=2, k=1)
    y = ref_conv(x, w, bias=np.array([0.5, -0.5]), groups=2)
    expected = np.array([[[0 + 6, 1 + 8, 2 + 10], [18 - 9, 21 - 10, 24 - 11]]]) + [[[0.5], [-0.5]]]
    np.testing.assert_array_equal(y, expected)


def test_conv_depthwise():
    x = np.arange(6.0).reshape(1, 2, 3)
    w = np.array([[[1, 1]], [[1, -1]]], dtype=float)
    np.testing.assert_array_equal(ref_conv(x, w, groups=2), [[[1, 3], [-1, -1]]])


@pytest.mark.parametrize("mode, padded", [
    ("zeros", [0, 0, 1, 2, 3, 0]),
    ("reflect", [3, 2, 1, 2, 3, 2]),
    ("replicate", [1, 1, 1, 2, 3, 3]),
    ("circular", [2, 3, 1, 2, 3, 1]),
])
def test_conv_padding_modes(mode, padded):
    x = b([1, 2, 3])
    # identity kernel shows the padded signal; a 2-tap kernel sums neighbours
    np.testing.assert_array_equal(ref_conv(x, b([1]), padding=((2, 1),), padding_mode=mode),
                                  b(padded))
    sums = [padded[i] + padded[i + 1] for i in range(5)]
    np.testing.assert_array_equal(ref_conv(x, b([1, 1]), padding=((2, 1),), padding_mode=mode),
                                  b(sums))


def test_conv_padding_modes_2d():
    x = b([[1, 2], [3, 4]])
    y = ref_conv(x, b([[1]]), padding=1, padding_mode="circular")
    np.testing.assert_array_equal(y[0, 0], [[4, 3, 4, 3], [2, 1, 2, 1], [4, 3, 4, 3],
                                            [2, 1, 2, 1]])
    y = ref_conv(x, b([[1]]), padding=((1, 0), (0, 1)), padding_mode="replicate")
    np.testing.assert_array_equal(y[0, 0], [[1, 2, 2], [1, 2, 2], [3, 4, 4]])


def test_conv_asymmetric_padding():
    x = b([[1, 2], [3, 4]])
    # padded: [[0,1,2],[0,3,4],[0,0,0]] (one row after, one column before)
    y = ref_conv(x, b(np.ones((2, 2))), padding=((0, 1), (1, 0)))
    np.testing.assert_array_equal(y, b([[4, 10], [3, 7]]))


def test_conv_3d():
    x = b(np.arange(27).reshape(3, 3, 3))
    y = ref_conv(x, b(np.ones((2, 2, 2))), stride=(1, 1, 2))
    assert y.shape == (1, 1, 2, 2, 1)
    assert y[0, 0, 0, 0, 0] == sum([0, 1, 3, 4, 9, 10, 12, 13])


# --------------------------------------------------------------------------------------------
# Transposed convolution, by hand
# --------------------------------------------------------------------------------------------
def test_conv_transpose_1d_stride():
    x, w = b([1, 2]), b([1, 10, 100])
    # x0*w at 0..2 and x1*w at 2..4
    np.testing.assert_array_equal(ref_conv_transpose(x, w, stride=2), b([1, 10, 102, 20, 200]))
    np.testing.assert_array_equal(ref_conv_transpose(x, w, stride=2, padding=1),
                                  b([10, 102, 20]))
    np.testing.assert_array_equal(ref_conv_transpose(x, w, stride=2, padding=((0, 2),)),
                                  b([1, 10, 102]))


def test_conv_transpose_output_padding_and_bias():
    x, w = b([1, 2]), b([1, 10, 100])
    y = ref_conv_transpose(x, w, bias=np.array([0.5]), stride=2, output_padding=1)
    np.testing.assert_array_equal(y, b([1.5, 10.5, 102.5, 20.5, 200.5, 0.5]))
    # with padding after, output_padding brings back a real value
    y = ref_conv_transpose(x, w, stride=2, padding=1, output_padding=1)
    np.testing.assert_array_equal(y, b([10, 102, 20, 200]))


def test_conv_transpose_dilation():
    np.testing.assert_array_equal(ref_conv_transpose(b([1, 2]), b([1, 10]), dilation=2),
                                  b([1, 2, 10, 20]))


def test_conv_transpose_2d_and_groups():
    y = ref_conv_transpose(b([[1, 2], [3, 4]]), b(np.ones((2, 2))))
    np.testing.assert_array_equal(y, b([[1, 3, 2], [4, 10, 6], [3, 7, 4]]))
    x = np.array([[[1.0, 2.0], [3.0, 4.0]]])  # (1, C_in=2, 2)
    w = np.array([[[1.0]], [[10.0]]])          # (C_in=2, C_out/g=1, 1), groups=2
    np.testing.assert_array_equal(ref_conv_transpose(x, w, groups=2), [[[1, 2], [30, 40]]])
    w = np.array([[[1.0], [2.0]], [[10.0], [20.0]]])  # groups=1, C_out=2
    np.testing.assert_array_equal(ref_conv_transpose(x, w), [[[31, 42], [62, 84]]])


ADJOINT_CASES = [
    # (spatial, kernel, stride, padding, dilation, groups, c_in, c_out)
    ((9,), (3,), 1, 0, 1, 1, 2, 3),
    ((10,), (3,), 2, ((1, 2),), 2, 2, 4, 2),
    ((7, 8), (3, 2), (2, 1), ((1, 0), (0, 1)), (1, 2), 1, 3, 2),
    ((8, 7), (3, 3), 3, 1, 1, 3, 3, 6),
    ((5, 6, 7), (2, 3, 2), (1, 2, 2), ((0, 1), (1, 1), (1, 0)), (2, 1, 1), 2, 2, 4),
]


@pytest.mark.parametrize("case", ADJOINT_CASES)
def test_conv_transpose_is_adjoint_of_conv(case):
    spatial, k, s, p, dl, g, c_in, c_out = case
    d = len(spatial)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, c_in) + spatial)
    w = rng.standard_normal((c_out, c_in // g) + k)
    y_shape = ref_conv(x, w, stride=s, padding=p, dilation=dl, groups=g).shape
    y = rng.standard_normal(y_shape)
    s_t = (s,) * d if isinstance(s, int) else s
    dl_t = (dl,) * d if isinstance(dl, int) else dl
    pads = ref_resolve_padding(p, spatial, k, s_t, dl_t)
    # output_padding so that the transpose reaches the conv input size again
    op = tuple(n - ((o - 1) * si - pb - pa + (kk - 1) * di + 1)
               for n, o, si, (pb, pa), kk, di in zip(spatial, y_shape[2:], s_t, pads, k, dl_t))
    xt = ref_conv_transpose(y, w, stride=s, padding=pads, output_padding=op, groups=g,
                            dilation=dl)
    assert xt.shape == x.shape
    lhs = np.vdot(ref_conv(x, w, stride=s, padding=p, dilation=dl, groups=g), y)
    rhs = np.vdot(x, xt)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Pools, by hand
# --------------------------------------------------------------------------------------------
def test_max_pool_indices_ties_and_nan():
    x = b([[5, 1], [5, 5]])
    v, i = ref_max_pool(x, 2, return_indices=True)
    assert v.item() == 5 and i.item() == 0
    v, i = ref_max_pool(b([[1, 5], [5, 5]]), 2, return_indices=True)
    assert v.item() == 5 and i.item() == 1
    v, i = ref_max_pool(b([[1, nan], [nan, 9]]), 2, return_indices=True)
    assert np.isnan(v.item()) and i.item() == 1
    v, i = ref_max_pool(b([[9, 1], [1, nan]]), 2, return_indices=True)
    assert np.isnan(v.item()) and i.item() == 3
    assert i.dtype == np.int64


def test_max_pool_padding_ignored_and_indices():
    x = b([[-3, -1, -2]])
    v, i = ref_max_pool(x, (1, 2), (1, 1), ((0, 0), (1, 1)), return_indices=True)
    np.testing.assert_array_equal(v, b([[-3, -1, -1, -2]]))
    np.testing.assert_array_equal(i, [[[[0, 1, 1, 2]]]])
    v = ref_max_pool(b([[-np.inf, -1]]), (1, 2), 1, ((0, 0), (1, 0)), return_indices=True)
    np.testing.assert_array_equal(v[1], [[[[0, 1]]]])  # a real -inf has its own index


def test_max_pool_integer_dtype_exact():
    x = np.array([[[-128, -100, 127]]], dtype=np.int8)
    v, i = ref_max_pool(x, 2, 1, 1, return_indices=True)
    assert v.dtype == np.int8
    np.testing.assert_array_equal(v, [[[-128, -100, 127, 127]]])
    np.testing.assert_array_equal(i, [[[0, 1, 2, 2]]])
    big = np.array([[[2**62 + 1, 2**62]]], dtype=np.int64)
    assert ref_max_pool(big, 2).item() == 2**62 + 1


def test_max_pool_dilation_ceil_mode():
    x = b(np.arange(1, 8))
    # k=2, d=2: taps i, i+2; stride 2 ceil: (7-2-1)/2 -> 2 + 1 = 3, windows at 0, 2, 4
    np.testing.assert_array_equal(ref_max_pool(x, 2, 2, dilation=2), b([3, 5, 7]))
    # ceil_mode: (7 - 3 - 1)/2 = 1.5 -> 2 + 1 = 3; window at 4 covers 4..6: 5, 6, 7
    y, i = ref_max_pool(x, 3, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, b([3, 5, 7]))
    y, i = ref_max_pool(b(np.arange(1, 7)), 3, 2, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, b([3, 5, 6]))  # last window overhangs: only x[4:6]
    np.testing.assert_array_equal(i, [[[2, 4, 5]]])


def test_avg_pool_count_include_pad_and_ceil_overhang():
    x = b([1, 2, 3, 4, 5, 6])
    # k=3, s=2, p=1, ceil_mode: windows start at -1, 1, 3, 5; the last covers x[5], the
    # right pad (counted) and one overhang position (never counted)
    np.testing.assert_array_equal(ref_avg_pool(x, 3, 2, 1, ceil_mode=True), b([1, 3, 5, 3]))
    np.testing.assert_array_equal(
        ref_avg_pool(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), b([1.5, 3, 5, 6]))
    np.testing.assert_array_equal(ref_avg_pool(x, 3, 2, 1), b([1, 3, 5]))
    # ceil_mode without padding: k=4, s=3 → windows at 0 and 3; the last covers x[3:6] only
    np.testing.assert_array_equal(ref_avg_pool(x, 4, 3, ceil_mode=True), b([2.5, 5]))


def test_avg_pool_divisor_override_and_dilation():
    x = b([1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(
        ref_avg_pool(x, 3, 2, 1, ceil_mode=True, divisor_override=2), b([1.5, 4.5, 7.5, 3]))
    np.testing.assert_array_equal(ref_avg_pool(x, 2, 1, dilation=2), b([2, 3, 4, 5]))
    y = ref_avg_pool(b([[1, 2], [3, 4]]), 2, 1, 1, count_include_pad=False)
    np.testing.assert_array_equal(y, b([[1, 1.5, 2], [2, 2.5, 3], [3, 3.5, 4]]))
    y = ref_avg_pool(b([[1, 2], [3, 4]]), 2, 1, 1)
    np.testing.assert_array_equal(y, b([[1, 3, 2], [4, 10, 6], [3, 7, 4]]) / 4)


def test_lp_pool():
    x = b([3, -4, 0, 1])
    np.testing.assert_array_equal(ref_lp_pool(x, 1, 2), b([7, 1]))
    np.testing.assert_array_equal(ref_lp_pool(x, 2, 2), b([5, 1]))
    np.testing.assert_array_equal(ref_lp_pool(x, np.inf, 2), b([4, 1]))
    # padding counts as zeros
    np.testing.assert_array_equal(ref_lp_pool(b([3, -4]), 2, 2, 2, 1), b([3, 4]))
    np.testing.assert_allclose(ref_lp_pool(b([[1, -2], [2, 4]]), 3, 2), b([[81 ** (1 / 3)]]))
    assert np.isnan(ref_lp_pool(b([1, nan]), np.inf, 2)).all()


def test_adaptive_bins_5_to_3():
    assert ref_adaptive_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]
    x = b([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(ref_adaptive_avg_pool(x, 3), b([1.5, 3, 4.5]))
    v, i = ref_adaptive_max_pool(x, 3, return_indices=True)
    np.testing.assert_array_equal(v, b([2, 4, 5]))
    np.testing.assert_array_equal(i, [[[1, 3, 4]]])


def test_adaptive_none_and_2d():
    x = b(np.arange(20).reshape(4, 5))
    y = ref_adaptive_avg_pool(x, (2, None))
    np.testing.assert_array_equal(y[0, 0], [[2.5, 3.5, 4.5, 5.5, 6.5],
                                            [12.5, 13.5, 14.5, 15.5, 16.5]])
    v, i = ref_adaptive_max_pool(x, (None, 3), return_indices=True)
    np.testing.assert_array_equal(v[0, 0], x[0, 0][:, [1, 3, 4]])
    np.testing.assert_array_equal(i[0, 0], np.arange(20).reshape(4, 5)[:, [1, 3, 4]])
    v, i = ref_adaptive_max_pool(b([[1, 7], [7, nan]]), 1, return_indices=True)
    assert np.isnan(v.item()) and i.item() == 3


def test_global_pools():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    np.testing.assert_array_equal(ref_global_avg_pool(x), x.mean(axis=(2, 3), keepdims=True))
    assert ref_global_max_pool(x).shape == (2, 3, 1, 1)
    xi = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    assert ref_global_max_pool(xi).dtype == np.int16
    np.testing.assert_array_equal(ref_global_max_pool(xi)[:, :, 0], [[3, 7, 11], [15, 19, 23]])
    assert ref_global_avg_pool(np.ones((1, 1, 2, 2, 2))).shape == (1, 1, 1, 1, 1)


def test_max_unpool_round_trip():
    x = b([[1, 3, 2, 4], [5, 2, 3, 1], [4, 6, 2, 7], [8, 3, 1, 5]])
    v, i = ref_max_pool(x, 2, return_indices=True)
    np.testing.assert_array_equal(i, [[[[4, 3], [12, 11]]]])
    u = ref_max_unpool(v, i, 2)
    expected = np.zeros((4, 4))
    expected[1, 0], expected[0, 3], expected[3, 0], expected[2, 3] = 5, 4, 8, 7
    np.testing.assert_array_equal(u[0, 0], expected)
    np.testing.assert_array_equal(ref_max_pool(u, 2), v)
    # default size (in-1)*s - 2p + k; output_size overrides; out of range → ValueError
    assert ref_max_unpool(v, i * 0 + 8, 3, 2, 1).shape == (1, 1, 3, 3)
    assert ref_max_unpool(v, i, 2, output_size=(5, 5)).shape == (1, 1, 5, 5)
    with pytest.raises(ValueError, match="out of range"):
        ref_max_unpool(v, i + 20, 2)


def test_max_unpool_int_and_3d():
    rng = np.random.default_rng(1)
    x = rng.integers(-50, 50, size=(2, 3, 4, 4, 6)).astype(np.int32)
    v, i = ref_max_pool(x, 2, return_indices=True)
    u = ref_max_unpool(v, i, 2)
    assert u.dtype == np.int32 and u.shape == x.shape
    np.testing.assert_array_equal(ref_max_pool(u, 2), v)


def test_spatial_pyramid_pool():
    x0 = np.array([[1, 3, 2, 4], [5, 2, 3, 1], [4, 6, 2, 7], [8, 3, 1, 5]], dtype=float)
    x = np.stack([x0, x0 + 100])[None]
    y = ref_spatial_pyramid_pool2d(x, levels=(1, 2), mode="max")
    assert y.shape == (1, 2 * (1 + 4))
    np.testing.assert_array_equal(y, [[8, 108, 5, 4, 8, 7, 105, 104, 108, 107]])
    y = ref_spatial_pyramid_pool2d(x, levels=(1, 2), mode="avg")
    np.testing.assert_array_equal(y[0, :2], [x0.mean(), x0.mean() + 100])
    np.testing.assert_array_equal(y[0, 2:6], [2.75, 2.5, 5.25, 3.75])
    assert ref_spatial_pyramid_pool2d(np.ones((3, 2, 7, 5))).shape == (3, 2 * 21)


def test_mixed_pool():
    y = ref_mixed_pool2d(b([[1, 3], [5, 7]]), 2, alpha=0.25)
    np.testing.assert_array_equal(y, b([[0.25 * 7 + 0.75 * 4]]))
    y = ref_mixed_pool2d(b([[2, 4]]), (1, 2), 1, ((0, 0), (1, 1)), alpha=0.5)
    np.testing.assert_array_equal(y, b([[2, 3.5, 4]]))  # padding excluded from max and avg
    assert ref_mixed_pool2d(np.ones((2, 3, 7, 7)), 3, 2, 1).shape == (2, 3, 4, 4)


def test_pool_padding_must_be_smaller_than_extent():
    with pytest.raises(ValueError, match="padding"):
        ref_max_pool(np.ones((1, 1, 5)), 2, padding=2)
    ref_max_pool(np.ones((1, 1, 5)), 2, padding=1, dilation=1)  # allowed: 1 < 2


def test_empty_batch_and_strided_read_only_inputs():
    x = np.zeros((0, 2, 5, 5))
    w = np.ones((4, 2, 3, 3))
    assert ref_conv(x, w, padding=1, padding_mode="reflect").shape == (0, 4, 5, 5)
    assert ref_conv_transpose(x, np.ones((2, 3, 3, 3)), stride=2).shape == (0, 3, 11, 11)
    v, i = ref_max_pool(x, 2, return_indices=True)
    assert v.shape == i.shape == (0, 2, 2, 2)
    assert ref_max_unpool(v, i, 2).shape == (0, 2, 4, 4)
    assert ref_avg_pool(x, 2).shape == ref_lp_pool(x, 2, 2).shape == (0, 2, 2, 2)
    assert ref_spatial_pyramid_pool2d(x).shape == (0, 42)
    base = _rand(0, (2, 3, 9, 9))
    view = base[:, ::-1, ::2, 1::2]
    view.flags.writeable = False
    np.testing.assert_array_equal(ref_conv(view, w[:, :1].repeat(3, 1)),
                                  ref_conv(view.copy(), w[:, :1].repeat(3, 1)))
    np.testing.assert_array_equal(ref_max_pool(view, 2), ref_max_pool(view.copy(), 2))


# --------------------------------------------------------------------------------------------
# The tolerance helper
# --------------------------------------------------------------------------------------------
def test_winograd_tolerances_are_the_documented_bounds():
    from fastconv._winograd_plan import ERROR_BOUND
    for dtype, bounds in ERROR_BOUND.items():
        for tile, bound in bounds.items():
            assert TOLERANCES[dtype][f"winograd_f{tile}"] == bound, (dtype, tile)
        assert TOLERANCES[dtype]["winograd"] == max(bounds[2], bounds[4])


def test_assert_close_passes_on_rounding_noise():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((3, 4, 5))
    assert_close(ref.astype(np.float32), ref, np.float32)
    assert_close(ref * (1 + 1e-14), ref, np.float64)
    noisy = ref + 5e-5 * np.abs(ref).max()
    with pytest.raises(AssertionError, match=r"max\|err\| / max\|ref\| = 5\.0\d*e-05"):
        assert_close(noisy, ref, np.float32)
    assert_close(noisy, ref, np.float32, algorithm="winograd_f6")
    assert_close(np.arange(4, dtype=np.int8), np.arange(4.0), np.int8)


def test_assert_close_fails_on_wrong_answer():
    ref = np.arange(12.0).reshape(3, 4)
    wrong = ref.copy()
    wrong[1, 2] += 1
    with pytest.raises(AssertionError, match=r"worst at index \(1, 2\)"):
        assert_close(wrong, ref, np.float64)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(ref.T, ref, np.float64)
    with pytest.raises(AssertionError):
        assert_close(np.array([1, 2], np.int8), np.array([1.0, 3.0]), np.int8)
    with pytest.raises(AssertionError):  # an all-zero reference must be met exactly
        assert_close(np.full(3, 1e-30), np.zeros(3), np.float32)
    with pytest.raises(KeyError, match="unknown algorithm"):
        assert_close(ref, ref, np.float32, algorithm="winograd_f3")


def test_assert_close_nan_and_inf_positions():
    ref = np.array([1.0, nan, np.inf, -np.inf])
    assert_close(ref.copy(), ref, np.float64)
    with pytest.raises(AssertionError, match="NaN positions differ"):
        assert_close(np.array([nan, 1.0, np.inf, -np.inf]), ref, np.float64)
    with pytest.raises(AssertionError, match=r"\+Inf positions differ"):
        assert_close(np.array([1.0, nan, -np.inf, -np.inf]), ref, np.float64)
    with pytest.raises(AssertionError, match="NaN positions differ"):
        assert_close(np.array([1.0, 2.0, np.inf, -np.inf]), ref, np.float64)
    assert_close(np.array([nan, nan]), np.array([nan, nan]), np.float32)


# --------------------------------------------------------------------------------------------
# Cross-check against torch.nn.functional (skipped where torch is not installed)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    # torch shares the OpenMP runtime with fastconv: restore its thread count afterwards.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


def _t(torch, a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _rand(seed, shape):
    return np.random.default_rng(seed).standard_normal(shape)


CONV_CASES = [
    # (spatial, c_in, c_out, kernel, stride, padding, dilation, groups, bias, padding_mode)
    ((11,), 3, 4, 3, 1, 0, 1, 1, True, "zeros"),
    ((12,), 4, 6, 4, 3, 2, 2, 2, False, "zeros"),
    ((10,), 2, 2, 3, 1, "same", 2, 2, True, "zeros"),
    ((9,), 3, 2, 3, 2, ((2, 1),), 1, 1, True, "reflect"),
    ((9,), 2, 4, 2, 1, ((1, 3),), 1, 2, False, "circular"),
    ((7, 8), 3, 4, (3, 2), (2, 1), (1, 0), (1, 2), 1, True, "zeros"),
    ((8, 8), 4, 4, 3, 1, "same", 1, 4, True, "zeros"),
    ((9, 7), 6, 4, (2, 3), (1, 2), "valid", (3, 1), 2, False, "zeros"),
    ((6, 7), 2, 3, 3, 1, ((1, 2), (2, 0)), 1, 1, True, "reflect"),
    ((6, 5), 2, 2, 3, 2, 1, 2, 1, False, "replicate"),
    ((5, 6), 3, 3, (2, 3), 1, ((0, 2), (1, 1)), 1, 3, True, "circular"),
    ((5, 6, 7), 2, 4, (3, 2, 3), (1, 2, 2), (1, 0, 1), (1, 2, 1), 2, True, "zeros"),
    ((4, 5, 6), 2, 2, 3, 1, "same", 1, 1, False, "zeros"),
    ((5, 4, 5), 3, 3, 2, 1, ((1, 0), (0, 1), (1, 1)), 1, 1, True, "replicate"),
    ((5, 5, 4), 2, 2, 3, 2, 1, 1, 2, False, "circular"),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_torch_conv(torch, case):
    spatial, c_in, c_out, k, s, p, dl, g, bias, mode = case
    d = len(spatial)
    F = torch.nn.functional
    kt = (k,) * d if isinstance(k, int) else k
    x = _rand(1, (2, c_in) + spatial)
    w = _rand(2, (c_out, c_in // g) + kt)
    bb = _rand(3, c_out) if bias else None
    ours = ref_conv(x, w, bb, s, p, dl, g, padding_mode=mode)
    tx, tb = _t(torch, x), (None if bb is None else _t(torch, bb))
    conv = getattr(F, f"conv{d}d")
    if isinstance(p, str):
        theirs = conv(tx, _t(torch, w), tb, s, p, dl, g)
    else:
        pairs = ref_resolve_padding(p, spatial, kt, s, dl)
        flat = [v for pair in reversed(pairs) for v in pair]  # F.pad: last dim first
        torch_mode = {"zeros": "constant", "replicate": "replicate", "reflect": "reflect",
                      "circular": "circular"}[mode]
        theirs = conv(F.pad(tx, flat, mode=torch_mode), _t(torch, w), tb, s, 0, dl, g)
        if mode == "zeros" and all(pb == pa for pb, pa in pairs):
            sym = tuple(pb for pb, _ in pairs)
            np.testing.assert_allclose(conv(tx, _t(torch, w), tb, s, sym, dl, g).numpy(),
                                       theirs.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


CONV_T_CASES = [
    # (spatial, c_in, c_out, kernel, stride, padding, output_padding, groups, dilation, bias)
    ((5,), 3, 2, 3, 1, 0, 0, 1, 1, True),
    ((6,), 4, 6, 4, 3, 2, 2, 2, 1, False),
    ((5,), 2, 4, 3, 2, 1, 1, 2, 2, True),
    ((4, 5), 3, 2, (3, 2), (2, 1), (1, 0), (1, 0), 1, (1, 2), True),
    ((5, 4), 4, 4, 3, 2, 1, 1, 4, 1, False),
    ((3, 4), 2, 6, (2, 3), (3, 2), 0, (2, 1), 2, (2, 1), True),
    ((3, 4, 3), 2, 4, (3, 2, 2), (1, 2, 2), (1, 0, 1), (0, 1, 1), 2, (1, 1, 2), True),
    ((3, 3, 3), 3, 3, 2, 2, 0, 1, 1, 1, False),
]


@pytest.mark.parametrize("case", CONV_T_CASES)
def test_torch_conv_transpose(torch, case):
    spatial, c_in, c_out, k, s, p, op, g, dl, bias = case
    d = len(spatial)
    kt = (k,) * d if isinstance(k, int) else k
    x = _rand(4, (2, c_in) + spatial)
    w = _rand(5, (c_in, c_out // g) + kt)
    bb = _rand(6, c_out) if bias else None
    ours = ref_conv_transpose(x, w, bb, s, p, op, g, dl)
    conv_t = getattr(torch.nn.functional, f"conv_transpose{d}d")
    theirs = conv_t(_t(torch, x), _t(torch, w), None if bb is None else _t(torch, bb), s, p,
                    op, g, dl)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-10)


POOL_CASES = [
    # (spatial, kernel, stride, padding, dilation, ceil_mode)
    ((11,), 3, 2, 1, 1, False),
    ((10,), 3, 2, 1, 1, True),
    ((9,), 2, 3, 0, 2, True),
    ((12,), 4, 3, 2, 1, True),
    ((7, 8), 3, 2, 1, 1, True),
    ((8, 9), (2, 3), (2, 1), (1, 1), (2, 1), False),
    ((9, 7), 3, 2, (1, 0), (1, 2), True),
    ((6, 7), 2, None, 0, 1, True),
    ((5, 6, 7), 2, (1, 2, 2), (1, 0, 1), 1, True),
    ((5, 5, 6), 3, 2, 1, (1, 1, 2), False),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_torch_max_pool(torch, case):
    spatial, k, s, p, dl, ceil = case
    d = len(spatial)
    x = _rand(7, (2, 3) + spatial)
    v, i = ref_max_pool(x, k, s, p, dl, ceil, return_indices=True)
    pool = getattr(torch.nn.functional, f"max_pool{d}d")
    tv, ti = pool(_t(torch, x), k, s, p, dl, ceil, return_indices=True)
    np.testing.assert_array_equal(v, tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    # max_unpool: default size and an explicit output_size, against torch's own unpool
    unpool = getattr(torch.nn.functional, f"max_unpool{d}d")
    default = unpool(tv, ti * 0, k, s, p).shape[2:]
    if all(o >= n for o, n in zip(default, spatial)):
        np.testing.assert_array_equal(ref_max_unpool(v, i, k, s, p),
                                      unpool(tv, ti, k, s, p).numpy())
    else:  # the default size cannot hold every index
        assert ref_max_unpool(v, i * 0, k, s, p).shape[2:] == default
        with pytest.raises(ValueError, match="out of range"):
            ref_max_unpool(v, i, k, s, p)
    try:
        theirs = unpool(tv, ti, k, s, p, output_size=spatial).numpy()
    except ValueError:  # torch only accepts an output_size within a stride of its default
        return
    np.testing.assert_array_equal(ref_max_unpool(v, i, k, s, p, output_size=spatial), theirs)


@pytest.mark.parametrize("case", [c for c in POOL_CASES if c[4] == 1])
@pytest.mark.parametrize("count_include_pad, divisor", [(True, None), (False, None),
                                                        (True, 5)])
def test_torch_avg_pool(torch, case, count_include_pad, divisor):
    spatial, k, s, p, _, ceil = case
    d = len(spatial)
    x = _rand(8, (2, 3) + spatial)
    ours = ref_avg_pool(x, k, s, p, 1, ceil, count_include_pad, divisor)
    pool = getattr(torch.nn.functional, f"avg_pool{d}d")
    if d == 1:  # avg_pool1d has no divisor_override: pool a (N, C, 1, L) image instead
        theirs = torch.nn.functional.avg_pool2d(_t(torch, x[:, :, None]), (1, k),
                                                (1, s if s else k), (0, p), ceil,
                                                count_include_pad, divisor)[:, :, 0]
    else:
        theirs = pool(_t(torch, x), k, s, p, ceil, count_include_pad, divisor)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("spatial, out", [
    ((5,), 3), ((7,), 4), ((9,), 9), ((6,), 1),
    ((5, 7), (3, 4)), ((8, 6), (None, 4)), ((7, 7), 7), ((3, 5), (5, 2)),
    ((5, 6, 7), (2, 3, None)), ((4, 4, 5), 3),
])
def test_torch_adaptive_pools(torch, spatial, out):
    d = len(spatial)
    F = torch.nn.functional
    x = _rand(9, (2, 3) + spatial)
    tx = _t(torch, x)
    np.testing.assert_allclose(ref_adaptive_avg_pool(x, out),
                               getattr(F, f"adaptive_avg_pool{d}d")(tx, out).numpy(),
                               rtol=1e-12, atol=1e-14)
    v, i = ref_adaptive_max_pool(x, out, return_indices=True)
    tv, ti = getattr(F, f"adaptive_max_pool{d}d")(tx, out, return_indices=True)
    np.testing.assert_array_equal(v, tv.numpy())
    np.testing.assert_array_equal(i, ti.numpy())


@pytest.mark.parametrize("spatial, k, s, norm", [
    ((9,), 3, 2, 2), ((8,), 2, None, 4), ((7, 8), (2, 3), (2, 1), 2), ((6, 6), 3, 3, 4),
    ((4, 5, 6), 2, (1, 2, 2), 2),
])
def test_torch_lp_pool_even_p(torch, spatial, k, s, norm):
    d = len(spatial)
    x = _rand(10, (2, 3) + spatial)
    pool = getattr(torch.nn.functional, f"lp_pool{d}d")
    theirs = pool(_t(torch, x), float(norm), k, s, ceil_mode=False)
    np.testing.assert_allclose(ref_lp_pool(x, norm, k, s), theirs.numpy(), rtol=1e-10)


def test_torch_global_and_spp(torch):
    F = torch.nn.functional
    x = _rand(11, (2, 3, 7, 9))
    tx = _t(torch, x)
    np.testing.assert_allclose(ref_global_avg_pool(x), F.adaptive_avg_pool2d(tx, 1).numpy(),
                               rtol=1e-12)
    np.testing.assert_array_equal(ref_global_max_pool(x), F.adaptive_max_pool2d(tx, 1).numpy())
    levels = (1, 2, 4)
    for mode, pool in (("max", F.adaptive_max_pool2d), ("avg", F.adaptive_avg_pool2d)):
        theirs = torch.cat([pool(tx, lv).flatten(1) for lv in levels], dim=1)
        np.testing.assert_allclose(ref_spatial_pyramid_pool2d(x, levels, mode), theirs.numpy(),
                                   rtol=1e-12)
    alpha = 0.3
    theirs = alpha * F.max_pool2d(tx, 3, 2, 1) + (1 - alpha) * F.avg_pool2d(
        tx, 3, 2, 1, count_include_pad=False)
    np.testing.assert_allclose(ref_mixed_pool2d(x, 3, 2, 1, alpha), theirs.numpy(), rtol=1e-12)
