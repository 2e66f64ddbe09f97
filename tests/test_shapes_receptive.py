"""Receptive fields: hand-computed values (Araujo, Norris & Sim, Distill 2019) and, when PyTorch
happens to be installed, the actual input support of an output unit found by back-propagation."""

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
    receptive_field,
)


def fields(rf):
    return rf.size, rf.stride, rf.padding


def test_chain_by_hand():
    # r = 1 + sum (k_l - 1) prod s_<l ; P = sum p_l prod s_<l ; S = prod s
    assert fields(receptive_field([Conv(3, padding=1), Conv(3, padding=1)])) == (5, 1, 2)
    # ResNet stem: 7 s2 p3 -> (7, 2, 3); 3 s2 p1 -> r = 7 + 2*2, P = 3 + 1*2
    stem = receptive_field([Conv(7, 2, 3), Pool(3, 2, 1)])
    assert fields(stem) == (11, 4, 5)
    assert stem.region(0) == (-5, 5)
    assert stem.region(1) == (-1, 9)
    assert stem.center(3) == 12
    assert [fields(f) for f in stem.layers] == [(7, 2, 3), (11, 4, 5)]
    assert [f.name for f in stem.layers] == ["0", "1"]
    # dilation: extent (k - 1)*d + 1
    assert receptive_field([Conv(3, dilation=2)]).size == 5
    assert receptive_field([Conv(3, dilation=2), Conv(3, dilation=4)]).size == 13
    # ceil_mode adds windows on the right only: no change to the field
    assert fields(receptive_field([Pool(2, ceil_mode=True), Pool(3, 2, 1)])) == (6, 4, 2)
    # "valid" and "full"
    assert fields(receptive_field([Conv(5, padding="full")])) == (5, 1, 4)
    assert fields(receptive_field([Conv(5, padding="valid")])) == (5, 1, 0)


def test_per_dim_fields():
    rf = receptive_field([Conv((3, 1)), Conv((1, 5), stride=(1, 2), padding=(0, 2))])
    assert fields(rf) == ((3, 5), (1, 2), (0, 2))
    assert rf.region(0) == ((0, 2), (-2, 2))        # an int u answers per dim
    assert rf.region((1, 2)) == ((1, 3), (2, 6))
    assert rf.center((1, 2)) == (2, 4)
    # equal dims collapse to a single value, even with a tuple input size
    rf = receptive_field([Conv(3, padding=1)], input_size=(32, 32))
    assert fields(rf) == (3, 1, 1)
    assert rf.output_size == 32
    assert rf.region((0, 1)) == ((-1, 1), (0, 2))


def test_center_between_units_is_a_float():
    rf = receptive_field([Conv(2)])
    assert rf.center(0) == 0.5
    assert isinstance(rf.center(0), float)
    assert rf.region(0) == (0, 1)


# Effective (size, stride, padding) of torchvision's feature extractors, from the recurrence by
# hand: VGG-16 matches the article's table (212, 32, 90).
PRESET_FIELDS = [
    ("vgg16", lambda: presets.vgg16()[0], (212, 32, 90)),
    ("alexnet", lambda: presets.alexnet()[0], (195, 32, 66)),
    ("resnet18", lambda: presets.resnet18()[:8], (435, 32, 217)),
    ("resnet50", lambda: presets.resnet50()[:8], (427, 32, 213)),
    ("mobilenet_v2", lambda: presets.mobilenet_v2()[0], (491, 32, 245)),
]


@pytest.mark.parametrize("name, network, expected", PRESET_FIELDS,
                         ids=[p[0] for p in PRESET_FIELDS])
def test_preset_fields(name, network, expected):
    assert fields(receptive_field(network())) == expected
    assert fields(receptive_field(network(), input_size=(224, 224))) == expected


def test_vgg16_closed_form():
    # the article's closed form over VGG-16's 13 convolutions (3, s1, p1) and 5 pools (2, s2)
    layers = [(3, 1, 1)] * 2 + [(2, 2, 0)] + [(3, 1, 1)] * 2 + [(2, 2, 0)] \
        + ([(3, 1, 1)] * 3 + [(2, 2, 0)]) * 3
    r, big_s, p = 1, 1, 0
    for k, s, pad in layers:
        r, p, big_s = r + (k - 1) * big_s, p + pad * big_s, big_s * s
    assert (r, big_s, p) == (212, 32, 90)


def test_same_padding_needs_the_input_size():
    rf = receptive_field([Conv(3, stride=2, padding="same")])
    assert (rf.size, rf.stride, rf.padding) == (3, 2, None)
    assert "layer 0" in rf.reason and "input_size" in rf.reason
    with pytest.raises(ValueError, match="not fully known.*layer 0.*input_size"):
        rf.region(0)
    # TF SAME at 224: total (112-1)*2 + 3 - 224 = 1 -> (0, 1); at 225: total 2 -> (1, 1)
    assert receptive_field([Conv(3, 2, "same")], input_size=224).padding == 0
    assert receptive_field([Conv(3, 2, "same")], input_size=225).padding == 1
    assert receptive_field([Conv(3, 2, "same_lower")], input_size=224).padding == 1
    # stride 1 splits the same way for every size: known without it
    assert receptive_field([Conv(4, padding="same")]).padding == 1
    assert receptive_field([Conv(4, padding="same_lower")]).padding == 2
    # extent 2, stride 2: total is 0 or 1, the left part always 0
    assert receptive_field([Conv(2, 2, "same")]).padding == 0
    assert receptive_field([Conv(2, 2, "same_lower")]).padding is None


def test_transposed_convolution_is_a_fractional_stride():
    # kernel 3, stride 2, no padding: output o sees inputs i with 2i in [o - 2, o]
    rf = receptive_field([ConvTranspose(3, stride=2)])
    assert fields(rf) == (2, Fraction(1, 2), 1)
    assert rf.region(0) == (-1, 0)                             # x[0]*w[0] (x[-1] is not there)
    assert rf.region(1) == (Fraction(-1, 2), Fraction(1, 2))   # x[0]*w[1]
    assert rf.region(2) == (0, 1)                              # x[0]*w[2] + x[1]*w[0]
    # DCGAN upsampling 4 s2 p1: k = 1 + 3/2, p = (3 - 1)/2
    assert fields(receptive_field([ConvTranspose(4, 2, 1)])) == (Fraction(5, 2), Fraction(1, 2), 1)
    # down then up again: strides multiply back to 1
    rf = receptive_field([Conv(3, 2), ConvTranspose(3, 2)], input_size=9)
    assert fields(rf) == (5, 1, 2)
    assert rf.output_size == 9
    assert rf.region(4) == (2, 6)
    assert rf.to_dict()["stride"] == 1


def test_adaptive_pooling():
    rf = receptive_field([Conv(3), AdaptivePool(7)])
    assert rf.size is None and "adaptive pooling" in rf.reason and "input_size" in rf.reason
    # 16 - 2 = 14 -> 7: equal bins, the pool 2 s2
    assert fields(receptive_field([Conv(3), AdaptivePool(7)], input_size=16)) == (4, 2, 0)
    # 12 -> 5: unequal bins
    rf = receptive_field([AdaptivePool(5)], input_size=12)
    assert rf.size is None and "unequal" in rf.reason
    # same size in and out, or None: nothing changes
    assert fields(receptive_field([Conv(3), AdaptivePool((None, 8))], input_size=10)) == (3, 1, 0)
    # global pooling sees the whole input; its extent needs the input size
    rf = receptive_field([Conv(3, padding=1), AdaptivePool(1)])
    assert rf.whole_input and rf.size is None and "whole input" in rf.reason
    rf = receptive_field([Conv(3, padding=1), AdaptivePool(1)], input_size=10)
    assert rf.whole_input
    assert rf.region(0) == (-1, 10)   # every unit of the 10-wide input and the padding


def test_flatten_and_linear_see_the_whole_input():
    rf = receptive_field([Conv(3), Flatten(), Linear(8, 4)], input_size=10)
    assert rf.whole_input
    assert rf.region(0) == (0, 9)
    assert [f.whole_input for f in rf.layers] == [False, True, True]
    rf = receptive_field([Conv(3), Linear(None, 4)])
    assert rf.whole_input and rf.size is None
    with pytest.raises(ValueError, match=r"layer 2 \(conv3\).*after Flatten/Linear"):
        receptive_field([Flatten(), Identity(), Conv(3)], input_size=8)


def test_parallel_residual_and_inception():
    block = Parallel(Sequential(Conv(3, padding=1), BatchNorm(), Identity("relu"),
                                Conv(3, padding=1)), Identity())
    rf = receptive_field([block])
    assert fields(rf) == (5, 1, 2)
    assert [f.name for f in rf.layers] == ["0.0.0", "0.0.1", "0.0.2", "0.0.3", "0.1", "0"]
    assert rf.layers[-1].layer is block
    down = Parallel(Sequential(Conv(3, 2, 1), Conv(3, 1, 1)), Conv(1, 2))
    assert fields(receptive_field([down])) == (7, 2, 3)
    inception = Parallel(Conv(1), Conv(3, padding=1), Conv(5, padding=2),
                         Sequential(Pool(3, 1, 1), Conv(1)), merge="concat")
    assert fields(receptive_field([inception])) == (5, 1, 2)


def test_parallel_alignment_errors():
    with pytest.raises(ValueError, match=r"branches '0.0' and '0.1' are not aligned: "
                                         r"effective stride 2 vs 1"):
        receptive_field([Parallel(Conv(3, 2, 1), Conv(3, 1, 1))])
    # kernel 3 s2 without padding is centred on input 1, the 1x1 shortcut on input 0
    with pytest.raises(ValueError, match=r"'0.0' and '0.1' are not aligned: their fields are "
                                         r"centred at 1 and 0"):
        receptive_field([Parallel(Conv(3, 2), Conv(1, 2))])
    with pytest.raises(ValueError, match=r"feature maps of different sizes, 10 and 11"):
        receptive_field([Parallel(Conv(3, padding=1), Conv(3, padding=((1, 2),)))], input_size=10)
    # TF-style "same" with stride 2 at an even size is the famous misalignment
    tf_block = Parallel(Conv(3, 2, "same"), Conv(1, 2, "same"))
    with pytest.raises(ValueError, match="centred at 1 and 0"):
        receptive_field([tf_block], input_size=224)
    # ... unknown without the size: not checked, padding left unknown
    assert receptive_field([tf_block]).padding is None


def test_argument_errors():
    rf = receptive_field([Conv(3)])
    with pytest.raises(ValueError, match=r"u must be an int or a tuple of 1 ints"):
        rf.region((1, 2))
    with pytest.raises(TypeError, match=r"u must be an int"):
        rf.center(1.5)
    with pytest.raises(ValueError, match=r"layer 0 \(conv3x3x3\): kernel_size must be an int "
                                         r"or a tuple of 2 ints"):
        receptive_field([Conv((3, 3, 3))], input_size=(8, 8))
    with pytest.raises(ValueError, match=r"layer 1 \(conv5\): .*output size -1 < 1"):
        receptive_field([Conv(3), Conv(5)], input_size=5)
    with pytest.raises(TypeError, match="Sequential layer 0 must be a layer spec"):
        receptive_field([3])
    with pytest.raises(ValueError, match="input_size must be >= 1"):
        receptive_field([Conv(3)], input_size=0)


# --- the field against the real input support, by back-propagation through PyTorch
def _to_torch(spec, torch):
    """A one-channel 1-d PyTorch module with positive weights that has the spec's geometry."""
    nn = torch.nn
    if isinstance(spec, Sequential):
        return nn.Sequential(*[_to_torch(s, torch) for s in spec.layers])
    if isinstance(spec, Parallel):
        branches = nn.ModuleList(_to_torch(b, torch) for b in spec.branches)

        class Add(nn.Module):
            def forward(self, x):
                return sum(b(x) for b in branches)

        return Add()
    if isinstance(spec, (Conv, Pool)):   # a pool's window is a convolution with ones
        stride = spec.kernel_size if spec.stride is None else spec.stride
        conv = nn.Conv1d(1, 1, spec.kernel_size, stride, spec.padding, spec.dilation,
                         bias=False)
    elif isinstance(spec, ConvTranspose):
        conv = nn.ConvTranspose1d(1, 1, spec.kernel_size, spec.stride, spec.padding,
                                  spec.output_padding, bias=False, dilation=spec.dilation)
    else:
        return nn.Identity()
    nn.init.constant_(conv.weight, 1.0)
    return conv


def _support(module, size, u, torch):
    x = torch.zeros(1, 1, size, requires_grad=True)
    module(x)[0, 0, u].backward()
    hits = torch.nonzero(x.grad[0, 0]).flatten().tolist()
    return hits[0], hits[-1]


@pytest.mark.parametrize("name, network, expected", PRESET_FIELDS,
                         ids=[p[0] for p in PRESET_FIELDS])
def test_preset_fields_match_backpropagation(name, network, expected):
    torch = pytest.importorskip("torch")
    rf = receptive_field(network())
    module = _to_torch(network(), torch)
    assert _support(module, 512, 8, torch) == rf.region(8)   # inside the 512-wide input
    assert _support(module, 512, 0, torch) == (0, rf.region(0)[1])  # clipped by the padding


def test_transposed_fields_bound_the_backpropagated_support():
    torch = pytest.importorskip("torch")
    for net in ([ConvTranspose(3, 2)], [ConvTranspose(4, 2, 1), Conv(3, padding=1)],
                [Conv(3, 2), ConvTranspose(5, 3, 2, dilation=2)]):
        rf = receptive_field(net)
        module = _to_torch(Sequential(*net), torch)
        ends = set()
        for u in range(6, 20):
            first, last = _support(module, 16, u, torch)
            start, end = rf.region(u)
            assert start <= first and last <= end, (net, u)
            ends.add((first - start, end - last))
        assert min(a for a, _ in ends) < 1 and min(b for _, b in ends) < 1  # tight for some u
