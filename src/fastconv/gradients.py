"""Gradients: the backward pass of every convolution and pooling operator, as plain functions.

Each ``*_backward`` returns what ``torch.autograd`` gives for the same forward call; there is no
autograd engine: the caller keeps the forward's input and passes the gradient of the loss with
respect to the forward's output (``grad_output``). The adjoint relations (docs/gradients.md):

- convolution, input: a transposed convolution of ``grad_output`` with the same weight, stride,
  dilation and groups, padding and output padding chosen so that its size is the input's
  (``fastconv.conv_transpose*d``); with stride 1 it is an ordinary convolution with the
  flipped kernel (``fastconv.conv*d``: Winograd and the depthwise kernels apply). Reflect,
  replicate and circular padding fold the padded border's gradient back onto the elements it
  copied.
- convolution, weight: ``grad_weight[o, c, t] = sum over n, p of grad_output[n, o, p] *
  x_padded[n, c, p*stride + t*dilation]``: per group a GEMM (fastconv's packed GEMM) of
  ``grad_output`` with the im2col panel of ``x``; depthwise a per-tap product-sum.
- bias: ``grad_output`` summed over the batch and the spatial dims.
- transposed convolution: the same relations with the roles of input and output exchanged.
- max pooling: ``grad_output`` scattered to the forward's indices (summed where windows
  overlap); average pooling: the transposed box filter of ``grad_output / divisor``; adaptive
  pooling: the same per bin.

Validation and shape arithmetic are the forward fronts' own (``fastconv.conv``,
``fastconv.conv_transpose``, ``fastconv.pool``, ``fastconv.shapes``).
"""

import itertools
import math

import numpy as np

from . import _dispatch, _threads
from . import conv as _conv
from . import conv_transpose as _convt
from . import pool as _pool
from ._extension import load
from ._validate import batched, check_array, check_int, compute_dtype, working_copy

__all__ = [
    *(f"conv{d}d_backward" for d in (1, 2, 3)),
    *(f"conv_transpose{d}d_backward" for d in (1, 2, 3)),
    *(f"{kind}_pool{d}d_backward" for kind in ("max", "avg") for d in (1, 2, 3)),
    *(f"adaptive_{kind}_pool{d}d_backward" for kind in ("avg", "max") for d in (1, 2, 3)),
]

_CONV_NEEDS = ("input", "weight", "bias")


# ------------------------------------------------------------------------------------------
# Shared helpers
# ------------------------------------------------------------------------------------------
def _check_needs(needs, allowed: tuple[str, ...]) -> frozenset:
    if isinstance(needs, str):
        needs = (needs,)
    try:
        items = tuple(needs)
    except TypeError:
        raise TypeError(f"needs must be a tuple of names from {allowed}, got {needs!r}") from None
    for item in items:
        if item not in allowed:
            raise ValueError(f"needs entries must be among {allowed}, got {item!r} in "
                             f"needs={needs!r}")
    return frozenset(items)


def _shape_of(x, spatial: int, name: str = "x") -> tuple[tuple[int, ...], bool, np.ndarray | None]:
    """``x`` as an array or as its shape: ``(batched shape, unbatched, array or None)``."""
    if isinstance(x, tuple) or (isinstance(x, list) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in x)):
        shape = tuple(check_int(n, f"{name} shape[{i}]", 0) for i, n in enumerate(x))
        if len(shape) == spatial + 1:
            return (1, *shape), True, None
        if len(shape) != spatial + 2:
            raise ValueError(f"{name} must be an array or its shape with {spatial + 2} dims (N, C, "
                             f"...) or {spatial + 1} unbatched, got shape {shape}")
        return shape, False, None
    arr = check_array(x, name)
    xb, unbatched = batched(arr, spatial, name)
    return xb.shape, unbatched, xb


def _grad_array(grad_output, spatial: int, unbatched: bool) -> np.ndarray:
    g = check_array(grad_output, "grad_output")
    if g.ndim != spatial + (1 if unbatched else 2):
        raise ValueError(f"grad_output must have {spatial + (1 if unbatched else 2)} dims like "
                         f"the forward's output, got shape {g.shape}")
    return g[np.newaxis] if unbatched else g


def _check_grad_shape(g: np.ndarray, expected: tuple[int, ...], unbatched: bool) -> None:
    if g.shape != tuple(expected):
        shown = tuple(expected[1:]) if unbatched else tuple(expected)
        got = g.shape[1:] if unbatched else g.shape
        raise ValueError(f"grad_output must have the forward's output shape {shown}, got {got}")


def _pad_or_crop(a: np.ndarray, pairs) -> np.ndarray:
    """Zero-pad (positive) or crop (negative) the spatial dims of ``a`` (N, C, *spatial)."""
    crop = tuple(slice(max(-b, 0), n - max(-e, 0) if e < 0 else n)
                 for n, (b, e) in zip(a.shape[2:], pairs))
    a = a[(slice(None), slice(None)) + crop]
    pad = tuple((max(b, 0), max(e, 0)) for b, e in pairs)
    if any(p != (0, 0) for p in pad):
        a = np.pad(a, ((0, 0), (0, 0)) + pad)
    return a


def _bias_grad(g: np.ndarray, dtype: np.dtype) -> np.ndarray:
    flat = g.reshape(g.shape[0], g.shape[1], -1)
    return flat.sum(axis=2).sum(axis=0).astype(dtype, copy=False)


def _fold_padding(gp: np.ndarray, pads, mode: str) -> np.ndarray:
    """Adjoint of ``np.pad(x, pads, mode)`` on the spatial dims: the gradient of the padded
    array summed back onto the input elements each padded position copies."""
    for axis, (b, e) in enumerate(pads, start=2):
        if b == 0 and e == 0:
            continue
        n = gp.shape[axis] - b - e
        moved = np.moveaxis(gp, axis, 0)
        out = moved[b:b + n].copy()
        src = np.concatenate([np.arange(-b, 0), np.arange(n, n + e)])
        if mode == "reflect":
            period = 2 * (n - 1)
            src = np.abs(src) % period
            src = np.where(src >= n, period - src, src)
        elif mode == "replicate":
            src = np.clip(src, 0, n - 1)
        else:  # circular
            src = src % n
        np.add.at(out, src, np.concatenate([moved[:b], moved[b + n:]]))
        gp = np.moveaxis(out, 0, axis)
    return gp


def _gemm_module():
    return load("_gemm")


def _weight_grad(xp: np.ndarray, g: np.ndarray, kernel: tuple[int, ...], stride, dilation,
                 groups: int, dtype: np.dtype, threads: int) -> np.ndarray:
    """``gw[o, c, t] = sum over n, p of g[n, o, p] * xp[n, c, p*stride + t*dilation]`` (per
    group); ``xp`` already padded, at least as large as the windows need. Returns
    ``(C_out, C_in // groups, *kernel)``."""
    batch, c_in = xp.shape[:2]
    c_out = g.shape[1]
    out_size = g.shape[2:]
    cig, cog = c_in // groups, c_out // groups
    taps = list(itertools.product(*(range(k) for k in kernel)))

    def tap_view(n_sel, c_sel, tap):
        idx = tuple(slice(t * d, t * d + (o - 1) * s + 1, s)
                    for t, d, o, s in zip(tap, dilation, out_size, stride))
        return xp[(n_sel, c_sel) + idx]

    gw = np.empty((c_out, cig, *kernel), dtype=dtype)
    if batch == 0 or math.prod(out_size) == 0:
        gw[...] = 0
        return gw
    if cig == 1 and groups > 1:
        # depthwise (C_out = m * C_in): per tap, a product-sum over batch and positions
        # einsum on the strided tap views themselves (a reshape would copy them), no BLAS
        m = cog
        letters = "xyz"[:len(kernel)]
        gg = g.reshape(batch, groups, m, *out_size)
        flat = gw.reshape(groups, m, len(taps))
        for i, tap in enumerate(taps):
            v = tap_view(slice(None), slice(None), tap)
            if m == 1:
                flat[:, 0, i] = np.einsum(f"nc{letters},nc{letters}->c", g, v)
            else:
                flat[:, :, i] = np.einsum(f"ncm{letters},nc{letters}->cm", gg, v)
        return gw
    gemm = _gemm_module().gemm
    isa = _dispatch.isa_index()
    npix = math.prod(out_size)
    nthreads = _threads.for_work(threads, batch * c_out * cig * len(taps) * npix,
                                 _threads.CONV_MIN_WORK_PER_THREAD)
    cols = np.empty((cig, len(taps)) + tuple(out_size), dtype=dtype)
    rows = cig * len(taps)
    # Many positions (early layers): the panel as the GEMM's A (packed along its rows) and
    # grad_output transposed as B, giving grad_weight transposed; few positions: grad_output
    # as A and the panel's transpose as B (measured on Zen 4: 15-20% either way).
    swap = npix > rows
    out_t = np.empty((rows, cog), dtype=dtype) if swap else None
    for gi in range(groups):
        out2 = gw[gi * cog:(gi + 1) * cog].reshape(cog, rows)
        for n in range(batch):
            csel = slice(gi * cig, (gi + 1) * cig)
            if len(taps) == 1 and all(st == 1 for st in stride):
                # a 1x1 stride-1 kernel: the panel is the input itself
                panel = tap_view(n, csel, taps[0]).reshape(rows, npix)
            else:
                for i, tap in enumerate(taps):
                    cols[:, i] = tap_view(n, csel, tap)
                panel = cols.reshape(rows, npix)
            a = g[n, gi * cog:(gi + 1) * cog].reshape(cog, npix)
            if swap:
                gemm(panel, a.T, None, out_t, n > 0, isa, nthreads)
            else:
                gemm(a, panel.T, None, out2, n > 0, isa, nthreads)
        if swap:
            out2[...] = out_t.T
    return gw


# ------------------------------------------------------------------------------------------
# Convolution
# ------------------------------------------------------------------------------------------
def _conv_backward(ndim, grad_output, x, weight, stride, padding, dilation, groups,
                   padding_mode, needs, threads):
    needs = _check_needs(needs, _CONV_NEEDS)
    x_shape, unbatched, xb = _shape_of(x, ndim)
    if xb is None and "weight" in needs:
        raise TypeError("x must be an array (not a shape) when needs includes 'weight'")
    weight = check_array(weight, "weight")
    spec = _conv._spec(ndim, weight, None, stride, padding, dilation, groups, padding_mode,
                       "auto", copy=False)
    dtype = compute_dtype(*(a for a in (xb, weight, check_array(grad_output, "grad_output"))
                            if a is not None))
    nthreads = _threads.resolve(threads)
    plan = _conv._plan(spec, x_shape, dtype, 1, weights_prepared=False)
    g = _grad_array(grad_output, ndim, unbatched)
    _check_grad_shape(g, plan.out_shape, unbatched)
    pads = plan.pre_pad if plan.pre_pad is not None else plan.problem.pads
    in_size = tuple(x_shape[2:])
    out_size = plan.problem.out_size
    kernel, s, d = spec.kernel, spec.stride, spec.dilation
    gc = working_copy(g, dtype)
    w = working_copy(weight, dtype)
    grad_input = grad_weight = grad_bias = None
    if "input" in needs:
        grad_input = _conv_input_grad(ndim, gc, w, in_size, pads, kernel, s, d, spec.groups,
                                      spec.padding_mode, out_size, nthreads)
        if unbatched:
            grad_input = grad_input[0]
    if "weight" in needs:
        xw = working_copy(xb, dtype)
        if spec.padding_mode != "zeros":
            xw = np.pad(xw, ((0, 0), (0, 0)) + tuple(pads),
                        mode=_conv._NUMPY_PAD_MODE[spec.padding_mode])
        else:
            # zero padding, and only as far as the windows reach
            need = tuple((o - 1) * st + (k - 1) * dl + 1
                         for o, st, k, dl in zip(out_size, s, kernel, d))
            xw = _pad_or_crop(xw, [(b, nd - b - n) for (b, _), nd, n in
                                   zip(pads, need, in_size)])
        grad_weight = _weight_grad(xw, gc, kernel, s, d, spec.groups, dtype, nthreads)
    if "bias" in needs:
        grad_bias = _bias_grad(gc, dtype)
    return grad_input, grad_weight, grad_bias


def _flipped(w: np.ndarray, groups: int) -> np.ndarray:
    """Weight ``(C_out, C_in/g, *k)`` of a convolution as the weight ``(C_in, C_out/g, *k)`` of
    the convolution with the flipped kernel that computes its adjoint (stride 1)."""
    c_out, cig = w.shape[:2]
    cog = c_out // groups
    kernel = w.shape[2:]
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * len(kernel)
    wf = w.reshape(groups, cog, cig, *kernel).swapaxes(1, 2)[(slice(None),) + flip]
    return np.ascontiguousarray(wf.reshape(groups * cig, cog, *kernel))


def _conv_input_grad(ndim, g, w, in_size, pads, kernel, s, d, groups, mode, out_size, threads):
    padded = tuple(n + b + a for n, (b, a) in zip(in_size, pads))
    if mode == "zeros":
        target = pads  # the transposed result, cropped to the input
    else:
        target = ((0, 0),) * ndim  # the whole padded extent, folded back afterwards
    target_len = in_size if mode == "zeros" else padded
    if all(st == 1 for st in s):
        # adjoint of a stride-1 convolution: the flipped kernel, with the output gradient
        # padded by extent - 1 - pad before (a negative amount crops it)
        exts = [(k - 1) * dl + 1 for k, dl in zip(kernel, d)]
        pairs = [(e - 1 - tb, n + tb - o)
                 for e, (tb, _), n, o in zip(exts, target, target_len, out_size)]
        fn = (_conv.conv1d, _conv.conv2d, _conv.conv3d)[ndim - 1]
        gi = fn(_pad_or_crop(g, pairs), _flipped(w, groups), None, 1, 0, d, groups,
                threads=threads)
    else:
        # output_padding = the input positions past the last window: always < stride
        ops = tuple(p - ((o - 1) * st + (k - 1) * dl + 1) for p, o, st, k, dl in
                    zip(padded, out_size, s, kernel, d))
        fn = (_convt.conv_transpose1d, _convt.conv_transpose2d,
              _convt.conv_transpose3d)[ndim - 1]
        gi = fn(g, w, None, s, tuple(target), ops, groups, d, threads=threads)
    if mode != "zeros":
        gi = _fold_padding(gi, pads, mode)
    return np.ascontiguousarray(gi)


# ------------------------------------------------------------------------------------------
# Transposed convolution
# ------------------------------------------------------------------------------------------
def _conv_transpose_backward(ndim, grad_output, x, weight, stride, padding, output_padding,
                             groups, dilation, needs, threads):
    needs = _check_needs(needs, _CONV_NEEDS)
    x_shape, unbatched, xb = _shape_of(x, ndim)
    if xb is None and "weight" in needs:
        raise TypeError("x must be an array (not a shape) when needs includes 'weight'")
    plan = _convt._Plan(ndim, weight, None, stride, padding, output_padding, groups, dilation,
                        "auto", copy_weight=False)
    pads, out_size = plan.geometry(x_shape, None)
    g = _grad_array(grad_output, ndim, unbatched)
    _check_grad_shape(g, (x_shape[0], plan.c_out, *out_size), unbatched)
    dtype = compute_dtype(*(a for a in (xb, plan.weight, g) if a is not None))
    nthreads = _threads.resolve(threads)
    gc = working_copy(g, dtype)
    w = working_copy(plan.weight, dtype)
    s, d, kernel = plan.stride, plan.dilation, plan.kernel
    in_size = tuple(x_shape[2:])
    # the gradient on the full transposed result ((in - 1)*s + extent, no output padding):
    # output j is full position j + pad_before
    full_pairs = [(b, ((n - 1) * st + (k - 1) * dl + 1) - b - o)
                  for (b, _), n, st, k, dl, o in zip(pads, in_size, s, kernel, d, out_size)]
    g_full = _pad_or_crop(gc, full_pairs) if any(
        p != (0, 0) for p in full_pairs) else gc
    grad_input = grad_weight = grad_bias = None
    if "input" in needs:
        fn = (_conv.conv1d, _conv.conv2d, _conv.conv3d)[ndim - 1]
        # conv weight (C_out_conv = C_in, C_in_conv / groups = C_out / groups): the same array
        gi = fn(g_full, w, None, s, 0, d, plan.groups, threads=nthreads)
        grad_input = gi[0] if unbatched else gi
    if "weight" in needs:
        # gw[ci, co, t] = sum x[n, ci, i] * g_full[n, co, i*s + t*d]: the convolution's
        # weight gradient with g_full as its input and x as its output gradient
        grad_weight = _weight_grad(np.ascontiguousarray(g_full), working_copy(xb, dtype),
                                   kernel, s, d, plan.groups, dtype, nthreads)
    if "bias" in needs:
        grad_bias = _bias_grad(gc, dtype)
    return grad_input, grad_weight, grad_bias


# ------------------------------------------------------------------------------------------
# Pooling
# ------------------------------------------------------------------------------------------
def _scatter(g: np.ndarray, indices: np.ndarray, plane: int, dtype: np.dtype,
             threads) -> np.ndarray:
    """``grad_input (N*C, plane)``: each row of ``g`` summed into its row's ``indices`` (the
    compiled scatter of ``max_unpool``, accumulating; index -1 skipped), threads over planes."""
    rows = g.shape[0] * g.shape[1]
    out = np.empty((rows, plane), dtype=dtype)
    if rows == 0 or plane == 0:
        return out
    gflat = working_copy(g, dtype).reshape(rows, -1)
    iflat = np.ascontiguousarray(indices, dtype=np.int64).reshape(rows, -1)
    _pool._driver().max_pool_backward(gflat, iflat, out,
                                      _pool._thread_count(threads, out.size + gflat.size))
    return out


def _check_indices(indices, expected_shape, plane: int) -> np.ndarray:
    idx = check_array(indices, "indices")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array, got dtype {idx.dtype}")
    if idx.shape != tuple(expected_shape):
        raise ValueError(f"indices must have the forward's output shape "
                         f"{tuple(expected_shape)}, got {idx.shape}")
    if idx.size and (int(idx.max()) >= plane or int(idx.min()) < -1):
        raise ValueError(f"indices must lie in [0, {plane}) (flat indices into the input "
                         f"plane), got values in [{int(idx.min())}, {int(idx.max())}]")
    return idx.astype(np.int64, copy=False)


def _max_pool_backward(spatial, grad_output, x, kernel_size, stride, padding, dilation,
                       ceil_mode, indices, threads):
    ceil_mode = _pool._check_bool(ceil_mode, "ceil_mode")
    x_shape, unbatched, xb = _shape_of(x, spatial)
    if xb is None and indices is None:
        raise TypeError("x must be an array (not a shape) unless indices= is given")
    w = _pool._window(x_shape, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    out_shape = tuple(x_shape[:2]) + w.out_size
    g = _grad_array(grad_output, spatial, unbatched)
    _check_grad_shape(g, out_shape, unbatched)
    plane = math.prod(x_shape[2:])
    if indices is None:
        _, idx = _pool._max_pool(xb, spatial, kernel_size, stride, padding, dilation, ceil_mode,
                                 True, threads, None)
    else:
        idx = _check_indices(indices, out_shape[1:] if unbatched else out_shape, plane)
        idx = idx.reshape(out_shape)
    dtype = _grad_dtype(g, xb)
    gi = _scatter(g, idx.reshape(out_shape), plane, dtype, threads).reshape(x_shape)
    return gi[0] if unbatched else gi


def _grad_dtype(g: np.ndarray, xb: np.ndarray | None) -> np.dtype:
    if xb is not None and xb.dtype.kind == "f":
        return compute_dtype(g, xb)
    return compute_dtype(g)


def _avg_divisor(w, in_size, count_include_pad: bool, dtype) -> np.ndarray:
    """The divisor of every output position (outer product of per-dim tap counts)."""
    result = np.ones((), dtype=np.float64)
    for n, k, st, dl, (pb, pa), o in zip(in_size, w.kernel, w.stride, w.dilation, w.pads,
                                         w.out_size):
        pos = np.arange(o)[:, None] * st - pb + np.arange(k)[None, :] * dl
        lo, hi = (-pb, n + pa) if count_include_pad else (0, n)
        count = ((pos >= lo) & (pos < hi)).sum(axis=1).astype(np.float64)
        result = np.multiply.outer(result, count)
    return result.astype(dtype)


def _box_transpose(gs: np.ndarray, in_size, kernel, stride, dilation, pads) -> np.ndarray:
    """Adjoint of summing each window: every tap adds ``gs`` to the positions it read."""
    out_size = gs.shape[2:]
    lo = [pb for pb, _ in pads]
    # a buffer covering the padding and every window (ceil_mode may overhang the padding)
    ext = [max(n + pb + pa, (o - 1) * st + (k - 1) * dl + 1) if o > 0 else n + pb + pa
           for n, (pb, pa), o, st, k, dl in zip(in_size, pads, out_size, stride, kernel,
                                                 dilation)]
    buf = np.zeros(gs.shape[:2] + tuple(ext), dtype=gs.dtype)
    if all(k == st for k, st in zip(kernel, stride)) and all(dl == 1 for dl in dilation):
        # disjoint windows tiling the buffer: each tap a strided view of one assignment
        for tap in itertools.product(*(range(k) for k in kernel)):
            idx = tuple(slice(t, t + (o - 1) * st + 1, st)
                        for t, o, st in zip(tap, out_size, stride))
            buf[(slice(None), slice(None)) + idx] = gs
    else:
        for tap in itertools.product(*(range(k) for k in kernel)):
            idx = tuple(slice(t * dl, t * dl + (o - 1) * st + 1, st)
                        for t, dl, o, st in zip(tap, dilation, out_size, stride))
            buf[(slice(None), slice(None)) + idx] += gs
    crop = tuple(slice(b, b + n) for b, n in zip(lo, in_size))
    return buf[(slice(None), slice(None)) + crop]


def _avg_pool_backward(spatial, grad_output, x, kernel_size, stride, padding, dilation,
                       ceil_mode, count_include_pad, divisor_override, threads):
    ceil_mode = _pool._check_bool(ceil_mode, "ceil_mode")
    count_include_pad = _pool._check_bool(count_include_pad, "count_include_pad")
    if divisor_override is not None:
        divisor_override = check_int(divisor_override, "divisor_override", 1)
    _threads.resolve(threads)
    x_shape, unbatched, xb = _shape_of(x, spatial)
    w = _pool._window(x_shape, spatial, kernel_size, stride, padding, dilation, ceil_mode)
    g = _grad_array(grad_output, spatial, unbatched)
    _check_grad_shape(g, tuple(x_shape[:2]) + w.out_size, unbatched)
    dtype = _grad_dtype(g, xb)
    gc = working_copy(g, dtype)
    if divisor_override is not None:
        gs = gc / dtype.type(divisor_override)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            gs = gc / _avg_divisor(w, x_shape[2:], count_include_pad, dtype)
    gi = _box_transpose(gs, x_shape[2:], w.kernel, w.stride, w.dilation, w.pads)
    gi = np.ascontiguousarray(gi)
    return gi[0] if unbatched else gi


def _adaptive_backward(kind, spatial, grad_output, x, output_size, threads):
    _threads.resolve(threads)
    x_shape, unbatched, xb = _shape_of(x, spatial)
    if xb is None and kind == "max":
        raise TypeError("x must be an array (not a shape) for adaptive max pooling's gradient")
    in_size = tuple(x_shape[2:])
    bins = _pool._adaptive_bins(in_size, spatial, output_size)
    out_shape = tuple(x_shape[:2]) + bins.out_size
    g = _grad_array(grad_output, spatial, unbatched)
    _check_grad_shape(g, out_shape, unbatched)
    dtype = _grad_dtype(g, xb)
    if kind == "max":
        _, idx = _pool._adaptive(_pool._MAX, xb, spatial, output_size, True, threads, None)
        gi = _scatter(g, idx.reshape(out_shape), math.prod(in_size), dtype,
                      threads).reshape(x_shape)
        return gi[0] if unbatched else gi
    gc = working_copy(g, dtype)
    if bins.window is not None:  # equal disjoint bins: a box filter of kernel = stride
        wdw = bins.window
        gs = gc / dtype.type(wdw.taps)
        gi = np.ascontiguousarray(_box_transpose(gs, in_size, wdw.kernel, wdw.stride,
                                                 wdw.dilation, wdw.pads))
        return gi[0] if unbatched else gi
    # per dim, the (out, in) matrix of bin membership / bin size, applied one dim at a time
    gi = gc
    for axis, (n, o) in enumerate(zip(in_size, bins.out_size), start=2):
        i = np.arange(o)
        start, end = i * n // o, -(-(i + 1) * n // o)
        pos = np.arange(n)
        m = ((pos[None, :] >= start[:, None]) & (pos[None, :] < end[:, None])).astype(dtype)
        m /= (end - start).astype(dtype)[:, None]
        gi = np.moveaxis(np.einsum("...o,oi->...i", np.moveaxis(gi, axis, -1), m), -1, axis)
    gi = np.ascontiguousarray(gi, dtype=dtype)
    return gi[0] if unbatched else gi


# ------------------------------------------------------------------------------------------
# Public functions
# ------------------------------------------------------------------------------------------
def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    padding_mode="zeros", needs=_CONV_NEEDS, threads=None):
    return _conv_backward(1, grad_output, x, weight, stride, padding, dilation, groups,
                          padding_mode, needs, threads)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    padding_mode="zeros", needs=_CONV_NEEDS, threads=None):
    return _conv_backward(2, grad_output, x, weight, stride, padding, dilation, groups,
                          padding_mode, needs, threads)


def conv3d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    padding_mode="zeros", needs=_CONV_NEEDS, threads=None):
    return _conv_backward(3, grad_output, x, weight, stride, padding, dilation, groups,
                          padding_mode, needs, threads)


def conv_transpose1d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, needs=_CONV_NEEDS, threads=None):
    return _conv_transpose_backward(1, grad_output, x, weight, stride, padding, output_padding,
                                    groups, dilation, needs, threads)


def conv_transpose2d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, needs=_CONV_NEEDS, threads=None):
    return _conv_transpose_backward(2, grad_output, x, weight, stride, padding, output_padding,
                                    groups, dilation, needs, threads)


def conv_transpose3d_backward(grad_output, x, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, needs=_CONV_NEEDS, threads=None):
    return _conv_transpose_backward(3, grad_output, x, weight, stride, padding, output_padding,
                                    groups, dilation, needs, threads)


def max_pool1d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, threads=None):
    return _max_pool_backward(1, grad_output, x, kernel_size, stride, padding, dilation,
                              ceil_mode, indices, threads)


def max_pool2d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, threads=None):
    return _max_pool_backward(2, grad_output, x, kernel_size, stride, padding, dilation,
                              ceil_mode, indices, threads)


def max_pool3d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, *, indices=None, threads=None):
    return _max_pool_backward(3, grad_output, x, kernel_size, stride, padding, dilation,
                              ceil_mode, indices, threads)


def avg_pool1d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        threads=None):
    return _avg_pool_backward(1, grad_output, x, kernel_size, stride, padding, dilation,
                              ceil_mode, count_include_pad, divisor_override, threads)


def avg_pool2d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        threads=None):
    return _avg_pool_backward(2, grad_output, x, kernel_size, stride, padding, dilation,
                              ceil_mode, count_include_pad, divisor_override, threads)


def avg_pool3d_backward(grad_output, x, kernel_size, stride=None, padding=0, dilation=1,
                        ceil_mode=False, count_include_pad=True, divisor_override=None, *,
                        threads=None):
    return _avg_pool_backward(3, grad_output, x, kernel_size, stride, padding, dilation,
                              ceil_mode, count_include_pad, divisor_override, threads)


def adaptive_avg_pool1d_backward(grad_output, x, output_size, *, threads=None):
    return _adaptive_backward("avg", 1, grad_output, x, output_size, threads)


def adaptive_avg_pool2d_backward(grad_output, x, output_size, *, threads=None):
    return _adaptive_backward("avg", 2, grad_output, x, output_size, threads)


def adaptive_avg_pool3d_backward(grad_output, x, output_size, *, threads=None):
    return _adaptive_backward("avg", 3, grad_output, x, output_size, threads)


def adaptive_max_pool1d_backward(grad_output, x, output_size, *, threads=None):
    return _adaptive_backward("max", 1, grad_output, x, output_size, threads)


def adaptive_max_pool2d_backward(grad_output, x, output_size, *, threads=None):
    return _adaptive_backward("max", 2, grad_output, x, output_size, threads)


def adaptive_max_pool3d_backward(grad_output, x, output_size, *, threads=None):
    return _adaptive_backward("max", 3, grad_output, x, output_size, threads)


# ------------------------------------------------------------------------------------------
# Docstrings
# ------------------------------------------------------------------------------------------
_DIMS = {1: "W", 2: "H, W", 3: "D, H, W"}

_CONV_DOC = """Gradients of ``y = fastconv.conv{d}d(x, weight, bias, ...)`` (as ``torch.autograd``).

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to ``y``: the forward's output shape.
    x : array_like or tuple of int
        The forward's input ``(N, C_in, {dims})`` or unbatched ``(C_in, {dims})``; its shape
        is enough when ``needs`` leaves out ``"weight"``.
    weight : array_like
        The forward's ``(C_out, C_in // groups, *kernel)``.
    stride, padding, dilation, groups, padding_mode
        The forward's (every form of :func:`fastconv.conv{d}d`); reflect, replicate and
        circular padding fold the border's gradient back onto the elements it copies.
    needs : tuple of str
        Which of ``"input"``, ``"weight"``, ``"bias"`` to compute; the others are None.
    threads : int, optional
        Threads to use (None: ``fastconv.get_num_threads()``).

    Returns
    -------
    (grad_input, grad_weight, grad_bias)
        Shapes of ``x``, ``weight`` and ``(C_out,)``; float32 or float64 as the forward.
        ``grad_input`` is a transposed convolution of ``grad_output`` (stride 1: a convolution
        with the flipped kernel), ``grad_weight`` a GEMM of ``grad_output`` with the im2col
        panel of ``x``, ``grad_bias`` the sum of ``grad_output`` over batch and positions.

    Examples
    --------
    {example}
    """

_CONVT_DOC = """Gradients of ``y = fastconv.conv_transpose{d}d(x, weight, bias, ...)`` (as
    ``torch.autograd``).

    Parameters
    ----------
    grad_output : array_like
        Gradient of the loss with respect to ``y``: the forward's output shape.
    x : array_like or tuple of int
        The forward's input ``(N, C_in, {dims})`` or unbatched; its shape is enough when
        ``needs`` leaves out ``"weight"``.
    weight : array_like
        The forward's ``(C_in, C_out // groups, *kernel)``.
    stride, padding, output_padding, groups, dilation
        The forward's (every form of :func:`fastconv.conv_transpose{d}d`).
    needs : tuple of str
        Which of ``"input"``, ``"weight"``, ``"bias"`` to compute; the others are None.
    threads : int, optional
        Threads to use.

    Returns
    -------
    (grad_input, grad_weight, grad_bias)
        ``grad_input`` is a convolution of ``grad_output`` with the same weight and stride.

    Examples
    --------
    {example}
    """

_MAX_DOC = """Gradient with respect to ``x`` of ``fastconv.max_pool{d}d(x, ...)``.

    Each output's gradient goes to the element the forward's index names (ties and NaN as
    the forward: the first in window order, the NaN), summed where windows share it.

    Parameters
    ----------
    grad_output : array_like
        The forward's output shape.
    x : array_like or tuple of int
        The forward's input ``(N, C, {dims})`` or ``(C, {dims})``; its shape is enough with
        ``indices``.
    kernel_size, stride, padding, dilation, ceil_mode
        The forward's.
    indices : array_like, optional
        The forward's ``return_indices=True`` indices (else the forward is run again for them).
    threads : int, optional
        Threads to use.

    Returns
    -------
    numpy.ndarray
        ``x``'s shape.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.array([[[1.0, 3.0, 2.0, 0.0, 5.0]]])
    >>> fastconv.max_pool1d_backward(np.ones((1, 1, 2)), x, 3, stride=2)
    array([[[0., 1., 0., 0., 1.]]])
    """

_AVG_DOC = """Gradient with respect to ``x`` of ``fastconv.avg_pool{d}d(x, ...)``: the
    transposed box filter of ``grad_output / divisor``.

    Parameters
    ----------
    grad_output : array_like
        The forward's output shape.
    x : array_like or tuple of int
        The forward's input, or its shape ``(N, C, {dims})`` / ``(C, {dims})``.
    kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override
        The forward's.
    threads : int, optional
        Threads to use.

    Returns
    -------
    numpy.ndarray
        ``x``'s shape.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> fastconv.avg_pool1d_backward(np.array([[[3.0, 6.0]]]), (1, 1, 5), 3, stride=2)
    array([[[1., 1., 3., 2., 2.]]])
    """

_ADAPTIVE_DOC = """Gradient with respect to ``x`` of ``fastconv.adaptive_{kind}_pool{d}d(x,
    output_size)``: {how}.

    Parameters
    ----------
    grad_output : array_like
        The forward's output shape.
    x : array_like{shape_ok}
        The forward's input ``(N, C, {dims})`` or ``(C, {dims})``.
    output_size
        The forward's.
    threads : int, optional
        Threads to use.

    Returns
    -------
    numpy.ndarray
        ``x``'s shape.

    Examples
    --------
    {example}
    """

_CONV_EXAMPLES = {
    1: """>>> import numpy as np, fastconv
    >>> x = np.arange(4.0).reshape(1, 1, 4)
    >>> gx, gw, gb = fastconv.conv1d_backward(np.ones((1, 1, 3)), x, np.ones((1, 1, 2)))
    >>> gx, gw, gb
    (array([[[1., 2., 2., 1.]]]), array([[[3., 6.]]]), array([3.]))""",
    2: """>>> import numpy as np, fastconv
    >>> x, w = np.ones((2, 3, 8, 8), np.float32), np.ones((4, 3, 3, 3), np.float32)
    >>> g = np.ones((2, 4, 4, 4), np.float32)
    >>> gx, gw, gb = fastconv.conv2d_backward(g, x, w, stride=2, padding=1)
    >>> gx.shape, gw.shape, gb.tolist()
    ((2, 3, 8, 8), (4, 3, 3, 3), [32.0, 32.0, 32.0, 32.0])
    >>> gx, _, _ = fastconv.conv2d_backward(g, x.shape, w, stride=2, padding=1,
    ...                                     needs=("input",))""",
    3: """>>> import numpy as np, fastconv
    >>> x, w = np.ones((2, 4, 4, 4)), np.ones((6, 1, 3, 3, 3))  # unbatched, groups=2
    >>> gx, gw, gb = fastconv.conv3d_backward(np.ones((6, 2, 2, 2)), x, w, groups=2)
    >>> gx.shape, gw.shape, gb.shape
    ((2, 4, 4, 4), (6, 1, 3, 3, 3), (6,))""",
}
_CONVT_EXAMPLES = {
    1: """>>> import numpy as np, fastconv
    >>> g = np.arange(4.0).reshape(1, 1, 4)
    >>> fastconv.conv_transpose1d_backward(g, np.ones((1, 1, 2)), np.ones((1, 1, 2)), stride=2)
    (array([[[1., 5.]]]), array([[[2., 4.]]]), array([6.]))""",
    2: """>>> import numpy as np, fastconv
    >>> x, w = np.ones((1, 8, 4, 4), np.float32), np.ones((8, 3, 4, 4), np.float32)
    >>> y = fastconv.conv_transpose2d(x, w, stride=2, padding=1)
    >>> gx, gw, gb = fastconv.conv_transpose2d_backward(np.ones_like(y), x, w, stride=2,
    ...                                                 padding=1)
    >>> y.shape, gx.shape, gw.shape, gb.shape
    ((1, 3, 8, 8), (1, 8, 4, 4), (8, 3, 4, 4), (3,))""",
    3: """>>> import numpy as np, fastconv
    >>> x, w = np.ones((1, 2, 3, 3, 3)), np.ones((2, 2, 2, 2, 2))
    >>> g = np.ones((1, 2, 6, 6, 6))
    >>> [a.shape for a in fastconv.conv_transpose3d_backward(g, x, w, stride=2)]
    [(1, 2, 3, 3, 3), (2, 2, 2, 2, 2), (2,)]""",
}
_ADAPTIVE_EXAMPLES = {
    "avg": """>>> import numpy as np, fastconv
    >>> fastconv.adaptive_avg_pool1d_backward(np.array([[[3.0, 6.0]]]), (1, 1, 5), 2)
    array([[[1., 1., 3., 2., 2.]]])""",
    "max": """>>> import numpy as np, fastconv
    >>> x = np.array([[[1.0, 3.0, 2.0, 0.0, 5.0]]])
    >>> fastconv.adaptive_max_pool1d_backward(np.array([[[3.0, 6.0]]]), x, 2)
    array([[[0., 3., 0., 0., 6.]]])""",
}

for _d in (1, 2, 3):
    _dims = _DIMS[_d]
    globals()[f"conv{_d}d_backward"].__doc__ = _CONV_DOC.format(
        d=_d, dims=_dims, example=_CONV_EXAMPLES[_d])
    globals()[f"conv_transpose{_d}d_backward"].__doc__ = _CONVT_DOC.format(
        d=_d, dims=_dims, example=_CONVT_EXAMPLES[_d])
    globals()[f"max_pool{_d}d_backward"].__doc__ = _MAX_DOC.format(d=_d, dims=_dims)
    globals()[f"avg_pool{_d}d_backward"].__doc__ = _AVG_DOC.format(d=_d, dims=_dims)
    globals()[f"adaptive_avg_pool{_d}d_backward"].__doc__ = _ADAPTIVE_DOC.format(
        kind="avg", d=_d, dims=_dims, shape_ok=" or tuple of int",
        how="each bin's gradient divided by its size, spread over its elements",
        example=_ADAPTIVE_EXAMPLES["avg"])
    globals()[f"adaptive_max_pool{_d}d_backward"].__doc__ = _ADAPTIVE_DOC.format(
        kind="max", d=_d, dims=_dims, shape_ok="",
        how="each bin's gradient to the element its maximum came from",
        example=_ADAPTIVE_EXAMPLES["max"])
del _d, _dims
