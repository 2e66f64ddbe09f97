"""Named real-network layer shapes: the one source for pytest-benchmark and ``fastconv bench``.

Batch 1 and float32 unless a layer says otherwise; shapes are channels-first.
"""

from dataclasses import dataclass
from math import prod


@dataclass(frozen=True)
class Conv:
    """A convolution layer: ``c_in -> c_out`` on ``spatial`` input, ``groups`` groups."""

    name: str
    c_in: int
    c_out: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    groups: int = 1
    batch: int = 1
    suites: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_in, *self.spatial)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.c_out, self.c_in // self.groups, *self.kernel)

    def output_spatial(self) -> tuple[int, ...]:
        return tuple((n + 2 * self.padding - k) // self.stride + 1
                     for n, k in zip(self.spatial, self.kernel))

    def flops(self) -> int:
        """2 * multiply-adds of the direct convolution (Winograd is credited the same)."""
        return (2 * self.batch * self.c_out * (self.c_in // self.groups) * prod(self.kernel)
                * prod(self.output_spatial()))


@dataclass(frozen=True)
class ConvTranspose:
    """A transposed convolution ``c_in -> c_out``; flops counted over the input grid."""

    name: str
    c_in: int
    c_out: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: int = 1
    padding: int = 0
    groups: int = 1
    batch: int = 1
    suites: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.c_in, *self.spatial)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return (self.c_in, self.c_out // self.groups, *self.kernel)

    def flops(self) -> int:
        return (2 * self.batch * self.c_in * (self.c_out // self.groups) * prod(self.kernel)
                * prod(self.spatial))


@dataclass(frozen=True)
class Pool:
    """A pooling layer; ``kind`` is max, avg, global_avg, global_max or adaptive_avg."""

    name: str
    kind: str
    channels: int
    spatial: tuple[int, ...]
    kernel: tuple[int, ...] = ()
    stride: int | None = None
    padding: int = 0
    output_size: tuple[int, ...] = ()
    batch: int = 1
    suites: tuple[str, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels, *self.spatial)


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

SUITES = ("resnet18", "vgg16", "mobilenet", "unet", "all")


def suite(name: str) -> list:
    """Every layer (conv, transposed conv, pool) of suite ``name`` ("all": every layer)."""
    layers = [*CONV, *CONV_TRANSPOSE, *POOL]
    if name == "all":
        return layers
    if name not in SUITES:
        raise ValueError(f"suite must be one of {', '.join(SUITES)}, got {name!r}")
    return [layer for layer in layers if name in layer.suites]
