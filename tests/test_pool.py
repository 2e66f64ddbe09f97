"""Pooling against the float64 reference: every ISA, 1 and 2 threads, float32/float64/integers.

Indices and integer results must be exact; float values within ``reference.assert_close``.
"""

import math
import re

import numpy as np
import pytest
from reference import (
    assert_close,
    ref_adaptive_avg_pool,
    ref_adaptive_max_pool,
    ref_avg_pool,
    ref_global_avg_pool,
    ref_global_max_pool,
    ref_lp_pool,
    ref_max_pool,
    ref_max_unpool,
    ref_mixed_pool2d,
    ref_spatial_pyramid_pool2d,
)

import fastconv
from fastconv import pool

FLOATS = (np.float32, np.float64)
INTS = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64)

# (spatial shape, kernel, stride, padding, dilation, ceil_mode): widths past two AVX-512
# vectors so the vector loops, their tails and the border columns all run.
WINDOWS = [
    ((37,), 2, None, 0, 1, False),
    ((70,), 3, 2, 1, 1, True),
    ((41,), 4, 3, "same", 2, False),
    ((33,), 3, 1, "same_lower", 1, False),
    ((9, 40), 2, 2, 0, 1, False),
    ((11, 45), 3, 2, 1, 1, False),
    ((11, 45), 3, 2, 1, 1, True),
    ((10, 36), (2, 3), (1, 2), ((0, 1), (1, 2)), 1, True),
    ((8, 35), 3, (2, 3), "same", (1, 2), False),
    ((7, 34), 3, 1, "same", 1, False),
    ((12, 50), (3, 5), (3, 4), (1, 2), (2, 1), True),
    ((9, 39), 2, 2, "valid", 3, True),
    ((6, 7, 40), 2, 2, 0, 1, False),
    ((5, 9, 35), (3, 2, 3), (2, 1, 2), (1, 0, 1), 1, True),
    ((5, 8, 33), 2, (1, 2, 3), "same", (2, 1, 1), False),
    # pads beyond half the kernel (ONNX; PyTorch refuses them)
    ((9, 38), 3, 2, 2, 1, True),
    ((30,), 4, 3, 3, 1, True),
    # narrow rows (the flat kernel-2 path): odd sizes, H padding only, ceil overhang in W
    ((9, 14), 2, 2, 0, 1, False),
    ((7, 29), 2, 2, 0, 1, True),
    ((9, 40), 2, 2, ((1, 0), (0, 0)), 1, True),
    ((5, 7, 22), 2, 2, 0, 1, False),
    # every window the same 2x2 (input rows in pairs, back to back): a spare column, ceil_mode
    ((8, 15), 2, 2, 0, 1, False),
    ((10, 40), 2, 2, 0, 1, True),
]


def _ids(cases):
    return [f"{len(c[0])}d-k{c[1]}-s{c[2]}-p{c[3]}-d{c[4]}-{'ceil' if c[5] else 'floor'}"
            for c in cases]


def _fn(kind, spatial):
    return getattr(fastconv, f"{kind}_pool{spatial}d")


def _input(shape, dtype, seed=0, batch=(2, 3)):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=batch + shape, dtype=dtype,
                            endpoint=True)
    # distinct values: indices are then unambiguous
    return rng.permutation(math.prod(batch + shape)).reshape(batch + shape).astype(dtype) / 7.0


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", WINDOWS, ids=_ids(WINDOWS))
def test_max_pool_matches_reference(isa, threads, dtype, case):
    shape, k, s, p, d, ceil = case
    x = _input(shape, dtype)
    y, idx = _fn("max", len(shape))(x, k, s, p, d, ceil, return_indices=True, threads=threads)
    ref, ref_idx = ref_max_pool(x, k, s, p, d, ceil, return_indices=True)
    assert y.dtype == dtype and idx.dtype == np.int64
    assert_close(y, ref, dtype)
    np.testing.assert_array_equal(idx, ref_idx)
    # the values-only path (vectorised rows) must agree exactly with the indexed one
    np.testing.assert_array_equal(_fn("max", len(shape))(x, k, s, p, d, ceil, threads=threads), y)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", WINDOWS, ids=_ids(WINDOWS))
def test_avg_pool_matches_reference(isa, threads, dtype, case):
    shape, k, s, p, d, ceil = case
    x = _input(shape, dtype)
    for include in (True, False):
        y = _fn("avg", len(shape))(x, k, s, p, d, ceil, include, threads=threads)
        assert y.dtype == dtype
        assert_close(y, ref_avg_pool(x, k, s, p, d, ceil, include), dtype)
    y = _fn("avg", len(shape))(x, k, s, p, d, ceil, divisor_override=3, threads=threads)
    assert_close(y, ref_avg_pool(x, k, s, p, d, ceil, divisor_override=3), dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("shape", [(6, 10), (5, 14), (4, 3, 58)])
def test_many_small_planes_match_reference(isa, threads, kind, shape):
    # blocks of output rows that span planes, a partial last block, chunks split mid-plane
    x = _input(shape, np.float32, batch=(3, 37))
    fn = _fn(kind, len(shape))
    ref = (ref_max_pool if kind == "max" else ref_avg_pool)(x, 2)
    assert_close(fn(x, 2, threads=threads), ref, np.float32)
    assert_close(fn(x[:, :, ::-1], 2, threads=threads),
                 (ref_max_pool if kind == "max" else ref_avg_pool)(x[:, :, ::-1], 2), np.float32)


@pytest.mark.parametrize("dtype", (*FLOATS, np.int16))
@pytest.mark.parametrize("shape,k,s,p,d,ceil", [
    ((1,), 2, 1, 2, 3, False),       # every tap of every window falls outside the input
    ((1,), 2, 1, 2, 3, True),
    ((2,), 3, 2, 4, 2, True),
    ((1, 9), (2, 3), (1, 2), (2, 1), (3, 1), False),
])
def test_windows_without_real_elements_match_reference(isa, dtype, shape, k, s, p, d, ceil):
    # a dilated window can skip the whole input: max -inf (integers: the minimum) and index -1,
    # average 0 counting padding or NaN (0 / 0) without, Lp 0
    x = _input(shape, dtype)
    spatial = len(shape)
    y, idx = _fn("max", spatial)(x, k, s, p, d, ceil, return_indices=True)
    ref, ref_idx = ref_max_pool(x, k, s, p, d, ceil, return_indices=True)
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(_fn("max", spatial)(x, k, s, p, d, ceil), ref)
    if dtype in FLOATS:
        for include in (True, False):
            assert_close(_fn("avg", spatial)(x, k, s, p, d, ceil, include),
                         ref_avg_pool(x, k, s, p, d, ceil, include), dtype)
        assert_close(_fn("lp", spatial)(x, 2, k, s, p, d, ceil),
                     ref_lp_pool(x, 2, k, s, p, d, ceil), dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("norm", [1, 2, 3.5, math.inf])
@pytest.mark.parametrize("case", WINDOWS[4:9], ids=_ids(WINDOWS[4:9]))
def test_lp_pool_matches_reference(isa, threads, dtype, norm, case):
    shape, k, s, p, d, ceil = case
    x = _input(shape, dtype) - dtype(20)  # negative values: |x| matters
    y = _fn("lp", len(shape))(x, norm, k, s, p, d, ceil, threads=threads)
    assert_close(y, ref_lp_pool(x, norm, k, s, p, d, ceil), dtype)


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("case", WINDOWS[::3], ids=_ids(WINDOWS[::3]))
def test_max_pool_keeps_integer_dtypes_exactly(dtype, case):
    shape, k, s, p, d, ceil = case
    x = _input(shape, dtype)
    y, idx = _fn("max", len(shape))(x, k, s, p, d, ceil, return_indices=True, threads=2)
    ref, ref_idx = ref_max_pool(x, k, s, p, d, ceil, return_indices=True)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(_fn("max", len(shape))(x, k, s, p, d, ceil), ref)


@pytest.mark.parametrize("dtype", FLOATS)
def test_ties_go_to_the_first_element_in_window_order(isa, dtype):
    x = np.random.default_rng(1).integers(0, 3, size=(2, 2, 9, 37)).astype(dtype)
    for args in ((2, 2, 0), (3, 2, 1), (3, 1, 1), ((3, 2), (2, 1), (1, 0))):
        y, idx = fastconv.max_pool2d(x, *args, return_indices=True)
        ref, ref_idx = ref_max_pool(x, *args, return_indices=True)
        np.testing.assert_array_equal(y, ref)
        np.testing.assert_array_equal(idx, ref_idx)
    for size in ((4, 7), (3, 37), (9, 37)):  # overlapping bins and equal ones
        y, idx = fastconv.adaptive_max_pool2d(x, size, return_indices=True)
        ref, ref_idx = ref_adaptive_max_pool(x, size, return_indices=True)
        np.testing.assert_array_equal(y, ref)
        np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("dtype", FLOATS)
def test_nan_wins_and_its_index_is_reported(isa, dtype):
    x = _input((8, 40), dtype)
    x[0, 0, 1, 3] = np.nan
    x[1, 2, 5, 20:23] = np.nan
    x[1, 1, 0, 0] = np.inf
    for args in ((2, 2, 0), (3, 2, 1), (3, 1, 1)):
        y, idx = fastconv.max_pool2d(x, *args, return_indices=True)
        ref, ref_idx = ref_max_pool(x, *args, return_indices=True)
        assert_close(y, ref, dtype)
        np.testing.assert_array_equal(idx, ref_idx)
        assert_close(fastconv.max_pool2d(x, *args), ref, dtype)
        assert_close(fastconv.avg_pool2d(x, *args), ref_avg_pool(x, *args), dtype)
    for size in ((3, 7), (8, 40)):
        y, idx = fastconv.adaptive_max_pool2d(x, size, return_indices=True)
        ref, ref_idx = ref_adaptive_max_pool(x, size, return_indices=True)
        assert_close(y, ref, dtype)
        np.testing.assert_array_equal(idx, ref_idx)
        assert_close(fastconv.adaptive_max_pool2d(x, size), ref, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,k,s,p,ceil", [
    ((3, 70), 3, 2, 1, False), ((3, 71), 3, 2, 1, True), ((4, 68), 3, 2, 0, False),
    ((3, 66), 2, 2, 0, False), ((3, 67), 2, 2, 0, True), ((4, 3, 40), 2, 2, 0, False),
    ((5, 14), 2, 2, 0, False),
])
def test_a_nan_anywhere_wins_its_windows(isa, dtype, shape, k, s, p, ceil):
    # The stride-2 kernels take the plain max and redo a block whose inputs held a NaN: a NaN
    # at each position in turn (every lane of every vector, every window row, the columns a
    # block shares with the next) must reach exactly the windows that hold it.
    fn = _fn("max", len(shape))
    base = _input(shape, dtype, batch=(1, 1))
    covered = 0
    for pos in range(math.prod(shape)):
        x = base.copy()
        x.reshape(-1)[pos] = np.nan
        ref = ref_max_pool(x, k, s, p, 1, ceil)
        covered += bool(np.isnan(ref).any())  # (a row or column no window reaches: none)
        assert_close(fn(x, k, s, p, ceil_mode=ceil), ref, dtype)
    assert covered > math.prod(shape) // 2


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,size", [
    ((10,), 3), ((37,), 37), ((14, 14), 7), ((13, 17), (5, 4)), ((9, 40), (None, 7)),
    ((6, 7, 9), (2, 3, 4)), ((4, 6, 8), (4, None, 2)),
])
def test_adaptive_pools_match_reference(isa, threads, dtype, shape, size):
    x = _input(shape, dtype)
    spatial = len(shape)
    avg = getattr(fastconv, f"adaptive_avg_pool{spatial}d")(x, size, threads=threads)
    assert_close(avg, ref_adaptive_avg_pool(x, size), dtype)
    mx, idx = getattr(fastconv, f"adaptive_max_pool{spatial}d")(x, size, True, threads=threads)
    ref, ref_idx = ref_adaptive_max_pool(x, size, return_indices=True)
    assert_close(mx, ref, dtype)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(
        getattr(fastconv, f"adaptive_max_pool{spatial}d")(x, size, threads=threads), mx)


def test_adaptive_max_keeps_integers():
    x = _input((13, 17), np.int16)
    y = fastconv.adaptive_max_pool2d(x, (5, 4))
    assert y.dtype == np.int16
    np.testing.assert_array_equal(y, ref_adaptive_max_pool(x, (5, 4)))
    np.testing.assert_array_equal(fastconv.adaptive_max_pool2d(x, (13, 17)), x)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", (*FLOATS, np.int32, np.uint8))
@pytest.mark.parametrize("shape", [(7, 7), (49,), (3, 5, 37), (1, 1), (64, 70)])
def test_global_pools_match_reference(isa, threads, dtype, shape):
    x = _input(shape, dtype, batch=(3, 5))
    gmax = fastconv.global_max_pool(x, threads=threads)
    assert gmax.dtype == dtype and gmax.shape == (3, 5) + (1,) * len(shape)
    np.testing.assert_array_equal(gmax, ref_global_max_pool(x))
    gavg = fastconv.global_avg_pool(x, threads=threads)
    work = np.float32 if dtype in (np.float32, np.uint8) else np.float64
    assert gavg.dtype == work
    assert_close(gavg, ref_global_avg_pool(x), work)


def test_global_max_propagates_nan(isa):
    x = _input((5, 40), np.float32, batch=(2, 2))
    x[1, 0, 3, 33] = np.nan
    y = fastconv.global_max_pool(x)
    assert np.isnan(y[1, 0, 0, 0]) and not np.isnan(y).sum() - 1


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", (*FLOATS, np.int32))
@pytest.mark.parametrize("shape,k,s,p", [
    ((40,), 2, None, 0), ((11, 45), 3, 2, 1), ((10, 36), 2, 2, 0), ((5, 9, 34), 2, 2, 0),
    ((5, 9, 34), 3, 2, 1),
])
def test_max_unpool_round_trip_puts_every_maximum_back(isa, threads, dtype, shape, k, s, p):
    spatial = len(shape)
    x = _input(shape, dtype)
    y, idx = getattr(fastconv, f"max_pool{spatial}d")(x, k, s, p, return_indices=True)
    up = getattr(fastconv, f"max_unpool{spatial}d")(y, idx, k, s, p, output_size=shape,
                                                  threads=threads)
    assert up.shape == x.shape and up.dtype == x.dtype
    np.testing.assert_array_equal(up, ref_max_unpool(y, idx, k, s, p, output_size=shape))
    flat_x = x.reshape(x.shape[:2] + (-1,))
    flat_up = up.reshape(up.shape[:2] + (-1,))
    flat_idx = idx.reshape(idx.shape[:2] + (-1,))
    # every maximum is back where it came from, and nothing else is non-zero
    np.testing.assert_array_equal(np.take_along_axis(flat_up, flat_idx, 2),
                                  np.take_along_axis(flat_x, flat_idx, 2))
    mask = np.zeros(flat_up.shape, bool)
    np.put_along_axis(mask, flat_idx, True, 2)
    assert not flat_up[~mask].any()


def test_max_unpool_default_size_and_errors():
    x = _input((8, 10), np.float64)
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(fastconv.max_unpool2d(y, idx, 2),
                                  ref_max_unpool(y, idx, 2))
    with pytest.raises(ValueError, match="indices"):
        fastconv.max_unpool2d(y, idx + 1000, 2)
    with pytest.raises(ValueError, match="indices"):
        fastconv.max_unpool2d(y, idx - 1000, 2)
    with pytest.raises(ValueError, match="shape"):
        fastconv.max_unpool2d(y, idx[:, :, :1], 2)
    with pytest.raises(TypeError, match="indices"):
        fastconv.max_unpool2d(y, idx.astype(np.float64), 2)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("levels", [(1, 2, 4), (3,), (1, 5)])
def test_spatial_pyramid_pool_matches_reference(isa, dtype, mode, levels):
    x = _input((13, 19), dtype)
    y = fastconv.spatial_pyramid_pool2d(x, levels, mode)
    assert y.shape == (2, 3 * sum(v * v for v in levels))
    assert_close(y, ref_spatial_pyramid_pool2d(x, levels, mode), dtype)
    assert_close(fastconv.spatial_pyramid_pool2d(x[0], levels, mode), y[0], dtype)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_spatial_pyramid_pool_empty_batch_and_channels(mode):
    # issue 21 item 3: N = 0 raised "cannot reshape array of size 0"
    y = fastconv.spatial_pyramid_pool2d(np.empty((0, 3, 7, 5), np.float32), (1, 2), mode)
    assert y.shape == (0, 15) and y.dtype == np.float32
    assert fastconv.spatial_pyramid_pool2d(np.empty((2, 0, 7, 5)), (1, 2), mode).shape == (2, 0)
    out = np.empty((0, 15))
    assert fastconv.spatial_pyramid_pool2d(np.empty((0, 3, 7, 5)), (1, 2), mode, out=out) is out


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("k,s,p", [(2, None, 0), (3, 2, 1), ((3, 2), 1, "same")])
def test_mixed_pool_matches_reference(isa, dtype, alpha, k, s, p):
    x = _input((11, 37), dtype) - dtype(30)
    y = fastconv.mixed_pool2d(x, k, s, p, alpha)
    assert_close(y, ref_mixed_pool2d(x, k, s, p, alpha), dtype)


# ---- issue 21 item 8: mixed pooling as the paper defines it, and more layer objects ---------
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 2, False), (3, 2, 1, 1, True),
                                          ((3, 2), 2, ((1, 0), (0, 1)), (1, 2), True)])
@pytest.mark.parametrize("mode", ["blend", "random"])
def test_mixed_pool_dilation_ceil_mode_and_random(dtype, k, s, p, d, ceil, mode):
    x = _input((11, 14), dtype) - dtype(30)
    seed = 3 if mode == "random" else None
    y = fastconv.mixed_pool2d(x, k, s, p, 0.3, mode=mode, dilation=d, ceil_mode=ceil,
                              seed=seed, threads=2)
    expected = ref_mixed_pool2d(x, k, s, p, 0.3, d, ceil, mode, seed)
    assert y.shape == expected.shape
    assert_close(y, expected, dtype)
    if mode == "random":
        mx = fastconv.max_pool2d(x, k, s, p, d, ceil)
        avg = fastconv.avg_pool2d(x, k, s, p, d, ceil, count_include_pad=False)
        took_max, took_avg = y == mx, y == avg
        assert np.all(took_max | took_avg)  # each region is one or the other, never a blend
        assert took_max.any() and took_avg.any()


def test_mixed_pool_random_generator_rules():
    x = _input((8, 8), np.float32)
    mx, avg = fastconv.max_pool2d(x, 2), fastconv.avg_pool2d(x, 2)
    # alpha is the probability of the max
    np.testing.assert_array_equal(fastconv.mixed_pool2d(x, 2, alpha=1.0, mode="random"), mx)
    np.testing.assert_array_equal(fastconv.mixed_pool2d(x, 2, alpha=0.0, mode="random"), avg)
    # seed= and rng= draw the same; a generator is advanced, so the next call differs
    by_seed = fastconv.mixed_pool2d(x, 2, mode="random", seed=11)
    rng = np.random.default_rng(11)
    np.testing.assert_array_equal(fastconv.mixed_pool2d(x, 2, mode="random", rng=rng), by_seed)
    assert not np.array_equal(fastconv.mixed_pool2d(x, 2, mode="random", rng=rng), by_seed)
    # unbatched: the same draw as a batch of one; out= is filled
    one = fastconv.mixed_pool2d(x[:1], 2, mode="random", seed=5)
    out = np.empty(one.shape[1:], np.float32)
    assert fastconv.mixed_pool2d(x[0], 2, mode="random", seed=5, out=out) is out
    np.testing.assert_array_equal(out, one[0])
    assert fastconv.mixed_pool2d(x[:0], 2, mode="random", seed=1).shape == (0, 3, 4, 4)


@pytest.mark.parametrize("kwargs,exc,pattern", [
    (dict(mode="max"), ValueError, r"mode.*'max'"),
    (dict(seed=1), ValueError, r"seed.*mode='random'"),
    (dict(mode="random", seed=1, rng=np.random.default_rng(1)), ValueError, r"seed or rng"),
    (dict(mode="random", rng=np.random.RandomState(1)), TypeError, r"rng must be a numpy"),
    (dict(mode="random", seed=1.5), TypeError, r"seed must be an int.*1\.5"),
    (dict(mode="random", seed=-1), ValueError, r"seed must be >= 0, got -1"),
    (dict(dilation=0), ValueError, r"dilation"),
    (dict(ceil_mode=1), TypeError, r"ceil_mode"),
])
def test_mixed_pool_bad_arguments(kwargs, exc, pattern):
    x = _input((8, 8), np.float32)
    with pytest.raises(exc, match=pattern):
        fastconv.mixed_pool2d(x, 2, **kwargs)
    with pytest.raises(exc, match=pattern):
        fastconv.MixedPool2d(2, **kwargs)


def test_new_pool_layers_match_their_functions():
    x = _input((9, 13), np.float64)
    for layer, function in [
            (fastconv.MixedPool2d(3, 2, 1, 0.4, dilation=2, ceil_mode=True),
             lambda v, **kw: fastconv.mixed_pool2d(v, 3, 2, 1, 0.4, dilation=2, ceil_mode=True,
                                                   **kw)),
            (fastconv.SpatialPyramidPool2d((1, 3), "avg"),
             lambda v, **kw: fastconv.spatial_pyramid_pool2d(v, (1, 3), "avg", **kw)),
            (fastconv.GlobalAvgPool(), fastconv.global_avg_pool),
            (fastconv.GlobalMaxPool(), fastconv.global_max_pool)]:
        expected = function(x)
        np.testing.assert_array_equal(layer(x, threads=2), expected)
        out = np.empty_like(expected)
        assert layer(x, out=out) is out
        assert repr(layer).startswith(type(layer).__name__ + "(")
    assert fastconv.GlobalMaxPool(spatial_dims=2)(x[0]).shape == (3, 1, 1)
    # a random layer keeps one generator: calls differ, the sequence is reproducible
    first, second = fastconv.MixedPool2d(2, mode="random", seed=4), None
    a, b = first(x), first(x)
    assert not np.array_equal(a, b)
    second = fastconv.MixedPool2d(2, mode="random", seed=4)
    np.testing.assert_array_equal(second(x), a)


@pytest.mark.parametrize("make,pattern", [
    (lambda: fastconv.SpatialPyramidPool2d(()), r"levels"),
    (lambda: fastconv.SpatialPyramidPool2d((1, 0)), r"levels\[1\]"),
    (lambda: fastconv.SpatialPyramidPool2d(mode="min"), r"mode.*'min'"),
    (lambda: fastconv.GlobalAvgPool(spatial_dims=4), r"spatial_dims.*4"),
    (lambda: fastconv.MixedPool2d(2, alpha=2), r"alpha.*2"),
    (lambda: fastconv.MixedPool2d(2, padding=2), r"padding"),
])
def test_new_pool_layers_validate_at_construction(make, pattern):
    with pytest.raises((ValueError, TypeError), match=pattern):
        make()


# ---- conventions shared by every operator ----------------------------------------------
CALLS = {
    "max_pool2d": lambda x, **kw: fastconv.max_pool2d(x, 3, 2, 1, **kw),
    "avg_pool2d": lambda x, **kw: fastconv.avg_pool2d(x, 3, 2, 1, **kw),
    "lp_pool2d": lambda x, **kw: fastconv.lp_pool2d(x, 2, 3, 2, 1, **kw),
    "adaptive_avg_pool2d": lambda x, **kw: fastconv.adaptive_avg_pool2d(x, (3, 5), **kw),
    "adaptive_max_pool2d": lambda x, **kw: fastconv.adaptive_max_pool2d(x, (3, 5), **kw),
    "mixed_pool2d": lambda x, **kw: fastconv.mixed_pool2d(x, 2, **kw),
    "spatial_pyramid_pool2d": lambda x, **kw: fastconv.spatial_pyramid_pool2d(x, **kw),
}


@pytest.mark.parametrize("name", CALLS)
def test_unbatched_out_noncontiguous_and_readonly_inputs(name):
    call = CALLS[name]
    base = _input((12, 40), np.float64, batch=(2, 6))
    x = base[:, ::2, :, ::-2]  # non-contiguous and negatively strided
    assert not x.flags.c_contiguous
    expected = call(np.ascontiguousarray(x))
    np.testing.assert_array_equal(call(x), expected)
    frozen = np.ascontiguousarray(x)
    frozen.flags.writeable = False
    np.testing.assert_array_equal(call(frozen), expected)
    np.testing.assert_array_equal(call(x[1]), expected[1])
    out = np.empty_like(expected)
    assert call(x, out=out) is out
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(call(x, threads=1), call(x, threads=2))
    with pytest.raises(ValueError, match="out"):
        call(x, out=np.empty(expected.shape[:-1] + (expected.shape[-1] + 1,)))
    with pytest.raises(ValueError, match="out"):
        call(x, out=expected.astype(np.float32))


@pytest.mark.parametrize("name", CALLS)
def test_dtype_promotion(name):
    call = CALLS[name]
    x = _input((9, 20), np.float64)
    keeps_int = name in ("max_pool2d", "adaptive_max_pool2d")
    assert call(x.astype(np.float16)).dtype == np.float32
    assert call(x.astype(np.int8)).dtype == (np.int8 if keeps_int else np.float32)
    assert call(x.astype(np.int32)).dtype == (np.int32 if keeps_int else np.float64)
    with pytest.raises(TypeError):
        call(x.astype(np.complex64))


RANK_CALLS = {
    "max_pool1d": (1, lambda x, **kw: fastconv.max_pool1d(x, 3, 2, 1, ceil_mode=True, **kw)),
    "max_pool3d": (3, lambda x, **kw: fastconv.max_pool3d(x, 2, **kw)),
    "max_pool3d_indices": (3, lambda x, **kw: fastconv.max_pool3d(x, 2, return_indices=True,
                                                                  **kw)),
    "avg_pool1d": (1, lambda x, **kw: fastconv.avg_pool1d(x, 4, 3, 3, 2, **kw)),
    "avg_pool3d": (3, lambda x, **kw: fastconv.avg_pool3d(x, 3, 2, 1, count_include_pad=False,
                                                          **kw)),
    "lp_pool1d": (1, lambda x, **kw: fastconv.lp_pool1d(x, 3, 3, 2, **kw)),
    "lp_pool3d": (3, lambda x, **kw: fastconv.lp_pool3d(x, math.inf, 2, **kw)),
    "adaptive_avg_pool1d": (1, lambda x, **kw: fastconv.adaptive_avg_pool1d(x, 6, **kw)),
    "adaptive_max_pool3d": (3, lambda x, **kw: fastconv.adaptive_max_pool3d(x, (2, None, 3),
                                                                            True, **kw)),
    "max_unpool1d": (1, lambda x, **kw: fastconv.max_unpool1d(
        x, np.broadcast_to(2 * np.arange(x.shape[-1]) + 1, x.shape), 2, **kw)),
    "max_unpool3d": (3, lambda x, **kw: fastconv.max_unpool3d(
        x, np.broadcast_to(np.arange(math.prod(x.shape[-3:])).reshape(x.shape[-3:]), x.shape),
        2, **kw)),
}


@pytest.mark.parametrize("name", RANK_CALLS)
def test_other_ranks_unbatched_out_and_noncontiguous(name):
    spatial, call = RANK_CALLS[name]
    x = _input({1: (40,), 3: (4, 6, 40)}[spatial], np.float64, batch=(2, 6))[:, ::2, ..., ::-2]
    assert not x.flags.c_contiguous
    expected = call(np.ascontiguousarray(x))
    got = call(x)
    for g, e in zip(got if isinstance(got, tuple) else (got,),
                    expected if isinstance(expected, tuple) else (expected,)):
        np.testing.assert_array_equal(g, e)
    one = call(x[1])
    for g, e in zip(one if isinstance(one, tuple) else (one,),
                    expected if isinstance(expected, tuple) else (expected,)):
        np.testing.assert_array_equal(g, e[1])
    values = expected[0] if isinstance(expected, tuple) else expected
    out = np.empty_like(values)
    result = call(x, out=out, threads=2)
    assert (result[0] if isinstance(result, tuple) else result) is out
    np.testing.assert_array_equal(out, values)
    with pytest.raises(ValueError, match="out"):
        call(x, out=np.empty(values.shape[:-1] + (values.shape[-1] + 1,)))


@pytest.mark.parametrize("name", ["global_avg_pool", "global_max_pool"])
def test_global_pools_out_noncontiguous_and_empty_batch(name):
    fn = getattr(fastconv, name)
    x = _input((6, 9), np.float32, batch=(2, 8))[:, ::2, ::-1]
    expected = fn(np.ascontiguousarray(x))
    np.testing.assert_array_equal(fn(x), expected)
    out = np.empty_like(expected)
    assert fn(x, out=out, threads=2) is out
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="out"):
        fn(x, out=np.empty((2, 4, 1), np.float32))
    assert fn(np.empty((0, 3, 4, 4), np.float32)).shape == (0, 3, 1, 1)


@pytest.mark.parametrize("name", ["global_avg_pool", "global_max_pool"])
@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_global_pools_unbatched_rule(name, spatial):
    # issue 21 item 5: without spatial_dims the batch dim is required (spatial rank ndim - 2);
    # with it, the unbatched rule of the 1-D/2-D/3-D operators
    fn = getattr(fastconv, name)
    ref = {"global_avg_pool": ref_global_avg_pool, "global_max_pool": ref_global_max_pool}[name]
    x = _input((5,) * spatial, np.float64)  # (2, 3, *spatial)
    batched = fn(x, spatial_dims=spatial)
    assert batched.shape == (2, 3) + (1,) * spatial
    np.testing.assert_allclose(batched, ref(x), rtol=1e-12)
    single = fn(x[1], spatial_dims=spatial)
    assert single.shape == (3,) + (1,) * spatial
    np.testing.assert_allclose(single, ref(x[1:2])[0], rtol=1e-12)
    out = np.empty((3,) + (1,) * spatial)
    assert fn(x[1], spatial_dims=spatial, out=out) is out
    np.testing.assert_array_equal(out, single)
    # without spatial_dims, a 3-D array is a batch of 1-D signals (documented), never unbatched
    if spatial > 1:
        assert fn(x[1]).shape == (3, 5) + (1,) * (spatial - 1)
    with pytest.raises(ValueError, match=r"x must have .*got shape \(5,\)"):
        fn(np.ones(5), spatial_dims=spatial)
    with pytest.raises(ValueError, match=r"x must have shape \(N, C, \*spatial\).*spatial_dims"):
        fn(np.ones((3, 5)))


@pytest.mark.parametrize("value,exc", [(0, ValueError), (4, ValueError), (2.0, TypeError),
                                       (True, TypeError)])
def test_global_pools_bad_spatial_dims(value, exc):
    with pytest.raises(exc, match=r"spatial_dims.*" + re.escape(repr(value))):
        fastconv.global_avg_pool(np.ones((1, 2, 3)), spatial_dims=value)


def test_threads_keyword_is_checked_and_minus_one_means_every_cpu():
    x = _input((8, 40), np.float32)
    np.testing.assert_array_equal(fastconv.max_pool2d(x, 2, threads=-1), fastconv.max_pool2d(x, 2))
    with pytest.raises(ValueError, match="threads"):
        fastconv.avg_pool2d(x, 2, threads=0)
    with pytest.raises(TypeError, match="threads"):
        fastconv.global_avg_pool(x, threads=1.5)


def test_concurrent_callers_and_a_forked_child_get_right_answers():
    # the thread team serves one call at a time; a concurrent caller runs alone, and a child
    # process made by fork() (no worker threads) starts its own team
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor
    x = _input((64, 70), np.float32, batch=(4, 16))
    expected = ref_max_pool(x, 3, 2, 1)
    # more threads than CPUs, then fewer again: workers started for the wider call stay out
    # of the narrower one (each participant has its own scratch)
    for threads in (5, 2, 3, 1, 2):
        assert_close(fastconv.max_pool2d(x, 3, 2, 1, threads=threads), expected, np.float32)
        assert_close(fastconv.avg_pool2d(x, 3, 2, 1, threads=threads), ref_avg_pool(x, 3, 2, 1),
                     np.float32)
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda _: fastconv.max_pool2d(x, 3, 2, 1, threads=2), range(16)))
    for y in results:
        assert_close(y, expected, np.float32)
    if "fork" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as child:
            y = child.apply_async(fastconv.max_pool2d, (x, 3, 2, 1), {"threads": 2}).get(60)
        assert_close(y, expected, np.float32)


def test_adaptive_bin_table_is_the_shapes_one():
    from fastconv.pool import _bin_table
    from fastconv.shapes import adaptive_pool_bins
    for n in (1, 5, 7, 14, 13, 100):
        for o in (1, 2, 3, 7, 9, 40):
            table = _bin_table((n,), (o,))[4:]  # past the two size-1 leading dims
            assert [tuple(p) for p in table.reshape(-1, 2)] == adaptive_pool_bins(n, o)


def test_huge_or_malformed_sizes_fail_fast_and_name_the_argument():
    x = np.ones((1, 4, 8, 8), np.float32)
    with pytest.raises(TypeError, match="output_size"):
        fastconv.adaptive_avg_pool2d(x, "2")
    with pytest.raises(ValueError, match="output_size"):
        fastconv.adaptive_avg_pool2d(x, 2**40)
    with pytest.raises(ValueError, match="output"):
        fastconv.adaptive_max_pool2d(x, 2**31 - 1)
    with pytest.raises(ValueError, match="levels"):
        fastconv.spatial_pyramid_pool2d(x, levels=(2**31,))
    y, idx = fastconv.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError, match="output_size"):
        fastconv.max_unpool2d(y, idx, 2, output_size=(1, 1))  # PyTorch: within a stride
    assert fastconv.max_unpool2d(y, idx, 2, output_size=(9, 9)).shape == (1, 4, 9, 9)
    # windows far larger than the input in D / H: only the taps inside it are visited
    z = fastconv.avg_pool2d(x, (2**31 - 1, 3), stride=1, padding=(2**30, 1))
    assert z.shape == (1, 4, 10, 8)
    np.testing.assert_allclose(z[0, 0, 0, 1], 8 * 3 / ((2**31 - 1) * 3), rtol=1e-6)
    # ... and in W (output by output over the real taps)
    z = fastconv.avg_pool2d(x, 2**31 - 1, stride=1, padding=2**30, count_include_pad=False)
    assert z.shape == (1, 4, 10, 10)
    np.testing.assert_array_equal(z, 1.0)
    for norm in (1, math.inf):
        z = fastconv.lp_pool2d(x, norm, (3, 2**31 - 1), 1, (1, 2**30))
        # every W window covers the whole row
        assert_close(z, ref_lp_pool(x, norm, (3, 8), 1, (1, 0)).repeat(10, -1), np.float32)
    z, idx = fastconv.max_pool1d(np.arange(8.0)[None, None], 2**31 - 1, 1, 2**30,
                                 return_indices=True)
    assert z.shape == (1, 1, 10) and (z == 7).all() and (idx == 7).all()


def test_big_endian_and_empty_batch():
    x = _input((8, 20), np.float64)
    y = fastconv.max_pool2d(x.astype(">i4"), 2)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, ref_max_pool(x.astype(np.int32), 2))
    assert fastconv.avg_pool2d(np.empty((0, 3, 8, 8), np.float32), 2).shape == (0, 3, 4, 4)
    assert fastconv.max_pool2d(np.empty((0, 3, 8, 8)), 2, return_indices=True)[1].shape == (
        0, 3, 4, 4)


def test_bad_arguments_name_themselves():
    x = np.zeros((1, 2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="padding"):
        fastconv.max_pool2d(x, 2, padding=2)  # pad must be < dilated extent
    with pytest.raises(ValueError, match="padding"):
        fastconv.avg_pool2d(x, 2, padding=-1)
    with pytest.raises(ValueError, match="padding"):
        fastconv.max_pool2d(x, 3, padding="full")
    with pytest.raises(ValueError, match="kernel_size"):
        fastconv.max_pool2d(x, 0)
    with pytest.raises(ValueError, match="stride"):
        fastconv.max_pool2d(x, 2, stride=(1, 0))
    with pytest.raises(TypeError, match="ceil_mode"):
        fastconv.max_pool2d(x, 2, ceil_mode="yes")
    with pytest.raises(ValueError, match="norm_type"):
        fastconv.lp_pool2d(x, 0, 2)
    with pytest.raises(TypeError, match="norm_type"):
        fastconv.lp_pool2d(x, "2", 2)
    with pytest.raises(ValueError, match="divisor_override"):
        fastconv.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="alpha"):
        fastconv.mixed_pool2d(x, 2, alpha=1.5)
    with pytest.raises(ValueError, match="mode"):
        fastconv.spatial_pyramid_pool2d(x, mode="min")
    with pytest.raises(ValueError, match="output_size"):
        fastconv.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="x must have"):
        fastconv.max_pool2d(np.zeros((8, 8)), 2)
    with pytest.raises(ValueError, match="x must have"):
        fastconv.global_avg_pool(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="output size"):
        fastconv.max_pool2d(x, 9)


# ---- layer objects ----------------------------------------------------------------------
@pytest.mark.parametrize("spatial", [1, 2, 3])
def test_layers_match_functions(spatial):
    shape = (6, 7, 12)[-spatial:]
    x = _input(shape, np.float32)
    k = 3
    pairs = [
        (pool.__dict__[f"MaxPool{spatial}d"](k, 2, 1, ceil_mode=True),
         lambda v: _fn("max", spatial)(v, k, 2, 1, ceil_mode=True)),
        (pool.__dict__[f"AvgPool{spatial}d"](k, 2, 1, count_include_pad=False),
         lambda v: _fn("avg", spatial)(v, k, 2, 1, count_include_pad=False)),
        (pool.__dict__[f"LpPool{spatial}d"](2, k, 1),
         lambda v: _fn("lp", spatial)(v, 2, k, 1)),
        (pool.__dict__[f"AdaptiveAvgPool{spatial}d"](2),
         lambda v: getattr(fastconv, f"adaptive_avg_pool{spatial}d")(v, 2)),
        (pool.__dict__[f"AdaptiveMaxPool{spatial}d"](2, return_indices=True),
         lambda v: getattr(fastconv, f"adaptive_max_pool{spatial}d")(v, 2, True)),
    ]
    for layer, function in pairs:
        got, want = layer(x, threads=1), function(x)
        if isinstance(want, tuple):
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_array_equal(got, want)
            out = np.empty_like(want)
            assert layer(x, out=out) is out
    assert "MaxPool" in repr(pairs[0][0]) and pairs[0][0].kernel_size == k


def test_layers_validate_at_construction():
    with pytest.raises(ValueError, match="kernel_size"):
        fastconv.MaxPool2d(0)
    with pytest.raises(ValueError, match="padding"):
        fastconv.AvgPool2d(2, padding=5)
    with pytest.raises(ValueError, match="norm_type"):
        fastconv.LpPool1d(-1, 2)
    with pytest.raises(ValueError, match="output_size"):
        fastconv.AdaptiveMaxPool2d((1, 2, 3))


# ---- random windows (hypothesis) ----------------------------------------------------------
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies


@st.composite
def _windows(draw):
    spatial = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 4)) for _ in range(spatial))
    s = tuple(draw(st.integers(1, 3)) for _ in range(spatial))
    d = tuple(draw(st.integers(1, 2)) for _ in range(spatial))
    pads = tuple((draw(st.integers(0, (kk - 1) * dd)), draw(st.integers(0, (kk - 1) * dd)))
                 for kk, dd in zip(k, d))
    size = tuple(draw(st.integers((kk - 1) * dd + 1, (kk - 1) * dd + 1 + (8 if i < spatial - 1
                                                                           else 40)))
                 for i, (kk, dd) in enumerate(zip(k, d)))
    return size, k, s, pads, d, draw(st.booleans())


@hypothesis.given(_windows(), st.sampled_from(FLOATS), st.integers(0, 2 ** 16))
def test_random_windows_match_reference(case, dtype, seed):
    shape, k, s, p, d, ceil = case
    x = _input(shape, dtype, seed=seed, batch=(1, 2))
    y, idx = _fn("max", len(shape))(x, k, s, p, d, ceil, return_indices=True)
    ref, ref_idx = ref_max_pool(x, k, s, p, d, ceil, return_indices=True)
    assert_close(y, ref, dtype)
    np.testing.assert_array_equal(idx, ref_idx)
    assert_close(_fn("max", len(shape))(x, k, s, p, d, ceil), ref, dtype)
    for include in (True, False):
        assert_close(_fn("avg", len(shape))(x, k, s, p, d, ceil, include),
                     ref_avg_pool(x, k, s, p, d, ceil, include), dtype)
    assert_close(_fn("lp", len(shape))(x, 2, k, s, p, d, ceil),
                 ref_lp_pool(x, 2, k, s, p, d, ceil), dtype)
