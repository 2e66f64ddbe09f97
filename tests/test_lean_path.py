"""The functional convolution's lean path (a plan keyed by the plain call signature) answers
exactly as the full path: it never serves a call the full path would refuse or plan otherwise."""

import numpy as np
import pytest
from reference import assert_close, ref_conv

import fastconv
from fastconv import _threads
from fastconv import conv as conv_module


@pytest.fixture(autouse=True)
def _fresh_plans(monkeypatch):
    monkeypatch.setattr(conv_module, "_FUNCTION_PLANS", {})


def _data(shape=(1, 4, 6, 6), wshape=(3, 4, 3, 3), dtype=np.float32):
    rng = np.random.default_rng(5)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(wshape).astype(dtype)


@pytest.mark.parametrize("bad", [dict(stride=True), dict(stride=1.0), dict(groups=True),
                                 dict(padding=1.0), dict(dilation=True)])
def test_cached_plan_does_not_admit_lookalike_arguments(bad):
    x, w = _data()
    fastconv.conv2d(x, w)
    fastconv.conv2d(x, w)  # served by the lean path
    with pytest.raises((TypeError, ValueError)):
        fastconv.conv2d(x, w, **bad)


def test_repeated_calls_match_the_reference():
    x, w = _data()
    b = np.arange(3, dtype=np.float32)
    for padding in (0, 1, "same"):
        want = ref_conv(x, w, b, padding=padding)
        for _ in range(3):
            assert_close(fastconv.conv2d(x, w, b, padding=padding), want, np.float32)


def test_non_finite_weight_after_a_cached_padded_plan():
    x, w = _data()
    fastconv.conv2d(x, w, padding=1)
    fastconv.conv2d(x, w, padding=1)
    w[0, 0, 0, 0] = np.inf
    y = fastconv.conv2d(x, w, padding=1)
    # the padding zeros times the infinite tap give NaN at the border, as in the reference
    assert np.isnan(y[0, 0, 0, 0]) and not np.isnan(y[0, 1]).any()


def test_changed_inputs_replan():
    x, w = _data()
    fastconv.conv2d(x, w)
    y64 = fastconv.conv2d(x.astype(np.float64), w)
    assert y64.dtype == np.float64
    xt = np.asfortranarray(x)
    assert_close(fastconv.conv2d(xt, w), ref_conv(x, w, None), np.float32)
    assert fastconv.conv2d(x[0], w).shape == (3, 4, 4)


def test_default_threads_follow_the_default_for_large_work(monkeypatch):
    seen = []
    real = _threads.for_work

    def spy(allowed, work, *rest):
        seen.append(allowed)
        return real(allowed, work, *rest)

    monkeypatch.setattr(_threads, "for_work", spy)
    x, w = _data((1, 64, 40, 40), (64, 64, 3, 3))  # 200M multiplications: many threads' worth
    with fastconv.num_threads(1):
        fastconv.conv2d(x, w)
    seen.clear()
    with fastconv.num_threads(2):
        fastconv.conv2d(x, w)  # must not reuse the 1-thread plan
    assert 2 in seen
