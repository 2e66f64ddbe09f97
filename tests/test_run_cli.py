"""``fastconv run`` on a small model file built with onnx.helper."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from fastconv import cli  # noqa: E402


@pytest.fixture
def model_file(tmp_path):
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), np.float32) / 27, "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["c"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2, 8, 8])], [w])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
              str(path))
    return path


def test_run_prints_latency_and_json(model_file, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert cli.main(["run", str(model_file), "--input", "2x3x8x8", "--repeat", "3",
                     "--threads", "1", "--json", str(out), "--summary", "--profile"]) == 0
    text = capsys.readouterr().out
    assert "median" in text and "p90" in text and "Conv+Relu" in text
    result = json.loads(out.read_text())
    assert result["inputs"] == {"x": [2, 3, 8, 8]} and result["fastconv"]["median_ms"] > 0
    if "onnxruntime" in result:
        assert result["max_rel_diff_vs_onnxruntime"] < 1e-4


def test_run_input_file_and_errors(model_file, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((1, 3, 8, 8), np.float32))
    assert cli.main(["run", str(model_file), "--input-file", str(x), "--repeat", "1",
                     "--compare", "none"]) == 0
    assert "fastconv" in capsys.readouterr().out
    assert cli.main(["run", str(tmp_path / "missing.onnx")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["run", str(model_file), "--input", "1x4x8x8", "--compare", "none"]) == 1
    with pytest.raises(SystemExit):
        cli.main(["run", str(model_file), "--input", "1xAx8"])


def test_shapes_of_an_onnx_file(model_file, capsys):
    assert cli.main(["shapes", str(model_file), "--input", "3x8x8"]) == 0
    text = capsys.readouterr().out
    assert "Conv+Relu" in text and "1x2x8x8" in text
    assert cli.main(["shapes", str(model_file), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["op"] == "Conv+Relu" and rows[0]["macs"] == 2 * 8 * 8 * 27
