"""``fastconv demo`` runs end to end and writes its PNG montage."""

import numpy as np
import pytest

from fastconv import _demo


def test_demo_writes_png(tmp_path, capsys):
    pil = pytest.importorskip("PIL.Image", reason="the demo needs Pillow (fastconv[demo])")
    out = tmp_path / "demo.png"
    assert _demo.main(["--output", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "Sobel" in printed and "receptive field" in printed and str(out) in printed
    with pil.open(out) as image:
        assert image.size == (4 * 256 + 5 * 8, 2 * 256 + 3 * 8)
        pixels = np.asarray(image)
    assert pixels.std() > 10  # not a blank canvas


def test_sobel_step_matches_numpy():
    import fastconv

    img = _demo.synthetic_image(32)
    grey = img.mean(axis=0)[None]
    edges = fastconv.conv2d(grey, np.stack([_demo.SOBEL_X, _demo.SOBEL_Y])[:, None], padding=1)
    padded = np.pad(grey[0], 1)
    expected = sum(_demo.SOBEL_X[i, j] * padded[i:i + 32, j:j + 32]
                   for i in range(3) for j in range(3))
    np.testing.assert_allclose(edges[0], expected, atol=1e-5)


def test_demo_help(capsys):
    with pytest.raises(SystemExit) as info:
        _demo.main(["--help"])
    assert info.value.code == 0
    assert "fastconv demo" in capsys.readouterr().out
