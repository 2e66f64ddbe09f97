"""The packed GEMM (fastconv/gemm.h) through fastconv._testing.gemm, against float64 matmul.

Every case runs on every ISA available here (the others skipped with the reason), float32 and
float64, 1 and 2 threads. Sizes are chosen relative to the ISA's MR / NR / KC / MC / NC so each
edge of the tiling is met: partial row panels, partial column panels, several K blocks, several
MC and NC blocks, k = 1, k = 0.
"""

import numpy as np
import pytest

from fastconv import _testing

DTYPES = (np.float32, np.float64)


def expected_and_tolerance(a, b, bias=None, acc=None):
    """float64 a @ b (+ bias) (+ acc), and an elementwise forward-error bound for the dtype."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = a64 @ b64
    scale = np.abs(a64) @ np.abs(b64)
    if bias is not None:
        ref = ref + bias.astype(np.float64)[:, None]
        scale = scale + np.abs(bias.astype(np.float64))[:, None]
    if acc is not None:
        ref = ref + acc
        scale = scale + np.abs(acc)
    eps = np.finfo(np.result_type(a, b, np.float32)).eps
    # |fl(sum) - sum| <= ~(k + 2) eps sum|terms|; the inputs were rounded to dtype as well
    tol = 2 * (a.shape[1] + 4) * eps * scale + np.finfo(np.float64).tiny
    return ref, tol


def assert_gemm_close(actual, a, b, bias=None, acc=None):
    ref, tol = expected_and_tolerance(a, b, bias, acc)
    assert actual.shape == ref.shape
    err = np.abs(actual - ref)
    worst = np.unravel_index(np.argmax(err - tol), err.shape) if err.size else None
    assert np.all(err <= tol), f"max excess at {worst}: got {actual[worst]}, want {ref[worst]}"


def case_shape(case, cfg):
    """(M, K, N) of a named edge case for a micro-kernel config."""
    mr, nr, kc, mc, nc = (cfg[key] for key in ("mr", "nr", "kc", "mc", "nc"))
    return {
        "one_tile": (mr, 8, nr),
        "m_below_mr": (mr - 1, 17, 2 * nr),
        "m_one": (1, 9, nr + 1),
        "m_ragged": (2 * mr + 3, 20, nr),
        "n_below_nr": (mr, 10, nr - 1),
        "n_one": (2 * mr, 12, 1),
        "n_ragged": (mr + 2, 7, 3 * nr + 5),
        "k_one": (mr + 1, 1, nr + 3),
        "k_blocks": (mr + 3, 2 * kc + 37, nr + 2),
        "several_mc_blocks": (mc + mr + 1, 5, nr),
        "several_nc_blocks": (3, 4, nc + nr + 3),
        "everything_ragged": (3 * mr - 1, kc + 1, 2 * nr + 7),
        # few column panels, many rows: on 2 threads B is packed once into a shared buffer
        "small_n_tall": (8 * mr + 3, 2 * kc + 5, 2 * nr + 3),
        # at most MC rows: B goes in L2-sized blocks (several across N), several K blocks
        "wide_deep": (2 * mr + 1, kc + 7, 1000),
    }[case]


CASES = ("one_tile", "m_below_mr", "m_one", "m_ragged", "n_below_nr", "n_one", "n_ragged",
         "k_one", "k_blocks", "several_mc_blocks", "several_nc_blocks", "everything_ragged",
         "small_n_tall", "wide_deep")


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_edge_shapes(isa, case, dtype, threads):
    cfg = _testing.gemm_config(isa, dtype)
    m, k, n = case_shape(case, cfg)
    rng = np.random.default_rng(CASES.index(case))
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = _testing.gemm(a, b, threads=threads, isa=isa)
    assert out.dtype == dtype
    assert_gemm_close(out, a, b)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_and_accumulate(isa, dtype, threads):
    cfg = _testing.gemm_config(isa, dtype)
    m, k, n = 2 * cfg["mr"] + 1, cfg["kc"] + 5, 2 * cfg["nr"] + 3
    rng = np.random.default_rng(1)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    bias = rng.standard_normal(m).astype(dtype)
    acc = rng.standard_normal((m, n))
    acc_before = acc.copy()
    assert_gemm_close(_testing.gemm(a, b, bias, threads=threads, isa=isa), a, b, bias)
    out = _testing.gemm(a, b, threads=threads, isa=isa, accumulate_into=acc)
    assert_gemm_close(out, a, b, acc=acc.astype(dtype))
    out = _testing.gemm(a, b, bias, threads=threads, isa=isa, accumulate_into=acc)
    assert_gemm_close(out, a, b, bias, acc.astype(dtype))
    np.testing.assert_array_equal(acc, acc_before)  # the hook never writes its input


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_width_of_the_last_panel(isa, dtype):
    # the kernels take narrow last panels their own way (padding vectors skipped, a few
    # leftover columns as row vectors): every width 1..NR, with bias, accumulation, 2 K blocks
    cfg = _testing.gemm_config(isa, dtype)
    m, k = cfg["mr"] + 3, cfg["kc"] + 3
    rng = np.random.default_rng(4)
    a = rng.standard_normal((m, k)).astype(dtype)
    bias = rng.standard_normal(m).astype(dtype)
    for last in range(1, cfg["nr"] + 1):
        n = cfg["nr"] + last
        b = rng.standard_normal((k, n)).astype(dtype)
        acc = rng.standard_normal((m, n)).astype(dtype)
        out = _testing.gemm(a, b, bias, isa=isa, accumulate_into=acc)
        assert_gemm_close(out, a, b, bias, acc)


@pytest.mark.parametrize("dtype", DTYPES)
def test_k_zero_gives_bias_plus_accumulate(isa, dtype):
    a, b = np.zeros((5, 0), dtype), np.zeros((0, 7), dtype)
    bias = np.arange(5, dtype=dtype)
    acc = np.full((5, 7), 2.0, dtype)
    np.testing.assert_array_equal(_testing.gemm(a, b, isa=isa), np.zeros((5, 7)))
    np.testing.assert_array_equal(_testing.gemm(a, b, bias, isa=isa, accumulate_into=acc),
                                  2.0 + bias[:, None] + np.zeros((5, 7)))


def strided_views(rng, dtype, m, k, n):
    """(name, a, b) pairs of non-contiguous views with the given logical shapes."""
    base_a = rng.standard_normal((2 * m + 1, 3 * k + 2)).astype(dtype)
    base_b = rng.standard_normal((2 * k + 1, 2 * n + 3)).astype(dtype)
    contiguous_b = np.ascontiguousarray(base_b[:k, :n])
    return [
        ("every_other", base_a[::2, ::3][:m, :k], base_b[::2, ::2][:k, :n]),
        ("transposed", np.asfortranarray(base_a[:m, :k]), np.asfortranarray(contiguous_b)),
        ("transposed_views", np.ascontiguousarray(base_a[:m, :k].T).T,
         np.ascontiguousarray(contiguous_b.T).T),
        ("negative_strides", base_a[m - 1::-1, k - 1::-1], base_b[k - 1::-1, n - 1::-1]),
        ("broadcast_rows", np.broadcast_to(base_a[0, :k], (m, k)),
         np.broadcast_to(base_b[:k, :1], (k, n))),
    ]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_inputs(isa, dtype, threads):
    cfg = _testing.gemm_config(isa, dtype)
    m, k, n = cfg["mr"] + 3, cfg["kc"] + 9, cfg["nr"] + 5
    rng = np.random.default_rng(2)
    for name, a, b in strided_views(rng, dtype, m, k, n):
        assert a.shape == (m, k) and b.shape == (k, n), name
        assert not (a.flags.c_contiguous and b.flags.c_contiguous), name
        out = _testing.gemm(a, b, threads=threads, isa=isa)
        assert_gemm_close(out, np.array(a), np.array(b))


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_result_for_every_thread_count(isa, dtype):
    # each C tile is owned by one thread and sums its K blocks in the same order: bitwise equal
    cfg = _testing.gemm_config(isa, dtype)
    rng = np.random.default_rng(3)
    for m, k, n in [(3 * cfg["mr"] + 1, 2 * cfg["kc"] + 3, 5 * cfg["nr"] + 1),
                    (4 * cfg["mr"], cfg["kc"] + 1, 3)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        b = rng.standard_normal((k, n)).astype(dtype)
        one = _testing.gemm(a, b, threads=1, isa=isa)
        for threads in (2, 3):
            np.testing.assert_array_equal(_testing.gemm(a, b, threads=threads, isa=isa), one)


def test_mixed_dtypes_compute_in_float64(isa):
    a = np.ones((3, 4), np.float32)
    b = np.full((4, 2), 1 + 2**-30, np.float64)  # not representable in float32
    out = _testing.gemm(a, b, isa=isa)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.full((3, 2), 4 * (1 + 2**-30)))


def test_special_values_propagate(isa):
    a = np.ones((4, 3), np.float32)
    b = np.ones((3, 5), np.float32)
    a[1, 2], b[0, 3] = np.nan, np.inf
    out = _testing.gemm(a, b, isa=isa)
    assert np.isnan(out[1]).all()
    assert np.isinf(out[[0, 2, 3], 3]).all()
    assert np.isfinite(np.delete(out[[0, 2, 3]], 3, axis=1)).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_config_names_the_tile(isa, dtype):
    cfg = _testing.gemm_config(isa, dtype)
    prefix = "fc_gemm_f32_" if dtype == np.float32 else "fc_gemm_f64_"
    assert cfg["kernel"].startswith(f"{prefix}{cfg['mr']}x{cfg['nr']}__")
    assert cfg["kc"] > 0 and cfg["mc"] % cfg["mr"] == 0 and cfg["nc"] % cfg["nr"] == 0


def test_peak_is_positive_and_finite(isa):
    peak = _testing.peak_gflops(isa, "float32", threads=1, repeats=1)
    assert 0.1 < peak < 1e5


@pytest.mark.parametrize(("a_shape", "b_shape", "kwargs", "match"), [
    ((2, 3), (4, 5), {}, "do not multiply"),
    ((2, 3, 1), (3, 5), {}, "2-D"),
    ((2, 3), (3, 5), {"bias": np.zeros(3)}, "bias must have shape"),
    ((2, 3), (3, 5), {"accumulate_into": np.zeros((5, 2))}, "accumulate_into"),
    ((2, 3), (3, 5), {"isa": "sse9"}, "isa must be one of"),
])
def test_hook_rejects_bad_arguments(a_shape, b_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _testing.gemm(np.zeros(a_shape), np.zeros(b_shape), **kwargs)


def test_concurrent_calls_are_independent(isa):
    # reentrant: no global state, GIL released; each call must give its own exact answer
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(4)
    problems = [(rng.standard_normal((40 + i, 70)).astype(np.float32),
                 rng.standard_normal((70, 90 - i)).astype(np.float32)) for i in range(6)]
    alone = [_testing.gemm(a, b, isa=isa, threads=1 + i % 2) for i, (a, b) in enumerate(problems)]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(lambda i: _testing.gemm(*problems[i], isa=isa,
                                                          threads=1 + i % 2), range(6)))
    for one, other in zip(alone, together):
        np.testing.assert_array_equal(one, other)
