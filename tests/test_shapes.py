"""fastconv.shapes sizes and padding: hand-computed tables from the published formulas.

Every expected number below was worked out by hand from PyTorch's, ONNX's or TensorFlow's
documented formula (quoted next to each table), not produced by the code under test.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastconv import shapes
from fastconv.shapes import (
    ConvTranspose,
    adaptive_pool_bins,
    conv_output_size,
    conv_transpose_output_padding,
    conv_transpose_output_size,
    pool_output_size,
    receptive_field,
    resolve_padding,
    summary,
    transpose_overlap,
)

# --- convolution: out = floor((in + pb + pa - d*(k-1) - 1) / s) + 1 (PyTorch Conv2d docs);
# TensorFlow SAME: out = ceil(in/s), pad_total = max((out-1)*s + k_eff - in, 0), pad_before =
# pad_total // 2; ONNX SAME_LOWER puts the odd element first.
CONV_TABLE = [
    # input, kernel, stride, padding, dilation, output
    (13, 3, 1, "valid", 1, 11),
    (13, 3, 1, "same", 1, 13),
    (13, 3, 1, "full", 1, 15),
    (13, 6, 5, "valid", 1, 2),     # TensorFlow's own example: 13 wide, filter 6, stride 5
    (13, 6, 5, "same", 1, 3),      # ... SAME: ceil(13/5) = 3, total pad 3 = 1 + 2
    (224, 7, 2, 3, 1, 112),        # ResNet stem
    (224, 11, 4, 2, 1, 55),        # AlexNet conv1: floor(217/4) + 1
    (10, 3, 1, 0, 2, 6),           # dilated extent 5
    (10, 3, 3, "same", 2, 4),      # ceil(10/3)
    (10, 3, 3, "full", 2, 5),      # (10 + 8 - 5)//3 + 1
    (8, 3, 2, "same", 1, 4),
    (8, 3, 2, "same_lower", 1, 4),
    (224, 1, 2, "same", 1, 112),
    (5, 5, 1, 0, 1, 1),            # kernel exactly the input
    (7, 3, 2, ((0, 1),), 1, 3),    # explicit asymmetric pair: (7 + 1 - 3)//2 + 1
    (8, 3, 2, ((0, 1),), 1, 4),    # (8 + 1 - 3)//2 + 1: what "same" resolves to
]


@pytest.mark.parametrize("size, k, s, p, d, expected", CONV_TABLE)
def test_conv_output_size_table(size, k, s, p, d, expected):
    out = conv_output_size(size, k, s, p, d)
    assert out == ((expected,) if isinstance(p, tuple) else expected)


PADDING_TABLE = [
    # padding, input, kernel, stride, dilation, (before, after)
    ("same", 13, 3, 1, 1, (1, 1)),
    ("same", 13, 6, 5, 1, (1, 2)),      # TF example: total 3, extra at the end
    ("same_lower", 13, 6, 5, 1, (2, 1)),
    ("same", 8, 3, 2, 1, (0, 1)),       # total (4-1)*2 + 3 - 8 = 1
    ("same_lower", 8, 3, 2, 1, (1, 0)),
    ("same", 7, 3, 2, 1, (1, 1)),       # total (4-1)*2 + 3 - 7 = 2
    ("same", 5, 4, 1, 1, (1, 2)),       # even kernel, stride 1: total 3
    ("same_lower", 5, 4, 1, 1, (2, 1)),
    ("same", 224, 1, 2, 1, (0, 0)),     # would be -1: clamped to 0
    ("same", 10, 3, 3, 2, (2, 2)),      # extent 5, total 3*3 + 5 - 10 = 4
    ("full", 10, 3, 1, 2, (4, 4)),
    ("valid", 10, 3, 2, 1, (0, 0)),
    (2, 10, 3, 1, 1, (2, 2)),
]


@pytest.mark.parametrize("padding, size, k, s, d, expected", PADDING_TABLE)
def test_resolve_padding_table(padding, size, k, s, d, expected):
    assert resolve_padding(padding, size, k, s, d) == (expected,)


def test_resolve_padding_forms():
    assert resolve_padding(1, (5, 6), 3) == ((1, 1), (1, 1))
    assert resolve_padding((1, 2), (5, 6), 3) == ((1, 1), (2, 2))
    assert resolve_padding(((0, 1), (2, 3)), (5, 6), 3) == ((0, 1), (2, 3))
    assert resolve_padding([(0, 1), 2], [5, 6], [3, 3]) == ((0, 1), (2, 2))
    # per-dim "same": height 8 / stride 2 -> total 1, width 7 / stride 1 -> total 2
    assert resolve_padding("same", (8, 7), 3, (2, 1)) == ((0, 1), (1, 1))


# --- transposed: out = (in - 1)*s - pb - pa + d*(k - 1) + output_padding + 1 (PyTorch
# ConvTranspose2d docs); ONNX auto_pad SAME: out = in*s, total = s*(in-1) + output_padding +
# ((k-1)*d + 1) - out, SAME_UPPER puts the extra at the end.
TRANSPOSE_TABLE = [
    # input, kernel, stride, padding, output_padding, dilation, output
    (7, 3, 2, 1, 0, 1, 13),
    (7, 3, 2, 1, 1, 1, 14),
    (4, 4, 2, 1, 0, 1, 8),          # DCGAN upsampling doubles
    (5, 3, 1, 0, 0, 2, 9),          # 4 + 5
    (5, 3, 1, 0, 1, 2, 10),         # output_padding 1 < dilation 2 is allowed
    (5, 4, 2, "same", 0, 1, 10),
    (5, 3, 2, "same", 0, 1, 10),
    (5, 3, 2, "same", 1, 1, 10),    # ONNX: output_padding goes into the padding
    (5, 1, 2, "same", 1, 1, 10),    # total = 1 - 2 + 1 = 0
    (5, 3, 2, "valid", 0, 1, 11),
    (3, 3, 1, ((2, 0),), 0, 1, 3),
]


@pytest.mark.parametrize("size, k, s, p, op, d, expected", TRANSPOSE_TABLE)
def test_conv_transpose_output_size_table(size, k, s, p, op, d, expected):
    out = conv_transpose_output_size(size, k, s, p, op, d)
    assert out == ((expected,) if isinstance(p, tuple) else expected)


def test_transposed_same_padding_split():
    # ONNX: total = (k-1)*d + 1 - s + output_padding
    assert resolve_padding("same", 5, 3, 2, transposed=True) == ((0, 1),)
    assert resolve_padding("same_lower", 5, 3, 2, transposed=True) == ((1, 0),)
    assert resolve_padding("same", 5, 4, 2, transposed=True) == ((1, 1),)
    assert resolve_padding("same", 5, 3, 2, transposed=True, output_padding=1) == ((1, 1),)
    assert resolve_padding("same", 5, 3, 1, dilation=2, transposed=True) == ((2, 2),)



def test_transposed_same_with_the_kernel_shorter_than_the_stride():
    # issue 21 item 1: the total t = extent - stride + output_padding goes negative; the pads
    # split with floor division (ONNX's formula as its reference implementation evaluates it)
    # and the output stays in * stride
    assert resolve_padding("same", 5, 2, 3, transposed=True) == ((-1, 0),)        # t = -1
    assert resolve_padding("same_lower", 5, 2, 3, transposed=True) == ((0, -1),)
    assert resolve_padding("same", 5, 1, 4, transposed=True) == ((-2, -1),)       # t = -3
    assert resolve_padding("same_lower", 5, 1, 4, transposed=True) == ((-1, -2),)
    assert resolve_padding("same", 5, 1, 4, transposed=True, output_padding=2) == ((-1, 0),)
    assert resolve_padding("same", (5, 5), (2, 3), 3, dilation=(1, 2),
                           transposed=True) == ((-1, 0), (1, 1))
    for padding in ("same", "same_lower"):
        assert conv_transpose_output_size(5, 1, 4, padding) == 20
        assert conv_transpose_output_size((5, 3), (2, 1), (3, 2), padding,
                                          output_padding=(1, 1)) == (15, 6)
        assert conv_transpose_output_padding(5, 20, 1, 4, padding) == 0
    rf = receptive_field([ConvTranspose(2, stride=3, padding="same")], input_size=5)
    assert rf.layers[-1].size is not None
    assert summary([ConvTranspose(1, stride=4, padding="same", out_channels=2)],
                   (1, 5, 5)).output_shape == (2, 20, 20)


def test_conv_transpose_output_padding_table():
    # base (7-1)*2 - 2 + 3 = 13; reachable 13 and 14 (output_padding < stride 2)
    assert conv_transpose_output_padding(7, 13, 3, 2, 1) == 0
    assert conv_transpose_output_padding(7, 14, 3, 2, 1) == 1
    # dilation 2, stride 1: base 9, output_padding < dilation reaches 10
    assert conv_transpose_output_padding(5, 10, 3, 1, 0, 2) == 1
    assert conv_transpose_output_padding((7, 7), (13, 14), 3, 2, 1) == (0, 1)
    assert conv_transpose_output_padding(5, 10, 3, 2, "same") == 0
    # kernel 1, stride 2: "same" gives in * stride with any output_padding: the default, 0
    assert conv_transpose_output_padding(5, 10, 1, 2, "same") == 0


# --- pooling: PyTorch MaxPool2d docs; with ceil_mode the last window must start inside the input
# or the left padding: if (out - 1)*s >= in + pad_before then out -= 1.
POOL_TABLE = [
    # input, kernel, stride, padding, dilation, ceil_mode, output
    (112, 3, 2, 1, 1, False, 56),     # ResNet max pool
    (55, 3, 2, 0, 1, False, 27),      # AlexNet: floor(52/2) + 1
    (6, 3, 2, 0, 1, False, 2),
    (6, 3, 2, 0, 1, True, 3),         # ceil(3/2) + 1: the last window hangs over the end
    (5, 2, 2, 1, 1, False, 3),
    (5, 2, 2, 1, 1, True, 3),         # ceil(5/2) + 1 = 4, but window 3 starts at 6 - 1 = 5 >= 5
    (5, 2, 2, 0, 1, True, 3),
    (5, 2, 2, 0, 1, False, 2),
    (10, 3, 1, 0, 2, False, 6),       # dilated extent 5
    (7, 3, 2, "same", 1, False, 4),
    (7, 3, 2, "same", 1, True, 4),
    (224, 2, None, 0, 1, False, 112),  # stride None = kernel
    (7, 3, 2, ((0, 2),), 1, True, 4),  # (7 + 2 - 3)/2 -> 3 + 1; last start 6 < 7: kept
]


@pytest.mark.parametrize("size, k, s, p, d, ceil_mode, expected", POOL_TABLE)
def test_pool_output_size_table(size, k, s, p, d, ceil_mode, expected):
    out = pool_output_size(size, k, s, p, d, ceil_mode)
    assert out == ((expected,) if isinstance(p, tuple) else expected)


def test_adaptive_pool_bins():
    # PyTorch: bin i covers [floor(i*in/out), ceil((i+1)*in/out))
    assert adaptive_pool_bins(5, 3) == [(0, 2), (1, 4), (3, 5)]
    assert adaptive_pool_bins(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    assert adaptive_pool_bins(2, 4) == [(0, 1), (0, 1), (1, 2), (1, 2)]
    assert adaptive_pool_bins(6, 1) == [(0, 6)]
    assert adaptive_pool_bins((4, 3), (2, None)) == ([(0, 2), (2, 4)], [(0, 1), (1, 2), (2, 3)])


def test_transpose_overlap_table():
    # taps j reach phase j mod s: ceil((k - p)/s) of them
    assert transpose_overlap(3, 2) == (2, 1)
    assert transpose_overlap(4, 2) == (2, 2)
    assert transpose_overlap(3, 3) == (1, 1, 1)
    assert transpose_overlap(5, 2) == (3, 2)
    assert transpose_overlap(2, 3) == (1, 1, 0)
    assert transpose_overlap((3, 3), (2, 2)) == ((4, 2), (2, 1))
    assert transpose_overlap((3, 4), 2) == ((4, 4), (2, 2))
    assert transpose_overlap((3,), (2,)) == (2, 1)


def test_result_form_follows_arguments():
    assert conv_output_size(13, 3) == 11
    assert conv_output_size((13,), 3) == (11,)
    assert conv_output_size(13, (3, 5)) == (11, 9)
    assert conv_output_size([13, 9], [3, 3], [1, 2], [1, 0], [1, 1]) == (13, 4)
    assert pool_output_size((8, 9), 2) == (4, 4)
    assert conv_transpose_output_size(4, (4, 3), 2, 1) == (8, 7)


# --- every error path: the exception names the argument and the value
ERRORS = [
    (conv_output_size, (13, 3), {"stride": 0}, ValueError, r"stride must be >= 1, got 0"),
    (conv_output_size, (13, 0), {}, ValueError, r"kernel_size must be >= 1, got 0"),
    (conv_output_size, (13, 3), {"dilation": -1}, ValueError, r"dilation must be >= 1"),
    (conv_output_size, (0, 3), {}, ValueError, r"input_size must be >= 1, got 0"),
    (conv_output_size, ((13, 0), 3), {}, ValueError, r"input_size\[1\] must be >= 1"),
    (conv_output_size, (13.0, 3), {}, TypeError, r"input_size must be an int, got 13.0"),
    (conv_output_size, (13, True), {}, TypeError, r"kernel_size must be an int, got True"),
    (conv_output_size, (13, 3), {"stride": 1.5}, TypeError, r"stride must be an int"),
    (conv_output_size, (13, 3), {"stride": "2"}, TypeError, r"stride must be an int"),
    (conv_output_size, (13, 3), {"padding": -1}, ValueError, r"padding must be >= 0, got -1"),
    (conv_output_size, (13, 3), {"padding": ((0, -1),)}, ValueError, r"padding\[0\]\[1\]"),
    (conv_output_size, (13, 3), {"padding": ((0, 1, 2),)}, ValueError,
     r"padding\[0\] must be an int or a \(before, after\) pair"),
    (conv_output_size, (13, 3), {"padding": 1.0}, TypeError, r"padding must be an int"),
    (conv_output_size, (13, 3), {"padding": "SAME"}, ValueError,
     r"one of 'valid', 'same', 'same_lower', 'full'; got 'SAME'"),
    (conv_output_size, ((13, 13), (3, 3, 3)), {}, ValueError,
     r"kernel_size has 3 entries but input_size has 2"),
    (conv_output_size, ((13, 13), 3), {"padding": (1, 1, 1)}, ValueError,
     r"padding must be an int.*a tuple of 2 ints.*got \(1, 1, 1\) \(3 entries\)"),
    (conv_output_size, ((), 3), {}, ValueError, r"input_size must have at least one entry"),
    (conv_output_size, (2, 5), {}, ValueError,
     r"output size -2 < 1 in dim 0 for input_size=2, kernel_size=5.*larger than the padded"),
    (conv_output_size, ((9, 2), 3), {"dilation": (1, 1)}, ValueError,
     r"output size 0 < 1 in dim 1"),
    (resolve_padding, ("same", 10, 3), {"stride": 0}, ValueError, r"stride must be >= 1"),
    (resolve_padding, ("same", 10, 3), {"dilation": True}, TypeError, r"dilation must be an int"),
    (resolve_padding, ("full", 10, 3), {"transposed": True}, ValueError, r"padding='full'"),
    (pool_output_size, (10, 2), {"padding": 2}, ValueError,
     r"padding \(2, 2\) in dim 0 must be smaller than the dilated kernel extent 2"),
    (pool_output_size, (10, 2), {"padding": ((0, 2),)}, ValueError,
     r"padding \(0, 2\) in dim 0 must be smaller"),
    (pool_output_size, (10, 3), {"padding": "full"}, ValueError, r"padding='full'"),
    (pool_output_size, (10, 3), {"ceil_mode": 1}, TypeError, r"ceil_mode must be a bool"),
    (pool_output_size, (10, 3), {"stride": 0}, ValueError, r"stride must be >= 1"),
    (pool_output_size, (2, 3), {}, ValueError, r"output size 0 < 1 in dim 0 for input_size=2"),
    (conv_transpose_output_size, (5, 3, 2), {"output_padding": 2}, ValueError,
     r"output_padding must be smaller than stride or dilation.*output_padding 2 with stride 2"),
    (conv_transpose_output_size, (5, 3), {"output_padding": -1}, ValueError,
     r"output_padding must be >= 0"),
    (conv_transpose_output_size, (5, 3), {"padding": "full"}, ValueError, r"padding='full'"),
    (conv_transpose_output_size, (2, 3, 1, 3), {}, ValueError,
     r"conv_transpose_output_size: output size -2 < 1 in dim 0"),
    (conv_transpose_output_padding, (7, 15, 3, 2, 1), {}, ValueError,
     r"output_size 15 cannot be reached in dim 0.*from 13 to 14"),
    (conv_transpose_output_padding, (7, 12, 3, 2, 1), {}, ValueError,
     r"output_size 12 cannot be reached"),
    (conv_transpose_output_padding, (5, 11, 3, 2, "same"), {}, ValueError,
     r"output_size 11 cannot be reached.*only 10"),
    (conv_transpose_output_padding, (5, 0, 3), {}, ValueError, r"output_size must be >= 1"),
    (adaptive_pool_bins, (5, 0), {}, ValueError, r"output_size must be >= 1, got 0"),
    (adaptive_pool_bins, (5, 2.0), {}, TypeError, r"output_size must be an int"),
    (adaptive_pool_bins, ((5, 5), (1, 1, 1)), {}, ValueError,
     r"output_size has 3 entries but input_size has 2"),
    (transpose_overlap, (0, 2), {}, ValueError, r"kernel_size must be >= 1"),
    (transpose_overlap, (3, 0), {}, ValueError, r"stride must be >= 1"),
    (transpose_overlap, ((3, 3), (2, 2, 2)), {}, ValueError, r"stride has 3 entries"),
]


@pytest.mark.parametrize("function, args, kwargs, error, match", ERRORS,
                         ids=[f"{e[0].__name__}-{i}" for i, e in enumerate(ERRORS)])
def test_errors_name_the_argument(function, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        function(*args, **kwargs)


def test_numpy_booleans_and_integers():
    np = pytest.importorskip("numpy")
    assert conv_output_size(np.int64(13), np.int32(3)) == 11
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        conv_output_size(13, np.bool_(True))
    with pytest.raises(TypeError, match="stride must be an int"):
        conv_output_size(13, 3, np.float64(2.0))


def _pure_import_check(code: str) -> subprocess.CompletedProcess:
    # put our src (or the installed package) first, whichever the test session imported
    package_root = str(Path(shapes.__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=60)


def test_import_is_pure_python():
    code = (
        "import sys\n"
        "import fastconv.shapes, fastconv.shapes.cli, fastconv.shapes.presets\n"
        "fastconv.shapes.summary(fastconv.shapes.presets.resnet18(), (3, 64, 64))\n"
        "bad = sorted(m for m in sys.modules if m == 'numpy' or m.startswith('numpy.'))\n"
        "compiled = sorted(name for name, m in list(sys.modules.items())\n"
        "                  if name.startswith('fastconv') and\n"
        "                  str(getattr(m, '__file__', '') or '').endswith(('.so', '.pyd')))\n"
        "print(fastconv.shapes.__file__)\n"
        "assert not bad, bad\n"
        "assert not compiled, compiled\n"
    )
    result = _pure_import_check(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(Path(shapes.__file__))


def test_module_docstring_examples_run():
    import doctest

    from fastconv.shapes import (
        _layers,
        _overlap,
        _receptive,
        _sizes,
        _spec,
        _summary,
        presets,
    )

    for module in (shapes, _sizes, _overlap, _receptive, _summary, _layers, _spec, presets):
        result = doctest.testmod(module, extraglobs=vars(shapes), optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
    assert doctest.testmod(_sizes).attempted >= 15  # the examples are really there


# --- cross-checks against PyTorch when it happens to be installed (it is not a dependency)
def test_sizes_match_torch():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    for size in (1, 5, 8, 13, 16):
        x = torch.zeros(1, 1, size)
        for k in (1, 2, 3, 5):
            for s in (1, 2, 3):
                for d in (1, 2):
                    for p in range(0, (k - 1) * d // 2 + 1):
                        w = torch.zeros(1, 1, k)
                        extent = (k - 1) * d + 1
                        if size + 2 * p >= extent:
                            got = f.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1]
                            assert conv_output_size(size, k, s, p, d) == got
                        for op in range(max(s, d)):
                            expect = f.conv_transpose1d(x, w, stride=s, padding=p,
                                                        output_padding=op, dilation=d)
                            args = (size, k, s, p, op, d)
                            if expect.shape[-1] >= 1:
                                assert conv_transpose_output_size(*args) == expect.shape[-1]
                        if p <= k // 2 and size + 2 * p >= extent:
                            for ceil_mode in (False, True):
                                got = f.max_pool1d(x, k, s, p, d, ceil_mode=ceil_mode).shape[-1]
                                assert pool_output_size(size, k, s, p, d, ceil_mode) == got


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel:UserWarning")
def test_same_padding_matches_torch_for_stride_1():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    x = torch.arange(11.0).reshape(1, 1, 11)
    for k in (1, 2, 3, 4, 5):
        for d in (1, 2, 3):
            w = torch.arange(1.0, k + 1).reshape(1, 1, k)
            ((before, after),) = resolve_padding("same", 11, k, 1, d)
            expect = f.conv1d(x, w, padding="same", dilation=d)
            got = f.conv1d(f.pad(x, (before, after)), w, dilation=d)
            assert torch.equal(got, expect), (k, d)


def test_adaptive_bins_match_torch():
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    for size in range(1, 12):
        x = torch.arange(float(size)).reshape(1, 1, size)
        for out in range(1, 14):
            bins = adaptive_pool_bins(size, out)
            last = f.adaptive_max_pool1d(x, out)[0, 0].tolist()   # end - 1 of each bin
            first = (-f.adaptive_max_pool1d(-x, out))[0, 0].tolist()  # start of each bin
            assert bins == [(int(a), int(b) + 1) for a, b in zip(first, last)]
