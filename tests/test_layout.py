"""data_format= (channels-last data) and weight_format= (HWIO / OHWI weights), issue 21 item 9.

Every operator in channels-last layout must equal the channels-first call on the same data
moved to channels-first, and the convolutions the float64 reference.
"""

import numpy as np
import pytest
from reference import assert_close, ref_conv, ref_conv_transpose

import fastconv

LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}
FIRST = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
WEIGHTS = {1: ("OIW", "WIO", "OWI"), 2: ("OIHW", "HWIO", "OHWI"), 3: ("OIDHW", "DHWIO", "ODHWI")}


def _first(a, nd):
    return np.moveaxis(a, -1, a.ndim - nd - 1)


def _last(a, nd):
    return np.moveaxis(a, a.ndim - nd - 1, -1)


def _as(w, fmt, nd):
    """An OIHW weight written in ``fmt``."""
    if fmt == WEIGHTS[nd][1]:
        return np.ascontiguousarray(np.moveaxis(w, (0, 1), (nd + 1, nd)))
    if fmt == WEIGHTS[nd][2]:
        return np.ascontiguousarray(np.moveaxis(w, 1, -1))
    return w


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("wfmt", [0, 1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_channels_last_and_weight_formats(nd, wfmt, dtype):
    rng = np.random.default_rng(nd * 10 + wfmt)
    x = rng.standard_normal((2,) + (6,) * nd + (4,)).astype(dtype)      # channels-last
    w = rng.standard_normal((6, 2) + (3,) * nd).astype(dtype)           # OIHW, groups 2
    b = rng.standard_normal(6).astype(dtype)
    fmt = WEIGHTS[nd][wfmt]
    conv = getattr(fastconv, f"conv{nd}d")
    expected = _last(ref_conv(_first(x, nd).astype(np.float64), w.astype(np.float64),
                              b.astype(np.float64), padding=1, groups=2), nd)
    y = conv(x, _as(w, fmt, nd), b, padding=1, groups=2, data_format=LAST[nd],
             weight_format=fmt)
    assert y.shape == expected.shape and y.flags.c_contiguous and y.dtype == dtype
    assert_close(y, expected, dtype)
    out = np.empty_like(y[1])
    assert conv(x[1], _as(w, fmt, nd), b, padding=1, groups=2, data_format=LAST[nd],
                weight_format=fmt, out=out) is out
    assert_close(out, expected[1], dtype)
    layer = getattr(fastconv, f"Conv{nd}d")(_as(w, fmt, nd), b, padding=1, groups=2,
                                            weight_format=fmt, data_format=LAST[nd])
    np.testing.assert_array_equal(layer(x), y)
    # channels-first names and None are the default path
    np.testing.assert_array_equal(
        conv(_first(x, nd), w, b, padding=1, groups=2, data_format=FIRST[nd]),
        conv(_first(x, nd), w, b, padding=1, groups=2))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_conv_transpose_channels_last(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2,) + (4,) * nd + (4,))
    w = rng.standard_normal((4, 3) + (3,) * nd)
    expected = _last(ref_conv_transpose(_first(x, nd), w, None, 2, 1, 1), nd)
    fn = getattr(fastconv, f"conv_transpose{nd}d")
    y = fn(x, w, None, 2, 1, 1, data_format=LAST[nd])
    assert y.shape == expected.shape
    assert_close(y, expected, np.float64)
    layer = getattr(fastconv, f"ConvTranspose{nd}d")(w, None, 2, 1, 1, data_format=LAST[nd])
    out = np.empty(expected.shape[1:])
    assert layer(x[0], out=out) is out
    assert_close(out, expected[0], np.float64)


POOLS = [
    *((f"max_pool{d}d", d, (2,), {}) for d in (1, 2, 3)),
    *((f"avg_pool{d}d", d, (3,), dict(stride=2, padding=1)) for d in (1, 2, 3)),
    *((f"lp_pool{d}d", d, (2, 2), {}) for d in (1, 2)),
    *((f"adaptive_avg_pool{d}d", d, (2,), {}) for d in (1, 2, 3)),
    *((f"adaptive_max_pool{d}d", d, (3,), {}) for d in (1, 2)),
    ("mixed_pool2d", 2, (2,), dict(alpha=0.3)),
    ("mixed_pool2d", 2, (2,), dict(mode="random", seed=3)),
]


@pytest.mark.parametrize("name,nd,args,kwargs", POOLS, ids=lambda v: str(v))
def test_pools_channels_last(name, nd, args, kwargs):
    fn = getattr(fastconv, name)
    x = np.random.default_rng(1).standard_normal((2,) + (6,) * nd + (3,)).astype(np.float32)
    expected = _last(fn(_first(x, nd), *args, **kwargs), nd)
    y = fn(x, *args, data_format=LAST[nd], **kwargs)
    np.testing.assert_array_equal(y, expected)
    assert y.flags.c_contiguous
    out = np.empty_like(y[0])
    assert fn(x[0], *args, data_format=LAST[nd], out=out, **kwargs) is out
    np.testing.assert_array_equal(out, expected[0])


def test_max_pool_indices_and_unpool_channels_last():
    x = np.random.default_rng(2).standard_normal((2, 6, 8, 3))
    values, indices = fastconv.max_pool2d(x, 2, return_indices=True, data_format="NHWC")
    v_cf, i_cf = fastconv.max_pool2d(_first(x, 2), 2, return_indices=True)
    np.testing.assert_array_equal(values, _last(v_cf, 2))
    np.testing.assert_array_equal(indices, _last(i_cf, 2))  # indices into each (H, W) plane
    restored = fastconv.max_unpool2d(values, indices, 2, data_format="NHWC")
    np.testing.assert_array_equal(restored, _last(fastconv.max_unpool2d(v_cf, i_cf, 2), 2))


def test_global_and_pyramid_pools_channels_last():
    x = np.random.default_rng(3).standard_normal((2, 5, 7, 4))
    # the format gives the spatial rank: an unbatched (H, W, C) is understood
    assert fastconv.global_avg_pool(x, data_format="NHWC").shape == (2, 1, 1, 4)
    np.testing.assert_allclose(fastconv.global_max_pool(x[1], data_format="NHWC")[0, 0],
                               x[1].max(axis=(0, 1)))
    assert fastconv.global_avg_pool(x[1], data_format="NWC").shape == (5, 1, 4)  # (N, W, C)
    with pytest.raises(ValueError, match="spatial_dims=1 contradicts data_format"):
        fastconv.global_avg_pool(x, data_format="NHWC", spatial_dims=1)
    # the pyramid's vector is the channels-first one: only the input layout changes
    np.testing.assert_array_equal(
        fastconv.spatial_pyramid_pool2d(x, (1, 2), data_format="NHWC"),
        fastconv.spatial_pyramid_pool2d(_first(x, 2), (1, 2)))


@pytest.mark.parametrize("call,exc,pattern", [
    (lambda x: fastconv.conv2d(x, np.ones((2, 3, 3, 3)), data_format="NWC"), ValueError,
     r"data_format must be one of 'NCHW', 'NHWC', got 'NWC'"),
    (lambda x: fastconv.max_pool2d(x, 2, data_format="nhwc"), ValueError,
     r"data_format.*'nhwc'"),
    (lambda x: fastconv.max_pool2d(x, 2, data_format=2), TypeError, r"data_format.*2"),
    (lambda x: fastconv.conv2d(x, np.ones((2, 3, 3, 3)), weight_format="IOHW"), ValueError,
     r"weight_format must be one of 'OIHW', 'HWIO', 'OHWI', got 'IOHW'"),
    (lambda x: fastconv.max_pool2d(x, 2, data_format="NHWC", out=np.empty((1, 2, 2, 3))),
     ValueError, r"out must be .*\(1, 4, 4, 3\)"),
    (lambda x: fastconv.avg_pool2d(x[0, 0], 2, data_format="NHWC"), ValueError,
     r"x must have 4 dims \(N, H, W, C\)"),
    (lambda x: fastconv.Conv2d(np.ones((3, 3, 3, 2)), weight_format="HWOI"), ValueError,
     r"weight_format.*'HWOI'"),
])
def test_layout_errors_name_the_argument(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call(np.ones((1, 8, 8, 3)))


def test_interpolate_channels_last():
    x = np.random.default_rng(4).standard_normal((2, 5, 6, 3))
    for mode in ("nearest", "bilinear", "bicubic"):
        expected = _last(fastconv.interpolate(_first(x, 2), scale_factor=2, mode=mode), 2)
        y = fastconv.interpolate(x, scale_factor=2, mode=mode, data_format="NHWC")
        np.testing.assert_array_equal(y, expected)
    out = np.empty((2, 8, 8, 3))
    assert fastconv.interpolate(x, size=(8, 8), data_format="NHWC", out=out) is out
    with pytest.raises(ValueError, match="data_format"):
        fastconv.interpolate(x, scale_factor=2, data_format="HWC")


@pytest.mark.parametrize("mask", [False, True])
def test_deform_conv2d_channels_last(mask):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 8, 4)).astype(np.float32)           # NHWC
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)           # OIHW
    offset = rng.uniform(-1.5, 1.5, (2, 7, 8, 2 * 2 * 9)).astype(np.float32)  # 2 offset groups
    m = rng.uniform(0, 1, (2, 7, 8, 2 * 9)).astype(np.float32) if mask else None
    y = fastconv.deform_conv2d(x, offset, _as(w, "HWIO", 2), padding=1, mask=m,
                               data_format="NHWC", weight_format="HWIO")
    expected = fastconv.deform_conv2d(_first(x, 2), _first(offset, 2), w, padding=1,
                                      mask=None if m is None else _first(m, 2))
    assert y.shape == (2, 7, 8, 6)
    np.testing.assert_array_equal(_first(y, 2), expected)
