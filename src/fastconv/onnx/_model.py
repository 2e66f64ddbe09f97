"""Load an ONNX model, fuse it, plan it per input shape, run it on fastconv's kernels."""

from __future__ import annotations

import math
import os
import threading
import time
import warnings

import numpy as np

from .. import conv, conv_transpose, deform, pool, resize
from .._validate import check_int
from . import _ops

try:
    import onnx
    from onnx import helper, numpy_helper
except ImportError as exc:  # pragma: no cover - the extra is missing
    raise ImportError('fastconv.onnx needs the onnx package: pip install "fastconv[onnx]"') \
        from exc

_CONV = {1: conv.Conv1d, 2: conv.Conv2d, 3: conv.Conv3d}
_CONV_T = {1: conv_transpose.ConvTranspose1d, 2: conv_transpose.ConvTranspose2d,
           3: conv_transpose.ConvTranspose3d}
_MAX_POOL = {1: pool.max_pool1d, 2: pool.max_pool2d, 3: pool.max_pool3d}
_AVG_POOL = {1: pool.avg_pool1d, 2: pool.avg_pool2d, 3: pool.avg_pool3d}
_LP_POOL = {1: pool.lp_pool1d, 2: pool.lp_pool2d, 3: pool.lp_pool3d}
_UNPOOL = {1: pool.max_unpool1d, 2: pool.max_unpool2d, 3: pool.max_unpool3d}
_PLAN_CACHE = 8
_NONDETERMINISTIC = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                     "Multinomial", "Bernoulli"}


def _fail(node, reason: str):
    return ValueError(f"node {node.name!r} ({node.op}): {reason}")


def _attrs(proto) -> dict:
    out = {}
    for a in proto.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


class _Node:
    """One step of the graph (after fusion): a fastconv layer, a NumPy op or a fallback."""

    def __init__(self, proto, index: int, opset: int):
        self.proto = proto
        self.name = proto.name or f"{proto.op_type}_{index}"
        self.op = proto.op_type
        self.domain = proto.domain
        self.inputs = list(proto.input)
        self.outputs = list(proto.output)
        self.attrs = _attrs(proto)
        self.index = index  # position in the execution order
        self.opset = opset
        self.fused: list[str] = []  # op types folded or fused into this node
        self.epilogue: list[tuple] = []  # ("act", fn) or ("add", tensor name)
        self.kind = "numpy"  # numpy | fastconv | onnx.reference
        self.layer = None
        self.run = None
        self.params = 0
        self.out_ok = False  # run() takes out= (a buffer planned per input shape)

    @property
    def label(self) -> str:
        return "+".join([self.op, *self.fused])

    @property
    def all_inputs(self) -> list[str]:
        return self.inputs + [t for kind, t in self.epilogue if kind == "add"]


def _load_proto(model) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    try:
        if isinstance(model, (bytes, bytearray, memoryview)):
            return onnx.load_from_string(bytes(model))
        if isinstance(model, (str, os.PathLike)):
            if not os.path.exists(model):
                raise ValueError(f"model file {os.fspath(model)!r} does not exist")
            return onnx.load(os.fspath(model))
    except ValueError:
        raise
    except Exception as exc:  # the protobuf parser's errors
        raise ValueError(f"model could not be parsed as ONNX: {exc}") from None
    raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, got "
                    f"{type(model).__name__}")


def _padding(node, k: int, transposed: bool = False):
    auto = node.attrs.get("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if transposed:
            return None
        return "same" if auto == "SAME_UPPER" else "same_lower"
    if auto == "VALID":
        return "valid"
    if auto != "NOTSET":
        raise _fail(node, f"auto_pad {auto!r} is not an ONNX value")
    pads = list(node.attrs.get("pads", [0] * (2 * k)))
    if len(pads) != 2 * k:
        raise _fail(node, f"pads {pads} must have {2 * k} values for {k} spatial dims")
    return tuple((int(pads[i]), int(pads[i + k])) for i in range(k))


def _ints(node, key: str, k: int, default: int = 1) -> tuple[int, ...]:
    v = node.attrs.get(key)
    if v is None:
        return (default,) * k
    if len(v) != k:
        raise _fail(node, f"{key} {list(v)} must have {k} values")
    return tuple(int(i) for i in v)


class Model:
    """An ONNX model prepared for fastconv (see :func:`load`)."""

    def __init__(self, proto: onnx.ModelProto, algorithm: str = "auto", threads=None):
        self._threads = threads
        self._algorithm = algorithm
        graph = proto.graph
        self._opset = next((o.version for o in proto.opset_import if o.domain in ("",
                                                                                 "ai.onnx")),
                           1)
        self._consts: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in graph.initializer}
        self._inputs = [i for i in graph.input if i.name not in self._consts]
        self.input_names = [i.name for i in self._inputs]
        self.output_names = [o.name for o in graph.output]
        self._input_spec = {}
        for i in self._inputs:
            tt = i.type.tensor_type
            dims = None
            if tt.HasField("shape"):
                dims = tuple(d.dim_value if d.HasField("dim_value") else
                             (d.dim_param or None) for d in tt.shape.dim)
            dtype = helper.tensor_dtype_to_np_dtype(tt.elem_type) if tt.elem_type else None
            self._input_spec[i.name] = (dims, dtype)
        nodes = []
        for idx, proto_node in enumerate(graph.node):
            node = _Node(proto_node, idx, self._opset)
            if node.op == "Constant" and node.domain in ("", "ai.onnx"):
                self._consts[node.outputs[0]] = self._constant(node)
                continue
            nodes.append(node)
        self._check_graph(nodes)
        nodes = self._fold_constants(nodes)
        self._fuse(nodes)
        nodes.sort(key=lambda n: n.index)
        self._nodes = nodes
        fallback = sorted({n.op for n in nodes if self._prepare(n) == "onnx.reference"})
        if fallback:
            warnings.warn(f"fastconv.onnx: no native implementation of {', '.join(fallback)}; "
                          f"these run on onnx.reference (slow)", stacklevel=3)
        self._plans: dict[tuple, _Plan] = {}

    # ---------------------------------------------------------------- loading
    def _constant(self, node) -> np.ndarray:
        a = node.attrs
        if "value" in a:
            return np.asarray(a["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in a:
                return np.asarray(a[key], dtype=dtype)
        raise _fail(node, f"Constant with attributes {sorted(a)} is not supported")

    def _check_graph(self, nodes) -> None:
        known = set(self._consts) | set(self.input_names)
        for node in nodes:
            for t in node.inputs:
                if t and t not in known:
                    raise _fail(node, f"input {t!r} is produced by no earlier node, "
                                      f"initializer or graph input")
            known.update(t for t in node.outputs if t)
        for name in self.output_names:
            if name not in known:
                raise ValueError(f"graph output {name!r} is produced by no node")

    def _fold_constants(self, nodes) -> list:
        """Evaluate now the nodes whose inputs are all constants (torch.onnx.export's Identity
        copies of shared weights, weight reshapes, ...)."""
        kept = []
        for node in nodes:
            if node.op in _ops.OPS and node.domain in ("", "ai.onnx") and node.inputs \
                    and node.op not in _NONDETERMINISTIC and self._native_ok(node) \
                    and all(not t or t in self._consts for t in node.inputs):
                try:
                    outs = _ops.OPS[node.op](node.attrs, self._opset,
                                             *[self._const(t) for t in node.inputs])
                except Exception as exc:
                    raise _fail(node, f"{type(exc).__name__}: {exc}") from None
                for t, o in zip(node.outputs, outs):
                    if t:
                        self._consts[t] = np.asarray(o)
                continue
            kept.append(node)
        return kept

    def _const(self, name: str):
        return self._consts.get(name) if name else None

    def _fuse(self, nodes) -> None:
        """Fold BatchNormalization into the convolution before it; fuse the activations and
        the residual Add that follow into its output stage."""
        consumers: dict[str, list] = {}
        for node in nodes:
            for t in node.inputs:
                consumers.setdefault(t, []).append(node)
        outputs = set(self.output_names)
        removed = set()

        def sole(t):
            c = consumers.get(t, [])
            return c[0] if len(c) == 1 and t not in outputs else None

        for node in nodes:
            if node.op not in ("Conv", "ConvTranspose") or node.domain not in ("", "ai.onnx") \
                    or self._const(node.inputs[1]) is None \
                    or (len(node.inputs) > 2 and node.inputs[2]
                        and self._const(node.inputs[2]) is None):
                continue
            out = node.outputs[0]
            nxt = sole(out)
            if nxt is not None and nxt.op == "BatchNormalization" and nxt.inputs[0] == out \
                    and all(self._const(t) is not None for t in nxt.inputs[1:5]) \
                    and not nxt.attrs.get("training_mode", 0) \
                    and not any(nxt.outputs[1:]):
                self._fold_bn(node, nxt)
                removed.add(id(nxt))
                node.fused.append("BatchNormalization")
                node.index = nxt.index
                out = node.outputs[0] = nxt.outputs[0]
            while True:
                users = consumers.get(out, [])
                if out in outputs or not users:
                    break
                if any(id(u) in removed for u in users):
                    break
                nxt = users[0] if len(users) == 1 else None
                if nxt is not None and nxt.op in _ops.ACTIVATIONS and nxt.inputs[0] == out \
                        and all(self._const(t) is not None for t in nxt.inputs[1:] if t):
                    fn = _ops.activation(nxt.op, nxt.attrs,
                                         [self._const(t) for t in nxt.inputs[1:]])
                    node.epilogue.append(("act", fn))
                elif nxt is not None and nxt.op in ("Add", "Sum") and len(nxt.inputs) == 2 \
                        and nxt.inputs.count(out) == 1:
                    other = nxt.inputs[1] if nxt.inputs[0] == out else nxt.inputs[0]
                    node.epilogue.append(("add", other))
                elif len(users) == 2 and {u.op for u in users} == {"Sigmoid", "Mul"}:
                    sig = next(u for u in users if u.op == "Sigmoid")
                    mul = next(u for u in users if u.op == "Mul")
                    if sole(sig.outputs[0]) is not mul or \
                            sorted(mul.inputs) != sorted([out, sig.outputs[0]]):
                        break
                    node.epilogue.append(("act", _ops.activation("SiLU", {}, [])))
                    node.fused.append("SiLU")
                    removed.add(id(sig))
                    nxt = mul
                else:
                    break
                if nxt.op != "Mul":
                    node.fused.append(nxt.op)
                removed.add(id(nxt))
                node.index = max(node.index, nxt.index)
                out = node.outputs[0] = nxt.outputs[0]
        nodes[:] = [n for n in nodes if id(n) not in removed]

    def _fold_bn(self, node, bn) -> None:
        w = self._consts[node.inputs[1]].astype(np.float64)
        b = self._const(node.inputs[2]) if len(node.inputs) > 2 else None
        scale, beta, mean, var = (self._consts[t].astype(np.float64) for t in bn.inputs[1:5])
        s = scale / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
        c_out = s.shape[0]
        if node.op == "Conv":
            w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        else:  # (C_in, C_out / g, k...): output channel o = group * (C_out / g) + j
            g = node.attrs.get("group", 1)
            w = (w.reshape((g, w.shape[0] // g, c_out // g) + w.shape[2:])
                 * s.reshape((g, 1, c_out // g) + (1,) * (w.ndim - 2))).reshape(w.shape)
        b = np.zeros(c_out) if b is None else b.astype(np.float64)
        b = (b - mean) * s + beta
        dtype = self._consts[node.inputs[1]].dtype
        wname, bname = f"{node.name}/weight_bn", f"{node.name}/bias_bn"
        self._consts[wname] = w.astype(dtype)
        self._consts[bname] = b.astype(dtype)
        node.inputs = [node.inputs[0], wname, bname]

    def _prepare(self, node) -> str:
        """Give ``node`` its run function; returns its kind."""
        if node.domain not in ("", "ai.onnx"):
            raise _fail(node, f"operator domain {node.domain!r} is not supported")
        prep = getattr(self, f"_prep_{node.op}", None)
        run = None
        try:
            if prep is not None:
                run = prep(node)
            elif node.op in _ops.OPS and self._native_ok(node):
                fn, attrs, opset = _ops.OPS[node.op], node.attrs, self._opset
                if node.op == "Split":
                    attrs = dict(attrs, _num_outputs=len(node.outputs))

                def run(*ins, fn=fn, attrs=attrs, opset=opset):
                    return fn(attrs, opset, *ins)
        except ValueError as exc:
            if str(exc).startswith("node "):
                raise
            raise _fail(node, str(exc)) from None
        if run is None:
            run = self._fallback(node)
            node.kind = "onnx.reference"
        node.run = run
        node.params = sum(self._consts[t].size for t in node.all_inputs[1:]
                          if t in self._consts)
        return node.kind

    def _native_ok(self, node) -> bool:
        n_out = len([t for t in node.outputs if t])
        if node.op == "Dropout":
            return True
        if node.op == "Split":
            return True
        return n_out <= 1

    def _fallback(self, node):
        from onnx.reference import ReferenceEvaluator
        from onnx.reference.ops import load_op

        try:
            load_op(node.domain, node.op, self._opset)
        except Exception:
            raise _fail(node, "operator is not supported (neither by fastconv nor by "
                              "onnx.reference)") from None
        evaluator = ReferenceEvaluator(node.proto)
        names = list(node.proto.input)

        def run(*ins):
            feeds = {n: x for n, x in zip(names, ins) if n}
            return tuple(evaluator.run(None, feeds))
        return run

    def _epilogue(self, node):
        steps = node.epilogue

        def finish(y, extra):
            j = 0
            for kind, fn in steps:
                if kind == "act":
                    fn(y)
                else:
                    other = extra[j]
                    j += 1
                    if np.broadcast_shapes(y.shape, other.shape) == y.shape:
                        np.add(y, other, out=y, casting="unsafe")
                    else:
                        y = y + other
            return y
        return finish

    def _prep_Conv(self, node):  # noqa: N802 - ONNX op names
        w = self._const(node.inputs[1])
        b = self._const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if w is None or (len(node.inputs) > 2 and node.inputs[2] and b is None):
            return None  # weights computed in the graph: rare, onnx.reference
        k = w.ndim - 2
        if k not in _CONV:
            raise _fail(node, f"weight of shape {w.shape} is not 1-D, 2-D or 3-D")
        if "kernel_shape" in node.attrs and tuple(node.attrs["kernel_shape"]) != w.shape[2:]:
            raise _fail(node, f"kernel_shape {node.attrs['kernel_shape']} does not match the "
                              f"weight shape {w.shape}")
        try:
            layer = _CONV[k](w, b, stride=_ints(node, "strides", k), padding=_padding(node, k),
                             dilation=_ints(node, "dilations", k),
                             groups=node.attrs.get("group", 1), algorithm=self._algorithm)
        except (ValueError, TypeError) as exc:
            raise _fail(node, str(exc)) from None
        return self._layer_runner(node, layer)

    def _layer_runner(self, node, layer):
        """The step of a (transposed) convolution node run by ``layer``: the layer writes into
        the planned buffer, then the node's fused output stage (activations, residual Add)."""
        node.layer, node.kind = layer, "fastconv"
        finish, threads, n_in = self._epilogue(node), self._threads, len(node.inputs)

        def run(x, *rest, out=None):
            return (finish(layer(x, threads=threads, out=out), rest[n_in - 1:]),)
        node.out_ok = True
        return run

    def _prep_ConvTranspose(self, node):  # noqa: N802
        w = self._const(node.inputs[1])
        b = self._const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if w is None or (len(node.inputs) > 2 and node.inputs[2] and b is None):
            return None
        k = w.ndim - 2
        if k not in _CONV_T:
            raise _fail(node, f"weight of shape {w.shape} is not 1-D, 2-D or 3-D")
        padding = _padding(node, k, transposed=True)
        if padding is None or "output_shape" in node.attrs:
            return None  # output-size-driven padding: onnx.reference
        kwargs = dict(stride=_ints(node, "strides", k), padding=padding,
                      output_padding=_ints(node, "output_padding", k, 0),
                      groups=node.attrs.get("group", 1), dilation=_ints(node, "dilations", k))
        try:
            try:
                layer = _CONV_T[k](w, b, algorithm=self._algorithm, **kwargs)
            except ValueError:
                if self._algorithm == "auto":
                    raise
                layer = _CONV_T[k](w, b, **kwargs)
        except (ValueError, TypeError) as exc:
            raise _fail(node, str(exc)) from None
        return self._layer_runner(node, layer)

    def _prep_DeformConv(self, node):  # noqa: N802
        # inputs X, W, offset, B (optional), mask (optional); offset_group follows from offset
        w = self._const(node.inputs[1])
        has_b = len(node.inputs) > 3 and bool(node.inputs[3])
        b = self._const(node.inputs[3]) if has_b else None
        if w is None or (has_b and b is None):
            return None  # weights computed in the graph: onnx.reference
        if w.ndim != 4:
            raise _fail(node, f"weight of shape {w.shape} is not 2-D (fastconv's DeformConv is)")
        if "kernel_shape" in node.attrs and tuple(node.attrs["kernel_shape"]) != w.shape[2:]:
            raise _fail(node, f"kernel_shape {node.attrs['kernel_shape']} does not match the "
                              f"weight shape {w.shape}")
        try:
            layer = deform.DeformConv2d(w, b, stride=_ints(node, "strides", 2),
                                        padding=_padding(node, 2),
                                        dilation=_ints(node, "dilations", 2),
                                        groups=node.attrs.get("group", 1))
        except (ValueError, TypeError) as exc:
            raise _fail(node, str(exc)) from None
        node.layer, node.kind = layer, "fastconv"
        threads = self._threads

        def run(x, _w, offset, _b=None, mask=None, out=None):
            return (layer(x, offset, mask, threads=threads, out=out),)
        node.out_ok = True
        return run

    def _pool_args(self, node, x_rank_hint=None):
        ks = node.attrs.get("kernel_shape")
        if ks is None:
            raise _fail(node, "kernel_shape is required")
        k = len(ks)
        if k not in (1, 2, 3):
            raise _fail(node, f"kernel_shape {list(ks)} is not 1-D, 2-D or 3-D")
        return k, dict(kernel_size=tuple(int(i) for i in ks),
                       stride=_ints(node, "strides", k), padding=_padding(node, k),
                       ceil_mode=bool(node.attrs.get("ceil_mode", 0)))

    def _prep_MaxPool(self, node):  # noqa: N802
        if len([t for t in node.outputs if t]) > 1:
            return None  # ONNX's flat indices: onnx.reference
        k, kw = self._pool_args(node)
        kw["dilation"] = _ints(node, "dilations", k)
        fn, threads = _MAX_POOL[k], self._threads
        node.kind = "fastconv"
        node.out_ok = True
        return lambda x, out=None: (fn(x, **kw, threads=threads, out=out),)

    def _prep_AveragePool(self, node):  # noqa: N802
        k, kw = self._pool_args(node)
        kw["dilation"] = _ints(node, "dilations", k)
        kw["count_include_pad"] = bool(node.attrs.get("count_include_pad", 0))
        fn, threads = _AVG_POOL[k], self._threads
        node.kind = "fastconv"
        node.out_ok = True
        return lambda x, out=None: (fn(x, **kw, threads=threads, out=out),)

    def _prep_LpPool(self, node):  # noqa: N802
        k, kw = self._pool_args(node)
        kw["dilation"] = _ints(node, "dilations", k)
        p = float(node.attrs.get("p", 2))
        fn, threads = _LP_POOL[k], self._threads
        node.kind = "fastconv"
        return lambda x: (fn(x, p, **kw, threads=threads),)

    def _prep_GlobalAveragePool(self, node):  # noqa: N802
        node.kind = "fastconv"
        threads = self._threads
        return lambda x: (pool.global_avg_pool(x, threads=threads),)

    def _prep_GlobalMaxPool(self, node):  # noqa: N802
        node.kind = "fastconv"
        threads = self._threads
        return lambda x: (pool.global_max_pool(x, threads=threads),)

    def _prep_GlobalLpPool(self, node):  # noqa: N802
        p = float(node.attrs.get("p", 2))

        def run(x):
            axes = tuple(range(2, x.ndim))
            return ((np.abs(x) ** p).sum(axis=axes, keepdims=True) ** (1 / p),)
        return run

    def _prep_MaxUnpool(self, node):  # noqa: N802
        ks = node.attrs.get("kernel_shape")
        if ks is None:
            raise _fail(node, "kernel_shape is required")
        k = len(ks)
        strides = _ints(node, "strides", k)
        pads = _padding(node, k)
        fn, threads = _UNPOOL[k], self._threads
        node.kind = "fastconv"

        def run(x, indices, output_shape=None):
            in_size = x.shape[2:]
            if output_shape is not None:
                size = tuple(int(s) for s in np.asarray(output_shape).reshape(-1)[-k:])
            else:
                size = tuple((n - 1) * s + kk - b - e for n, s, kk, (b, e)
                             in zip(in_size, strides, ks, pads))
            plane = math.prod(size)
            n, c = x.shape[:2]
            base = (np.arange(n * c, dtype=np.int64) * plane).reshape((n, c) + (1,) * k)
            return (fn(x, indices - base, tuple(ks), strides, 0, output_size=size,
                       threads=threads),)
        return run

    def _resize_common(self, node, ctm: str, nearest: str):
        mode = node.attrs.get("mode", "nearest")
        if mode not in ("nearest", "linear", "cubic") or ctm not in resize.COORDINATE_MODES \
                or node.attrs.get("keep_aspect_ratio_policy", "stretch") != "stretch":
            return None
        if nearest not in resize.NEAREST_MODES:
            raise _fail(node, f"nearest_mode {nearest!r} is not an ONNX value")
        a = float(node.attrs.get("cubic_coeff_a", -0.75))
        exclude = bool(node.attrs.get("exclude_outside", 0))
        attr_axes = node.attrs.get("axes")

        def run(x, scales=None, sizes=None):
            axes = list(range(x.ndim)) if attr_axes is None else [int(i) % x.ndim
                                                                  for i in attr_axes]
            tables = {}
            for j, ax in enumerate(axes):
                n_in = x.shape[ax]
                if sizes is not None and sizes.size:
                    n_out = int(sizes.reshape(-1)[j])
                    scale = n_out / n_in
                else:
                    scale = float(scales.reshape(-1)[j])
                    n_out = int(math.floor(n_in * scale))
                if n_out == n_in and scale == 1:
                    continue
                src = resize.source_coordinates(n_in, n_out, ctm, scale)
                tables[ax] = resize.axis_table(src, n_in, mode, nearest_mode=nearest,
                                               cubic_a=a, exclude_outside=exclude)
            if x.dtype.kind == "f":
                return (resize.resize_tables(x, tables, x.dtype),)
            y = resize.resize_tables(x.astype(np.float32), tables, np.dtype(np.float32))
            return (np.rint(y).astype(x.dtype) if mode != "nearest" else y.astype(x.dtype),)
        node.kind = "fastconv"
        return run

    def _prep_Resize(self, node):  # noqa: N802
        if self._opset < 11:
            run = self._resize_common(node, "asymmetric", "floor")
            return None if run is None else (lambda x, scales: run(x, scales))
        run = self._resize_common(node, node.attrs.get("coordinate_transformation_mode",
                                                       "half_pixel"),
                                  node.attrs.get("nearest_mode", "round_prefer_floor"))
        if run is None:
            return None
        return lambda x, roi=None, scales=None, sizes=None: run(x, scales, sizes)

    def _prep_Upsample(self, node):  # noqa: N802
        if "scales" in node.attrs:
            scales = np.asarray(node.attrs["scales"], np.float32)
            run = self._resize_common(node, "asymmetric", "floor")
            return None if run is None else (lambda x: run(x, scales))
        run = self._resize_common(node, "asymmetric", "floor")
        return None if run is None else (lambda x, scales: run(x, scales))

    def _prep_Gemm(self, node):  # noqa: N802
        b = self._const(node.inputs[1])
        c = self._const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if b is None or node.attrs.get("transA", 0) or (len(node.inputs) > 2 and node.inputs[2]
                                                         and c is None):
            return self._generic(node)
        alpha, beta = node.attrs.get("alpha", 1.0), node.attrs.get("beta", 1.0)
        w = b if node.attrs.get("transB", 0) else b.T
        w = (w * alpha).astype(w.dtype) if alpha != 1 else w
        bias = None
        if c is not None and beta != 0 and c.size:
            if c.ndim <= 1 and (c.size == 1 or c.size == w.shape[0]):
                bias = np.broadcast_to(c.reshape(-1) * beta, (w.shape[0],)).astype(w.dtype)
            else:
                return self._generic(node)
        from ..fully_connected import Linear

        layer = Linear(w, bias)
        node.layer, node.kind, threads = layer, "fastconv", self._threads
        return lambda a, *rest: (layer(a, threads=threads),)

    def _prep_MatMul(self, node):  # noqa: N802
        b = self._const(node.inputs[1])
        if b is None or b.ndim != 2:
            return self._generic(node)
        from ..fully_connected import Linear

        layer = Linear(b.T)
        node.layer, node.kind, threads = layer, "fastconv", self._threads
        return lambda a, _b: (layer(a, threads=threads),)

    def _generic(self, node):
        fn, attrs, opset = _ops.OPS[node.op], node.attrs, self._opset
        return lambda *ins: fn(attrs, opset, *ins)

    # ---------------------------------------------------------------- running
    def _check_inputs(self, feeds: dict) -> tuple:
        key = []
        for name in self.input_names:
            if name not in feeds:
                raise ValueError(f"input {name!r} is missing (the model's inputs: "
                                 f"{self.input_names})")
            x = feeds[name]
            dims, dtype = self._input_spec[name]
            if dtype is not None and x.dtype != dtype:
                raise ValueError(f"input {name!r} must have dtype {np.dtype(dtype)}, got "
                                 f"{x.dtype}")
            if dims is not None:
                if x.ndim != len(dims):
                    raise ValueError(f"input {name!r} must have {len(dims)} dims "
                                     f"{_show(dims)}, got shape {x.shape}")
                for d, (want, got) in enumerate(zip(dims, x.shape)):
                    if isinstance(want, int) and want > 0 and want != got:
                        raise ValueError(f"input {name!r} must have shape {_show(dims)}, got "
                                         f"{x.shape} (dim {d})")
            key.append((x.shape, x.dtype.str))
        for name in feeds:
            if name not in self._input_spec:
                raise ValueError(f"input {name!r} is not an input of the model (its inputs: "
                                 f"{self.input_names})")
        return tuple(key)

    def _plan(self, feeds: dict) -> tuple[_Plan, dict | None]:
        """The plan for these inputs' shapes; on a new shape, build it by running the graph
        once (returned as the second item: the outputs of that run)."""
        key = self._check_inputs(feeds)
        plan = self._plans.get(key)
        if plan is not None:
            return plan, None
        plan = _Plan()
        env = dict(self._consts)
        static = set(self._consts)
        env.update(feeds)
        for node in self._nodes:
            ins = [env[t] if t else None for t in node.inputs]
            extra = [env[t] for t in node.all_inputs[len(node.inputs):]]
            try:
                outs = node.run(*ins, *extra)
            except (ValueError, TypeError, IndexError, KeyError) as exc:
                raise _fail(node, f"{type(exc).__name__}: {exc} (input shapes "
                                  f"{[getattr(i, 'shape', None) for i in ins]})") from None
            if not isinstance(outs, (tuple, list)):
                outs = (outs,)
            outs = [np.asarray(o) for o in outs]
            for t, o in zip(node.outputs, outs):
                if t:
                    env[t] = o
                    plan.shapes[t] = o.shape
            plan.in_shapes[node.name] = [getattr(i, "shape", None) for i in ins]
            folded = node.op in ("Shape", "Size") or (
                node.op not in _NONDETERMINISTIC and all(
                    not t or t in static for t in node.all_inputs))
            if folded:
                static.update(t for t in node.outputs if t)
                plan.folded.append(node)
            else:
                plan.steps.append(node)
        needed = set(self.output_names)
        for node in plan.steps:
            needed.update(t for t in node.all_inputs if t)
        plan.consts = {t: env[t] for t in static if t in needed}
        # liveness: drop every intermediate after its last reader
        last = {}
        for i, node in enumerate(plan.steps):
            for t in node.all_inputs:
                if t and t not in plan.consts:
                    last[t] = i
        for t in self.output_names:
            last.pop(t, None)
        plan.drop = [[] for _ in plan.steps]
        for t, i in last.items():
            if t not in feeds:
                plan.drop[i].append(t)
        plan.buffers = self._plan_buffers(plan, env, feeds)
        if len(self._plans) >= _PLAN_CACHE:
            self._plans.clear()
        self._plans[key] = plan
        return plan, env

    def _plan_buffers(self, plan, env: dict, feeds: dict) -> list:
        """Output buffers for the steps that take ``out=``, reused once every reader of the
        tensor (and of every view of it, found in the planning run) has run."""
        parent: dict[str, str] = {}

        def root(t):
            while parent.get(t, t) != t:
                t = parent[t]
            return t

        for node in plan.steps:  # a node's outputs that view its inputs share their buffer
            for o in node.outputs:
                if not o or not isinstance(env.get(o), np.ndarray):
                    continue
                for i in node.all_inputs:
                    if i and isinstance(env.get(i), np.ndarray) and \
                            np.may_share_memory(env[o], env[i]):
                        parent[root(o)] = root(i)
        last: dict[str, int] = {}
        for idx, node in enumerate(plan.steps):
            for t in node.all_inputs:
                if t:
                    last[root(t)] = idx
            for t in node.outputs:
                if t:
                    last.setdefault(root(t), idx)
        pinned = {root(t) for t in [*self.output_names, *feeds, *plan.consts]}
        groups = self._concat_groups(plan, env, root, last, pinned)
        free: list[np.ndarray] = []  # flat byte arrays, best fit

        def take(nbytes: int) -> np.ndarray:
            fits = [j for j, b in enumerate(free) if b.nbytes >= nbytes]
            if fits:
                return free.pop(min(fits, key=lambda j: free[j].nbytes))
            return np.empty(nbytes, np.uint8)

        release: dict[int, list] = {}
        slots: dict[int, np.ndarray] = {}
        buffers = []
        for idx, node in enumerate(plan.steps):
            for c, y, axis, producers, end in groups.get(idx, []):
                # a Concat whose inputs are written in place by their producers
                flat = take(y.nbytes)
                whole = flat[:y.nbytes].view(y.dtype).reshape(y.shape)
                plan.skip[c] = whole
                offset = 0
                for p, width in producers:
                    index = (slice(None),) * axis + (slice(offset, offset + width),)
                    slots[p] = whole[index]
                    offset += width
                release.setdefault(end, []).append(flat)
            buf = slots.pop(idx, plan.skip.get(idx))
            out = node.outputs[0] if node.outputs else ""
            y = env.get(out)
            r = root(out) if out else None
            if buf is None and node.out_ok and isinstance(y, np.ndarray) and r not in pinned \
                    and y.size:
                flat = take(y.nbytes)
                buf = flat[:y.nbytes].view(y.dtype).reshape(y.shape)
                release.setdefault(last[r], []).append(flat)
            buffers.append(buf)
            free.extend(release.pop(idx, []))
        return buffers

    def _concat_groups(self, plan, env, root, last, pinned) -> dict:
        """Concats (batch 1: a channel slice is contiguous) whose every input comes straight
        from a node that takes ``out=``: {first producer step: [(concat step, output, axis,
        [(producer step, width)], last step reading any of it)]}."""
        producer = {t: i for i, n in enumerate(plan.steps) for t in n.outputs[:1] if t}
        used: set[str] = set()
        groups: dict[int, list] = {}
        for c, node in enumerate(plan.steps):
            out = node.outputs[0] if node.outputs else ""
            y = env.get(out)
            if node.op != "Concat" or node.kind != "numpy" or not isinstance(y, np.ndarray) \
                    or root(out) in pinned or root(out) != out or not y.size:
                continue
            axis = node.attrs.get("axis", 0) % y.ndim
            ins = list(node.inputs)
            if math.prod(y.shape[:axis]) != 1 or "" in ins or len(set(ins)) != len(ins) \
                    or used & set(ins):
                continue
            if not all(t in producer and plan.steps[producer[t]].out_ok and root(t) == t
                       and t not in pinned and isinstance(env.get(t), np.ndarray)
                       and env[t].dtype == y.dtype for t in ins):
                continue
            used.update(ins)
            end = max([last[out], *(last[t] for t in ins)])
            start = min(producer[t] for t in ins)
            groups.setdefault(start, []).append(
                (c, y, axis, [(producer[t], env[t].shape[axis]) for t in ins], end))
        return groups

    def _feeds(self, args, kwargs) -> dict:
        if args and kwargs:
            raise TypeError("pass the inputs either positionally or by name, not both")
        if args:
            if len(args) != len(self.input_names):
                raise ValueError(f"the model takes {len(self.input_names)} inputs "
                                 f"{self.input_names}, got {len(args)}")
            kwargs = dict(zip(self.input_names, args))
        return {name: np.asarray(x) for name, x in kwargs.items()}

    def _execute(self, feeds: dict, names, timings=None) -> list:
        plan, env = self._plan(feeds)
        if env is None:
            env = dict(plan.consts)
            env.update(feeds)
            clock = time.perf_counter
            # the planned buffers serve one call at a time; a concurrent call allocates
            buffers = plan.buffers if plan.lock.acquire(blocking=False) else None
            try:
                for i, (node, drop) in enumerate(zip(plan.steps, plan.drop)):
                    t0 = clock() if timings is not None else 0
                    ins = [env[t] if t else None for t in node.all_inputs]
                    buf = buffers[i] if buffers is not None else None
                    if buf is None:
                        outs = node.run(*ins)
                    elif i in plan.skip:  # its producers wrote the slices already
                        outs = (buf,)
                    else:
                        outs = node.run(*ins, out=buf)
                        if outs[0] is not buf:  # e.g. a broadcasting residual Add
                            np.copyto(buf, outs[0])
                            outs = (buf, *outs[1:])
                    for t, o in zip(node.outputs, outs):
                        if t:
                            env[t] = o
                    for t in drop:
                        del env[t]
                    if timings is not None:
                        timings.setdefault(node.name, []).append(clock() - t0)
            finally:
                if buffers is not None:
                    plan.lock.release()
        result = []
        for name in names:
            if name not in env:
                raise ValueError(f"output {name!r} is not an output of the model (its "
                                 f"outputs: {self.output_names})")
            y = np.asarray(env[name])
            # never hand out the model's constants or a view of the caller's inputs
            if name in plan.consts or not y.flags.writeable or any(
                    np.may_share_memory(y, f) for f in feeds.values()):
                y = y.copy()
            result.append(y)
        return result

    def __call__(self, *inputs, **named):
        """Run the model: one input -> one array; several outputs -> a tuple, in graph
        order. Inputs are positional (graph order) or by name."""
        ys = self._execute(self._feeds(inputs, named), self.output_names)
        return ys[0] if len(ys) == 1 else tuple(ys)

    def run(self, output_names, input_feed: dict) -> list:
        """``onnxruntime.InferenceSession.run``'s signature: a list of the outputs named (all
        if None) for the inputs in ``input_feed`` (a dict name -> array)."""
        names = self.output_names if output_names is None else list(output_names)
        return self._execute(self._feeds((), dict(input_feed)), names)

    # ---------------------------------------------------------------- introspection
    def _example_feeds(self, input_shape=None) -> dict:
        feeds = {}
        for i, name in enumerate(self.input_names):
            dims, dtype = self._input_spec[name]
            if input_shape is not None:
                shape = input_shape[i] if len(self.input_names) > 1 else input_shape
                shape = tuple(check_int(n, "input_shape", 0) for n in shape)
            elif dims is None:
                raise ValueError(f"input {name!r} has no declared shape: pass input_shape=")
            else:
                shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)
            feeds[name] = np.zeros(shape, dtype or np.float32)
        return feeds

    def summary_rows(self, input_shape=None) -> list[dict]:
        """:meth:`summary`'s rows as dicts (node, op, output, params, macs, algorithm)."""
        feeds = self._example_feeds(input_shape)
        plan, _ = self._plan(feeds)
        rows = []
        for node in plan.steps:
            shape = plan.shapes.get(node.outputs[0])
            algo = node.kind
            if isinstance(node.layer, conv._ConvNd):
                algo = node.layer.algorithm_for(plan.in_shapes[node.name][0])
            rows.append(dict(node=node.name, op=node.label,
                             output=list(shape) if shape is not None else None,
                             params=int(node.params),
                             macs=int(_macs(node, plan.in_shapes[node.name], shape)),
                             algorithm=algo))
        return rows

    def summary(self, input_shape=None) -> str:
        """A table of the plan for ``input_shape`` (default: the declared shapes, symbolic
        dims as 1): per node its op (with what was fused into it), output shape, parameters,
        multiply-accumulates and algorithm; constant-folded nodes are counted at the end."""
        rows = self.summary_rows(input_shape)
        plan, _ = self._plan(self._example_feeds(input_shape))
        table = [(r["node"], r["op"], "x".join(map(str, r["output"] or ())),
                  f"{r['params']:,}", f"{r['macs']:,}", r["algorithm"]) for r in rows]
        table.append(("total", f"{len(rows)} nodes", "",
                      f"{sum(r['params'] for r in rows):,}",
                      f"{sum(r['macs'] for r in rows):,}", f"{len(plan.folded)} folded"))
        return _table(("node", "op", "output", "params", "MACs", "algorithm"), table)

    def profile(self, *inputs, repeat: int = 20, **named) -> Profile:
        """Time every node over ``repeat`` runs (after one warm-up); returns a
        :class:`Profile` (``print`` it for the table, sorted by time)."""
        repeat = check_int(repeat, "repeat", 1)
        feeds = self._feeds(inputs, named)
        self._execute(feeds, self.output_names)
        self._execute(feeds, self.output_names)
        timings: dict[str, list] = {}
        totals = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self._execute(feeds, self.output_names, timings)
            totals.append(time.perf_counter() - t0)
        plan, _ = self._plan(feeds)
        labels = {n.name: n.label for n in plan.steps}
        kinds = {n.name: n.kind for n in plan.steps}
        rows = sorted(((name, labels[name], kinds[name], float(np.median(ts)) * 1e3)
                       for name, ts in timings.items()), key=lambda r: -r[3])
        return Profile(rows, float(np.median(totals)) * 1e3)

    def __repr__(self) -> str:
        return (f"fastconv.onnx.Model(inputs={self.input_names}, outputs={self.output_names}, "
                f"{len(self._nodes)} nodes, opset {self._opset})")


class _Plan:
    def __init__(self):
        self.steps: list = []
        self.folded: list = []
        self.drop: list = []
        self.consts: dict = {}
        self.shapes: dict = {}
        self.in_shapes: dict = {}
        self.buffers: list = []
        self.skip: dict = {}  # Concat steps whose producers write into their output
        self.lock = threading.Lock()


class Profile:
    """Per-node median times of :meth:`Model.profile`: ``rows`` of (node, op, kind, ms),
    slowest first; ``total_ms`` the median whole-model time."""

    def __init__(self, rows, total_ms: float):
        self.rows = rows
        self.total_ms = total_ms

    def by_op(self) -> dict:
        """Median milliseconds summed per op label."""
        out: dict[str, float] = {}
        for _, op, _, ms in self.rows:
            out[op] = out.get(op, 0.0) + ms
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def __str__(self) -> str:
        node_sum = sum(r[3] for r in self.rows) or 1.0
        rows = [(name, op, kind, f"{ms:.3f}", f"{100 * ms / node_sum:.1f}%")
                for name, op, kind, ms in self.rows]
        rows.append(("total", "", "", f"{self.total_ms:.3f}",
                     f"(nodes {sum(r[3] for r in self.rows):.3f})"))
        return _table(("node", "op", "kind", "ms", "share"), rows)

    __repr__ = __str__


def _show(dims) -> str:
    return "(" + ", ".join(str(d) if d else "?" for d in dims) + ")"


def _macs(node, in_shapes, out_shape) -> int:
    if out_shape is None:
        return 0
    if node.layer is not None and node.op in ("Conv", "DeformConv"):
        w = node.layer.weight
        return math.prod(out_shape) * math.prod(w.shape[1:])
    if node.layer is not None and node.op == "ConvTranspose":
        w = node.layer.weight
        return math.prod(in_shapes[0]) * math.prod(w.shape[1:])
    if node.op in ("Gemm", "MatMul") and in_shapes and in_shapes[0]:
        return math.prod(out_shape) * in_shapes[0][-1]
    return 0


def _table(head, rows) -> str:
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(head, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def load(model, *, algorithm: str = "auto", threads=None) -> Model:
    """Load an ONNX model for fastconv.

    The graph is checked (``onnx.checker``, shape inference), BatchNormalization is folded into
    the convolution before it, and the activations and residual Add that follow a convolution
    are fused into its output stage; convolution weights are packed once, here. A plan per
    input shape (symbolic dims allowed) is built on the first call with that shape: constant
    subgraphs (``Shape -> Gather -> ... -> Reshape``) fold away then.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The model file, its bytes, or the parsed model.
    algorithm : str
        Passed to every convolution layer (``"auto"``, ``"direct"``, ``"im2col"``, ...).
    threads : int, optional
        Threads for every fastconv kernel call (None: ``fastconv.get_num_threads()`` at call
        time).

    Returns
    -------
    Model
        Callable: ``model(x)``; ``model.run(None, {"input": x})``; ``model.summary()``;
        ``model.profile(x)``.

    Raises
    ------
    ValueError
        A malformed or unsupported file (naming the node and the reason).

    Examples
    --------
    >>> import numpy as np
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> import fastconv.onnx
    >>> w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    >>> graph = helper.make_graph(
    ...     [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
    ...      helper.make_node("Relu", ["c"], ["y"])], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 4, 4])], [w])
    >>> model = fastconv.onnx.load(helper.make_model(graph))
    >>> model(np.ones((1, 1, 4, 4), np.float32))[0, 0]
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]], dtype=float32)
    """
    proto = _load_proto(model)
    light = _without_weights(proto)
    try:
        onnx.checker.check_model(light)
    except Exception as exc:
        raise ValueError(f"invalid ONNX model: {exc}") from None
    try:
        onnx.shape_inference.infer_shapes(light, check_type=True, strict_mode=True)
    except Exception as exc:
        raise ValueError(f"invalid ONNX model (shape inference): {exc}") from None
    return Model(proto, algorithm=algorithm, threads=threads)


def _without_weights(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The model with its large initializers turned into typed graph inputs: what the checker
    and shape inference need, without serialising the weights (most of the load time of a
    100 MB model otherwise). The weights' own data is checked when they are read."""
    graph = proto.graph
    big = [t for t in graph.initializer if math.prod(t.dims) > 256]
    if not big:
        return proto
    light = onnx.ModelProto()
    for field in ("ir_version", "producer_name", "producer_version", "domain",
                  "model_version", "doc_string"):
        setattr(light, field, getattr(proto, field))
    light.opset_import.extend(proto.opset_import)
    light.functions.extend(proto.functions)
    g = light.graph
    g.name = graph.name
    g.node.extend(graph.node)
    g.output.extend(graph.output)
    g.value_info.extend(graph.value_info)
    names = {t.name for t in big}
    declared = {i.name for i in graph.input}
    g.input.extend(graph.input)
    g.input.extend(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
                   for t in big if t.name not in declared)
    g.initializer.extend(t for t in graph.initializer if t.name not in names)
    g.sparse_initializer.extend(graph.sparse_initializer)
    return light
