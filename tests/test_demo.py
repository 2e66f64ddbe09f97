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
        assert image.size == (4 * 256 + 5 * 8, 2 * (256 + _demo.LABEL) + 3 * 8)
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


def test_demo_reads_the_users_image(tmp_path, capsys):
    # issue 21 item 12: --image PATH, any format Pillow reads, any aspect, scaled down if large
    pil = pytest.importorskip("PIL.Image", reason="the demo needs Pillow (fastconv[demo])")
    yy, xx = np.mgrid[0:300, 0:700]
    picture = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
    source = tmp_path / "photo.jpg"
    pil.fromarray(picture).save(source)
    out = tmp_path / "demo.png"
    steps = _demo.run(str(out), threads=1, image_path=str(source))
    printed = capsys.readouterr().out
    assert "'" + str(source) + "'" in printed and "512x219" in printed
    assert steps[0][1] == (2, 219, 512)  # scaled so the longer side is MAX_SIDE
    assert all(ms > 0 for _, _, ms in steps)
    with pil.open(out) as image:
        assert image.size == (4 * 256 + 5 * 8, 2 * (256 + _demo.LABEL) + 3 * 8)
        pixels = np.asarray(image)
    # the labels: dark text pixels in the white band above the first panel
    band = pixels[8:8 + _demo.LABEL, 8:8 + 256]
    assert (band < 100).any() and (band == 255).mean() > 0.5


def test_demo_image_errors_name_the_path(tmp_path, capsys):
    pytest.importorskip("PIL.Image", reason="the demo needs Pillow (fastconv[demo])")
    bogus = tmp_path / "not-an-image.png"
    bogus.write_text("hello")
    assert _demo.main(["--image", str(bogus), "--output", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "--image" in err and str(bogus) in err
    assert _demo.main(["--image", str(tmp_path / "missing.png")]) == 1
    assert "missing.png" in capsys.readouterr().err
