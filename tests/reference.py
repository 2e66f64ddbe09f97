"""Float64 NumPy reference implementations of every fastconv operator, and the tolerance helper.

Everything here is written from the definitions in ``API.md`` (PyTorch's semantics unless API.md
says ONNX's) and is deliberately independent of the package: this module never imports
fastconv, not even ``fastconv.shapes``; sizes and padding are computed here from the formulas.

Conventions:

* Every operator takes batched arrays ``(N, C, *spatial)`` with any number of spatial dims and
  explicit parameters (ints or per-dim tuples). ``padding`` may be any public form (int, per-dim
  tuple, ``(before, after)`` pairs, ``"valid"``, ``"same"``, ``"same_lower"``, ``"full"``);
  :func:`ref_resolve_padding` turns it into pairs.
* Floating computations are done in float64 and return float64. Max pooling (and the global /
  adaptive max pools and max unpooling) keep integer dtypes and are exact.
* Clarity first, but no Python loop over output pixels: convolutions loop over kernel taps and
  contract channels with ``np.einsum`` on strided slices; pools loop over window taps and gather
  with fancy indexing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "TOLERANCES",
    "assert_close",
    "ref_adaptive_avg_pool",
    "ref_adaptive_avg_pool_backward",
    "ref_adaptive_bins",
    "ref_adaptive_max_pool",
    "ref_adaptive_max_pool_backward",
    "ref_avg_pool",
    "ref_avg_pool_backward",
    "ref_conv",
    "ref_conv_backward",
    "ref_conv_output_size",
    "ref_conv_transpose",
    "ref_conv_transpose_backward",
    "ref_conv_transpose_output_size",
    "ref_deform_conv2d",
    "ref_global_avg_pool",
    "ref_global_max_pool",
    "ref_lp_pool",
    "ref_max_pool",
    "ref_max_pool_backward",
    "ref_max_unpool",
    "ref_mixed_pool2d",
    "ref_pool_output_size",
    "ref_resolve_padding",
    "ref_spatial_pyramid_pool2d",
]

# --------------------------------------------------------------------------------------------
# Tolerances: stated once. Error measure: max|actual - expected| / max(max|expected|, tiny)
# over the finite entries (NaN and +-Inf positions must match exactly). Keyed by the dtype the
# operator computes in, then by algorithm; the ``None`` entry is the default for that dtype
# (used by "auto", "direct", "im2col" and pooling). Integer results must be exact.
# --------------------------------------------------------------------------------------------
TOLERANCES: dict[str, dict[str | None, float]] = {
    # Winograd rows: the documented error bounds (fastconv._winograd_plan.ERROR_BOUND,
    # docs/winograd.md), about 3x the worst error measured at C_in = 16..512
    "float64": {
        None: 1e-12,
        "winograd_f2": 6e-15,
        "winograd_f4": 2e-14,
        "winograd_f6": 1e-13,
        "winograd": 2e-14,  # tile chosen by the library: F(4,3) or F(2,3)
    },
    "float32": {
        None: 1e-5,
        "winograd_f2": 3e-6,
        "winograd_f4": 1e-5,
        "winograd_f6": 6e-5,
        "winograd": 1e-5,  # tile chosen by the library: F(4,3) or F(2,3)
    },
    "exact": {None: 0.0},  # integer and bool results (max pooling keeps integer dtypes)
}

#: Every algorithm name of the public API; those without an entry above use the default.
ALGORITHMS = ("auto", "direct", "im2col", "winograd", "winograd_f2", "winograd_f4",
              "winograd_f6")

_TINY = np.finfo(np.float64).tiny


def tolerance(dtype, algorithm=None) -> float:
    """The tolerance (relative to max|expected|) for results of ``dtype`` from ``algorithm``.

    float16/bfloat-like and float32 results share the float32 row (fastconv computes them in
    float32); other floats use the float64 row; integer and bool results must be exact.
    """
    if algorithm is not None and algorithm not in ALGORITHMS:
        raise KeyError(f"unknown algorithm {algorithm!r}; expected one of {ALGORITHMS}")
    dt = np.dtype(dtype)
    if dt.kind in "iub":
        row = TOLERANCES["exact"]
    elif dt.kind == "f":
        row = TOLERANCES["float32" if dt.itemsize <= 4 else "float64"]
    else:
        raise TypeError(f"no tolerance for dtype {dt}")
    return row.get(algorithm, row[None])


def assert_close(actual, expected, dtype=None, algorithm=None):
    """Assert ``actual`` matches the float64 reference ``expected`` within the stated tolerance.

    ``dtype`` is the dtype the operator computed in (default: ``actual.dtype``); ``algorithm``
    selects a looser row where one is stated (e.g. ``"winograd_f6"``). Shapes must be equal,
    NaN / +Inf / -Inf must sit at exactly the same positions, and on the remaining entries
    ``max|actual - expected| / max(max|expected|, tiny)`` must not exceed the tolerance.
    Returns the measured error.
    """
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    dt = np.dtype(actual.dtype if dtype is None else dtype)
    tol = tolerance(dt, algorithm)
    where = f"(dtype {dt}, algorithm {algorithm})"
    assert actual.shape == expected.shape, (
        f"shape mismatch {where}: actual {actual.shape}, expected {expected.shape}")
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    for name, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        ma, me = test(a), test(e)
        if not np.array_equal(ma, me):
            bad = np.argwhere(ma != me)
            raise AssertionError(
                f"{name} positions differ {where}: {len(bad)} mismatches, first at index "
                f"{tuple(int(i) for i in bad[0])}: actual {a[tuple(bad[0])]!r}, expected "
                f"{e[tuple(bad[0])]!r}")
    finite = np.isfinite(e)
    if not finite.any():
        return 0.0
    diff = np.abs(np.where(finite, a, 0.0) - np.where(finite, e, 0.0))
    scale = max(float(np.max(np.abs(e[finite]))), _TINY)
    err = float(diff.max()) / scale
    if not err <= tol:
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
        raise AssertionError(
            f"max|err| / max|ref| = {err:.3e} exceeds tolerance {tol:.1e} {where}; worst at "
            f"index {tuple(int(i) for i in worst)}: actual {a[worst]!r}, expected {e[worst]!r} "
            f"(max|ref| = {scale:.6g})")
    return err


# --------------------------------------------------------------------------------------------
# Sizes and padding, from the definitions in API.md
# --------------------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _tuple(v, d: int, name: str) -> tuple[int, ...]:
    """An int (same for every dim) or a sequence of ``d`` ints → a tuple of ``d`` ints."""
    if _is_int(v):
        return (int(v),) * d
    t = tuple(int(i) for i in v)
    if len(t) != d:
        raise ValueError(f"{name} must be an int or {d} ints, got {v!r}")
    return t


def _ndim_of(*values) -> int:
    for v in values:
        if isinstance(v, (Sequence, np.ndarray)) and not isinstance(v, str):
            return len(v)
    return 1


def ref_resolve_padding(padding, in_sizes, kernel, stride=1, dilation=1, transposed=False,
                        output_padding=0):
    """Every public ``padding`` form → a tuple of ``(before, after)`` pairs, per API.md.

    int / per-dim tuple: symmetric; pairs: as given; ``"valid"``: zeros; ``"same"``: total
    ``max((ceil(in/s) - 1)*s + (k-1)*d + 1 - in, 0)`` (output ``ceil(in/s)``), extra element at
    the end (ONNX SAME_UPPER); ``"same_lower"``: extra element at the start; ``"full"``
    (convolution only): ``(k-1)*d`` on both sides. With ``transposed=True`` ``"same"`` makes the
    transposed convolution's output ``in*s``: total ``s*(in-1) + output_padding + (k-1)*d + 1 -
    in*s`` (ONNX's formula), split with floor division; negative when the kernel extent is below
    the stride, and then so may be the pads (the output window reaches past the full result).
    """
    d = _ndim_of(in_sizes, kernel, stride, dilation, output_padding,
                 None if isinstance(padding, str) else padding)
    n, k, s, dl, op = (_tuple(v, d, name) for v, name in (
        (in_sizes, "in_sizes"), (kernel, "kernel"), (stride, "stride"),
        (dilation, "dilation"), (output_padding, "output_padding")))
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return ((0, 0),) * d
        if mode == "full":
            if transposed:
                raise ValueError("padding='full' is for convolutions only")
            return tuple(((kk - 1) * di, (kk - 1) * di) for kk, di in zip(k, dl))
        if mode not in ("same", "same_lower"):
            raise ValueError(f"unknown padding {padding!r}")
        pairs = []
        for i in range(d):
            extent = (k[i] - 1) * dl[i] + 1
            if transposed:
                total = s[i] * (n[i] - 1) + op[i] + extent - n[i] * s[i]
            else:
                total = max((math.ceil(n[i] / s[i]) - 1) * s[i] + extent - n[i], 0)
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if mode == "same" else (big, small))
        return tuple(pairs)
    if _is_int(padding):
        pairs = ((int(padding), int(padding)),) * d
    else:
        items = list(padding)
        if len(items) != d:
            raise ValueError(f"padding must have {d} entries, got {padding!r}")
        if all(_is_int(p) for p in items):
            pairs = tuple((int(p), int(p)) for p in items)
        else:
            pairs = tuple((int(p[0]), int(p[1])) for p in items)
            if any(len(p) != 2 for p in items):
                raise ValueError(f"padding pairs must be (before, after), got {padding!r}")
    if any(p < 0 for pair in pairs for p in pair):
        raise ValueError(f"padding must not be negative, got {padding!r}")
    return pairs


def ref_conv_output_size(in_sizes, kernel, stride, pads, dilation):
    """Convolution output size per dim: ``floor((in + pb + pa - (k-1)*d - 1) / s) + 1``."""
    out = tuple((n + pb + pa - (k - 1) * dl - 1) // s + 1
                for n, k, s, (pb, pa), dl in zip(in_sizes, kernel, stride, pads, dilation))
    if any(o < 1 for o in out):
        raise ValueError(f"computed output size {out} < 1 (input {tuple(in_sizes)}, kernel "
                         f"{tuple(kernel)}, stride {tuple(stride)}, padding {tuple(pads)}, "
                         f"dilation {tuple(dilation)})")
    return out


def ref_conv_transpose_output_size(in_sizes, kernel, stride, pads, dilation, output_padding):
    """Transposed output size: ``(in-1)*s - pb - pa + (k-1)*d + output_padding + 1``."""
    out = tuple((n - 1) * s - pb - pa + (k - 1) * dl + op + 1
                for n, k, s, (pb, pa), dl, op in zip(in_sizes, kernel, stride, pads, dilation,
                                                     output_padding))
    if any(o < 1 for o in out):
        raise ValueError(f"computed output size {out} < 1")
    return out


def ref_pool_output_size(in_sizes, kernel, stride, pads, dilation, ceil_mode):
    """Pool output size, PyTorch's rule.

    ``out = floor_or_ceil((in + pb + pa - d*(k-1) - 1) / s) + 1``; with ceil_mode a last window
    starting in the right padding is dropped: ``(out-1)*s >= in + pb`` → ``out -= 1``.
    """
    out = []
    for n, k, s, (pb, pa), dl in zip(in_sizes, kernel, stride, pads, dilation):
        num = n + pb + pa - dl * (k - 1) - 1
        o = (-(-num // s) if ceil_mode else num // s) + 1
        if ceil_mode and (o - 1) * s >= n + pb:
            o -= 1
        out.append(o)
    if any(o < 1 for o in out):
        raise ValueError(f"computed pool output size {tuple(out)} < 1")
    return tuple(out)


def ref_adaptive_bins(in_size: int, out_size: int):
    """Adaptive pooling bins: bin ``i`` covers ``[floor(i*in/out), ceil((i+1)*in/out))``."""
    return [((i * in_size) // out_size, -(-((i + 1) * in_size) // out_size))
            for i in range(out_size)]


# --------------------------------------------------------------------------------------------
# Convolutions
# --------------------------------------------------------------------------------------------
_NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                "circular": "wrap"}


def ref_conv(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """N-d convolution (cross-correlation, no kernel flip) as ``torch.nn.functional.conv*d``.

    ``x``: (N, C_in, *in), ``w``: (C_out, C_in // groups, *k), ``bias``: (C_out,) or None.
    ``y[n, o, p] = bias[o] + sum_{c in group(o), t} xpad[n, c, p*s + t*d] * w[o, c, t]``, where
    ``xpad`` is ``x`` padded per ``padding_mode`` (PyTorch's meaning: zeros, reflect = np.pad
    "reflect", replicate = "edge", circular = "wrap"); padding may be asymmetric.
    Loops over kernel taps; each tap contracts channels with einsum on a strided slice.
    """
    x = np.asarray(x).astype(np.float64)
    w = np.asarray(w).astype(np.float64)
    n_batch, c_in = x.shape[:2]
    in_sizes, k = x.shape[2:], w.shape[2:]
    d = len(in_sizes)
    c_out, c_in_g = w.shape[:2]
    if w.ndim != x.ndim or c_in_g * groups != c_in or c_out % groups:
        raise ValueError(f"bad shapes: x {x.shape}, w {w.shape}, groups {groups}")
    s, dl = _tuple(stride, d, "stride"), _tuple(dilation, d, "dilation")
    pads = ref_resolve_padding(padding, in_sizes, k, s, dl)
    out = ref_conv_output_size(in_sizes, k, s, pads, dl)
    mode = _NP_PAD_MODE[padding_mode]
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads), mode=mode)
    xg = xp.reshape(n_batch, groups, c_in_g, *xp.shape[2:])
    wg = w.reshape(groups, c_out // groups, c_in_g, *k)
    y = np.zeros((n_batch, groups, c_out // groups) + out)
    for tap in np.ndindex(*k):
        window = tuple(slice(t * di, t * di + (o - 1) * si + 1, si)
                       for t, di, o, si in zip(tap, dl, out, s))
        y += np.einsum("ngc...,goc->ngo...", xg[(slice(None),) * 3 + window],
                       wg[(slice(None),) * 3 + tap])
    y = y.reshape(n_batch, c_out, *out)
    if bias is not None:
        y += np.asarray(bias).astype(np.float64).reshape((1, c_out) + (1,) * d)
    return y


def ref_conv_transpose(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                       dilation=1):
    """N-d transposed convolution as ``torch.nn.functional.conv_transpose*d``, by scattering.

    ``x``: (N, C_in, *in), ``w``: (C_in, C_out // groups, *k). Each input element
    ``x[n, c, j]`` times the kernel ``w[c, o, t]`` is added into the full output at
    ``j*s + t*d`` (full size ``(in-1)*s + (k-1)*d + 1``, plus ``output_padding`` zero rows at
    the end); the result is cropped by ``pb`` at the start and ``pa`` at the end, then ``bias``
    is added. Output size ``(in-1)*s - pb - pa + (k-1)*d + output_padding + 1``. Written
    independently of :func:`ref_conv` so that adjoint tests between them mean something.
    """
    x = np.asarray(x).astype(np.float64)
    w = np.asarray(w).astype(np.float64)
    n_batch, c_in = x.shape[:2]
    in_sizes, k = x.shape[2:], w.shape[2:]
    d = len(in_sizes)
    if w.ndim != x.ndim or w.shape[0] != c_in or c_in % groups:
        raise ValueError(f"bad shapes: x {x.shape}, w {w.shape}, groups {groups}")
    c_in_g, c_out_g = c_in // groups, w.shape[1]
    s, dl = _tuple(stride, d, "stride"), _tuple(dilation, d, "dilation")
    op = _tuple(output_padding, d, "output_padding")
    pads = ref_resolve_padding(padding, in_sizes, k, s, dl, transposed=True, output_padding=op)
    out = ref_conv_transpose_output_size(in_sizes, k, s, pads, dl, op)
    full = tuple((n - 1) * si + (kk - 1) * di + 1 + o
                 for n, si, kk, di, o in zip(in_sizes, s, k, dl, op))
    xg = x.reshape(n_batch, groups, c_in_g, *in_sizes)
    wg = w.reshape(groups, c_in_g, c_out_g, *k)
    y = np.zeros((n_batch, groups, c_out_g) + full)
    for tap in np.ndindex(*k):
        dest = tuple(slice(t * di, t * di + (n - 1) * si + 1, si)
                     for t, di, n, si in zip(tap, dl, in_sizes, s))
        y[(slice(None),) * 3 + dest] += np.einsum("ngc...,gco->ngo...", xg,
                                                  wg[(slice(None),) * 3 + tap])
    # a negative pad (transposed "same", kernel extent below the stride): the output window
    # reaches past the full result, where it reads zeros
    grow = [(max(-pb, 0), max(-pa, 0)) for pb, pa in pads]
    y = np.pad(y, [(0, 0)] * 3 + grow)
    crop = tuple(slice(pb + lo, pb + lo + o) for (pb, _), (lo, _), o in zip(pads, grow, out))
    y = y[(slice(None),) * 3 + crop].reshape(n_batch, groups * c_out_g, *out)
    if bias is not None:
        y = y + np.asarray(bias).astype(np.float64).reshape((1, -1) + (1,) * d)
    return np.ascontiguousarray(y)


# --------------------------------------------------------------------------------------------
# Pools: a window is described per spatial dim by the input positions of its taps
# --------------------------------------------------------------------------------------------
def _grid_windows(in_sizes, kernel, stride, pads, dilation, out):
    """Per dim: tap positions ``o*s - pb + t*d`` (out, k), which are real input elements, and
    which lie inside input + explicit padding (``< in + pa``; ceil_mode overhang excluded)."""
    dims = []
    for n, k, s, (pb, pa), dl, o in zip(in_sizes, kernel, stride, pads, dilation, out):
        pos = np.arange(o)[:, None] * s - pb + np.arange(k)[None, :] * dl
        dims.append((pos, (pos >= 0) & (pos < n), pos < n + pa))
    return dims


def _adaptive_windows(in_sizes, out):
    """Per dim: tap positions of the adaptive bins, padded to the longest bin (masked)."""
    dims = []
    for n, o in zip(in_sizes, out):
        bins = np.array(ref_adaptive_bins(n, o))
        kmax = int((bins[:, 1] - bins[:, 0]).max())
        pos = bins[:, :1] + np.arange(kmax)[None, :]
        valid = pos < bins[:, 1:]
        dims.append((pos, valid, valid))
    return dims


def _outer(vectors, op):
    """Combine one 1-d vector per dim into their outer op, shape (len0, len1, ...)."""
    d = len(vectors)
    result = None
    for i, v in enumerate(vectors):
        v = np.asarray(v).reshape((1,) * i + (-1,) + (1,) * (d - i - 1))
        result = v if result is None else op(result, v)
    return result


def _taps(x, dims):
    """Yield, per tap in row-major window order, ``(values, valid, counted, flat_index)``.

    ``values`` (N, C, *out) are the input elements at the tap (clipped where not ``valid``),
    ``valid`` / ``counted`` (*out) are the masks of real elements / divisor-counted positions,
    ``flat_index`` (*out) is the row-major flat index into the input plane.
    """
    in_sizes = x.shape[2:]
    plane_strides = [math.prod(in_sizes[i + 1:]) for i in range(len(in_sizes))]
    for tap in itertools.product(*(range(pos.shape[1]) for pos, _, _ in dims)):
        cols = [np.clip(pos[:, t], 0, n - 1) for (pos, _, _), t, n in zip(dims, tap, in_sizes)]
        values = x[(slice(None), slice(None)) + np.ix_(*cols)]
        valid = _outer([v[:, t] for (_, v, _), t in zip(dims, tap)], np.logical_and)
        counted = _outer([c[:, t] for (_, _, c), t in zip(dims, tap)], np.logical_and)
        flat = _outer([c * st for c, st in zip(cols, plane_strides)], np.add)
        yield values, valid, counted, flat


def _as_float_or_int(x):
    """Integer (and bool) arrays keep their dtype (max pooling); everything else → float64."""
    x = np.asarray(x)
    return x if x.dtype.kind in "iub" else x.astype(np.float64)


def _window_max(x, dims, return_indices):
    """Max over each window's real elements; ties → first tap; NaN wins (the first NaN).

    A window with no real element gives -inf (integer dtypes: the dtype's minimum) and index -1.
    """
    out_shape = x.shape[:2] + tuple(pos.shape[0] for pos, _, _ in dims)
    is_float = x.dtype.kind == "f"
    fill = -np.inf if is_float else (np.iinfo(x.dtype).min if x.dtype.kind in "iu" else False)
    best = np.full(out_shape, fill, dtype=x.dtype)
    index = np.full(out_shape, -1, dtype=np.int64)
    have = np.zeros(out_shape, dtype=bool)
    for values, valid, _, flat in _taps(x, dims):
        better = ~have | (values > best)
        if is_float:
            better |= np.isnan(values) & ~np.isnan(best)
        update = valid & better
        best = np.where(update, values, best)
        index = np.where(update, flat, index)
        have |= valid
    return (best, index) if return_indices else best


def _pool_setup(x, kernel, stride, padding, dilation, ceil_mode):
    d = x.ndim - 2
    in_sizes = x.shape[2:]
    k = _tuple(kernel, d, "kernel")
    s = k if stride is None else _tuple(stride, d, "stride")
    dl = _tuple(dilation, d, "dilation")
    pads = ref_resolve_padding(padding, in_sizes, k, s, dl)
    for kk, di, pair in zip(k, dl, pads):
        if max(pair) >= (kk - 1) * di + 1:
            raise ValueError(f"pool padding {pads} must be smaller than the dilated kernel "
                             f"extent (kernel {k}, dilation {dl})")
    out = ref_pool_output_size(in_sizes, k, s, pads, dl, ceil_mode)
    return _grid_windows(in_sizes, k, s, pads, dl, out)


def ref_max_pool(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False):
    """N-d max pooling as ``torch.nn.functional.max_pool*d`` (padded positions ignored).

    Output size per :func:`ref_pool_output_size` (PyTorch's ceil_mode rule). Floats → float64,
    integer dtypes kept (exact). With ``return_indices`` also returns int64 row-major flat
    indices into each (n, c) input plane; ties → the first element in row-major window order;
    a NaN in a window gives NaN and the index of the first NaN.
    """
    x = _as_float_or_int(x)
    dims = _pool_setup(x, kernel, stride, padding, dilation, ceil_mode)
    return _window_max(x, dims, return_indices)


def ref_avg_pool(x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
    """N-d average pooling as ``torch.nn.functional.avg_pool*d``, with ONNX's dilation.

    Sum of the window's real elements divided by: ``divisor_override`` if given; else with
    ``count_include_pad`` the number of taps inside input + explicit padding (never the ceil_mode
    overhang past the right padding); else the number of real elements (0 → NaN).
    """
    x = np.asarray(x).astype(np.float64)
    dims = _pool_setup(x, kernel, stride, padding, dilation, ceil_mode)
    total = 0.0
    n_real = 0
    n_counted = 0
    for values, valid, counted, _ in _taps(x, dims):
        total = total + np.where(valid, values, 0.0)
        n_real = n_real + valid
        n_counted = n_counted + counted
    if divisor_override is not None:
        divisor = float(divisor_override)
    else:
        divisor = (n_counted if count_include_pad else n_real).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / divisor


def ref_lp_pool(x, p, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d power-average pooling, ONNX's LpPool: ``(sum over window |x|^p)^(1/p)``.

    Padding (and ceil_mode overhang) counts as zeros; ``p = inf`` gives ``max |x|``.
    Differs from PyTorch's ``lp_pool`` for odd p (PyTorch sums ``x^p`` without ``| |``).
    """
    x = np.asarray(x).astype(np.float64)
    dims = _pool_setup(x, kernel, stride, padding, dilation, ceil_mode)
    if math.isinf(p):
        result = 0.0
        for values, valid, _, _ in _taps(x, dims):
            result = np.maximum(result, np.where(valid, np.abs(values), 0.0))
        return result
    total = 0.0
    for values, valid, _, _ in _taps(x, dims):
        total = total + np.where(valid, np.abs(values) ** p, 0.0)
    return total ** (1.0 / p)


def _adaptive_out(x, output_size):
    d = x.ndim - 2
    if output_size is None or _is_int(output_size):
        output_size = (output_size,) * d
    if len(output_size) != d:
        raise ValueError(f"output_size must have {d} entries, got {output_size!r}")
    return tuple(n if o is None else int(o) for n, o in zip(x.shape[2:], output_size))


def ref_adaptive_avg_pool(x, output_size):
    """N-d adaptive average pooling (PyTorch): mean over bins ``[floor(i*in/out),
    ceil((i+1)*in/out))`` per dim; a None entry keeps that input size."""
    x = np.asarray(x).astype(np.float64)
    dims = _adaptive_windows(x.shape[2:], _adaptive_out(x, output_size))
    total = 0.0
    count = 0
    for values, valid, _, _ in _taps(x, dims):
        total = total + np.where(valid, values, 0.0)
        count = count + valid
    return total / count


def ref_adaptive_max_pool(x, output_size, return_indices=False):
    """N-d adaptive max pooling (PyTorch's bins), indices / ties / NaN as :func:`ref_max_pool`;
    integer dtypes kept."""
    x = _as_float_or_int(x)
    dims = _adaptive_windows(x.shape[2:], _adaptive_out(x, output_size))
    return _window_max(x, dims, return_indices)


def ref_global_avg_pool(x):
    """Mean over all spatial dims → (N, C, 1, ..., 1), float64."""
    x = np.asarray(x).astype(np.float64)
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)


def ref_global_max_pool(x):
    """Max over all spatial dims → (N, C, 1, ..., 1); NaN propagates; integer dtypes kept."""
    x = _as_float_or_int(x)
    return x.max(axis=tuple(range(2, x.ndim)), keepdims=True)


def ref_max_unpool(x, indices, kernel, stride=None, padding=0, output_size=None):
    """N-d max unpooling as ``torch.nn.functional.max_unpool*d``.

    Scatters ``x[n, c, ...]`` into a zero (n, c) plane at the flat ``indices``. Output spatial
    size: ``output_size`` (spatial sizes or the full shape) or ``(in-1)*s - pb - pa + k``
    (PyTorch's, with pairs allowed). Out-of-range indices → ValueError. Duplicate indices
    (overlapping windows) carry the same value when they come from max pooling.
    Integer dtypes kept, floats → float64.
    """
    x = _as_float_or_int(x)
    indices = np.asarray(indices)
    if indices.shape != x.shape:
        raise ValueError(f"indices shape {indices.shape} != x shape {x.shape}")
    d = x.ndim - 2
    in_sizes = x.shape[2:]
    k = _tuple(kernel, d, "kernel")
    s = k if stride is None else _tuple(stride, d, "stride")
    if isinstance(padding, str) and padding.lower() != "valid":
        raise ValueError("max_unpool padding must be an int, a per-dim tuple or pairs")
    pads = ref_resolve_padding(padding, in_sizes, k, s, 1)
    if output_size is None:
        out = tuple((n - 1) * si - pb - pa + kk
                    for n, si, (pb, pa), kk in zip(in_sizes, s, pads, k))
    else:
        out = tuple(int(o) for o in tuple(output_size)[-d:])
    n_batch, c = x.shape[:2]
    plane = math.prod(out)
    n_in = math.prod(in_sizes)
    flat_idx = indices.reshape(n_batch, c, n_in).astype(np.int64)
    if flat_idx.size and (flat_idx.min() < 0 or flat_idx.max() >= plane):
        raise ValueError(f"indices out of range for output size {out}")
    y = np.zeros((n_batch, c, plane), dtype=x.dtype)
    np.put_along_axis(y, flat_idx, x.reshape(n_batch, c, n_in), axis=2)
    return y.reshape((n_batch, c) + out)


def ref_spatial_pyramid_pool2d(x, levels=(1, 2, 4), mode="max"):
    """Spatial pyramid pooling (He et al., SPP-net): per level ``l`` an adaptive (l, l) pool,
    flattened C-major then spatially to (N, C*l*l), concatenated → (N, C*sum(l*l)), float64."""
    x = np.asarray(x).astype(np.float64)
    pool = {"max": ref_adaptive_max_pool, "avg": ref_adaptive_avg_pool}[mode]
    n_batch, c = x.shape[:2]
    return np.concatenate([pool(x, (lv, lv)).reshape(n_batch, c * lv * lv) for lv in levels],
                          axis=1)


def ref_mixed_pool2d(x, kernel, stride=None, padding=0, alpha=0.5, dilation=1,
                     ceil_mode=False, mode="blend", seed=None):
    """Mixed pooling (Yu et al.): ``alpha * max_pool + (1 - alpha) * avg_pool`` over the same
    window, padding excluded from both (``count_include_pad=False``), float64. ``mode="random"``:
    each output element is the max where ``default_rng(seed).random(out_shape) < alpha``, else
    the average (the documented draw)."""
    x = np.asarray(x).astype(np.float64)
    mx = ref_max_pool(x, kernel, stride, padding, dilation, ceil_mode)
    avg = ref_avg_pool(x, kernel, stride, padding, dilation, ceil_mode, count_include_pad=False)
    if mode == "random":
        return np.where(np.random.default_rng(seed).random(mx.shape) < alpha, mx, avg)
    return alpha * mx + (1.0 - alpha) * avg


# --------------------------------------------------------------------------------------------
# Deformable convolution
# --------------------------------------------------------------------------------------------
def ref_bilinear(plane, h, w):
    """torchvision's deformable sampling of one (H, W) plane at float64 positions ``h``, ``w``
    (same shape): zero where ``h <= -1``, ``h >= H``, ``w <= -1`` or ``w >= W`` (NaN positions
    too); elsewhere the four corners ``(floor(h) + a, floor(w) + b)`` weighted ``(1 - lh or
    lh) * (1 - lw or lw)``, a corner outside the plane contributing zero."""
    big_h, big_w = plane.shape
    inside = (h > -1) & (h < big_h) & (w > -1) & (w < big_w)
    h = np.where(inside, h, 0.0)
    w = np.where(inside, w, 0.0)
    h0, w0 = np.floor(h), np.floor(w)
    lh, lw = h - h0, w - w0
    h0, w0 = h0.astype(np.int64), w0.astype(np.int64)
    val = np.zeros(h.shape)
    for dh, dw, weight in ((0, 0, (1 - lh) * (1 - lw)), (0, 1, (1 - lh) * lw),
                           (1, 0, lh * (1 - lw)), (1, 1, lh * lw)):
        hh, ww = h0 + dh, w0 + dw
        ok = inside & (hh >= 0) & (hh < big_h) & (ww >= 0) & (ww < big_w)
        corner = plane[np.clip(hh, 0, big_h - 1), np.clip(ww, 0, big_w - 1)]
        val += np.where(ok, weight * np.where(ok, corner, 0.0), 0.0)
    return val


def ref_deform_conv2d(x, offset, w, bias=None, stride=1, padding=0, dilation=1, groups=1,
                      mask=None):
    """Deformable convolution (torchvision's ``deform_conv2d``, ONNX ``DeformConv``), float64.

    ``x`` (N, C_in, H, W), ``offset`` (N, 2*G*kH*kW, H_out, W_out) with a (dy, dx) pair per
    offset group ``g`` and tap ``t = i*kW + j`` (channels ``2*(g*kH*kW + t)`` and ``+ 1``),
    ``mask`` (N, G*kH*kW, H_out, W_out) or None. Channel ``c`` belongs to offset group
    ``c // (C_in // G)``. ``cols[n, c, t, oh, ow]`` = :func:`ref_bilinear` of ``x[n, c]`` at
    ``(oh*sH - pH + i*dH + dy, ow*sW - pW + j*dW + dx)``, times the mask; then
    ``y[n, o] = bias[o] + sum_{c in group(o), t} cols[n, c, t] * w[o, c, t]``.
    """
    x = np.asarray(x).astype(np.float64)
    offset = np.asarray(offset).astype(np.float64)
    w = np.asarray(w).astype(np.float64)
    n_batch, c_in, big_h, big_w = x.shape
    c_out, c_in_g, kh, kw = w.shape
    taps = kh * kw
    s, dl = _tuple(stride, 2, "stride"), _tuple(dilation, 2, "dilation")
    pads = ref_resolve_padding(padding, (big_h, big_w), (kh, kw), s, dl)
    oh_n, ow_n = ref_conv_output_size((big_h, big_w), (kh, kw), s, pads, dl)
    n_off = offset.shape[1] // (2 * taps)
    if offset.shape != (n_batch, 2 * n_off * taps, oh_n, ow_n) or c_in % n_off:
        raise ValueError(f"bad offset shape {offset.shape}")
    if mask is not None:
        mask = np.asarray(mask).astype(np.float64)
    cpo = c_in // n_off
    base_h = np.arange(oh_n)[:, None] * s[0] - pads[0][0]
    base_w = np.arange(ow_n)[None, :] * s[1] - pads[1][0]
    cols = np.zeros((n_batch, c_in, taps, oh_n, ow_n))
    for n in range(n_batch):
        for c in range(c_in):
            g = c // cpo
            for t in range(taps):
                i, j = divmod(t, kw)
                h = base_h + i * dl[0] + offset[n, 2 * (g * taps + t)]
                ww = base_w + j * dl[1] + offset[n, 2 * (g * taps + t) + 1]
                v = ref_bilinear(x[n, c], h, ww)
                if mask is not None:
                    v = v * mask[n, g * taps + t]
                cols[n, c, t] = v
    cg = cols.reshape(n_batch, groups, c_in_g * taps, oh_n, ow_n)
    wg = w.reshape(groups, c_out // groups, c_in_g * taps)
    y = np.einsum("ngkhw,gok->ngohw", cg, wg).reshape(n_batch, c_out, oh_n, ow_n)
    if bias is not None:
        y += np.asarray(bias).astype(np.float64).reshape(1, c_out, 1, 1)
    return y


# --------------------------------------------------------------------------------------------
# Gradients (the backward of each operator), from the same definitions: every forward above is
# a sum of products, so its gradient routes each output's gradient back along the products
# that formed it. Written tap by tap like the forwards, independently of fastconv's adjoint
# formulas (transposed convolutions, flipped kernels, GEMMs).
# --------------------------------------------------------------------------------------------
def _pad_source(n: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each position of a padded dim, the input index it copies (-1: a zero)."""
    i = np.arange(-before, n + after)
    if mode == "zeros":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "replicate":
        return np.clip(i, 0, n - 1)
    if mode == "circular":
        return i % n
    # reflect (no edge repeat): fold into [0, n) by reflecting at 0 and n - 1
    period = 2 * (n - 1)
    i = np.abs(i) % period if period else np.zeros_like(i)
    return np.where(i >= n, period - i, i)


def ref_conv_backward(g, x, w, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """Gradients of :func:`ref_conv` (no bias term needed): ``(grad_x, grad_w, grad_bias)``.

    ``y[n, o, p] = sum xpad[n, c, p*s + t*d] * w[o, c, t]``, so ``grad_w[o, c, t] = sum_{n,p}
    g[n, o, p] * xpad[n, c, p*s + t*d]`` and ``grad_xpad[n, c, p*s + t*d] += g[n, o, p] *
    w[o, c, t]``; each padded position's gradient then goes to the input element it copies.
    """
    x = np.asarray(x).astype(np.float64)
    w = np.asarray(w).astype(np.float64)
    g = np.asarray(g).astype(np.float64)
    n_batch, c_in = x.shape[:2]
    in_sizes, k = x.shape[2:], w.shape[2:]
    d = len(in_sizes)
    c_out, c_in_g = w.shape[:2]
    s, dl = _tuple(stride, d, "stride"), _tuple(dilation, d, "dilation")
    pads = ref_resolve_padding(padding, in_sizes, k, s, dl)
    out = ref_conv_output_size(in_sizes, k, s, pads, dl)
    assert g.shape == (n_batch, c_out) + out, (g.shape, out)
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads), mode=_NP_PAD_MODE[padding_mode])
    xg = xp.reshape(n_batch, groups, c_in_g, *xp.shape[2:])
    wg = w.reshape(groups, c_out // groups, c_in_g, *k)
    gg = g.reshape(n_batch, groups, c_out // groups, *out)
    gxp = np.zeros_like(xg)
    gw = np.zeros_like(wg)
    for tap in np.ndindex(*k):
        window = tuple(slice(t * di, t * di + (o - 1) * si + 1, si)
                       for t, di, o, si in zip(tap, dl, out, s))
        sel = (slice(None),) * 3 + window
        gxp[sel] += np.einsum("ngo...,goc->ngc...", gg, wg[(slice(None),) * 3 + tap])
        gw[(slice(None),) * 3 + tap] = np.einsum(
            "ngop,ngcp->goc", gg.reshape(gg.shape[:3] + (-1,)),
            xg[sel].reshape(xg.shape[:3] + (-1,)))
    gxp = gxp.reshape(xp.shape)
    # route each padded position back to its source element
    sources = [_pad_source(n, b, a, padding_mode) for n, (b, a) in zip(in_sizes, pads)]
    strides = [math.prod(in_sizes[i + 1:]) for i in range(d)]
    flat = _outer([np.where(src >= 0, src * st, 0) for src, st in zip(sources, strides)], np.add)
    real = _outer([src >= 0 for src in sources], np.logical_and)
    gx = np.zeros((n_batch * c_in, math.prod(in_sizes)))
    np.add.at(gx, (slice(None), flat[real]),
              gxp.reshape(n_batch * c_in, *xp.shape[2:])[(slice(None),) + np.nonzero(real)])
    return gx.reshape(x.shape), gw.reshape(w.shape), g.sum(axis=(0, *range(2, g.ndim)))


def ref_conv_transpose_backward(g, x, w, stride=1, padding=0, output_padding=0, groups=1,
                                dilation=1):
    """Gradients of :func:`ref_conv_transpose`: ``(grad_x, grad_w, grad_bias)``.

    The output is a crop of the full scatter ``full[n, o, j*s + t*d] += x[n, c, j] * w[c, o,
    t]``; the gradient of ``full`` is ``g`` placed at the crop (zero elsewhere), and each
    product's gradient follows.
    """
    x = np.asarray(x).astype(np.float64)
    w = np.asarray(w).astype(np.float64)
    g = np.asarray(g).astype(np.float64)
    n_batch, c_in = x.shape[:2]
    in_sizes, k = x.shape[2:], w.shape[2:]
    d = len(in_sizes)
    c_in_g, c_out_g = c_in // groups, w.shape[1]
    s, dl = _tuple(stride, d, "stride"), _tuple(dilation, d, "dilation")
    op = _tuple(output_padding, d, "output_padding")
    pads = ref_resolve_padding(padding, in_sizes, k, s, dl, transposed=True, output_padding=op)
    out = ref_conv_transpose_output_size(in_sizes, k, s, pads, dl, op)
    assert g.shape == (n_batch, groups * c_out_g) + out, (g.shape, out)
    full = tuple((n - 1) * si + (kk - 1) * di + 1 + o
                 for n, si, kk, di, o in zip(in_sizes, s, k, dl, op))
    gfull = np.zeros((n_batch, groups, c_out_g) + full)
    crop = tuple(slice(pb, pb + o) for (pb, _), o in zip(pads, out))
    gfull[(slice(None),) * 3 + crop] = g.reshape(n_batch, groups, c_out_g, *out)
    xg = x.reshape(n_batch, groups, c_in_g, *in_sizes)
    wg = w.reshape(groups, c_in_g, c_out_g, *k)
    gx = np.zeros_like(xg)
    gw = np.zeros_like(wg)
    for tap in np.ndindex(*k):
        dest = tuple(slice(t * di, t * di + (n - 1) * si + 1, si)
                     for t, di, n, si in zip(tap, dl, in_sizes, s))
        gsel = gfull[(slice(None),) * 3 + dest]
        gx += np.einsum("ngo...,gco->ngc...", gsel, wg[(slice(None),) * 3 + tap])
        gw[(slice(None),) * 3 + tap] = np.einsum(
            "ngop,ngcp->gco", gsel.reshape(gsel.shape[:3] + (-1,)),
            xg.reshape(xg.shape[:3] + (-1,)))
    return gx.reshape(x.shape), gw.reshape(w.shape), g.sum(axis=(0, *range(2, g.ndim)))


def _scatter_taps(g, x_shape, dims, weight_of):
    """``grad_x``: per tap, ``g * weight_of(valid, counted)`` added at the tap's flat index."""
    n_batch, c = x_shape[:2]
    gx = np.zeros((n_batch * c, math.prod(x_shape[2:])))
    gflat = g.reshape(n_batch * c, -1)
    for _, valid, counted, flat in _taps(np.zeros((1, 1) + tuple(x_shape[2:])), dims):
        wt = weight_of(valid, counted).reshape(-1)
        np.add.at(gx, (slice(None), flat.reshape(-1)), gflat * wt)
    return gx.reshape(x_shape)


def ref_max_pool_backward(g, x, kernel, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Gradient of :func:`ref_max_pool`: each output's gradient to the element its index names
    (summed where windows share the maximum)."""
    g = np.asarray(g).astype(np.float64)
    _, idx = ref_max_pool(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    return _scatter_index(g, idx, np.shape(x))


def _scatter_index(g, idx, x_shape):
    rows = x_shape[0] * x_shape[1]
    gx = np.zeros((rows, math.prod(x_shape[2:])))
    r = np.repeat(np.arange(rows), idx[0, 0].size)
    i = idx.reshape(-1)
    np.add.at(gx, (r[i >= 0], i[i >= 0]), g.reshape(-1)[i >= 0])
    return gx.reshape(x_shape)


def ref_avg_pool_backward(g, x_shape, kernel, stride=None, padding=0, dilation=1,
                          ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of :func:`ref_avg_pool`: each output's gradient / its divisor, to every real
    element of its window."""
    g = np.asarray(g).astype(np.float64)
    dims = _pool_setup(np.zeros(x_shape), kernel, stride, padding, dilation, ceil_mode)
    n_real = 0
    n_counted = 0
    for _, valid, counted, _ in _taps(np.zeros((1, 1) + tuple(x_shape[2:])), dims):
        n_real = n_real + valid
        n_counted = n_counted + counted
    if divisor_override is not None:
        div = np.full(np.shape(n_real), float(divisor_override))
    else:
        div = (n_counted if count_include_pad else n_real).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return _scatter_taps(g, x_shape, dims, lambda valid, _: np.where(valid, 1.0 / div, 0.0))


def ref_adaptive_avg_pool_backward(g, x_shape, output_size):
    """Gradient of :func:`ref_adaptive_avg_pool`: each bin's gradient / its size, to its
    elements."""
    g = np.asarray(g).astype(np.float64)
    out = _adaptive_out(np.zeros(x_shape), output_size)
    dims = _adaptive_windows(x_shape[2:], out)
    count = 0
    for _, valid, _, _ in _taps(np.zeros((1, 1) + tuple(x_shape[2:])), dims):
        count = count + valid
    return _scatter_taps(g, x_shape, dims, lambda valid, _: np.where(valid, 1.0 / count, 0.0))


def ref_adaptive_max_pool_backward(g, x, output_size):
    """Gradient of :func:`ref_adaptive_max_pool`: to the elements its indices name."""
    g = np.asarray(g).astype(np.float64)
    _, idx = ref_adaptive_max_pool(x, output_size, return_indices=True)
    return _scatter_index(g, idx, np.shape(x))
