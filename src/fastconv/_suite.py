"""Named real-network layers: the one catalogue behind ``fastconv bench`` and ``benchmarks/``.

Every entry is a frozen dataclass that knows its input and weight shapes, its output size (via
:mod:`fastconv.shapes`, the single source of truth for sizes) and the work it does:
:meth:`Conv.flops` / :meth:`ConvTranspose.flops` count ``2 * multiply-adds`` of the direct
algorithm (Winograd is credited the same, so its GFLOP/s are "effective"), :meth:`Pool.bytes`
the float32 bytes a pool must read and write (pools are memory-bound: quoted in GB/s).

Batch 1 and float32 unless an entry says otherwise; shapes are channels-first. The lists
:data:`CONV`, :data:`CONV_TRANSPOSE` and :data:`POOL` hold the layers of the convolution,
Winograd, transposed-convolution and pooling issues; :data:`EXTRA` the few more that make the
``mobilenet`` and ``vgg16`` suites representative. :func:`suite` groups them by network.

Examples
--------
>>> from fastconv._suite import suite
>>> [layer.name for layer in suite("mobilenet")][:2]
['mobilenet.dw', 'mobilenet_v2.expand']
>>> layer = suite("resnet18")[0]
>>> layer.name, layer.input_shape, layer.weight_shape
('resnet18.conv2', (1, 64, 56, 56), (64, 64, 3, 3))
>>> round(layer.flops() / 1e6, 1)  # MFLOP
231.2
"""

from dataclasses import dataclass
from math import prod

from .shapes import conv_output_size, conv_transpose_output_size, pool_output_size

__all__ = ["CONV", "CONV_TRANSPOSE", "EXTRA", "POOL", "SUITES", "Conv", "ConvTranspose", "Pool",
           "by_name", "suite"]


def _per_dim(value, ndim: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


@dataclass(frozen=True)
class Conv:
    """A convolution ``c_in -> c_out`` on ``spatial`` input with ``groups`` groups.

    ``stride``, ``padding`` and ``dilation`` take every form fastconv accepts (an int, a per-dim
    tuple; ``padding`` also ``(before, after)`` pairs, ``"same"``, ...).

    Examples
    --------
    >>> from fastconv._suite import Conv
    >>> layer = Conv("stem", 3, 64, (224, 224), (7, 7), stride=2, padding=3)
    >>> layer.output_spatial(), layer.kind, layer.depthwise
    ((112, 112), 'conv', False)
    """

    name: str
    c_in: int
    c_out: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int | tuple = 1
    padding: int | tuple | str = 0
    groups: int = 1
    batch: int = 1
    suites: tuple[str, ...] = ()
    dilation: int | tuple = 1

    kind = "conv"

    @property
    def ndim(self) -> int:
        return len(self.spatial)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_in, *self.spatial)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.c_out, self.c_in // self.groups, *self.kernel)

    @property
    def depthwise(self) -> bool:
        """One input channel per group: a memory-bound layer, quoted in GB/s as well."""
        return self.groups > 1 and self.c_in == self.groups

    def output_spatial(self) -> tuple[int, ...]:
        return tuple(conv_output_size(self.spatial, self.kernel, self.stride, self.padding,
                                      self.dilation))

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_out, *self.output_spatial())

    def flops(self) -> int:
        """2 * multiply-adds of the direct convolution (Winograd is credited the same)."""
        return (2 * self.batch * self.c_out * (self.c_in // self.groups) * prod(self.kernel)
                * prod(self.output_spatial()))

    def bytes(self, itemsize: int = 4) -> int:
        """Bytes the layer must move at least: input + output + weights."""
        return itemsize * (prod(self.input_shape) + prod(self.output_shape)
                           + prod(self.weight_shape))


@dataclass(frozen=True)
class ConvTranspose:
    """A transposed convolution ``c_in -> c_out``; flops counted over the input grid.

    Examples
    --------
    >>> from fastconv._suite import ConvTranspose
    >>> ConvTranspose("up", 128, 64, (32, 32), (2, 2), 2).output_spatial()
    (64, 64)
    """

    name: str
    c_in: int
    c_out: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int | tuple = 1
    padding: int | tuple | str = 0
    groups: int = 1
    batch: int = 1
    suites: tuple[str, ...] = ()
    dilation: int | tuple = 1
    output_padding: int | tuple = 0

    kind = "conv_transpose"

    @property
    def ndim(self) -> int:
        return len(self.spatial)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_in, *self.spatial)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.c_in, self.c_out // self.groups, *self.kernel)

    def output_spatial(self) -> tuple[int, ...]:
        return tuple(conv_transpose_output_size(self.spatial, self.kernel, self.stride,
                                                self.padding, self.output_padding,
                                                self.dilation))

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_out, *self.output_spatial())

    def flops(self) -> int:
        return (2 * self.batch * self.c_in * (self.c_out // self.groups) * prod(self.kernel)
                * prod(self.spatial))

    def bytes(self, itemsize: int = 4) -> int:
        return itemsize * (prod(self.input_shape) + prod(self.output_shape)
                           + prod(self.weight_shape))


@dataclass(frozen=True)
class Pool:
    """A pooling layer; ``kind`` is max, avg, global_avg, global_max or adaptive_avg.

    Examples
    --------
    >>> from fastconv._suite import Pool
    >>> layer = Pool("p", "max", 64, (112, 112), (3, 3), 2, 1)
    >>> layer.output_spatial(), layer.bytes()
    ((56, 56), 4014080)
    """

    name: str
    kind: str
    channels: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...] = ()
    stride: int | tuple | None = None
    padding: int | tuple | str = 0
    output_size: tuple[int, ...] = ()
    batch: int = 1
    suites: tuple[str, ...] = ()

    @property
    def ndim(self) -> int:
        return len(self.spatial)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels, *self.spatial)

    def output_spatial(self) -> tuple[int, ...]:
        if self.kind.startswith("global"):
            return (1,) * self.ndim
        if self.kind.startswith("adaptive"):
            return tuple(i if o is None else o
                         for i, o in zip(self.spatial, _per_dim(self.output_size, self.ndim)))
        return tuple(pool_output_size(self.spatial, self.kernel, self.stride, self.padding))

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels, *self.output_spatial())

    def bytes(self, itemsize: int = 4) -> int:
        """Bytes a pool must move: its input and its output."""
        return itemsize * (prod(self.input_shape) + prod(self.output_shape))

    def flops(self) -> int:
        """Pools are quoted in GB/s; their flops are not counted."""
        return 0


CONV = [
    Conv("resnet18.conv2", 64, 64, (56, 56), (3, 3), 1, 1, suites=("resnet18",)),
    Conv("resnet18.conv3", 128, 128, (28, 28), (3, 3), 1, 1, suites=("resnet18",)),
    Conv("resnet18.conv4", 256, 256, (14, 14), (3, 3), 1, 1, suites=("resnet18",)),
    Conv("resnet18.conv5", 512, 512, (7, 7), (3, 3), 1, 1, suites=("resnet18",)),
    Conv("vgg16.conv1_2", 64, 64, (224, 224), (3, 3), 1, 1, suites=("vgg16",)),
    Conv("vgg16.conv3_2", 256, 256, (56, 56), (3, 3), 1, 1, suites=("vgg16",)),
    Conv("resnet.stem", 3, 64, (224, 224), (7, 7), 2, 3, suites=("resnet18",)),
    Conv("resnet.down", 64, 128, (56, 56), (3, 3), 2, 1, suites=("resnet18",)),
    Conv("resnet50.1x1", 256, 64, (56, 56), (1, 1), suites=("resnet18",)),
    Conv("mobilenet.dw", 32, 32, (112, 112), (3, 3), 1, 1, groups=32, suites=("mobilenet",)),
    Conv("conv1d", 256, 256, (1024,), (3,), 1, 1, suites=("unet",)),
    Conv("conv3d", 32, 32, (16, 56, 56), (3, 3, 3), 1, 1, suites=("unet",)),
    Conv("resnet18.conv2.b8", 64, 64, (56, 56), (3, 3), 1, 1, batch=8, suites=("resnet18",)),
    Conv("resnet18.conv3.b8", 128, 128, (28, 28), (3, 3), 1, 1, batch=8, suites=("resnet18",)),
]

CONV_TRANSPOSE = [
    ConvTranspose("dcgan", 256, 128, (16, 16), (4, 4), 2, 1, suites=("unet",)),
    ConvTranspose("unet", 128, 64, (32, 32), (2, 2), 2, 0, suites=("unet",)),
    ConvTranspose("fcn.upsample", 21, 21, (16, 16), (8, 8), 4, 2, suites=("unet",)),
    ConvTranspose("conv_transpose3d", 64, 32, (8, 28, 28), (2, 2, 2), 2, 0, suites=("unet",)),
    ConvTranspose("conv_transpose1d", 128, 64, (512,), (4,), 2, 1, suites=("unet",)),
]

POOL = [
    Pool("resnet.maxpool", "max", 64, (112, 112), (3, 3), 2, 1, suites=("resnet18",)),
    Pool("vgg.maxpool", "max", 64, (224, 224), (2, 2), 2, suites=("vgg16",)),
    Pool("avgpool", "avg", 256, (56, 56), (2, 2), 2, suites=("unet",)),
    Pool("global_avg.512", "global_avg", 512, (7, 7), batch=8, suites=("resnet18",)),
    Pool("global_avg.2048", "global_avg", 2048, (7, 7), batch=8, suites=("resnet18",)),
    Pool("adaptive_avg", "adaptive_avg", 512, (14, 14), output_size=(7, 7),
         suites=("vgg16",)),
    Pool("maxpool3d", "max", 64, (16, 56, 56), (2, 2, 2), 2, suites=("unet",)),
    # Larger than the last-level cache: measures streaming bandwidth.
    Pool("maxpool.large", "max", 64, (448, 448), (2, 2), 2, suites=()),
]

# Layers beyond the issues' tables, so that every suite looks like its network (not timed by
# benchmarks/bench_*.py, which iterate over the lists above).
EXTRA = [
    Conv("mobilenet_v2.expand", 24, 144, (56, 56), (1, 1), suites=("mobilenet",)),
    Conv("mobilenet_v2.dw_s2", 144, 144, (56, 56), (3, 3), 2, 1, groups=144,
         suites=("mobilenet",)),
    Conv("mobilenet_v2.project", 144, 32, (28, 28), (1, 1), suites=("mobilenet",)),
    Pool("mobilenet_v2.gap", "global_avg", 1280, (7, 7), suites=("mobilenet",)),
    Conv("vgg16.conv5_3", 512, 512, (14, 14), (3, 3), 1, 1, suites=("vgg16",)),
    Conv("unet.enc1", 64, 64, (128, 128), (3, 3), 1, 1, suites=("unet",)),
]

SUITES = ("resnet18", "vgg16", "mobilenet", "unet", "all")


def suite(name: str) -> list:
    """Every layer (conv, transposed conv, pool) of suite ``name`` (``"all"``: every layer).

    Parameters
    ----------
    name : {"resnet18", "vgg16", "mobilenet", "unet", "all"}

    Returns
    -------
    list of Conv, ConvTranspose and Pool entries, convolutions first.

    Raises
    ------
    ValueError
        If ``name`` is not a suite.

    Examples
    --------
    >>> from fastconv._suite import suite
    >>> len(suite("all")) > len(suite("resnet18")) > 0
    True
    >>> suite("alexnet")
    Traceback (most recent call last):
    ...
    ValueError: suite must be one of resnet18, vgg16, mobilenet, unet, all, got 'alexnet'
    """
    if name not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {name!r}")
    convs = [*CONV, *(e for e in EXTRA if isinstance(e, Conv))]
    pools = [*POOL, *(e for e in EXTRA if isinstance(e, Pool))]
    layers = [*convs, *CONV_TRANSPOSE, *pools]
    if name == "all":
        return layers
    return [layer for layer in layers if name in layer.suites]


def by_name(name: str):
    """The catalogue entry called ``name``.

    Examples
    --------
    >>> from fastconv._suite import by_name
    >>> by_name("resnet.maxpool").kind
    'max'
    """
    for layer in suite("all"):
        if layer.name == name:
            return layer
    names = ", ".join(layer.name for layer in suite("all"))
    raise ValueError(f"no layer named {name!r}; the catalogue has: {names}")
