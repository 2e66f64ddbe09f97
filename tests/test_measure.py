"""``algorithm="measure"`` and its cache (fastconv._measure). No timing is asserted: only that
the choice is a valid candidate, computes what ``"auto"`` computes, and that no state of the
cache file or directory can break a call."""

import json
import multiprocessing
import os

import numpy as np
import pytest
from reference import ref_conv

import fastconv
from fastconv import _algorithms, _dispatch, _measure
from fastconv._version import __version__

TOL = 1e-5  # the accuracy policy: every candidate measure may pick is within it


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """A fresh cache directory and memory per test, and short measurements."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(directory))
    monkeypatch.setattr(_measure, "REPEATS", 2)
    monkeypatch.setattr(_measure, "MIN_TIME", 0.0)
    _measure.clear_memory()
    yield directory
    _measure.clear_memory()


def _rand(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONV_CASES = [  # (x shape, weight shape, kwargs)
    ((1, 16, 12, 12), (16, 16, 3, 3), dict(padding=1)),  # Winograd tiles are candidates
    ((2, 8, 9, 11), (12, 8, 3, 3), dict(stride=2, padding=(1, 0))),
    ((1, 8, 10, 10), (8, 1, 3, 3), dict(groups=8, padding="same")),  # depthwise
    ((1, 6, 33), (4, 6, 5), dict(dilation=2, padding_mode="reflect", padding=4)),
    ((1, 4, 5, 6, 7), (4, 2, 3, 3, 3), dict(groups=2, padding=1)),
    ((1, 8, 10, 10), (8, 8, 1, 1), {}),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs", CONV_CASES)
def test_conv_measure_is_a_candidate_and_matches_auto(x_shape, w_shape, kwargs):
    ndim = len(x_shape) - 2
    w, b, x = _rand(w_shape, 1), _rand(w_shape[:1], 2), _rand(x_shape, 3)
    cls = getattr(fastconv, f"Conv{ndim}d")
    measured = cls(w, b, algorithm="measure", **kwargs)
    auto = cls(w, b, **kwargs)
    y = measured(x)
    choice = measured.algorithm_for(x_shape)
    # the candidates: every algorithm that can serve the shape within the accuracy policy
    valid = [a for a in _algorithms.MEASURED
             if _algorithms.within_accuracy_policy(a) and _serves(cls, w, b, kwargs, a, x_shape)]
    assert choice in valid and "winograd_f6" not in valid
    assert auto.algorithm_for(x_shape) in valid
    expected = ref_conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                              **kwargs)
    assert np.abs(y - expected).max() <= TOL * np.abs(expected).max()
    np.testing.assert_allclose(y, auto(x), rtol=0, atol=TOL * np.abs(expected).max())
    # unbatched input, and a second call answered from the layer's cache
    np.testing.assert_array_equal(measured(x[0]), y[0])


def _serves(cls, w, b, kwargs, algorithm, shape) -> bool:
    try:
        cls(w, b, algorithm=algorithm, **kwargs).algorithm_for(shape)
    except ValueError:
        return False
    return True


def test_winograd_candidates_exclude_f6():
    p = _algorithms.Problem(1, 16, 16, 1, (12, 12), (3, 3), (1, 1), (1, 1), ((1, 1),) * 2,
                            (12, 12))
    assert _algorithms.candidates(p) == ("direct", "im2col", "winograd_f2", "winograd_f4")
    assert _algorithms.choose("auto", p) in _algorithms.candidates(p)


@pytest.mark.parametrize("stride, kernel", [(2, 4), (2, 2)])
def test_conv_transpose_measure_matches_auto(stride, kernel):
    w, b, x = _rand((6, 4, kernel, kernel), 1), _rand((4,), 2), _rand((2, 6, 7, 5), 3)
    measured = fastconv.ConvTranspose2d(w, b, stride=stride, padding=1, algorithm="measure")
    auto = fastconv.ConvTranspose2d(w, b, stride=stride, padding=1)
    assert measured.algorithm == "measure"
    y = measured(x)
    assert measured.algorithm_for(x.shape) in ("gemm", "phase")
    scale = np.abs(y).max()
    np.testing.assert_allclose(y, auto(x), rtol=0, atol=TOL * scale)
    # output_size picks another geometry: a separate measurement, same answer as auto
    y2 = measured(x, output_size=(y.shape[2] + 1, y.shape[3] + 1))
    np.testing.assert_allclose(y2, auto(x, output_size=y2.shape[2:]), rtol=0, atol=TOL * scale)


def test_functional_call_refuses_measure():
    with pytest.raises(ValueError, match="layer objects"):
        fastconv.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), algorithm="measure")
    with pytest.raises(ValueError, match="layer objects"):
        fastconv.conv_transpose1d(np.ones((1, 1, 4)), np.ones((1, 1, 3)), algorithm="measure")


def test_key_holds_every_field():
    from fastconv._config import _cpu_model

    w = np.ones((8, 4, 3, 3), np.float32)
    layer = fastconv.Conv2d(w, padding=1, algorithm="measure")
    key = layer._measure_key((2, 4, 9, 10), np.dtype("float32"), 3)
    fields = dict(f.split("=", 1) for f in key.split("|"))
    assert fields["fastconv"] == __version__
    assert fields["cpu"].startswith(_cpu_model())
    assert fields["isa"] == _dispatch.current_isa()
    assert fields["shape"] == "2x4x9x10"
    assert fields["dtype"] == "float32"
    assert fields["threads"] == "3"
    assert fields["op"] == "conv2d" and fields["weight"] == "(8, 4, 3, 3)"
    assert key != layer._measure_key((2, 4, 9, 10), np.dtype("float32"), 1)
    assert key != layer._measure_key((2, 4, 9, 10), np.dtype("float64"), 3)
    assert key != _measure.key("conv2d", {}, (2, 4, 9, 10), "float32", 3, isa="scalar")


def test_cache_file_roundtrip(cache_dir):
    layer = fastconv.Conv2d(_rand((8, 8, 3, 3)), padding=1, algorithm="measure")
    first = layer._measure_choice((1, 8, 8, 8), np.dtype("float32"), 1)
    assert first.source == "measured" and first.saved
    path = cache_dir / _measure.CACHE_FILE
    data = json.loads(path.read_text())
    assert data["format"] == _measure.FORMAT
    (key, entry), = data["entries"].items()
    assert entry["algorithm"] == first.algorithm and set(entry["seconds"]) == set(first.seconds)
    assert _measure.load(str(path)) == data["entries"]
    # the same layer again: from memory; a fresh process (memory cleared): from the file
    assert layer._measure_choice((1, 8, 8, 8), np.dtype("float32"), 1).source == "memory"
    _measure.clear_memory()
    again = fastconv.Conv2d(_rand((8, 8, 3, 3)), padding=1, algorithm="measure")
    second = again._measure_choice((1, 8, 8, 8), np.dtype("float32"), 1)
    assert second.source == "disk" and second.algorithm == first.algorithm
    assert again.algorithm_for((1, 8, 8, 8), threads=1) == first.algorithm


def _measure_once(cache_dir, name="x.json"):
    layer = fastconv.Conv2d(_rand((8, 8, 3, 3)), _rand((8,)), padding=1, algorithm="measure")
    x = _rand((1, 8, 8, 8))
    y = layer(x, threads=1)
    ref = fastconv.Conv2d(_rand((8, 8, 3, 3)), _rand((8,)), padding=1)(x)
    np.testing.assert_allclose(y, ref, rtol=0, atol=TOL * np.abs(ref).max())
    return layer


@pytest.mark.parametrize("content", [
    b"", b"{not json", b"\x00\xff\xfe garbage", b"[1, 2, 3]", b"null", b'{"format": 1}',
    b'{"format": 1, "entries": []}', b'{"format": 999, "entries": {}}',
    b'{"format": 1, "entries": {"k": {"algorithm": 5}, "j": "x", "m": {"algorithm": "direct",'
    b' "seconds": {"direct": "slow"}}}}',
    b"[" * 100000,  # deeper than the JSON parser recurses
])
def test_corrupt_cache_file_never_breaks_a_call(cache_dir, content):
    cache_dir.mkdir()
    path = cache_dir / _measure.CACHE_FILE
    path.write_bytes(content)
    _measure_once(cache_dir)
    # the call rewrote the file: valid again, with the new entry
    assert len(_measure.load(str(path))) == 1


def test_entries_of_another_version_or_algorithm_are_ignored(cache_dir):
    layer = fastconv.Conv2d(_rand((8, 8, 3, 3)), padding=1, algorithm="measure")
    shape, dtype = (1, 8, 8, 8), np.dtype("float32")
    key = layer._measure_key(shape, dtype, 1)
    other_version = key.replace(f"fastconv={__version__}", "fastconv=0.0.0-other")
    cache_dir.mkdir()
    entries = {other_version: {"algorithm": "winograd_f6", "seconds": {}},
               key: {"algorithm": "no_such_algorithm", "seconds": {}}}
    (cache_dir / _measure.CACHE_FILE).write_text(
        json.dumps({"format": _measure.FORMAT, "entries": entries}))
    choice = layer._measure_choice(shape, dtype, 1)
    assert choice.source == "measured" and choice.algorithm in _algorithms.MEASURED[:4]
    kept = _measure.load()
    assert kept[other_version]["algorithm"] == "winograd_f6"  # kept, never used
    assert kept[key]["algorithm"] == choice.algorithm


def test_unwritable_cache_dir_only_disables_the_disk_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(blocker / "cache"))  # cannot be created
    layer = _measure_once(blocker)
    choice = layer._measure_choice((1, 8, 8, 8), np.dtype("float32"), 1)
    assert choice.source == "memory" and not choice.saved
    monkeypatch.setenv("FASTCONV_CACHE_DIR", "")  # disk cache off
    assert _measure.cache_path() is None
    _measure.clear_memory()
    _measure_once(tmp_path)


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTCONV_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    if os.name == "posix" and not os.uname().sysname == "Darwin":
        assert _measure.cache_dir() == str(tmp_path / "fastconv")
    assert _measure.cache_path().endswith(_measure.CACHE_FILE)


def test_failing_candidates_fall_back():
    def boom():
        raise MemoryError("no")

    choice = _measure.choose("k", {"a": boom, "b": boom}, "auto_choice", disk=False)
    assert choice == _measure.Choice("auto_choice", {}, "fallback")
    assert _measure.lookup("k", ("a", "b"), disk=False) is None  # nothing stored
    choice = _measure.choose("k2", {"a": boom, "b": lambda: None}, "a", disk=False)
    assert choice.algorithm == "b"


def test_concurrent_writers_leave_a_valid_file(cache_dir):
    cache_dir.mkdir()
    path = str(cache_dir / _measure.CACHE_FILE)
    jobs = [({f"p{i}-k{j}": {"algorithm": "direct", "seconds": {"direct": 0.001 * j}}}, path)
            for i in range(4) for j in range(15)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        written = pool.starmap(_measure.store, jobs, chunksize=1)
    assert all(written)
    with open(path) as f:
        data = json.load(f)
    assert data["format"] == _measure.FORMAT
    entries = _measure.load(path)
    assert entries == data["entries"] and len(entries) >= 15
    assert not [n for n in os.listdir(cache_dir) if n.endswith(".tmp")]  # no temporary left


# ---- fastconv tune and fastconv info --peak ---------------------------------------------------
def test_tune_cli_fills_the_cache(cache_dir, capsys):
    from fastconv import _tune_cli

    code = _tune_cli.main(["--layer", "c=8x10x10:conv3p1c8", "--layer", "t=8x6x6:convt2s2c4",
                           "--threads", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line.strip()}
    assert set(rows) == {"c", "t"}
    assert rows["c"][3] in _algorithms.MEASURED[:4] and rows["c"][4] in _algorithms.MEASURED[:4]
    assert rows["t"][3] in ("gemm", "phase") and rows["t"][4] in ("gemm", "phase")
    assert len(_measure.load()) == 2
    # a second run answers from the cache
    assert _tune_cli.main(["--layer", "c=8x10x10:conv3p1c8", "--quiet", "--no-recheck"]) == 0
    assert " memory " in capsys.readouterr().out


def test_tune_cli_arguments(capsys, monkeypatch):
    import sys

    from fastconv import _tune_cli

    assert _tune_cli.main([]) == 2
    assert "--suite, --layer or MODEL.onnx" in capsys.readouterr().err
    assert _tune_cli.main(["model.txt"]) == 2
    assert "ending in .onnx" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "fastconv.onnx", None)  # as if not installed
    assert _tune_cli.main(["model.onnx", "--input", "1x3x8x8"]) == 2
    assert "needs fastconv.onnx" in capsys.readouterr().err


def test_info_peak(capsys, monkeypatch):
    from fastconv import _peak, cli

    monkeypatch.setattr(_peak, "BANDWIDTH_BYTES", 1 << 20)  # a quick run; no rate asserted
    quick = _peak.fma_peak_gflops
    monkeypatch.setattr(_peak, "fma_peak_gflops",
                        lambda isa, dt, t: quick(isa, dt, t, seconds=0.002, repeats=1))
    assert cli.main(["info", "--peak", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "GFLOP/s" in out and "GB/s" in out
    for isa in _dispatch.available_isas():
        assert f"{isa} float32" in out
    assert cli.main(["info", "--peak", "--threads", "0"]) == 2


def test_ties_keep_the_fallback(monkeypatch):
    monkeypatch.setattr(_measure, "_time", lambda c: {"a": 1.0, "b": 0.99, "c": 1.2})
    assert _measure.choose("tie", {"a": None, "b": None, "c": None}, "a",
                           disk=False).algorithm == "a"
    monkeypatch.setattr(_measure, "_time", lambda c: {"a": 1.0, "b": 0.9})
    assert _measure.choose("win", {"a": None, "b": None}, "a", disk=False).algorithm == "b"
    # faster in the measurement, not in the rematch: the fallback stays
    results = iter([{"a": 1.0, "b": 0.9, "c": 1.5}, {"b": 1.0, "a": 1.01}])
    monkeypatch.setattr(_measure, "_time", lambda c: next(results))
    assert _measure.choose("noise", {"a": None, "b": None, "c": None}, "a",
                           disk=False).algorithm == "a"


def test_tune_cli_onnx_model(cache_dir, tmp_path, capsys):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("fastconv.onnx")
    from onnx import TensorProto, helper, numpy_helper

    from fastconv import _tune_cli

    w = numpy_helper.from_array(_rand((8, 4, 3, 3)), "w")
    node = helper.make_node("Conv", ["input", "w"], ["out"], pads=[1, 1, 1, 1])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, 9, 9])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 9, 9])], [w])
    path = str(tmp_path / "tiny.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert _tune_cli.main([path, "--input", "1x4x9x9"]) == 0
    assert "tuned" in capsys.readouterr().out
    (entry,) = _measure.load().values()
    assert entry["algorithm"] in _algorithms.MEASURED[:4]
    assert _tune_cli.main([path]) == 2  # --input is needed


def test_pickled_layers_keep_measure():
    import pickle

    conv = fastconv.Conv2d(_rand((4, 4, 3, 3)), padding=1, algorithm="measure")
    convt = fastconv.ConvTranspose2d(_rand((4, 2, 4, 4)), stride=2, algorithm="measure")
    x = _rand((1, 4, 6, 6))
    for layer in (conv, convt):
        copy = pickle.loads(pickle.dumps(layer))
        assert "measure" in repr(copy)
        np.testing.assert_array_equal(copy(x), layer(x))
