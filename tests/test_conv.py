"""conv1d/conv2d/conv3d and Conv1d/2d/3d against the float64 reference (tests/reference.py).

The sweep is a hand-picked covering set (every padding form and mode, stride, dilation, groups
and depthwise multipliers, kernels larger than the input, odd sizes, channel counts that are
not SIMD multiples, batch 1 / >1 / unbatched) run under every algorithm that serves it and both
dtypes; ISA and thread agnosticism run on problems big enough to really use two threads.
"""

import numpy as np
import pytest
from reference import assert_close, ref_conv

import fastconv
from fastconv import _threads
from fastconv import conv as conv_module


@pytest.fixture(autouse=True)
def _threads_as_asked(monkeypatch):
    """Every call runs on the threads it asks for: small problems would otherwise stay on one
    thread (fastconv._threads.for_work) and the multi-threaded paths would go untested; the
    functional calls' plan cache must not serve plans made without this."""
    monkeypatch.setattr(_threads, "for_work", lambda allowed, *work: allowed)
    monkeypatch.setattr(conv_module, "_FUNCTION_PLANS", {})

ALGORITHMS = ("direct", "im2col", "auto")
DTYPES = (np.float32, np.float64)


def _case(ndim, batch, c_in, c_out, size, kernel, groups=1, bias=True, **kw):
    return dict(ndim=ndim, batch=batch, c_in=c_in, c_out=c_out, size=size, kernel=kernel,
                groups=groups, bias=bias, kw=kw)


# (id, case): one feature or a pair of features per case.
CASES = {
    "2d.basic": _case(2, 2, 3, 5, (7, 9), (3, 3)),
    "2d.s2.p1": _case(2, 1, 5, 7, (11, 10), (3, 3), stride=2, padding=1),
    "2d.stem": _case(2, 1, 3, 10, (17, 19), (7, 7), stride=2, padding=3),
    "2d.same.s3": _case(2, 2, 4, 6, (10, 13), (3, 4), stride=3, padding="same"),
    "2d.same_lower.d2": _case(2, 1, 4, 4, (9, 8), (3, 2), dilation=2, padding="same_lower"),
    "2d.full": _case(2, 1, 2, 3, (5, 6), (3, 3), padding="full", bias=False),
    "2d.valid.rect": _case(2, 3, 6, 9, (8, 12), (2, 5), padding="valid", stride=(2, 1)),
    "2d.pairs": _case(2, 2, 5, 4, (7, 8), (3, 3), padding=((0, 2), (3, 1))),
    "2d.per_dim": _case(2, 1, 3, 3, (6, 9), (3, 5), padding=(1, 2), dilation=(1, 2)),
    "2d.kernel_gt_input": _case(2, 1, 3, 4, (3, 2), (5, 5), padding=2),
    # 117 taps x 2-wide output rows: more (tap, run) pairs per GEMM panel than the im2col
    # callback tabulates, so it computes them per k
    "2d.big_kernel_narrow": _case(2, 1, 2, 3, (16, 2), (9, 13), padding=(4, 6)),
    "2d.groups": _case(2, 2, 12, 18, (9, 7), (3, 3), groups=3, padding=1),
    "2d.depthwise": _case(2, 2, 17, 17, (12, 21), (3, 3), groups=17, padding=1),
    "2d.depthwise_x3.s2": _case(2, 1, 5, 15, (13, 14), (5, 5), groups=5, stride=2, padding=2),
    "2d.1x1": _case(2, 2, 19, 13, (6, 7), (1, 1)),
    "2d.1x1.s2": _case(2, 1, 8, 6, (9, 9), (1, 1), stride=2),
    "2d.wide_cout": _case(2, 1, 20, 37, (5, 33), (3, 3), padding=1),
    "2d.reflect": _case(2, 1, 3, 4, (6, 7), (3, 3), padding=2, padding_mode="reflect"),
    "2d.replicate.same": _case(2, 2, 4, 5, (5, 6), (4, 3), padding="same",
                               padding_mode="replicate"),
    "2d.circular": _case(2, 1, 3, 6, (6, 5), (3, 3), padding=((1, 2), (0, 3)),
                         padding_mode="circular", stride=2),
    "2d.unbatched": _case(2, None, 3, 4, (8, 7), (3, 3), padding=1),
    "1d.basic": _case(1, 2, 5, 7, (40,), (3,), padding=1),
    "1d.s3.d2": _case(1, 1, 9, 4, (37,), (4,), stride=3, dilation=2, padding="same"),
    "1d.depthwise": _case(1, 2, 6, 12, (29,), (5,), groups=6, padding=2),
    "1d.reflect": _case(1, 1, 3, 2, (11,), (3,), padding=(2,), padding_mode="reflect"),
    "1d.unbatched": _case(1, None, 4, 3, (17,), (2,), stride=2),
    "3d.basic": _case(3, 2, 3, 5, (5, 6, 7), (3, 3, 3), padding=1),
    "3d.s2.groups": _case(3, 1, 4, 6, (6, 7, 5), (3, 2, 3), groups=2, stride=(2, 1, 2),
                          padding="same"),
    "3d.depthwise": _case(3, 1, 5, 5, (4, 6, 9), (3, 3, 3), groups=5, padding=1),
    "3d.replicate": _case(3, 1, 2, 3, (4, 5, 4), (2, 3, 3), padding=1,
                          padding_mode="replicate"),
    "3d.1x1": _case(3, 2, 7, 5, (3, 4, 5), (1, 1, 1)),
}


def _data(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    batch = () if case["batch"] is None else (case["batch"],)
    x = rng.standard_normal(batch + (case["c_in"],) + case["size"]).astype(dtype)
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"])
                            + case["kernel"]).astype(dtype)
    b = rng.standard_normal(case["c_out"]).astype(dtype) if case["bias"] else None
    return x, w, b


def _reference(case, x, w, b):
    kw = dict(case["kw"])
    if case["batch"] is None:
        return ref_conv(x[None], w, b, groups=case["groups"], **kw)[0]
    return ref_conv(x, w, b, groups=case["groups"], **kw)


def _conv(ndim):
    return {1: fastconv.conv1d, 2: fastconv.conv2d, 3: fastconv.conv3d}[ndim]


@pytest.mark.parametrize("dtype", DTYPES, ids=("f32", "f64"))
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", list(CASES))
def test_matches_reference(name, algorithm, dtype):
    case = CASES[name]
    x, w, b = _data(case, dtype)
    y = _conv(case["ndim"])(x, w, b, groups=case["groups"], algorithm=algorithm, threads=1,
                            **case["kw"])
    assert y.dtype == dtype
    assert_close(y, _reference(case, x, w, b), dtype)


# Shapes that reach the threaded paths of each kernel (the fixture above keeps every thread).
THREADED = {
    "im2col.batch": _case(2, 4, 16, 24, (14, 15), (3, 3), padding=1),
    "im2col.batch1": _case(2, 1, 32, 40, (20, 23), (3, 3), padding=1, stride=(1, 2)),
    "1x1.batch1": _case(2, 1, 64, 48, (30, 31), (1, 1)),
    # output rows wider than an AVX-512 vector: the vector copies of the im2col callback
    "im2col.s2.wide": _case(2, 1, 8, 16, (17, 75), (3, 3), stride=2, padding=1),
    "im2col.s1.wide": _case(2, 1, 8, 8, (15, 131), (3, 3), padding=(1, 2), dilation=(1, 2)),
    "direct.stem": _case(2, 1, 3, 16, (40, 41), (7, 7), stride=2, padding=3),
    "depthwise": _case(2, 2, 32, 32, (30, 33), (3, 3), groups=32, padding=1),
    "3d": _case(3, 1, 8, 12, (6, 10, 11), (3, 3, 3), padding=1),
}


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("name", list(THREADED))
def test_isa_threads_algorithms_agree(isa, name, threads):
    case = THREADED[name]
    for dtype in DTYPES:
        x, w, b = _data(case, dtype, seed=1)
        expected = _reference(case, x, w, b)
        for algorithm in ("direct", "im2col"):
            y = _conv(case["ndim"])(x, w, b, groups=case["groups"], algorithm=algorithm,
                                    threads=threads, **case["kw"])
            assert_close(y, expected, dtype)


def test_threads_give_identical_im2col_results():
    case = THREADED["im2col.batch1"]
    x, w, b = _data(case, np.float32)
    one = fastconv.conv2d(x, w, b, padding=1, stride=(1, 2), algorithm="im2col", threads=1)
    two = fastconv.conv2d(x, w, b, padding=1, stride=(1, 2), algorithm="im2col", threads=2)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("layout", ("transposed", "negative", "strided", "readonly", "memmap"))
def test_non_contiguous_and_readonly_inputs(layout, tmp_path):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((2, 4, 12, 14)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    if layout == "transposed":
        x = np.ascontiguousarray(base.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    elif layout == "negative":
        x = base[:, ::-1, ::-1, ::-2]
    elif layout == "strided":
        x = base[:, :, ::2, 1::3]
    elif layout == "readonly":
        x = base.copy()
        x.flags.writeable = False
        w.flags.writeable = False
    else:
        x = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32,
                                      shape=base.shape)
        x[...] = base
        x.flush()
        x = np.load(tmp_path / "x.npy", mmap_mode="r")
    before = np.array(x, copy=True)
    for algorithm in ("direct", "im2col"):
        y = fastconv.conv2d(x, w, padding=1, algorithm=algorithm)
        assert_close(y, ref_conv(np.asarray(x), w, padding=1), np.float32)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("xdtype, wdtype, expected", [
    (np.int32, np.int64, np.float64), (np.int64, np.float32, np.float64),
    (np.float16, np.float16, np.float32), (np.int8, np.float16, np.float32),
    (np.uint8, np.float32, np.float32), (np.float32, np.float64, np.float64),
])
def test_dtype_promotion(xdtype, wdtype, expected):
    rng = np.random.default_rng(3)
    x = rng.integers(-3, 4, (1, 3, 6, 7)).astype(xdtype)
    w = rng.integers(-2, 3, (2, 3, 3, 3)).astype(wdtype)
    y = fastconv.conv2d(x, w, padding=1)
    assert y.dtype == expected
    assert_close(y, ref_conv(x, w, padding=1), expected)


def test_out_argument():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    out = np.full((2, 4, 8, 8), np.nan, dtype=np.float32)
    y = fastconv.conv2d(x, w, padding=1, out=out)
    assert y is out
    assert_close(out, ref_conv(x, w, padding=1), np.float32)
    # unbatched
    out1 = np.empty((4, 6, 6), dtype=np.float32)
    assert fastconv.conv2d(x[0], w, out=out1) is out1
    assert_close(out1, ref_conv(x[:1], w)[0], np.float32)
    with pytest.raises(ValueError, match="out must have shape"):
        fastconv.conv2d(x, w, out=np.empty((2, 4, 8, 8), np.float32))
    with pytest.raises(ValueError, match="out must have dtype"):
        fastconv.conv2d(x, w, padding=1, out=np.empty((2, 4, 8, 8), np.float64))
    with pytest.raises(ValueError, match="C-contiguous"):
        fastconv.conv2d(x, w, padding=1, out=np.empty((2, 4, 8, 16), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="overlap"):
        fastconv.conv2d(x, np.ones((3, 3, 1, 1), np.float32), out=x[:, :3])


def test_empty_batch_and_nan():
    w = np.ones((4, 3, 3, 3), np.float32)
    y = fastconv.conv2d(np.zeros((0, 3, 5, 5), np.float32), w, padding=1)
    assert y.shape == (0, 4, 5, 5)
    x = np.zeros((1, 3, 5, 5), np.float32)
    x[0, 1, 2, 2] = np.nan
    for algorithm in ("direct", "im2col"):
        y = fastconv.conv2d(x, w, algorithm=algorithm)
        assert np.isnan(y[0, :, 0:3, 0:3]).all() and np.isnan(y).sum() == 4 * 9


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(groups=2), ValueError, "divisible by groups"),
    (dict(groups=0), ValueError, "groups"),
    (dict(padding=-1), ValueError, "padding"),
    (dict(padding="bogus"), ValueError, "padding"),
    (dict(padding_mode="mirror"), ValueError, "padding_mode"),
    (dict(algorithm="fft"), ValueError, "algorithm"),
    (dict(algorithm="winograd", stride=2), ValueError, "winograd.*stride 1"),
    (dict(stride=0), ValueError, "stride"),
    (dict(dilation=(1, 1, 1)), ValueError, "dilation"),
    (dict(stride=1.5), TypeError, "stride"),
    (dict(bias=np.ones(5)), ValueError, "bias"),
    (dict(threads=0), ValueError, "threads"),
    (dict(padding=4, padding_mode="reflect"), ValueError, "reflect"),
])
def test_argument_errors(kwargs, error, match):
    x = np.ones((1, 3, 4, 4), np.float32)
    w = np.ones((3, 3, 3, 3), np.float32)
    with pytest.raises(error, match=match):
        fastconv.conv2d(x, w, **kwargs)


def test_shape_errors():
    with pytest.raises(ValueError, match="input channels"):
        fastconv.conv2d(np.ones((1, 4, 5, 5)), np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="weight must have 4 dims"):
        fastconv.conv2d(np.ones((1, 3, 5, 5)), np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="x must have 4 dims"):
        fastconv.conv2d(np.ones((5, 5)), np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError):  # output size < 1
        fastconv.conv2d(np.ones((1, 3, 2, 2)), np.ones((2, 3, 3, 3)))
    with pytest.raises(TypeError, match="complex"):
        fastconv.conv2d(np.ones((1, 3, 5, 5), complex), np.ones((2, 3, 3, 3)))
    with pytest.raises(TypeError, match="weight"):
        fastconv.conv2d(np.ones((1, 3, 5, 5)), None)


def test_layer_matches_function_and_copies_weights():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    x = rng.standard_normal((2, 4, 9, 10)).astype(np.float32)
    layer = fastconv.Conv2d(w, b, padding="same", stride=(1, 2))
    expected = ref_conv(x, w, b, padding="same", stride=(1, 2))
    w_orig, b_orig = w.copy(), b.copy()
    w[...] = 0
    b[...] = 0
    assert_close(layer(x), ref_conv(x, w_orig, b_orig, padding="same", stride=(1, 2)),
                 np.float32)
    assert_close(layer(x, threads=2), expected, np.float32)
    # float64 input: the layer prepares float64 weights on first use
    y64 = layer(x.astype(np.float64))
    assert y64.dtype == np.float64
    assert_close(y64, expected, np.float64)
    # unbatched and out=
    out = np.empty((8, 9, 5), np.float32)
    assert layer(x[1], out=out) is out
    assert_close(out, expected[1], np.float32)
    # the layer's own weight: updated in place (an optimiser step), used after refresh()
    layer.weight[0, 0, 0, 0] += 1.0
    layer.refresh()
    w_new = w_orig.copy()
    w_new[0, 0, 0, 0] += 1.0
    assert_close(layer(x), ref_conv(x, w_new, b_orig, padding="same", stride=(1, 2)),
                 np.float32)


@pytest.mark.parametrize("isa_name", ("scalar", "best"))
def test_layer_per_isa(isa_name):
    from fastconv import _dispatch

    name = _dispatch.available_isas()[0] if isa_name == "best" else isa_name
    rng = np.random.default_rng(6)
    w = rng.standard_normal((16, 8, 3, 3))
    x = rng.standard_normal((1, 8, 12, 12))
    layer = fastconv.Conv2d(w, padding=1, algorithm="im2col")
    with _dispatch.use_isa(name):
        assert_close(layer(x), ref_conv(x, w, padding=1), np.float64)


def test_algorithm_for():
    # (dilation 2: plain 3x3 stride-1 layers go to Winograd, see tests/test_conv_winograd.py)
    layer = fastconv.Conv2d(np.ones((64, 64, 3, 3), np.float32), padding=2, dilation=2)
    # wide rows fill the direct kernel's register tiles; narrow ones go to the GEMM
    assert layer.algorithm_for((1, 64, 224, 224)) == "direct"
    assert layer.algorithm_for((64, 7, 7)) == "im2col"
    pointwise = fastconv.Conv2d(np.ones((64, 256, 1, 1), np.float32))
    assert pointwise.algorithm_for((1, 256, 56, 56)) == "im2col"
    stem = fastconv.Conv2d(np.ones((64, 3, 7, 7), np.float32), stride=2, padding=3)
    assert stem.algorithm_for((1, 3, 224, 224)) == "direct"
    dw = fastconv.Conv2d(np.ones((32, 1, 3, 3), np.float32), padding=1, groups=32)
    assert dw.algorithm_for((1, 32, 112, 112)) == "direct"
    forced = fastconv.Conv1d(np.ones((4, 4, 3)), algorithm="direct")
    assert forced.algorithm_for((2, 4, 10)) == "direct"
    with pytest.raises(ValueError, match="input channels"):
        layer.algorithm_for((1, 3, 56, 56))


@pytest.mark.parametrize("cls, ndim", [(fastconv.Conv1d, 1), (fastconv.Conv3d, 3)])
def test_layers_1d_3d(cls, ndim):
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 2) + (3,) * ndim)
    x = rng.standard_normal((2, 4) + (7,) * ndim)
    layer = cls(w, groups=2, padding=1, padding_mode="circular", dilation=2)
    assert_close(layer(x), ref_conv(x, w, groups=2, padding=1, padding_mode="circular",
                                    dilation=2), np.float64)


def test_cached_plans_do_not_skip_validation():
    # the functional call and the layer objects reuse plans; a key seen before must not let an
    # invalid argument through (True == 1, 1.0 == 1) nor serve a stale ISA or thread count
    x = np.ones((1, 3, 6, 6), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    fastconv.conv2d(x, w, stride=1, groups=1)
    with pytest.raises(TypeError, match="stride"):
        fastconv.conv2d(x, w, stride=True)
    with pytest.raises(TypeError, match="groups"):
        fastconv.conv2d(x, w, groups=1.0)
    layer = fastconv.Conv2d(w, padding=1)
    layer(x)
    with pytest.raises(ValueError, match="threads"):
        layer(x, threads=0)
    with pytest.raises(ValueError, match="input channels"):
        layer(np.ones((1, 4, 6, 6), np.float32))
    from fastconv import _dispatch

    for name in _dispatch.available_isas():
        with _dispatch.use_isa(name):
            assert_close(layer(x, threads=2), ref_conv(x, w, padding=1), np.float32)


@pytest.mark.parametrize("threads", (1, 2))
def test_direct_stride1_bands(isa, threads):
    # 64 channels x 130-wide padded rows: the stride-1 direct kernel stages a few rows per band,
    # so 21 output rows take several bands; tiles cross row ends; 12 output channels leave a
    # partial register block; dilation 2 in H widens the band's staged rows
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 64, 21, 127)).astype(np.float32)
    w = rng.standard_normal((12, 64, 3, 4)).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    kw = dict(padding=((2, 1), (1, 2)), dilation=(2, 1))
    y = fastconv.conv2d(x, w, b, algorithm="direct", threads=threads, **kw)
    assert_close(y, ref_conv(x, w, b, **kw), np.float32)


def test_functional_auto_skips_winograd_when_the_weight_transform_does_not_pay():
    # layer objects transform the weight once; a functional call on every call, so on small
    # outputs "auto" keeps it to direct/im2col (fastconv._winograd_plan.auto_tile)
    from fastconv import _algorithms

    w = np.ones((64, 64, 3, 3), np.float32)
    small = fastconv.Conv2d(w, padding=1)
    assert small.algorithm_for((1, 64, 7, 7)).startswith("winograd")
    small_problem = _algorithms.Problem(1, 64, 64, 1, (7, 7), (3, 3), (1, 1), (1, 1),
                                        ((1, 1), (1, 1)), (7, 7))
    assert not _algorithms.choose("auto", small_problem, weights_prepared=False).startswith(
        "winograd")
    big_problem = _algorithms.Problem(1, 64, 64, 1, (56, 56), (3, 3), (1, 1), (1, 1),
                                      ((1, 1), (1, 1)), (56, 56))
    assert _algorithms.choose("auto", big_problem, weights_prepared=False).startswith(
        "winograd")
    x = np.random.default_rng(9).standard_normal((1, 64, 7, 7)).astype(np.float32)
    assert_close(fastconv.conv2d(x, w, padding=1), ref_conv(x, w, padding=1), np.float32)


def test_direct_huge_stride_stages_only_the_phases_it_reads():
    # scratch is sized by the phases the kernel taps read (at most kW), not by the stride
    x = np.arange(4 * 8 * 8, dtype=np.float32).reshape(1, 4, 8, 8)
    w = np.ones((6, 4, 3, 3), np.float32)
    for stride in (2**30, (3, 2**20)):
        y = fastconv.conv2d(x, w, stride=stride, algorithm="direct")
        assert_close(y, ref_conv(x, w, stride=stride), np.float32)


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("shapes, kw", [
    # 1-D rows whose staging outgrows the kernel's budget: cut into column windows, also
    # strided (phases start at each window's first padded position) and dilated
    (((1, 64, 2000), (12, 64, 3)), dict(padding=1)),
    (((1, 64, 2000), (16, 64, 5)), dict(padding=3, stride=2)),
    (((1, 48, 1500), (9, 48, 4)), dict(padding=(5,), stride=3, dilation=2)),
    # one output row: windows give the second thread work
    (((2, 16, 3, 300), (24, 16, 3, 3)), dict(padding=0)),
    (((1, 16, 3, 301), (10, 16, 3, 3)), dict(padding=(0, 4), stride=(1, 2))),
    (((1, 8, 2, 777), (8, 8, 2, 7)), dict(padding=(0, 3), dilation=(1, 3))),
], ids=("1d", "1d.s2", "1d.s3.d2", "2d.one_row", "2d.one_row.s2", "2d.one_row.d3"))
def test_direct_column_windows(isa, threads, shapes, kw):
    rng = np.random.default_rng(10)
    xs, ws = shapes
    conv = fastconv.conv1d if len(xs) == 3 else fastconv.conv2d
    for dtype in DTYPES:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        b = rng.standard_normal(ws[0]).astype(dtype)
        y = conv(x, w, b, algorithm="direct", threads=threads, **kw)
        assert_close(y, ref_conv(x, w, b, **kw), dtype)


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("kw", [
    # stride 1 in D: consecutive output depths reuse staged depth slices (a ring of kD slots)
    dict(padding=1),
    dict(padding=((2, 0), (1, 1), (0, 2))),
    dict(padding=(0, 1, 1), stride=(1, 2, 1)),
    # no ring: strided or dilated in D
    dict(padding=1, stride=(2, 1, 1)),
    dict(padding=(2, 1, 1), dilation=(2, 1, 1)),
], ids=("p1", "pairs", "s_hw", "s_d", "d_d"))
@pytest.mark.parametrize("kernel", ((3, 3, 3), (2, 3, 3), (4, 1, 3)), ids=("k3", "k2", "k4"))
def test_direct_3d_depth_ring(isa, threads, kw, kernel):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 5, 9, 7, 11)).astype(np.float32)
    w = rng.standard_normal((12, 5) + kernel).astype(np.float32)
    b = rng.standard_normal(12).astype(np.float32)
    y = fastconv.conv3d(x, w, b, algorithm="direct", threads=threads, **kw)
    assert_close(y, ref_conv(x, w, b, **kw), np.float32)


def test_small_convolutions_stay_on_one_thread(monkeypatch):
    """Two threads only where the work pays for waking the second (real for_work here)."""
    monkeypatch.undo()
    w3 = np.zeros((32, 32, 3, 3), np.float32)
    small = fastconv.Conv2d(w3, padding=1)  # F(4,3) on 14x14: 1.8M MACs, a quarter done
    assert small.algorithm_for((1, 32, 14, 14)) == "winograd_f4"
    assert small._plan_for((1, 32, 14, 14), np.dtype(np.float32), 2)[0].threads == 1
    assert small._plan_for((1, 32, 56, 56), np.dtype(np.float32), 2)[0].threads == 2
    pointwise = fastconv.Conv2d(np.zeros((64, 64, 1, 1), np.float32))
    assert pointwise._plan_for((1, 64, 14, 14), np.dtype(np.float32), 2)[0].threads == 1
    assert pointwise._plan_for((1, 64, 56, 56), np.dtype(np.float32), 2)[0].threads == 2
