"""Convolution: ``conv1d``, ``conv2d``, ``conv3d`` and the layer objects ``Conv1d/2d/3d``.

Every argument is validated here, once; the result is a :class:`_Plan` (explicit padding,
working dtype, algorithm, thread count, the problem as a 3-D geometry) that the compiled driver
``fastconv._conv`` runs on C-contiguous arrays with a preallocated output. The algorithm choice
lives in ``fastconv._algorithms``. Layer objects validate and copy their weights once and keep
them packed for the GEMM, per working dtype and instruction set; with ``algorithm="measure"``
they time the candidates of ``fastconv._algorithms.candidates`` once per input shape, dtype and
thread count (``fastconv._measure``: memory and disk cache).
"""

from dataclasses import dataclass, replace
from math import prod

import numpy as np

from . import _algorithms, _dispatch, _measure, _threads, _winograd_plan
from ._extension import load
from ._layout import (
    channels_last,
    to_channels_first,
    weight_as_oihw,
    with_layout,
    write_channels_last,
)
from ._validate import (
    batched,
    check_array,
    check_choice,
    check_int,
    check_out,
    compute_dtype,
    int_tuple,
    working_copy,
)
from .shapes import conv_output_size, resolve_padding
from .shapes._args import explicit_padding

# load the OpenMP runtime now, so that a threadpoolctl block entered before the first call
# finds it to limit
_threads.preload_runtime()

__all__ = ["conv1d", "conv2d", "conv3d", "Conv1d", "Conv2d", "Conv3d"]

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
#: Plans kept per layer object and for the functional calls (one entry per input shape, dtype,
#: thread count and ISA); small caches: a call that misses only pays the planning again.
_PLAN_CACHE_SIZE = 64
_FUNCTION_PLANS: dict[tuple, tuple] = {}
_NUMPY_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                   "circular": "wrap"}


@dataclass(frozen=True)
class _Spec:
    """The validated arguments that do not depend on the input: what a layer object keeps."""

    ndim: int
    weight: np.ndarray  # (C_out, C_in // groups, *kernel), read-only
    bias: np.ndarray | None
    stride: tuple[int, ...]
    padding: object  # as given (resolved per input size by fastconv.shapes)
    dilation: tuple[int, ...]
    groups: int
    padding_mode: str
    algorithm: str

    @property
    def kernel(self) -> tuple[int, ...]:
        return tuple(self.weight.shape[2:])

    @property
    def c_out(self) -> int:
        return self.weight.shape[0]


@dataclass(frozen=True)
class _Plan:
    """One call, ready for the compiled driver."""

    problem: _algorithms.Problem
    algorithm: str  # public name
    kernel: str  # fastconv._conv.KERNELS key
    dtype: np.dtype
    threads: int
    pre_pad: tuple[tuple[int, int], ...] | None  # non-zero padding modes: pad x in NumPy first
    padding_mode: str
    geometry: tuple  # 3-D geometry for fastconv._conv

    @property
    def out_shape(self) -> tuple[int, ...]:
        p = self.problem
        return (p.batch, p.c_out, *p.out_size)


def _function_name(ndim: int) -> str:
    return f"conv{ndim}d"


def _spec(ndim: int, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
          copy: bool, layer: bool = False) -> _Spec:
    weight = check_array(weight, "weight")
    if weight.ndim != ndim + 2:
        raise ValueError(
            f"weight must have {ndim + 2} dims (C_out, C_in // groups, {ndim} kernel sizes) for "
            f"{_function_name(ndim)}, got shape {weight.shape}")
    if any(n < 1 for n in weight.shape[1:]):
        raise ValueError(f"weight must have C_in // groups >= 1 and kernel sizes >= 1, got "
                         f"shape {weight.shape}")
    groups = check_int(groups, "groups", 1)
    if weight.shape[0] % groups:
        raise ValueError(f"weight.shape[0] (C_out = {weight.shape[0]}) must be divisible by "
                         f"groups = {groups}")
    if bias is not None:
        bias = check_array(bias, "bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape (C_out,) = ({weight.shape[0]},), got "
                             f"{bias.shape}")
    stride = int_tuple(stride, ndim, "stride", 1)
    dilation = int_tuple(dilation, ndim, "dilation", 1)
    padding_mode = check_choice(padding_mode, "padding_mode", PADDING_MODES)
    if algorithm == "measure" and not layer:
        raise ValueError(
            f"algorithm='measure' is for layer objects (fastconv.Conv{ndim}d(weight, ..., "
            f"algorithm='measure')), which keep what they measured; {_function_name(ndim)}() "
            f"takes one of {', '.join(repr(a) for a in _algorithms.ALGORITHMS)}")
    algorithm = check_choice(algorithm, "algorithm",
                             _algorithms.ALGORITHMS + (("measure",) if layer else ()))
    kernel = tuple(weight.shape[2:])
    if algorithm.startswith("winograd"):
        reason = _algorithms.winograd_unsupported(algorithm, ndim, kernel, stride, dilation,
                                                  weight.shape[1] * groups, weight.shape[0],
                                                  groups)
        if reason:
            raise ValueError(reason)
    if isinstance(padding, str):
        if padding not in ("valid", "same", "same_lower", "full"):
            raise ValueError(f"padding must be an int, a tuple, or one of 'valid', 'same', "
                             f"'same_lower', 'full', got {padding!r}")
    else:
        # explicit padding is checked now (input sizes do not matter for it)
        explicit_padding(_as_tuple(padding), ndim)
    if copy:
        # own read-only copies: later changes to the caller's arrays must not reach the layer
        wdtype = compute_dtype(weight)
        weight = np.array(weight, dtype=wdtype, order="C", copy=True)
        weight.flags.writeable = False
        if bias is not None:
            bias = np.array(bias, dtype=np.result_type(bias, np.float32), copy=True)
            bias.flags.writeable = False
    return _Spec(ndim, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm)


def _as_tuple(padding):
    """Lists (and arrays) of padding → tuples, as fastconv.shapes takes them."""
    if isinstance(padding, (list, np.ndarray)):
        return tuple(tuple(p) if isinstance(p, (list, tuple, np.ndarray)) else p
                     for p in padding)
    return padding


def _work(problem: _algorithms.Problem, algorithm: str) -> float:
    """The multiplications a convolution does (Winograd's, not the direct convolution's)."""
    p = problem
    macs = p.batch * p.c_out * p.cin_per_group * prod(p.kernel) * prod(p.out_size)
    tile = _winograd_plan.ALGORITHM_TILE.get(algorithm)
    if tile:  # alpha^2 multiplications per m x m outputs, where the direct convolution does 9 m^2
        macs = macs * (tile + 2) ** 2 / (9 * tile * tile)
    return macs


def _plan(spec: _Spec, x_shape: tuple[int, ...], dtype: np.dtype, threads: object,
          weights_prepared: bool = True, pad_zeros: bool = False) -> _Plan:
    """Resolve sizes, padding, algorithm and threads for an input of ``x_shape`` (batched).

    ``weights_prepared``: False for the functional calls, which prepare (pack, transform) the
    weight on every call; ``"auto"`` weighs that cost (``fastconv._algorithms.choose``).
    ``pad_zeros``: write zero padding out in NumPy instead of skipping it in the kernels (a
    NaN or infinite weight times a padding zero must give NaN, as in the reference).
    """
    ndim = spec.ndim
    batch, c_in, in_size = x_shape[0], x_shape[1], tuple(x_shape[2:])
    cpg = spec.weight.shape[1]
    if c_in != cpg * spec.groups:
        raise ValueError(
            f"x has {c_in} input channels but weight {spec.weight.shape} with groups="
            f"{spec.groups} expects C_in = weight.shape[1] * groups = {cpg * spec.groups}")
    if any(n < 1 for n in in_size):
        raise ValueError(f"x must have spatial sizes >= 1, got shape {x_shape}")
    kernel = spec.kernel
    padding = _as_tuple(spec.padding)
    pads = resolve_padding(padding, in_size, kernel, spec.stride, spec.dilation)
    out_size = conv_output_size(in_size, kernel, spec.stride, pads, spec.dilation)
    pre_pad = None
    if (spec.padding_mode != "zeros" or pad_zeros) and any(p != (0, 0) for p in pads):
        if spec.padding_mode != "zeros":
            _check_mode_padding(spec.padding_mode, in_size, pads)
        pre_pad = pads
        in_size = tuple(n + b + a for n, (b, a) in zip(in_size, pads))
        pads = ((0, 0),) * ndim
    problem = _algorithms.Problem(batch, c_in, spec.c_out, spec.groups, in_size, kernel,
                                  spec.stride, spec.dilation, pads, tuple(out_size))
    algorithm = _algorithms.choose(spec.algorithm, problem, _dispatch.current_isa(),
                                   np.dtype(dtype).itemsize, weights_prepared=weights_prepared)
    nthreads = _threads.for_work(_threads.resolve(threads), _work(problem, algorithm),
                                 _threads.CONV_MIN_WORK_PER_THREAD)
    lead = 3 - ndim
    geometry = (batch, c_in, spec.c_out, spec.groups, (1,) * lead + in_size,
                (1,) * lead + tuple(out_size), (1,) * lead + kernel, (1,) * lead + spec.stride,
                (1,) * lead + spec.dilation, (0,) * lead + tuple(b for b, _ in pads))
    return _Plan(problem, algorithm, _algorithms.kernel(algorithm, problem), np.dtype(dtype),
                 nthreads, pre_pad, spec.padding_mode, geometry)


def _check_mode_padding(mode: str, in_size: tuple[int, ...], pads) -> None:
    # PyTorch's limits: reflect needs pad < size, circular pad <= size
    for dim, (n, (before, after)) in enumerate(zip(in_size, pads)):
        limit_ok = max(before, after) < n if mode == "reflect" else max(before, after) <= n
        if mode != "replicate" and not limit_ok:
            rule = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"padding_mode={mode!r} needs padding {rule} the input size: padding "
                f"{(before, after)} in spatial dim {dim} of size {n}")


def _kernels():
    """The compiled module ``fastconv._conv`` (imported once)."""
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = load("_conv")
    return _KERNELS


_KERNELS = None


def _remember(cache: dict, key: tuple, value: tuple) -> None:
    if len(cache) >= _PLAN_CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _weight_for(kernel: str, weight: np.ndarray, geometry: tuple, isa: int,
                threads: int = 1) -> np.ndarray:
    """The weight as the kernel takes it (flat; packed for the GEMM for im2col)."""
    if kernel.startswith("winograd_"):
        # transformed (G g G^T) and packed for the GEMM; geometry[3] is groups
        return _winograd_plan.prepare_weights(weight, _winograd_plan.ALGORITHM_TILE[kernel],
                                              weight.dtype, isa, geometry[3], threads)
    flat = weight.reshape(-1)
    if kernel == "im2col":
        return _kernels().pack_weight(geometry, flat, isa, threads)
    return flat


def _runner(plan: _Plan, isa: int):
    """The compiled call of ``plan`` (``fastconv._conv.Runner``), or None for Winograd."""
    if plan.kernel.startswith("winograd_"):
        return None
    kernels = _kernels()
    p = plan.problem
    if plan.kernel == "im2col":
        w_size = kernels.packed_weight_size(plan.geometry, isa, plan.dtype)
    else:
        w_size = p.c_out * p.cin_per_group * prod(p.kernel)
    return kernels.Runner(kernels.KERNELS[plan.kernel], plan.geometry, plan.dtype, w_size, isa,
                          plan.threads)


def _run(plan: _Plan, runner, x: np.ndarray, weight, bias: np.ndarray | None,
         out: np.ndarray | None, unbatched: bool) -> np.ndarray:
    """Compute into ``out`` (or a new array); ``weight`` is already in the kernel's form and
    ``runner`` is :func:`_runner` of the plan."""
    y = np.empty(plan.out_shape[1:] if unbatched else plan.out_shape, dtype=plan.dtype) \
        if out is None else out
    if y.size == 0:
        return y
    if plan.pre_pad is not None:
        # non-zero padding modes (or zeros facing a non-finite weight): pad in NumPy (a copy),
        # then a convolution without padding
        pad_width = ((0, 0), (0, 0)) + tuple(plan.pre_pad)
        x = np.pad(x, pad_width, mode=_NUMPY_PAD_MODE[plan.padding_mode])
    if runner is None:
        _winograd_plan.winograd_conv2d(x, weight, bias, plan.problem.pads, plan.threads,
                                       y.reshape(plan.out_shape))
        return y
    runner(working_copy(x, plan.dtype), weight,
           None if bias is None else working_copy(bias, plan.dtype), y)
    return y


def _padded(plan: _Plan) -> bool:
    return any(p != (0, 0) for p in plan.problem.pads)


def _all_finite(weight: np.ndarray) -> bool:
    # One SIMD reduction without a temporary (max and min took two, 2x the time on small
    # weights): a NaN or an infinity makes the sum non-finite; an overflow of finite weights only
    # sends the call down the pad-in-NumPy path, which is exact too. No BLAS call (np.dot wakes
    # OpenBLAS threads, which then spin on the cores fastconv uses).
    if weight.size == 0:
        return True
    return bool(np.isfinite(np.add.reduce(weight, axis=None)))


def _convolve(ndim: int, x, weight, bias, stride, padding, dilation, groups, padding_mode,
              algorithm, threads, out) -> np.ndarray:
    # Lean path: arrays and plain int/str arguments key their plan as they are (an int is never
    # True or 1.0 here), so a repeated call skips the checks; the entry is stored below after
    # the full path validated exactly these arguments.
    fast = None
    if (type(x) is np.ndarray and type(weight) is np.ndarray and out is None
            and (bias is None or type(bias) is np.ndarray) and type(stride) is int
            and (type(padding) is int or type(padding) is str) and type(dilation) is int
            and type(groups) is int and type(padding_mode) is str and type(algorithm) is str
            and (threads is None or type(threads) is int and threads > 0)):
        isa = _dispatch.isa_index()
        fast = (ndim, x.shape, x.dtype, weight.shape, weight.dtype,
                None if bias is None else (bias.shape, bias.dtype), stride, padding, dilation,
                groups, padding_mode, algorithm, threads, isa, _threads.serial_after_fork())
        hit = _FUNCTION_PLANS.get(fast)
        if hit is not None:
            plan, unbatched, runner = hit
            if plan.pre_pad is not None or not _padded(plan) or _all_finite(weight):
                w = _weight_for(plan.kernel, working_copy(weight, plan.dtype), plan.geometry, isa,
                                plan.threads)
                return _run(plan, runner, x[np.newaxis] if unbatched else x, w, bias, None,
                            unbatched)
    x = check_array(x, "x")
    weight = check_array(weight, "weight")
    if bias is not None:
        bias = check_array(bias, "bias")
    isa = _dispatch.isa_index()
    # Everything _spec and _plan check is a function of this key, so a call whose key was
    # planned before is valid and has that plan (repr tells 1 from True and 1.0).
    key = (ndim, x.shape, x.dtype.str, weight.shape, weight.dtype.str,
           None if bias is None else (bias.shape, bias.dtype.str),
           repr((stride, padding, dilation, groups, padding_mode, algorithm)),
           _threads.resolve(threads), isa)
    cached = _FUNCTION_PLANS.get(key)
    if cached is None:
        spec = _spec(ndim, weight, bias, stride, padding, dilation, groups, padding_mode,
                     algorithm, copy=False)
        xb, unbatched = batched(x, ndim)
        plan = _plan(spec, xb.shape, compute_dtype(x, spec.weight), threads,
                     weights_prepared=False)
        check_out(None, plan.out_shape, plan.dtype, ())  # refuses unrepresentable shapes
        cached = (plan, unbatched, _runner(plan, isa))
        _remember(_FUNCTION_PLANS, key, cached)
    plan, unbatched, runner = cached
    if fast is not None and (threads is not None or _threads.for_work(
            _threads.MAX_THREADS, _work(plan.problem, plan.algorithm),
            _threads.CONV_MIN_WORK_PER_THREAD) == 1):
        # threads=None keys a plan only when its work takes one thread whatever the default
        _remember(_FUNCTION_PLANS, fast, cached)
    if plan.pre_pad is None and _padded(plan) and not _all_finite(weight):
        key = (*key, "pad zeros")
        cached = _FUNCTION_PLANS.get(key)
        if cached is None:
            spec = _spec(ndim, weight, bias, stride, padding, dilation, groups, padding_mode,
                         algorithm, copy=False)
            plan = _plan(spec, (x[np.newaxis] if unbatched else x).shape,
                         compute_dtype(x, spec.weight), threads, weights_prepared=False,
                         pad_zeros=True)
            cached = (plan, unbatched, _runner(plan, isa))
            _remember(_FUNCTION_PLANS, key, cached)
        plan, unbatched, runner = cached
    xb = x[np.newaxis] if unbatched else x
    if out is not None:
        out = check_out(out, plan.out_shape[1:] if unbatched else plan.out_shape, plan.dtype,
                        [x, weight, bias])
    w = _weight_for(plan.kernel, working_copy(weight, plan.dtype), plan.geometry, isa,
                    plan.threads)
    return _run(plan, runner, xb, w, bias, out, unbatched)


_FUNCTION_DOC = """{ndim}-D convolution (cross-correlation, as ``torch.nn.functional.conv{ndim}d``).

    ``y[n, o, p] = bias[o] + sum over the input channels c of o's group and the kernel taps t of
    x_padded[n, c, p*stride + t*dilation] * weight[o, c, t]``.

    Parameters
    ----------
    x : array_like
        Input, ``(N, C_in, {dims})`` or unbatched ``(C_in, {dims})``.
    weight : array_like
        ``(C_out, C_in // groups, {kdims})``.
    bias : array_like, optional
        ``(C_out,)``.
    stride, dilation : int or tuple of {ndim} ints
        Step between output positions and between kernel taps, >= 1.
    padding : int, tuple or str
        An int or one int per dim (symmetric), ``(before, after)`` pairs per dim, ``"valid"``,
        ``"same"`` (output ``ceil(in / stride)``, extra element at the end), ``"same_lower"``
        (extra element at the start) or ``"full"`` (``(k - 1) * dilation`` on both sides).
    groups : int
        Input and output channels are split into this many groups (``groups == C_in``:
        depthwise, with ``C_out // C_in`` outputs per input channel).
    padding_mode : {{"zeros", "reflect", "replicate", "circular"}}
        What the padding holds (PyTorch's meaning).
    algorithm : {{"auto", "direct", "im2col", "winograd", "winograd_f2", "winograd_f4", \
"winograd_f6"}}
        ``"auto"`` picks the fastest the library knows for this shape (the rule and its
        measurements: ``fastconv._algorithms``), never one whose float32 error bound exceeds
        1e-5. ``"direct"`` and ``"im2col"`` serve every convolution. The Winograd variants
        (F(2x2,3x3), F(4x4,3x3), F(6x6,3x3); ``"winograd"`` picks the tile) need a 3x3
        kernel, stride 1 and dilation 1 (conv2d only); asked for, they serve any channel
        count and any groups (per group), while ``"auto"`` uses them only where they pay.
        F(6x6,3x3)'s float32 error bound is 6e-5, so ``"auto"`` never picks it
        (docs/winograd.md). An algorithm that cannot serve the arguments raises
        ``ValueError`` saying why.
    threads : int, optional
        Threads to use (None: ``fastconv.get_num_threads()``; -1: every CPU).
    out : numpy.ndarray, optional
        C-contiguous array of the output's exact shape and dtype to fill and return.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, {odims})`` (unbatched input: no ``N``), float32 or float64 as
        ``np.result_type(x, weight, np.float32)``.

    Examples
    --------
    {example}
    """

_EXAMPLES = {
    1: """>>> import numpy as np, fastconv
    >>> x = np.arange(6, dtype=np.float32).reshape(1, 1, 6)
    >>> fastconv.conv1d(x, np.array([[[1.0, -1.0]]], dtype=np.float32))
    array([[[-1., -1., -1., -1., -1.]]], dtype=float32)""",
    2: """>>> import numpy as np, fastconv
    >>> x = np.ones((1, 3, 8, 8), dtype=np.float32)
    >>> w = np.ones((4, 3, 3, 3), dtype=np.float32)
    >>> y = fastconv.conv2d(x, w, padding=1)
    >>> y.shape, float(y[0, 0, 0, 0]), float(y[0, 0, 4, 4])
    ((1, 4, 8, 8), 12.0, 27.0)""",
    3: """>>> import numpy as np, fastconv
    >>> x = np.ones((2, 4, 5, 6, 7))
    >>> fastconv.conv3d(x, np.ones((8, 2, 3, 3, 3)), groups=2, stride=2).shape
    (2, 8, 2, 2, 3)""",
}


def _doc(ndim: int) -> str:
    dims = ", ".join(("D", "H", "W")[3 - ndim:])
    kdims = ", ".join(("kD", "kH", "kW")[3 - ndim:])
    odims = ", ".join(("oD", "oH", "oW")[3 - ndim:])
    return _FUNCTION_DOC.format(ndim=ndim, dims=dims, kdims=kdims, odims=odims,
                                example=_EXAMPLES[ndim])


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", threads=None, out=None):
    return _convolve(1, x, weight, bias, stride, padding, dilation, groups, padding_mode,
                     algorithm, threads, out)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", threads=None, out=None):
    return _convolve(2, x, weight, bias, stride, padding, dilation, groups, padding_mode,
                     algorithm, threads, out)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", threads=None, out=None):
    return _convolve(3, x, weight, bias, stride, padding, dilation, groups, padding_mode,
                     algorithm, threads, out)


conv1d.__doc__, conv2d.__doc__, conv3d.__doc__ = _doc(1), _doc(2), _doc(3)


#: the channels-last data_format of each spatial rank (what a pickled layer records)
_CHANNELS_LAST = {1: "NWC", 2: "NHWC", 3: "NDHWC"}


class _ConvNd:
    """Shared body of Conv1d/Conv2d/Conv3d (see their docstrings)."""

    _ndim = 0

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 padding_mode="zeros", algorithm="auto", *, weight_format=None,
                 data_format=None):
        # other layouts (fastconv._layout): the weight once, here; the data at every call
        weight = weight_as_oihw(weight, weight_format, self._ndim)
        self._channels_last = channels_last(data_format, self._ndim)[0]
        self._spec = _spec(self._ndim, weight, bias, stride, padding, dilation, groups,
                           padding_mode, algorithm, copy=True, layer=True)
        # the layer's own copies: an optimiser may update them in place, then refresh()
        self._spec.weight.flags.writeable = True
        if self._spec.bias is not None:
            self._spec.bias.flags.writeable = True
        self._pad_zeros = not _all_finite(self._spec.weight)  # see _plan
        # weights in each kernel's form, per (dtype, kernel, ISA, geometry that shapes them)
        self._prepared: dict[tuple, np.ndarray] = {}
        # (input shape, dtype, threads, ISA) -> (plan, unbatched, prepared weight)
        self._calls: dict[tuple, tuple] = {}
        # prepare now, for the weight's own dtype and the ISA in use, what calls will most
        # likely run: the named Winograd tile, F(4,3) where "auto"/"winograd" will pick
        # Winograd for most input sizes, else the GEMM panels
        spec = self._spec
        first = None
        if spec.algorithm.startswith("winograd_"):
            first = spec.algorithm
        elif spec.algorithm == "winograd" or (spec.algorithm == "auto"
                                              and _winograd_eligible(spec)):
            first = "winograd_f4"
        elif spec.algorithm in ("auto", "im2col", "measure"):
            first = "im2col"
        if first is not None:
            self._prepared_weight(first, spec.weight.dtype, _weight_geometry(spec),
                                  _dispatch.isa_index())

    @property
    def weight(self) -> np.ndarray:
        """The layer's own copy of the weight; update it in place, then call :meth:`refresh`."""
        return self._spec.weight

    @property
    def bias(self) -> np.ndarray | None:
        """The layer's own copy of the bias, or None; in-place updates need :meth:`refresh`."""
        return self._spec.bias

    def refresh(self) -> None:
        """Re-prepare the packed / transformed weights after ``weight`` or ``bias`` changed in
        place (an optimiser step); until then calls may still use the old ones.

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.Conv1d(np.ones((1, 1, 2)))
        >>> layer.weight[...] *= 2
        >>> layer.refresh()
        >>> layer(np.ones((1, 1, 3)))
        array([[[4., 4.]]])
        """
        self._pad_zeros = not _all_finite(self._spec.weight)
        self._prepared.clear()
        self._calls.clear()

    def backward(self, grad_output, x, *, needs=("input", "weight", "bias"), threads=None):
        """Gradients of a call ``y = layer(x)``: ``(grad_input, grad_weight, grad_bias)``.

        Same as :func:`fastconv.gradients.conv{n}d_backward` with the layer's parameters
        (``grad_bias`` is None for a layer without bias).

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.Conv1d(np.ones((1, 1, 2)), np.zeros(1))
        >>> x = np.arange(4.0).reshape(1, 1, 4)
        >>> gx, gw, gb = layer.backward(np.ones((1, 1, 3)), x)
        >>> gx, gw, gb
        (array([[[1., 2., 2., 1.]]]), array([[[3., 6.]]]), array([3.]))
        """
        from . import gradients

        s = self._spec
        if s.bias is None:
            needs = tuple(n for n in needs if n != "bias")
        fn = getattr(gradients, f"conv{self._ndim}d_backward")
        if self._channels_last:  # the layer's data_format: channels-last in and out
            grad_output = to_channels_first(grad_output, self._ndim, "grad_output")
            x = to_channels_first(x, self._ndim)
        gx, gw, gb = fn(grad_output, x, s.weight, s.stride, s.padding, s.dilation, s.groups,
                        padding_mode=s.padding_mode, needs=needs, threads=threads)
        if self._channels_last and gx is not None:
            gx = write_channels_last(gx, self._ndim, None)
        return gx, gw, gb

    def _prepared_weight(self, kernel: str, dtype: np.dtype, geometry: tuple,
                         isa: int) -> np.ndarray:
        # the packed GEMM weight depends only on C_out, C_in, groups and the kernel size
        key = (kernel, np.dtype(dtype).str, isa)
        w = self._prepared.get(key)
        if w is None:
            w = _weight_for(kernel, working_copy(self._spec.weight, dtype), geometry, isa)
            if isinstance(w, np.ndarray):  # Winograd's PreparedWeights are read-only already
                w.flags.writeable = False
            self._prepared[key] = w
        return w

    def _plan_for(self, shape: tuple[int, ...], dtype, threads=None) -> tuple[_Plan, bool]:
        ndim = self._ndim
        unbatched = len(shape) == ndim + 1
        if unbatched:
            shape = (1, *shape)
        elif len(shape) != ndim + 2:
            raise ValueError(f"input shape must have {ndim + 2} dims (N, C, ...) or {ndim + 1} "
                             f"unbatched, got {shape}")
        spec = self._spec
        if spec.algorithm == "measure":
            spec = replace(spec, algorithm=self._measure_choice(shape, dtype, threads).algorithm)
        return _plan(spec, shape, dtype, threads, pad_zeros=self._pad_zeros), unbatched

    def _measure_choice(self, shape: tuple[int, ...], dtype, threads,
                        refresh: bool = False) -> _measure.Choice:
        """``algorithm="measure"``: the fastest candidate for a batched input ``shape`` (cached
        in memory and on disk by ``fastconv._measure``)."""
        auto = _plan(replace(self._spec, algorithm="auto"), shape, dtype, threads,
                     pad_zeros=self._pad_zeros)
        names = _algorithms.candidates(auto.problem)
        isa = _dispatch.isa_index()
        before = set(self._prepared)
        arrays: dict[str, np.ndarray] = {}

        def candidate(algorithm: str):
            call = None

            def run():
                nonlocal call
                if call is None:  # prepared on the first (untimed) call
                    plan = _plan(replace(self._spec, algorithm=algorithm), shape, dtype,
                                 threads, pad_zeros=self._pad_zeros)
                    if not arrays:
                        rng = np.random.default_rng(0)
                        arrays["x"] = rng.standard_normal(shape).astype(dtype)
                        arrays["y"] = np.empty(plan.out_shape, dtype)
                    bias = self._spec.bias
                    call = (plan, _runner(plan, isa),
                            self._prepared_weight(plan.kernel, plan.dtype, plan.geometry, isa),
                            None if bias is None else working_copy(bias, plan.dtype))
                plan, runner, w, bias = call
                return _run(plan, runner, arrays["x"], w, bias, arrays["y"], False)
            return run

        choice = _measure.choose(self._measure_key(shape, dtype, threads, auto.problem),
                                 {a: candidate(a) for a in names}, auto.algorithm,
                                 refresh=refresh)
        # keep the prepared weights of the winner only (and of what was there before)
        chosen = _algorithms.kernel(choice.algorithm, auto.problem)
        for k in set(self._prepared) - before:
            if k[0] != chosen:
                del self._prepared[k]
        return choice

    def _measure_key(self, shape: tuple[int, ...], dtype, threads=None,
                    problem: _algorithms.Problem | None = None) -> str:
        """The ``fastconv._measure`` cache key of a call on a batched input ``shape``."""
        if problem is None:
            problem = _plan(replace(self._spec, algorithm="auto"), shape, dtype, threads,
                            pad_zeros=self._pad_zeros).problem
        p = problem
        params = {"weight": tuple(self._spec.weight.shape), "groups": p.groups,
                  "in": p.in_size, "stride": p.stride, "dilation": p.dilation, "pads": p.pads,
                  "prepad": self._spec.padding_mode if p.in_size != shape[2:] else None}
        return _measure.key(f"conv{self._ndim}d", params, shape, dtype,
                            _threads.resolve(threads))

    def algorithm_for(self, input_shape, *, threads=None, dtype=None) -> str:
        """The algorithm (a public ``algorithm=`` name) a call with ``input_shape`` uses.

        With ``algorithm="measure"`` this is the measured choice: from the cache, else
        measured now (as the first call would), for ``threads`` (default: the thread count a
        call would use) and ``dtype`` (default: the weight's working dtype).

        Parameters
        ----------
        input_shape : tuple of int
            ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)``.
        threads : int, optional
            The ``threads=`` of the call (only ``"measure"`` depends on it).
        dtype : dtype, optional
            The input's dtype (the choice is made for ``np.result_type(x, weight, float32)``).

        Returns
        -------
        str
            ``"direct"``, ``"im2col"`` or a ``"winograd_*"`` tile (the table and rules are in
            ``fastconv._algorithms``).

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> stem = fastconv.Conv2d(np.ones((64, 3, 7, 7), np.float32), stride=2, padding=3)
        >>> stem.algorithm_for((1, 3, 224, 224))
        'direct'
        >>> fastconv.Conv2d(np.ones((64, 256, 1, 1), np.float32)).algorithm_for((256, 56, 56))
        'im2col'
        """
        shape = tuple(check_int(n, f"input_shape[{i}]", 0) for i, n in enumerate(input_shape))
        wdtype = compute_dtype(self._spec.weight) if dtype is None else compute_dtype(
            np.empty(0, dtype), self._spec.weight)
        if self._spec.algorithm != "measure":
            threads = 1  # "auto" does not depend on it
        return self._plan_for(shape, wdtype, threads)[0].algorithm

    def __call__(self, x, *, threads=None, out=None) -> np.ndarray:
        """Convolve ``x`` (same rules as the functional form); returns the output.

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.Conv1d(np.ones((1, 1, 3)), padding=1)
        >>> layer(np.arange(5.0).reshape(1, 5))
        array([[1., 3., 6., 9., 7.]])
        >>> hwc = fastconv.Conv2d(np.ones((3, 3, 2, 4)), padding=1, weight_format="HWIO",
        ...                       data_format="NHWC")
        >>> hwc(np.ones((8, 8, 2))).shape                # unbatched (H, W, C)
        (8, 8, 4)
        """
        if self._channels_last:
            y = self._call(to_channels_first(x, self._ndim), threads, None)
            return write_channels_last(y, self._ndim, out)
        return self._call(x, threads, out)

    def _call(self, x, threads, out) -> np.ndarray:
        x = check_array(x, "x")
        isa = _dispatch.isa_index()
        # the computed dtype follows from x's (the weight's is fixed)
        key = (x.shape, x.dtype, _threads.resolve(threads), isa)
        call = self._calls.get(key)
        if call is None:
            plan, unbatched = self._plan_for(x.shape, compute_dtype(x, self._spec.weight),
                                             threads)
            check_out(None, plan.out_shape, plan.dtype, ())  # refuses unrepresentable shapes
            bias = self._spec.bias
            call = (plan, unbatched,
                    self._prepared_weight(plan.kernel, plan.dtype, plan.geometry, isa),
                    _runner(plan, isa),
                    None if bias is None else working_copy(bias, plan.dtype))
            _remember(self._calls, key, call)
        plan, unbatched, w, runner, bias = call
        xb = x[np.newaxis] if unbatched else x
        if out is not None:
            out = check_out(out, plan.out_shape[1:] if unbatched else plan.out_shape,
                            plan.dtype, [x])
        return _run(plan, runner, xb, w, bias, out, unbatched)

    def __getstate__(self) -> dict:
        # pickling (e.g. to dask workers) ships the weights and parameters, not the prepared
        # weights or compiled runners (which belong to one process and ISA): the copy
        # prepares its own
        s = self._spec
        return {"weight": s.weight, "bias": s.bias, "stride": s.stride, "padding": s.padding,
                "dilation": s.dilation, "groups": s.groups, "padding_mode": s.padding_mode,
                "algorithm": s.algorithm,
                "data_format": _CHANNELS_LAST[self._ndim] if self._channels_last else None}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        s = self._spec
        return (f"{type(self).__name__}(weight shape {s.weight.shape}, bias="
                f"{'yes' if s.bias is not None else 'None'}, stride={s.stride}, "
                f"padding={s.padding!r}, dilation={s.dilation}, groups={s.groups}, "
                f"padding_mode={s.padding_mode!r}, algorithm={s.algorithm!r})")


def _winograd_eligible(spec: _Spec) -> bool:
    """Whether ``"auto"`` picks Winograd for this weight (at input sizes where it pays)."""
    cpg, c_out = spec.weight.shape[1], spec.weight.shape[0]
    return (_algorithms.winograd_unsupported("auto", spec.ndim, spec.kernel, spec.stride,
                                             spec.dilation, cpg * spec.groups, c_out,
                                             spec.groups) is None
            and min(cpg, c_out // spec.groups) >= _winograd_plan.AUTO_F4_MIN_CHANNELS)


def _weight_geometry(spec: _Spec) -> tuple:
    """A geometry carrying just what weight preparation reads (channels, groups, kernel)."""
    lead = 3 - spec.ndim
    cin = spec.weight.shape[1] * spec.groups
    ones = (1,) * 3
    return (1, cin, spec.c_out, spec.groups, ones, ones, (1,) * lead + spec.kernel, ones, ones,
            (0,) * 3)


_LAYER_DOC = """{ndim}-D convolution layer: weights validated, copied and prepared once.

    Called as ``layer(x, *, threads=None, out=None)``; computes what
    ``fastconv.conv{ndim}d(x, weight, bias, ...)`` does with the same arguments. At construction
    the weight and bias are copied (later changes to the caller's arrays do not affect the
    layer) and packed for the GEMM kernel; ``algorithm_for(input_shape)`` says which algorithm
    a call with that input shape uses.

    Parameters
    ----------
    weight : array_like
        ``(C_out, C_in // groups, {kdims})``.
    bias : array_like, optional
        ``(C_out,)``.
    stride, padding, dilation, groups, padding_mode
        As for ``fastconv.conv{ndim}d``.
    algorithm : str
        As for ``fastconv.conv{ndim}d``, or ``"measure"``: on the first call per input shape,
        dtype and thread count, time every algorithm that can serve it within the accuracy
        policy and keep the fastest (cached in memory and in ``FASTCONV_CACHE_DIR``; see
        ``fastconv tune``).

    Examples
    --------
    {example}
    """

_LAYER_EXAMPLES = {
    1: """>>> import numpy as np, fastconv
    >>> layer = fastconv.Conv1d(np.ones((2, 3, 5), dtype=np.float32), padding="same")
    >>> layer(np.ones((3, 16), dtype=np.float32)).shape
    (2, 16)""",
    2: """>>> import numpy as np, fastconv
    >>> layer = fastconv.Conv2d(np.ones((64, 64, 3, 3), dtype=np.float32), stride=2, padding=1)
    >>> layer.algorithm_for((1, 64, 7, 7))
    'im2col'
    >>> layer(np.zeros((1, 64, 56, 56), dtype=np.float32)).shape
    (1, 64, 28, 28)""",
    3: """>>> import numpy as np, fastconv
    >>> layer = fastconv.Conv3d(np.ones((4, 2, 3, 3, 3)), stride=2, padding=1)
    >>> layer(np.ones((1, 2, 8, 8, 8))).shape
    (1, 4, 4, 4, 4)""",
}


class Conv1d(_ConvNd):
    _ndim = 1


class Conv2d(_ConvNd):
    _ndim = 2


class Conv3d(_ConvNd):
    _ndim = 3


for _cls in (Conv1d, Conv2d, Conv3d):
    _nd = _cls._ndim
    _cls.__doc__ = _LAYER_DOC.format(
        ndim=_nd, kdims=", ".join(("kD", "kH", "kW")[3 - _nd:]), example=_LAYER_EXAMPLES[_nd])
del _cls, _nd

# data_format= / weight_format= (channels-last data, HWIO / OHWI weights): fastconv._layout
conv1d = with_layout(1, weights=True)(conv1d)
conv2d = with_layout(2, weights=True)(conv2d)
conv3d = with_layout(3, weights=True)(conv3d)
