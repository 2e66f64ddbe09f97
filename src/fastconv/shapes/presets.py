"""torchvision's classification networks as layer specs.

Each function returns a :class:`~fastconv.shapes.Sequential` built exactly as torchvision builds
the model (``torchvision.models.<name>()``, weights aside), with torchvision's module names as
layer names, so ``summary(resnet18(), (3, 224, 224))`` has rows ``conv1``, ``layer1.0.conv1``,
``layer1.0.downsample.0``, ... Their parameter counts equal torchvision's:

============  ===========  =================================
preset        parameters   torchvision's GFLOPS (GMACs) @224
============  ===========  =================================
alexnet       61,100,840   0.71
vgg16         138,357,544  15.47
resnet18      11,689,512   1.81
resnet50      25,557,032   4.09
mobilenet_v2  3,504,872    0.30
============  ===========  =================================

The feature extractor is the first part: ``vgg16()[0]`` (``features``), ``resnet18()[:8]``
(up to ``layer4``).

Examples
--------
>>> from fastconv.shapes import presets, summary
>>> summary(presets.resnet18(), (3, 224, 224)).total_params
11689512
>>> presets.NAMES
('alexnet', 'vgg16', 'resnet18', 'resnet50', 'mobilenet_v2')
"""

from collections.abc import Callable

from ._layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    Flatten,
    Identity,
    Linear,
    Parallel,
    Pool,
    Sequential,
)

NAMES = ("alexnet", "vgg16", "resnet18", "resnet50", "mobilenet_v2")


def _relu(name: str | None = None) -> Identity:
    return Identity("relu", name=name)


def alexnet(num_classes: int = 1000) -> Sequential:
    """torchvision's AlexNet (the one-GPU variant of Krizhevsky et al., 2014).

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> s = summary(alexnet(), (3, 224, 224))
    >>> s.total_params, s.total_macs
    (61100840, 714188480)
    >>> receptive_field(alexnet()[0])  # features
    ReceptiveField(size=195, stride=32, padding=66)
    """
    features = Sequential(
        Conv(11, 4, 2, in_channels=3, out_channels=64), _relu(), Pool(3, 2),
        Conv(5, 1, 2, in_channels=64, out_channels=192), _relu(), Pool(3, 2),
        Conv(3, 1, 1, in_channels=192, out_channels=384), _relu(),
        Conv(3, 1, 1, in_channels=384, out_channels=256), _relu(),
        Conv(3, 1, 1, in_channels=256, out_channels=256), _relu(), Pool(3, 2),
        name="features")
    classifier = Sequential(
        Identity("dropout"), Linear(256 * 6 * 6, 4096), _relu(),
        Identity("dropout"), Linear(4096, 4096), _relu(),
        Linear(4096, num_classes), name="classifier")
    return Sequential(features, AdaptivePool((6, 6), name="avgpool"), Flatten(name="flatten"),
                      classifier, name="alexnet")


def vgg16(num_classes: int = 1000) -> Sequential:
    """torchvision's VGG-16 (configuration D, no batch norm).

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> summary(vgg16(), (3, 224, 224)).total_params
    138357544
    >>> receptive_field(vgg16()[0])  # features
    ReceptiveField(size=212, stride=32, padding=90)
    """
    layers: list[object] = []
    channels = 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                  512, 512, 512, "M"):
        if isinstance(width, str):  # "M": max pooling, as in torchvision's configurations
            layers.append(Pool(2, 2))
        else:
            layers += [Conv(3, 1, 1, in_channels=channels, out_channels=width), _relu()]
            channels = width
    classifier = Sequential(
        Linear(512 * 7 * 7, 4096), _relu(), Identity("dropout"),
        Linear(4096, 4096), _relu(), Identity("dropout"),
        Linear(4096, num_classes), name="classifier")
    return Sequential(Sequential(*layers, name="features"), AdaptivePool((7, 7), name="avgpool"),
                      Flatten(name="flatten"), classifier, name="vgg16")


def _residual(main: Sequential, shortcut: object, name: str) -> Sequential:
    """``relu(main(x) + shortcut(x))``; the main branch's layers are named as the block's."""
    return Sequential(Parallel(main, shortcut, merge="add", name=""), _relu("relu"), name=name)


def _shortcut(c_in: int, c_out: int, stride: int) -> object:
    if stride == 1 and c_in == c_out:
        return Identity(name="identity")
    return Sequential(Conv(1, stride, 0, in_channels=c_in, out_channels=c_out, bias=False),
                      BatchNorm(c_out), name="downsample")


def _basic_block(c_in: int, width: int, stride: int, name: str) -> Sequential:
    main = Sequential(
        Conv(3, stride, 1, in_channels=c_in, out_channels=width, bias=False, name="conv1"),
        BatchNorm(width, name="bn1"), _relu("relu"),
        Conv(3, 1, 1, in_channels=width, out_channels=width, bias=False, name="conv2"),
        BatchNorm(width, name="bn2"), name="")
    return _residual(main, _shortcut(c_in, width, stride), name)


def _bottleneck(c_in: int, width: int, stride: int, name: str) -> Sequential:
    """ResNet v1.5: the stride sits on the 3x3 convolution, as in torchvision."""
    c_out = width * 4
    main = Sequential(
        Conv(1, 1, 0, in_channels=c_in, out_channels=width, bias=False, name="conv1"),
        BatchNorm(width, name="bn1"), _relu("relu"),
        Conv(3, stride, 1, in_channels=width, out_channels=width, bias=False, name="conv2"),
        BatchNorm(width, name="bn2"), _relu("relu"),
        Conv(1, 1, 0, in_channels=width, out_channels=c_out, bias=False, name="conv3"),
        BatchNorm(c_out, name="bn3"), name="")
    return _residual(main, _shortcut(c_in, c_out, stride), name)


def _resnet(block: Callable[..., Sequential], expansion: int, depths: tuple[int, ...],
            num_classes: int, name: str) -> Sequential:
    stages = []
    c_in = 64
    for stage, (width, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        blocks = []
        for i in range(depth):
            stride = 2 if stage > 0 and i == 0 else 1
            blocks.append(block(c_in, width, stride, str(i)))
            c_in = width * expansion
        stages.append(Sequential(*blocks, name=f"layer{stage + 1}"))
    return Sequential(
        Conv(7, 2, 3, in_channels=3, out_channels=64, bias=False, name="conv1"),
        BatchNorm(64, name="bn1"), _relu("relu"), Pool(3, 2, 1, name="maxpool"),
        *stages, AdaptivePool((1, 1), name="avgpool"), Flatten(name="flatten"),
        Linear(512 * expansion, num_classes, name="fc"), name=name)


def resnet18(num_classes: int = 1000) -> Sequential:
    """torchvision's ResNet-18: basic blocks, (2, 2, 2, 2).

    Examples
    --------
    >>> from fastconv.shapes import summary
    >>> s = summary(resnet18(), (3, 224, 224))
    >>> s
    <Summary of 74 layers: 11,689,512 params, 1,814,073,344 MACs>
    >>> [row["name"] for row in s.rows[:6]]
    ['conv1', 'bn1', 'relu', 'maxpool', 'layer1.0.conv1', 'layer1.0.bn1']
    >>> s.spatial_field.name, s.spatial_field.size
    ('layer4.1.relu', 435)
    """
    return _resnet(_basic_block, 1, (2, 2, 2, 2), num_classes, "resnet18")


def resnet50(num_classes: int = 1000) -> Sequential:
    """torchvision's ResNet-50 (v1.5): bottleneck blocks, (3, 4, 6, 3).

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> s = summary(resnet50(), (3, 224, 224))
    >>> s.total_params, s.total_macs
    (25557032, 4089184256)
    >>> receptive_field(resnet50()[:8])  # up to layer4
    ReceptiveField(size=427, stride=32, padding=213)
    """
    return _resnet(_bottleneck, 4, (3, 4, 6, 3), num_classes, "resnet50")


def _conv_bn_relu6(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1,
                   name: str | None = None) -> Sequential:
    """torchvision's ``Conv2dNormActivation`` with ReLU6: padding ``(kernel - 1) // 2``."""
    return Sequential(
        Conv(kernel, stride, (kernel - 1) // 2, in_channels=c_in, out_channels=c_out,
             groups=groups, bias=False),
        BatchNorm(c_out), Identity("relu6"), name=name)


def _inverted_residual(c_in: int, c_out: int, stride: int, expansion: int,
                       name: str) -> Sequential:
    hidden = c_in * expansion
    layers: list[object] = []
    if expansion != 1:
        layers.append(_conv_bn_relu6(c_in, hidden, 1))
    layers += [_conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
               Conv(1, 1, 0, in_channels=hidden, out_channels=c_out, bias=False),
               BatchNorm(c_out)]
    conv = Sequential(*layers, name="conv")
    if stride == 1 and c_in == c_out:
        return Sequential(Parallel(conv, Identity(name="identity"), merge="add", name=""),
                          name=name)
    return Sequential(conv, name=name)


def mobilenet_v2(num_classes: int = 1000) -> Sequential:
    """torchvision's MobileNetV2, width 1.0: inverted residuals with expansion 6, ReLU6.

    Examples
    --------
    >>> from fastconv.shapes import receptive_field, summary
    >>> s = summary(mobilenet_v2(), (3, 224, 224))
    >>> s.total_params, s.total_macs
    (3504872, 300774272)
    >>> receptive_field(mobilenet_v2()[0])  # features
    ReceptiveField(size=491, stride=32, padding=245)
    """
    features: list[object] = [_conv_bn_relu6(3, 32, 3, 2, name="0")]
    c_in = 32
    # (expansion t, output channels c, repeats n, first stride s), from the paper's Table 2
    for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            features.append(_inverted_residual(c_in, c, s if i == 0 else 1, t,
                                               str(len(features))))
            c_in = c
    features.append(_conv_bn_relu6(c_in, 1280, 1, name=str(len(features))))
    classifier = Sequential(Identity("dropout"), Linear(1280, num_classes), name="classifier")
    return Sequential(Sequential(*features, name="features"),
                      AdaptivePool((1, 1), name="avgpool"), Flatten(name="flatten"),
                      classifier, name="mobilenet_v2")


def get(name: str) -> Sequential:
    """The preset called ``name`` (one of :data:`NAMES`).

    Examples
    --------
    >>> get("resnet18") == resnet18()
    True
    >>> [get(name).name for name in NAMES]
    ['alexnet', 'vgg16', 'resnet18', 'resnet50', 'mobilenet_v2']
    """
    if name not in NAMES:
        raise ValueError(f"unknown preset {name!r}; the presets are {', '.join(NAMES)}")
    return globals()[name]()
