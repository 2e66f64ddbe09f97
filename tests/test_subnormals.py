"""The subnormal policy (API.md, "Subnormals"): by default every operator and algorithm flushes
subnormal inputs and results to zero on every thread it uses; ``set_flush_denormal(False)`` /
``FASTCONV_FLUSH_DENORMAL=0`` give IEEE arithmetic; the caller's floating-point state is the
same after a call as before it; concurrent callers with different settings do not leak into
each other. Speed on subnormal inputs is measured in benchmarks/bench_subnormals.py."""

import concurrent.futures
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from reference import ref_avg_pool, ref_conv, ref_conv_transpose, ref_lp_pool, ref_max_pool

import fastconv
from fastconv import _cpu, _threads
from fastconv import conv as conv_module

FLUSH_BITS = _cpu.fp_flush_bits()
pytestmark = pytest.mark.skipif(FLUSH_BITS == 0, reason="no flush-to-zero control on this CPU")


def _tiny(shape, dtype, seed=0):
    """Subnormal values of both signs, near the top of the subnormal range (full precision)."""
    r = np.random.default_rng(seed)
    mag = r.uniform(0.25, 0.9, shape) * np.finfo(dtype).tiny
    return (mag * r.choice([-1.0, 1.0], shape)).astype(dtype)


def _weight(shape, dtype, seed=1):
    # large enough that tiny * weight sums are normal numbers: IEEE gives a visible answer
    scale = 1e4 if dtype == np.float32 else 1e10
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# (name, call(x, w) -> y, reference(x64, w64)); every algorithm of every convolution family
CONVS = [
    *[(f"conv2d-{alg}", lambda x, w, t, a=alg: fastconv.conv2d(x, w, padding=1, algorithm=a,
                                                               threads=t),
       lambda x, w: ref_conv(x, w, padding=1))
      for alg in ("direct", "im2col", "winograd_f2", "winograd_f4", "winograd_f6")],
    ("conv2d-depthwise", lambda x, w, t: fastconv.conv2d(x, w[:, :1], padding=1, groups=8,
                                                         threads=t),
     lambda x, w: ref_conv(x, w[:, :1], padding=1, groups=8)),
    ("conv1d", lambda x, w, t: fastconv.conv1d(x[..., 0, :], w[..., 0, :], threads=t),
     lambda x, w: ref_conv(x[..., 0, :], w[..., 0, :])),
    ("conv3d", lambda x, w, t: fastconv.conv3d(x[:, :, None], w[:, :, None], threads=t),
     lambda x, w: ref_conv(x[:, :, None], w[:, :, None])),
    *[(f"conv_transpose2d-{alg}",
       lambda x, w, t, a=alg: fastconv.conv_transpose2d(x, w, stride=2, algorithm=a, threads=t),
       lambda x, w: ref_conv_transpose(x, w, stride=2))
      for alg in ("gemm", "phase")],
]
POOLS = [
    ("max_pool2d", lambda x, t: fastconv.max_pool2d(x, 3, 1, 1, threads=t),
     lambda x: ref_max_pool(x, 3, 1, 1)),
    ("avg_pool2d", lambda x, t: fastconv.avg_pool2d(x, 3, 1, 1, threads=t),
     lambda x: ref_avg_pool(x, 3, 1, 1)),
    # p = 1: with p = 2 the squares of subnormals underflow to zero in IEEE arithmetic too
    ("lp_pool2d", lambda x, t: fastconv.lp_pool2d(x, 1.0, 2, threads=t),
     lambda x: ref_lp_pool(x, 1.0, 2)),
    ("adaptive_avg_pool2d", lambda x, t: fastconv.adaptive_avg_pool2d(x, 3, threads=t), None),
    ("global_avg_pool", lambda x, t: fastconv.global_avg_pool(x, threads=t), None),
]


@pytest.fixture(autouse=True)
def _default_policy(monkeypatch):
    """Each test starts from the default setting, and every call runs on the threads it asks for
    (small problems would otherwise stay on one thread and the workers go untested)."""
    monkeypatch.setattr(_threads, "for_work", lambda allowed, *work: allowed)
    monkeypatch.setattr(conv_module, "_FUNCTION_PLANS", {})
    before = fastconv.get_flush_denormal()
    yield
    fastconv.set_flush_denormal(before)


def test_default_is_flushing_and_setting_round_trips():
    assert fastconv.get_flush_denormal() is True  # the environment of the test run sets none
    fastconv.set_flush_denormal(False)
    assert fastconv.get_flush_denormal() is False
    with fastconv.flush_denormal(True):
        assert fastconv.get_flush_denormal() is True
    assert fastconv.get_flush_denormal() is False
    with pytest.raises(TypeError, match="flag must be True or False, got 'yes'"):
        fastconv.set_flush_denormal("yes")
    with pytest.raises(TypeError, match="got 2"):
        fastconv.flush_denormal(2).__enter__()


@pytest.mark.parametrize("value, expected", [("0", False), ("false", False), ("1", True),
                                             ("", True)])
def test_environment_variable(value, expected):
    code = ("import numpy as np, fastconv; x = np.full((1, 1, 4), 1e-40, np.float32); "
            "print(fastconv.get_flush_denormal(), fastconv.avg_pool1d(x, 2)[0, 0, 0] != 0)")
    env = dict(os.environ, FASTCONV_FLUSH_DENORMAL=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == [str(expected), str(not expected)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, call, ref", CONVS, ids=[c[0] for c in CONVS])
def test_convolutions(name, call, ref, dtype, threads):
    x = _tiny((2, 8, 10, 12), dtype)
    w = _weight((8, 8, 3, 3), dtype)
    if name.startswith("conv_transpose"):
        w = _weight((8, 4, 3, 3), dtype)
    fastconv.set_flush_denormal(False)
    expected = ref(x.astype(np.float64), w.astype(np.float64))
    y = call(x, w, threads)
    assert np.abs(expected).max() > 100 * np.finfo(dtype).tiny  # IEEE: a normal-sized answer
    err = np.abs(y - expected).max() / np.abs(expected).max()
    assert err < (1e-5 if dtype == np.float32 else 1e-10), (name, err)
    fastconv.set_flush_denormal(True)
    y = call(x, w, threads)
    np.testing.assert_array_equal(y, 0.0, err_msg=f"{name}: subnormal inputs count as zero")
    # normal inputs give the same answer either way
    x = (x / np.finfo(dtype).tiny).astype(dtype)
    fastconv.set_flush_denormal(False)
    ieee = call(x, w, threads)
    fastconv.set_flush_denormal(True)
    np.testing.assert_array_equal(call(x, w, threads), ieee)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, call, ref", POOLS, ids=[p[0] for p in POOLS])
def test_pools(name, call, ref, dtype, threads):
    x = _tiny((2, 8, 10, 12), dtype)
    tiny = np.finfo(dtype).tiny
    fastconv.set_flush_denormal(False)
    y = call(x, threads)
    if ref is not None:
        expected = ref(x.astype(np.float64))
        # IEEE subnormal arithmetic: absolute error a few subnormal spacings
        assert np.abs(y - expected).max() <= 1e-3 * tiny, name
    assert np.count_nonzero(y) > y.size // 2, name
    fastconv.set_flush_denormal(True)
    y = call(x, threads)
    if name == "max_pool2d":  # a comparison of subnormals picks one of them or zero
        assert np.all(np.abs(y) < tiny), name
    else:
        np.testing.assert_array_equal(y, 0.0, err_msg=name)


@pytest.mark.parametrize("flush", [True, False])
@pytest.mark.parametrize("caller_bits", [0, "flush"])
def test_caller_state_is_restored(flush, caller_bits):
    """The caller's control word (its own flush bits included) is the same after every call, and
    the OpenMP workers leave with the caller's flush bits, not fastconv's mode (other libraries'
    regions run on them)."""
    x = _tiny((1, 8, 9, 9), np.float32)
    w = _weight((8, 8, 3, 3), np.float32)
    before = _cpu.fp_state()
    bits = FLUSH_BITS if caller_bits else 0
    state = (before & ~FLUSH_BITS) | bits
    _cpu.fp_set_state(state)
    try:
        fastconv.set_flush_denormal(flush)
        calls = [
            lambda: fastconv.conv2d(x, w, padding=1, algorithm="im2col", threads=2),
            lambda: fastconv.conv2d(x, w, padding=1, algorithm="winograd_f4", threads=2),
            lambda: fastconv.conv2d(x, w, padding=1, algorithm="direct", threads=2),
            lambda: fastconv.conv_transpose2d(x, w, stride=2, threads=2),
            lambda: fastconv.max_pool2d(x, 2, threads=2),
            lambda: fastconv.Conv2d(w, padding=1)(x, threads=2),
        ]
        for call in calls:
            call()
            assert _cpu.fp_state() == state
        if fastconv.config()["openmp"]:  # the team leaves with the caller's own flush bits
            assert _cpu.fp_team_flushing(2) == (2 if caller_bits else 0)
    finally:
        _cpu.fp_set_state(before)


def test_state_restored_after_an_error():
    before = _cpu.fp_state()
    with pytest.raises(ValueError):
        fastconv.conv2d(np.ones((1, 2, 3, 3), np.float32), np.ones((2, 3, 3, 3), np.float32))
    assert _cpu.fp_state() == before


def test_concurrent_callers_keep_their_own_setting():
    """Python threads with different settings, calling at once, each get their own answer."""
    x = _tiny((1, 16, 24, 24), np.float32)
    w = _weight((16, 16, 3, 3), np.float32)
    with fastconv.flush_denormal(False):
        ieee = fastconv.conv2d(x, w, padding=1, threads=1)
    assert np.abs(ieee).max() > 0
    start = threading.Barrier(4)

    def work(flush):
        start.wait()
        with fastconv.flush_denormal(flush):
            results = [fastconv.conv2d(x, w, padding=1, threads=t) for t in (1, 2) * 10]
            state = _cpu.fp_state() & FLUSH_BITS
        return flush, results, state

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        for flush, results, state in pool.map(work, [True, False, True, False]):
            assert state == 0
            for y in results:
                if flush:
                    np.testing.assert_array_equal(y, 0.0)
                else:
                    np.testing.assert_allclose(y, ieee, rtol=1e-5,
                                               atol=1e-5 * np.abs(ieee).max())


@pytest.mark.skipif(not fastconv.config()["openmp"], reason="serial build")
def test_workers_born_in_a_flushing_call_do_not_keep_its_mode():
    """libgomp creates its workers inside the first parallel call, from a caller that is then
    flushing: they inherit that state and must still leave with the caller's own."""
    code = ("import numpy as np, fastconv; from fastconv import _cpu\n"
            "x = np.ones((1, 64, 56, 56), np.float32); w = np.ones((64, 64, 3, 3), np.float32)\n"
            "before = _cpu.fp_state()\n"
            "for alg in ('im2col', 'direct', 'winograd_f4'):\n"
            "    fastconv.conv2d(x, w, padding=1, algorithm=alg, threads=2)\n"
            "print(_cpu.fp_team_flushing(2), _cpu.fp_state() == before)\n")
    env = {k: v for k, v in os.environ.items() if k != "FASTCONV_FLUSH_DENORMAL"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["0", "True"]
