"""The compact layer language of ``fastconv shapes``."""

import pytest

from fastconv.shapes import (
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
    presets,
    summary,
)
from fastconv.shapes._spec import SpecError, parse

LAYERS = [
    ("conv3x3s2p1c64", Conv((3, 3), 2, 1, out_channels=64)),
    ("conv3", Conv(3)),
    ("conv1x7p0x3", Conv((1, 7), padding=(0, 3))),
    ("conv3same", Conv(3, padding="same")),
    ("conv3s2same_lower", Conv(3, 2, "same_lower")),
    ("conv3d2full", Conv(3, padding="full", dilation=2)),
    ("conv3valid", Conv(3, padding="valid")),
    ("conv3p0-1", Conv(3, padding=((0, 1),))),
    ("conv3x3p1x0-1", Conv((3, 3), padding=(1, (0, 1)))),
    ("conv3c32g4nobias", Conv(3, out_channels=32, groups=4, bias=False)),
    ("CONV3X3C8", Conv((3, 3), out_channels=8)),
    ("convt4s2p1op1c8nobias", ConvTranspose(4, 2, 1, 1, out_channels=8, bias=False)),
    ("deconv2s2", ConvTranspose(2, 2)),
    ("maxpool3s2p1ceil", Pool(3, 2, 1, ceil_mode=True)),
    ("pool2", Pool(2)),
    ("avgpool2s1", Pool(2, 1, mode="avg")),
    ("lppool3d2", Pool(3, dilation=2, mode="lp")),
    ("adaptiveavg7x7", AdaptivePool((7, 7))),
    ("adaptivemax_x1", AdaptivePool((None, 1), mode="max")),
    ("adaptiveavg6", AdaptivePool(6)),
    ("gap", AdaptivePool(1)),
    ("gmp", AdaptivePool(1, mode="max")),
    ("fc1000", Linear(None, 1000)),
    ("linear10nobias", Linear(None, 10, bias=False)),
    ("bn", BatchNorm()),
    ("flatten", Flatten()),
    ("relu6", Identity("relu6")),
    ("dropout", Identity("dropout")),
]


@pytest.mark.parametrize("text, layer", LAYERS, ids=[t for t, _ in LAYERS])
def test_layers(text, layer):
    assert parse(text) == Sequential(layer)


def test_describe_round_trips():
    for text, layer in LAYERS:
        if isinstance(layer, (Conv, ConvTranspose, Pool, AdaptivePool)):
            assert parse(layer.describe()) == Sequential(layer), text
    for row in summary(presets.mobilenet_v2(), (3, 224, 224)).rows:
        if row["layer"] not in ("add", "concat"):
            parse(row["layer"])


def test_blocks():
    a, b = Conv(3, padding=1, out_channels=64), Identity("relu")
    assert parse("(conv3p1c64, relu)*2, maxpool2") == Sequential(
        Sequential(Sequential(a, b), Sequential(a, b)), Pool(2))
    assert parse("conv3p1c64*3") == Sequential(Sequential(a, a, a))
    assert parse("res(conv3p1c64, relu)") == Sequential(
        Parallel(Sequential(a, b), Identity(name="identity")))
    assert parse("res(conv3s2p1 | conv1s2)") == Sequential(
        Parallel(Sequential(Conv(3, 2, 1)), Sequential(Conv(1, 2))))
    assert parse("cat(conv1 | conv3p1 | maxpool3s1p1)") == Sequential(
        Parallel(Sequential(Conv(1)), Sequential(Conv(3, padding=1)),
                 Sequential(Pool(3, 1, 1)), merge="concat"))
    assert parse("par(conv1 | conv1)").layers[0].merge == "add"
    assert parse(" conv3 ,\n relu ") == Sequential(Conv(3), Identity("relu"))


def test_resnet_block_in_the_language_matches_the_preset():
    spec = ("conv7s2p3c64nobias, bn, relu, maxpool3s2p1, "
            "res(conv3p1c64nobias, bn, relu, conv3p1c64nobias, bn), relu, "
            "res(conv3p1c64nobias, bn, relu, conv3p1c64nobias, bn), relu, "
            "res(conv3s2p1c128nobias, bn, relu, conv3p1c128nobias, bn | conv1s2c128nobias, bn),"
            " relu")
    ours = summary(parse(spec), (3, 224, 224))
    resnet18 = presets.resnet18()
    preset = summary(Sequential(*resnet18[:5], resnet18[5][0]), (3, 224, 224))  # to layer2.0
    assert ours.total_params == preset.total_params
    assert ours.total_macs == preset.total_macs
    assert ours.receptive_field.size == preset.receptive_field.size == 67


ERRORS = [
    # spec, message, caret start, caret end
    ("conv3, cnv3", r"unknown layer 'cnv3'", 7, 11),
    ("conv3x3q2", r"unknown option 'q2' for conv", 7, 9),
    ("maxpool3c64", r"unknown option 'c64' for maxpool", 8, 11),
    ("convt3full", r"unknown option 'full' for convt", 6, 10),
    ("conv3x3s2c64c32", r"'c' given twice", 12, 15),
    ("conv3p1same", r"padding given twice", 7, 11),
    ("conv3,,relu", r"expected a layer, found ','", 6, 7),
    ("conv3 relu", r"expected ',' between layers, found 'relu'", 6, 10),
    ("res(conv3", r"expected '\)' closing res\(\.\.\.\)", 9, 10),
    ("(conv3, relu", r"expected '\)' closing the group", 12, 13),
    ("conv3,", r"expected a layer, found the end", 6, 7),
    ("conv", r"conv needs a kernel size", 0, 4),
    ("maxpool2p2", r"bad layer 'maxpool2p2': padding \(2, 2\) in dim 0 must be smaller", 0, 10),
    ("conv3*0", r"repeat count >= 1", 6, 7),
    ("conv3*relu", r"repeat count >= 1", 6, 10),
    ("", r"empty spec", 0, 1),
    ("conv3 @", r"unexpected character '@'", 6, 7),
    ("res(conv3 | conv1 | conv1)", r"at most one shortcut", 0, 3),
    ("cat(conv3)", r"needs two or more branches", 0, 3),
    ("fc", r"unknown layer 'fc'", 0, 2),
    ("adaptiveavg", r"adaptiveavg needs an output size", 0, 11),
    ("conv3s0", r"bad layer 'conv3s0': stride must be >= 1, got 0", 0, 7),
    ("res conv3", r"expected '\(' after 'res'", 4, 9),
]


@pytest.mark.parametrize("spec, message, start, end", ERRORS, ids=[e[0] or "empty"
                                                                   for e in ERRORS])
def test_errors_point_at_the_token(spec, message, start, end):
    with pytest.raises(SpecError, match=message) as info:
        parse(spec)
    assert (info.value.start, info.value.end) == (start, end)
    _, echoed, caret = str(info.value).split("\n")
    assert echoed == "  " + spec
    assert caret == "  " + " " * start + "^" * (end - start)


def test_spec_must_be_text():
    with pytest.raises(TypeError, match="spec must be a string"):
        parse(None)
