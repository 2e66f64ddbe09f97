"""Winograd F(2x2,3x3), F(4x4,3x3), F(6x6,3x3) (fastconv._winograd_plan) against the reference.

- the transform matrices: the 1-D algorithm is an exact correlation, and the generated C header
  matches them;
- every tile x dtype x ISA x threads 1/2 on a covering set of shapes (partial tiles, every
  padding form as explicit pads, batch > 1 with tiles of a block spanning images, groups,
  channel counts that are not SIMD or MR multiples, 1x1 outputs), against ``ref_conv``;
- the answer does not depend on threads, block size or output-channel split (bitwise);
- the documented accuracy bounds (``ERROR_BOUND``) with fresh random data at C_in 16, 64, 256;
- NaN / Inf stay within the tiles that hold them; argument rules (``supports``).
"""

import doctest
import pathlib

import numpy as np
import pytest
from reference import assert_close, ref_conv

from fastconv import _dispatch
from fastconv import _winograd_plan as wp

DTYPES = (np.float32, np.float64)
TILES = wp.TILES


def _pads(p):
    return ((p[0], p[1]), (p[2], p[3]))


# (id, (batch, c_in, c_out, h, w, (top, bottom, left, right), groups))
CASES = {
    "same.partial": (2, 8, 12, 11, 13, (1, 1, 1, 1), 1),
    "valid.odd": (1, 5, 7, 9, 10, (0, 0, 0, 0), 1),
    "asym.groups2": (1, 16, 20, 7, 9, (0, 2, 3, 1), 2),
    "full.pad2": (1, 6, 9, 5, 6, (2, 2, 2, 2), 1),
    "pad_gt_kernel": (1, 4, 4, 4, 5, (4, 0, 1, 5), 1),
    "one_output": (3, 5, 7, 3, 3, (0, 0, 0, 0), 1),
    "batch.many_small": (7, 9, 33, 6, 5, (1, 1, 1, 1), 1),
    "groups3.wide": (2, 12, 36, 10, 31, (1, 1, 1, 1), 3),
    "cout_not_mr": (1, 20, 37, 13, 14, (1, 0, 0, 1), 1),
    "full_tiles": (2, 8, 16, 16, 32, (1, 1, 1, 1), 1),  # F2/F4: runs of whole tiles only
}


def _problem(case, dtype, rng):
    n, c_in, c_out, h, w, p, groups = case
    x = rng.standard_normal((n, c_in, h, w)).astype(dtype)
    weight = rng.standard_normal((c_out, c_in // groups, 3, 3))
    bias = rng.standard_normal(c_out).astype(dtype)
    return x, weight, bias, _pads(p), groups


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("staged", (True, False), ids=("staged", "borders"))
def test_matches_reference(isa, tile, dtype, case, staged, monkeypatch):
    """Small inputs are staged zero-padded to whole tiles; larger ones (here: staging off)
    have their border patches gathered one by one."""
    if not staged:
        monkeypatch.setattr(wp, "STAGE_MAX_BYTES", -1)
    rng = np.random.default_rng(abs(hash((tile, str(case)))) % 2**32)
    x, weight, bias, pads, groups = _problem(case, dtype, rng)
    prepared = wp.prepare_weights(weight, tile, dtype, groups=groups)
    expected = ref_conv(x, weight, bias, padding=pads, groups=groups)
    for threads in (1, 2):
        y = wp.winograd_conv2d(x, prepared, bias, pads, threads)
        assert y.dtype == dtype
        assert_close(y, expected, dtype, algorithm=f"winograd_f{tile}")
        err = np.abs(y - expected).max() / np.abs(expected).max()
        assert err <= wp.ERROR_BOUND[np.dtype(dtype).name][tile]


@pytest.mark.parametrize("tile", TILES)
def test_no_bias_out_and_noncontiguous(isa, tile):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((2, 10, 14, 17))
    x = base[:, ::2, ::-1, 1:]  # strided, reversed, offset view: (2, 5, 14, 16)
    w_base = rng.standard_normal((6, 5, 3, 3, 2)).astype(np.float32)
    weight = w_base[..., 1]  # non-contiguous float32 weights (transformed in float64)
    prepared = wp.prepare_weights(weight, tile, np.float64)
    out = np.full((2, 6, 14, 16), np.nan)
    y = wp.winograd_conv2d(x, prepared, None, ((1, 1), (1, 1)), 2, out=out)
    assert y is out
    assert_close(y, ref_conv(x, weight, None, padding=1), np.float64,
                 algorithm=f"winograd_f{tile}")


def test_empty_batch(isa):
    prepared = wp.prepare_weights(np.ones((4, 4, 3, 3)), 4, np.float32)
    y = wp.winograd_conv2d(np.ones((0, 4, 6, 6), np.float32), prepared, None)
    assert y.shape == (0, 4, 4, 4)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("groups", (1, 2))
def test_decomposition_does_not_change_the_answer(isa, tile, dtype, groups):
    """Threads, tiles per block and output-channel splits (at 2 threads a split block shares
    one input transform between the threads): bitwise the same result."""
    rng = np.random.default_rng(7)
    x, weight, bias, pads, groups = _problem((3, 24, 40, 15, 19, (1, 1, 1, 1), groups), dtype,
                                             rng)
    prepared = wp.prepare_weights(weight, tile, dtype, groups=groups)
    first = wp.winograd_conv2d(x, prepared, bias, pads, 1)
    for threads, block, split in ((2, 0, 0), (2, 1, 3), (1, 40, 2), (2, 7, 1), (1, 1000, 5),
                                  (2, 1000, 2), (2, 32, 7)):
        y = wp.winograd_conv2d(x, prepared, bias, pads, threads, block_tiles=block,
                               k_split=split)
        np.testing.assert_array_equal(y, first, err_msg=f"{threads=} {block=} {split=}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("c_in", (16, 64, 256))
def test_documented_error_bound(tile, dtype, c_in):
    """``ERROR_BOUND`` holds on fresh standard-normal data (the policy's measure)."""
    rng = np.random.default_rng()  # fresh entropy on purpose: the bound must hold, not a seed
    x = rng.standard_normal((1, c_in, 20, 20))
    weight = rng.standard_normal((16, c_in, 3, 3))
    expected = ref_conv(x, weight, None, padding=1)
    prepared = wp.prepare_weights(weight, tile, dtype)
    y = wp.winograd_conv2d(x.astype(dtype), prepared, None, ((1, 1), (1, 1)), 2)
    err = np.abs(y - expected).max() / np.abs(expected).max()
    bound = wp.ERROR_BOUND[np.dtype(dtype).name][tile]
    assert err <= bound, f"F({tile}) {np.dtype(dtype).name} C_in {c_in}: {err:.3g} > {bound}"
    # meaningful: the bound is within 50x of what is measured (not a vacuous 1.0)
    assert err >= bound / 50, f"bound {bound} is far above the measured {err:.3g}"


def test_auto_policy_admits_f2_and_f4_only():
    admitted = [t for t in TILES if wp.ERROR_BOUND["float32"][t] <= wp.AUTO_FLOAT32_BOUND]
    assert admitted == [2, 4]


@pytest.mark.parametrize(("args", "tile"), [
    ((1, (56, 56), 64, 64), 4),        # resnet18.conv2
    ((1, (28, 28), 128, 128), 4),      # resnet18.conv3: 49 tiles
    ((1, (14, 14), 256, 256), 4),      # resnet18.conv4: 16 tiles of 4x4 are enough
    ((1, (10, 10), 256, 256), 2),      # 9 tiles of 4x4 are not
    ((1, (7, 7), 512, 512), 2),        # resnet18.conv5 (a tie with im2col)
    ((1, (7, 7), 256, 256), 2),
    ((8, (7, 7), 512, 512), 4),        # batch 8 fills the micro-panels
    ((1, (56, 56), 16, 16), None),     # too few channels: direct wins
    ((1, (14, 14), 32, 32), 4),
    ((1, (10, 10), 32, 32), None),     # F2 regime needs 64 channels
    ((1, (56, 56), 64, 16), None),     # the smaller side counts
])
def test_auto_tile_table(args, tile):
    assert wp.auto_tile(*args) == tile
    if tile is not None:
        assert wp.ERROR_BOUND["float32"][tile] <= wp.AUTO_FLOAT32_BOUND


def test_auto_tile_per_call_weights_needs_tiles():
    assert wp.auto_tile(1, (7, 7), 256, 256) == 2
    assert wp.auto_tile(1, (7, 7), 256, 256, per_call_weights=True) is None
    assert wp.auto_tile(1, (14, 14), 256, 256, per_call_weights=True) == 2  # 49 2x2 tiles
    assert wp.explicit_tile(1, (10, 10)) == 2 and wp.explicit_tile(1, (14, 14)) == 4


def _tiles_holding(shape_out, tile, pads, positions):
    """Mask of outputs in the m x m tiles whose alpha x alpha input window holds a position."""
    mask = np.zeros(shape_out, bool)
    oh, ow = shape_out
    for r, c in positions:
        rp, cp = r + pads[0][0], c + pads[1][0]  # in padded coordinates
        for ty in range(0, oh, tile):
            for tx in range(0, ow, tile):
                if ty <= rp < ty + tile + 2 and tx <= cp < tx + tile + 2:
                    mask[ty:ty + tile, tx:tx + tile] = True
    return mask


@pytest.mark.parametrize("bad", (np.nan, np.inf, -np.inf))
@pytest.mark.parametrize("tile", TILES)
def test_nonfinite_input_stays_in_its_tiles(isa, tile, bad):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 4, 17, 15))
    positions = [(5, 7), (16, 0)]
    for r, c in positions:
        x[0, 1, r, c] = bad
    weight = rng.standard_normal((5, 4, 3, 3))
    pads = ((1, 1), (1, 1))
    expected = ref_conv(x, weight, None, padding=1)
    y = wp.winograd_conv2d(x, wp.prepare_weights(weight, tile, np.float64), None, pads, 2)
    nonfinite = ~np.isfinite(y)
    allowed = _tiles_holding(y.shape[2:], tile, pads, positions)
    # every output the reference makes non-finite is non-finite here too ...
    assert np.all(nonfinite[~np.isfinite(expected)])
    # ... and nothing outside the tiles whose input window holds a bad value
    assert not np.any(nonfinite[:, :, ~allowed])
    finite = np.isfinite(expected) & ~allowed
    assert_close(y[finite], expected[finite], np.float64, algorithm=f"winograd_f{tile}")


def test_matrices_are_an_exact_correlation():
    """A^T [(G g) * (B^T d)] = the 3-tap correlation of d, for each tile (float64)."""
    rng = np.random.default_rng(5)
    for tile in TILES:
        at, g, bt = wp.matrices(tile)
        assert at.shape == (tile, tile + 2) and g.shape == (tile + 2, 3)
        taps, d = rng.standard_normal(3), rng.standard_normal(tile + 2)
        expected = np.correlate(d, taps, mode="valid")
        np.testing.assert_allclose(at @ ((g @ taps) * (bt @ d)), expected, rtol=0,
                                   atol=1e-13)


def test_generated_header_is_up_to_date():
    header = (pathlib.Path(__file__).resolve().parents[1] / "include" / "fastconv" / "kernels"
              / "winograd_transforms.h")
    assert header.read_text() == wp.c_header(), "run: python -m fastconv._winograd_plan"


@pytest.mark.parametrize(("kwargs", "reason"), [
    (dict(kernel=(3, 5)), "3x3 kernel"),
    (dict(kernel=(3, 3), stride=(1, 2)), "stride 1"),
    (dict(kernel=(3, 3), dilation=(2, 2)), "dilation 1"),
])
def test_supports_rejects_with_reason(kwargs, reason):
    ok, why = wp.supports(**kwargs)
    assert not ok and reason in why and why


def test_supports_accepts():
    assert wp.supports((3, 3), c_in=16, c_out=16, groups=4) == (True, "")
    # any channel count and groups (issue 21 item 2)
    assert wp.supports((3, 3), c_in=12, c_out=64, groups=4) == (True, "")
    assert wp.supports((3, 3), c_in=3, c_out=2) == (True, "")
    assert wp.supports((3, 3), c_in=32, c_out=32, groups=32) == (True, "")
    assert wp.supports([3, 3], padding_mode="reflect") == (True, "")


def test_prepare_weights_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tile must be one of"):
        wp.prepare_weights(np.ones((4, 4, 3, 3)), 3, np.float32)
    with pytest.raises(ValueError, match=r"w must have shape.*\(4, 4, 5, 5\)"):
        wp.prepare_weights(np.ones((4, 4, 5, 5)), 2, np.float32)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got float16"):
        wp.prepare_weights(np.ones((4, 4, 3, 3)), 2, np.float16)


def test_prepared_weights_are_per_isa_and_read_only():
    prepared = wp.prepare_weights(np.ones((8, 8, 3, 3)), 6, np.float64)
    assert prepared.isa == _dispatch.isa_index()
    assert not prepared.packed.flags.writeable
    assert prepared.nbytes >= 64 * 8 * 8 * 8  # alpha^2 x C_out x C_in doubles at least
    assert "tile=6" in repr(prepared)


def test_scratch_is_bounded():
    """vgg16.conv1_2 (64 -> 64, 224 x 224): the per-thread scratch stays around L2 size."""
    for tile in TILES:
        for threads in (1, 2):
            nbytes = wp.scratch_bytes((1, 64, 224, 224), 64, tile, ((1, 1), (1, 1)),
                                      threads=threads)
            assert 0 < nbytes <= threads * 2 * 2**20


def test_docstring_examples():
    result = doctest.testmod(wp, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted >= 8
