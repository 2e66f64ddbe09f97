"""Layer specs: the pieces :func:`receptive_field` and :func:`summary` read.

A spec holds hyper-parameters only, no weights. Sizes are an int (every spatial dim) or a
per-dim tuple; they are checked when the spec is made, so a bad spec fails where it is written.
Every spec takes an optional keyword ``name``, its label in summaries (default: its index in its
parent; the empty string makes a container transparent, so its children are named as if they were
its parent's).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from ._args import check_int, explicit_padding, ndim_of, optional_per_dim, padding_name, per_dim


def _dims_text(value: object) -> str:
    return "x".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _freeze(spec: object, *names: str) -> None:
    """Store per-dim lists as tuples, so specs are hashable and compare by value."""
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            object.__setattr__(spec, name, value)


def _check_window(kernel_size: object, stride: object, padding: object, dilation: object,
                  kind: str) -> None:
    """Check the window of a convolution (``kind="conv"``), ``"transposed"`` or ``"pool"``."""
    stride = kernel_size if stride is None else stride
    ndim, _ = ndim_of(kernel_size=kernel_size, stride=stride, padding=padding,
                      dilation=dilation)
    ks = per_dim(kernel_size, "kernel_size", ndim)
    per_dim(stride, "stride", ndim)
    ds = per_dim(dilation, "dilation", ndim)
    if isinstance(padding, str):
        if padding_name(padding) == "full" and kind != "conv":
            what = "a transposed convolution" if kind == "transposed" else "a pooling window"
            raise ValueError(f"padding='full' is for convolutions, not {what}")
        return
    pairs = explicit_padding(padding, ndim)
    if kind == "pool":
        for dim, (pair, k, d) in enumerate(zip(pairs, ks, ds)):
            if max(pair) >= (k - 1) * d + 1:
                raise ValueError(f"padding {pair} in dim {dim} must be smaller than the dilated "
                                 f"kernel extent {(k - 1) * d + 1}, got padding={padding!r}")


def _check_channels(in_channels: object, out_channels: object, groups: object,
                    bias: object) -> None:
    groups = check_int(groups, "groups", 1)
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if value is not None and check_int(value, name, 1) % groups:
            raise ValueError(f"{name} must be divisible by groups={groups}, got {value}")
    if not isinstance(bias, bool):
        raise TypeError(f"bias must be a bool, got {bias!r}")


def _padding_text(padding: object) -> str:
    """``""`` (none), ``"same"``, ``"p1"``, ``"p1x2"`` or ``"p0-1x0-1"`` ((before, after) pairs)."""
    if isinstance(padding, str):
        return padding
    items = padding if isinstance(padding, tuple) else (padding,)
    if all(p in (0, (0, 0)) for p in items):
        return ""
    if isinstance(padding, int):
        return f"p{padding}"
    return "p" + "x".join(f"{p[0]}-{p[1]}" if isinstance(p, tuple) else str(p) for p in items)


def _window_text(prefix: str, kernel_size: object, stride: object, padding: object,
                 dilation: object, stride_default: object = 1) -> str:
    """A window in the spec language: ``conv3x3s2p1d2``."""
    text = prefix + _dims_text(kernel_size)
    if stride is not None and stride != stride_default:
        text += "s" + _dims_text(stride)
    text += _padding_text(padding)
    if dilation != 1:
        text += "d" + _dims_text(dilation)
    return text


def _channels_text(out_channels: int | None, groups: int, bias: bool) -> str:
    return ("" if out_channels is None else f"c{out_channels}") \
        + ("" if groups == 1 else f"g{groups}") + ("" if bias else "nobias")


@dataclass(frozen=True)
class Conv:
    """A convolution: ``Conv(3, stride=2, padding=1, out_channels=64)``.

    ``in_channels=None`` takes the channels of its input; ``out_channels=None`` keeps them.

    Examples
    --------
    >>> from fastconv.shapes import summary
    >>> s = summary([Conv(3, stride=2, padding=1, out_channels=64)], (3, 224, 224))
    >>> s.output_shape, s.total_params
    ((64, 112, 112), 1792)
    """

    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | str | tuple = 0
    dilation: int | tuple[int, ...] = 1
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    bias: bool = True
    name: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _freeze(self, "kernel_size", "stride", "padding", "dilation")
        _check_window(self.kernel_size, self.stride, self.padding, self.dilation, "conv")
        _check_channels(self.in_channels, self.out_channels, self.groups, self.bias)

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> Conv(3, stride=2, padding=1, out_channels=64).describe()
        'conv3s2p1c64'
        >>> Conv((3, 1), padding="same", dilation=2, out_channels=8, groups=2,
        ...      bias=False).describe()
        'conv3x1samed2c8g2nobias'
        """
        return _window_text("conv", self.kernel_size, self.stride, self.padding, self.dilation) \
            + _channels_text(self.out_channels, self.groups, self.bias)


@dataclass(frozen=True)
class DeformConv(Conv):
    """A deformable convolution (DCN v1/v2): ``DeformConv(3, padding=1, out_channels=64)``.

    Sizes, parameters and weights as :class:`Conv` (``fastconv.deform_conv2d`` resolves its
    padding and output size exactly as ``conv2d``'s; its offsets and mask are inputs, not
    parameters). Its receptive field is unbounded in principle, each tap sampling at a learned
    offset: :func:`receptive_field` reports that of the regular sampling grid (the field at
    zero offsets), as for the :class:`Conv` of the same parameters.

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> s = summary([DeformConv(3, padding=1, out_channels=256)], (256, 28, 28))
    >>> s.output_shape, s.total_params
    ((256, 28, 28), 590080)
    >>> receptive_field([DeformConv(3, padding=1), DeformConv(3, padding=1)]).size
    5
    """

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> DeformConv(3, stride=2, padding=1, out_channels=64).describe()
        'dconv3s2p1c64'
        """
        return _window_text("dconv", self.kernel_size, self.stride, self.padding,
                            self.dilation) + _channels_text(self.out_channels, self.groups,
                                                            self.bias)


@dataclass(frozen=True)
class ConvTranspose:
    """A transposed convolution: ``ConvTranspose(4, stride=2, padding=1, out_channels=64)``.

    Parameters as :class:`Conv`, plus ``output_padding`` (after ``padding``, as in
    ``conv_transpose2d``); padding ``"same"`` gives an output of ``input * stride``.

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> up = ConvTranspose(4, stride=2, padding=1, out_channels=3)
    >>> summary([up], (16, 8, 8)).output_shape
    (3, 16, 16)
    >>> receptive_field([up])  # in input units: each output sees 2.5 inputs
    ReceptiveField(size=Fraction(5, 2), stride=Fraction(1, 2), padding=1)
    """

    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] = 1
    padding: int | str | tuple = 0
    output_padding: int | tuple[int, ...] = 0
    dilation: int | tuple[int, ...] = 1
    in_channels: int | None = None
    out_channels: int | None = None
    groups: int = 1
    bias: bool = True
    name: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _freeze(self, "kernel_size", "stride", "padding", "output_padding", "dilation")
        _check_window(self.kernel_size, self.stride, self.padding, self.dilation, "transposed")
        ndim, _ = ndim_of(kernel_size=self.kernel_size, stride=self.stride,
                          output_padding=self.output_padding, dilation=self.dilation)
        ops = per_dim(self.output_padding, "output_padding", ndim, 0)
        ss = per_dim(self.stride, "stride", ndim)
        ds = per_dim(self.dilation, "dilation", ndim)
        for dim, (op, s, d) in enumerate(zip(ops, ss, ds)):
            if op >= max(s, d):
                raise ValueError(f"output_padding must be smaller than stride or dilation, got "
                                 f"output_padding {op} with stride {s} and dilation {d} in dim "
                                 f"{dim}")
        _check_channels(self.in_channels, self.out_channels, self.groups, self.bias)

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> ConvTranspose(4, stride=2, padding=1, out_channels=64).describe()
        'convt4s2p1c64'
        >>> ConvTranspose(3, stride=2, padding=1, output_padding=1).describe()
        'convt3s2p1op1'
        """
        text = _window_text("convt", self.kernel_size, self.stride, self.padding, self.dilation)
        text += f"op{_dims_text(self.output_padding)}" if self.output_padding != 0 else ""
        return text + _channels_text(self.out_channels, self.groups, self.bias)


POOL_MODES = ("max", "avg", "lp")


@dataclass(frozen=True)
class Pool:
    """A pooling window: ``Pool(3, stride=2, padding=1)``; ``stride=None`` means the kernel size.

    ``mode`` (``"max"``, ``"avg"`` or ``"lp"``) does not change sizes or fields.

    Examples
    --------
    >>> from fastconv.shapes import summary
    >>> summary([Pool(3, stride=2, padding=1)], (64, 112, 112)).output_shape
    (64, 56, 56)
    >>> summary([Pool(2, ceil_mode=True)], (64, 7, 7)).output_shape
    (64, 4, 4)
    """

    kernel_size: int | tuple[int, ...]
    stride: int | tuple[int, ...] | None = None
    padding: int | str | tuple = 0
    dilation: int | tuple[int, ...] = 1
    ceil_mode: bool = False
    mode: str = "max"
    name: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _freeze(self, "kernel_size", "stride", "padding", "dilation")
        _check_window(self.kernel_size, self.stride, self.padding, self.dilation, "pool")
        if not isinstance(self.ceil_mode, bool):
            raise TypeError(f"ceil_mode must be a bool, got {self.ceil_mode!r}")
        if self.mode not in POOL_MODES:
            raise ValueError(f"mode must be one of {POOL_MODES}, got {self.mode!r}")

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> Pool(3, stride=2, padding=1).describe(), Pool(2).describe()
        ('maxpool3s2p1', 'maxpool2')
        >>> Pool(3, stride=2, ceil_mode=True, mode="avg").describe()
        'avgpool3s2ceil'
        """
        text = _window_text(f"{self.mode}pool", self.kernel_size, self.stride, self.padding,
                            self.dilation, stride_default=self.kernel_size)
        return text + ("ceil" if self.ceil_mode else "")


@dataclass(frozen=True)
class AdaptivePool:
    """Adaptive pooling to ``output_size`` (an entry None keeps that input size).

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> summary([AdaptivePool((7, 7))], (512, 14, 14)).output_shape
    (512, 7, 7)
    >>> receptive_field([AdaptivePool(7)], input_size=14)  # equal bins of 2
    ReceptiveField(size=2, stride=2, padding=0)
    """

    output_size: int | None | tuple[int | None, ...]
    mode: str = "avg"
    name: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _freeze(self, "output_size")
        ndim, _ = ndim_of(output_size=self.output_size)
        optional_per_dim(self.output_size, "output_size", ndim)
        if self.mode not in ("max", "avg"):
            raise ValueError(f"mode must be 'max' or 'avg', got {self.mode!r}")

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> AdaptivePool((7, 7)).describe(), AdaptivePool(1, mode="max").describe()
        ('adaptiveavg7x7', 'adaptivemax1')
        >>> AdaptivePool((None, 1)).describe()
        'adaptiveavg_x1'
        """
        size = self.output_size
        text = "x".join("_" if v is None else str(v) for v in size) \
            if isinstance(size, tuple) else str(size)
        return f"adaptive{self.mode}{text}"


@dataclass(frozen=True)
class Linear:
    """A fully connected layer on a flat input; ``in_features=None`` takes the input's size.

    Examples
    --------
    >>> from fastconv.shapes import summary
    >>> s = summary([Flatten(), Linear(None, 10)], (16, 4, 4))
    >>> s.output_shape, s.total_params
    ((10,), 2570)
    """

    in_features: int | None
    out_features: int
    bias: bool = True
    name: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.in_features is not None:
            check_int(self.in_features, "in_features", 1)
        check_int(self.out_features, "out_features", 1)
        if not isinstance(self.bias, bool):
            raise TypeError(f"bias must be a bool, got {self.bias!r}")

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> Linear(512, 1000).describe(), Linear(None, 10, bias=False).describe()
        ('fc1000', 'fc10nobias')
        """
        return f"fc{self.out_features}" + ("" if self.bias else "nobias")


@dataclass(frozen=True)
class BatchNorm:
    """Batch normalisation: 2·num_features parameters (None: the input's channels).

    Examples
    --------
    >>> from fastconv.shapes import summary
    >>> s = summary([Conv(3, padding=1, out_channels=64), BatchNorm()], (3, 8, 8))
    >>> s.rows[1]["params"], s.rows[1]["output_shape"]
    (128, (64, 8, 8))
    """

    num_features: int | None = None
    name: str | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        if self.num_features is not None:
            check_int(self.num_features, "num_features", 1)

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> BatchNorm(64).describe()
        'bn'
        """
        return "bn"


@dataclass(frozen=True)
class Flatten:
    """Flatten ``(C, *spatial)`` to ``(C * prod(spatial),)``.

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> summary([Flatten()], (512, 7, 7)).output_shape
    (25088,)
    >>> receptive_field([Conv(3), Flatten()], input_size=8).whole_input
    True
    """

    name: str | None = field(default=None, kw_only=True)

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``.

        Examples
        --------
        >>> Flatten().describe()
        'flatten'
        """
        return "flatten"


@dataclass(frozen=True)
class Identity:
    """A layer that changes no size or field: activations, dropout. ``label`` is shown.

    Examples
    --------
    >>> from fastconv.shapes import summary
    >>> row = summary([Conv(3, out_channels=8), Identity("relu")], (3, 8, 8)).rows[1]
    >>> row["layer"], row["output_shape"], row["receptive_field"]
    ('relu', (8, 6, 6), 3)
    """

    label: str = "identity"
    name: str | None = field(default=None, kw_only=True)

    def describe(self) -> str:
        """The spec in the compact layer language of ``fastconv shapes``: the label.

        Examples
        --------
        >>> Identity("relu").describe(), Identity().describe()
        ('relu', 'identity')
        """
        return self.label


LEAVES = (Conv, ConvTranspose, Pool, AdaptivePool, Linear, BatchNorm, Flatten, Identity)


def _check_layer(layer: object, what: str) -> None:
    if not isinstance(layer, (*LEAVES, Sequential, Parallel)):
        raise TypeError(f"{what} must be a layer spec (Conv, Pool, Sequential, ...), "
                        f"got {layer!r}")


class Sequential:
    """Layers applied one after the other: ``Sequential(Conv(3, out_channels=64), Pool(2))``.

    Examples
    --------
    >>> from fastconv.shapes import receptive_field
    >>> stem = Sequential(Conv(3, padding=1, out_channels=64, name="conv"), Pool(2, name="pool"))
    >>> len(stem), stem[1].describe()
    (2, 'maxpool2')
    >>> receptive_field(stem)
    ReceptiveField(size=4, stride=2, padding=1)
    """

    def __init__(self, *layers: object, name: str | None = None) -> None:
        for i, layer in enumerate(layers):
            _check_layer(layer, f"Sequential layer {i}")
        self.layers = tuple(layers)
        self.name = name

    def __iter__(self) -> Iterator[object]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int | slice) -> object:
        if isinstance(index, slice):
            return Sequential(*self.layers[index], name=self.name)
        return self.layers[index]

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Sequential) and self.layers == other.layers
                and self.name == other.name)

    def __hash__(self) -> int:
        return hash((self.layers, self.name))

    def __repr__(self) -> str:
        inner = ", ".join(repr(layer) for layer in self.layers)
        return f"Sequential({inner}{'' if self.name is None else f', name={self.name!r}'})"

    def children(self) -> Iterator[tuple[str, object]]:
        """(path element, layer) of each layer: its name, else its index.

        Examples
        --------
        >>> [element for element, _ in Sequential(Conv(3, name="conv1"), Pool(2)).children()]
        ['conv1', '1']
        """
        for i, layer in enumerate(self.layers):
            name = getattr(layer, "name", None)
            yield (str(i) if name is None else name), layer


class Parallel:
    """Branches fed the same input, merged by ``"add"`` (residual) or ``"concat"`` (Inception).

    ``Parallel(Sequential(Conv(3, padding=1), Conv(3, padding=1)), Identity())`` is a residual
    block.

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> receptive_field(Parallel(Sequential(Conv(3, padding=1), Conv(3, padding=1)), Identity()))
    ReceptiveField(size=5, stride=1, padding=2)
    >>> inception = Parallel(Conv(1, out_channels=16), Conv(3, padding=1, out_channels=32),
    ...                      merge="concat")
    >>> summary(inception, (8, 28, 28)).output_shape
    (48, 28, 28)
    """

    def __init__(self, *branches: object, merge: str = "add", name: str | None = None) -> None:
        if not branches:
            raise ValueError("Parallel needs at least one branch")
        for i, branch in enumerate(branches):
            _check_layer(branch, f"Parallel branch {i}")
        if merge not in ("add", "concat"):
            raise ValueError(f"merge must be 'add' or 'concat', got {merge!r}")
        self.branches = tuple(branches)
        self.merge = merge
        self.name = name

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Parallel) and self.branches == other.branches
                and self.merge == other.merge and self.name == other.name)

    def __hash__(self) -> int:
        return hash((self.branches, self.merge, self.name))

    def __repr__(self) -> str:
        inner = ", ".join(repr(branch) for branch in self.branches)
        name = "" if self.name is None else f", name={self.name!r}"
        return f"Parallel({inner}, merge={self.merge!r}{name})"

    def children(self) -> Iterator[tuple[str, object]]:
        """(path element, branch) of each branch: its name, else its index.

        Examples
        --------
        >>> block = Parallel(Conv(3, padding=1), Identity(name="identity"))
        >>> [element for element, _ in block.children()]
        ['0', 'identity']
        """
        for i, branch in enumerate(self.branches):
            name = getattr(branch, "name", None)
            yield (str(i) if name is None else name), branch

    def describe(self) -> str:
        """The merge, ``"add"`` or ``"concat"``: the label of its row in a summary.

        Examples
        --------
        >>> Parallel(Conv(1), Conv(3, padding=1), merge="concat").describe()
        'concat'
        """
        return self.merge


Layer = Conv | DeformConv | ConvTranspose | Pool | AdaptivePool | Linear | BatchNorm | Flatten \
    | Identity | Sequential | Parallel


def join_path(parent: str, element: str) -> str:
    """The dotted path of a child; an empty element (transparent container) adds nothing."""
    if not element:
        return parent
    return f"{parent}.{element}" if parent else element
