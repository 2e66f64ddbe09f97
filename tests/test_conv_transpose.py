"""Transposed convolution against the float64 reference, the adjoint identity with convolution,
and the argument contract of API.md ("Transposed convolution", "Layer objects")."""

import numpy as np
import pytest
from reference import assert_close, ref_conv, ref_conv_transpose, ref_resolve_padding

import fastconv
from fastconv.conv_transpose import choose_algorithm, taps_meet

ALGORITHMS = ("gemm", "phase")
DTYPES = (np.float32, np.float64)

# (ndim, input spatial, kernel, stride, padding, output_padding, groups, dilation, C_in, C_out)
CASES = [
    (2, (5, 6), (3, 3), 2, 1, 1, 1, 1, 4, 6),  # odd kernel, stride 2, output_padding
    (2, (7, 5), (4, 4), 2, 1, 0, 1, 1, 5, 3),  # dcgan-like: kernel multiple of stride
    (2, (4, 4), (2, 2), 2, 0, 0, 2, 1, 4, 6),  # unet-like, groups
    (2, (4, 5), (3, 2), (2, 3), ((0, 1), (2, 0)), (1, 0), 1, (1, 2), 3, 5),  # asymmetric
    (2, (5, 5), (8, 8), 4, 2, 0, 1, 1, 3, 3),  # fcn bilinear-style upsample
    (2, (5, 5), (1, 1), 3, 0, 2, 1, 1, 3, 2),  # kernel < stride: phases without taps
    (2, (6, 7), (3, 3), 2, "same", 0, 1, 1, 4, 4),
    (2, (6, 7), (4, 3), (2, 3), "same_lower", 0, 1, 1, 2, 3),
    (2, (3, 4), (3, 3), 1, "valid", 0, 3, 2, 9, 6),  # stride 1, dilation 2, groups 3
    (2, (6, 5), (3, 3), 2, (2, 0), 2, 1, 3, 2, 2),  # output_padding < dilation, not stride
    (2, (5, 5), (5, 5), 2, 2, 1, 1, 1, 17, 19),  # channels not a multiple of a SIMD width
    (1, (9,), (5,), 3, 2, 2, 1, 1, 3, 4),
    (1, (16,), (4,), 2, 1, 0, 2, 1, 6, 4),
    (1, (7,), (3,), 1, 0, 0, 1, 2, 2, 3),
    (3, (3, 4, 5), (2, 3, 2), (2, 1, 2), 1, 0, 1, 1, 3, 4),
    (3, (3, 3, 3), (2, 2, 2), 2, 0, (1, 0, 1), 2, 1, 4, 2),
]


def _case_id(case):
    nd, sp, k, s, p, op, g, d, ci, co = case
    return f"{nd}d-in{sp}-k{k}-s{s}-p{p}-op{op}-g{g}-d{d}-{ci}to{co}"


def _fn(ndim):
    return getattr(fastconv, f"conv_transpose{ndim}d")


def _data(case, dtype, batch=2, bias=True, seed=0):
    nd, sp, k, s, p, op, g, d, ci, co = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, ci, *sp)).astype(dtype)
    w = rng.standard_normal((ci, co // g, *k)).astype(dtype)
    b = rng.standard_normal(co).astype(dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("case", CASES, ids=_case_id)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_against_reference(case, algorithm, dtype):
    nd, sp, k, s, p, op, g, d, ci, co = case
    x, w, b = _data(case, dtype, bias=algorithm == "gemm")
    y = _fn(nd)(x, w, b, s, p, op, g, d, algorithm=algorithm, threads=1)
    assert y.dtype == dtype
    assert_close(y, ref_conv_transpose(x, w, b, s, p, op, g, d))


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("algorithm", ("auto", *ALGORITHMS))
def test_every_isa_and_thread_count(isa, threads, algorithm):
    for case in (CASES[0], CASES[1], CASES[10], CASES[12], CASES[15]):
        nd, sp, k, s, p, op, g, d, ci, co = case
        for dtype in DTYPES:
            x, w, b = _data(case, dtype, batch=3)
            y = _fn(nd)(x, w, b, s, p, op, g, d, algorithm=algorithm, threads=threads)
            assert_close(y, ref_conv_transpose(x, w, b, s, p, op, g, d))


@pytest.mark.parametrize("threads", (1, 2))
def test_kernels_longer_than_the_phase_limit(threads):
    """Kernels over 64 taps in a dim: "gemm" accumulates in a phase-major plane; "phase" says no."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 5))
    w = rng.standard_normal((2, 3, 67))
    b = rng.standard_normal(3)
    y = fastconv.conv_transpose1d(x, w, b, 2, 3, 1, threads=threads)
    assert_close(y, ref_conv_transpose(x, w, b, 2, 3, 1))
    x2 = rng.standard_normal((1, 2, 3, 4)).astype(np.float32)
    w2 = rng.standard_normal((2, 2, 3, 66)).astype(np.float32)
    assert_close(fastconv.conv_transpose2d(x2, w2, None, (1, 3), ((1, 1), (5, 2))),
                 ref_conv_transpose(x2, w2, None, (1, 3), ((1, 1), (5, 2))))
    with pytest.raises(ValueError, match="phase"):
        fastconv.conv_transpose1d(x, w, b, 2, algorithm="phase")


def test_algorithms_and_threads_agree():
    """Same answer (to rounding) whatever the algorithm or thread count."""
    case = (2, (9, 11), (4, 4), 2, 1, 0, 1, 1, 16, 24)
    x, w, b = _data(case, np.float64, batch=2)
    results = [fastconv.conv_transpose2d(x, w, b, 2, 1, algorithm=a, threads=t)
               for a in ALGORITHMS for t in (1, 2)]
    for y in results[1:]:
        np.testing.assert_allclose(y, results[0], rtol=0, atol=1e-12)


def _forward_conv(x, w, stride, pads, dilation, groups):
    """Convolution: fastconv's own when it is built, else the float64 reference.

    No case below is 3x3 stride 1 dilation 1, so "auto" cannot pick a Winograd variant (whose
    float64 error exceeds plain rounding).
    """
    try:
        conv = getattr(fastconv, f"conv{x.ndim - 2}d")
        return conv(x, w, None, stride, pads, dilation, groups)
    except ImportError:  # fastconv.conv or its extension is not there (yet)
        return ref_conv(x, w, None, stride, pads, dilation, groups)


ADJOINT_CASES = [
    # (ndim, conv input spatial, kernel, stride, padding, dilation, groups, C_in, C_out)
    (2, (9, 8), (3, 3), 2, 1, 1, 1, 3, 4),
    (2, (10, 10), (4, 4), 2, 1, 1, 1, 4, 2),
    (2, (8, 9), (2, 2), 2, 0, 1, 2, 4, 6),
    (2, (11, 7), (3, 2), (3, 2), ((2, 0), (0, 1)), (2, 1), 1, 2, 3),
    (2, (12, 12), (8, 8), 4, 2, 1, 3, 3, 3),
    (2, (7, 9), (3, 3), 2, "same", 1, 1, 2, 2),
    (2, (7, 9), (3, 4), 3, "same_lower", 1, 1, 2, 2),
    (2, (6, 6), (3, 3), 1, "valid", 2, 1, 3, 3),
    (1, (17,), (4,), 2, 1, 1, 1, 4, 3),
    (1, (13,), (5,), 3, 0, 2, 2, 4, 2),
    (3, (6, 5, 7), (2, 3, 2), (2, 1, 2), 1, 1, 1, 2, 3),
]


@pytest.mark.parametrize("case", ADJOINT_CASES, ids=str)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_adjoint_of_convolution(case, algorithm):
    """<conv(x, w), y> == <x, conv_transpose(y, w)> with matching geometry."""
    nd, sp, k, s, p, d, g, ci, co = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, ci, *sp))
    w = rng.standard_normal((co, ci // g, *k))  # conv weight == conv_transpose weight
    pads = ref_resolve_padding(p, sp, k, s, d)  # the convolution's padding, explicitly
    cx = _forward_conv(x, w, s, pads, d, g)
    y = rng.standard_normal(cx.shape)
    # output_size picks the output_padding that brings the transposed output back to x's size
    ty = _fn(nd)(y, w, None, s, pads, 0, g, d, output_size=sp, algorithm=algorithm)
    lhs, rhs = np.vdot(cx, y), np.vdot(x, ty)
    scale = np.vdot(np.abs(cx), np.abs(y))
    assert abs(lhs - rhs) <= 1e-12 * scale, (lhs, rhs)
    # the same through an explicit output_padding
    stride = (s,) * nd if isinstance(s, int) else s
    dil = (d,) * nd if isinstance(d, int) else d
    op = tuple(n - ((o - 1) * st - pb - pa + (kk - 1) * dd + 1) for n, o, st, (pb, pa), kk, dd
               in zip(sp, cx.shape[2:], stride, pads, k, dil))
    ty2 = _fn(nd)(y, w, None, s, pads, op, g, d, algorithm=algorithm)
    np.testing.assert_array_equal(ty2, ty)


@pytest.mark.parametrize("case", [c for c in CASES if not isinstance(c[4], str)], ids=_case_id)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_adjoint_over_the_reference_sweep(case, algorithm):
    """<conv_transpose(x, w), z> == <x, conv(z, w)> for every case of the reference sweep
    (output_padding included: conv's extra outputs, if any, lie outside x and are cropped)."""
    nd, sp, k, s, p, op, g, d, ci, co = case
    x, w, _ = _data(case, np.float64, batch=2, bias=False, seed=7)
    y = _fn(nd)(x, w, None, s, p, op, g, d, algorithm=algorithm, threads=2)
    z = np.random.default_rng(8).standard_normal(y.shape)
    cz = _forward_conv(z, w, s, p, d, g)
    cz = cz[(Ellipsis, *(slice(0, n) for n in sp))]
    assert cz.shape == x.shape
    lhs, rhs = np.vdot(y, z), np.vdot(x, cz)
    assert abs(lhs - rhs) <= 1e-12 * np.vdot(np.abs(y), np.abs(z)), (lhs, rhs)


def test_same_padding_output_is_input_times_stride():
    x = np.random.default_rng(2).standard_normal((1, 2, 5, 7))
    w = np.random.default_rng(3).standard_normal((2, 3, 4, 3))
    for mode in ("same", "same_lower"):
        y = fastconv.conv_transpose2d(x, w, stride=(2, 3), padding=mode)
        assert y.shape == (1, 3, 10, 21)
        assert_close(y, ref_conv_transpose(x, w, None, (2, 3), mode))
        # ONNX counts output_padding in the total padding: still in * stride
        y = fastconv.conv_transpose2d(x, w, stride=(2, 3), padding=mode, output_padding=1)
        assert y.shape == (1, 3, 10, 21)
        assert_close(y, ref_conv_transpose(x, w, None, (2, 3), mode, 1))
        assert fastconv.conv_transpose2d(x, w, stride=(2, 3), padding=mode,
                                         output_size=(10, 21)).shape == (1, 3, 10, 21)
    # a kernel shorter than the stride: in * stride too, with or without output_padding
    w1 = w[:, :, :1, :1]
    for output_padding in (0, 1):
        y = fastconv.conv_transpose2d(x, w1, stride=2, padding="same",
                                      output_padding=output_padding)
        assert y.shape == (1, 3, 10, 14)
        assert_close(y, ref_conv_transpose(x, w1, None, 2, "same", output_padding))


@pytest.mark.parametrize("output_size", [(10, 12), (1, 6, 10, 12), [10, 12]])
def test_output_size_forms(output_size):
    x, w, b = _data(CASES[0], np.float64, batch=1)  # in (5, 6), k 3, s 2, p 1 -> 9..10, 11..12
    y = fastconv.conv_transpose2d(x, w, b, stride=2, padding=1, output_size=output_size)
    assert y.shape == (1, 6, 10, 12)
    assert_close(y, ref_conv_transpose(x, w, b, 2, 1, (1, 1)))
    # unbatched: spatial sizes or the unbatched full shape
    y1 = fastconv.conv_transpose2d(x[0], w, b, stride=2, padding=1, output_size=(6, 10, 12))
    assert_close(y1, ref_conv_transpose(x, w, b, 2, 1, (1, 1))[0])


@pytest.mark.parametrize("output_size", [(11, 12), (8, 11), (1, 4, 10, 12), (2, 6, 10, 12),
                                         (1, 1, 6, 10, 12)])
def test_unreachable_output_size_raises(output_size):
    x, w, b = _data(CASES[0], np.float64, batch=1)
    with pytest.raises(ValueError):
        fastconv.conv_transpose2d(x, w, b, stride=2, padding=1, output_size=output_size)


def test_unbatched_noncontiguous_readonly_and_out():
    case = CASES[1]
    x, w, b = _data(case, np.float32, batch=1)
    big = np.zeros((3, x.shape[1], 2 * x.shape[2], x.shape[3]), np.float32)
    big[1, :, ::2] = x[0]
    xs = big[1, :, ::2][:, :, ::-1][:, :, ::-1]  # strided view, equal to x[0]
    xs.flags.writeable = False
    expected = ref_conv_transpose(x, w, b, 2, 1)[0]
    y = fastconv.conv_transpose2d(xs, w, b, 2, 1)
    assert y.shape == expected.shape
    assert_close(y, expected)
    out = np.empty_like(y)
    assert fastconv.conv_transpose2d(xs, w, b, 2, 1, out=out) is out
    assert_close(out, expected)
    with pytest.raises(ValueError, match="out"):
        fastconv.conv_transpose2d(xs, w, b, 2, 1, out=np.empty((1, *y.shape), np.float32))
    with pytest.raises(ValueError, match="out"):
        fastconv.conv_transpose2d(xs, w, b, 2, 1, out=np.empty(y.shape, np.float64))


def test_dtype_promotion_and_empty_batch():
    x = np.arange(2 * 3 * 4, dtype=np.int64).reshape(1, 2, 3, 4)
    w = np.ones((2, 1, 2, 2), np.int8)
    y = fastconv.conv_transpose2d(x, w, stride=2)
    assert y.dtype == np.float64
    assert_close(y, ref_conv_transpose(x, w, None, 2))
    y16 = fastconv.conv_transpose2d(x.astype(np.float16), w, stride=2)
    assert y16.dtype == np.float32
    empty = fastconv.conv_transpose2d(np.zeros((0, 2, 3, 4), np.float32), w, stride=2)
    assert empty.shape == (0, 1, 6, 8)


def test_bias_without_input_channels():
    x = np.zeros((2, 0, 3), np.float32)
    w = np.zeros((0, 2, 2), np.float32)
    y = fastconv.conv_transpose1d(x, w, np.array([1.5, -2.0], np.float32), stride=2)
    assert y.shape == (2, 2, 6)
    assert np.all(y[:, 0] == 1.5) and np.all(y[:, 1] == -2.0)


def test_nan_and_inf_propagate():
    x = np.ones((1, 1, 4))
    x[0, 0, 1] = np.nan
    w = np.ones((1, 1, 2))
    for algorithm in ALGORITHMS:
        y = fastconv.conv_transpose1d(x, w, stride=2, algorithm=algorithm)
        np.testing.assert_array_equal(np.isnan(y[0, 0]), [0, 0, 1, 1, 0, 0, 0, 0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(stride=2, output_padding=2), "output_padding"),
    (dict(stride=1, output_padding=1), "output_padding"),
    (dict(padding="full"), "padding"),
    (dict(padding=-1), "padding"),
    (dict(stride=0), "stride"),
    (dict(dilation=(1, 1)), "dilation"),
    (dict(groups=3), "groups"),
    (dict(algorithm="winograd"), "algorithm"),
    (dict(bias=np.zeros(5)), "bias"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    x = np.zeros((1, 4, 5))
    w = np.zeros((4, 2, 3))
    with pytest.raises(ValueError, match=match):
        fastconv.conv_transpose1d(x, w, **kwargs)


def test_bad_types_and_shapes():
    x = np.zeros((1, 4, 5))
    w = np.zeros((4, 2, 3))
    with pytest.raises(ValueError, match="channels"):
        fastconv.conv_transpose1d(np.zeros((1, 3, 5)), w)
    with pytest.raises(ValueError, match="x"):
        fastconv.conv_transpose1d(np.zeros((1, 1, 4, 5)), w)
    with pytest.raises(ValueError, match="weight"):
        fastconv.conv_transpose2d(np.zeros((1, 4, 5, 5)), w)
    with pytest.raises(TypeError, match="x"):
        fastconv.conv_transpose1d(x.astype(complex), w)
    with pytest.raises(TypeError, match="stride"):
        fastconv.conv_transpose1d(x, w, stride=1.5)
    with pytest.raises(ValueError, match="threads"):
        fastconv.conv_transpose1d(x, w, threads=0)
    huge = np.lib.stride_tricks.as_strided(np.zeros(1), (1, 4, 2**16, 2**16), (0, 0, 0, 0))
    with pytest.raises(ValueError, match="too large"):  # before any allocation
        fastconv.conv_transpose2d(huge, np.zeros((4, 2, 1, 1)))


@pytest.mark.parametrize("algorithm", ("auto", *ALGORITHMS))
def test_layer_matches_functional_and_copies_weight(algorithm):
    case = CASES[1]
    x, w, b = _data(case, np.float32)
    layer = fastconv.ConvTranspose2d(w, b, stride=2, padding=1, algorithm=algorithm)
    expected = fastconv.conv_transpose2d(x, w, b, 2, 1, algorithm=algorithm)
    w[...] = 0  # the layer keeps its own copy
    b[...] = 0
    np.testing.assert_array_equal(layer(x), expected)
    np.testing.assert_array_equal(layer(x[0]), expected[0])
    np.testing.assert_array_equal(layer(x.astype(np.float64)).dtype, np.float64)
    assert layer(x, output_size=(15, 11)).shape == (2, 3, 15, 11)
    out = np.empty_like(expected)
    assert layer(x, threads=2, out=out) is out
    np.testing.assert_array_equal(out, expected)
    chosen = layer.algorithm_for(x.shape)
    assert chosen == (choose_algorithm(5, 3, 1, (4, 4), (2, 2), (1, 1)) if algorithm == "auto"
                      else algorithm)
    assert chosen in ALGORITHMS
    assert layer.flops(x.shape) == 2 * 2 * 5 * 3 * 16 * 7 * 5
    with pytest.raises(ValueError):
        layer.algorithm_for((2, 4, 7, 5))  # wrong channel count


def test_layers_of_every_rank():
    rng = np.random.default_rng(4)
    for nd, cls in ((1, fastconv.ConvTranspose1d), (3, fastconv.ConvTranspose3d)):
        w = rng.standard_normal((4, 3, *(2,) * nd))
        x = rng.standard_normal((2, 4, *(3,) * nd))
        layer = cls(w, None, stride=2, padding="same", groups=1)
        assert_close(layer(x), ref_conv_transpose(x, w, None, 2, "same"))


def test_auto_rule():
    """The measured rule (see choose_algorithm): phase when taps meet and C_out >> C_in."""
    assert taps_meet((3,), (2,), (1,)) and taps_meet((2,), (2,), (2,))
    assert not taps_meet((2, 2), (2, 2), (1, 1)) and not taps_meet((1,), (3,), (1,))
    cases = [
        ((256, 128, 1, (4, 4), (2, 2), (1, 1)), "gemm"),  # the dcgan
        ((64, 32, 1, (2, 2, 2), (2, 2, 2), (1, 1, 1)), "gemm"),  # kernel == stride
        ((16, 128, 1, (4, 4), (2, 2), (1, 1)), "phase"),
        ((16, 64, 1, (3, 3), (1, 1), (1, 1)), "phase"),  # stride 1: one phase
        ((16, 63, 1, (3,), (2,), (1,)), "gemm"),  # just under the ratio
        ((16, 128, 1, (2, 2), (2, 2), (1, 1)), "gemm"),  # many outputs, but no taps meet
        ((32, 512, 4, (4,), (2,), (1,)), "phase"),  # per group: 8 -> 128
        ((4, 64, 1, (66,), (2,), (1,)), "gemm"),  # beyond the phase kernel limit
    ]
    for args, expected in cases:
        assert choose_algorithm(*args) == expected, args
    layer = fastconv.ConvTranspose2d(np.zeros((4, 64, 3, 3), np.float32), stride=2)
    assert layer.algorithm_for((1, 4, 5, 5)) == "phase"
    y = layer(np.ones((1, 4, 5, 5), np.float32))
    assert_close(y, ref_conv_transpose(np.ones((1, 4, 5, 5)), np.zeros((4, 64, 3, 3)), None, 2))


# Shapes with several work units per call: channel blocks when taps meet, input-row chunks
# when they do not (kernel == stride), and several row chunks per phase.
UNIT_CASES = [
    (2, (20, 20), (4, 4), 2, 1, 0, 1, 1, 5, 70),
    (2, (40, 64), (2, 2), 2, 0, 0, 1, 1, 3, 40),
    (3, (6, 10, 12), (2, 2, 2), 2, 0, 0, 2, 1, 4, 36),
    (1, (700,), (3,), 2, 1, 1, 1, 1, 6, 90),
    (2, (150, 170), (3, 3), 2, 1, 1, 1, 1, 2, 3),  # large planes: GEMM over row chunks
]


@pytest.mark.parametrize("case", UNIT_CASES, ids=_case_id)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_work_units_and_weight_packing(isa, case, algorithm):
    """Many work units on 2 threads; a functional call (the weight packed by each unit) gives
    bit for bit what the layer (packed once) gives, on every ISA (each has its own panel
    height)."""
    nd, sp, k, s, p, op, g, d, ci, co = case
    x, w, b = _data(case, np.float32, batch=2)
    y = _fn(nd)(x, w, b, s, p, op, g, d, algorithm=algorithm, threads=2)
    assert_close(y, ref_conv_transpose(x, w, b, s, p, op, g, d))
    layer = getattr(fastconv, f"ConvTranspose{nd}d")(w, b, s, p, op, g, d, algorithm=algorithm)
    np.testing.assert_array_equal(layer(x, threads=2), y)
    np.testing.assert_array_equal(layer(x, threads=1), y)


# Inputs 16 wide: col2im adds each tap's rows as whole 16-value rows (its own loop); the 3-D
# case is large enough that its GEMM runs over row chunks that end inside a depth plane.
WIDTH16_CASES = [
    (2, (5, 16), (4, 4), 2, 1, 0, 1, 1, 3, 5),
    (2, (6, 16), (8, 8), 4, 2, 0, 1, 1, 2, 3),
    (3, (3, 80, 16), (3, 4, 4), 2, 1, 0, 1, 1, 3, 8),
    (1, (16,), (5,), 3, 2, 1, 1, 1, 4, 3),
]


@pytest.mark.parametrize("threads", (1, 2))
@pytest.mark.parametrize("case", WIDTH16_CASES, ids=_case_id)
def test_width_16_rows(isa, case, threads):
    nd, sp, k, s, p, op, g, d, ci, co = case
    for dtype in DTYPES:
        x, w, b = _data(case, dtype, batch=2)
        y = _fn(nd)(x, w, b, s, p, op, g, d, algorithm="gemm", threads=threads)
        assert_close(y, ref_conv_transpose(x, w, b, s, p, op, g, d))


# --- issue 21 item 1: "same" when the dilated kernel is shorter than the stride ----------------
# (ndim, input spatial, kernel, stride, output_padding, groups, dilation, C_in, C_out)
SHORT_KERNEL_CASES = [
    (2, (2, 2), (2, 1), 3, 0, 1, 1, 1, 1),               # the repro: t = -1, -2
    (1, (5,), (1,), 4, 0, 1, 1, 2, 3),                   # t = -3: both pads negative
    (1, (4,), (2,), 5, 3, 2, 1, 4, 2),                   # output_padding, groups
    (2, (3, 4), (2, 2), (3, 4), (1, 2), 2, (1, 1), 4, 6),
    (2, (3, 3), (2, 3), 4, 0, 1, (2, 1), 3, 2),          # dilation: extent 3 < 4 and 3 < 4
    (3, (2, 3, 2), (1, 2, 3), (2, 3, 2), (1, 0, 0), 1, 1, 2, 3),
    (3, (2, 2, 3), (2, 1, 1), (3, 2, 1), 0, 3, (1, 1, 1), 3, 3),   # mixed: only some dims short
]


@pytest.mark.parametrize("mode", ["same", "same_lower"])
@pytest.mark.parametrize("case", SHORT_KERNEL_CASES, ids=lambda c: f"{c[0]}d-k{c[2]}-s{c[3]}")
def test_same_with_kernel_shorter_than_stride(case, mode):
    nd, spatial, kernel, stride, op, groups, dilation, c_in, c_out = case
    rng = np.random.default_rng(len(spatial) * 31 + sum(kernel))
    x = rng.standard_normal((2, c_in) + spatial)
    w = rng.standard_normal((c_in, c_out // groups) + kernel)
    b = rng.standard_normal(c_out)
    expected = ref_conv_transpose(x, w, b, stride, mode, op, groups, dilation)
    strides = stride if isinstance(stride, tuple) else (stride,) * nd
    assert expected.shape[2:] == tuple(n * s for n, s in zip(spatial, strides))
    fn = getattr(fastconv, f"conv_transpose{nd}d")
    for algorithm in ALGORITHMS:
        for dtype in DTYPES:
            y = fn(x.astype(dtype), w.astype(dtype), b.astype(dtype), stride, mode, op, groups,
                   dilation, algorithm=algorithm, threads=2)
            assert y.shape == expected.shape and y.dtype == dtype
            assert_close(y, expected, dtype)
    layer = getattr(fastconv, f"ConvTranspose{nd}d")(w, b, stride, mode, op, groups, dilation)
    out = np.full(expected.shape[1:], np.nan)
    assert layer(x[1], out=out) is out  # unbatched, into out=
    assert_close(out, expected[1], np.float64)
    assert fastconv.shapes.conv_transpose_output_size(
        spatial, kernel, stride, mode, op, dilation) == expected.shape[2:]


def test_same_with_kernel_shorter_than_stride_matches_onnx():
    # the onnx package's reference implementation (ConvTranspose, auto_pad SAME_*) where present
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 2, 1))
    for mode, auto_pad in (("same", "SAME_UPPER"), ("same_lower", "SAME_LOWER")):
        node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad=auto_pad,
                                strides=[3, 4], output_padding=[1, 0])
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info(n, TensorProto.DOUBLE, None)
                          for n in ("x", "w")],
            [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        expected = ReferenceEvaluator(model).run(None, {"x": x, "w": w})[0]
        y = fastconv.conv_transpose2d(x, w, stride=(3, 4), padding=mode, output_padding=(1, 0))
        assert y.shape == expected.shape == (1, 3, 9, 16)
        np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    del onnx
