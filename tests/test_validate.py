"""The shared argument checks: each bad value gets the right exception naming the argument."""

import numpy as np
import pytest

from fastconv import _validate as v


def test_check_int():
    assert v.check_int(3, "k") == 3
    assert v.check_int(np.int64(3), "k", minimum=1) == 3
    for bad in (1.0, True, np.float32(2), "3", None):
        with pytest.raises(TypeError, match="k must be an int"):
            v.check_int(bad, "k")
    with pytest.raises(ValueError, match="k must be >= 1, got 0"):
        v.check_int(0, "k", minimum=1)


def test_int_tuple():
    assert v.int_tuple(2, 3, "stride") == (2, 2, 2)
    assert v.int_tuple((1, 2), 2, "stride") == (1, 2)
    assert v.int_tuple(np.array([1, 2]), 2, "stride") == (1, 2)
    with pytest.raises(ValueError, match=r"stride must be an int or a tuple of 2 ints"):
        v.int_tuple((1, 2, 3), 2, "stride")
    with pytest.raises(ValueError, match=r"stride\[1\] must be >= 1, got 0"):
        v.int_tuple((1, 0), 2, "stride")
    with pytest.raises(TypeError, match=r"stride\[0\] must be an int"):
        v.int_tuple((1.5, 2), 2, "stride")
    assert v.int_tuple((0, 0), 2, "padding", minimum=0) == (0, 0)


@pytest.mark.parametrize("bad, kind", [
    (np.zeros(3, complex), "complex"), (np.array(["a"]), "string"),
    (np.array([object()]), "object"), (np.zeros(2, "datetime64[s]"), "datetime"),
])
def test_check_array_rejects_non_real(bad, kind):
    with pytest.raises(TypeError, match=f"x must be a real numeric array.*{kind}"):
        v.check_array(bad, "x")


def test_check_array_none_and_ragged():
    with pytest.raises(TypeError, match="weight must be an array, got None"):
        v.check_array(None, "weight")
    with pytest.raises(TypeError, match="x could not be converted"):
        v.check_array([[1, 2], [3]], "x")


@pytest.mark.parametrize("dtypes, expected", [
    ((np.float32,), np.float32), ((np.float64,), np.float64), ((np.float16,), np.float32),
    ((np.int8,), np.float32), ((np.uint8,), np.float32), ((np.int32,), np.float64),
    ((np.int64,), np.float64), ((np.float32, np.float64), np.float64),
    ((np.bool_,), np.float32), ((np.longdouble,), np.float64),
])
def test_compute_dtype_promotion(dtypes, expected):
    arrays = [np.zeros(1, dt) for dt in dtypes]
    assert v.compute_dtype(*arrays, None) == expected


def test_batched():
    x = np.zeros((3, 5, 5))
    xb, unbatched = v.batched(x, 2)
    assert xb.shape == (1, 3, 5, 5) and unbatched
    xb, unbatched = v.batched(np.zeros((2, 3, 5, 5)), 2)
    assert xb.shape == (2, 3, 5, 5) and not unbatched
    with pytest.raises(ValueError, match=r"x must have 4 dims \(N, C, H, W\).*got shape \(5, 5\)"):
        v.batched(np.zeros((5, 5)), 2)


def test_check_out():
    x = np.zeros((2, 3))
    assert v.check_out(None, (2, 3), np.dtype(np.float64), [x]) is None
    good = np.empty((2, 3))
    assert v.check_out(good, (2, 3), np.dtype(np.float64), [x]) is good
    with pytest.raises(ValueError, match=r"out must have shape \(2, 4\)"):
        v.check_out(good, (2, 4), np.dtype(np.float64), [x])
    with pytest.raises(ValueError, match="out must have dtype float32"):
        v.check_out(good, (2, 3), np.dtype(np.float32), [x])
    with pytest.raises(ValueError, match="C-contiguous"):
        v.check_out(np.empty((3, 2)).T, (2, 3), np.dtype(np.float64), [x])
    ro = np.empty((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        v.check_out(ro, (2, 3), np.dtype(np.float64), [x])
    with pytest.raises(ValueError, match="overlap"):
        v.check_out(x, (2, 3), np.dtype(np.float64), [x])
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        v.check_out([[0.0] * 3] * 2, (2, 3), np.dtype(np.float64), [x])


def test_check_choice():
    assert v.check_choice("zeros", "padding_mode", ("zeros", "reflect")) == "zeros"
    with pytest.raises(ValueError, match="padding_mode must be one of 'zeros', 'reflect', got 'x'"):
        v.check_choice("x", "padding_mode", ("zeros", "reflect"))
