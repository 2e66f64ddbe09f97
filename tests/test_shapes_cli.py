"""``fastconv shapes``: presets, specs, --json, --help examples and errors."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fastconv import shapes
from fastconv.shapes import cli


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_resnet18_table(capsys):
    code, out, err = run(capsys, "resnet18", "--input", "3x224x224")
    assert (code, err) == (0, "")
    assert out.splitlines()[0].split()[:3] == ["layer", "type", "output"]
    assert re.search(r"^conv1 +conv7s2p3c64nobias +64x112x112 +9,408 ", out, re.M)
    assert re.search(r"^layer4\.1\.conv2 .* 435 +32 +217$", out, re.M)
    assert "total params: 11,689,512" in out
    assert ("receptive field after layer4.1.relu (relu): size 435, effective stride 32, "
            "effective padding 217") in out


def test_vgg16_default_input(capsys):
    code, out, _ = run(capsys, "vgg16")
    assert code == 0
    assert "input 3x224x224 -> output 1000" in out
    assert "size 212, effective stride 32, effective padding 90" in out


def test_json(capsys):
    code, out, _ = run(capsys, "mobilenet_v2", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["total_params"] == 3_504_872
    assert data["input_shape"] == [3, 224, 224]
    assert data["spatial_receptive_field"]["size"] == 491
    assert data["layers"][0]["name"] == "features.0.0"
    code, out, _ = run(capsys, "conv3s2, convt3s2c8", "--input", "1x9", "--json")
    data = json.loads(out)
    assert data["output_shape"] == [8, 9]
    assert data["layers"][1]["receptive_field"] == 5
    assert data["layers"][1]["stride"] == 1


def _help_examples():
    """The example command lines in --help, continuation lines joined."""
    examples, current = [], None
    for line in cli.EPILOG.splitlines():
        if line.startswith("  fastconv shapes "):
            current = line.strip()
            examples.append(current)
        elif current is not None and line.startswith("      "):
            examples[-1] += " " + line.strip()
        else:
            current = None
    return [shlex.split(example)[2:] for example in examples]


@pytest.mark.parametrize("argv", _help_examples(), ids=lambda a: a[0][:30])
def test_help_examples_run(capsys, argv):
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, ""), err
    assert "total params" in out or out.startswith("{")


def test_help_examples_found():
    examples = _help_examples()
    assert len(examples) >= 6
    assert any("res(" in " ".join(e) and "|" in " ".join(e) for e in examples)
    assert any("maxpool2" in " ".join(e) for e in examples)


def test_help(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert out.startswith("usage: fastconv shapes")
    for text in ("a VGG block", "residual block", "res(A | S)", "cat(A | B)", "--json",
                 "resnet18"):
        assert text in out


@pytest.mark.parametrize("argv, message", [
    (["conv3, cnv3"], "bad spec: unknown layer 'cnv3'"),
    (["resnet18", "--input", "3xAx2"], "--input must be channels and spatial sizes"),
    (["resnet18", "--input", "3"], "--input must be"),
    (["resnet18", "--input", "3x0x4"], "--input must be"),
    (["conv5", "--input", "1x3"], "output size -1 < 1"),
    (["res(conv3s2 | conv1s2)", "--input", "1x9"], "not aligned"),
    ([], "the following arguments are required"),
    (["vgg16", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_errors_exit_2_without_traceback(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err


def test_bad_spec_shows_a_caret(capsys):
    _, _, err = run(capsys, "conv3x3p1c64, relu, conv3x3q1")
    lines = err.splitlines()
    assert lines[-2] == "  conv3x3p1c64, relu, conv3x3q1"
    assert lines[-1] == "  " + " " * 27 + "^^"


def _python(*args):
    package_root = str(Path(shapes.__file__).resolve().parents[2])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [package_root, *filter(None, [os.environ.get("PYTHONPATH")])]))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_python_dash_m():
    result = _python("-m", "fastconv.shapes.cli", "alexnet")
    assert result.returncode == 0, result.stderr
    assert "total params: 61,100,840" in result.stdout
    result = _python("-m", "fastconv.shapes.cli", "conv3,,relu")
    assert result.returncode == 2
    assert "expected a layer" in result.stderr and "Traceback" not in result.stderr


def test_top_level_command_dispatches_here(capsys):
    top = pytest.importorskip("fastconv.cli")
    if "shapes" not in getattr(top, "COMMANDS", {}):
        pytest.skip("the top-level CLI has no shapes command in this checkout")
    assert top.main(["shapes", "resnet50"]) == 0
    assert "total params: 25,557,032" in capsys.readouterr().out
