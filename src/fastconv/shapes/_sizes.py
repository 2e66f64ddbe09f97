"""Output sizes and padding: the one place where fastconv computes them.

The formulas, per spatial dim, with ``e = (k - 1)*d + 1`` the dilated kernel extent and
``(pb, pa)`` the padding before and after:

- convolution: ``out = floor((in + pb + pa - e) / s) + 1`` (PyTorch, ONNX, TensorFlow);
- transposed convolution: ``out = (in - 1)*s - pb - pa + e + output_padding``;
- pooling: as convolution, or with ``ceil_mode`` rounding up, except that a last window starting
  in the right padding is dropped (PyTorch's rule);
- ``"same"``: ``out = ceil(in / s)``, total padding ``max((out - 1)*s + e - in, 0)`` with the odd
  element at the end (TensorFlow ``SAME``, ONNX ``SAME_UPPER``); ``"same_lower"`` puts it at the
  start (ONNX ``SAME_LOWER``); ``"full"``: ``e - 1`` on both sides;
- transposed ``"same"``: ``out = in * s``; ONNX's ConvTranspose rule gives the total padding
  ``t = (in - 1)*s + output_padding + e - in*s = e - s + output_padding``, split with floor
  division: ``"same"`` starts the output window at ``floor(t / 2)`` of the full result,
  ``"same_lower"`` at ``t - floor(t / 2)``. When the dilated kernel is shorter than the stride
  ``t`` is negative, and so may be the pads: the window then reaches past the full result, and
  the positions outside it are zeros (only the bias), as the ``onnx`` package's reference
  implementation computes them.

Every function takes ints or per-dim tuples and answers in the form it was given: an int if
every size argument was an int, else a tuple with one entry per spatial dim.
"""

from ._args import (
    Size,
    explicit_padding,
    ndim_of,
    optional_per_dim,
    padding_name,
    per_dim,
    shaped,
)

Padding = int | str | tuple

# padding -> which side gets the odd element of an uneven total
_SAME_SPLITS = {"same": "after", "same_lower": "before"}


def _split(total: int, odd_side: str) -> tuple[int, int]:
    small = total // 2
    return (small, total - small) if odd_side == "after" else (total - small, small)


def _resolve(padding: Padding, ins: tuple[int, ...], ks: tuple[int, ...], ss: tuple[int, ...],
             ds: tuple[int, ...], transposed: bool = False,
             ops: tuple[int, ...] | None = None) -> tuple[tuple[int, int], ...]:
    """Padding pairs from already-checked per-dim tuples (the fast path every function shares)."""
    ndim = len(ks)
    if not isinstance(padding, str):
        return explicit_padding(padding, ndim)
    padding = padding_name(padding)
    if padding == "valid":
        return ((0, 0),) * ndim
    extents = [(k - 1) * d + 1 for k, d in zip(ks, ds)]
    if padding == "full":
        if transposed:
            raise ValueError("padding='full' is for convolutions; a transposed convolution takes "
                             "an int, a tuple, 'valid', 'same' or 'same_lower'")
        return tuple((e - 1, e - 1) for e in extents)
    side = _SAME_SPLITS[padding]
    pairs = []
    for dim in range(ndim):
        e, s = extents[dim], ss[dim]
        if transposed:
            # may be negative (kernel extent below the stride): the split then gives negative
            # pads, a window reaching past the full result (floor division, as ONNX's)
            total = e - s + (ops[dim] if ops else 0)
        else:
            total = max((-(-ins[dim] // s) - 1) * s + e - ins[dim], 0)
        pairs.append(_split(total, side))
    return tuple(pairs)


def resolve_padding(padding: Padding, input_size: Size, kernel_size: Size, stride: Size = 1,
                    dilation: Size = 1, transposed: bool = False, *,
                    output_padding: Size = 0) -> tuple[tuple[int, int], ...]:
    """The explicit ``(before, after)`` padding of each spatial dim.

    Parameters
    ----------
    padding : int, tuple or str
        An int or per-dim ints (symmetric), per-dim ``(before, after)`` pairs, ``"valid"``,
        ``"same"`` (extra element at the end), ``"same_lower"`` (extra element at the start) or
        ``"full"`` (convolutions only).
    input_size, kernel_size, stride, dilation : int or tuple of int
        Per spatial dim, or one int for every dim.
    transposed : bool
        Resolve for a transposed convolution: ``"same"`` then means output ``input_size*stride``
        (ONNX ``ConvTranspose`` rule); ``"full"`` is refused. When the dilated kernel plus
        ``output_padding`` is shorter than the stride the total is negative, and so may be a
        pad: the output window then reaches past the full result (zeros there).
    output_padding : int or tuple of int, keyword-only
        Transposed ``"same"`` only: ONNX counts it in the total padding, so the output stays
        ``input_size*stride`` whatever it is.

    Returns
    -------
    tuple of (int, int)
        One ``(before, after)`` pair per spatial dim (a 1-tuple for int arguments).

    Examples
    --------
    >>> resolve_padding("same", 13, 3)
    ((1, 1),)
    >>> resolve_padding("same", (224, 224), 3, stride=2)
    ((0, 1), (0, 1))
    >>> resolve_padding("same_lower", 224, 3, stride=2)
    ((1, 0),)
    >>> resolve_padding("full", 10, 3, dilation=2)
    ((4, 4),)
    >>> resolve_padding("same", 10, 4, stride=2, transposed=True)
    ((1, 1),)
    >>> resolve_padding("same", 10, 2, stride=3, transposed=True)   # extent 2 < stride 3
    ((-1, 0),)
    """
    ndim, _ = ndim_of(padding=padding, input_size=input_size, kernel_size=kernel_size,
                      stride=stride, dilation=dilation, output_padding=output_padding)
    ins = per_dim(input_size, "input_size", ndim)
    ks = per_dim(kernel_size, "kernel_size", ndim)
    ss = per_dim(stride, "stride", ndim)
    ds = per_dim(dilation, "dilation", ndim)
    ops = per_dim(output_padding, "output_padding", ndim, 0)
    return _resolve(padding, ins, ks, ss, ds, bool(transposed), ops)


def _too_small(function: str, dim: int, size: int, why: str, **arguments: object) -> ValueError:
    shown = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
    return ValueError(f"{function}: output size {size} < 1 in dim {dim} for {shown}: {why}")


def conv_output_size(input_size: Size, kernel_size: Size, stride: Size = 1,
                     padding: Padding = 0, dilation: Size = 1) -> int | tuple[int, ...]:
    """Spatial output size of a convolution.

    ``floor((in + pad_before + pad_after - (k - 1)*d - 1) / s) + 1`` per dim; ``"same"``
    gives ``ceil(in / s)``.

    Examples
    --------
    >>> conv_output_size(13, 3)
    11
    >>> conv_output_size(13, 3, padding="same")
    13
    >>> conv_output_size(13, 3, padding="full")
    15
    >>> conv_output_size((224, 224), 7, stride=2, padding=3)
    (112, 112)
    >>> conv_output_size(10, 3, stride=3, padding=((0, 2),), dilation=2)
    (3,)
    """
    ndim, form = ndim_of(input_size=input_size, kernel_size=kernel_size, stride=stride,
                         padding=padding, dilation=dilation)
    ins = per_dim(input_size, "input_size", ndim)
    ks = per_dim(kernel_size, "kernel_size", ndim)
    ss = per_dim(stride, "stride", ndim)
    ds = per_dim(dilation, "dilation", ndim)
    pads = _resolve(padding, ins, ks, ss, ds)
    out = []
    for dim in range(ndim):
        padded = ins[dim] + pads[dim][0] + pads[dim][1]
        extent = (ks[dim] - 1) * ds[dim] + 1
        size = (padded - extent) // ss[dim] + 1
        if size < 1:
            raise _too_small(
                "conv_output_size", dim, size,
                f"the dilated kernel ({extent}) is larger than the padded input ({padded})",
                input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding,
                dilation=dilation)
        out.append(size)
    return shaped(tuple(out), form)


def _check_output_padding(ops: tuple[int, ...], ss: tuple[int, ...],
                          ds: tuple[int, ...]) -> None:
    for dim, (op, s, d) in enumerate(zip(ops, ss, ds)):
        if op >= max(s, d):
            raise ValueError(
                f"output_padding must be smaller than stride or dilation (PyTorch's rule), got "
                f"output_padding {op} with stride {s} and dilation {d} in dim {dim}")


def conv_transpose_output_size(input_size: Size, kernel_size: Size, stride: Size = 1,
                               padding: Padding = 0, output_padding: Size = 0,
                               dilation: Size = 1) -> int | tuple[int, ...]:
    """Spatial output size of a transposed convolution.

    ``(in - 1)*s - pad_before - pad_after + (k - 1)*d + 1 + output_padding`` per dim;
    ``"same"`` and ``"same_lower"`` give ``in * s``. ``output_padding`` must be smaller than
    ``stride`` or ``dilation`` (PyTorch's rule).

    Examples
    --------
    >>> conv_transpose_output_size(7, 3, stride=2, padding=1)
    13
    >>> conv_transpose_output_size(7, 3, stride=2, padding=1, output_padding=1)
    14
    >>> conv_transpose_output_size((5, 6), 4, stride=2, padding="same")
    (10, 12)
    """
    ndim, form = ndim_of(input_size=input_size, kernel_size=kernel_size, stride=stride,
                         padding=padding, output_padding=output_padding, dilation=dilation)
    ins = per_dim(input_size, "input_size", ndim)
    ks = per_dim(kernel_size, "kernel_size", ndim)
    ss = per_dim(stride, "stride", ndim)
    ds = per_dim(dilation, "dilation", ndim)
    ops = per_dim(output_padding, "output_padding", ndim, 0)
    _check_output_padding(ops, ss, ds)
    pads = _resolve(padding, ins, ks, ss, ds, True, ops)
    out = []
    for dim in range(ndim):
        extent = (ks[dim] - 1) * ds[dim] + 1
        full = (ins[dim] - 1) * ss[dim] + extent + ops[dim]
        size = full - pads[dim][0] - pads[dim][1]
        if size < 1:
            raise _too_small(
                "conv_transpose_output_size", dim, size,
                f"the padding ({pads[dim][0]} + {pads[dim][1]}) crops the whole unpadded "
                f"output ({full})", input_size=input_size, kernel_size=kernel_size,
                stride=stride, padding=padding, output_padding=output_padding, dilation=dilation)
        out.append(size)
    return shaped(tuple(out), form)


def conv_transpose_output_padding(input_size: Size, output_size: Size, kernel_size: Size,
                                  stride: Size = 1, padding: Padding = 0,
                                  dilation: Size = 1) -> int | tuple[int, ...]:
    """The ``output_padding`` a transposed convolution needs to give ``output_size``.

    The inversion PyTorch's ``ConvTranspose`` does for ``output_size=``: the output size
    without output padding is ``base``; sizes ``base .. base + max(stride, dilation) - 1``
    are reachable, anything else is a ``ValueError``. With ``"same"`` padding the output is
    always ``input_size * stride`` whatever the output padding, and the answer is 0.

    Examples
    --------
    >>> conv_transpose_output_padding(7, 14, 3, stride=2, padding=1)
    1
    >>> conv_transpose_output_padding((7, 7), (13, 14), 3, stride=2, padding=1)
    (0, 1)
    """
    ndim, form = ndim_of(input_size=input_size, output_size=output_size,
                         kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation)
    ins = per_dim(input_size, "input_size", ndim)
    outs = per_dim(output_size, "output_size", ndim)
    ks = per_dim(kernel_size, "kernel_size", ndim)
    ss = per_dim(stride, "stride", ndim)
    ds = per_dim(dilation, "dilation", ndim)
    same = isinstance(padding, str) and padding_name(padding) in _SAME_SPLITS
    pads = ((0, 0),) * ndim if same else _resolve(padding, ins, ks, ss, ds, True)
    result = []
    for dim in range(ndim):
        extent = (ks[dim] - 1) * ds[dim] + 1
        if same:
            # the output is always in*s, whatever the output padding: the default, 0
            base, reach, least = ins[dim] * ss[dim], 1, 0
        else:
            base = (ins[dim] - 1) * ss[dim] + extent - pads[dim][0] - pads[dim][1]
            reach, least = max(ss[dim], ds[dim]), 0
        needed = outs[dim] - base
        if not 0 <= needed < reach:
            reachable = (f"only {base}" if reach == 1
                         else f"from {base} to {base + reach - 1}")
            raise ValueError(
                f"output_size {outs[dim]} cannot be reached in dim {dim}: with "
                f"input_size={input_size!r}, kernel_size={kernel_size!r}, stride={stride!r}, "
                f"padding={padding!r}, dilation={dilation!r} the output size is {reachable} "
                f"(output_padding must be >= 0 and smaller than stride or dilation)")
        result.append(needed + least)
    return shaped(tuple(result), form)


def _check_ceil_mode(ceil_mode: object) -> bool:
    if type(ceil_mode).__name__ not in ("bool", "bool_"):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r} of type "
                        f"{type(ceil_mode).__name__}")
    return bool(ceil_mode)


def pool_output_size(input_size: Size, kernel_size: Size, stride: Size | None = None,
                     padding: Padding = 0, dilation: Size = 1,
                     ceil_mode: bool = False) -> int | tuple[int, ...]:
    """Spatial output size of a pooling window.

    As :func:`conv_output_size`, with ``stride=None`` meaning ``stride = kernel_size``. Each
    pad must be smaller than the dilated kernel extent, so no window sees only padding, and
    ``"full"`` is refused. With ``ceil_mode`` the size rounds up, but a last window that
    would start in the right padding is dropped (PyTorch's rule).

    Examples
    --------
    >>> pool_output_size(112, 3, stride=2, padding=1)
    56
    >>> pool_output_size(55, 3, stride=2)
    27
    >>> pool_output_size(6, 3, stride=2, ceil_mode=True)
    3
    >>> pool_output_size(5, 2, stride=2, padding=1, ceil_mode=True)
    3
    """
    ceil_mode = _check_ceil_mode(ceil_mode)
    if stride is None:
        stride = kernel_size
    ndim, form = ndim_of(input_size=input_size, kernel_size=kernel_size, stride=stride,
                         padding=padding, dilation=dilation)
    ins = per_dim(input_size, "input_size", ndim)
    ks = per_dim(kernel_size, "kernel_size", ndim)
    ss = per_dim(stride, "stride", ndim)
    ds = per_dim(dilation, "dilation", ndim)
    if padding == "full":
        raise ValueError("padding='full' is for convolutions; a pooling window takes an int, "
                         "a tuple, 'valid', 'same' or 'same_lower'")
    pads = _resolve(padding, ins, ks, ss, ds)
    out = []
    for dim in range(ndim):
        extent = (ks[dim] - 1) * ds[dim] + 1
        before, after = pads[dim]
        if max(before, after) >= extent:
            raise ValueError(
                f"padding {pads[dim]} in dim {dim} must be smaller than the dilated kernel "
                f"extent {extent} (kernel_size={kernel_size!r}, dilation={dilation!r}): a "
                f"window would cover only padding")
        span = ins[dim] + before + after - extent
        if ceil_mode:
            size = -(-span // ss[dim]) + 1
            if (size - 1) * ss[dim] >= ins[dim] + before:  # starts in the right padding
                size -= 1
        else:
            size = span // ss[dim] + 1
        if size < 1:
            raise _too_small(
                "pool_output_size", dim, size,
                f"the dilated kernel ({extent}) is larger than the padded input "
                f"({ins[dim] + before + after})", input_size=input_size,
                kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
        out.append(size)
    return shaped(tuple(out), form)


def adaptive_pool_bins(input_size: Size,
                       output_size: int | None | tuple[int | None, ...]
                       ) -> list[tuple[int, int]] | tuple[list[tuple[int, int]], ...]:
    """The ``[start, end)`` input range of every bin of an adaptive pooling.

    Bin ``i`` covers ``[floor(i*in/out), ceil((i+1)*in/out))`` (PyTorch); an ``output_size``
    of None keeps the input size in that dim.

    Returns
    -------
    list of (int, int), or a tuple of such lists, one per spatial dim, when a size is a tuple.

    Examples
    --------
    >>> adaptive_pool_bins(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    >>> adaptive_pool_bins((4, 3), (2, None))
    ([(0, 2), (2, 4)], [(0, 1), (1, 2), (2, 3)])
    """
    ndim, form = ndim_of(input_size=input_size, output_size=output_size)
    ins = per_dim(input_size, "input_size", ndim)
    outs = optional_per_dim(output_size, "output_size", ndim)
    bins = []
    for size, out in zip(ins, outs):
        out = size if out is None else out
        bins.append([(i * size // out, -(-(i + 1) * size // out)) for i in range(out)])
    return shaped(tuple(bins), form)

