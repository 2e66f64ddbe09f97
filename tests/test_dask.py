"""fastconv.dask: every operator and apply against the in-memory call, on awkward chunkings,
on the threaded scheduler and on a real two-process dask.distributed LocalCluster."""

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastconv

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
fdask = pytest.importorskip("fastconv.dask")

SCHEDULERS = ["threads", "cluster"]


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None)
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


def _compute(y, scheduler, request):
    if scheduler == "cluster":
        return request.getfixturevalue("client").compute(y).result()
    return y.compute(scheduler="threads")


def _close(got, want, exact=False):
    assert got.shape == want.shape and got.dtype == want.dtype
    if exact:
        np.testing.assert_array_equal(got, want)
        return
    scale = max(float(np.max(np.abs(want))), 1e-30)
    err = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
    assert err <= 1e-5, err


def _check_graph(y):
    """One task per output chunk, plus the shared parameters and the halo slices (at most one
    per overlapped input block and output chunk)."""
    layer = y.dask.layers[y.name]
    tiles = [k for k in layer if isinstance(k, tuple) and k[0] == y.name]
    assert len(tiles) == y.npartitions
    assert len(layer) - len(tiles) - 1 <= 3 ** (y.ndim - 2) * y.npartitions


def _data(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# awkward chunkings: uneven, smaller than the kernel, N split
X2 = _data((3, 4, 23, 19))
CH2 = ((2, 1), 4, (7, 2, 9, 5), (5, 11, 3))

CONV2D = [
    dict(padding=1),
    dict(padding="same", stride=3, dilation=2),
    dict(padding=((0, 2), (3, 1)), stride=2, groups=2),
    dict(padding="full", stride=(2, 3)),
    dict(padding="same_lower", stride=2, algorithm="direct"),
    dict(padding="valid", algorithm="im2col", stride=(1, 2)),
    dict(padding=2, padding_mode="reflect", stride=2),
    dict(padding=(1, 3), padding_mode="replicate"),
    dict(padding="same", padding_mode="circular", dilation=(1, 2)),
    dict(padding=6, stride=4),  # outputs that read only padding: chunks merge
    dict(padding=1, algorithm="winograd_f2"),
]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("kw", CONV2D, ids=lambda kw: repr(kw)[:60])
def test_conv2d(kw, scheduler, request):
    kw = dict(kw)
    groups = kw.get("groups", 1)
    w = _data((6, 4 // groups, 3, 3), 1)
    b = _data((w.shape[0],), 2)
    want = fastconv.conv2d(X2, w, b, threads=1, **kw)
    y = fdask.conv2d(da.from_array(X2, chunks=CH2), w, b, **kw)
    assert y.shape == want.shape
    _check_graph(y)
    got = _compute(y, scheduler, request)
    _close(got, want, exact=not kw.get("algorithm", "").startswith("winograd"))


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_conv1d_conv3d(scheduler, request):
    x1 = _data((2, 3, 50))
    w1 = _data((5, 3, 4), 1)
    for kw in (dict(padding="same", stride=3), dict(padding=3, padding_mode="reflect",
                                                     dilation=2)):
        y = fdask.conv1d(da.from_array(x1, chunks=(1, 3, (9, 20, 3, 18))), w1, **kw)
        _close(_compute(y, scheduler, request), fastconv.conv1d(x1, w1, threads=1, **kw))
    x3 = _data((1, 2, 9, 10, 11))
    w3 = _data((4, 1, 3, 2, 3), 1)
    kw = dict(padding=((1, 1), (0, 1), (2, 0)), stride=(2, 1, 2), groups=2)
    y = fdask.conv3d(da.from_array(x3, chunks=(1, 2, 4, 3, 5)), w3, **kw)
    _close(_compute(y, scheduler, request), fastconv.conv3d(x3, w3, threads=1, **kw))


def test_conv2d_winograd_auto_and_unbatched():
    # auto resolves once for the whole array: the in-memory call's algorithm on every chunk
    x = _data((16, 40, 36))
    w = _data((16, 16, 3, 3), 1)
    want = fastconv.conv2d(x, w, padding=1, threads=1)
    y = fdask.conv2d(da.from_array(x, chunks=(16, 13, 17)), w, padding=1)
    assert y.shape == want.shape
    _close(y.compute(scheduler="threads"), want)


CONVT = [
    dict(stride=2, padding=1),
    dict(stride=3, padding=((2, 0), (1, 4)), output_padding=1, dilation=(1, 2)),
    dict(stride=2, padding="same", groups=2),
    dict(stride=(1, 3), padding="same_lower", algorithm="gemm"),
    dict(stride=4, padding=0),  # kernel smaller than the stride: gaps between inputs
]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("kw", CONVT, ids=lambda kw: repr(kw)[:60])
def test_conv_transpose2d(kw, scheduler, request):
    groups = kw.get("groups", 1)
    w = _data((4, 6 // groups, 3, 3), 1)
    b = _data((6,), 2)
    x = X2[:, :, :13, :11]
    want = fastconv.conv_transpose2d(x, w, b, threads=1, **kw)
    y = fdask.conv_transpose2d(da.from_array(x, chunks=(2, 4, (4, 1, 8), (6, 5))), w, b, **kw)
    assert y.shape == want.shape
    _close(_compute(y, scheduler, request), want)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_conv_transpose1d_3d(scheduler, request):
    x = _data((2, 3, 17))
    w = _data((3, 2, 5), 1)
    kw = dict(stride=3, padding=2, output_size=(49,))
    y = fdask.conv_transpose1d(da.from_array(x, chunks=(1, 3, (5, 7, 5))), w, **kw)
    _close(_compute(y, scheduler, request), fastconv.conv_transpose1d(x, w, threads=1, **kw))
    # a last chunk that reaches past its inputs' transposed result (output_padding) still
    # holds their contributions
    x = _data((1, 1, 5))
    w = _data((1, 1, 1), 1)
    kw = dict(dilation=2, output_padding=1)
    y = fdask.conv_transpose1d(da.from_array(x, chunks=(1, 1, 1)), w, **kw)
    _close(_compute(y, scheduler, request), fastconv.conv_transpose1d(x, w, threads=1, **kw))
    x = _data((1, 2, 5, 6, 4))
    w = _data((2, 3, 2, 3, 3), 1)
    kw = dict(stride=(2, 1, 2), padding=(0, 1, 1))
    y = fdask.conv_transpose3d(da.from_array(x, chunks=(1, 2, 2, 4, 3)), w, **kw)
    _close(_compute(y, scheduler, request), fastconv.conv_transpose3d(x, w, threads=1, **kw))


POOLS = [
    ("max", dict(kernel_size=3, stride=2, padding=1)),
    ("max", dict(kernel_size=(2, 3), stride=3, ceil_mode=True, dilation=2)),
    ("avg", dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg", dict(kernel_size=4, stride=3, padding="same", count_include_pad=False)),
    ("avg", dict(kernel_size=3, padding=((1, 0), (0, 2)), divisor_override=5)),
    ("lp", dict(norm_type=2, kernel_size=3, stride=2, padding="same_lower")),
    ("lp", dict(norm_type=3.0, kernel_size=2, ceil_mode=True)),
]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("kind,kw", POOLS, ids=lambda v: repr(v)[:50])
def test_pool2d(kind, kw, scheduler, request):
    want = getattr(fastconv, f"{kind}_pool2d")(X2, threads=1, **kw)
    y = getattr(fdask, f"{kind}_pool2d")(da.from_array(X2, chunks=CH2), **kw)
    _close(_compute(y, scheduler, request), want, exact=True)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_pool1d_3d_and_integers(scheduler, request):
    x1 = (_data((2, 3, 31)) * 50).astype(np.int16)
    want = fastconv.max_pool1d(x1, 4, 3, 1, ceil_mode=True)
    y = fdask.max_pool1d(da.from_array(x1, chunks=(1, 3, 7)), 4, 3, 1, ceil_mode=True)
    _close(_compute(y, scheduler, request), want, exact=True)
    x3 = _data((1, 2, 9, 8, 7))
    for name, args in (("avg_pool3d", (3, 2, 1)), ("lp_pool3d", (1.5, 2)),
                       ("max_pool3d", ((2, 3, 2), 2, 0, 2))):
        want = getattr(fastconv, name)(x3, *args)
        y = getattr(fdask, name)(da.from_array(x3, chunks=(1, 2, 4, 3, 5)), *args)
        _close(_compute(y, scheduler, request), want, exact=True)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_adaptive_and_global(scheduler, request):
    x = X2[:, :, :20, :18]
    chunked = da.from_array(x, chunks=(2, 4, (7, 13), (6, 6, 6)))
    # equal bins (20/5, 18/6): a windowed pool, any chunking
    for kind in ("avg", "max"):
        want = getattr(fastconv, f"adaptive_{kind}_pool2d")(x, (5, 6))
        y = getattr(fdask, f"adaptive_{kind}_pool2d")(chunked, (5, 6))
        _close(_compute(y, scheduler, request), want, exact=True)
    # unequal bins along H: that dim becomes one chunk (warning); W keeps its chunks (18/3)
    with pytest.warns(fdask.RechunkWarning, match="straddle"):
        y = fdask.adaptive_avg_pool2d(chunked, (7, 3))
    assert y.numblocks[2:] == (1, 3)
    _close(_compute(y, scheduler, request), fastconv.adaptive_avg_pool2d(x, (7, 3)))
    x1 = x[0, :, 0]  # unbatched 1-D, 18 -> 7: unequal bins, one chunk
    with pytest.warns(fdask.RechunkWarning):
        y = fdask.adaptive_max_pool1d(da.from_array(x1, chunks=(4, 10)), 7)
    _close(_compute(y, scheduler, request), fastconv.adaptive_max_pool1d(x1, 7), exact=True)
    _close(_compute(fdask.global_avg_pool(chunked), scheduler, request),
           fastconv.global_avg_pool(x))
    _close(_compute(fdask.global_max_pool(chunked), scheduler, request),
           fastconv.global_max_pool(x), exact=True)


def _relu(y):
    return np.maximum(y, 0, out=y)


def _block(padding_mode="zeros"):
    rng = np.random.default_rng(3)
    return [
        fastconv.Conv2d(rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
                        rng.standard_normal(8).astype(np.float32), padding=1,
                        padding_mode=padding_mode),
        _relu,
        fastconv.MaxPool2d(3, stride=2, padding=1),
        fastconv.Conv2d(rng.standard_normal((6, 4, 3, 3)).astype(np.float32), stride=2,
                        dilation=2, padding="same", groups=2),
        fastconv.AvgPool2d(2, ceil_mode=True),
    ]


def _in_memory(layers, x):
    for layer in layers:
        x = layer(x)
    return x


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_apply(mode, scheduler, request):
    layers = _block(mode)
    x = _data((2, 3, 61, 47))
    want = _in_memory(layers, x)
    y = fdask.apply(layers, da.from_array(x, chunks=(1, 3, (13, 20, 5, 23), (16, 31))))
    assert y.shape == want.shape
    if mode == "zeros":  # fused: one task per output chunk
        _check_graph(y)
    _close(_compute(y, scheduler, request), want, exact=True)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_apply_mixed_layers(scheduler, request):
    rng = np.random.default_rng(4)
    layers = [
        fastconv.ConvTranspose2d(rng.standard_normal((3, 4, 3, 3)).astype(np.float32),
                                 stride=2, padding=1),
        (fastconv.LpPool2d(2, 3, stride=1, padding=1), np.tanh),
        fastconv.AdaptiveAvgPool2d((9, 7)),
        fastconv.Conv2d(rng.standard_normal((2, 4, 1, 1)).astype(np.float32)),
    ]
    x = _data((1, 3, 12, 15))
    want = _in_memory(_flat(layers), x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fdask.RechunkWarning)
        y = fdask.apply(layers, da.from_array(x[0], chunks=(3, 5, 6)))
    _close(_compute(y, scheduler, request), want[0])


def _flat(layers):
    out = []
    for layer in layers:
        out.extend(layer if isinstance(layer, tuple) else [layer])
    return out


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_map_batches(scheduler, request):
    layers = _block()
    x = _data((7, 3, 16, 16))
    want = _in_memory(layers, x)
    with pytest.warns(fdask.RechunkWarning, match="batch dim"):
        y = fdask.map_batches(layers, da.from_array(x, chunks=(3, 3, 8, 16)))
    assert y.chunks[0] == (3, 3, 1)
    _close(_compute(y, scheduler, request), want, exact=True)
    y = fdask.map_batches(layers[0], da.from_array(x, chunks=(2, 3, 16, 16)), threads=1)
    _close(_compute(y, scheduler, request), layers[0](x), exact=True)


def test_layers_pickle():
    rng = np.random.default_rng(5)
    x = _data((1, 4, 9, 9))
    for layer in (fastconv.Conv2d(rng.standard_normal((16, 4, 3, 3)), padding=1,
                                  algorithm="winograd"),
                  fastconv.Conv2d(rng.standard_normal((5, 4, 3, 3)).astype(np.float32),
                                  padding_mode="reflect", padding=1),
                  fastconv.ConvTranspose2d(rng.standard_normal((4, 2, 3, 3)), stride=2),
                  fastconv.MaxPool2d(2), fastconv.AdaptiveAvgPool2d(3)):
        layer(x)  # prepared state and compiled runners exist now
        copy = pickle.loads(pickle.dumps(layer))
        assert repr(copy) == repr(layer)
        np.testing.assert_array_equal(copy(x), layer(x))
    # a channels-last layer stays one
    hwc = fastconv.Conv2d(rng.standard_normal((5, 4, 3, 3)), padding=1, data_format="NHWC")
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(hwc))(xl), hwc(xl))


def test_lazy_and_rechunk_warnings():
    w = _data((2, 4, 3, 3))
    x = da.from_array(X2, chunks=(1, 2, 10, 10))
    with pytest.warns(fdask.RechunkWarning, match="channels"):
        y = fdask.conv2d(x, w)
    assert isinstance(y, da.Array)
    _close(y.compute(), fastconv.conv2d(X2, w))
    with pytest.warns(fdask.RechunkWarning, match="channels"):  # unbatched too
        y = fdask.conv2d(x[0], w)
    _close(y.compute(), fastconv.conv2d(X2[0], w))
    x = x.rechunk({1: -1})
    with pytest.raises(TypeError, match="return_indices"):
        fdask.max_pool2d(x, 2, return_indices="yes")
    with pytest.raises(ValueError, match="input channels"):
        fdask.conv2d(x, _data((2, 3, 3, 3)))
    with pytest.raises(ValueError, match="return_indices"):
        fdask.apply([fastconv.MaxPool2d(2, return_indices=True)], x)
    with pytest.raises(TypeError, match="layer objects or callables"):
        fdask.apply([fastconv.MaxPool2d(2), 3], x.rechunk({1: -1}))


def test_import_is_lazy_and_says_how_to_install():
    code = ("import sys, fastconv; assert 'fastconv.dask' not in sys.modules; "
            "assert 'dask' not in sys.modules; sys.modules['dask'] = None\n"
            "try:\n    import fastconv.dask\nexcept ImportError as e:\n"
            "    assert 'pip install \"fastconv[dask]\"' in str(e), e\n"
            "else:\n    raise SystemExit(1)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_docstring_examples():
    import doctest

    result = doctest.testmod(fdask, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# interpolate: every mode, up and down, size and scale_factor, align_corners, awkward chunks
X1 = _data((2, 3, 17), seed=3)
X3 = _data((2, 2, 7, 9, 6), seed=4)
INTERP = [
    (X1, (1, 3, (5, 1, 11)), "nearest", dict(size=40)),
    (X1, (2, 3, (4, 4, 9)), "nearest-exact", dict(scale_factor=0.45)),
    (X1, (1, 3, (1, 16)), "linear", dict(size=5, align_corners=True)),
    (X1, (1, 3, (6, 6, 5)), "linear", dict(scale_factor=2.6)),
    (X2, CH2, "nearest", dict(size=(11, 40))),
    (X2, CH2, "nearest-exact", dict(scale_factor=(1.7, 0.6))),
    (X2, CH2, "nearest", dict(scale_factor=2)),
    (X2, CH2, "bilinear", dict(size=(50, 7), align_corners=False)),
    (X2, CH2, "bilinear", dict(scale_factor=(0.3, 1.5), align_corners=True)),
    (X2, CH2, "bicubic", dict(size=(9, 44))),
    (X2, CH2, "bicubic", dict(scale_factor=(2.2, 0.5), align_corners=True)),
    (X2, CH2, "bicubic", dict(size=(23, 19))),  # identity sizes, still bicubic tables
    (X3, (1, 2, (3, 4), (2, 2, 5), (6,)), "trilinear", dict(size=(4, 17, 6))),
    (X3, (2, 2, (7,), (4, 5), (1, 2, 3)), "trilinear",
     dict(scale_factor=(1.5, 0.5, 2.0), align_corners=True)),
    (X3, (1, 2, (2, 5), (9,), (3, 3)), "nearest", dict(size=(13, 4, 6))),
]


@pytest.mark.parametrize("x,chunks,mode,kw", INTERP,
                         ids=[f"{x.ndim - 2}d-{m}-{kw}" for x, _, m, kw in INTERP])
def test_interpolate(x, chunks, mode, kw):
    want = fastconv.interpolate(x, mode=mode, **kw)
    y = fdask.interpolate(da.from_array(x, chunks=chunks), mode=mode, **kw)
    assert y.chunks[:2] == da.from_array(x, chunks=chunks).chunks[:2]
    _close(y.compute(scheduler="threads"), want, exact=True)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_interpolate_unbatched_integers_and_cluster(scheduler, request):
    xi = (X2[0] * 40).astype(np.int16)  # (C, H, W): unbatched by the mode's rank
    want = fastconv.interpolate(xi[None], size=(31, 8), mode="bicubic")[0]
    y = fdask.interpolate(da.from_array(xi, chunks=(4, (10, 13), (2, 17))), size=(31, 8),
                          mode="bicubic")
    _close(_compute(y, scheduler, request), want, exact=True)
    # nearest: a tuple size gives the rank; a scalar means batched, as in memory
    want = fastconv.interpolate(X2[:1], size=(5, 30))[0]
    y = fdask.interpolate(da.from_array(X2[0], chunks=(4, 6, 7)), size=(5, 30))
    _close(_compute(y, scheduler, request), want, exact=True)
    want = fastconv.interpolate(X2[0], scale_factor=1.5, mode="nearest-exact")
    y = fdask.interpolate(da.from_array(X2[0], chunks=(3, 23, 7)), scale_factor=1.5,
                          mode="nearest-exact")
    _close(_compute(y, scheduler, request), want, exact=True)


def test_interpolate_errors_and_rechunk():
    x = da.from_array(X2, chunks=(1, 2, 10, 10))
    with pytest.warns(fdask.RechunkWarning, match="channels"):
        y = fdask.interpolate(x, scale_factor=0.5, mode="bilinear")
    _close(y.compute(), fastconv.interpolate(X2, scale_factor=0.5, mode="bilinear"),
           exact=True)
    x = x.rechunk({1: -1})
    for kw, exc, match in (
            (dict(mode="cubic", size=3), ValueError, "mode"),
            (dict(mode="linear", size=3), ValueError, "linear"),
            (dict(mode="nearest", size=3, align_corners=True), ValueError, "align_corners"),
            (dict(mode="bilinear", size=3, align_corners=1), TypeError, "align_corners"),
            (dict(), ValueError, "size and scale_factor"),
            (dict(size=3, scale_factor=2), ValueError, "size and scale_factor"),
            (dict(size=(3, 4, 5, 6)), ValueError, "size"),
            (dict(size=0), ValueError, "size"),
            (dict(scale_factor=-1.0), ValueError, "scale_factor"),
            (dict(scale_factor=0.01), ValueError, "scale_factor"),
            (dict(scale_factor="2"), TypeError, "scale_factor"),
            (dict(size=3, threads=0), ValueError, "threads")):
        with pytest.raises(exc, match=match):
            fdask.interpolate(x, **kw)
    with pytest.raises(ValueError, match="x must have"):
        fdask.interpolate(da.zeros((3, 4)), size=3)
    with pytest.raises(TypeError, match="x"):
        fdask.interpolate(da.zeros((1, 1, 3), dtype=complex), size=3)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_max_pool_return_indices(scheduler, request):
    """Each tile's flat indices are offset into whole-plane indices: equal to the in-memory
    call's, ties included (the offset keeps the scan order)."""
    import dask

    def check(got, want):
        if scheduler == "cluster":
            got = request.getfixturevalue("client").compute(list(got), sync=True)
        else:
            got = dask.compute(*got, scheduler="threads")
        for g, w in zip(got, want):
            _close(g, w, exact=True)

    chunked = da.from_array(X2, chunks=CH2)
    for kw in (dict(kernel_size=3), dict(kernel_size=(3, 2), stride=2, padding=1, dilation=2,
                                         ceil_mode=True)):
        check(fdask.max_pool2d(chunked, return_indices=True, **kw),
              fastconv.max_pool2d(X2, return_indices=True, **kw))
    x1 = (X2[0, :, :, :3] * 3).astype(np.int16).reshape(4, 69)  # ties, unbatched
    check(fdask.max_pool1d(da.from_array(x1, chunks=(4, (7, 30, 32))), 4, 3, 1, ceil_mode=True,
                           return_indices=True),
          fastconv.max_pool1d(x1, 4, 3, 1, ceil_mode=True, return_indices=True))
    x3 = np.repeat(X2[:2, :2, :9, :8, None], 3, axis=4)
    check(fdask.max_pool3d(da.from_array(x3, chunks=(1, 2, 4, 3, 2)), (2, 3, 2), 2, 1,
                           return_indices=True),
          fastconv.max_pool3d(x3, (2, 3, 2), 2, 1, return_indices=True))
    x = X2[:, :, :20, :18]
    for out, chunks in (((5, 6), (2, 4, (7, 13), (6, 6, 6))),  # equal bins: windowed
                        ((3, 6), (2, 4, 20, (6, 6, 6)))):  # unequal in H: per block
        check(fdask.adaptive_max_pool2d(da.from_array(x, chunks=chunks), out,
                                        return_indices=True),
              fastconv.adaptive_max_pool2d(x, out, return_indices=True))
