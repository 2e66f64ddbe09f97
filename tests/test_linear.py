"""fastconv.linear / Linear against a float64 reference (x @ weight.T + bias, by einsum)."""

import numpy as np
import pytest
from reference import assert_close

import fastconv


def ref_linear(x, w, b=None):
    y = np.einsum("...i,oi->...o", np.asarray(x, np.float64), np.asarray(w, np.float64))
    return y if b is None else y + np.asarray(b, np.float64)


@pytest.mark.parametrize("shape", [(7,), (1, 7), (5, 7), (2, 3, 7), (33, 7)])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_matches_reference(shape, bias, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((11, 7)).astype(dtype)
    b = rng.standard_normal(11).astype(dtype) if bias else None
    expected = ref_linear(x, w, b)
    y = fastconv.linear(x, w, b)
    assert y.shape == shape[:-1] + (11,) and y.dtype == dtype
    assert_close(y, expected, dtype)
    layer = fastconv.Linear(w, b)
    assert_close(layer(x), expected, dtype)
    assert_close(layer(x), expected, dtype)  # cached plan


@pytest.mark.parametrize("threads", [1, 2])
def test_linear_large_and_threads(threads):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 512)).astype(np.float32)
    w = rng.standard_normal((1000, 512)).astype(np.float32)
    b = rng.standard_normal(1000).astype(np.float32)
    assert_close(fastconv.linear(x, w, b, threads=threads), ref_linear(x, w, b), np.float32)
    assert_close(fastconv.Linear(w, b)(x[:1], threads=threads), ref_linear(x[:1], w, b),
                 np.float32)


def test_linear_out_strided_and_promotion():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 10))[:, ::2]  # non-contiguous
    w = rng.standard_normal((3, 5)).astype(np.float32)
    out = np.empty((4, 3))
    y = fastconv.linear(x, w, out=out)
    assert y is out
    assert_close(out, ref_linear(x, w), np.float64)
    yi = fastconv.linear(np.ones((2, 5), np.int8), w)
    assert yi.dtype == np.float32
    layer = fastconv.Linear(w)
    out1 = np.empty(3, np.float32)
    assert layer(np.ones(5, np.float32), out=out1) is out1
    assert_close(out1, ref_linear(np.ones(5), w), np.float32)


def test_linear_empty():
    w = np.ones((3, 4), np.float32)
    assert fastconv.linear(np.ones((0, 4), np.float32), w).shape == (0, 3)
    y = fastconv.linear(np.ones((2, 0), np.float32), np.ones((3, 0), np.float32),
                        np.array([1, 2, 3], np.float32))
    assert y.tolist() == [[1, 2, 3], [1, 2, 3]]


def test_linear_weight_copied():
    w = np.ones((2, 2), np.float32)
    layer = fastconv.Linear(w)
    w[:] = 5
    assert layer(np.ones(2, np.float32)).tolist() == [2, 2]
    assert "in_features=2" in repr(layer)


@pytest.mark.parametrize("args, match", [
    ((np.ones((2, 3)), np.ones((4, 5))), "x must have shape"),
    ((np.ones((2, 3)), np.ones(3)), "weight must be 2-D"),
    ((np.ones((2, 3)), np.ones((4, 3)), np.ones(3)), "bias must have shape"),
])
def test_linear_errors(args, match):
    with pytest.raises(ValueError, match=match):
        fastconv.linear(*args)


def test_linear_bad_dtype():
    with pytest.raises(TypeError, match="x"):
        fastconv.linear(np.ones((2, 3), complex), np.ones((4, 3)))
