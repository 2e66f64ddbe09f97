"""Winograd 3x3 convolution: transform matrices, argument rules and the Python front.

Derivation (Lavin & Gray 2016; Toom-Cook). A linear convolution ``s = g * h`` of a 3-tap filter
``g`` and an ``m``-tap signal ``h`` has ``alpha = m + 2`` coefficients; it is computed exactly
by evaluating both polynomials at ``alpha - 1`` finite points ``a_j`` and at infinity (the
product of the leading coefficients), multiplying pointwise and interpolating:
``s = V^-1 [(E_g g) * (E_h h)]`` with ``E`` the evaluation (Vandermonde) matrices and ``V`` the
``alpha x alpha`` one. The correlation a convolution layer computes, ``y_i = sum_k g_k d_(i+k)``,
is the transpose of ``h -> g * h``, hence ``y = E_h^T [(E_g g) * (V^-T d)]``, i.e.

- ``A^T = E_h^T`` (``m x alpha``): ``A^T[i, j] = a_j ** i``, plus the infinity column
  ``(0, ..., 0, 1)``;
- ``B^T = V^-T`` (``alpha x alpha``): row ``j`` holds the coefficients of the Lagrange numerator
  ``prod_(l != j) (x - a_l)`` (the division by ``f_j = prod_(l != j) (a_j - a_l)`` is moved
  into ``G``), and the infinity row those of ``prod_l (x - a_l)``;
- ``G = diag(1 / f_j) E_g`` (``alpha x 3``): ``G[j, k] = a_j ** k / f_j``, infinity row
  ``(0, 0, 1)``.

In 2-D the transforms are applied on both sides: ``U = G g G^T`` (weights, once),
``V = B^T d B`` (each ``alpha x alpha`` input tile), ``Y = A^T [sum_c U * V] A`` (each
``m x m`` output tile); the sum over input channels is ``alpha^2`` independent GEMMs.

Points. F(2,3) uses ``0, +-1`` (the classic choice, exact in float). F(4,3) uses the scaled
points ``0, +-sqrt(2)/2, +-sqrt(2)`` (Barabasz et al., "Error analysis and improving the accuracy
of Winograd convolution", 2020), measured about 3x more accurate in float32 than the classic
``0, +-1, +-2``. F(6,3) keeps ``0, +-1, +-2, +-1/2``: of the sets we measured (scalings of it,
``+-3/2``, ``+-sqrt(2)`` variants, ``+-1/4``) it was the most accurate. See ``docs/winograd.md``.

``python -m fastconv._winograd_plan`` regenerates ``include/fastconv/kernels/
winograd_transforms.h`` (the straight-line input and output transforms, zero coefficients
skipped) from the matrices here; a test checks the checked-in header is up to date.
"""

from functools import cache
from math import prod, sqrt

import numpy as np

from . import _dispatch
from ._extension import load
from ._validate import working_copy

__all__ = ["TILES", "POINTS", "ALGORITHM_TILE", "ERROR_BOUND", "AUTO_FLOAT32_BOUND",
           "MIN_CHANNELS_PER_GROUP", "matrices", "supports", "auto_tile", "explicit_tile",
           "prepare_weights", "winograd_conv2d", "PreparedWeights", "scratch_bytes"]

#: Output tile sizes m of F(m x m, 3 x 3).
TILES = (2, 4, 6)

#: The finite interpolation points of each tile (infinity is always the last point).
POINTS: dict[int, tuple[float, ...]] = {
    2: (0.0, 1.0, -1.0),
    4: (0.0, sqrt(2) / 2, -sqrt(2) / 2, sqrt(2), -sqrt(2)),
    6: (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5),
}

#: ``algorithm=`` name of each fixed tile.
ALGORITHM_TILE = {"winograd_f2": 2, "winograd_f4": 4, "winograd_f6": 6}

#: Documented error bound of each tile: ``max|y - ref| / max|ref|`` against the float64
#: reference on standard-normal inputs and weights, C_in <= 512 (the accuracy policy's measure,
#: API.md). About 3x the worst value measured by ``benchmarks/accuracy_winograd.py`` (table in
#: ``docs/winograd.md``); ``tests/test_winograd.py`` asserts them with fresh random data.
ERROR_BOUND: dict[str, dict[int, float]] = {
    "float32": {2: 3e-6, 4: 1e-5, 6: 6e-5},
    "float64": {2: 6e-15, 4: 2e-14, 6: 1e-13},
}

#: The accuracy policy of ``algorithm="auto"`` (API.md): a tile is admitted when its float32
#: bound is at most this.
AUTO_FLOAT32_BOUND = 1e-5

#: ``"auto"`` never uses Winograd with fewer input or output channels per group than this:
#: the alpha^2 GEMMs then have a reduction / row count too short to pay for the two tile
#: transforms (direct or im2col is faster), and depthwise-like layers are memory-bound anyway.
#: An explicit ``algorithm="winograd*"`` serves any channel count and any groups (per group).
MIN_CHANNELS_PER_GROUP = 4


@cache
def matrices(tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A^T, G, B^T)`` of F(tile, 3) in float64, shapes ``(m, a)``, ``(a, 3)``, ``(a, a)``.

    ``a = tile + 2``. Derived from :data:`POINTS` as the module docstring explains; polynomial
    coefficients of symmetric point pairs are exact (``(x - p)(x + p) = x^2 - p^2``).
    Read-only C-contiguous arrays (cached).
    """
    points = POINTS[tile]
    m, r = tile, 3
    alpha = m + r - 1
    n = alpha - 1
    at = np.zeros((m, alpha))
    g = np.zeros((alpha, r))
    bt = np.zeros((alpha, alpha))
    for j, p in enumerate(points):
        at[:, j] = [p ** i for i in range(m)]
        others = [q for q in points if q != p]
        g[j] = [p ** k / prod(p - q for q in others) for k in range(r)]
        bt[j] = _poly_coefficients(others, alpha)
    at[m - 1, n] = 1.0
    g[n, r - 1] = 1.0
    bt[n] = _poly_coefficients(points, alpha)
    result = tuple(_snap(mat) for mat in (at, g, bt))
    for mat in result:
        mat.flags.writeable = False
    return result


def _snap(matrix: np.ndarray) -> np.ndarray:
    """Round entries within a few ulps of ``k/1024`` or ``sqrt(2) k/1024`` to that value.

    The products above are exact in real arithmetic; this removes the float64 rounding they
    picked up (``1.0000000000000002`` becomes ``1``), so the generated C keeps its +-1 terms.
    """
    out = matrix.copy()
    for idx, c in np.ndenumerate(matrix):
        for unit in (1.0, sqrt(2)):
            q = round(c / unit * 1024) / 1024 * unit
            if abs(q - c) <= 8e-16 * max(abs(c), 1.0):
                out[idx] = q
                break
    return out


def _poly_coefficients(roots, length: int) -> np.ndarray:
    """Coefficients (lowest degree first, zero-padded to ``length``) of ``prod (x - root)``."""
    coef = np.array([1.0])
    for root in roots:
        coef = np.convolve(coef, [1.0, -root])  # highest degree first
    out = np.zeros(length)
    out[:len(coef)] = coef[::-1]
    return out


# --------------------------------------------------------------------------------------------
# Argument rules
# --------------------------------------------------------------------------------------------
def supports(kernel, stride=(1, 1), dilation=(1, 1), c_in=None, c_out=None, groups=1,
             padding_mode="zeros") -> tuple[bool, str]:
    """Whether Winograd can compute this 2-D convolution, and if not, why.

    Parameters
    ----------
    kernel, stride, dilation : tuple of 2 ints
        The convolution's kernel size, stride and dilation.
    c_in, c_out : int or None
        Input and output channels: any count works (kept for the callers' convenience).
    groups : int
        Channel groups: any count works, each group is its own set of GEMMs.
    padding_mode : str
        Any mode works: the caller pads non-zero modes before calling
        :func:`winograd_conv2d`, which takes explicit zero pads.

    Returns
    -------
    (bool, str)
        ``(True, "")`` or ``(False, reason)``, the reason phrased to follow
        "algorithm='winograd...' cannot serve this convolution: ".

    Examples
    --------
    >>> from fastconv._winograd_plan import supports
    >>> supports((3, 3), c_in=64, c_out=64)
    (True, '')
    >>> supports((3, 3), stride=(2, 2))
    (False, 'Winograd needs stride 1, got (2, 2)')
    >>> supports((3, 3), c_in=3, c_out=2)[0], supports((3, 3), c_in=32, c_out=32, groups=32)[0]
    (True, True)
    """
    del padding_mode  # every mode reduces to zero pads after the caller's pre-padding
    if tuple(kernel) != (3, 3):
        return False, f"Winograd needs a 3x3 kernel, got {tuple(kernel)}"
    if tuple(stride) != (1, 1):
        return False, f"Winograd needs stride 1, got {tuple(stride)}"
    if tuple(dilation) != (1, 1):
        return False, f"Winograd needs dilation 1, got {tuple(dilation)}"
    # Any channel count and any groups: the transforms and the per-group GEMMs work for every
    # size; whether it pays is "auto"'s question (MIN_CHANNELS_PER_GROUP, auto_tile).
    del c_in, c_out, groups
    return True, ""


#: :func:`auto_tile`: F(4,3) needs at least this many channels per group (in and out) ...
AUTO_F4_MIN_CHANNELS = 32
#: ... and at least this many 4x4 tiles per call (batch x tile rows x tile columns; a 14x14
#: output at batch 1 has 16); otherwise F(2,3) ...
AUTO_F4_MIN_TILES = 16
#: ... which needs this many channels per group; with fewer, direct / im2col win.
AUTO_F2_MIN_CHANNELS = 64
#: Per-call weight transforms (the functional conv2d) cost alpha^2 x C_in x C_out work and
#: memory, paid back only over this many tiles of the chosen size per call.
AUTO_PER_CALL_MIN_TILES = 32


def auto_tile(batch: int, out_size, cin_per_group: int, cout_per_group: int,
              per_call_weights: bool = False) -> int | None:
    """The tile ``algorithm="auto"`` should use for a 3x3 stride-1 convolution, or None.

    None means direct / im2col are faster here. Never 6: F(6,3)'s float32 bound is above the
    accuracy policy (:data:`AUTO_FLOAT32_BOUND`). Measured (float32, layer objects, table in
    ``docs/winograd.md``):

    - F(4,3) from 32 channels per group when a call has at least 16 tiles of 4x4: 1.2-2.6x
      faster than direct / im2col (16 channels: direct is 1.4x faster than F(4,3)); on 14x14
      and 16x16 outputs (16 tiles) F(4,3) beat F(2,3) by 1.1-1.4x at 1 thread and 1.25-1.55x
      at 2 (AMD Zen 4, 64-256 channels), ties it at 512 channels;
    - with fewer tiles (10x10 or smaller outputs at batch 1) F(4,3) wastes its partial tiles:
      F(2,3) wins from 64 channels (1.1-2x over F(4,3) and direct / im2col), and direct wins
      below;
    - ``per_call_weights`` (no layer object: the weights are transformed on every call): the
      tile also needs :data:`AUTO_PER_CALL_MIN_TILES` tiles of its size, else the next rule.

    Examples
    --------
    >>> from fastconv._winograd_plan import auto_tile
    >>> auto_tile(1, (56, 56), 64, 64), auto_tile(1, (14, 14), 256, 256)
    (4, 4)
    >>> auto_tile(1, (14, 14), 256, 256, per_call_weights=True), auto_tile(1, (7, 7), 512, 512)
    (2, 2)
    >>> auto_tile(1, (56, 56), 16, 16) is None, auto_tile(1, (7, 7), 512, 512, True) is None
    (True, True)
    """
    oh, ow = out_size
    channels = min(cin_per_group, cout_per_group)

    def tiles(m):
        return batch * -(-oh // m) * -(-ow // m)

    def pays_back(m):
        return not per_call_weights or tiles(m) >= AUTO_PER_CALL_MIN_TILES

    if channels >= AUTO_F4_MIN_CHANNELS and tiles(4) >= AUTO_F4_MIN_TILES and pays_back(4):
        return 4
    if channels >= AUTO_F2_MIN_CHANNELS and pays_back(2):
        return 2
    return None


def explicit_tile(batch: int, out_size) -> int:
    """The tile of ``algorithm="winograd"`` (Winograd asked for, tile left to the library):
    :func:`auto_tile`'s choice between F(4,3) and F(2,3) without its channel thresholds.

    Examples
    --------
    >>> from fastconv._winograd_plan import explicit_tile
    >>> explicit_tile(1, (56, 56)), explicit_tile(1, (7, 7)), explicit_tile(8, (7, 7))
    (4, 2, 4)
    >>> explicit_tile(1, (14, 14)), explicit_tile(1, (10, 10))
    (4, 2)
    """
    oh, ow = out_size
    return 4 if batch * -(-oh // 4) * -(-ow // 4) >= AUTO_F4_MIN_TILES else 2


# --------------------------------------------------------------------------------------------
# Prepared weights and the call
# --------------------------------------------------------------------------------------------
class PreparedWeights:
    """Transformed weights ``U = G g G^T`` packed for the GEMM micro-kernel of one ISA.

    Built by :func:`prepare_weights`; read-only afterwards. Attributes: ``tile``, ``dtype``,
    ``isa`` (the int ISA index the packing is for), ``c_out``, ``cin_per_group``, ``groups``,
    ``packed`` (1-D array: alpha^2 x groups packed-A matrices of ``c_out/groups`` x
    ``cin_per_group``, ``U`` computed in float64 and rounded once to ``dtype``).
    """

    __slots__ = ("tile", "dtype", "isa", "c_out", "cin_per_group", "groups", "packed")

    def __init__(self, tile, dtype, isa, c_out, cin_per_group, groups, packed):
        self.tile = tile
        self.dtype = dtype
        self.isa = isa
        self.c_out = c_out
        self.cin_per_group = cin_per_group
        self.groups = groups
        self.packed = packed

    @property
    def nbytes(self) -> int:
        """Bytes held by the packed transformed weights."""
        return self.packed.nbytes

    def __repr__(self) -> str:
        return (f"PreparedWeights(tile={self.tile}, dtype={self.dtype}, isa={self.isa}, "
                f"c_out={self.c_out}, cin_per_group={self.cin_per_group}, "
                f"groups={self.groups}, nbytes={self.nbytes})")


def prepare_weights(w, tile: int, dtype, isa: int | None = None, groups: int = 1,
                    threads: int = 1) -> PreparedWeights:
    """Transform and pack 3x3 weights for F(tile x tile, 3 x 3).

    Parameters
    ----------
    w : ndarray, shape (C_out, C_in // groups, 3, 3)
        Real weights (any dtype, any strides; copied).
    tile : {2, 4, 6}
        Output tile size m.
    dtype : float32 or float64
        The working dtype of the calls these weights will serve.
    isa : int, optional
        ISA index (``fastconv._dispatch.isa_index()``, the default): fixes the GEMM's MR.
    groups : int
        Channel groups (C_out must be divisible by it; the caller validated that).
    threads : int
        Threads for the transform.

    Returns
    -------
    PreparedWeights

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._winograd_plan import prepare_weights
    >>> w = np.ones((8, 4, 3, 3))
    >>> prepared = prepare_weights(w, 4, np.float32)
    >>> prepared.tile, prepared.dtype, prepared.c_out, prepared.cin_per_group
    (4, dtype('float32'), 8, 4)
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    if tile not in TILES:
        raise ValueError(f"tile must be one of {TILES}, got {tile!r}")
    w = np.asarray(w)
    if w.ndim != 4 or w.shape[2:] != (3, 3):
        raise ValueError(f"w must have shape (C_out, C_in // groups, 3, 3), got {w.shape}")
    isa = _dispatch.isa_index() if isa is None else int(isa)
    c_out, cin_per_group = w.shape[0], w.shape[1]
    wino = load("_winograd")
    size = wino.packed_weights_size(isa, dtype == np.float64, tile, c_out, cin_per_group,
                                    groups)
    packed = np.empty(size, dtype=dtype)
    g = matrices(tile)[1]
    wino.transform_weights(np.ascontiguousarray(w, dtype=dtype), g, tile, groups, isa,
                           threads, packed)
    packed.flags.writeable = False
    return PreparedWeights(tile, dtype, isa, c_out, cin_per_group, groups, packed)


def winograd_conv2d(x, prepared: PreparedWeights, bias=None, pads=((0, 0), (0, 0)),
                    threads: int = 1, out=None, block_tiles: int = 0,
                    k_split: int = 0) -> np.ndarray:
    """Stride-1, dilation-1 3x3 convolution by Winograd F(m x m, 3 x 3) with prepared weights.

    Contract (the caller validated; this trusts it): ``x`` is ``(N, C_in, H, W)`` with
    ``C_in == prepared.cin_per_group * prepared.groups`` (copied to a C-contiguous array of
    ``prepared.dtype`` unless it already is one; likewise ``bias``, None or ``(C_out,)``);
    ``pads`` are explicit zero pads ``((top, bottom), (left, right))`` (non-negative; other
    padding modes are applied to ``x`` before the call); the output
    ``(N, C_out, H + top + bottom - 2, W + left + right - 2)`` has positive sizes; ``out`` is
    None or a C-contiguous array of that shape and dtype not overlapping the inputs;
    ``prepared.isa`` is an ISA this process may run; ``threads >= 1`` is used as given.
    ``block_tiles`` / ``k_split`` (0 = automatic) force the work decomposition, for tests.

    Returns
    -------
    ndarray
        ``out`` (or a new array) holding the convolution.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._winograd_plan import prepare_weights, winograd_conv2d
    >>> x = np.ones((1, 4, 5, 5), dtype=np.float32)
    >>> prepared = prepare_weights(np.ones((2, 4, 3, 3)), 2, np.float32)
    >>> y = winograd_conv2d(x, prepared, pads=((1, 1), (1, 1)))
    >>> y.shape
    (1, 2, 5, 5)
    >>> y[0, 0, :2, :3].tolist()  # 4 channels x (corner 4 / edge 6 / interior 9 taps)
    [[16.0, 24.0, 24.0], [24.0, 36.0, 36.0]]
    """
    # Free when the caller already holds C-contiguous arrays of the working dtype.
    x = working_copy(x, prepared.dtype)
    if bias is not None:
        bias = working_copy(bias, prepared.dtype)
    (top, bottom), (left, right) = pads
    n, c_in, h, w = x.shape
    out_h, out_w = h + top + bottom - 2, w + left + right - 2
    if out is None:
        out = np.empty((n, prepared.c_out, out_h, out_w), dtype=prepared.dtype)
    if x.nbytes <= STAGE_MAX_BYTES and (top or bottom or left or right or out_h % prepared.tile
                                        or out_w % prepared.tile):
        x, top, left = _staged(x, prepared.tile, top, left, out_h, out_w)
    wino = load("_winograd")
    wino.conv2d(x, prepared.packed, bias, out, prepared.tile, prepared.groups, top, left,
                prepared.isa, threads, block_tiles, k_split)
    return out


#: Inputs up to this size are staged zero-padded to whole tiles (:func:`_staged`).
STAGE_MAX_BYTES = 4 << 20


def _staged(x, tile: int, top: int, left: int, out_h: int, out_w: int):
    """``x`` inside zeros that pad it to whole tiles: every patch of the input transform is
    then an interior one, read with whole rows (border patches are otherwise staged one value
    at a time, tile by tile and channel by channel: resnet18.conv2 / conv3 are 3-4 % faster
    staged).
    Two columns more keep even the last patch's 8-wide row reads inside the image. Worth it
    while the copy is small next to the call; returns ``(staged x, 0, 0)``."""
    n, c, h, w = x.shape
    hp = -(-out_h // tile) * tile + 2
    wp = -(-out_w // tile) * tile + 4
    staged = np.empty((n, c, hp, wp), dtype=x.dtype)
    rows, cols = min(h, hp - top), min(w, wp - left)
    staged[:, :, :top] = 0
    staged[:, :, top + rows:] = 0
    staged[:, :, top:top + rows, :left] = 0
    staged[:, :, top:top + rows, left + cols:] = 0
    staged[:, :, top:top + rows, left:left + cols] = x[:, :, :rows, :cols]
    return staged, 0, 0


def scratch_bytes(x_shape, c_out: int, tile: int, pads=((0, 0), (0, 0)), groups: int = 1,
                  dtype=np.float32, isa: int | None = None, threads: int = 1) -> int:
    """Peak extra bytes one :func:`winograd_conv2d` call allocates (scratch of all threads).

    Not counted: the output and the prepared weights (:attr:`PreparedWeights.nbytes`).

    Examples
    --------
    >>> from fastconv._winograd_plan import scratch_bytes
    >>> scratch_bytes((1, 64, 224, 224), 64, 4, ((1, 1), (1, 1))) < 2 ** 20
    True
    """
    n, c_in, h, w = x_shape
    (top, bottom), (left, right) = pads
    isa = _dispatch.isa_index() if isa is None else int(isa)
    plan = load("_winograd").plan(tuple(x_shape), c_out, tile, groups, h + top + bottom - 2,
                                  w + left + right - 2, isa, np.dtype(dtype) == np.float64,
                                  threads)
    return int(plan["scratch_bytes"])


# --------------------------------------------------------------------------------------------
# C code generation: straight-line transforms, zero coefficients skipped
# --------------------------------------------------------------------------------------------
def _c_rows(name: str, matrix: np.ndarray) -> str:
    """``#define name(OUT, IN)`` assigning ``OUT(i) = sum_k matrix[i, k] * IN(k)``."""
    lines = []
    for i, row in enumerate(matrix):
        terms = []
        for k, c in enumerate(row):
            if c == 0.0:
                continue
            if c == 1.0:
                terms.append(f"+ IN({k})")
            elif c == -1.0:
                terms.append(f"- IN({k})")
            else:
                terms.append(f"+ FC_WC({float(c)!r}) * IN({k})")
        expr = " ".join(terms).lstrip("+ ")
        if expr.startswith("- "):
            expr = "-" + expr[2:]
        lines.append(f"    OUT({i}) = {expr};")
    return f"#define {name}(OUT, IN) \\\n" + " \\\n".join(lines) + "\n"


def c_header() -> str:
    """The text of ``include/fastconv/kernels/winograd_transforms.h``."""
    parts = [
        "/* GENERATED by `python -m fastconv._winograd_plan` from the matrices in\n"
        " * src/fastconv/_winograd_plan.py: do not edit by hand.\n"
        " *\n"
        " * FC_WINO_F<m>_BT(OUT, IN): OUT(i) = sum_k B^T[i][k] IN(k), i < alpha (input tile).\n"
        " * FC_WINO_F<m>_AT(OUT, IN): OUT(i) = sum_k A^T[i][k] IN(k), i < m (output tile).\n"
        " * FC_WC(c) must cast the constant c to the working type. */\n"
        "#ifndef FASTCONV_KERNELS_WINOGRAD_TRANSFORMS_H\n"
        "#define FASTCONV_KERNELS_WINOGRAD_TRANSFORMS_H\n"]
    for tile in TILES:
        at, _, bt = matrices(tile)
        points = ", ".join(f"{p:.6g}" for p in POINTS[tile])
        parts.append(f"\n/* F({tile}x{tile}, 3x3): alpha = {tile + 2}, points {points}, inf */\n")
        parts.append(_c_rows(f"FC_WINO_F{tile}_BT", bt))
        parts.append(_c_rows(f"FC_WINO_F{tile}_AT", at))
    parts.append("\n#endif\n")
    return "".join(parts)


if __name__ == "__main__":  # pragma: no cover - developer tool
    import pathlib

    target = (pathlib.Path(__file__).resolve().parents[2] / "include" / "fastconv" / "kernels"
              / "winograd_transforms.h")
    target.write_text(c_header())
    print(f"wrote {target}")
