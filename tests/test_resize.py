"""fastconv.interpolate against a float64 reference written from PyTorch's definitions.

The reference computes every output element on its own (a loop over output positions of small
arrays: clarity over speed), with the 1-D rules below combined as a tensor product.
"""

import itertools
import math

import numpy as np
import pytest
from reference import assert_close

import fastconv


def _ref_taps(d, n_in, n_out, mode, align_corners, factor):
    """(index, weight) pairs output index ``d`` reads along one axis."""
    ratio = 1.0 / factor if factor is not None else n_in / n_out
    if mode == "nearest":
        return [(min(int(math.floor(d * ratio)), n_in - 1), 1.0)]
    if mode == "nearest-exact":
        return [(min(int(math.floor((d + 0.5) * ratio)), n_in - 1), 1.0)]
    if align_corners:
        src = d * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    else:
        src = (d + 0.5) * ratio - 0.5
    if mode != "bicubic":
        src = max(src, 0.0)
        i0 = int(math.floor(src))
        lam = src - i0
        return [(min(i0, n_in - 1), 1 - lam), (min(i0 + 1, n_in - 1), lam)]
    i0 = int(math.floor(src))
    t = src - i0
    a = -0.75

    def kernel(s):  # Keys' cubic convolution kernel
        s = abs(s)
        if s <= 1:
            return (a + 2) * s**3 - (a + 3) * s**2 + 1
        if s < 2:
            return a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a
        return 0.0

    return [(min(max(i0 + k, 0), n_in - 1), kernel(t - k)) for k in (-1, 0, 1, 2)]


def ref_interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    x = np.asarray(x, np.float64)
    spatial = x.ndim - 2
    in_sizes = x.shape[2:]
    if size is not None:
        out_sizes = (size,) * spatial if isinstance(size, int) else tuple(size)
        factors = (None,) * spatial
    else:
        factors = (scale_factor,) * spatial if not isinstance(scale_factor, tuple) \
            else scale_factor
        out_sizes = tuple(int(math.floor(n * f)) for n, f in zip(in_sizes, factors))
    y = np.zeros(x.shape[:2] + out_sizes)
    for pos in itertools.product(*(range(n) for n in out_sizes)):
        per_axis = [_ref_taps(d, n_in, n_out, mode, align_corners, f)
                    for d, n_in, n_out, f in zip(pos, in_sizes, out_sizes, factors)]
        for combo in itertools.product(*per_axis):
            idx = tuple(i for i, _ in combo)
            w = math.prod(wt for _, wt in combo)
            y[(slice(None), slice(None)) + pos] += w * x[(slice(None), slice(None)) + idx]
    return y


CASES = [
    # (input spatial shape, mode, size, scale_factor, align_corners)
    ((5,), "nearest", 8, None, None),
    ((5,), "nearest", None, 2.0, None),
    ((7,), "nearest", 3, None, None),
    ((5,), "nearest-exact", 8, None, None),
    ((7,), "nearest-exact", None, 0.5, None),
    ((5,), "linear", 9, None, False),
    ((5,), "linear", 9, None, True),
    ((6,), "linear", None, 0.7, None),
    ((4, 5), "bilinear", (7, 3), None, False),
    ((4, 5), "bilinear", (7, 3), None, True),
    ((4, 5), "bilinear", None, (1.5, 2.0), None),
    ((4, 5), "bicubic", (7, 9), None, False),
    ((4, 5), "bicubic", (7, 9), None, True),
    ((6, 5), "bicubic", None, 0.5, None),
    ((4, 5), "nearest", (9, 2), None, None),
    ((3, 4, 5), "trilinear", (5, 3, 7), None, False),
    ((3, 4, 5), "trilinear", None, 2.0, True),
    ((3, 4, 5), "nearest", (6, 8, 3), None, None),
    ((3, 4, 5), "nearest-exact", None, (1.5, 0.5, 2.0), None),
    ((1, 1), "bilinear", (3, 2), None, True),
]


@pytest.mark.parametrize("spatial, mode, size, scale, align", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_matches_reference(spatial, mode, size, scale, align, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, *spatial)).astype(dtype)
    y = fastconv.interpolate(x, size, scale, mode, align)
    expected = ref_interpolate(x, size, scale, mode, align)
    assert y.shape == expected.shape and y.dtype == dtype
    assert_close(y, expected, dtype)


def test_interpolate_hand_checked():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], np.float32)
    bilinear = [[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5],
                [3, 3.25, 3.75, 4]]
    np.testing.assert_allclose(fastconv.interpolate(x, scale_factor=2, mode="bilinear")[0, 0],
                               bilinear)
    # Keys' kernel with A = -0.75 and edge-clamped taps, worked out on paper: the row [1, 2]
    # resized to 4 starts at 1.10546875 - 0.2109375 = 0.89453125
    y = fastconv.interpolate(x, size=4, mode="bicubic")[0, 0]
    assert y[0, 0] == pytest.approx(0.68359375)
    assert y[3, 3] == pytest.approx(4.31640625)
    np.testing.assert_array_equal(fastconv.interpolate(x, size=(2, 2), mode="bicubic"), x)
    assert fastconv.interpolate(x, scale_factor=1.5)[0, 0].tolist() == [[1, 1, 2]] * 2 + \
        [[3, 3, 4]]


def test_interpolate_out_and_dtypes():
    x = np.arange(12, dtype=np.int32).reshape(1, 1, 3, 4)
    y = fastconv.interpolate(x, size=(6, 8))
    assert y.dtype == np.float64
    out = np.empty((1, 1, 5, 5), np.float32)
    res = fastconv.interpolate(x.astype(np.float32)[..., ::-1], size=5, mode="bilinear",
                               out=out)
    assert res is out
    assert_close(out, ref_interpolate(x[..., ::-1], 5, None, "bilinear", False), np.float32)
    same = fastconv.interpolate(x, size=(3, 4))
    assert same.tolist() == x.tolist() and not np.shares_memory(same, x)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(size=4, mode="cubic"), ValueError, "mode"),
    (dict(size=4, mode="linear"), ValueError, "mode='linear' needs 3-D"),
    (dict(size=4, mode="nearest", align_corners=True), ValueError, "align_corners"),
    (dict(size=4, scale_factor=2), ValueError, "exactly one"),
    (dict(), ValueError, "exactly one"),
    (dict(size=(4, 4, 4)), ValueError, "size"),
    (dict(size=0), ValueError, "size"),
    (dict(scale_factor=-1.0), ValueError, "scale_factor"),
    (dict(scale_factor=0.1), ValueError, "scale_factor"),
    (dict(scale_factor="2"), TypeError, "scale_factor"),
])
def test_interpolate_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fastconv.interpolate(np.ones((1, 1, 4, 4)), **kwargs)


def test_interpolate_bad_rank():
    with pytest.raises(ValueError, match="3, 4 or 5 dims"):
        fastconv.interpolate(np.ones((4, 4)), size=2)
