"""Winograd through the public convolution API: conv2d / Conv2d with algorithm="winograd*".

The kernels themselves are swept per ISA in tests/test_winograd.py; this file checks the wiring:
argument rules, the tile "winograd" and "auto" pick, every padding form and mode, groups, batch,
unbatched and non-contiguous input, out=, and that the layer object and the function agree.
"""

import zlib

import numpy as np
import pytest
from reference import assert_close, ref_conv

import fastconv
from fastconv import _algorithms

WINOGRAD = ("winograd", "winograd_f2", "winograd_f4", "winograd_f6")


def _data(seed, x_shape, w_shape, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype))


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", [
    dict(n=1, c=8, co=8, size=(9, 13), padding=1),
    dict(n=2, c=16, co=12, size=(17, 6), padding="same", padding_mode="reflect"),
    dict(n=1, c=8, co=16, size=(11, 11), padding="valid"),
    dict(n=1, c=8, co=8, size=(5, 7), padding="full"),
    dict(n=3, c=16, co=8, size=(10, 9), padding=((2, 0), (1, 3)), groups=2),
    dict(n=1, c=12, co=12, size=(8, 8), padding=(1, 2), padding_mode="circular", groups=3),
    dict(n=1, c=8, co=8, size=(7, 12), padding="same_lower", padding_mode="replicate"),
])
@pytest.mark.parametrize("threads", [1, 2])
def test_winograd_matches_reference(algorithm, dtype, case, threads):
    case = dict(case)
    n, c, co, size = case.pop("n"), case.pop("c"), case.pop("co"), case.pop("size")
    groups = case.get("groups", 1)
    seed = zlib.crc32(repr((algorithm, n, c, size)).encode())
    x, w, b = _data(seed, (n, c, *size), (co, c // groups, 3, 3), dtype)
    expected = ref_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                        **case)
    y = fastconv.conv2d(x, w, b, algorithm=algorithm, threads=threads, **case)
    layer = fastconv.Conv2d(w, b, algorithm=algorithm, **case)
    y_layer = layer(x, threads=threads)
    assert y.dtype == dtype and y_layer.dtype == dtype
    assert_close(y, expected, dtype, algorithm=algorithm)
    np.testing.assert_array_equal(y, y_layer)
    assert layer.algorithm_for(x.shape).startswith("winograd_")


def test_unbatched_noncontiguous_and_out():
    x, w, b = _data(3, (2, 16, 20, 20), (16, 16, 3, 3))
    view = x[:, :, ::2, 1::2][1]  # unbatched, non-contiguous (16, 10, 10)
    expected = ref_conv(view[None].astype(np.float64), w.astype(np.float64),
                        b.astype(np.float64), padding=1)[0]
    out = np.full((16, 10, 10), np.nan, np.float32)
    y = fastconv.conv2d(view, w, b, padding=1, algorithm="winograd_f4", out=out)
    assert y is out
    assert_close(y, expected, np.float32, algorithm="winograd_f4")


@pytest.mark.parametrize("algorithm", WINOGRAD)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c, co, groups", [
    (3, 2, 1),     # an RGB input, two outputs
    (1, 1, 1),
    (3, 5, 1),
    (8, 4, 4),     # grouped, below 4 channels per group
    (6, 6, 6),     # depthwise
    (4, 12, 4),    # depthwise multiplier 3
    (9, 6, 3),
])
def test_explicit_winograd_serves_any_channels_and_groups(algorithm, dtype, c, co, groups):
    # issue 21 item 2: "Winograd needs at least 4 output channels per group" is gone for an
    # explicit request; "auto" still declines where it does not pay
    seed = zlib.crc32(repr((algorithm, c, co, groups)).encode())
    x, w, b = _data(seed, (2, c, 11, 9), (co, c // groups, 3, 3), dtype)
    expected = ref_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                        padding=1, groups=groups)
    for threads in (1, 2):
        y = fastconv.conv2d(x, w, b, padding=1, groups=groups, algorithm=algorithm,
                            threads=threads)
        assert_close(y, expected, dtype, algorithm=algorithm)
    layer = fastconv.Conv2d(w, b, padding=1, groups=groups, algorithm=algorithm)
    assert layer.algorithm_for(x.shape).startswith("winograd_")
    assert_close(layer(x[1]), expected[1], dtype, algorithm=algorithm)  # unbatched
    assert fastconv.conv2d(x[:0], w, b, padding=1, groups=groups,
                           algorithm=algorithm).shape == (0, co, 11, 9)
    assert not fastconv.Conv2d(w, b, padding=1, groups=groups).algorithm_for(
        x.shape).startswith("winograd")


@pytest.mark.parametrize("kwargs, match", [
    (dict(w_shape=(8, 8, 5, 5)), "3x3 kernel"),
    (dict(stride=2), "stride 1"),
    (dict(dilation=2), "dilation 1"),
])
@pytest.mark.parametrize("algorithm", WINOGRAD)
def test_winograd_refuses_what_it_cannot_serve(kwargs, match, algorithm):
    kwargs = dict(kwargs)
    w_shape = kwargs.pop("w_shape", (8, 8, 3, 3))
    c = kwargs.pop("c", w_shape[1])
    x = np.ones((1, c, 12, 12), np.float32)
    with pytest.raises(ValueError, match=match) as info:
        fastconv.conv2d(x, np.ones(w_shape, np.float32), algorithm=algorithm, **kwargs)
    assert algorithm in str(info.value)
    with pytest.raises(ValueError, match=match):
        fastconv.Conv2d(np.ones(w_shape, np.float32), algorithm=algorithm, **kwargs)


@pytest.mark.parametrize("conv, w_shape", [(fastconv.conv1d, (8, 8, 3)),
                                           (fastconv.conv3d, (8, 8, 3, 3, 3))])
def test_winograd_is_2d_only(conv, w_shape):
    x = np.ones((1, 8) + (6,) * (len(w_shape) - 2), np.float32)
    with pytest.raises(ValueError, match="conv2d only"):
        conv(x, np.ones(w_shape, np.float32), algorithm="winograd")


@pytest.mark.parametrize("shape, c, auto, explicit", [
    ((1, 64, 56, 56), 64, "winograd_f4", "winograd_f4"),
    ((1, 256, 14, 14), 256, "winograd_f4", "winograd_f4"),   # 16 tiles of 4x4: enough
    ((1, 256, 10, 10), 256, "winograd_f2", "winograd_f2"),   # 9 tiles of 4x4: too few
    ((1, 512, 7, 7), 512, "winograd_f2", "winograd_f2"),
    ((8, 32, 8, 8), 32, "winograd_f4", "winograd_f4"),       # 8 x 2 x 2 = 32 tiles of 4x4
    ((1, 32, 16, 16), 32, "winograd_f4", "winograd_f4"),     # 16 tiles, 32 channels
    ((1, 32, 10, 10), 32, None, "winograd_f2"),              # F2 needs 64 channels in "auto"
    ((1, 16, 56, 56), 16, None, "winograd_f4"),              # direct wins at 16 channels
])
def test_auto_and_winograd_pick_tiles_within_the_accuracy_policy(shape, c, auto, explicit):
    w = np.zeros((c, c, 3, 3), np.float32)
    chosen = fastconv.Conv2d(w, padding=1).algorithm_for(shape)
    assert chosen == auto if auto else chosen in ("direct", "im2col")
    assert fastconv.Conv2d(w, padding=1, algorithm="winograd").algorithm_for(shape) == explicit


@pytest.mark.parametrize("w_shape, kwargs", [
    ((8, 8, 3, 3), {}),                  # fewer channels than WINOGRAD_MIN_CHANNELS
    ((64, 64, 3, 3), dict(stride=2)),
    ((64, 64, 1, 1), {}),
    ((64, 1, 3, 3), dict(groups=64)),    # depthwise
])
def test_auto_leaves_winograd_where_it_does_not_win(w_shape, kwargs):
    c_in = w_shape[1] * kwargs.get("groups", 1)
    layer = fastconv.Conv2d(np.zeros(w_shape, np.float32), padding=1, **kwargs)
    assert layer.algorithm_for((1, c_in, 32, 32)) in ("direct", "im2col")


def test_auto_never_picks_a_tile_above_the_float32_bound():
    from fastconv import _winograd_plan

    for size in (4, 7, 14, 16, 28, 56, 224):
        problem = _algorithms.Problem(1, 64, 64, 1, (size, size), (3, 3), (1, 1), (1, 1),
                                      ((1, 1), (1, 1)), (size, size))
        tile = _winograd_plan.ALGORITHM_TILE[_algorithms.choose("auto", problem)]
        assert _winograd_plan.ERROR_BOUND["float32"][tile] <= _winograd_plan.AUTO_FLOAT32_BOUND


@pytest.mark.parametrize("c, size, expected", [
    (256, 14, "winograd_f2"),   # 16 tiles of 4x4 do not pay back a per-call transform, 49 of 2x2 do
    (64, 56, "winograd_f4"),
    (512, 7, None),             # 16 tiles of 2x2: im2col
])
def test_functional_calls_need_tiles_that_pay_back_the_weight_transform(c, size, expected):
    problem = _algorithms.Problem(1, c, c, 1, (size, size), (3, 3), (1, 1), (1, 1),
                                  ((1, 1), (1, 1)), (size, size))
    chosen = _algorithms.choose("auto", problem, weights_prepared=False)
    assert chosen == expected if expected else not chosen.startswith("winograd")
