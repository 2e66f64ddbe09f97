"""deform_conv2d and DeformConv2d against the float64 reference (tests/reference.py).

A hand-picked covering set (offset groups 1/2/4, groups 1/2, mask on/off, stride, dilation,
every padding form, kernels 1x1/3x3/5x5, odd sizes, batch 1/3, unbatched, offsets pushing samples
outside, fractional and integer offsets) in both dtypes, on every ISA and on 1 and 2 threads;
a random (hypothesis) subset beside it; the exact identities (zero offsets = conv2d's im2col,
integer offsets = a shifted convolution); the layer object; errors; and, when the ``onnx``
package is installed, its DeformConv backend node tests.
"""

import glob
import importlib
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import assert_close, ref_deform_conv2d

import fastconv
from fastconv import _threads
from fastconv import deform as deform_module

DTYPES = (np.float32, np.float64)


@pytest.fixture(autouse=True)
def _threads_as_asked(monkeypatch):
    """Every call runs on the threads it asks for (small problems would otherwise stay on one
    thread), and the functional plan cache must not serve plans made without this."""
    monkeypatch.setattr(_threads, "for_work", lambda allowed, *work: allowed)
    monkeypatch.setattr(deform_module, "_FUNCTION_PLANS", {})


def _case(batch, c_in, c_out, size, kernel, offset_groups=1, groups=1, mask=False, bias=True,
          scale=1.5, **kw):
    return dict(batch=batch, c_in=c_in, c_out=c_out, size=size, kernel=kernel,
                offset_groups=offset_groups, groups=groups, mask=mask, bias=bias, scale=scale,
                kw=kw)


# (id, case); `scale`: the spread of the random offsets (large ones push samples outside)
CASES = {
    "3x3.p1": _case(1, 4, 6, (7, 9), (3, 3), padding=1),
    "3x3.mask.og2": _case(3, 4, 5, (6, 5), (3, 3), offset_groups=2, mask=True, padding=1),
    "3x3.og4.g2.s2": _case(1, 8, 6, (9, 11), (3, 3), offset_groups=4, groups=2, stride=2,
                           padding="same"),
    "3x3.d2.same_lower": _case(1, 3, 4, (9, 8), (3, 3), dilation=2, padding="same_lower",
                               mask=True),
    "5x5.pairs.outside": _case(1, 2, 3, (7, 6), (5, 5), padding=((1, 3), (2, 0)), scale=6.0),
    "1x1.og2": _case(3, 6, 4, (5, 7), (1, 1), offset_groups=2, mask=True),
    "1x1.s2.frac": _case(1, 3, 5, (9, 9), (1, 1), stride=2, scale=0.4),
    "3x5.valid.per_dim": _case(1, 4, 4, (11, 13), (3, 5), padding=(1, 2), stride=(2, 1),
                               dilation=(1, 2), groups=2, offset_groups=2),
    "3x3.full.og4": _case(1, 8, 3, (5, 6), (3, 3), padding="full", offset_groups=4, mask=True,
                          bias=False),
    "3x3.wide": _case(1, 5, 37, (6, 41), (3, 3), padding=1, mask=True),  # several NR panels
    "3x3.unbatched": _case(None, 4, 4, (8, 7), (3, 3), padding=1, offset_groups=2),
    "3x3.tiny_input": _case(1, 2, 2, (1, 2), (3, 3), padding=1, scale=2.0),
}


def _data(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    lead = () if case["batch"] is None else (case["batch"],)
    kh, kw = case["kernel"]
    x = rng.standard_normal(lead + (case["c_in"],) + case["size"]).astype(dtype)
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"], kh, kw)).astype(dtype)
    b = rng.standard_normal(case["c_out"]).astype(dtype) if case["bias"] else None
    out = fastconv.shapes.conv_output_size(case["size"], (kh, kw), case["kw"].get("stride", 1),
                                           case["kw"].get("padding", 0),
                                           case["kw"].get("dilation", 1))
    g = case["offset_groups"]
    offset = (case["scale"] * rng.standard_normal(lead + (2 * g * kh * kw,) + out)).astype(dtype)
    mask = rng.uniform(0, 1, lead + (g * kh * kw,) + out).astype(dtype) if case["mask"] else None
    return x, offset, w, b, mask


def _reference(x, offset, w, b, mask, unbatched, **kw):
    if unbatched:
        x, offset = x[None], offset[None]
        mask = None if mask is None else mask[None]
    y = ref_deform_conv2d(x, offset, w, b, mask=mask, **kw)
    return y[0] if unbatched else y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(CASES))
def test_against_reference(name, dtype):
    case = CASES[name]
    x, offset, w, b, mask = _data(case, dtype)
    kw = dict(case["kw"], groups=case["groups"])
    expected = _reference(x, offset, w, b, mask, case["batch"] is None, **kw)
    assert_close(fastconv.deform_conv2d(x, offset, w, b, mask=mask, **kw), expected, dtype)
    layer = fastconv.DeformConv2d(w, b, **kw)
    assert_close(layer(x, offset, mask), expected, dtype)


# every ISA x 1 and 2 threads x both dtypes, on the cases that reach the most code paths
@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ("3x3.mask.og2", "3x3.og4.g2.s2", "5x5.pairs.outside",
                                  "3x3.wide"))
def test_isa_and_threads(isa, name, dtype, threads):
    case = CASES[name]
    x, offset, w, b, mask = _data(case, dtype, seed=1)
    kw = dict(case["kw"], groups=case["groups"])
    y = fastconv.deform_conv2d(x, offset, w, b, mask=mask, threads=threads, **kw)
    assert_close(y, _reference(x, offset, w, b, mask, False, **kw), dtype)


@pytest.mark.parametrize("threads", (1, 2))
def test_large_layer_threads_agree(isa, threads):
    """A layer with several GEMM blocks (K > KC, N > one panel per thread): batch 1, so two
    threads split the GEMM; float64 to the reference, float32 bitwise across thread counts."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 48, 13, 12))
    w = rng.standard_normal((20, 48, 3, 3))
    offset = 2 * rng.standard_normal((1, 2 * 2 * 9, 13, 12))
    mask = rng.uniform(size=(1, 2 * 9, 13, 12))
    y = fastconv.deform_conv2d(x, offset, w, padding=1, mask=mask, threads=threads)
    assert_close(y, ref_deform_conv2d(x, offset, w, padding=1, mask=mask), np.float64)
    f = [fastconv.deform_conv2d(*(a.astype(np.float32) for a in (x, offset, w)), padding=1,
                                mask=mask.astype(np.float32), threads=t) for t in (1, threads)]
    np.testing.assert_array_equal(f[0], f[1])


@settings(max_examples=25)
@given(data=st.data())
def test_random_against_reference(data):
    draw = data.draw
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    og = draw(st.sampled_from((1, 2, 4)))
    groups = draw(st.sampled_from((1, 2)))
    c_in = og * groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from((0, 1, (1, 2), ((0, 2), (1, 0)), "valid", "same",
                                    "same_lower", "full")))
    size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
    batch = draw(st.sampled_from((1, 3)))
    dtype = draw(st.sampled_from(DTYPES))
    try:
        out = fastconv.shapes.conv_output_size(size, (kh, kw), stride, padding, dilation)
    except ValueError:
        return  # kernel larger than the padded input
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal((batch, c_in, *size)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, kh, kw)).astype(dtype)
    scale = draw(st.sampled_from((0.0, 0.5, 3.0)))
    offset = scale * rng.standard_normal((batch, 2 * og * kh * kw, *out))
    if draw(st.booleans()):
        offset = np.round(offset)  # integer offsets
    offset = offset.astype(dtype)
    mask = rng.uniform(size=(batch, og * kh * kw, *out)).astype(dtype) if draw(st.booleans()) \
        else None
    kw_ = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert_close(fastconv.deform_conv2d(x, offset, w, mask=mask, threads=draw(st.sampled_from(
        (1, 2))), **kw_), ref_deform_conv2d(x, offset, w, mask=mask, **kw_), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, padding="same", groups=2),
                                dict(dilation=2, padding=((2, 1), (0, 3))),
                                dict(padding="full")])
def test_zero_offsets_are_conv2d_exactly(isa, dtype, kw):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 11, 10)).astype(dtype)
    w = rng.standard_normal((8, 6 // kw.get("groups", 1), 3, 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    expected = fastconv.conv2d(x, w, b, algorithm="im2col", **kw)
    offset = np.zeros((2, 2 * 3 * 9, *expected.shape[2:]), dtype)  # 3 offset groups
    np.testing.assert_array_equal(fastconv.deform_conv2d(x, offset, w, b, **kw), expected)
    mask = np.ones((2, 3 * 9, *expected.shape[2:]), dtype)
    np.testing.assert_array_equal(fastconv.deform_conv2d(x, offset, w, b, mask=mask, **kw),
                                  expected)


@pytest.mark.parametrize("shift", [(1, 0), (0, -2), (-1, 3), (9, 0)])
def test_integer_offsets_are_a_shifted_convolution(isa, shift):
    """The same integer offset for every tap: conv2d (no padding) of the zero-padded input
    shifted by it, exactly."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 9, 8))
    w = rng.standard_normal((5, 4, 3, 3))
    dy, dx = shift
    offset = np.zeros((1, 2 * 9, 9, 8))
    offset[:, 0::2], offset[:, 1::2] = dy, dx
    m = 12  # shifted[h, w] = x[h - 1 + dy, w - 1 + dx] (zero outside), h < H + 2, w < W + 2
    xp = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)))
    shifted = xp[:, :, m - 1 + dy:m + 10 + dy, m - 1 + dx:m + 9 + dx]
    np.testing.assert_array_equal(fastconv.deform_conv2d(x, offset, w, padding=1),
                                  fastconv.conv2d(shifted, w, algorithm="im2col"))


def test_sampling_rule_at_the_border():
    """torchvision's rule: h <= -1 or h >= H reads zero; -1 < h < 0 takes the inside corner."""
    x = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)  # [[1, 2, 3], [4, 5, 6]]
    w = np.ones((1, 1, 1, 1))
    for dy, expected in ((-1.0, 0.0), (-0.5, 0.5), (1.5, 2.0), (2.0, 0.0), (np.nan, 0.0)):
        offset = np.zeros((1, 2, 2, 3))
        offset[:, 0] = dy
        assert fastconv.deform_conv2d(x, offset, w)[0, 0, 0, 0] == expected, dy


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_outside_the_input_stays_out(isa, dtype):
    """A corner outside the input is never read, so a NaN the clamped index points at does not
    leak; a NaN at an inside corner with weight 0 does (0 * NaN), as in torchvision."""
    x = np.ones((1, 1, 3, 3), dtype)
    x[0, 0, 0, 0] = np.nan
    offset = np.zeros((1, 2, 3, 3), dtype)
    offset[:, 0] = -0.5  # row -0.5 for output row 0: the upper corners are outside
    y = fastconv.deform_conv2d(x, offset, np.ones((1, 1, 1, 1), dtype))
    assert_close(y, ref_deform_conv2d(x, offset, np.ones((1, 1, 1, 1))), dtype)
    assert np.isnan(y[0, 0, 1, 0]) and np.isfinite(y[0, 0, 0, 1])
    # a corner left of column 0 sits, in memory, at the end of the row above
    x[0, 0, 0, 0], x[0, 0, 0, 2] = 1, np.nan
    offset[:, 0], offset[:, 1] = 0, -0.5
    y = fastconv.deform_conv2d(x, offset, np.ones((1, 1, 1, 1), dtype))
    assert_close(y, ref_deform_conv2d(x, offset, np.ones((1, 1, 1, 1))), dtype)
    assert np.isfinite(y[0, 0, 1, 0])


def test_dtypes_and_promotion():
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((1, 2, 1, 1), np.float32)
    off = np.zeros((1, 2, 4, 4), np.float32)
    assert fastconv.deform_conv2d(x, off, w).dtype == np.float32
    assert fastconv.deform_conv2d(x.astype(np.float16), off, w).dtype == np.float32
    assert fastconv.deform_conv2d(x, off.astype(np.float64), w).dtype == np.float64
    assert fastconv.deform_conv2d(x.astype(np.int64), off, w).dtype == np.float64
    y = fastconv.deform_conv2d(x[:, :, ::-1], off, w, mask=np.ones((1, 1, 4, 4), np.uint8))
    assert y.dtype == np.float32 and float(y[0, 0, 0, 0]) == 2.0


def test_empty_batch_unbatched_and_out():
    w = np.ones((3, 2, 3, 3))
    y = fastconv.deform_conv2d(np.ones((0, 2, 5, 5)), np.zeros((0, 18, 3, 3)), w)
    assert y.shape == (0, 3, 3, 3)
    x = np.random.default_rng(0).standard_normal((2, 5, 5))
    off = np.full((18, 5, 5), 0.3)
    out = np.empty((3, 5, 5))
    y = fastconv.deform_conv2d(x, off, w, padding=1, out=out)
    assert y is out
    assert_close(y, ref_deform_conv2d(x[None], off[None], w, padding=1)[0], np.float64)
    layer = fastconv.DeformConv2d(w, padding=1)
    np.testing.assert_array_equal(layer(x, off), y)
    out2 = np.empty((3, 5, 5))
    assert layer(x, off, out=out2) is out2


def test_layer_copies_weights():
    w = np.ones((2, 1, 1, 1))
    layer = fastconv.DeformConv2d(w, np.zeros(2))
    w[:] = 5
    x = np.ones((1, 1, 2, 2))
    np.testing.assert_array_equal(layer(x, np.zeros((1, 2, 2, 2))), np.ones((1, 2, 2, 2)))
    assert not layer.weight.flags.writeable
    assert "DeformConv2d" in repr(layer)


@pytest.mark.parametrize("args, kwargs, error, words", [
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 17, 3, 3)), np.ones((2, 4, 3, 3))), {}, ValueError,
     ("offset", "(1, 17, 3, 3)")),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 4, 3)), np.ones((2, 4, 3, 3))), {}, ValueError,
     ("offset", "(1, 18, 4, 3)")),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 54, 3, 3)), np.ones((2, 4, 3, 3))), {}, ValueError,
     ("offset_groups = 3", "C_in = 4")),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 3, 3)), np.ones((2, 4, 3, 3))),
     dict(mask=np.ones((1, 18, 3, 3))), ValueError, ("mask", "(1, 9, 3, 3)")),
    ((np.ones((1, 4, 5, 5)), np.zeros((18, 3, 3)), np.ones((2, 4, 3, 3))), {}, ValueError,
     ("offset", "(18, 3, 3)")),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 3, 3)), np.ones((2, 3, 3, 3))), {}, ValueError,
     ("input channels",)),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 3, 3)), np.ones((2, 4, 3, 3))),
     dict(padding=-1), ValueError, ("padding",)),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 3, 3)), np.ones((2, 4, 3, 3))),
     dict(stride=0), ValueError, ("stride", "0")),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 3, 3), complex), np.ones((2, 4, 3, 3))), {},
     TypeError, ("offset", "complex")),
    ((np.ones((1, 4, 5, 5)), None, np.ones((2, 4, 3, 3))), {}, TypeError, ("offset", "None")),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 3, 3)), np.ones((2, 4, 3, 3))),
     dict(out=np.empty((1, 2, 3, 4))), ValueError, ("out", "(1, 2, 3, 3)")),
    ((np.ones((1, 4, 5, 5)), np.zeros((1, 18, 3, 3)), np.ones((2, 4, 3, 3))),
     dict(threads=0), ValueError, ("threads",)),
])
def test_errors_name_the_argument(args, kwargs, error, words):
    with pytest.raises(error) as info:
        fastconv.deform_conv2d(*args, **kwargs)
    for word in words:
        assert word in str(info.value), str(info.value)


# ---- onnx's DeformConv backend node tests, when the onnx package is installed ----
def _onnx_cases():
    """(name, node, data sets) of onnx's DeformConv node tests: the ones its test-case
    generator makes (``onnx.backend.test.case.node``; wheels ship no data files), or the
    ``test_deform_conv*`` data directories where an onnx checkout has them."""
    try:
        import onnx
    except ImportError:
        return [pytest.param(None, marks=pytest.mark.skip(reason="onnx is not installed"))]
    cases = []
    try:
        # only the DeformConv module (collect_testcases would run every operator's: ~10 s)
        from onnx.backend.test.case import node as node_cases

        node_cases._TargetOpType = "DeformConv"
        importlib.import_module("onnx.backend.test.case.node.deformconv")
        for case in node_cases._NodeTestCases:
            if case.model is not None and case.model.graph.node[0].op_type == "DeformConv":
                cases.append((case.name, case.model, list(case.data_sets)))
    except Exception:  # noqa: BLE001 - the generator is internal to onnx; fall back to data
        pass
    if not cases:
        from onnx import numpy_helper

        root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
        for path in sorted(glob.glob(os.path.join(root, "test_deform_conv*"))):
            sets = []
            for data_set in sorted(glob.glob(os.path.join(path, "test_data_set_*"))):
                load = [numpy_helper.to_array(onnx.load_tensor(p))
                        for p in sorted(glob.glob(os.path.join(data_set, "*put_*.pb")))]
                n_in = len(glob.glob(os.path.join(data_set, "input_*.pb")))
                sets.append((load[:n_in], load[n_in:]))
            cases.append((os.path.basename(path), onnx.load(os.path.join(path, "model.onnx")),
                          sets))
    if not cases:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason=f"onnx {onnx.__version__} has no DeformConv node tests"))]
    return [pytest.param(case, id=case[0]) for case in cases]


def _onnx_attr(node, name, default):
    import onnx

    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


@pytest.mark.parametrize("case", _onnx_cases())
def test_onnx_backend_node_tests(case):
    _, model, data_sets = case
    node = model.graph.node[0]
    assert data_sets
    for inputs, outputs in data_sets:
        names = list(node.input)
        by_name = dict(zip([n for n in names if n], inputs))
        x, w, offset = by_name[names[0]], by_name[names[1]], by_name[names[2]]
        bias = by_name.get(names[3]) if len(names) > 3 and names[3] else None
        mask = by_name.get(names[4]) if len(names) > 4 and names[4] else None
        kh, kw_ = w.shape[2:]
        pads = _onnx_attr(node, "pads", [0, 0, 0, 0])
        kw = dict(stride=tuple(_onnx_attr(node, "strides", [1, 1])),
                  dilation=tuple(_onnx_attr(node, "dilations", [1, 1])),
                  padding=((pads[0], pads[2]), (pads[1], pads[3])),
                  groups=_onnx_attr(node, "group", 1))
        assert list(_onnx_attr(node, "kernel_shape", [kh, kw_])) == [kh, kw_]
        assert offset.shape[1] == 2 * _onnx_attr(node, "offset_group", 1) * kh * kw_
        y = fastconv.deform_conv2d(x, offset, w, bias, mask=mask, **kw)
        assert y.dtype == outputs[0].dtype
        assert_close(y, outputs[0].astype(np.float64), y.dtype)


def test_onnx_load_runs_deformconv_on_fastconv():
    """fastconv.onnx.load runs a DeformConv node on DeformConv2d (not onnx.reference)."""
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    x = rng.standard_normal((1, 4, 7, 8)).astype(np.float32)
    offset = rng.standard_normal((1, 2 * 2 * 9, 4, 4)).astype(np.float32)
    mask = rng.uniform(size=(1, 2 * 9, 4, 4)).astype(np.float32)
    node = helper.make_node("DeformConv", ["x", "w", "offset", "b", "mask"], ["y"],
                            kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1], group=2,
                            offset_group=2)
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        [node], "deform", [helper.make_tensor_value_info("x", f, list(x.shape)),
                           helper.make_tensor_value_info("offset", f, list(offset.shape)),
                           helper.make_tensor_value_info("mask", f, list(mask.shape))],
        [helper.make_tensor_value_info("y", f, [1, 6, 4, 4])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = fastconv.onnx.load(helper.make_model(graph, opset_imports=[
        helper.make_opsetid("", 19)]))
    y = model.run(None, {"x": x, "offset": offset, "mask": mask})[0]
    expected = fastconv.deform_conv2d(x, offset, w, b, stride=2, padding=((1, 1), (0, 1)),
                                      groups=2, mask=mask)
    np.testing.assert_array_equal(y, expected)
    assert "fastconv" in model.summary()
