"""deform_conv2d_backward (fastconv.gradients) and DeformConv2d.backward: every gradient against
central differences of the float64 reference forward (tests/reference.py's ref_deform_conv2d),
the adjoint identity in x, linearity in weight and mask, torchvision's convention at integer
positions, needs subsets, unbatched input, the layer object, and errors."""

import numpy as np
import pytest
from reference import ref_deform_conv2d

import fastconv
from fastconv import gradients as gr

TOL = {np.float64: 1e-10, np.float32: 1e-5}
NAMES = ("input", "offset", "weight", "bias", "mask")


def rel_err(actual, expected):
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected))) / scale


def make_case(rng, n, c_in, c_out, size, kernel, groups, n_off, stride, padding, dilation,
              use_mask, dtype=np.float64):
    """Inputs whose sample positions all have fractional parts in [0.1, 0.9] (so the forward is
    smooth there), some reaching outside the input."""
    x = rng.standard_normal((n, c_in, *size))
    w = rng.standard_normal((c_out, c_in // groups, *kernel))
    y0 = fastconv.conv2d(x, w, None, stride, padding, dilation, groups)
    out = y0.shape[2:]
    taps = kernel[0] * kernel[1]
    offset = (rng.integers(-2, 3, (n, 2 * n_off * taps, *out))
              + rng.uniform(0.1, 0.9, (n, 2 * n_off * taps, *out)))
    mask = rng.uniform(0.2, 1.5, (n, n_off * taps, *out)) if use_mask else None
    g = rng.standard_normal((n, c_out, *out))
    return tuple(None if a is None else a.astype(dtype) for a in (x, offset, w, mask, g))


# (n, c_in, c_out, (H, W), kernel, groups, offset groups, stride, padding, dilation, mask)
CASES = [
    (1, 2, 3, (5, 6), (3, 3), 1, 1, 1, 1, 1, False),
    (2, 4, 4, (5, 5), (3, 3), 2, 2, 1, 0, 1, True),
    (1, 4, 2, (7, 6), (2, 3), 1, 2, 2, 1, 2, True),
    (2, 2, 4, (6, 6), (3, 2), 2, 1, (2, 1), (1, 2), 1, False),
    (1, 2, 2, (5, 5), (3, 3), 1, 1, 1, "same", 2, True),
    (2, 4, 2, (4, 5), (1, 1), 2, 2, 2, 0, 1, True),
]


def loss(x, offset, w, mask, g, kw):
    return float(np.sum(ref_deform_conv2d(x, offset, w, None, mask=mask, **kw) * g))


@pytest.mark.parametrize("case", CASES)
def test_against_differences_of_the_reference(case):
    n, c_in, c_out, size, kernel, groups, n_off, stride, padding, dilation, use_mask = case
    rng = np.random.default_rng(CASES.index(case))
    x, offset, w, mask, g = make_case(rng, n, c_in, c_out, size, kernel, groups, n_off, stride,
                                      padding, dilation, use_mask)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    gx, goff, gw, gb, gm = gr.deform_conv2d_backward(g, x, offset, w, mask=mask, **kw)
    assert gx.shape == x.shape and goff.shape == offset.shape and gw.shape == w.shape
    assert gb.shape == (c_out,) and (gm is None) == (mask is None)
    assert all(a.dtype == np.float64 for a in (gx, goff, gw, gb))
    # the loss is bilinear in each sample position and linear in x, w, mask: along a direction
    # it is a quadratic, and the central difference is exact (up to rounding)
    eps = 1e-3
    args = {"x": x, "offset": offset, "w": w, "mask": mask}
    grads = {"x": gx, "offset": goff, "w": gw, "mask": gm}
    for name in ("x", "offset", "w", "mask"):
        if args[name] is None:
            continue
        for _ in range(2):
            v = rng.uniform(-1, 1, args[name].shape)
            plus = dict(args, **{name: args[name] + eps * v})
            minus = dict(args, **{name: args[name] - eps * v})
            fd = (loss(plus["x"], plus["offset"], plus["w"], plus["mask"], g, kw)
                  - loss(minus["x"], minus["offset"], minus["w"], minus["mask"], g, kw)) / (2 * eps)
            an = float(np.sum(grads[name] * v))
            scale = max(abs(fd), float(np.sum(np.abs(grads[name] * v))))
            assert abs(fd - an) <= 1e-8 * scale, (name, fd, an)
    np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_offset_gradient_elementwise_small():
    rng = np.random.default_rng(3)
    x, offset, w, mask, g = make_case(rng, 1, 2, 1, (4, 4), (2, 2), 1, 2, 1, 0, 1, True)
    kw = dict(stride=1, padding=0, dilation=1, groups=1)
    _, goff, _, _, gm = gr.deform_conv2d_backward(g, x, offset, w, mask=mask, **kw)
    eps = 1e-4
    fd = np.empty(offset.size)
    for i in range(offset.size):
        d = np.zeros(offset.size)
        d[i] = eps
        d = d.reshape(offset.shape)
        fd[i] = (loss(x, offset + d, w, mask, g, kw)
                 - loss(x, offset - d, w, mask, g, kw)) / (2 * eps)
    assert rel_err(goff.reshape(-1), fd) < 1e-8
    fdm = np.empty(mask.size)
    for i in range(mask.size):
        d = np.zeros(mask.size)
        d[i] = eps
        d = d.reshape(mask.shape)
        fdm[i] = (loss(x, offset, w, mask + d, g, kw)
                  - loss(x, offset, w, mask - d, g, kw)) / (2 * eps)
    assert rel_err(gm.reshape(-1), fdm) < 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES[1:5])
def test_adjoint_and_linearity(case, dtype):
    """<y(x), g> = <x, grad_input>, <y(w), g> = <w, grad_weight>, <y(mask), g> = <mask,
    grad_mask> (the forward, fastconv's own, is linear in each), offsets including integers."""
    n, c_in, c_out, size, kernel, groups, n_off, stride, padding, dilation, use_mask = case
    rng = np.random.default_rng(7)
    x, offset, w, mask, g = make_case(rng, n, c_in, c_out, size, kernel, groups, n_off, stride,
                                      padding, dilation, use_mask, dtype)
    offset[..., ::2] = np.round(offset[..., ::2])   # exact integer positions too
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    gx, goff, gw, gb, gm = gr.deform_conv2d_backward(g, x, offset, w, mask=mask, **kw)
    for a in (gx, goff, gw, gb) + ((gm,) if mask is not None else ()):
        assert a.dtype == dtype
    f64 = [None if a is None else a.astype(np.float64) for a in (x, offset, w, mask, g)]
    y = fastconv.deform_conv2d(f64[0], f64[1], f64[2], mask=f64[3], **kw)
    lhs = float(np.sum(y * f64[4]))
    tol = TOL[dtype] * 10 if dtype == np.float32 else 1e-10
    scale = float(np.sum(np.abs(y * f64[4])))
    assert abs(lhs - float(np.sum(f64[0] * gx))) <= tol * scale
    assert abs(lhs - float(np.sum(f64[2] * gw))) <= tol * scale
    if mask is not None:
        assert abs(lhs - float(np.sum(f64[3] * gm))) <= tol * scale
    # float32 against float64 on the same (float32-representable) data
    ref = gr.deform_conv2d_backward(f64[4], f64[0], f64[1], f64[2], mask=f64[3], **kw)
    for a, r in zip((gx, goff, gw, gb, gm), ref):
        if r is not None:
            assert rel_err(a, r) <= TOL[dtype]


def test_integer_position_convention():
    """torchvision: at an integer position the derivative uses the floor corner and the next
    one (a one-sided difference), and a corner outside the input reads zero."""
    x = np.array([[[[0.0, 2.0, 6.0]]]])
    offset = np.zeros((1, 2, 1, 3))
    gx, goff, gw, gb, gm = gr.deform_conv2d_backward(np.ones((1, 1, 1, 3)), x, offset,
                                                     np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(goff[0, 1, 0], [2.0, 4.0, -6.0])
    np.testing.assert_array_equal(goff[0, 0, 0], [0.0, -2.0, -6.0])  # rows below read zero
    np.testing.assert_array_equal(gx, np.ones((1, 1, 1, 3)))
    # h <= -1 or h >= H: no sample and no gradient
    offset[0, 0] = [-1.0, 1.0, 0.5]
    gx, goff, *_ = gr.deform_conv2d_backward(np.ones((1, 1, 1, 3)), x, offset,
                                             np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(gx[0, 0, 0], [0.0, 0.0, 0.5])
    np.testing.assert_array_equal(goff[0, :, 0, :2], 0.0)


def test_needs_unbatched_shape_and_layer():
    rng = np.random.default_rng(11)
    x, offset, w, mask, g = make_case(rng, 1, 4, 2, (5, 5), (3, 3), 2, 2, 1, 1, 1, True)
    kw = dict(stride=1, padding=1, dilation=1, groups=2)
    full = gr.deform_conv2d_backward(g, x, offset, w, mask=mask, **kw)
    for needs in (("input",), ("offset", "mask"), ("weight", "bias"), "offset"):
        part = gr.deform_conv2d_backward(g, x, offset, w, mask=mask, needs=needs, **kw)
        names = (needs,) if isinstance(needs, str) else needs
        for name, a, b in zip(NAMES, part, full):
            if name in names:
                np.testing.assert_array_equal(a, b)
            else:
                assert a is None
    assert gr.deform_conv2d_backward(g, x, offset, w, **kw)[4] is None
    un = gr.deform_conv2d_backward(g[0], x[0], offset[0], w, mask=mask[0], **kw)
    for a, b, name in zip(un, full, NAMES):
        np.testing.assert_array_equal(a, b if name in ("weight", "bias") else b[0])
    gx = gr.deform_conv2d_backward(g, x.shape, offset, w, mask=mask, needs=("input",), **kw)[0]
    np.testing.assert_array_equal(gx, full[0])
    layer = fastconv.DeformConv2d(w, None, 1, 1, 1, 2)
    got = layer.backward(g, x, offset, mask)
    assert got[3] is None
    for a, b in zip(got[:3] + got[4:], full[:3] + full[4:]):
        np.testing.assert_array_equal(a, b)
    assert fastconv.deform_conv2d_backward is gr.deform_conv2d_backward


def test_empty_batch():
    w = np.ones((2, 1, 3, 3))
    gx, goff, gw, gb, gm = gr.deform_conv2d_backward(
        np.ones((0, 2, 3, 3)), np.ones((0, 1, 5, 5)), np.ones((0, 18, 3, 3)), w,
        mask=np.ones((0, 9, 3, 3)))
    assert gx.shape == (0, 1, 5, 5) and goff.shape == (0, 18, 3, 3) and gm.shape == (0, 9, 3, 3)
    np.testing.assert_array_equal(gw, 0.0)
    np.testing.assert_array_equal(gb, 0.0)


def test_errors_name_the_argument():
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    off, g = np.zeros((1, 18, 3, 3)), np.ones((1, 3, 3, 3))
    with pytest.raises(ValueError, match="needs"):
        gr.deform_conv2d_backward(g, x, off, w, needs=("grad",))
    with pytest.raises(TypeError, match="needs"):
        gr.deform_conv2d_backward(g, x, off, w, needs=3)
    with pytest.raises(ValueError, match="offset"):
        gr.deform_conv2d_backward(g, x, np.zeros((1, 17, 3, 3)), w)
    with pytest.raises(ValueError, match="mask"):
        gr.deform_conv2d_backward(g, x, off, w, mask=np.ones((1, 8, 3, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        gr.deform_conv2d_backward(np.ones((1, 3, 4, 3)), x, off, w)
    with pytest.raises(ValueError, match="grad_output"):
        gr.deform_conv2d_backward(np.ones((3, 3, 3)), x, off, w)
    with pytest.raises(TypeError, match="x must be an array"):
        gr.deform_conv2d_backward(g, x.shape, off, w, needs=("offset",))
    with pytest.raises(ValueError, match="stride"):
        gr.deform_conv2d_backward(g, x, off, w, stride=0)


def test_against_torch_if_available():
    torch = pytest.importorskip("torch")
    try:
        from torchvision.ops import deform_conv2d
        deform_conv2d(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 1, 1))
    except Exception as exc:  # torchvision absent, or its compiled ops cannot load
        pytest.skip(f"torchvision.ops.deform_conv2d unavailable: {exc}")
    rng = np.random.default_rng(5)
    x, offset, w, mask, g = make_case(rng, 2, 4, 4, (5, 5), (3, 3), 2, 2, 1, 1, 1, True)
    offset[..., ::3] = np.round(offset[..., ::3])
    ts = [torch.tensor(a, requires_grad=True) for a in (x, offset, w, mask)]
    b = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    y = deform_conv2d(ts[0], ts[1], ts[2], b, padding=1, mask=ts[3])
    (y * torch.tensor(g)).sum().backward()
    got = gr.deform_conv2d_backward(g, x, offset, w, padding=1, groups=2, mask=mask)
    for a, t in zip(got, (ts[0], ts[1], ts[2], b, ts[3])):
        assert rel_err(a, t.grad.numpy()) < 1e-10
