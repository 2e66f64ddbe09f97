"""Gradients (fastconv.gradients): every backward against the float64 references derived from
the definitions (tests/reference.py), finite differences of fastconv's own forwards, the adjoint
identity, layer objects, and errors. PyTorch only in the optional comparison at the end."""

import numpy as np
import pytest
from reference import (
    ref_adaptive_avg_pool_backward,
    ref_adaptive_max_pool_backward,
    ref_avg_pool_backward,
    ref_conv_backward,
    ref_conv_transpose_backward,
    ref_max_pool_backward,
)

import fastconv
from fastconv import gradients as gr

TOL = {np.float64: 1e-10, np.float32: 1e-5}


def close(actual, expected, dtype=np.float64):
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-300)
    err = float(np.max(np.abs(actual - expected))) / scale if expected.size else 0.0
    assert err <= TOL[dtype], f"max|err| / max|ref| = {err:.3e} > {TOL[dtype]:.0e}"


CONV = {1: gr.conv1d_backward, 2: gr.conv2d_backward, 3: gr.conv3d_backward}
CONV_FWD = {1: fastconv.conv1d, 2: fastconv.conv2d, 3: fastconv.conv3d}
CONVT = {1: gr.conv_transpose1d_backward, 2: gr.conv_transpose2d_backward,
         3: gr.conv_transpose3d_backward}
CONVT_FWD = {1: fastconv.conv_transpose1d, 2: fastconv.conv_transpose2d,
             3: fastconv.conv_transpose3d}

# (x shape, weight shape, kwargs): every parameter of the forward at least once
CONV_CASES = [
    ((2, 3, 9), (4, 3, 3), {}),
    ((2, 4, 11), (6, 2, 3), dict(stride=2, padding=2, dilation=2, groups=2)),
    ((1, 3, 10), (2, 3, 4), dict(padding="same", stride=3)),
    ((1, 2, 7), (2, 2, 2), dict(padding="same_lower")),
    ((1, 2, 7), (3, 2, 3), dict(padding="full", dilation=2)),
    ((2, 3, 8, 7), (4, 3, 3, 3), dict(padding=1)),
    ((2, 3, 8, 7), (4, 3, 3, 3), dict(padding=1, stride=2)),
    ((1, 4, 9, 8), (4, 1, 3, 3), dict(padding=1, groups=4)),               # depthwise
    ((1, 4, 9, 8), (8, 1, 3, 3), dict(stride=2, padding=1, groups=4)),     # multiplier 2
    ((2, 6, 9, 10), (6, 2, 3, 2), dict(stride=(2, 1), padding=((1, 0), (0, 2)), groups=3)),
    ((1, 3, 10, 9), (2, 3, 3, 3), dict(padding="same", stride=2, dilation=(1, 2))),
    ((1, 2, 9, 9), (3, 2, 5, 3), dict(padding="valid", stride=(3, 2))),
    ((1, 2, 6, 7), (3, 2, 3, 3), dict(padding=2, padding_mode="reflect")),
    ((1, 2, 6, 7), (3, 2, 3, 3), dict(padding=((2, 1), (0, 3)), stride=2,
                                      padding_mode="replicate")),
    ((2, 2, 6, 5), (2, 2, 3, 2), dict(padding=(1, 4), padding_mode="circular", dilation=2)),
    ((1, 2, 7, 6), (4, 2, 3, 3), dict(padding="same", padding_mode="reflect", stride=2)),
    ((2, 4, 5, 6), (6, 2, 1, 1), dict(groups=2)),                        # 1x1
    ((1, 3, 6, 5), (4, 3, 1, 1), dict(stride=2, padding=(0, 1))),
    ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), dict(padding=(1, 0, 1), stride=(1, 2, 2))),
    ((1, 4, 5, 6, 5), (4, 2, 2, 3, 3), dict(padding="same", groups=2, dilation=(2, 1, 1))),
    ((1, 2, 4, 5, 5), (2, 2, 3, 3, 3), dict(padding=1, padding_mode="circular")),
]


def _ids(cases):
    return [f"{len(xs) - 2}d-{i}" for i, (xs, _, _) in enumerate(cases)]


@pytest.mark.parametrize("xs,ws,kw", CONV_CASES, ids=_ids(CONV_CASES))
def test_conv_backward_matches_reference(xs, ws, kw):
    rng = np.random.default_rng(len(xs) * 100 + xs[-1])
    ndim = len(xs) - 2
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = CONV_FWD[ndim](x, w, **kw)
    g = rng.standard_normal(y.shape)
    expected = ref_conv_backward(g, x, w, **kw)
    for dtype in (np.float64, np.float32):
        got = CONV[ndim](g.astype(dtype), x.astype(dtype), w.astype(dtype), **kw)
        for a, e in zip(got, expected):
            close(a, e, dtype)


CONVT_CASES = [
    ((2, 3, 5), (3, 2, 3), {}),
    ((1, 4, 6), (4, 3, 4), dict(stride=2, padding=1, groups=2)),
    ((1, 2, 5), (2, 3, 3), dict(stride=3, output_padding=2, dilation=2, padding=(1,))),
    ((2, 3, 5, 4), (3, 2, 4, 4), dict(stride=2, padding=1)),
    ((1, 4, 4, 5), (4, 1, 3, 3), dict(stride=2, padding=1, output_padding=1, groups=4)),
    ((1, 2, 4, 4), (2, 3, 3, 2), dict(stride=(2, 3), padding=((0, 2), (1, 0)),
                                      output_padding=(1, 2))),
    ((1, 2, 5, 4), (2, 2, 3, 3), dict(stride=2, padding="same")),
    ((1, 2, 4, 5), (2, 2, 4, 3), dict(stride=2, padding="same_lower", dilation=(1, 2))),
    ((1, 2, 3, 4, 3), (2, 3, 2, 3, 3), dict(stride=(2, 1, 2), padding=(0, 1, 1))),
]


@pytest.mark.parametrize("xs,ws,kw", CONVT_CASES, ids=_ids(CONVT_CASES))
def test_conv_transpose_backward_matches_reference(xs, ws, kw):
    rng = np.random.default_rng(len(xs) * 10 + xs[-1])
    ndim = len(xs) - 2
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = CONVT_FWD[ndim](x, w, **kw)
    g = rng.standard_normal(y.shape)
    expected = ref_conv_transpose_backward(g, x, w, **kw)
    for dtype in (np.float64, np.float32):
        got = CONVT[ndim](g.astype(dtype), x.astype(dtype), w.astype(dtype), **kw)
        for a, e in zip(got, expected):
            close(a, e, dtype)


MAXP = {1: gr.max_pool1d_backward, 2: gr.max_pool2d_backward, 3: gr.max_pool3d_backward}
AVGP = {1: gr.avg_pool1d_backward, 2: gr.avg_pool2d_backward, 3: gr.avg_pool3d_backward}
POOL_CASES = [
    ((2, 3, 9), dict(kernel_size=3)),
    ((2, 3, 10), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 8, 9), dict(kernel_size=2)),
    ((1, 2, 9, 9), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 8, 10), dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True)),
    ((1, 2, 9, 8), dict(kernel_size=3, stride=1, dilation=2, padding=((2, 0), (1, 2)))),
    ((1, 2, 7, 8), dict(kernel_size=3, stride=2, padding="same")),
    ((1, 2, 7, 8), dict(kernel_size=2, stride=3, padding="same_lower", ceil_mode=True)),
    ((1, 2, 5, 6, 7), dict(kernel_size=(2, 3, 3), stride=2, padding=(0, 1, 1))),
]


def _ref_args(kw):
    return (kw["kernel_size"], kw.get("stride"), kw.get("padding", 0), kw.get("dilation", 1),
            kw.get("ceil_mode", False))


@pytest.mark.parametrize("xs,kw", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
def test_max_pool_backward_matches_reference(xs, kw):
    rng = np.random.default_rng(xs[-1])
    ndim = len(xs) - 2
    x = np.round(rng.standard_normal(xs) * 2) / 2  # many ties: the first in window order wins
    y, idx = getattr(fastconv, f"max_pool{ndim}d")(x, **kw, return_indices=True)
    g = rng.standard_normal(y.shape)
    expected = ref_max_pool_backward(g, x, *_ref_args(kw))
    for dtype in (np.float64, np.float32):
        close(MAXP[ndim](g.astype(dtype), x.astype(dtype), **kw), expected, dtype)
    # with the forward's indices, x may be given as its shape
    close(MAXP[ndim](g, xs, **kw, indices=idx), expected)


def test_max_pool_backward_ties_follow_the_index():
    x = np.ones((1, 1, 4, 4))  # every window all ties: the first element takes the gradient
    g = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    gi = gr.max_pool2d_backward(g, x, 2, stride=1)
    expected = np.zeros((4, 4))
    expected[:3, :3] = g[0, 0]
    close(gi[0, 0], expected)


@pytest.mark.parametrize("xs,kw", POOL_CASES, ids=[str(i) for i in range(len(POOL_CASES))])
@pytest.mark.parametrize("cip,div", [(True, None), (False, None), (True, 3)])
def test_avg_pool_backward_matches_reference(xs, kw, cip, div):
    rng = np.random.default_rng(xs[-1] + 1)
    ndim = len(xs) - 2
    args = dict(kw, count_include_pad=cip, divisor_override=div)
    y = getattr(fastconv, f"avg_pool{ndim}d")(np.zeros(xs), **args)
    g = rng.standard_normal(y.shape)
    expected = ref_avg_pool_backward(g, xs, *_ref_args(kw), count_include_pad=cip,
                                     divisor_override=div)
    for dtype in (np.float64, np.float32):
        close(AVGP[ndim](g.astype(dtype), np.zeros(xs, dtype), **args), expected, dtype)
    close(AVGP[ndim](g, xs, **args), expected)  # x as its shape


ADAPTIVE_CASES = [((2, 3, 10), 4), ((1, 2, 9, 7), (4, 3)), ((1, 2, 8, 6), (4, None)),
                  ((1, 2, 5, 3), (7, 4)), ((1, 1, 4, 5, 6), (2, 3, 4))]


@pytest.mark.parametrize("xs,size", ADAPTIVE_CASES, ids=[str(c[0]) for c in ADAPTIVE_CASES])
def test_adaptive_backward_matches_reference(xs, size):
    rng = np.random.default_rng(sum(xs))
    ndim = len(xs) - 2
    x = rng.standard_normal(xs)
    y = getattr(fastconv, f"adaptive_avg_pool{ndim}d")(x, size)
    g = rng.standard_normal(y.shape)
    avg = getattr(gr, f"adaptive_avg_pool{ndim}d_backward")
    mx = getattr(gr, f"adaptive_max_pool{ndim}d_backward")
    for dtype in (np.float64, np.float32):
        close(avg(g.astype(dtype), x.astype(dtype), size),
              ref_adaptive_avg_pool_backward(g, xs, size), dtype)
        close(mx(g.astype(dtype), x.astype(dtype), size),
              ref_adaptive_max_pool_backward(g, x.astype(dtype), size), dtype)
    close(avg(g, xs, size), ref_adaptive_avg_pool_backward(g, xs, size))


# ---------------------------------------------------------------------------------------------
# Finite differences of fastconv's own forwards (float64) and the adjoint identity
# ---------------------------------------------------------------------------------------------
def _numeric_grad(f, a, g, eps=1e-6):
    """d/da of sum(f(a) * g) by central differences, one element at a time (small arrays)."""
    out = np.empty_like(a)
    for i in np.ndindex(*a.shape):
        old = a[i]
        a[i] = old + eps
        up = float(np.sum(f(a) * g))
        a[i] = old - eps
        down = float(np.sum(f(a) * g))
        a[i] = old
        out[i] = (up - down) / (2 * eps)
    return out


@pytest.mark.parametrize("kw", [dict(stride=2, padding=((1, 0), (2, 1)), groups=2),
                                dict(padding=2, padding_mode="reflect", dilation=2),
                                dict(padding="same", padding_mode="circular", stride=2)])
def test_conv2d_backward_finite_differences(kw):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((1, 2, 5, 6)), rng.standard_normal((2, 2 // kw.get(
        "groups", 1), 3, 2)), rng.standard_normal(2)
    y = fastconv.conv2d(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    gx, gw, gb = gr.conv2d_backward(g, x, w, **kw)
    tol = 1e-7
    np.testing.assert_allclose(gx, _numeric_grad(lambda a: fastconv.conv2d(a, w, b, **kw), x, g),
                               atol=tol)
    np.testing.assert_allclose(gw, _numeric_grad(lambda a: fastconv.conv2d(x, a, b, **kw), w, g),
                               atol=tol)
    np.testing.assert_allclose(gb, _numeric_grad(lambda a: fastconv.conv2d(x, w, a, **kw), b, g),
                               atol=tol)


def test_conv_transpose_and_pools_finite_differences():
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 3, 3))
    kw = dict(stride=2, padding=1, output_padding=1)
    y = fastconv.conv_transpose2d(x, w, **kw)
    g = rng.standard_normal(y.shape)
    gx, gw, _ = gr.conv_transpose2d_backward(g, x, w, **kw)
    np.testing.assert_allclose(
        gx, _numeric_grad(lambda a: fastconv.conv_transpose2d(a, w, **kw), x, g), atol=1e-7)
    np.testing.assert_allclose(
        gw, _numeric_grad(lambda a: fastconv.conv_transpose2d(x, a, **kw), w, g), atol=1e-7)
    xp = rng.standard_normal((1, 2, 5, 6))
    for fwd, bwd, kw in ((fastconv.max_pool2d, gr.max_pool2d_backward,
                          dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
                         (fastconv.avg_pool2d, gr.avg_pool2d_backward,
                          dict(kernel_size=3, stride=2, padding=1, count_include_pad=False))):
        y = fwd(xp, **kw)
        g = rng.standard_normal(y.shape)
        numeric = _numeric_grad(lambda a, f=fwd, k=kw: f(a, **k), xp, g)
        np.testing.assert_allclose(bwd(g, xp, **kw), numeric, atol=1e-7)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1), dict(stride=3, dilation=2,
                                                                padding="same", groups=2),
                                dict(padding="full", groups=4)])
def test_adjoint_identity(kw):
    """<conv(x), g> = <x, conv_backward_input(g)> and <conv_transpose(g), x> likewise."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 4, 11, 10)), rng.standard_normal((8, 4 // kw.get(
        "groups", 1), 3, 3))
    y = fastconv.conv2d(x, w, **kw)
    g = rng.standard_normal(y.shape)
    gx, _, _ = gr.conv2d_backward(g, x.shape, w, **kw, needs=("input",))
    lhs, rhs = float(np.vdot(y, g)), float(np.vdot(x, gx))
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0)
    kt = {k: v for k, v in kw.items() if k != "padding" or v != "full"}
    z = fastconv.conv_transpose2d(g, w, **kt)
    h = rng.standard_normal(z.shape)
    gg, _, _ = gr.conv_transpose2d_backward(h, g.shape, w, **kt, needs=("input",))
    assert abs(float(np.vdot(z, h)) - float(np.vdot(g, gg))) <= 1e-10 * max(
        abs(float(np.vdot(z, h))), 1.0)


# ---------------------------------------------------------------------------------------------
# needs=, shapes, unbatched, threads, errors
# ---------------------------------------------------------------------------------------------
def test_needs_and_unbatched_and_threads():
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    y = fastconv.conv2d(x, w, padding=1)
    g = rng.standard_normal(y.shape)
    full = gr.conv2d_backward(g, x, w, padding=1, threads=2)
    ref = ref_conv_backward(g[None], x[None], w, padding=1)
    close(full[0], ref[0][0])
    close(full[1], ref[1])
    close(full[2], ref[2])
    gi, gw, gb = gr.conv2d_backward(g, x.shape, w, padding=1, needs=("input",), threads=1)
    assert gw is None and gb is None
    close(gi, ref[0][0])
    gi, gw, gb = gr.conv2d_backward(g, x, w, padding=1, needs=("weight", "bias"))
    assert gi is None
    close(gw, ref[1])
    gt = gr.conv_transpose2d_backward(np.ones((2, 8, 7)), x, np.ones((3, 2, 2, 2)),
                                      needs=("bias",))
    assert gt[0] is None and gt[1] is None


def test_errors_name_the_argument():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    g = np.ones((1, 3, 3, 3))
    with pytest.raises(ValueError, match="grad_output"):
        gr.conv2d_backward(np.ones((1, 3, 4, 4)), x, w)
    with pytest.raises(ValueError, match="needs"):
        gr.conv2d_backward(g, x, w, needs=("inputs",))
    with pytest.raises(TypeError, match="x must be an array"):
        gr.conv2d_backward(g, x.shape, w)
    with pytest.raises(ValueError, match="input channels"):
        gr.conv2d_backward(g, np.ones((1, 3, 5, 5)), w)
    with pytest.raises(ValueError, match="padding_mode"):
        gr.conv2d_backward(g, x, w, padding_mode="mirror")
    with pytest.raises(ValueError, match="stride"):
        gr.conv2d_backward(g, x, w, stride=0)
    with pytest.raises(ValueError, match="output_padding"):
        gr.conv_transpose2d_backward(np.ones((1, 3, 7, 7)), x, np.ones((2, 3, 3, 3)),
                                     output_padding=1)
    with pytest.raises(ValueError, match="indices"):
        gr.max_pool2d_backward(np.ones((1, 2, 2, 2)), (1, 2, 5, 5), 2,
                               indices=np.full((1, 2, 2, 2), 25))
    with pytest.raises(TypeError, match="indices="):
        gr.max_pool2d_backward(np.ones((1, 2, 2, 2)), (1, 2, 5, 5), 2)
    with pytest.raises(ValueError, match="divisor_override"):
        gr.avg_pool2d_backward(np.ones((1, 2, 2, 2)), x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="grad_output"):
        gr.adaptive_avg_pool2d_backward(np.ones((1, 2, 3, 3)), x, 2)


# ---------------------------------------------------------------------------------------------
# Layer objects
# ---------------------------------------------------------------------------------------------
def test_layers_backward_and_refresh():
    rng = np.random.default_rng(7)
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    layer = fastconv.Conv2d(w, b, stride=2, padding=1)
    x = rng.standard_normal((2, 3, 9, 8))
    y = layer(x)
    g = rng.standard_normal(y.shape)
    for a, e in zip(layer.backward(g, x), gr.conv2d_backward(g, x, w, stride=2, padding=1)):
        close(a, e)
    # an optimiser step in place, then refresh: the layer computes with the new weights
    gx, gw, gb = layer.backward(g, x)
    layer.weight[...] -= 0.1 * gw
    layer.bias[...] -= 0.1 * gb
    layer.refresh()
    close(layer(x), fastconv.conv2d(x, w - 0.1 * gw, b - 0.1 * gb, stride=2, padding=1))

    wt = rng.standard_normal((3, 2, 4, 4))
    tl = fastconv.ConvTranspose2d(wt, stride=2, padding=1)
    xt = rng.standard_normal((1, 3, 4, 5))
    gt = rng.standard_normal(tl(xt).shape)
    for a, e in zip(tl.backward(gt, xt),
                    gr.conv_transpose2d_backward(gt, xt, wt, stride=2, padding=1)):
        close(a, e) if a is not None else None
    tl.weight[...] = 0
    tl.refresh()
    assert not np.any(tl(xt))

    # a channels-last layer takes and gives channels-last arrays
    hwc = fastconv.Conv2d(w, b, stride=2, padding=1, data_format="NHWC")
    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    gl = np.ascontiguousarray(np.moveaxis(g, 1, -1))
    gxl, gwl, gbl = hwc.backward(gl, xl)
    close(np.moveaxis(gxl, -1, 1), gr.conv2d_backward(g, x, w, stride=2, padding=1)[0])
    close(gwl, gr.conv2d_backward(g, x, w, stride=2, padding=1)[1])

    pool = fastconv.MaxPool2d(3, stride=2, padding=1)
    gp = rng.standard_normal(pool(x).shape)
    close(pool.backward(gp, x), gr.max_pool2d_backward(gp, x, 3, stride=2, padding=1))
    apool = fastconv.AdaptiveAvgPool2d((3, 2))
    ga = rng.standard_normal(apool(x).shape)
    close(apool.backward(ga, x), gr.adaptive_avg_pool2d_backward(ga, x, (3, 2)))


# ---------------------------------------------------------------------------------------------
# Optional: PyTorch's autograd on the same calls (skipped without torch)
# ---------------------------------------------------------------------------------------------
def test_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((2, 4, 9, 8)), rng.standard_normal((6, 2, 3, 3)), \
        rng.standard_normal(6)
    for kw in (dict(stride=2, padding=1, groups=2), dict(padding=2, dilation=2, groups=2,
                                                         padding_mode="reflect")):
        mode = kw.pop("padding_mode", "zeros")
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
        if mode == "zeros":
            ty = F.conv2d(tx, tw, tb, **kw)
        else:
            p = kw.pop("padding")
            ty = F.conv2d(F.pad(tx, (p,) * 4, mode=mode), tw, tb, **kw)
            kw["padding"] = p
        g = rng.standard_normal(tuple(ty.shape))
        expected = torch.autograd.grad(ty, (tx, tw, tb), torch.tensor(g))
        got = gr.conv2d_backward(g, x, w, **kw, padding_mode=mode)
        for a, e in zip(got, expected):
            close(a, e.numpy())


# ---------------------------------------------------------------------------------------------
# fastconv demo --learn (the tutorial's example)
# ---------------------------------------------------------------------------------------------
def test_demo_learns_the_edge_kernel(tmp_path, capsys):
    from fastconv import _demo

    kernel = _demo.learn_edge_kernel(echo=lambda *a: None)
    np.testing.assert_allclose(kernel, [[-1.0, 1.0]], atol=0.1)
    pytest.importorskip("PIL")
    out = tmp_path / "learn.png"
    assert _demo.main(["--learn", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "epoch 10, loss" in text and "learned kernel" in text
    assert out.stat().st_size > 0
