"""Receptive fields, after Araujo, Norris & Sim, "Computing Receptive Fields of Convolutional
Neural Networks" (Distill, 2019).

Coordinates are zero-based. After layers ``1..L`` an output unit ``u`` sees the input range
``region(u) = (-P + u*S, -P + u*S + r - 1)``: ``r`` is the field size, ``S`` the effective stride,
``P`` the effective left padding. A layer with kernel extent ``k`` (dilated: ``(k - 1)*d + 1``),
stride ``s`` and left padding ``p`` updates them, in input-to-output order::

    r <- r + (k - 1)*S        P <- P + p*S        S <- S*s

which sums to the article's closed form ``r = 1 + sum (k_l - 1) prod_{i<l} s_i``,
``P = sum p_l prod_{i<l} s_i``, ``S = prod s_l``. How each layer kind maps onto ``(k, s, p)``:

- ``Conv``, ``Pool``: as written; ``ceil_mode`` only adds windows at the right, so it changes no
  field. ``"same"`` padding: its left part depends on the input size unless the stride is 1 (then
  it is ``(extent - 1) // 2``); without ``input_size`` such a ``P`` is None and ``reason`` says why.
- ``ConvTranspose`` (upsampling) is a convolution of fractional stride ``1/s``. Output ``o`` is
  reached by the inputs ``i`` with ``i*s`` in ``[o + p - (e - 1), o + p]`` (``e`` the dilated
  extent, ``p`` its left padding), the interval ``[(o + p - e + 1)/s, (o + p)/s]`` in input
  units: ``k = 1 + (e - 1)/s``, stride ``1/s``, padding ``(e - 1 - p)/s``. The field is therefore
  a :class:`fractions.Fraction` where ``s`` does not divide it, and it is an outer bound: the
  inputs actually reached, between ``ceil(start)`` and ``floor(end)``, vary with the output's
  phase (the checkerboard of :func:`transpose_overlap`).
- ``AdaptivePool``: equal bins (input size divisible by output size) are the pool with
  ``k = s = in/out``; global pooling (output 1) makes every output see the whole input. Unequal
  bins have no single size and stride, so the field becomes None with the reason, as does
  any adaptive pooling when the input size is unknown (``whole_input`` is still set for global
  pooling).
- ``Linear`` and ``Flatten``: every output depends on the whole input (``whole_input``); with
  the input size known this is the window covering the whole map (``k = s = map size``), so the
  reported size includes how far the field reaches into the padding on both sides.
- ``BatchNorm``, ``Identity``: no change.
- ``Parallel``: every branch starts from the same field; they must be aligned, meaning equal
  effective strides and equal centres (``-P + (r - 1)/2``), else ``ValueError`` naming them; the
  result is the largest field of the branches. Centres that are unknown (``"same"`` padding
  without ``input_size``) cannot be compared and are not.
"""

from fractions import Fraction
from typing import Any

from ._args import Size, explicit_padding, ndim_of, optional_per_dim, per_dim
from ._layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Flatten,
    Identity,
    Linear,
    Parallel,
    Pool,
    Sequential,
    join_path,
)
from ._sizes import (
    _SAME_SPLITS,
    _resolve,
    conv_output_size,
    conv_transpose_output_size,
    pool_output_size,
)

Number = int | Fraction


def _clean(value: Number | None) -> Number | None:
    if isinstance(value, Fraction) and value.denominator == 1:
        return int(value)
    return value


def _first(size: int | tuple[int, ...]) -> int:
    return size[0] if isinstance(size, tuple) else size


def _collapse(values: tuple) -> Any:
    """One value when every dim agrees, else the per-dim tuple."""
    return values[0] if all(v == values[0] for v in values) else values


def _as_float_if_fraction(value: Number) -> int | float:
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else float(value)
    return value


class ReceptiveField:
    """The receptive field after a layer or a whole network.

    Attributes
    ----------
    size, stride, padding : int, Fraction, None or tuple
        ``r``, the effective stride ``S`` and the effective left padding ``P``; a tuple when
        the spatial dims differ; None when unknown (see ``reason``). Fractions appear only
        after transposed convolutions.
    reason : str or None
        Why a value is None.
    whole_input : bool
        Every output depends on the whole input (after ``Flatten``, ``Linear`` or global
        pooling).
    name : str or None
        The layer's path (``"layer1.0.conv1"``); None for a whole network.
    layer : layer spec or None
    output_size : int, tuple or None
        Spatial size of the feature map after the layer, when known.
    layers : list of ReceptiveField
        For a network: the field after every layer, in order (the layers inside ``Parallel``
        branches, then the merge).

    Examples
    --------
    >>> rf = receptive_field([Conv(3, padding=1), Conv(3, padding=1)])
    >>> rf.size, rf.stride, rf.padding
    (5, 1, 2)
    >>> rf.region(0), rf.center(10)
    ((-2, 2), 10)
    """

    def __init__(self, sizes: tuple, strides: tuple, paddings: tuple, *,
                 reason: str | None = None, whole_input: bool = False, name: str | None = None,
                 layer: object = None, output_sizes: tuple | None = None,
                 layers: list["ReceptiveField"] | None = None) -> None:
        self._sizes = tuple(_clean(v) for v in sizes)
        self._strides = tuple(_clean(v) for v in strides)
        self._paddings = tuple(_clean(v) for v in paddings)
        self.size = _collapse(self._sizes)
        self.stride = _collapse(self._strides)
        self.padding = _collapse(self._paddings)
        self.reason = reason
        self.whole_input = whole_input
        self.name = name
        self.layer = layer
        self._extents = output_sizes
        known = output_sizes is not None and None not in output_sizes
        self.output_size = _collapse(output_sizes) if output_sizes and known else None
        self.layers = [] if layers is None else layers

    @property
    def ndim(self) -> int:
        return len(self._sizes)

    def __repr__(self) -> str:
        text = f"ReceptiveField(size={self.size!r}, stride={self.stride!r}, " \
               f"padding={self.padding!r}"
        if self.whole_input:
            text += ", whole_input=True"
        return text + ")"

    def _known(self, u: Size) -> tuple[list[tuple[int, Number, Number, Number]], bool]:
        """Per dim: (u, r, S, P), all known; and whether ``u`` came per dim."""
        ndim, form = ndim_of(u=u)
        if form and ndim != self.ndim:
            raise ValueError(f"u must be an int or a tuple of {self.ndim} ints, got {u!r}")
        dims = []
        for i, r, s, p in zip(per_dim(u, "u", self.ndim, None), self._sizes, self._strides,
                              self._paddings):
            if r is None or s is None or p is None:
                raise ValueError(f"the receptive field is not fully known: {self.reason}")
            dims.append((i, r, s, p))
        return dims, form

    def region(self, u: Size) -> Any:
        """The input range ``(first, last)`` that output unit ``u`` sees, in every dim.

        Returns ``(first, last)``, or one such pair per dim when ``u`` is a tuple or the dims
        differ. Zero-based; negative values and values past the input lie in the padding.

        Examples
        --------
        >>> rf = receptive_field([Conv(3, stride=2, padding=1), Conv(3, padding=1)])
        >>> rf.region(0), rf.region(3)
        ((-3, 3), (3, 9))
        >>> receptive_field([Conv(3), Conv((3, 5))]).region((0, 1))
        ((0, 4), (1, 7))
        """
        dims, form = self._known(u)
        pairs = tuple((_clean(-p + i * s), _clean(-p + i * s + r - 1)) for i, r, s, p in dims)
        return pairs if form else _collapse(pairs)

    def center(self, u: Size) -> Any:
        """The centre ``-P + u*S + (r - 1)/2`` of the field of output unit ``u``.

        An int, or a float when it falls between two input units; a tuple per dim when ``u``
        is a tuple or the dims differ.

        Examples
        --------
        >>> receptive_field([Conv(3, stride=2, padding=1), Conv(3, padding=1)]).center(3)
        6
        >>> receptive_field([Conv(4, stride=2, padding=1)]).center(0)  # an even kernel
        0.5
        """
        dims, form = self._known(u)
        centres = tuple(_as_float_if_fraction(-p + i * s + Fraction(r - 1, 2))
                        for i, r, s, p in dims)
        return centres if form else _collapse(centres)

    def to_dict(self) -> dict:
        """The fields as a JSON-ready dict (fractions as floats, tuples as lists).

        Examples
        --------
        >>> receptive_field([ConvTranspose(4, stride=2, padding=1)]).to_dict()
        {'size': 2.5, 'stride': 0.5, 'padding': 1, 'whole_input': False, 'reason': None}
        """

        def plain(value: object) -> object:
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            return float(value) if isinstance(value, Fraction) else value

        return {"size": plain(self.size), "stride": plain(self.stride),
                "padding": plain(self.padding), "whole_input": self.whole_input,
                "reason": self.reason}


class _State:
    """The field while walking the network: per-dim r, S, P and the feature-map size."""

    __slots__ = ("sizes", "strides", "paddings", "extents", "whole", "flat", "reason")

    def __init__(self, sizes: list, strides: list, paddings: list, extents: list,
                 whole: bool = False, flat: bool = False, reason: str | None = None) -> None:
        self.sizes, self.strides, self.paddings, self.extents = sizes, strides, paddings, extents
        self.whole, self.flat, self.reason = whole, flat, reason

    def copy(self) -> "_State":
        return _State(list(self.sizes), list(self.strides), list(self.paddings),
                      list(self.extents), self.whole, self.flat, self.reason)

    def apply(self, dim: int, k: Number, s: Number, p: Number | None) -> None:
        """One layer of kernel extent ``k``, stride ``s``, left padding ``p`` in ``dim``."""
        r, stride, pad = self.sizes[dim], self.strides[dim], self.paddings[dim]
        self.sizes[dim] = None if r is None or stride is None else r + (k - 1) * stride
        self.paddings[dim] = None if pad is None or p is None or stride is None \
            else pad + p * stride
        self.strides[dim] = None if stride is None else stride * s

    def unknown(self, dim: int, reason: str) -> None:
        self.sizes[dim] = self.strides[dim] = self.paddings[dim] = None
        if self.reason is None:
            self.reason = reason

    def snapshot(self, name: str | None, layer: object) -> ReceptiveField:
        return ReceptiveField(tuple(self.sizes), tuple(self.strides), tuple(self.paddings),
                              reason=self.reason, whole_input=self.whole, name=name,
                              layer=layer, output_sizes=tuple(self.extents))


def _layer_error(path: str, layer: object, exc: Exception) -> ValueError:
    label = getattr(layer, "describe", lambda: type(layer).__name__)()
    return ValueError(f"layer {path or '(top)'} ({label}): {exc}")


def _window(state: _State, layer: Conv | Pool, path: str) -> None:
    """Convolution or pooling: kernel extent, stride and the left padding per dim."""
    ndim = len(state.sizes)
    stride = layer.kernel_size if layer.stride is None else layer.stride
    ks = per_dim(layer.kernel_size, "kernel_size", ndim)
    ss = per_dim(stride, "stride", ndim)
    ds = per_dim(layer.dilation, "dilation", ndim)
    padding = layer.padding
    pairs = None if isinstance(padding, str) else explicit_padding(padding, ndim)
    for dim in range(ndim):
        k, s, d, n = ks[dim], ss[dim], ds[dim], state.extents[dim]
        pair: tuple[int, int] | None = None
        if pairs is not None:
            pair = pairs[dim]
        elif n is not None or padding not in _SAME_SPLITS:
            pair = _resolve(padding, (n or 1,), (k,), (s,), (d,))[0]
        if pair is not None:
            left: int | None = pair[0]
        else:
            # without the map size, "same" is known only if every size gives the same split
            # (the split depends on the size modulo the stride only)
            lefts = {_resolve(padding, (m,), (k,), (s,), (d,))[0][0] for m in range(1, s + 1)}
            left = lefts.pop() if len(lefts) == 1 else None
        state.apply(dim, (k - 1) * d + 1, s, left)
        if left is None and state.reason is None:
            state.reason = (f"layer {path}: padding={padding!r} with stride {s} splits "
                            f"according to the input size; pass input_size")
        if n is not None and pair is not None:
            args = (n, k, s, (pair,), d)
            state.extents[dim] = _first(pool_output_size(*args, ceil_mode=layer.ceil_mode)
                                        if isinstance(layer, Pool) else conv_output_size(*args))


def _transposed(state: _State, layer: ConvTranspose) -> None:
    """Fractional stride 1/s: see the module notes."""
    ndim = len(state.sizes)
    ks = per_dim(layer.kernel_size, "kernel_size", ndim)
    ss = per_dim(layer.stride, "stride", ndim)
    ds = per_dim(layer.dilation, "dilation", ndim)
    ops = per_dim(layer.output_padding, "output_padding", ndim, 0)
    pairs = _resolve(layer.padding, (1,) * ndim, ks, ss, ds, True, ops)
    for dim in range(ndim):
        e, s = (ks[dim] - 1) * ds[dim] + 1, ss[dim]
        state.apply(dim, 1 + Fraction(e - 1, s), Fraction(1, s),
                    Fraction(e - 1 - pairs[dim][0], s))
        n = state.extents[dim]
        if n is not None:
            # the padding by name when it is one: resolved "same" pairs may be negative
            padding = layer.padding if isinstance(layer.padding, str) else (pairs[dim],)
            state.extents[dim] = _first(conv_transpose_output_size(
                n, ks[dim], s, padding, ops[dim], ds[dim]))


def _whole(state: _State, path: str, what: str) -> None:
    """Every output now sees the whole input: a window as large as the map."""
    for dim, n in enumerate(state.extents):
        if n is None:
            state.unknown(dim, f"layer {path}: {what} sees the whole input, whose extent is "
                               f"unknown; pass input_size")
        else:
            state.apply(dim, n, n, 0)
            state.extents[dim] = 1
    state.whole = True


def _adaptive(state: _State, layer: AdaptivePool, path: str) -> None:
    outs = optional_per_dim(layer.output_size, "output_size", len(state.sizes))
    if all(o == 1 for o in outs):
        _whole(state, path, "global pooling")
        return
    for dim, (n, o) in enumerate(zip(state.extents, outs)):
        if o is None or o == n:  # keeps the size: one bin per input unit
            continue
        if n is None:
            state.unknown(dim, f"layer {path}: the field of adaptive pooling depends on the "
                               f"input size; pass input_size")
        elif n % o:
            state.unknown(dim, f"layer {path}: adaptive pooling from {n} to {o} has bins of "
                               f"unequal size, so no single field size and stride describe it")
        else:
            state.apply(dim, n // o, n // o, 0)
        state.extents[dim] = o


def _leaf(state: _State, layer: object, path: str) -> None:
    if isinstance(layer, (BatchNorm, Identity)):
        return
    if isinstance(layer, (Flatten, Linear)):
        if not state.flat:
            _whole(state, path, type(layer).__name__)
            state.flat = True
        return
    if state.flat:
        raise ValueError("this layer needs a spatial input, but it comes after "
                         "Flatten/Linear")
    if isinstance(layer, (Conv, Pool)):
        _window(state, layer, path)
    elif isinstance(layer, ConvTranspose):
        _transposed(state, layer)
    elif isinstance(layer, AdaptivePool):
        _adaptive(state, layer, path)
    else:  # pragma: no cover - Sequential/Parallel check their members
        raise TypeError(f"not a layer spec: {layer!r}")


def _centre(state: _State, dim: int) -> Number | None:
    r, p = state.sizes[dim], state.paddings[dim]
    return None if r is None or p is None else -p + Fraction(r - 1, 2)


def _merge(states: list[_State], names: list[str], path: str) -> _State:
    """Parallel branches: aligned (same stride and centre), then the largest field."""
    first = states[0]
    for dim in range(len(first.sizes)):
        for other, name in zip(states[1:], names[1:]):
            a, b = first.strides[dim], other.strides[dim]
            if a is not None and b is not None and a != b:
                raise ValueError(
                    f"Parallel {path or '(top)'}: branches {names[0]!r} and {name!r} are not "
                    f"aligned: effective stride {_clean(a)} vs {_clean(b)} in dim {dim}")
            ca, cb = _centre(first, dim), _centre(other, dim)
            if ca is not None and cb is not None and ca != cb:
                raise ValueError(
                    f"Parallel {path or '(top)'}: branches {names[0]!r} and {name!r} are not "
                    f"aligned: their fields are centred at {_as_float_if_fraction(ca)} and "
                    f"{_as_float_if_fraction(cb)} in dim {dim} (output unit 0)")
            ea, eb = first.extents[dim], other.extents[dim]
            if ea is not None and eb is not None and ea != eb:
                raise ValueError(
                    f"Parallel {path or '(top)'}: branches {names[0]!r} and {name!r} give "
                    f"feature maps of different sizes, {ea} and {eb}, in dim {dim}")
    merged = first.copy()
    for dim in range(len(first.sizes)):
        sizes = [s.sizes[dim] for s in states]
        if None in sizes:
            merged.sizes[dim] = merged.paddings[dim] = None
        else:
            widest = max(range(len(states)), key=lambda i: sizes[i])
            merged.sizes[dim] = sizes[widest]
            merged.paddings[dim] = states[widest].paddings[dim]
        if any(s.paddings[dim] is None for s in states):
            merged.paddings[dim] = None
        merged.extents[dim] = next((s.extents[dim] for s in states
                                    if s.extents[dim] is not None), None)
    merged.whole = any(s.whole for s in states)
    merged.flat = any(s.flat for s in states)
    merged.reason = next((s.reason for s in states if s.reason is not None), None)
    return merged


def walk(layer: object, state: _State, path: str, entries: list[ReceptiveField]) -> _State:
    """The field after ``layer``; appends the field after every leaf and merge to ``entries``."""
    if isinstance(layer, Sequential):
        for element, child in layer.children():
            state = walk(child, state, join_path(path, element), entries)
        return state
    if isinstance(layer, Parallel):
        states, names = [], []
        for element, branch in layer.children():
            branch_path = join_path(path, element)
            states.append(walk(branch, state.copy(), branch_path, entries))
            names.append(branch_path)
        merged = _merge(states, names, path)
        entries.append(merged.snapshot(path, layer))
        return merged
    state = state.copy()
    try:
        _leaf(state, layer, path)
    except ValueError as exc:
        raise _layer_error(path, layer, exc) from None
    entries.append(state.snapshot(path, layer))
    return state


def _spec_ndim(layer: object) -> int:
    """The number of spatial dims the specs' per-dim tuples imply (1 if all are ints)."""
    if isinstance(layer, (Sequential, Parallel)):
        return max((_spec_ndim(child) for _, child in layer.children()), default=1)
    lengths = [len(getattr(layer, name)) for name in
               ("kernel_size", "stride", "dilation", "output_padding", "padding", "output_size")
               if isinstance(getattr(layer, name, None), tuple)]
    return max(lengths, default=1)


def as_network(layers: object) -> object:
    """A layer spec, or a list of them as a :class:`Sequential`."""
    if isinstance(layers, (list, tuple)):
        return Sequential(*layers)
    return layers


def start(network: object, input_size: Size | None) -> _State:
    """The field of the input itself: one unit, stride 1, no padding."""
    ndim = _spec_ndim(network)
    if input_size is None:
        extents: list[int | None] = [None] * ndim
    else:
        given, per_dim_form = ndim_of(input_size=input_size)
        ndim = given if per_dim_form else ndim
        extents = list(per_dim(input_size, "input_size", ndim))
    return _State([1] * ndim, [1] * ndim, [0] * ndim, extents)


def receptive_field(layers: object, input_size: Size | None = None) -> ReceptiveField:
    """The receptive field of a network, and after each of its layers.

    Parameters
    ----------
    layers : layer spec or list of layer specs
        A :class:`Sequential`, :class:`Parallel`, a single layer, or a list (a Sequential).
    input_size : int or tuple of int, optional
        Spatial size of the input. Needed to resolve ``"same"`` padding with stride > 1, adaptive
        pooling and the extent of whole-input fields; without it those values are None and
        ``reason`` says which layer needed it.

    Returns
    -------
    ReceptiveField
        ``size``, ``stride``, ``padding``, ``region(u)``, ``center(u)``, and ``layers``: the
        field after every layer.

    Examples
    --------
    >>> rf = receptive_field([Conv(7, stride=2, padding=3), Pool(3, stride=2, padding=1)])
    >>> rf.size, rf.stride, rf.padding
    (11, 4, 5)
    >>> rf.region(1)
    (-1, 9)
    >>> [f.size for f in rf.layers]
    [7, 11]
    >>> rf = receptive_field([Conv(3, stride=2, padding="same")])
    >>> rf.size, rf.padding
    (3, None)
    >>> receptive_field([Conv(3, stride=2, padding="same")], input_size=224).padding
    0
    >>> receptive_field([Conv(3, dilation=2), Conv((3, 1))]).size
    (7, 5)
    """
    network = as_network(layers)
    if not isinstance(network, (Sequential, Parallel)):
        network = Sequential(network)
    entries: list[ReceptiveField] = []
    state = walk(network, start(network, input_size), "", entries)
    return ReceptiveField(tuple(state.sizes), tuple(state.strides), tuple(state.paddings),
                          reason=state.reason, whole_input=state.whole,
                          output_sizes=tuple(state.extents), layers=entries)
