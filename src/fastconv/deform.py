"""Deformable convolution: ``deform_conv2d`` and the layer object ``DeformConv2d``.

torchvision's ``deform_conv2d`` (DCN v1; v2 with ``mask``), which ONNX ``DeformConv`` shares.
The weight, bias, stride, padding, dilation and groups are validated and resolved exactly as
``conv2d``'s (``fastconv.conv``'s spec and plan, algorithm ``"im2col"``): the compiled kernel
(``include/fastconv/deform.h``) is the im2col GEMM with the bilinear sampling written straight
into the GEMM's packed panels, and it takes the same packed weight. This module adds the checks
of ``offset`` and ``mask`` and infers the number of offset groups from ``offset``.
"""

import numpy as np

from . import _dispatch, _threads
from . import conv as _conv
from ._layout import with_layout
from ._validate import batched, check_array, check_out, compute_dtype, working_copy

__all__ = ["deform_conv2d", "DeformConv2d"]

#: int32 indices address a channel plane in the kernel; the GEMM takes int sizes.
_INT32_MAX = 2**31 - 1
_FUNCTION_PLANS: dict[tuple, tuple] = {}


def _offset_groups(spec, x_shape, offset, mask, out_size, unbatched):
    """The number of offset groups, after checking ``offset`` and ``mask`` against the call."""
    n, c_in = x_shape[:2]
    kh, kw = spec.kernel
    taps = kh * kw
    lead = () if unbatched else (n,)
    what = "(2 * offset_groups * kH * kW, H_out, W_out)" if unbatched else \
        "(N, 2 * offset_groups * kH * kW, H_out, W_out)"
    if offset.ndim != len(lead) + 3:
        raise ValueError(f"offset must have shape {what} = {(*lead, f'{2 * taps}*G', *out_size)}"
                         f", got shape {offset.shape}")
    channels = offset.shape[len(lead)]
    if (offset.shape[:len(lead)] != lead or tuple(offset.shape[len(lead) + 1:]) != out_size
            or channels == 0 or channels % (2 * taps)):
        raise ValueError(
            f"offset must have shape {what} = {(*lead, f'{2 * taps}*G', *out_size)} for x of "
            f"shape {x_shape[1:] if unbatched else x_shape} and a {kh}x{kw} kernel, got shape "
            f"{offset.shape}")
    groups = channels // (2 * taps)
    if c_in % groups:
        raise ValueError(f"offset has {channels} channels, so offset_groups = {groups}, which "
                         f"must divide C_in = {c_in}")
    if mask is not None:
        expected = (*lead, groups * taps, *out_size)
        if mask.shape != expected:
            raise ValueError(f"mask must have shape {expected} (offset_groups * kH * kW = "
                             f"{groups} * {kh} * {kw} channels), got shape {mask.shape}")
    return groups


def _plan(spec, x, offset, mask, threads):
    """(plan, unbatched, offset groups) for this call; sizes checked."""
    xb, unbatched = batched(x, 2)
    dtype = compute_dtype(x, spec.weight, offset, mask)
    plan = _conv._plan(spec, xb.shape, dtype, threads)
    out_size = tuple(plan.problem.out_size)
    groups = _offset_groups(spec, xb.shape, offset, mask, out_size, unbatched)
    h, w = xb.shape[2:]
    cpg = spec.weight.shape[1]
    if h * w > _INT32_MAX or out_size[0] * out_size[1] > _INT32_MAX \
            or cpg * spec.kernel[0] * spec.kernel[1] > _INT32_MAX:
        raise ValueError(f"deform_conv2d needs H * W, H_out * W_out and C_in // groups * kH * "
                         f"kW below 2**31, got input {(h, w)}, output {out_size}, weight "
                         f"{spec.weight.shape}")
    check_out(None, plan.out_shape, plan.dtype, ())  # refuses unrepresentable shapes
    return plan, unbatched, groups


def _run(plan, unbatched, groups, x, offset, mask, weight, bias, out):
    """Compute into ``out`` (or a new array); ``weight`` is packed for the plan's GEMM."""
    y = np.empty(plan.out_shape[1:] if unbatched else plan.out_shape, dtype=plan.dtype) \
        if out is None else out
    if y.size == 0:
        return y
    dt = plan.dtype
    _conv._kernels().deform(
        plan.geometry, groups, working_copy(x, dt).reshape(-1),
        working_copy(offset, dt).reshape(-1),
        None if mask is None else working_copy(mask, dt).reshape(-1), weight,
        None if bias is None else working_copy(bias, dt), y.reshape(-1), _dispatch.isa_index(),
        plan.threads)
    return y


def _check_inputs(x, offset, mask):
    x = check_array(x, "x")
    offset = check_array(offset, "offset")
    if mask is not None:
        mask = check_array(mask, "mask")
    return x, offset, mask


def deform_conv2d(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                  mask=None, *, threads=None, out=None):
    """2-D deformable convolution (DCN v1; v2 with ``mask``), as ``torchvision.ops.deform_conv2d``.

    Tap ``t = (i, j)`` of output pixel ``(oh, ow)`` reads input channel ``c`` (of offset group
    ``g``, the channels being split into ``G`` consecutive runs) at the fractional position
    ``(oh*sH - pH + i*dH + dy, ow*sW - pW + j*dW + dx)``, where ``(dy, dx)`` =
    ``offset[n, 2*(g*kH*kW + t) : 2*(g*kH*kW + t) + 2, oh, ow]``, by bilinear interpolation; a
    position with ``h <= -1``, ``h >= H``, ``w <= -1`` or ``w >= W`` reads zero, and so does
    each interpolation corner outside the input. With ``mask``, the sample is multiplied by
    ``mask[n, g*kH*kW + t, oh, ow]``. The samples are then convolved with ``weight`` as
    ``conv2d`` does (ONNX ``DeformConv`` is the same computation). Zero offsets give exactly
    ``conv2d(..., algorithm="im2col")``.

    Parameters
    ----------
    x : array_like
        Input, ``(N, C_in, H, W)`` or unbatched ``(C_in, H, W)``.
    offset : array_like
        ``(N, 2 * G * kH * kW, H_out, W_out)`` (unbatched: no ``N``): a ``(dy, dx)`` pair per
        offset group and kernel tap, taps in row-major order. ``G`` (the offset groups) is
        inferred from it and must divide ``C_in``.
    weight : array_like
        ``(C_out, C_in // groups, kH, kW)``.
    bias : array_like, optional
        ``(C_out,)``.
    stride, padding, dilation, groups
        As for ``fastconv.conv2d`` (every padding form: an int, per-dim ints, ``(before,
        after)`` pairs, ``"valid"``, ``"same"``, ``"same_lower"``, ``"full"``; zero padding).
    mask : array_like, optional
        ``(N, G * kH * kW, H_out, W_out)`` modulation (DCN v2); None: DCN v1.
    threads : int, optional
        Threads to use (None: ``fastconv.get_num_threads()``; -1: every CPU).
    out : numpy.ndarray, optional
        C-contiguous array of the output's exact shape and dtype to fill and return.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, H_out, W_out)`` (unbatched input: no ``N``), float32 or float64 as
        ``np.result_type(x, weight, offset, mask, np.float32)``.

    Examples
    --------
    Offsets of (0, 1) shift every tap one pixel right; bilinear weights take fractional ones.

    >>> import numpy as np, fastconv
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 1, 1), dtype=np.float32)
    >>> offset = np.zeros((1, 2, 4, 4), dtype=np.float32)
    >>> offset[:, 1] = 0.5                               # dx = 0.5 for the one tap
    >>> fastconv.deform_conv2d(x, offset, w)[0, 0]
    array([[ 0.5,  1.5,  2.5,  1.5],
           [ 4.5,  5.5,  6.5,  3.5],
           [ 8.5,  9.5, 10.5,  5.5],
           [12.5, 13.5, 14.5,  7.5]], dtype=float32)
    """
    x, offset, mask = _check_inputs(x, offset, mask)
    weight = check_array(weight, "weight")
    if bias is not None:
        bias = check_array(bias, "bias")
    isa = _dispatch.isa_index()
    key = (x.shape, x.dtype.str, offset.shape, offset.dtype.str,
           None if mask is None else (mask.shape, mask.dtype.str), weight.shape,
           weight.dtype.str, None if bias is None else (bias.shape, bias.dtype.str),
           repr((stride, padding, dilation, groups)), _threads.resolve(threads), isa)
    cached = _FUNCTION_PLANS.get(key)
    if cached is None:
        spec = _conv._spec(2, weight, bias, stride, padding, dilation, groups, "zeros",
                           "im2col", copy=False)
        cached = _plan(spec, x, offset, mask, threads)
        _conv._remember(_FUNCTION_PLANS, key, cached)
    plan, unbatched, offset_groups = cached
    if out is not None:
        out = check_out(out, plan.out_shape[1:] if unbatched else plan.out_shape, plan.dtype,
                        [x, offset, mask, weight, bias])
    w = _conv._weight_for("im2col", working_copy(weight, plan.dtype), plan.geometry, isa,
                          plan.threads)
    return _run(plan, unbatched, offset_groups, x, offset, mask, w, bias, out)



# data_format= / weight_format= (fastconv._layout): offset and mask are feature maps like x
deform_conv2d = with_layout(2, arrays=("x", "offset", "mask"), weights=True)(deform_conv2d)


class DeformConv2d:
    """2-D deformable convolution layer: weights validated, copied and packed once.

    Called as ``layer(x, offset, mask=None, *, threads=None, out=None)``; computes what
    ``fastconv.deform_conv2d(x, offset, weight, bias, stride, padding, dilation, groups,
    mask)`` does. At construction the weight and bias are copied (later changes to the
    caller's arrays do not affect the layer) and packed for the GEMM.

    Parameters
    ----------
    weight : array_like
        ``(C_out, C_in // groups, kH, kW)``.
    bias : array_like, optional
        ``(C_out,)``.
    stride, padding, dilation, groups
        As for ``fastconv.deform_conv2d``.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> layer = fastconv.DeformConv2d(np.ones((8, 4, 3, 3), dtype=np.float32), padding=1)
    >>> x = np.ones((1, 4, 6, 6), dtype=np.float32)
    >>> offset = np.zeros((1, 2 * 2 * 9, 6, 6), dtype=np.float32)  # 2 offset groups
    >>> y = layer(x, offset, mask=np.ones((1, 2 * 9, 6, 6), dtype=np.float32))
    >>> y.shape, float(y[0, 0, 0, 0]), float(y[0, 0, 2, 2])
    ((1, 8, 6, 6), 16.0, 36.0)
    """

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        self._spec = _conv._spec(2, weight, bias, stride, padding, dilation, groups, "zeros",
                                 "im2col", copy=True)
        self._packed: dict[tuple, np.ndarray] = {}
        self._calls: dict[tuple, tuple] = {}
        self._packed_weight(self._spec.weight.dtype, _conv._weight_geometry(self._spec),
                            _dispatch.isa_index())

    @property
    def weight(self) -> np.ndarray:
        """The layer's own (read-only) copy of the weight."""
        return self._spec.weight

    @property
    def bias(self) -> np.ndarray | None:
        """The layer's own (read-only) copy of the bias, or None."""
        return self._spec.bias

    def _packed_weight(self, dtype, geometry: tuple, isa: int) -> np.ndarray:
        key = (np.dtype(dtype).str, isa)
        w = self._packed.get(key)
        if w is None:
            w = _conv._weight_for("im2col", working_copy(self._spec.weight, dtype), geometry,
                                  isa)
            w.flags.writeable = False
            self._packed[key] = w
        return w

    def __call__(self, x, offset, mask=None, *, threads=None, out=None) -> np.ndarray:
        """Deformable convolution of ``x`` with ``offset`` (and ``mask``); returns the output.

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.DeformConv2d(np.ones((1, 1, 1, 2)))   # a 1x2 kernel
        >>> offset = np.zeros((4, 1, 3))         # unbatched: (dy, dx) of tap 0, of tap 1
        >>> offset[1::2] = 0.5                   # both taps half a pixel to the right
        >>> layer(np.arange(4.0).reshape(1, 1, 4), offset)
        array([[[2., 4., 4.]]])
        """
        x, offset, mask = _check_inputs(x, offset, mask)
        isa = _dispatch.isa_index()
        key = (x.shape, x.dtype.str, offset.shape, offset.dtype.str,
               None if mask is None else (mask.shape, mask.dtype.str),
               _threads.resolve(threads), isa)
        call = self._calls.get(key)
        if call is None:
            plan, unbatched, groups = _plan(self._spec, x, offset, mask, threads)
            bias = self._spec.bias
            call = (plan, unbatched, groups,
                    self._packed_weight(plan.dtype, plan.geometry, isa),
                    None if bias is None else working_copy(bias, plan.dtype))
            _conv._remember(self._calls, key, call)
        plan, unbatched, groups, w, bias = call
        if out is not None:
            out = check_out(out, plan.out_shape[1:] if unbatched else plan.out_shape,
                            plan.dtype, [x, offset, mask])
        return _run(plan, unbatched, groups, x, offset, mask, w, bias, out)

    def backward(self, grad_output, x, offset, mask=None, *,
                 needs=("input", "offset", "weight", "bias", "mask"), threads=None):
        """Gradients of a call ``y = layer(x, offset, mask)``: ``(grad_input, grad_offset,
        grad_weight, grad_bias, grad_mask)``.

        Same as :func:`fastconv.gradients.deform_conv2d_backward` with the layer's parameters
        (``grad_bias`` is None for a layer without bias, ``grad_mask`` without ``mask``).

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.DeformConv2d(np.ones((2, 3, 3, 3)), np.zeros(2), padding=1)
        >>> x, offset = np.ones((1, 3, 5, 5)), np.full((1, 18, 5, 5), 0.25)
        >>> grads = layer.backward(np.ones((1, 2, 5, 5)), x, offset)
        >>> [None if a is None else a.shape for a in grads]
        [(1, 3, 5, 5), (1, 18, 5, 5), (2, 3, 3, 3), (2,), None]
        """
        from . import gradients

        s = self._spec
        return gradients._deform_backward(grad_output, x, offset, s.weight, s.stride, s.padding,
                                          s.dilation, s.groups, mask, needs, threads,
                                          bias_present=s.bias is not None)

    def __repr__(self) -> str:
        s = self._spec
        return (f"DeformConv2d(weight shape {s.weight.shape}, bias="
                f"{'yes' if s.bias is not None else 'None'}, stride={s.stride}, "
                f"padding={s.padding!r}, dilation={s.dilation}, groups={s.groups})")
