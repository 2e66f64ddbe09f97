"""fastconv.onnx: small graphs built with onnx.helper, checked against onnx.reference (and
onnxruntime when it is installed). No torch here."""

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import fastconv.onnx  # noqa: E402

try:
    import onnxruntime
except ImportError:  # optional peer
    onnxruntime = None

RNG = np.random.default_rng(0)


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def rand(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def make(nodes, inputs, outputs, inits=None, opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [numpy_helper.from_array(np.asarray(v), k)
                               for k, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check(proto, feeds, tol=1e-4, **load_kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = fastconv.onnx.load(proto, **load_kwargs)
    ours = model.run(None, feeds)
    ref = ReferenceEvaluator(proto).run(None, feeds)
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == np.asarray(b).shape
        assert rel_err(a, b) <= tol, rel_err(a, b)
    if onnxruntime is not None:
        sess = onnxruntime.InferenceSession(proto.SerializeToString(),
                                            providers=["CPUExecutionProvider"])
        for a, b in zip(ours, sess.run(None, feeds)):
            assert rel_err(a, b) <= tol
    again = model.run(None, feeds)  # the cached plan
    for a, b in zip(ours, again):
        np.testing.assert_array_equal(a, b)
    return model


def conv_bn_graph(act_nodes, extra_inits=None, residual=False, transpose=False):
    c = 4
    w = rand(c, c, 3, 3, scale=0.3)
    inits = {"w": w, "b": rand(c), "s": rand(c) + 2, "beta": rand(c),
             "mean": rand(c), "var": np.abs(rand(c)) + 0.5, **(extra_inits or {})}
    op = "ConvTranspose" if transpose else "Conv"
    nodes = [helper.make_node(op, ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("BatchNormalization", ["c", "s", "beta", "mean", "var"], ["bn"],
                              epsilon=1e-3)]
    last = "bn"
    if residual:
        nodes.append(helper.make_node("Add", ["x", last], ["res"]))
        last = "res"
    for i, (op_type, extra, attrs) in enumerate(act_nodes):
        out = f"a{i}"
        nodes.append(helper.make_node(op_type, [last, *extra], [out], **attrs))
        last = out
    nodes.append(helper.make_node("Identity", [last], ["y"]))
    return make(nodes, [vi("x", ["N", c, 6, 6])], [vi("y", ["N", c, 6, 6])], inits)


ACTS = [
    [],
    [("Relu", [], {})],
    [("Clip", ["lo", "hi"], {})],
    [("LeakyRelu", [], {"alpha": 0.1})],
    [("Sigmoid", [], {})],
    [("HardSigmoid", [], {"alpha": 0.3, "beta": 0.4})],
    [("HardSwish", [], {})],
    [("Tanh", [], {})],
]


@pytest.mark.parametrize("acts", ACTS, ids=lambda a: "+".join(x[0] for x in a) or "none")
@pytest.mark.parametrize("residual", [False, True])
def test_conv_bn_activation_fusion(acts, residual):
    proto = conv_bn_graph(acts, {"lo": np.float32(0), "hi": np.float32(6)}, residual)
    model = check(proto, {"x": rand(2, 4, 6, 6)})
    (conv,) = [n for n in model._nodes if n.op == "Conv"]
    assert "BatchNormalization" in conv.fused
    assert len(model._nodes) == 2  # conv (everything fused) + Identity
    assert ("Add" in conv.fused) == residual


def test_conv_transpose_bn_fusion():
    proto = conv_bn_graph([("Relu", [], {})], transpose=True)
    model = check(proto, {"x": rand(1, 4, 6, 6)})
    assert model._nodes[0].label == "ConvTranspose+BatchNormalization+Relu"


def test_silu_pattern_and_relu_after_add():
    w = rand(3, 3, 1, 1)
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),
             helper.make_node("Sigmoid", ["c"], ["s"]),
             helper.make_node("Mul", ["s", "c"], ["m"]),
             helper.make_node("Conv", ["m", "w"], ["c2"]),
             helper.make_node("Add", ["c2", "x"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    proto = make(nodes, [vi("x", [1, 3, 5, 5])], [vi("y", [1, 3, 5, 5])], {"w": w})
    model = check(proto, {"x": rand(1, 3, 5, 5)})
    assert [n.label for n in model._nodes] == ["Conv+SiLU", "Conv+Add+Relu"]


def test_residual_add_of_a_later_branch():
    # the Add's other operand is computed after the first conv: the fused node must wait
    w = rand(2, 2, 3, 3)
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["x", "w"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("Add", ["a", "br"], ["y"])]
    check(make(nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 2, 4, 4])], {"w": w}),
          {"x": rand(1, 2, 4, 4)})


def test_shape_chain_folds_and_symbolic_batch():
    # torch.onnx.export's flatten: Shape -> Gather -> Unsqueeze -> Concat -> Reshape
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
             helper.make_node("Shape", ["g"], ["sh"]),
             helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["g", "shape"], ["flat"]),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], transB=1)]
    inits = {"zero": np.array(0, np.int64), "ax0": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "fc_w": rand(5, 8), "fc_b": rand(5)}
    proto = make(nodes, [vi("x", ["batch", 8, 7, 7])], [vi("y", ["batch", 5])], inits)
    model = check(proto, {"x": rand(3, 8, 7, 7)})
    check(proto, {"x": rand(1, 8, 7, 7)})
    model(rand(1, 8, 7, 7))
    model(rand(2, 8, 7, 7))
    plan = next(iter(model._plans.values()))
    assert [n.op for n in plan.steps] == ["GlobalAveragePool", "Reshape", "Gemm"]
    assert len(plan.folded) == 4 and len(model._plans) == 3
    text = model.summary((4, 8, 7, 7))
    assert "Gemm" in text and "4x5" in text and "4 folded" in text


def test_multiple_inputs_and_outputs():
    nodes = [helper.make_node("Add", ["a", "b"], ["s"]),
             helper.make_node("Mul", ["a", "b"], ["p"]),
             helper.make_node("MatMul", ["s", "p"], ["mm"])]
    proto = make(nodes, [vi("a", [3, 3]), vi("b", [3, 3])],
                 [vi("mm", [3, 3]), vi("s", [3, 3])])
    feeds = {"a": rand(3, 3), "b": rand(3, 3)}
    model = check(proto, feeds)
    mm, s = model(feeds["a"], feeds["b"])
    assert mm.shape == (3, 3)
    np.testing.assert_allclose(s, feeds["a"] + feeds["b"])
    assert model.input_names == ["a", "b"] and model.output_names == ["mm", "s"]
    (only,) = model.run(["s"], feeds)
    np.testing.assert_allclose(only, s)


def _single(op, inputs, attrs=None, inits=None, opset=17, n_out=1):
    feeds = dict(inputs)
    ins = [vi(name, list(value.shape), helper.np_dtype_to_tensor_dtype(value.dtype))
           for name, value in inputs.items()]
    names = list(inputs) + list(inits or {})
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    # the reference run gives the output shapes the checked model declares
    untyped = [helper.make_value_info(o, helper.make_tensor_type_proto(TensorProto.FLOAT, None))
               for o in outs]
    ref_model = helper.make_model(
        helper.make_graph([node], "g", ins, untyped,
                          [numpy_helper.from_array(np.asarray(v), k)
                           for k, v in (inits or {}).items()]),
        opset_imports=[helper.make_opsetid("", opset)])
    out_vals = ReferenceEvaluator(ref_model).run(None, feeds)
    outs_vi = [vi(o, list(np.asarray(v).shape), helper.np_dtype_to_tensor_dtype(
        np.asarray(v).dtype)) for o, v in zip(outs, out_vals)]
    return make([node], ins, outs_vi, inits, opset), feeds


x4 = rand(2, 3, 6, 6)
OP_CASES = {
    "MaxPool": ("MaxPool", {"x": x4}, dict(kernel_shape=[3, 3], strides=[2, 2],
                                           pads=[1, 1, 1, 1]), None),
    "MaxPool-ceil": ("MaxPool", {"x": x4}, dict(kernel_shape=[2, 2], strides=[2, 2],
                                                ceil_mode=1), None),
    "AveragePool": ("AveragePool", {"x": x4}, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                    None),
    "AveragePool-incl": ("AveragePool", {"x": x4}, dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                                        count_include_pad=1), None),
    "LpPool": ("LpPool", {"x": x4}, dict(kernel_shape=[2, 2], p=2), None),
    "GlobalAveragePool": ("GlobalAveragePool", {"x": x4}, {}, None),
    "GlobalMaxPool": ("GlobalMaxPool", {"x": x4}, {}, None),
    "Conv1d": ("Conv", {"x": rand(1, 2, 9)}, dict(strides=[2], dilations=[2]),
               {"w": rand(3, 2, 3)}),
    "Conv3d-groups": ("Conv", {"x": rand(1, 4, 4, 4, 4)}, dict(group=2, pads=[1] * 6),
                      {"w": rand(2, 2, 3, 3, 3)}),
    "Conv-same": ("Conv", {"x": x4}, dict(auto_pad="SAME_UPPER", strides=[2, 2]),
                  {"w": rand(4, 3, 3, 3)}),
    "Conv-depthwise": ("Conv", {"x": x4}, dict(group=3, pads=[1, 1, 1, 1]),
                       {"w": rand(3, 1, 3, 3)}),
    "ConvTranspose": ("ConvTranspose", {"x": x4}, dict(strides=[2, 2], pads=[1, 1, 1, 1],
                                                       output_padding=[1, 1]),
                      {"w": rand(3, 2, 3, 3)}),
    "BatchNormalization": ("BatchNormalization", {"x": x4}, dict(epsilon=1e-3),
                           {"s": rand(3), "b": rand(3), "m": rand(3),
                            "v": np.abs(rand(3)) + 1}),
    "Gemm": ("Gemm", {"a": rand(4, 5)}, dict(alpha=0.5, beta=2.0, transB=1),
             {"b": rand(3, 5), "c": rand(3)}),
    "Gemm-dynamic": ("Gemm", {"a": rand(5, 4), "b": rand(5, 3)}, dict(transA=1), None),
    "MatMul-3d": ("MatMul", {"a": rand(2, 4, 5)}, {}, {"b": rand(5, 3)}),
    "MatMul-batched": ("MatMul", {"a": rand(2, 4, 5), "b": rand(2, 5, 3)}, {}, None),
    "Softmax": ("Softmax", {"x": x4}, dict(axis=1), None),
    "LogSoftmax": ("LogSoftmax", {"x": x4}, {}, None),
    "Transpose": ("Transpose", {"x": x4}, dict(perm=[0, 2, 3, 1]), None),
    "Flatten": ("Flatten", {"x": x4}, dict(axis=2), None),
    "Concat": ("Concat", {"x": x4, "x2": rand(2, 1, 6, 6)}, dict(axis=1), None),
    "Pad": ("Pad", {"x": x4}, dict(mode="reflect"),
            {"pads": np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64)}),
    "Pad-const": ("Pad", {"x": x4}, {}, {"pads": np.array([0, 0, 1, 2, 0, 0, 0, 1],
                                                          np.int64),
                                         "v": np.array(1.5, np.float32)}),
    "Slice": ("Slice", {"x": x4}, {}, {"st": np.array([1, -1], np.int64),
                                        "en": np.array([5, -100], np.int64),
                                        "ax": np.array([2, 3], np.int64),
                                        "sp": np.array([2, -2], np.int64)}),
    "ReduceMean": ("ReduceMean", {"x": x4}, dict(axes=[2, 3], keepdims=0), None),
    "ReduceSum": ("ReduceSum", {"x": x4}, {}, {"axes": np.array([1], np.int64)}),
    "Squeeze": ("Squeeze", {"x": rand(2, 1, 3, 1)}, {}, {"axes": np.array([1], np.int64)}),
    "Unsqueeze": ("Unsqueeze", {"x": rand(2, 3)}, {}, {"axes": np.array([0, -1], np.int64)}),
    "Erf": ("Erf", {"x": x4}, {}, None),
    "Gelu": ("Gelu", {"x": x4}, {}, None, 20),
    "LayerNormalization": ("LayerNormalization", {"x": x4}, dict(axis=-1),
                           {"s": rand(6), "b": rand(6)}),
    "Div": ("Div", {"x": x4, "x2": np.abs(x4) + 1}, {}, None),
    "Sub": ("Sub", {"x": x4}, {}, {"c": rand(6)}),
    "Cast": ("Cast", {"x": x4}, dict(to=TensorProto.INT64), None),
    "Resize-linear": ("Resize", {"x": x4}, dict(mode="linear"),
                      {"roi": np.array([], np.float32),
                       "sc": np.array([1, 1, 2, 1.5], np.float32)}),
    "Resize-nearest-sizes": ("Resize", {"x": x4}, dict(mode="nearest",
                                                       nearest_mode="floor",
                                                       coordinate_transformation_mode=
                                                       "asymmetric"),
                             {"roi": np.array([], np.float32),
                              "sc": np.array([], np.float32),
                              "sz": np.array([2, 3, 9, 4], np.int64)}),
    "Resize-cubic-ac": ("Resize", {"x": x4}, dict(mode="cubic",
                                                  coordinate_transformation_mode=
                                                  "align_corners"),
                        {"roi": np.array([], np.float32),
                         "sc": np.array([1, 1, 2, 2], np.float32)}),
    "Resize-pytorch-hp": ("Resize", {"x": x4}, dict(mode="linear",
                                                    coordinate_transformation_mode=
                                                    "pytorch_half_pixel"),
                          {"roi": np.array([], np.float32),
                           "sc": np.array([1, 1, 0.5, 1.5], np.float32)}),
    "Resize-nearest-hp": ("Resize", {"x": x4}, dict(mode="nearest"),
                          {"roi": np.array([], np.float32),
                           "sc": np.array([1, 1, 1.5, 2], np.float32)}),
    "Upsample": ("Upsample", {"x": x4}, dict(mode="nearest"),
                 {"sc": np.array([1, 1, 2, 2], np.float32)}, 9),
    "Split": ("Split", {"x": x4}, dict(axis=2), {"sp": np.array([2, 4], np.int64)}, 17, 2),
    "Where": ("Where", {"c": x4 > 0, "x": x4}, {}, {"z": np.zeros(6, np.float32)}),
    "Expand": ("Expand", {"x": rand(3, 1)}, {}, {"sh": np.array([2, 3, 4], np.int64)}),
}


@pytest.mark.parametrize("case", list(OP_CASES))
def test_op_matches_reference(case):
    spec = OP_CASES[case]
    op, inputs, attrs, inits = spec[:4]
    opset = spec[4] if len(spec) > 4 else 17
    n_out = spec[5] if len(spec) > 5 else 1
    proto, feeds = _single(op, inputs, attrs, inits, opset=opset, n_out=n_out)
    model = check(proto, feeds)
    assert model._nodes[0].kind != "onnx.reference", model._nodes[0].kind


def test_max_unpool_matches_reference():
    x = rand(1, 2, 4, 4)
    nodes = [helper.make_node("MaxPool", ["x"], ["p", "i"], kernel_shape=[2, 2],
                              strides=[2, 2]),
             helper.make_node("MaxUnpool", ["p", "i"], ["y"], kernel_shape=[2, 2],
                              strides=[2, 2])]
    proto = make(nodes, [vi("x", [1, 2, 4, 4])], [vi("y", [1, 2, 4, 4])])
    with pytest.warns(UserWarning, match="MaxPool"):  # two outputs: onnx.reference
        fastconv.onnx.load(proto)
    model = check(proto, {"x": x})
    assert model._nodes[1].kind == "fastconv"


def test_fallback_warns_once_naming_the_ops():
    nodes = [helper.make_node("Mod", ["a", "b"], ["m"], fmod=1),
             helper.make_node("Mod", ["m", "b"], ["m2"], fmod=1),
             helper.make_node("Relu", ["m2"], ["y"])]
    proto = make(nodes, [vi("a", [4]), vi("b", [4])], [vi("y", [4])])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fastconv.onnx.load(proto)
    assert len(caught) == 1 and "Mod" in str(caught[0].message)
    check(proto, {"a": rand(4) * 5, "b": np.abs(rand(4)) + 1})


def test_input_errors():
    proto = conv_bn_graph([("Relu", [], {})])
    model = fastconv.onnx.load(proto)
    with pytest.raises(ValueError, match="input 'x' must have dtype float32"):
        model(np.ones((1, 4, 6, 6)))
    with pytest.raises(ValueError, match="input 'x' must have shape"):
        model(np.ones((1, 4, 5, 6), np.float32))
    with pytest.raises(ValueError, match="input 'x' must have 4 dims"):
        model(np.ones((4, 6, 6), np.float32))
    with pytest.raises(ValueError, match="input 'z' is not an input"):
        model.run(None, {"x": np.ones((1, 4, 6, 6), np.float32), "z": np.ones(1)})
    with pytest.raises(ValueError, match="input 'x' is missing"):
        model.run(None, {})


def test_malformed_files(tmp_path):
    with pytest.raises(ValueError, match="could not be parsed"):
        fastconv.onnx.load(b"\x08\x01garbage\xff\xff")
    with pytest.raises(ValueError, match="does not exist"):
        fastconv.onnx.load(str(tmp_path / "missing.onnx"))
    with pytest.raises(TypeError, match="model must be"):
        fastconv.onnx.load(3)
    # a node reading a tensor nobody produces
    bad = make([helper.make_node("Relu", ["nope"], ["y"], name="r")], [vi("x", [2])],
               [vi("y", [2])])
    with pytest.raises(ValueError, match="invalid ONNX model"):
        fastconv.onnx.load(bad)
    # conv weight that does not match kernel_shape: named
    w = rand(2, 1, 3, 3)
    conv = make([helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[5, 5],
                                  name="stem")],
                [vi("x", [1, 1, 8, 8])], [vi("y", [1, 2, 4, 4])], {"w": w})
    with pytest.raises(ValueError, match="'stem'"):
        fastconv.onnx.load(conv)
    # an operator in an unknown domain
    custom = make([helper.make_node("Foo", ["x"], ["y"], domain="my.ops", name="foo")],
                  [vi("x", [2])], [vi("y", [2])])
    custom.opset_import.append(helper.make_opsetid("my.ops", 1))
    with pytest.raises(ValueError, match="foo"):
        fastconv.onnx.load(custom)


def test_load_from_path_and_bytes_summary_profile(tmp_path):
    proto = conv_bn_graph([("Relu", [], {})], residual=True)
    path = tmp_path / "m.onnx"
    onnx.save(proto, str(path))
    x = rand(1, 4, 6, 6)
    a = fastconv.onnx.load(str(path))(x)
    b = fastconv.onnx.load(proto.SerializeToString(), threads=1, algorithm="direct")(x)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    model = fastconv.onnx.load(path)
    text = model.summary()
    assert "Conv+BatchNormalization+Add+Relu" in text and "MACs" in text
    prof = model.profile(x, repeat=2)
    assert prof.rows[0][0] in ("conv", "Identity_6") and prof.total_ms > 0
    assert "share" in str(prof)
    assert "Conv" in next(iter(prof.by_op()))
    assert "fastconv.onnx.Model" in repr(model)


def test_softmax_opset11_coerces_to_2d_and_negative_pads():
    # opset < 13 Softmax normalises over everything from axis on (onnxruntime does; the
    # reference evaluator does not), so compare with the definition
    x = rand(2, 3, 4)
    proto, feeds = _single("Softmax", {"x": x}, dict(axis=1), None, opset=13)
    proto.opset_import[0].version = 11
    y = fastconv.onnx.load(proto)(x)
    e = np.exp(x.reshape(2, -1) - x.reshape(2, -1).max(1, keepdims=True))
    np.testing.assert_allclose(y, (e / e.sum(1, keepdims=True)).reshape(x.shape), rtol=1e-5)
    pads = np.array([0, -1, 2, 0, 1, -1], np.int64)
    nodes = [helper.make_node("Pad", ["x", "p"], ["y"])]
    proto = make(nodes, [vi("x", [2, 3, 4])], [vi("y", [2, 3, 5])], {"p": pads})
    y = fastconv.onnx.load(proto)(x)
    np.testing.assert_array_equal(y, np.pad(x[:, 1:, :3], ((0, 0), (0, 1), (2, 0))))


def test_outputs_never_alias_inputs_or_constants():
    nodes = [helper.make_node("Identity", ["x"], ["y"]),
             helper.make_node("Reshape", ["x", "sh"], ["r"]),
             helper.make_node("Identity", ["c"], ["k"])]
    proto = make(nodes, [vi("x", [2, 3])], [vi("y", [2, 3]), vi("r", [6]), vi("k", [2])],
                 {"sh": np.array([6], np.int64), "c": np.ones(2, np.float32)})
    model = fastconv.onnx.load(proto)
    x = rand(2, 3)
    y, r, k = model(x)
    assert not np.shares_memory(y, x) and not np.shares_memory(r, x)
    k[:] = 5
    assert model(x)[2].tolist() == [1, 1]


def _view_graph():
    w = rand(2, 2, 3, 3)
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["a"], ["fa"]),  # a view of a's buffer
             helper.make_node("Conv", ["x", "w"], ["b"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["b", "w"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["c"], ["d"], kernel_shape=[1, 1]),
             helper.make_node("Flatten", ["d"], ["fd"]),
             helper.make_node("Add", ["fa", "fd"], ["y"])]
    return make(nodes, [vi("x", ["N", 2, 5, 5])], [vi("y", ["N", 50])], {"w": w})


def test_planned_buffers_respect_views():
    model = check(_view_graph(), {"x": rand(1, 2, 5, 5)})
    plan = next(iter(model._plans.values()))
    assert sum(b is not None for b in plan.buffers) >= 3


def test_concurrent_calls_share_a_model():
    import threading

    model = fastconv.onnx.load(_view_graph())
    xs = [rand(1, 2, 5, 5) for _ in range(8)]
    expected = [model(x) for x in xs]
    results = [None] * len(xs)

    def work(i):
        for _ in range(20):
            results[i] = model(xs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


def test_concat_written_in_place_by_its_producers():
    # UNet-style: a skip tensor read by a pool and by the Concat, a ConvTranspose feeding it
    w = rand(2, 2, 3, 3)
    wt = rand(2, 2, 2, 2)
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("MaxPool", ["ar"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("ConvTranspose", ["p", "wt"], ["u"], strides=[2, 2]),
             helper.make_node("Concat", ["u", "ar"], ["cat"], axis=1),
             helper.make_node("Conv", ["cat", "w4"], ["y"], pads=[1, 1, 1, 1])]
    proto = make(nodes, [vi("x", ["N", 2, 6, 6])], [vi("y", ["N", 3, 6, 6])],
                 {"w": w, "wt": wt, "w4": rand(3, 4, 3, 3)})
    model = check(proto, {"x": rand(1, 2, 6, 6)})
    plan = next(iter(model._plans.values()))
    assert len(plan.skip) == 1
    model2 = check(proto, {"x": rand(2, 2, 6, 6)})  # batch 2: slices not contiguous
    assert not next(iter(model2._plans.values())).skip
