"""summary() and the torchvision presets: parameter counts equal torchvision's, MACs within 1% of
its published GFLOPS, per-layer shapes and the table."""

import json
from fractions import Fraction

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

# torchvision's model docs: parameters (exact) and GFLOPS at 224x224 (multiply-accumulates)
TORCHVISION = {
    "alexnet": (61_100_840, 0.71),
    "vgg16": (138_357_544, 15.47),
    "resnet18": (11_689_512, 1.81),
    "resnet50": (25_557_032, 4.09),
    "mobilenet_v2": (3_504_872, 0.30),
}


def test_names():
    assert presets.NAMES == tuple(TORCHVISION)
    with pytest.raises(ValueError, match="unknown preset 'resnet19'; the presets are alexnet"):
        presets.get("resnet19")


@pytest.mark.parametrize("name", presets.NAMES)
def test_presets_match_torchvision(name):
    params, gmacs = TORCHVISION[name]
    result = summary(presets.get(name), (3, 224, 224))
    assert result.total_params == params
    assert abs(result.total_macs / 1e9 - gmacs) <= 0.01 * gmacs
    assert result.output_shape == (1000,)
    assert result.receptive_field.whole_input


def test_resnet18_rows_follow_torchvision_module_names():
    rows = {row["name"]: row for row in summary(presets.resnet18(), (3, 224, 224)).rows}
    assert rows["conv1"]["params"] == 64 * 3 * 7 * 7
    assert rows["conv1"]["output_shape"] == (64, 112, 112)
    assert rows["conv1"]["macs"] == 64 * 3 * 49 * 112 * 112
    assert rows["maxpool"]["output_shape"] == (64, 56, 56)
    assert rows["layer2.0.downsample.0"]["params"] == 128 * 64
    assert rows["layer2.0.downsample.1"]["params"] == 2 * 128
    assert "layer1.0.downsample.0" not in rows   # 64 -> 64, stride 1: identity shortcut
    assert rows["layer4.1"]["layer"] == "add"
    assert rows["layer4.1.relu"]["output_shape"] == (512, 7, 7)
    assert rows["layer4.1.relu"]["receptive_field"] == 435
    assert rows["fc"]["params"] == 512 * 1000 + 1000


def test_mobilenet_v2_rows():
    rows = {row["name"]: row for row in summary(presets.mobilenet_v2(), (3, 224, 224)).rows}
    assert rows["features.1.conv.0.0"]["params"] == 32 * 9          # depthwise, no bias
    assert rows["features.2.conv.1.0"]["output_shape"] == (96, 56, 56)
    assert rows["features.3"]["layer"] == "add"                       # 24 -> 24, stride 1
    assert "features.2" not in rows                                   # 16 -> 24: no residual
    assert rows["features.18.0"]["output_shape"] == (1280, 7, 7)


def test_small_network_by_hand():
    s = summary([Conv(3, padding=1, out_channels=16), BatchNorm(), Identity("relu"), Pool(2),
                 Flatten(), Linear(None, 10)], (3, 32, 32))
    # conv 16*3*9 + 16, bn 2*16, linear 16*16*16*10 + 10
    assert [row["params"] for row in s.rows] == [448, 32, 0, 0, 0, 40970]
    assert [row["macs"] for row in s.rows] == [16 * 27 * 32 * 32, 0, 0, 0, 0, 4096 * 10]
    assert s.total_params == 41450
    assert [row["receptive_field"] for row in s.rows[:4]] == [3, 3, 3, 4]
    assert s.spatial_field.name == "3"


def test_grouped_transposed_and_concat():
    s = summary([Conv(3, padding=1, out_channels=8, groups=4, bias=False),
                 ConvTranspose(4, 2, 1, out_channels=6, groups=2),
                 Parallel(Conv(1, out_channels=5), Pool(3, 1, 1), merge="concat")], (8, 5, 5))
    rows = s.rows
    assert rows[0]["params"] == 8 * 2 * 9                       # C_in/groups = 2
    assert rows[0]["macs"] == 8 * 2 * 9 * 25
    assert rows[1]["params"] == 8 * 3 * 16 + 6                 # (C_in, C_out/groups, 4, 4)
    assert rows[1]["macs"] == 25 * 8 * 3 * 16                  # per input position
    assert rows[1]["output_shape"] == (6, 10, 10)
    assert rows[-1]["output_shape"] == (11, 10, 10)            # 5 + 6 channels
    assert rows[-1]["layer"] == "concat"


def test_one_and_three_spatial_dims():
    s = summary([Conv(5, 2, 2, out_channels=4), AdaptivePool(1), Flatten()], (2, 100))
    assert [row["output_shape"] for row in s.rows] == [(4, 50), (4, 1), (4,)]
    s = summary([Conv((1, 3, 3), padding=(0, 1, 1), out_channels=4)], (2, 8, 16, 16))
    assert s.output_shape == (4, 8, 16, 16)
    assert s.rows[0]["receptive_field"] == (1, 3, 3)


SUMMARY_ERRORS = [
    ([Conv(3, in_channels=4)], (3, 8, 8), r"layer 0 \(conv3\): in_channels=4 but the input "
                                          r"has 3 channels"),
    ([Conv(3), Linear(None, 10)], (3, 8, 8), r"layer 1 \(fc10\): Linear needs a flat input"),
    ([Flatten(), Linear(10, 2)], (3, 2, 2), r"in_features=10 but the input has 12 features"),
    ([BatchNorm(4)], (3, 8, 8), r"num_features=4 but the input has 3 channels"),
    ([Conv(3, groups=2, out_channels=4)], (3, 8, 8), r"input channels \(3\) must be divisible "
                                                     r"by groups=2"),
    ([Parallel(Conv(1, out_channels=4), Identity())], (3, 8, 8),
     r"merge='add' needs equal branch shapes"),
    ([Conv(9)], (3, 8, 8), r"layer 0 \(conv9\): conv_output_size: output size 0 < 1"),
    ([Conv(3)], (3,), r"input_shape must be \(C, \*spatial\)"),
    ([Conv(3)], (3, 0), r"input_shape\[1\] must be >= 1"),
]


@pytest.mark.parametrize("layers, shape, match", SUMMARY_ERRORS)
def test_summary_errors(layers, shape, match):
    with pytest.raises(ValueError, match=match):
        summary(layers, shape)


LAYER_ERRORS = [
    (lambda: Conv(2.5), TypeError, r"kernel_size must be an int, got 2.5"),
    (lambda: Conv(3, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: Conv(3, padding="SAME"), ValueError, r"padding must be an int, a tuple, or one of"),
    (lambda: Conv(3, in_channels=3, groups=2), ValueError, r"in_channels must be divisible by "
                                                           r"groups=2, got 3"),
    (lambda: Conv(3, bias=1), TypeError, r"bias must be a bool"),
    (lambda: Conv((3, 3), stride=(1, 1, 1)), ValueError, r"stride has 3 entries but "
                                                         r"kernel_size has 2"),
    (lambda: ConvTranspose(3, 2, output_padding=2), ValueError, r"output_padding must be "
                                                                r"smaller than stride"),
    (lambda: ConvTranspose(3, padding="full"), ValueError, r"padding='full'"),
    (lambda: Pool(2, padding=2), ValueError, r"padding \(2, 2\) in dim 0 must be smaller"),
    (lambda: Pool(3, padding="full"), ValueError, r"padding='full'"),
    (lambda: Pool(3, mode="min"), ValueError, r"mode must be one of"),
    (lambda: Pool(3, ceil_mode=1), TypeError, r"ceil_mode must be a bool"),
    (lambda: AdaptivePool(0), ValueError, r"output_size must be >= 1"),
    (lambda: Linear(None, 0), ValueError, r"out_features must be >= 1"),
    (lambda: BatchNorm(0), ValueError, r"num_features must be >= 1"),
    (lambda: Sequential(Conv(3), "relu"), TypeError, r"Sequential layer 1 must be a layer spec"),
    (lambda: Parallel(), ValueError, r"Parallel needs at least one branch"),
    (lambda: Parallel(Conv(1), Conv(1), merge="mul"), ValueError, r"merge must be 'add' or "
                                                                  r"'concat'"),
]


@pytest.mark.parametrize("make, error, match", LAYER_ERRORS)
def test_layer_spec_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_specs_are_values():
    assert Conv([3, 3]) == Conv((3, 3))
    assert hash(Conv([3, 3], padding=[(0, 1), (0, 1)])) == hash(Conv((3, 3), padding=((0, 1),
                                                                                         (0, 1))))
    assert presets.resnet18() == presets.resnet18()
    assert len(presets.resnet18()[:8]) == 8
    assert isinstance(presets.vgg16()[0], Sequential)


def test_table_and_dict():
    result = summary(presets.resnet18(), (3, 224, 224))
    text = str(result)
    lines = text.splitlines()
    table = lines[:2 + len(result.rows)]
    assert len({len(line) for line in table}) == 1      # aligned: the last column is right-aligned
    assert lines[0].split() == ["layer", "type", "output", "shape", "params", "MACs", "field",
                                "stride", "padding"]
    assert "total params: 11,689,512" in text
    assert ("receptive field after layer4.1.relu (relu): size 435, effective stride 32, effective "
            "padding 217") in text
    data = json.loads(json.dumps(result.to_dict()))
    assert data["total_params"] == 11_689_512
    assert data["spatial_receptive_field"]["size"] == 435
    assert len(data["layers"]) == len(result.rows)
    assert data["layers"][0] == {"name": "conv1", "layer": "conv7s2p3c64nobias",
                                 "output_shape": [64, 112, 112], "params": 9408,
                                 "macs": 118013952, "receptive_field": 7, "stride": 2,
                                 "padding": 3, "whole_input": False}
    assert repr(result).startswith("<Summary of 74 layers: 11,689,512 params")


def test_fractional_and_unknown_fields_in_the_table():
    # (12 - 1)*2 + 3 = 25 wide after the transposed convolution; 25 -> 4 has unequal bins
    result = summary([ConvTranspose(3, 2, out_channels=2), AdaptivePool(4)], (1, 12))
    assert result.rows[0]["stride"] == Fraction(1, 2)
    assert result.rows[0]["output_shape"] == (2, 25)
    assert result.rows[1]["receptive_field"] is None
    text = str(result)
    assert "1/2" in text and "?" in text and "unequal" in text
    assert json.loads(json.dumps(result.to_dict()))["layers"][0]["stride"] == 0.5


# --- issue 21 item 11: the footer's label and the transposed fractions ----------------------

def test_footer_names_an_index_path_as_a_layer_with_its_type():
    text = str(summary(Sequential(Conv(3), ConvTranspose(3, stride=2)), (1, 8, 8)))
    footer = [line for line in text.splitlines() if line.startswith("receptive field after")]
    assert footer == ["receptive field after layer 1 (convt3s2): size 4, effective stride "
                      "1/2, effective padding 1"]
    # a fractional field is explained in one line
    explained = [line for line in text.splitlines() if line.startswith("'a/b'")]
    assert len(explained) == 1 and "stride 1/s" in explained[0]


def test_footer_of_a_top_level_parallel_is_not_empty():
    text = str(summary(Parallel(Conv(3, padding=1), Conv(1)), (3, 8, 8)))
    assert "receptive field after the whole network (add): size 3" in text
    assert "after :" not in text and "'a/b'" not in text
