"""``fastconv bench``: tiny runs checking the table, the JSON, the checks and the errors.

No peer is required: peer runs are skipped where PyTorch / ONNX Runtime are not installed.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from reference import ref_avg_pool, ref_conv, ref_conv_transpose, ref_max_pool

from fastconv import _bench_cli, _bench_reference, _suite

TINY = ["--repeats", "2", "--min-time", "0", "--max-time", "2", "--spread", "10", "--quiet"]
CONV = "small=8x12x12:conv3p1c8"
POOL = "8x12x12:maxpool3s2p1"
CONVT = "8x6x6:convt2s2c4"


def bench(capsys, *argv):
    code = _bench_cli.main([*argv, *TINY])
    out, err = capsys.readouterr()
    return code, out, err


def table_rows(out: str) -> list[list[str]]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("layer"))
    return [line.split() for line in lines[start + 2:] if line.strip() and
            not line.startswith("wrote")]


def test_table_has_every_algorithm_and_threads(capsys):
    code, out, _ = bench(capsys, "--layer", CONV, "--layer", POOL, "--layer", CONVT,
                         "--threads", "1,2", "--no-peers")
    assert code == 0
    rows = table_rows(out)
    contenders = {(r[0], r[1], r[2]) for r in rows}
    for threads in ("1", "2"):
        assert ("small", threads, "conv2d()") in contenders
        assert any(r[0] == "small" and r[1] == threads and r[2].startswith("Conv2d[direct]")
                   for r in rows)
        assert any(r[0] == "small" and r[1] == threads and r[2].startswith("Conv2d[im2col]")
                   for r in rows)
        assert (POOL, threads, "max_pool2d()") in contenders
        assert any(r[0] == CONVT and r[2].startswith("ConvTranspose2d[") for r in rows)
    # exactly one starred ("auto") layer object per conv layer and thread count
    assert sum(r[2].endswith("*") for r in rows if r[0] == "small") == 2
    for r in rows:
        assert float(r[3]) > 0  # ms
        algorithm = r[2].rstrip("*").partition("[")[2].rstrip("]") or "direct"
        # max relative error against float64, within the bound of that algorithm
        assert float(r[-1]) <= _bench_cli._tolerance("float32", algorithm)


def test_json_has_machine_and_raw_figures(capsys, tmp_path):
    path, markdown = tmp_path / "out.json", tmp_path / "out.md"
    code, out, _ = bench(capsys, "--layer", CONV, "--layer", POOL, "--no-peers",
                         "--json", str(path), "--markdown", str(markdown))
    assert code == 0 and f"wrote {path}" in out
    table = markdown.read_text().splitlines()
    assert table[0].startswith("| layer | threads | function ms |") and len(table) == 4
    assert table[2].startswith("| small | 1 | ") and "GFLOP/s" in table[2]
    assert table[3].startswith(f"| {POOL} | 1 | ") and "GB/s" in table[3]
    data = json.loads(path.read_text())
    machine = data["machine"]
    for key in ("cpu", "isa", "openmp", "threads", "versions", "cpu_count"):
        assert key in machine
    assert machine["versions"]["fastconv"]
    assert machine["threads"] == [1]
    assert data["command"][:2] == ["fastconv", "bench"]
    conv = [r for r in data["results"] if r["layer"] == "small"]
    assert {r["threads"] for r in conv} == {1}
    for r in conv:
        assert r["ok"] and len(r["samples"]) >= 2
        assert r["seconds"] == r["median"] == pytest.approx(float(np.median(r["samples"])))
        assert r["min"] == min(r["samples"])
        layer = _bench_cli._custom_layer(CONV, 1)
        assert r["gflops"] == pytest.approx(layer.flops() / r["seconds"] / 1e9)
    pool = [r for r in data["results"] if r["kind"] == "max"]
    assert pool and all("gbs" in r and "gflops" not in r for r in pool)


def test_wrong_result_is_reported_and_not_timed(capsys, monkeypatch):
    monkeypatch.setattr(_bench_cli, "_tolerance", lambda dtype, algorithm: -1.0)  # none passes
    code, out, err = bench(capsys, "--layer", CONV, "--no-peers")
    assert code == 1
    assert "WRONG" in out and "wrong results" in err
    assert all(r[3] == "-" for r in table_rows(out))


def test_a_contender_that_raises_does_not_end_the_run(capsys, monkeypatch, tmp_path):
    real = _bench_cli._fastconv_contenders

    def with_a_broken_one(*args):
        def broken():
            raise RuntimeError("kernel exploded")

        return [*real(*args), _bench_cli.Contender("Broken[x]", broken, "direct")]

    monkeypatch.setattr(_bench_cli, "_fastconv_contenders", with_a_broken_one)
    path = tmp_path / "out.json"
    code, out, err = bench(capsys, "--layer", CONV, "--no-peers", "--json", str(path))
    assert code == 1
    broken = [r for r in json.loads(path.read_text())["results"] if r["contender"] == "Broken[x]"]
    assert broken[0]["error"] is None and "kernel exploded" in broken[0]["failure"]
    rows = {r[2]: r for r in table_rows(out)}
    assert rows["Broken[x]"][3] == "-" and rows["Broken[x]"][-1] == "FAILED"
    assert float(rows["conv2d()"][3]) > 0  # the others were still timed
    assert "Broken[x] raised RuntimeError: kernel exploded" in err


def test_algorithm_filter_and_float64(capsys):
    code, out, _ = bench(capsys, "--layer", CONV, "--no-peers", "--algorithms", "im2col",
                         "--dtype", "float64")
    assert code == 0
    rows = table_rows(out)
    assert [r[2].rstrip("*") for r in rows] == ["Conv2d[im2col]"]
    assert float(rows[0][-1]) < 1e-12


@pytest.mark.parametrize("argv, message", [
    (["--layer", "8x12x12:conv3p1, relu"], "one layer"),
    (["--layer", "8x12:fc10"], "not"),
    (["--layer", "12x:conv3"], "CxSIZE:LAYER"),
    (["--layer", "nosuchlayer"], "no layer named 'nosuchlayer'"),
    (["--threads", "0"], "--threads"),
    (["--threads", "a"], "--threads"),
    (["--peers", "tensorflow"], "--peers"),
])
def test_bad_arguments_exit_2(capsys, argv, message):
    code, _, err = bench(capsys, *argv)
    assert code == 2
    assert message in err


def test_list_and_help(capsys):
    assert _bench_cli.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "resnet18.conv2" in out and "resnet.maxpool" in out
    with pytest.raises(SystemExit) as exit_info:
        _bench_cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_plot_without_matplotlib_says_so(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = bench(capsys, "--layer", POOL, "--no-peers", "--plot",
                         str(tmp_path / "p.png"))
    assert code == 0
    assert "pip install matplotlib" in err
    assert not (tmp_path / "p.png").exists()


def test_plot_writes_png(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    code, out, _ = bench(capsys, "--layer", CONV, "--layer", POOL, "--no-peers",
                         "--threads", "1,2", "--plot", str(path))
    assert code == 0 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_peers_are_timed_and_checked_when_installed(capsys):
    from fastconv import _bench_peers

    if not (_bench_peers.available("torch") or _bench_peers.available("onnxruntime")):
        pytest.skip("neither PyTorch nor ONNX Runtime is installed")
    code, out, _ = bench(capsys, "--layer", CONV, "--layer", POOL)
    assert code == 0
    rows = table_rows(out)
    peers = [r for r in rows if r[2] in ("torch", "onnxruntime")]
    assert {r[0] for r in peers} == {"small", POOL}
    assert all(float(r[-1]) < 1e-5 for r in peers)
    # every fastconv row has a ratio per peer: (ms, GFLOP/s or GB/s, ratios..., err)
    header = out.splitlines()[[line.startswith("layer") for line in out.splitlines()].index(True)]
    assert ("xtorch" in header) == _bench_peers.available("torch")


def test_progress_bar_goes_to_stderr():
    import io

    stream = io.StringIO()
    progress = _bench_cli.Progress(2, stream=stream)
    progress.show("checking")  # not a terminal: only steps print
    progress.step("a done")
    progress.step("b done")
    lines = stream.getvalue().splitlines()
    assert lines == [line for line in lines if line.startswith("[")]
    assert "1/2" in lines[0] and "2/2" in lines[1] and "#" * 24 in lines[1]


def test_command_line_entry_point_runs():
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run([sys.executable, "-m", "fastconv.cli", "bench", "--layer", POOL,
                             "--no-peers", *TINY], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "max_pool2d()" in result.stdout


# ---- the package's compact reference and the shared catalogue ------------------------------
@pytest.mark.parametrize("layer", [
    _suite.Conv("c", 6, 4, (9, 8), (3, 2), stride=(2, 1), padding=((1, 0), (0, 1)), groups=2,
                dilation=(1, 2)),
    _suite.Conv("dw", 4, 4, (7,), (3,), padding="same", groups=4),
    _suite.Conv("3d", 2, 3, (4, 5, 6), (2, 3, 1), stride=2, padding=1),
    _suite.ConvTranspose("t", 4, 6, (5, 4), (3, 2), stride=(2, 3), padding=1, groups=2,
                         output_padding=(1, 0), dilation=(1, 2)),
    _suite.Pool("max", "max", 3, (9, 8), (3, 2), (2, 1), (1, 1)),
    _suite.Pool("avg", "avg", 3, (9, 8), (3, 3), 2, 1),
    _suite.Pool("gap", "global_avg", 3, (5, 4)),
    _suite.Pool("aap", "adaptive_avg", 3, (9, 7), output_size=(4, 3)),
], ids=lambda layer: layer.name)
def test_bench_reference_matches_test_reference(layer):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(layer.input_shape)
    w = b = None
    if layer.kind in ("conv", "conv_transpose"):
        w = rng.standard_normal(layer.weight_shape)
        b = rng.standard_normal(layer.c_out)
    got = _bench_reference.reference(layer, x, w, b)
    assert got.shape == layer.output_shape
    if layer.kind == "conv":
        want = ref_conv(x, w, b, layer.stride, layer.padding, layer.dilation, layer.groups)
    elif layer.kind == "conv_transpose":
        want = ref_conv_transpose(x, w, b, layer.stride, layer.padding, layer.output_padding,
                                  layer.groups, layer.dilation)
    elif layer.kind == "max":
        want = ref_max_pool(x, layer.kernel, layer.stride, layer.padding)
    elif layer.kind == "avg":
        want = ref_avg_pool(x, layer.kernel, layer.stride, layer.padding)
    elif layer.kind == "global_avg":
        want = x.mean(axis=(2, 3), keepdims=True)
    else:
        want = np.stack([np.stack([x[:, :, (i * 9) // 4:-(-(i + 1) * 9 // 4),
                                        (j * 7) // 3:-(-(j + 1) * 7 // 3)].mean(axis=(2, 3))
                                   for j in range(3)], -1) for i in range(4)], -2)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert _bench_reference.relative_error(got, want) < 1e-12


def test_relative_error_detects_a_wrong_answer():
    ref = np.array([1.0, -4.0, 2.0])
    assert _bench_reference.relative_error(ref, ref) == 0.0
    assert _bench_reference.relative_error(ref + [0, 0, 0.4], ref) == pytest.approx(0.1)
    assert _bench_reference.relative_error(ref[:2], ref) == float("inf")


def test_catalogue_suites():
    names = [layer.name for layer in _suite.suite("all")]
    assert len(names) == len(set(names))
    for name in ("resnet18", "vgg16", "mobilenet", "unet"):
        layers = _suite.suite(name)
        assert layers and all(name in layer.suites for layer in layers)
    # the issues' tables are all there
    for name in ("resnet18.conv2", "vgg16.conv1_2", "resnet.stem", "mobilenet.dw", "conv3d",
                 "resnet18.conv3.b8", "dcgan", "fcn.upsample", "resnet.maxpool",
                 "global_avg.2048", "adaptive_avg", "maxpool3d"):
        assert name in names
    assert _suite.by_name("vgg16.conv1_2").flops() == 2 * 64 * 64 * 9 * 224 * 224
    assert _suite.by_name("unet").output_spatial() == (64, 64)
    assert _suite.by_name("avgpool").bytes() == 4 * 256 * (56 * 56 + 28 * 28)


BENCHMARKS = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, "benchmarks"))


@pytest.mark.skipif(not os.path.isdir(BENCHMARKS), reason="no benchmarks/ beside the tests")
def test_benchmarks_reexport_the_catalogue_and_timer():
    sys.path.insert(0, BENCHMARKS)
    try:
        import layers
        import timing
    finally:
        sys.path.pop(0)
    assert layers.CONV is _suite.CONV and layers.POOL is _suite.POOL
    assert layers.suite is _suite.suite and layers.ConvTranspose is _suite.ConvTranspose
    from fastconv import _timing

    assert timing.interleaved is _timing.interleaved


def test_suite_selection_and_custom_layers():
    parse = _bench_cli._parser().parse_args
    unet = _bench_cli._layers(parse(["--suite", "unet"]))
    assert [layer.name for layer in unet] == [layer.name for layer in _suite.suite("unet")]
    assert [layer.name for layer in _bench_cli._layers(parse([]))] == \
        [layer.name for layer in _suite.suite("resnet18")]
    both = _bench_cli._layers(parse(["--suite", "mobilenet", "--layer", "resnet18.conv2"]))
    assert both[-1].name == "resnet18.conv2" and len(both) == len(_suite.suite("mobilenet")) + 1
    dw, gap, ct = _bench_cli._layers(parse(
        ["--layer", "dw=32x112x112:conv3p1g32", "--layer", "64x7x7:gap",
         "--layer", "16x8x8x8:convt2s2c8", "--batch", "4"]))
    assert dw.name == "dw" and dw.depthwise and dw.input_shape == (4, 32, 112, 112)
    assert gap.kind == "global_avg" and gap.output_shape == (4, 64, 1, 1)
    assert ct.kind == "conv_transpose" and ct.output_shape == (4, 8, 16, 16, 16)


def test_cli_starts_without_heavy_imports():
    code = ("import sys, fastconv._bench_cli; "
            "print(sorted(m for m in ('numpy', 'torch', 'onnxruntime', 'matplotlib') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_tolerance_follows_the_accuracy_policy():
    assert _bench_cli._tolerance("float32", "direct") == 1e-5  # API.md's float32 policy
    assert _bench_cli._tolerance("float64", "im2col") == 1e-12
    f2, f6 = (_bench_cli._tolerance("float32", f"winograd_{t}") for t in ("f2", "f6"))
    assert 1e-5 <= f2 <= f6 <= 1e-3  # larger tiles: looser documented bounds, never below 1e-5


def test_timer_adds_rounds_until_the_median_settles():
    import itertools
    import time

    from fastconv import _timing

    delays = itertools.cycle([0.0, 0.004])  # a bimodal contender never settles
    samples = _timing.interleaved_samples({"a": lambda: time.sleep(next(delays))}, repeats=4,
                                          warmup=0, target_spread=0.05, max_time=0.3)
    assert len(samples["a"]) > 4
    settled = _timing.interleaved_samples({"a": lambda: None}, repeats=4, warmup=0)
    assert len(settled["a"]) == 4
    assert _timing.spread([1.0, 1.0, 1.0, 1.0]) == 0.0 and _timing.spread([1.0]) == float("inf")


def test_interrupt_reports_the_layers_already_measured(capsys, monkeypatch):
    real, calls = _bench_cli._measure, []

    def measure_then_interrupt(layer, *args):
        calls.append(layer.name)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(layer, *args)

    monkeypatch.setattr(_bench_cli, "_measure", measure_then_interrupt)
    code, out, err = bench(capsys, "--layer", CONV, "--layer", POOL, "--no-peers")
    assert code == 0 and "interrupted after 1 of 2" in err
    assert {r[0] for r in table_rows(out)} == {"small"}


def test_missing_compiled_core_is_a_clear_message(capsys, monkeypatch):
    from fastconv import _bench_report

    def not_built(*args):
        raise ImportError("fastconv's compiled core is not built: pip install .")

    monkeypatch.setattr(_bench_report, "machine", not_built)
    code, _, err = bench(capsys, "--layer", POOL, "--no-peers")
    assert code == 2 and "compiled core is not built" in err


def test_onnx_encoding_needs_no_onnx_package():
    # fastconv bench writes ONNX Runtime's one-node models itself (protobuf wire format)
    from fastconv import _bench_peers as bp

    assert bp._varint(1) == b"\x01" and bp._varint(300) == b"\xac\x02"
    assert len(bp._varint(-1)) == 10  # int64 two's complement
    assert bp._field(2, "Y") == b"\x12\x01Y"
    if not bp.available("onnxruntime"):
        pytest.skip("onnxruntime is not installed")
    import fastconv
    from fastconv._suite import Conv, Pool

    rng = np.random.default_rng(1)
    layer = Conv("c", 3, 4, (9, 7), (3, 3), stride=2, padding=((0, 1), (1, 0)))
    x = rng.standard_normal(layer.input_shape).astype(np.float32)
    w = rng.standard_normal(layer.weight_shape).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    run = bp.runners(layer, x, w, b, threads=1, peers=("onnxruntime",))["onnxruntime"]
    expected = fastconv.conv2d(x, w, b, stride=2, padding=((0, 1), (1, 0)))
    np.testing.assert_allclose(run(), expected, rtol=1e-5, atol=1e-5)
    pool = Pool("p", "max", 2, (6, 6), (3, 3), 2, 1)
    xp = rng.standard_normal(pool.input_shape)  # float64
    run = bp.runners(pool, xp, None, None, threads=1, peers=("onnxruntime",))["onnxruntime"]
    np.testing.assert_array_equal(run(), fastconv.max_pool2d(xp, 3, 2, 1))


def test_a_busy_machine_is_noted(capsys, monkeypatch):
    from fastconv import _bench_report

    # the arithmetic on two samples (all CPU-seconds, this process's, wall clock), clamped to
    # the CPUs there are: /proc/stat's 10 ms ticks make short intervals overshoot
    cpus = os.cpu_count() or 1
    assert _bench_report.other_cpus((10.0, 1.0, 100.0), (11.5, 1.5, 101.0)) == 1.0
    assert _bench_report.other_cpus((10.0, 1.0, 100.0), (10.0 + 3 * cpus, 1.0, 101.0)) == cpus
    assert _bench_report.other_cpus((10.0, 1.0, 100.0), (10.0, 1.2, 101.0)) == 0.0
    assert _bench_report.other_cpus((10.0, 1.0, 100.0), (11.0, 1.0, 100.0)) is None
    monkeypatch.setattr(_bench_report, "busy_cpus", lambda interval=0.25: 1.0)
    monkeypatch.setattr(_bench_report, "other_cpus", lambda before, after: 1.0)
    code, _, err = bench(capsys, "--layer", POOL, "--no-peers", "--quiet")
    assert code == 0 and "other processes kept 1.0 of" in err and "during the run" in err
    monkeypatch.setattr(_bench_report, "busy_cpus", lambda interval=0.25: 0.0)
    monkeypatch.setattr(_bench_report, "other_cpus", lambda before, after: 0.0)
    code, _, err = bench(capsys, "--layer", POOL, "--no-peers", "--quiet")
    assert code == 0 and "other processes" not in err


def test_cpu_sample_counts_this_process():
    """The sample's second entry is this process's CPU time (what other_cpus leaves out)."""
    from fastconv import _bench_report

    before = _bench_report.cpu_sample()
    if before is None:
        pytest.skip("no /proc/stat")
    sum(range(2_000_000))  # some CPU time of this process
    after = _bench_report.cpu_sample()
    assert after[1] > before[1] and after[2] > before[2] and after[0] >= before[0]
