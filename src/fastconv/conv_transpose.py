"""Transposed convolution (``conv_transpose1d/2d/3d``, ``ConvTranspose1d/2d/3d``).

The Python side validates every argument once, resolves sizes through :mod:`fastconv.shapes`,
and hands the compiled driver (``fastconv._conv_transpose``) contiguous arrays of the working
dtype, explicit pads and a preallocated output. Every rank runs as a 3-D problem: 1-D and 2-D
inputs get leading spatial dims of size 1.

Algorithms (``algorithm=``):

- ``"gemm"``: GEMM + col2im. Per group, the column matrix ``W^T X`` (``C_out/g * prod(k)`` rows,
  one column per input pixel) is computed by the shared packed GEMM in work units of a block of
  output channels (about 512 KiB of columns, L2-resident), each followed by col2im of its
  channels: accumulated in a phase-major plane (contiguous adds, one per tap) and written once,
  cropped, interleaved and with its bias; when no two taps meet (kernel == stride) col2im is a
  plain store and units also split the input rows.
- ``"phase"``: stride-phase decomposition. The outputs of each of the ``prod(stride)`` phases
  receive only the kernel taps that reach them, so each phase is an ordinary small convolution
  of the input with a sub-kernel: no multiplication by inserted zeros. The input is packed
  straight into the GEMM's B panels (no im2col matrix). Kernel sizes up to 64 per dim.
- ``"auto"``: :func:`choose_algorithm` — the one rule, kept in one place.
- ``"measure"`` (layer objects only): both are timed on the first call per input shape, dtype
  and thread count, the fastest is kept (``fastconv._measure``: memory and disk cache).

Both run in one OpenMP parallel region per call, work units handed out dynamically, each
calling the GEMM single-threaded. Layer objects pack the weight once; functional calls let each
work unit pack the weight rows it needs (in parallel, while they are in cache).
"""

from math import prod

import numpy as np

from . import _dispatch, _measure, _threads
from ._extension import load
from ._layout import channels_last, to_channels_first, with_layout, write_channels_last
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

# load the OpenMP runtime now, so that a threadpoolctl block entered before the first call
# finds it to limit
_threads.preload_runtime()

ALGORITHMS = ("auto", "gemm", "phase")
_PADDING_STRINGS = ("valid", "same", "same_lower")
# The phase algorithm keeps per-dim tap lists on the stack (FC_CONVT_MAX_PHASE_KERNEL).
_MAX_PHASE_KERNEL = 64
# GEMM dimensions are C ints.
_MAX_GEMM_DIM = 2**31 - 1
# (plan parameters, input shape, output_size) -> (padding pairs, output spatial size)
_GEOMETRY_CACHE: dict = {}

__all__ = ["conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "ConvTranspose1d",
           "ConvTranspose2d", "ConvTranspose3d", "choose_algorithm", "taps_meet", "ALGORITHMS"]


def taps_meet(kernel_size, stride, dilation) -> bool:
    """Whether some output receives two or more kernel taps (else col2im is a plain store).

    Along a dim, output phase ``r`` receives the taps ``t`` with ``t * dilation % stride == r``;
    taps meet when a phase receives more than one, in any dim.

    Examples
    --------
    >>> from fastconv.conv_transpose import taps_meet
    >>> taps_meet((4, 4), (2, 2), (1, 1)), taps_meet((2, 2), (2, 2), (1, 1))
    (True, False)
    """
    for k, s, d in zip(kernel_size, stride, dilation):
        phases = [t * d % s for t in range(k)]
        if len(set(phases)) < len(phases):
            return True
    return False


# "auto" picks "phase" when taps meet and C_out/groups >= PHASE_CHANNEL_RATIO * C_in/groups.
PHASE_CHANNEL_RATIO = 4


def choose_algorithm(c_in, c_out, groups, kernel_size, stride, dilation) -> str:
    """The algorithm ``algorithm="auto"`` uses: the one rule, kept in one place.

    Rule: ``"phase"`` when kernel taps meet (:func:`taps_meet`) and ``C_out/groups >= 4 *
    C_in/groups`` (and the kernel is at most 64 per dim, the phase algorithm's limit);
    ``"gemm"`` otherwise.

    Why: both do the same multiply-adds in the shared packed GEMM; they differ in the work
    around it. GEMM + col2im writes and re-reads one column element per ``C_in/g``
    multiply-adds (and, when taps meet, adds it into the output), so its overhead shrinks
    with ``C_in/g``; the stride-phase GEMM has only ``C_out/g`` rows to spread the packing of
    each input element over, so its overhead shrinks with ``C_out/g``. When no two taps meet,
    col2im is a plain store and GEMM + col2im wins whatever the channels. Measured (AMD Zen 5,
    AVX-512, float32, one thread; time phase / time gemm): taps meeting, ``C_out/C_in`` = 16:
    0.38, 8: 0.30-0.87, 4: 0.88, 2: 0.93-1.06, 1: 0.95-1.3, 1/2 (the issue's dcgan, unet, 3-D
    cases): 1.0-1.7; kernel == stride: 1.4-2.5 for every ratio tried. Change the rule here if a
    measurement on other hardware says otherwise.

    Parameters
    ----------
    c_in, c_out, groups : int
        Input and output channels, and groups.
    kernel_size, stride, dilation : tuple of int
        One entry per spatial dim.

    Returns
    -------
    str
        ``"gemm"`` or ``"phase"``.

    Examples
    --------
    >>> from fastconv.conv_transpose import choose_algorithm
    >>> choose_algorithm(256, 128, 1, (4, 4), (2, 2), (1, 1))  # DCGAN: C_out < C_in
    'gemm'
    >>> choose_algorithm(16, 128, 1, (4, 4), (2, 2), (1, 1))   # few inputs, many outputs
    'phase'
    >>> choose_algorithm(16, 128, 1, (2, 2), (2, 2), (1, 1))   # no taps meet
    'gemm'
    """
    if (taps_meet(kernel_size, stride, dilation) and max(kernel_size) <= _MAX_PHASE_KERNEL
            and c_out // groups >= PHASE_CHANNEL_RATIO * (c_in // groups)):
        return "phase"
    return "gemm"


def _check_padding(padding, ndim: int):
    """Reject what no padding form allows before the shapes module resolves the rest."""
    if isinstance(padding, str):
        if padding not in _PADDING_STRINGS:
            raise ValueError(
                f"padding must be an int, a tuple of {ndim} ints or of {ndim} (before, after) "
                f"pairs, or one of {', '.join(repr(p) for p in _PADDING_STRINGS)}, got "
                f"{padding!r}")
        return padding
    if isinstance(padding, (bool, np.bool_, float, np.floating)):
        raise TypeError(f"padding must be an int, a tuple or a string, got {padding!r}")
    return padding


class _Plan:
    """Everything about a transposed convolution except the input: validated once."""

    def __init__(self, ndim, weight, bias, stride, padding, output_padding, groups, dilation,
                 algorithm, copy_weight):
        self.ndim = ndim
        w = check_array(weight, "weight")
        if w.ndim != ndim + 2:
            raise ValueError(
                f"weight must have {ndim + 2} dims (C_in, C_out // groups, *kernel), got shape "
                f"{w.shape}")
        b = None if bias is None else check_array(bias, "bias")
        self.groups = check_int(groups, "groups", 1)
        self.c_in = w.shape[0]
        self.c_out = w.shape[1] * self.groups
        if self.c_in % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide the input channels (weight.shape[0] = "
                f"{self.c_in})")
        if b is not None and b.shape != (self.c_out,):
            raise ValueError(f"bias must have shape ({self.c_out},) (C_out), got {b.shape}")
        self.kernel = tuple(int(k) for k in w.shape[2:])
        if 0 in self.kernel:
            raise ValueError(f"kernel size must be >= 1 in every dim, got {self.kernel}")
        self.stride = int_tuple(stride, ndim, "stride", 1)
        self.dilation = int_tuple(dilation, ndim, "dilation", 1)
        self.output_padding = int_tuple(output_padding, ndim, "output_padding", 0)
        self._check_output_padding(self.output_padding)
        self.padding = _check_padding(padding, ndim)
        if algorithm == "measure":  # layer objects turn it into one plan per algorithm
            raise ValueError(
                f"algorithm='measure' is for layer objects (fastconv.ConvTranspose{ndim}d(weight, "
                f"..., algorithm='measure')); conv_transpose{ndim}d() takes one of "
                f"{', '.join(repr(a) for a in ALGORITHMS)}")
        self.algorithm = check_choice(algorithm, "algorithm", ALGORITHMS)
        self._resolved = None
        chosen = self.resolved_algorithm()
        if chosen == "phase" and max(self.kernel) > _MAX_PHASE_KERNEL:
            raise ValueError(
                f"algorithm='phase' supports kernel sizes up to {_MAX_PHASE_KERNEL} per dim, "
                f"got kernel {self.kernel}")
        self.weight = np.array(w, copy=True) if copy_weight else w
        self.bias = None if b is None else (np.array(b, copy=True) if copy_weight else b)
        # Layer objects keep the packed weight; a functional call lets the compiled side pack
        # it as it goes (in parallel, each unit its own rows, while they are in cache).
        self.keep_prepared = copy_weight
        self._weight5: dict = {}
        self._prepared: dict = {}

    def _check_output_padding(self, output_padding):
        for i, (op, s, d) in enumerate(zip(output_padding, self.stride, self.dilation)):
            if op >= s and op >= d:
                raise ValueError(
                    f"output_padding must be smaller than stride or dilation in every dim, got "
                    f"output_padding[{i}]={op} with stride {s} and dilation {d}")

    def resolved_algorithm(self) -> str:
        if self._resolved is None:
            self._resolved = self.algorithm if self.algorithm != "auto" else choose_algorithm(
                self.c_in, self.c_out, self.groups, self.kernel, self.stride, self.dilation)
        return self._resolved

    def weight5(self, dtype: np.dtype) -> np.ndarray:
        """The weight as a contiguous 3-D-problem array ``(C_in, C_out/g, kD, kH, kW)``."""
        w5 = self._weight5.get(dtype.str)
        if w5 is None:
            pad = (1,) * (3 - self.ndim)
            w5 = working_copy(self.weight, dtype).reshape(
                self.weight.shape[:2] + pad + self.kernel)
            if self.keep_prepared:
                self._weight5[dtype.str] = w5
        return w5

    def prepared(self, dtype: np.dtype):
        """The weight packed for this plan's algorithm and the ISA in use, in ``dtype`` (kept)."""
        isa = _dispatch.isa_index()
        key = (dtype.str, self.resolved_algorithm(), isa)
        prep = self._prepared.get(key)
        if prep is None:
            pad = (1,) * (3 - self.ndim)
            prep = load("_conv_transpose").PreparedWeight(
                self.weight5(dtype), self.groups, pad + self.stride, pad + self.dilation, key[1],
                isa)
            self._prepared[key] = prep
        return prep

    def geometry(self, x_shape, output_size):
        """Padding pairs and output spatial size for an input of this shape.

        Cached across plans (a functional call makes a new plan every time) by everything the
        result depends on.
        """
        if x_shape[1] != self.c_in:
            raise ValueError(
                f"x has {x_shape[1]} channels but weight expects C_in = {self.c_in} "
                f"(weight.shape[0])")
        try:
            key = (self.ndim, self.c_in, self.c_out, self.groups, self.kernel, self.stride,
                   self.dilation, self.output_padding, self.padding, tuple(x_shape),
                   None if output_size is None else (
                       output_size if isinstance(output_size, int) else tuple(output_size)))
            cached = _GEOMETRY_CACHE.get(key)
        except TypeError:  # unhashable or not iterable: let the checks below explain
            key, cached = None, None
        if cached is not None:
            return cached
        result = self._compute_geometry(x_shape, output_size)
        if key is not None:
            if len(_GEOMETRY_CACHE) >= 256:  # programs use few shapes; keep it small
                _GEOMETRY_CACHE.clear()
            _GEOMETRY_CACHE[key] = result
        return result

    def _compute_geometry(self, x_shape, output_size):
        from . import shapes

        self._check_gemm_dims(x_shape)
        in_size = tuple(int(n) for n in x_shape[2:])
        output_padding = self.output_padding
        if output_size is not None:
            wanted = self._spatial_output_size(output_size, x_shape)
            output_padding = tuple(shapes.conv_transpose_output_padding(
                in_size, wanted, self.kernel, self.stride, self.padding, self.dilation))
            self._check_output_padding(output_padding)
        # "same": ONNX counts output_padding in the total padding, so the output is in*stride
        pads = shapes.resolve_padding(self.padding, in_size, self.kernel, self.stride,
                                      self.dilation, transposed=True,
                                      output_padding=output_padding)
        # by name, not by the pairs: "same" pairs are negative where the kernel extent is
        # below the stride (the output window then reaches past the full result)
        out_size = tuple(shapes.conv_transpose_output_size(
            in_size, self.kernel, self.stride,
            self.padding if isinstance(self.padding, str) else pads, output_padding,
            self.dilation))
        return tuple(tuple(p) for p in pads), out_size

    def _check_gemm_dims(self, x_shape):
        """The GEMM takes 32-bit sizes: refuse problems whose matrices would not fit."""
        taps = prod(self.kernel)
        dims = {"C_out/groups * prod(kernel)": (self.c_out // self.groups) * taps,
                "C_in/groups * prod(kernel)": (self.c_in // self.groups) * taps,
                "input pixels": prod(x_shape[2:])}
        for what, size in dims.items():
            if size > _MAX_GEMM_DIM:
                raise ValueError(
                    f"conv_transpose: {what} = {size} is too large (at most {_MAX_GEMM_DIM}) "
                    f"for weight {self.weight.shape} and x {tuple(x_shape)}")

    def _spatial_output_size(self, output_size, x_shape):
        nd = self.ndim
        if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
            return (check_int(output_size, "output_size", 1),) * nd
        try:
            items = tuple(output_size)
        except TypeError:
            raise TypeError(
                f"output_size must be an int or a tuple of ints, got {output_size!r}") from None
        if len(items) not in (nd, nd + 1, nd + 2):
            raise ValueError(
                f"output_size must give the {nd} spatial sizes or the full output shape, got "
                f"{output_size!r}")
        sizes = tuple(check_int(v, f"output_size[{i}]", 1) for i, v in enumerate(items))
        leading = sizes[:len(sizes) - nd]
        expected = (x_shape[0], self.c_out)[-len(leading):] if leading else ()
        if leading != expected:
            raise ValueError(
                f"output_size {output_size!r} does not match the output's leading dims "
                f"{expected} (batch, C_out)")
        return sizes[len(sizes) - nd:]

    def __call__(self, x, output_size=None, threads=None, out=None):
        x_arr = check_array(x, "x")
        xb, unbatched = batched(x_arr, self.ndim, "x")
        nthreads = _threads.resolve(threads)
        dtype = compute_dtype(x_arr, self.weight, self.bias)
        pads, out_size = self.geometry(xb.shape, output_size)
        shape = (xb.shape[0], self.c_out, *out_size)
        out_shape = shape[1:] if unbatched else shape
        y = check_out(out, out_shape, dtype, [x_arr, self.weight, self.bias])
        if y is None:
            y = np.empty(out_shape, dtype=dtype)
        if y.size == 0:
            return y
        yb = y[np.newaxis] if unbatched else y
        bias = None if self.bias is None else working_copy(self.bias, dtype)
        if xb.shape[1] == 0:  # no input channels: only the bias reaches the output
            yb[...] = 0 if bias is None else bias.reshape((-1,) + (1,) * self.ndim)
            return y
        if any(p < 0 for pair in pads for p in pair):
            self._run_past_the_edges(xb, yb, bias, pads, out_size, dtype, nthreads)
            return y
        self._run(xb, yb, bias, pads, out_size, dtype, nthreads)
        return y

    def _run_past_the_edges(self, xb, yb, bias, pads, out_size, dtype, nthreads):
        """``"same"`` with the kernel extent below the stride: a negative pad means the output
        window reaches past the full result. The compiled side takes crops only (pads >= 0),
        so compute with the negative pads as 0 into a scratch array and place it in the
        window; the positions past the full result hold the bias alone."""
        clamped = tuple((max(b, 0), max(a, 0)) for b, a in pads)
        inner = tuple(o + min(b, 0) + min(a, 0) for o, (b, a) in zip(out_size, pads))
        scratch = np.empty(yb.shape[:2] + inner, dtype=dtype)
        self._run(xb, scratch, bias, clamped, inner, dtype, nthreads)
        yb[...] = 0 if bias is None else bias.reshape((-1,) + (1,) * self.ndim)
        window = tuple(slice(-min(b, 0), -min(b, 0) + n) for (b, _), n in zip(pads, inner))
        yb[(slice(None), slice(None)) + window] = scratch

    def _run(self, xb, yb, bias, pads, out_size, dtype, nthreads):
        shape = yb.shape
        lead = (1,) * (3 - self.ndim)
        x5 = working_copy(xb, dtype).reshape(xb.shape[:2] + lead + xb.shape[2:])
        y5 = yb.reshape(shape[:2] + lead + out_size)
        work = xb.shape[0] * self.c_in * (self.c_out // self.groups) * prod(self.kernel) * prod(
            xb.shape[2:])
        pad = (1,) * len(lead)
        load("_conv_transpose").run(
            x5, self.weight5(dtype), bias, y5, self.groups, pad + self.stride,
            pad + self.dilation, (0,) * len(lead) + tuple(p[0] for p in pads),
            self.resolved_algorithm(), _dispatch.isa_index(), _threads.for_work(nthreads, work),
            self.prepared(dtype) if self.keep_prepared else None)


def _functional(ndim, x, weight, bias, stride, padding, output_padding, groups, dilation,
                output_size, algorithm, threads, out):
    plan = _Plan(ndim, weight, bias, stride, padding, output_padding, groups, dilation,
                 algorithm, copy_weight=False)
    return plan(x, output_size=output_size, threads=threads, out=out)


_PARAMS_DOC = """
    Parameters
    ----------
    x : array_like
        Input ``(N, C_in, {dims})`` or, unbatched, ``(C_in, {dims})``.
    weight : array_like
        ``(C_in, C_out // groups, {kdims})``.
    bias : array_like, optional
        ``(C_out,)``.
    stride : int or tuple of int, default 1
    padding : int, tuple, tuple of (before, after) pairs, or str, default 0
        Removed from the full output: symmetric int or per-dim, asymmetric pairs, ``"valid"``,
        ``"same"`` (output size ``in * stride``, ONNX ``SAME_UPPER`` split) or ``"same_lower"``.
        ``"same"`` gives ``in * stride`` for every kernel: one shorter than the stride makes
        the window reach past the full output, and those positions hold only the bias.
    output_padding : int or tuple of int, default 0
        Extra size added at the end of each dim; must be smaller than the stride or the
        dilation of its dim.
    groups : int, default 1
    dilation : int or tuple of int, default 1
    output_size : tuple of int, optional
        The spatial output size (or the full output shape); chooses ``output_padding``.
    algorithm : {{"auto", "gemm", "phase"}}, default "auto"
        ``"gemm"``: one GEMM of the weight with the input, then col2im adds each column
        into the output (wins when no two kernel taps meet, i.e. kernel <= stride, or with
        many input channels per group); ``"phase"``: one small convolution per stride phase
        with only the taps that reach it, no multiplications by inserted zeros (wins when
        ``C_out / groups >= 4 * C_in / groups`` and taps meet). Both give the same result;
        ``"auto"`` picks by :func:`fastconv.conv_transpose.choose_algorithm`.
    threads : int, optional
        Threads to use (``None``: :func:`fastconv.get_num_threads`; ``-1``: every CPU).
    out : numpy.ndarray, optional
        C-contiguous array of the exact output shape and dtype to fill and return.

    Returns
    -------
    numpy.ndarray
        ``(N, C_out, {dims_out})`` (unbatched input: no ``N``), float32 or float64 as
        ``np.result_type(x, weight, np.float32)``; output size per dim
        ``(in - 1)*stride - pad_before - pad_after + (k - 1)*dilation + output_padding + 1``.
"""


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None, algorithm="auto", threads=None, out=None):
    return _functional(1, x, weight, bias, stride, padding, output_padding, groups, dilation,
                       output_size, algorithm, threads, out)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None, algorithm="auto", threads=None, out=None):
    return _functional(2, x, weight, bias, stride, padding, output_padding, groups, dilation,
                       output_size, algorithm, threads, out)


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None, algorithm="auto", threads=None, out=None):
    return _functional(3, x, weight, bias, stride, padding, output_padding, groups, dilation,
                       output_size, algorithm, threads, out)


class _ConvTransposeNd:
    """Shared implementation of the transposed-convolution layer objects."""

    _ndim = 0

    def __init__(self, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                 dilation=1, algorithm="auto", *, data_format=None):
        measure = algorithm == "measure"
        self._channels_last = channels_last(data_format, self._ndim)[0]
        self._plan = _Plan(self._ndim, weight, bias, stride, padding, output_padding, groups,
                           dilation, "auto" if measure else algorithm, copy_weight=True)
        # algorithm="measure": one plan per algorithm (sharing the weight copy), and per call
        # signature the one measured fastest
        self._measured: dict[str, _Plan] | None = None
        self._choices: dict[tuple, _Plan] = {}
        if measure:
            self._measured = {}
            for name in ALGORITHMS[1:]:
                if name == self._plan.resolved_algorithm():
                    self._measured[name] = self._plan
                    continue
                try:
                    other = _Plan(self._ndim, self._plan.weight, self._plan.bias, stride,
                                  padding, output_padding, groups, dilation, name,
                                  copy_weight=False)
                except ValueError:  # e.g. phase with a kernel over 64
                    continue
                other.keep_prepared = True
                self._measured[name] = other
        # Prepare the weight once, in the dtype it computes in with a float32 input.
        self._plan.prepared(compute_dtype(self._plan.weight, self._plan.bias))

    def _measured_plan(self, shape, dtype, threads, output_size) -> _Plan:
        """``algorithm="measure"``: the plan measured fastest for a call on an input of
        ``shape`` computing in ``dtype`` (cached in the layer and by ``fastconv._measure``)."""
        dtype = np.dtype(dtype)
        nthreads = _threads.resolve(threads)
        try:
            size_key = None if output_size is None else (
                output_size if isinstance(output_size, int) else tuple(output_size))
            local = (shape, dtype.str, nthreads, size_key, _dispatch.isa_index())
            hash(local)
        except TypeError:  # let the plan's checks explain the bad output_size
            return self._plan
        plan = self._choices.get(local)
        if plan is not None:
            return plan
        if len(shape) not in (self._ndim + 1, self._ndim + 2):
            return self._plan  # the plan's own checks raise the error
        choice = self._measure_choice(shape, dtype, threads, output_size)
        plan = self._measured.get(choice.algorithm, self._plan)
        if len(self._choices) >= 64:
            self._choices.clear()
        self._choices[local] = plan
        in_use = {id(q) for q in self._choices.values()} | {id(self._plan)}
        for other in self._measured.values():  # drop what only the measurement prepared
            if id(other) not in in_use:
                other._prepared.clear()
                other._weight5.clear()
        return plan

    def _measure_choice(self, shape, dtype, threads, output_size=None,
                        refresh: bool = False) -> _measure.Choice:
        """Time the algorithms for an input of ``shape`` (or take the cached choice)."""
        dtype = np.dtype(dtype)
        nthreads = _threads.resolve(threads)
        bshape = (1, *shape) if len(shape) == self._ndim + 1 else tuple(shape)
        pads, out_size = self._plan.geometry(bshape, output_size)
        p = self._plan
        params = {"weight": tuple(p.weight.shape), "groups": p.groups, "stride": p.stride,
                  "dilation": p.dilation, "pads": pads, "out": out_size}
        key = _measure.key(f"conv_transpose{self._ndim}d", params, bshape, dtype, nthreads)
        arrays: dict[str, np.ndarray] = {}

        def candidate(plan: _Plan):
            def run():
                if not arrays:
                    rng = np.random.default_rng(0)
                    arrays["x"] = rng.standard_normal(bshape).astype(dtype)
                    arrays["y"] = np.empty((bshape[0], p.c_out, *out_size), dtype)
                return plan(arrays["x"], output_size=output_size, threads=threads,
                            out=arrays["y"])
            return run

        return _measure.choose(key, {a: candidate(q) for a, q in self._measured.items()},
                               self._plan.resolved_algorithm(), refresh=refresh)

    @property
    def weight(self) -> np.ndarray:
        """The layer's own weight ``(C_in, C_out // groups, *kernel)``; update it in place,
        then call :meth:`refresh`."""
        return self._plan.weight

    @property
    def bias(self) -> np.ndarray | None:
        """The layer's own bias, or None; in-place updates need :meth:`refresh`."""
        return self._plan.bias

    def refresh(self) -> None:
        """Re-prepare the packed weights after ``weight`` or ``bias`` changed in place (an
        optimiser step); until then calls may still use the old ones.

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.ConvTranspose1d(np.ones((1, 1, 2)), stride=2)
        >>> layer.weight[...] = [[[1.0, -1.0]]]
        >>> layer.refresh()
        >>> layer(np.ones((1, 1, 2)))
        array([[[ 1., -1.,  1., -1.]]])
        """
        self._plan._weight5.clear()
        self._plan._prepared.clear()
        self._plan.prepared(compute_dtype(self._plan.weight, self._plan.bias))

    def backward(self, grad_output, x, *, needs=("input", "weight", "bias"), threads=None):
        """Gradients of a call ``y = layer(x)``: ``(grad_input, grad_weight, grad_bias)``,
        as :func:`fastconv.gradients.conv_transpose{n}d_backward` with the layer's parameters
        (``grad_bias`` is None for a layer without bias).

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.ConvTranspose1d(np.ones((1, 1, 2)), stride=2)
        >>> gx, gw, gb = layer.backward(np.arange(4.0).reshape(1, 1, 4), np.ones((1, 1, 2)))
        >>> gx, gw, gb
        (array([[[1., 5.]]]), array([[[2., 4.]]]), None)
        """
        from . import gradients

        p = self._plan
        if p.bias is None:
            needs = tuple(n for n in needs if n != "bias")
        fn = getattr(gradients, f"conv_transpose{self._ndim}d_backward")
        if self._channels_last:  # the layer's data_format: channels-last in and out
            grad_output = to_channels_first(grad_output, self._ndim, "grad_output")
            x = to_channels_first(x, self._ndim)
        gx, gw, gb = fn(grad_output, x, p.weight, p.stride, p.padding, p.output_padding,
                        p.groups, p.dilation, needs=needs, threads=threads)
        if self._channels_last and gx is not None:
            gx = write_channels_last(gx, self._ndim, None)
        return gx, gw, gb

    @property
    def stride(self) -> tuple[int, ...]:
        """The stride, one int per spatial dim (e.g. ``(2, 2)``)."""
        return self._plan.stride

    @property
    def padding(self):
        """The padding as given (an int, a tuple, pairs or a string such as ``"same"``); the
        explicit pairs depend on the input size (:func:`fastconv.shapes.resolve_padding`)."""
        return self._plan.padding

    @property
    def output_padding(self) -> tuple[int, ...]:
        """The size added at the end of each spatial dim, one int per dim (a call's
        ``output_size=`` overrides it for that call)."""
        return self._plan.output_padding

    @property
    def dilation(self) -> tuple[int, ...]:
        """The spacing between kernel taps, one int per spatial dim."""
        return self._plan.dilation

    @property
    def groups(self) -> int:
        """The number of channel groups (``C_in`` and ``C_out`` are split into this many)."""
        return self._plan.groups

    @property
    def algorithm(self) -> str:
        """The algorithm asked for at construction: ``"auto"``, ``"gemm"``, ``"phase"`` or
        ``"measure"`` (:meth:`algorithm_for` tells what it resolves to for an input shape)."""
        return "measure" if self._measured is not None else self._plan.algorithm

    def algorithm_for(self, input_shape, *, threads=None, dtype=None,
                      output_size=None) -> str:
        """The algorithm a call with an input of ``input_shape`` uses (``"gemm"``/``"phase"``).

        With ``algorithm="measure"`` this is the measured choice (from the cache, else measured
        now, as the first call would) for ``threads``, ``dtype`` and ``output_size`` as the
        call would give them.

        Parameters
        ----------
        input_shape : tuple of int
            ``(N, C_in, *spatial)`` or, unbatched, ``(C_in, *spatial)``; validated like an
            input (``ValueError`` for a wrong rank or channel count).
        threads, dtype, output_size : optional
            The call's ``threads=``, input dtype and ``output_size=`` (only ``"measure"``
            depends on them).

        Returns
        -------
        str
            ``"gemm"`` or ``"phase"`` (see :func:`choose_algorithm`).

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> fastconv.ConvTranspose1d(np.ones((8, 4, 4)), stride=2).algorithm_for((1, 8, 16))
        'gemm'
        >>> fastconv.ConvTranspose1d(np.ones((2, 16, 4)), stride=2).algorithm_for((2, 16))
        'phase'
        """
        shape = tuple(int(n) for n in input_shape)
        if len(shape) == self._ndim + 1:
            shape = (1, *shape)
        if len(shape) != self._ndim + 2:
            raise ValueError(
                f"input_shape must have {self._ndim + 2} or {self._ndim + 1} dims, got {shape}")
        self._plan.geometry(shape, output_size)
        if self._measured is not None:
            dtype = compute_dtype(np.empty(0, np.float32 if dtype is None else dtype),
                                  self._plan.weight, self._plan.bias)
            return self._measured_plan(shape, dtype, threads, output_size).resolved_algorithm()
        return self._plan.resolved_algorithm()

    def flops(self, input_shape) -> int:
        """Floating-point operations of a call on ``input_shape``: 2 per multiply-add.

        ``2 * N * C_in * (C_out / groups) * prod(kernel) * prod(input spatial)``: every input
        element meets every tap once (output positions that padding crops still count).

        Parameters
        ----------
        input_shape : tuple of int
            ``(N, C_in, *spatial)`` or, unbatched, ``(C_in, *spatial)``.

        Returns
        -------
        int

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> fastconv.ConvTranspose2d(np.ones((3, 2, 4, 4)), stride=2).flops((1, 3, 8, 8))
        12288
        """
        shape = tuple(int(n) for n in input_shape)
        batch = shape[0] if len(shape) == self._ndim + 2 else 1
        p = self._plan
        return 2 * batch * p.c_in * (p.c_out // p.groups) * prod(p.kernel) * prod(
            shape[-self._ndim:])

    def __call__(self, x, *, threads=None, out=None, output_size=None):
        """Apply the layer to ``x``: the transposed convolution with the layer's parameters.

        Parameters
        ----------
        x : array_like
            ``(N, C_in, *spatial)`` or, unbatched, ``(C_in, *spatial)``.
        threads : int, optional
            Threads to use (``None``: :func:`fastconv.get_num_threads`; ``-1``: every CPU).
        out : numpy.ndarray, optional
            C-contiguous array of the exact output shape and dtype to fill and return.
        output_size : tuple of int, optional
            The spatial output size (or the full output shape) for this call; chooses
            ``output_padding`` as the functional form does.

        Returns
        -------
        numpy.ndarray
            ``(N, C_out, *out_spatial)`` (unbatched input: no ``N``).

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> up = fastconv.ConvTranspose2d(np.ones((2, 3, 3, 3), np.float32), stride=2,
        ...                               padding=1)
        >>> x = np.ones((1, 2, 4, 4), np.float32)
        >>> up(x).shape
        (1, 3, 7, 7)
        >>> up(x, output_size=(8, 8)).shape        # output_padding 1 for this call
        (1, 3, 8, 8)
        >>> out = np.empty((3, 7, 7), np.float32)
        >>> up(x[0], out=out) is out               # unbatched input, preallocated output
        True
        """
        plan = self._plan
        if self._channels_last:
            x = to_channels_first(x, self._ndim)
        if self._measured is not None:
            x = check_array(x, "x")
            plan = self._measured_plan(x.shape, compute_dtype(x, plan.weight, plan.bias),
                                       threads, output_size)
        if self._channels_last:
            y = plan(x, output_size=output_size, threads=threads)
            return write_channels_last(y, self._ndim, out)
        return plan(x, output_size=output_size, threads=threads, out=out)

    def __getstate__(self) -> dict:
        # pickling ships the weights and parameters; the copy prepares its own packed weight
        p = self._plan
        return {"weight": p.weight, "bias": p.bias, "stride": p.stride, "padding": p.padding,
                "output_padding": p.output_padding, "groups": p.groups,
                "dilation": p.dilation, "algorithm": self.algorithm,
                "data_format": ({1: "NWC", 2: "NHWC", 3: "NDHWC"}[self._ndim]
                                if self._channels_last else None)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        p = self._plan
        return (f"{type(self).__name__}({p.c_in}, {p.c_out}, kernel_size={p.kernel}, "
                f"stride={p.stride}, padding={p.padding!r}, output_padding={p.output_padding}, "
                f"groups={p.groups}, dilation={p.dilation}, bias={p.bias is not None}, "
                f"algorithm={self.algorithm!r})")


class ConvTranspose1d(_ConvTransposeNd):
    _ndim = 1


class ConvTranspose2d(_ConvTransposeNd):
    _ndim = 2


class ConvTranspose3d(_ConvTransposeNd):
    _ndim = 3


_DIMS = {1: ("W", "kW", "W_out"), 2: ("H, W", "kH, kW", "H_out, W_out"),
         3: ("D, H, W", "kD, kH, kW", "D_out, H_out, W_out")}
_EXAMPLES = {
    1: """
    >>> import numpy as np, fastconv
    >>> x = np.ones((1, 2, 4), np.float32)
    >>> w = np.ones((2, 3, 4), np.float32)
    >>> fastconv.conv_transpose1d(x, w, stride=2, padding=1).shape
    (1, 3, 8)
""",
    2: """
    >>> import numpy as np, fastconv
    >>> x = np.ones((1, 1, 2, 2))
    >>> w = np.ones((1, 1, 2, 2))
    >>> fastconv.conv_transpose2d(x, w, stride=2)[0, 0]
    array([[1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.],
           [1., 1., 1., 1.]])
    >>> fastconv.conv_transpose2d(x, w, stride=2, padding="same").shape
    (1, 1, 4, 4)
    >>> fastconv.conv_transpose2d(x, w, stride=3, output_size=(7, 7)).shape
    (1, 1, 7, 7)
""",
    3: """
    >>> import numpy as np, fastconv
    >>> x = np.ones((2, 4, 3, 3, 3), np.float32)
    >>> w = np.ones((4, 2, 2, 2, 2), np.float32)
    >>> fastconv.conv_transpose3d(x, w, stride=2, groups=2).shape
    (2, 4, 6, 6, 6)
""",
}
_LAYER_EXAMPLES = {
    1: """
    >>> import numpy as np, fastconv
    >>> layer = fastconv.ConvTranspose1d(np.ones((2, 3, 4), np.float32), stride=2, padding=1)
    >>> layer(np.ones((1, 2, 5), np.float32)).shape
    (1, 3, 10)
""",
    2: """
    >>> import numpy as np, fastconv
    >>> layer = fastconv.ConvTranspose2d(np.ones((8, 4, 4, 4), np.float32), stride=2, padding=1)
    >>> layer.algorithm_for((1, 8, 16, 16))
    'gemm'
    >>> layer(np.ones((1, 8, 16, 16), np.float32)).shape
    (1, 4, 32, 32)
    >>> layer.weight.shape, layer.bias, layer.stride, layer.padding, layer.output_padding
    ((8, 4, 4, 4), None, (2, 2), 1, (0, 0))
    >>> layer.dilation, layer.groups, layer.algorithm
    ((1, 1), 1, 'auto')
""",
    3: """
    >>> import numpy as np, fastconv
    >>> layer = fastconv.ConvTranspose3d(np.ones((4, 2, 2, 2, 2), np.float32), stride=2)
    >>> layer(np.ones((4, 3, 3, 3), np.float32)).shape
    (2, 6, 6, 6)
""",
}

for _nd, _fn in ((1, conv_transpose1d), (2, conv_transpose2d), (3, conv_transpose3d)):
    _dims, _kdims, _odims = _DIMS[_nd]
    _fn.__doc__ = (
        f"{_nd}-D transposed convolution (the gradient of ``conv{_nd}d`` with respect to its "
        f"input), PyTorch's ``conv_transpose{_nd}d``.\n"
        + _PARAMS_DOC.format(dims=_dims, kdims=_kdims, dims_out=_odims)
        + "\n    Examples\n    --------" + _EXAMPLES[_nd])
for _nd, _cls in ((1, ConvTranspose1d), (2, ConvTranspose2d), (3, ConvTranspose3d)):
    _cls.__doc__ = (
        f"{_nd}-D transposed convolution layer: the weight is validated, copied and prepared "
        f"once.\n\n    Same parameters as :func:`conv_transpose{_nd}d` without ``x``; called as "
        f"``layer(x, *, threads=None, out=None, output_size=None)``. ``algorithm`` may also be "
        f"``\"measure\"``: the first call per input shape, dtype and thread count times "
        f"``\"gemm\"`` and ``\"phase\"`` and keeps the faster (cached in memory and in "
        f"``FASTCONV_CACHE_DIR``).\n"
        "\n    Examples\n    --------" + _LAYER_EXAMPLES[_nd])

# data_format= (channels-last data): fastconv._layout
conv_transpose1d = with_layout(1)(conv_transpose1d)
conv_transpose2d = with_layout(2)(conv_transpose2d)
conv_transpose3d = with_layout(3)(conv_transpose3d)
