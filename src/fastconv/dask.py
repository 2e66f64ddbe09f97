"""fastconv on Dask arrays: images and batches larger than one machine.

``fastconv.dask`` runs fastconv's operators chunk by chunk on a :mod:`dask.array` (on any dask
scheduler, ``dask.distributed`` included); the result equals the in-memory call on the same data
(float32: to 1e-5 relative; bit for bit where the same algorithm runs).

How a chunk is computed
-----------------------
``x`` is ``(N, C, *spatial)`` (or unbatched ``(C, *spatial)``), chunked along N and the spatial
dims; channels must be one chunk (they are rechunked, with a warning, otherwise). For a windowed
operator (convolution, pooling) with kernel extent ``E = (k - 1) * d + 1``, stride ``s`` and the
padding ``(p_before, p_after)`` resolved on the *whole* array by :func:`fastconv.shapes
.resolve_padding`, output position ``u`` reads input ``[u*s - p_before, u*s - p_before + E)``
(the receptive-field region of Araujo et al., as :func:`fastconv.shapes.receptive_field`
reports it). Output chunk boundaries follow the input's: the outputs whose window starts in
input chunk ``j`` form output chunk ``j`` (boundary ``b`` maps to ``ceil((b + p_before) / s)``),
so a stride that does not divide the chunk sizes needs no rechunking. Each output chunk is one
task that reads the input blocks its region overlaps (the halo is real neighbouring data) and
calls fastconv with the part of the region that lies outside the whole array as explicit
padding: the operator's own padding at the outer border and none inside.

- ``padding_mode`` other than ``"zeros"``: the whole array is padded first by
  :func:`dask.array.pad` with NumPy's equivalent mode (what the in-memory call does with
  ``np.pad``), then convolved without padding.
- ``algorithm="auto"``: the algorithm is resolved once for the whole array's shape (what the
  in-memory call would run) and every chunk runs that one, whatever its shape.
- :func:`apply` fuses a run of convolutions, windowed pools and pointwise callables into one
  task per output chunk: the region each chunk needs is traced back through every layer, so
  intermediate feature maps never leave the task and are never stored whole.
- Adaptive pools whose bins all have the same size (``in % out == 0``) are windowed pools and
  take any chunking; otherwise a spatial dim whose chunks a bin would straddle is rechunked
  (with a warning) so that its chunk boundaries are bin boundaries and each chunk's bins equal
  the whole array's.
- :func:`interpolate`: output chunk boundaries are the input's scaled by ``out / in``; each
  output chunk reads the input range its rows of the in-memory per-axis resize tables touch
  and applies those rows (bit for bit the in-memory result).
- ``return_indices=True`` (max pools): each tile's flat indices are offset by the tile's
  origin into flat positions in the whole plane.

Threads: every task runs fastconv with ``threads=1`` unless ``threads=`` says otherwise; the
parallelism comes from dask (the threaded scheduler's workers, or ``dask.distributed`` workers'
``nthreads``). With ``threads=t`` per task and ``nthreads=w`` per worker process, a worker uses
up to ``t * w`` cores.
"""

from __future__ import annotations

import itertools
import math
import operator
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'fastconv.dask needs dask[array] (and distributed for clusters): '
        'pip install "fastconv[dask]"') from exc

from . import conv as _conv
from . import conv_transpose as _convt
from . import pool as _pool
from . import resize as _resize
from ._validate import check_array, check_choice, check_int, compute_dtype
from .shapes import (
    adaptive_pool_bins,
    conv_output_size,
    resolve_padding,
)

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    *(f"{kind}_pool{d}d" for kind in ("max", "avg", "lp") for d in (1, 2, 3)),
    *(f"adaptive_{kind}_pool{d}d" for kind in ("max", "avg") for d in (1, 2, 3)),
    "global_avg_pool", "global_max_pool", "apply", "map_batches", "interpolate",
]

_NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class RechunkWarning(UserWarning):
    """``fastconv.dask`` had to rechunk its input (the message says which dims and why)."""


# ------------------------------------------------------------------------------------------
# Operators as per-chunk steps
# ------------------------------------------------------------------------------------------
@dataclass
class _ConvStep:
    """A convolution (zero padding at the outer border only; other modes are padded first)."""

    ndim: int
    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple
    dilation: tuple
    groups: int
    algorithm: str  # resolved for the whole array
    pads: tuple = ()  # (before, after) per dim, resolved on the whole array
    out: tuple = ()  # the whole output's spatial size
    window = True

    def extent(self):
        return tuple((k - 1) * d + 1 for k, d in zip(self.weight.shape[2:], self.dilation))

    def channels(self, c_in, dtype):
        return self.weight.shape[0], compute_dtype(np.empty(0, dtype), self.weight)

    def run(self, x, pads, ceil, threads):
        fn = getattr(_conv, f"conv{self.ndim}d")
        return fn(x, self.weight, self.bias, self.stride, tuple(pads), self.dilation,
                  self.groups, algorithm=self.algorithm, threads=threads)


@dataclass
class _PoolStep:
    """A windowed pool: ``kind`` is max, avg or lp; ``extra`` its own keyword arguments."""

    ndim: int
    kind: str
    kernel: tuple
    stride: tuple
    dilation: tuple
    extra: dict = field(default_factory=dict)
    pads: tuple = ()
    out: tuple = ()
    window = True

    def extent(self):
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilation))

    def channels(self, c_in, dtype):
        if self.kind == "max":
            return c_in, _pool._working_dtype(np.empty(0, dtype), keep_int=True)
        return c_in, compute_dtype(np.empty(0, dtype))

    def run(self, x, pads, ceil, threads, return_indices=False):
        fn = getattr(_pool, f"{self.kind}_pool{self.ndim}d")
        args = (self.extra["norm_type"],) if self.kind == "lp" else ()
        kw = {k: v for k, v in self.extra.items() if k != "norm_type"}
        if return_indices:
            kw["return_indices"] = True
        return fn(x, *args, self.kernel, self.stride, tuple(pads), self.dilation, ceil, **kw,
                  threads=threads)


@dataclass
class _PointStep:
    """A callable that acts on each spatial position alone (an activation such as ReLU)."""

    function: object
    window = False

    def run(self, x, pads, ceil, threads):
        y = self.function(x)
        if not isinstance(y, np.ndarray) or y.shape[2:] != x.shape[2:] or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"apply: the callable {self.function!r} must return an array of the spatial "
                f"shape it was given, {x.shape} -> "
                f"{getattr(y, 'shape', type(y).__name__)}")
        return y


def _point_meta(function, c_in, dtype, ndim):
    probe = np.zeros((1, c_in) + (1,) * ndim, dtype=dtype)
    y = np.asarray(function(probe))
    if y.ndim != ndim + 2 or y.shape[0] != 1 or y.shape[2:] != (1,) * ndim:
        raise ValueError(f"apply: the callable {function!r} must keep the (N, C, *spatial) "
                         f"layout and the spatial size; on {probe.shape} it gave {y.shape}")
    return y.shape[1], y.dtype


# ------------------------------------------------------------------------------------------
# Graph construction: one task per output chunk
# ------------------------------------------------------------------------------------------
def _to_batched(x, ndim: int, name: str = "x"):
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    if x.dtype.kind not in "biuf":
        check_array(np.empty(0, x.dtype), name)  # the in-memory message
    unbatched = x.ndim == ndim + 1
    if unbatched:
        x = x[None]
    if x.ndim != ndim + 2:
        raise ValueError(f"{name} must have {ndim + 2} dims (N, C, *spatial) or {ndim + 1} "
                         f"unbatched, got shape {x.shape}")
    if len(x.chunks[1]) > 1:
        warnings.warn(f"fastconv.dask: channels must be one chunk; rechunking {name} from "
                      f"channel chunks {x.chunks[1]} to ({x.shape[1]},)", RechunkWarning,
                      stacklevel=3)
        x = x.rechunk({1: -1})
    if any(n == 0 for n in x.shape[2:]):
        raise ValueError(f"{name} must have spatial sizes >= 1, got shape {x.shape}")
    return x, unbatched


def _bounds(chunks) -> list[int]:
    """Chunk sizes -> offsets ``[0, b1, ..., n]``."""
    out = [0]
    for c in chunks:
        out.append(out[-1] + c)
    return out


@dataclass
class _Layer1:
    """One windowed layer along one spatial dim, on the whole array."""

    n_in: int
    n_out: int
    extent: int
    stride: int
    pad: tuple[int, int]


def _back(layer: _Layer1, a: int, b: int):
    """Input range ``[lo, hi)`` (clipped to the array), local pads, and whether the window
    overhangs the padding (``ceil_mode``'s last window) for outputs ``[a, b)``."""
    lo = a * layer.stride - layer.pad[0]
    hi = (b - 1) * layer.stride - layer.pad[0] + layer.extent
    ia, ib = max(lo, 0), min(hi, layer.n_in)
    after = hi - ib
    over = after > layer.pad[1]
    return ia, ib, (ia - lo, min(after, layer.pad[1])), over


def _trace(layers: list[_Layer1], a: int, b: int):
    """Per layer (last to first): output range -> the input range, pads and ceil flag it needs.
    Returns the list in forward order and the first layer's input range, or None if some
    layer would get an empty input."""
    steps = []
    for layer in reversed(layers):
        ia, ib, pads, over = _back(layer, a, b)
        if ib <= ia:
            return None
        steps.append((pads, over))
        a, b = ia, ib
    steps.reverse()
    return steps, (a, b)


def _dim_plan(layers: list[_Layer1], in_bounds: list[int]):
    """Output chunk boundaries of one spatial dim and, per output chunk, the input range and the
    per-layer (pads, ceil) along this dim."""
    cuts = list(in_bounds[1:-1])
    for layer in layers:
        cuts = sorted({-(-(c + layer.pad[0]) // layer.stride) for c in cuts})
        cuts = [c for c in cuts if 0 < c < layer.n_out]
    n_out = layers[-1].n_out if layers else in_bounds[-1]
    bounds = [0, *cuts, n_out]
    while True:
        plans = []
        for i in range(len(bounds) - 1):
            t = _trace(layers, bounds[i], bounds[i + 1])
            if t is None:
                break
            plans.append(t)
        else:
            return bounds, plans
        # a chunk whose region lies wholly in the padding: merge it with a neighbour
        del bounds[i + 1 if i + 1 < len(bounds) - 1 else i]


def _region(dsk, x, nb, in_bounds, spans):
    """Nested lists of graph keys whose join is ``x[nb-th N block, :, lo:hi, ...]`` for the
    per-dim ``spans`` ``(lo, hi)``: an input block the region covers whole is used as it is;
    of a block it only overlaps, a slicing task (added to ``dsk`` once) takes just the part
    it needs, so a halo moves between workers as a thin slice, not as the neighbour's block."""
    ndim = len(spans)
    per_dim = []
    for bounds, (lo, hi) in zip(in_bounds, spans):
        parts = []
        for j in range(len(bounds) - 1):
            a, b = max(lo, bounds[j]), min(hi, bounds[j + 1])
            if a < b:
                parts.append((j, a - bounds[j], b - bounds[j],
                              a == bounds[j] and b == bounds[j + 1]))
        per_dim.append(parts)

    def nest(chosen, d):
        if d < ndim:
            return [nest((*chosen, part), d + 1) for part in per_dim[d]]
        key = (x.name, nb, 0, *(p[0] for p in chosen))
        if all(p[3] for p in chosen):
            return key
        part = (f"{x.name}-part", nb, *(v for p in chosen for v in p[:3]))
        if part not in dsk:
            dsk[part] = (operator.getitem, key,
                         (slice(None), slice(None), *(slice(p[1], p[2]) for p in chosen)))
        return part

    return nest((), 0)


def _join(blocks, depth: int):
    """The array that nested lists of blocks (one nesting level per spatial dim) tile, copied
    once into a new C-contiguous array (a single block is returned as it is)."""
    if depth == 0:
        return blocks
    first = blocks
    for _ in range(depth):
        if len(first) != 1:
            break
        first = first[0]
    else:
        return first  # one block
    # the sizes along each spatial dim, read off the first row of blocks in that dim
    sizes, corner = [], blocks
    for d in range(depth):
        sizes.append([_first(b, depth - d - 1).shape[2 + d] for b in corner])
        corner = corner[0]
    lead = corner.shape[:2]
    dtype = np.result_type(*(b.dtype for b in _leaves(blocks, depth)))
    out = np.empty(lead + tuple(sum(s) for s in sizes), dtype=dtype)
    offsets = [np.concatenate(([0], np.cumsum(s))) for s in sizes]

    def place(sub, d, index):
        if d == depth:
            out[(slice(None), slice(None), *index)] = sub
            return
        for j, b in enumerate(sub):
            place(b, d + 1, (*index, slice(offsets[d][j], offsets[d][j + 1])))

    place(blocks, 0, ())
    return out


def _first(blocks, depth: int):
    for _ in range(depth):
        blocks = blocks[0]
    return blocks


def _leaves(blocks, depth: int):
    if depth == 0:
        yield blocks
        return
    for b in blocks:
        yield from _leaves(b, depth - 1)


def _run_tile(steps, blocks, per_layer, ndim, threads):
    """The task: join the input parts, run every step with its local pads."""
    x = _join(blocks, ndim)
    k = 0
    for step in steps:
        if step.window:
            pads = [per_layer[d][k][0] for d in range(ndim)]
            ceil = any(per_layer[d][k][1] for d in range(ndim))
            k += 1
        else:
            pads = ceil = None
        x = step.run(x, pads, ceil, threads)
    return x


def _whole_indices(local, tile_shape, origin, whole_shape):
    """A tile's flat per-plane indices (``return_indices``) into flat indices of the whole
    plane: the tile starts at ``origin`` (per spatial dim) of a plane of ``whole_shape``."""
    coords = np.unravel_index(local, tile_shape)
    return np.ravel_multi_index(tuple(c + o for c, o in zip(coords, origin)),
                                whole_shape).astype(local.dtype, copy=False)


def _run_tile_indices(steps, blocks, per_layer, ndim, threads, origin, whole_shape):
    """The task of a max pool with ``return_indices``: (values, whole-plane indices)."""
    x = _join(blocks, ndim)
    (step,) = steps
    pads = [per_layer[d][0][0] for d in range(ndim)]
    ceil = any(per_layer[d][0][1] for d in range(ndim))
    y, local = step.run(x, pads, ceil, threads, return_indices=True)
    return y, _whole_indices(local, x.shape[2:], origin, whole_shape)


def _windowed(x, steps, ndim, threads, label, indices=False):
    """Run ``steps`` (windowed layers and pointwise callables) chunk by chunk on batched ``x``.
    Windowed steps must already have their padding resolved: ``step.pads`` per dim.
    ``indices`` (one max pool): return (values, indices into the whole plane) instead."""
    spatial = x.shape[2:]
    in_bounds = [_bounds(c) for c in x.chunks[2:]]
    per_dim = []
    for d in range(ndim):
        layers, n = [], spatial[d]
        for step in steps:
            if step.window:
                layers.append(_Layer1(n, step.out[d], step.extent()[d], step.stride[d],
                                      step.pads[d]))
                n = step.out[d]
        per_dim.append(_dim_plan(layers, in_bounds[d]))
    c, dtype = x.shape[1], x.dtype
    for step in steps:
        if step.window:
            c, dtype = step.channels(c, dtype)
        else:
            c, dtype = _point_meta(step.function, c, dtype, ndim)
    name = f"{label}-{tokenize(x.name, steps, threads)}"
    steps_key = f"{name}-steps"
    dsk = {steps_key: steps}
    for nb in range(len(x.chunks[0])):
        for idx in itertools.product(*(range(len(p[1])) for p in per_dim)):
            spans = [per_dim[d][1][i][1] for d, i in enumerate(idx)]
            per_layer = [per_dim[d][1][i][0] for d, i in enumerate(idx)]
            region = _region(dsk, x, nb, in_bounds, spans)
            if indices:
                dsk[(name, nb, 0, *idx)] = (
                    _run_tile_indices, steps_key, region, per_layer, ndim, threads,
                    tuple(a for a, _ in spans), spatial)
            else:
                dsk[(name, nb, 0, *idx)] = (_run_tile, steps_key, region, per_layer, ndim,
                                            threads)
    chunks = (x.chunks[0], (c,), *(tuple(np.diff(p[0]).tolist()) for p in per_dim))
    if indices:
        return _split_pair(name, dsk, x, chunks, dtype)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    return da.Array(graph, name, chunks, dtype=dtype)


def _split_pair(name, dsk, x, chunks, dtype):
    """The (values, indices) dask arrays of tasks ``(name, ...)`` that return a pair."""
    tiles = [k for k in dsk if isinstance(k, tuple) and k[0] == name]
    arrays = []
    for j, (label, dt) in enumerate((("values", dtype), ("indices", np.int64))):
        part = f"{name}-{label}"
        layer = {(part, *k[1:]): (operator.getitem, k, j) for k in tiles}
        graph = HighLevelGraph.from_collections(part, {**dsk, **layer}, dependencies=[x])
        arrays.append(da.Array(graph, part, chunks, dtype=dt))
    return tuple(arrays)


def _threads(threads):
    if threads is None:
        return 1
    if threads != -1:
        check_int(threads, "threads", 1)
    return threads


def _finish(y, unbatched):
    return y[0] if unbatched else y


# ------------------------------------------------------------------------------------------
# Convolution
# ------------------------------------------------------------------------------------------
def _conv_step(spec, shape, dtype, pin_layer=None):
    """The step for a validated conv spec on a batched input of ``shape``: the padding resolved
    on the whole array, the algorithm pinned to what the in-memory call would run. Returns the
    step and, for a padding mode other than zeros, the pads to apply first with ``da.pad``."""
    ndim = spec.ndim
    in_size = tuple(shape[2:])
    pads = resolve_padding(_conv._as_tuple(spec.padding), in_size, spec.kernel, spec.stride,
                           spec.dilation)
    work_dtype = compute_dtype(np.empty(0, dtype), spec.weight)
    if spec.algorithm == "measure":
        # timing every algorithm on the whole array's shape would allocate it whole: the
        # algorithm "auto" picks for that shape instead
        spec, pin_layer = replace(spec, algorithm="auto"), None
    if pin_layer is not None:  # what the layer's own call on the whole array would run
        algorithm = pin_layer._plan_for(tuple(shape), work_dtype, 1)[0].algorithm
    else:  # the functional call's choice (its weights are prepared per call)
        algorithm = _conv._plan(spec, tuple(shape), work_dtype, 1,
                                weights_prepared=False).algorithm
    pre = None
    if spec.padding_mode != "zeros" and any(p != (0, 0) for p in pads):
        _conv._check_mode_padding(spec.padding_mode, in_size, pads)
        pre, in_size = pads, tuple(n + b + a for n, (b, a) in zip(in_size, pads))
        pads = ((0, 0),) * ndim
    out = tuple(conv_output_size(in_size, spec.kernel, spec.stride, pads, spec.dilation))
    step = _ConvStep(ndim, spec.weight, spec.bias, spec.stride, spec.dilation, spec.groups,
                     algorithm, pads, out)
    return step, pre


def _pre_pad(x, pads, mode):
    return da.pad(x, ((0, 0), (0, 0), *pads), mode=_NUMPY_PAD_MODE[mode])


def _convolve(ndim, x, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
          threads):
    threads = _threads(threads)
    xb, unbatched = _to_batched(x, ndim)
    weight = check_array(weight, "weight")
    spec = _conv._spec(ndim, weight, bias, stride, padding, dilation, groups, padding_mode,
                       algorithm, copy=True)
    c_in = xb.shape[1]
    if c_in != spec.weight.shape[1] * spec.groups:
        raise ValueError(
            f"x has {c_in} input channels but weight {spec.weight.shape} with groups="
            f"{spec.groups} expects C_in = weight.shape[1] * groups = "
            f"{spec.weight.shape[1] * spec.groups}")
    step, pre = _conv_step(spec, xb.shape, xb.dtype)
    if pre is not None:
        xb = _pre_pad(xb, pre, spec.padding_mode)
    return _finish(_windowed(xb, [step], ndim, threads, f"conv{ndim}d"), unbatched)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", threads=None):
    """:func:`fastconv.conv1d` on a dask array (lazy); see the module docstring."""
    return _convolve(1, x, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
                 threads)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", threads=None):
    """:func:`fastconv.conv2d` on a dask array (lazy); same parameters, plus ``threads`` per
    task (default 1). Returns a dask array equal to the in-memory call.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> x = da.ones((1, 3, 64, 64), chunks=(1, 3, 24, 24), dtype=np.float32)
    >>> y = fastconv.dask.conv2d(x, np.ones((8, 3, 3, 3), np.float32), padding=1, stride=2)
    >>> y.shape, y.chunks[2]
    ((1, 8, 32, 32), (13, 12, 7))
    >>> float(y[0, 0, 5, 5].compute())
    27.0
    """
    return _convolve(2, x, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
                 threads)


def conv3d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", threads=None):
    """:func:`fastconv.conv3d` on a dask array (lazy); see :func:`conv2d`."""
    return _convolve(3, x, weight, bias, stride, padding, dilation, groups, padding_mode, algorithm,
                 threads)


# ------------------------------------------------------------------------------------------
# Pooling
# ------------------------------------------------------------------------------------------
def _pool_step(ndim, kind, shape, kernel_size, stride, padding, dilation, ceil_mode, extra):
    if isinstance(ceil_mode, (bool, np.bool_)) is False:
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    if kind == "lp":
        _pool._check_norm(extra["norm_type"])
    # the in-memory checks, on a shape-only probe of the whole array
    w = _pool._window(tuple(shape), ndim, kernel_size, stride, padding, dilation, ceil_mode)
    return _PoolStep(ndim, kind, w.kernel, w.stride, w.dilation, extra, w.pads, w.out_size)


def _pooling(ndim, kind, x, kernel_size, stride, padding, dilation, ceil_mode, extra, threads,
             return_indices=False):
    threads = _threads(threads)
    xb, unbatched = _to_batched(x, ndim)
    step = _pool_step(ndim, kind, xb.shape, kernel_size, stride, padding, dilation, ceil_mode,
                      extra)
    y = _windowed(xb, [step], ndim, threads, f"{kind}_pool{ndim}d", indices=return_indices)
    if return_indices:
        return tuple(_finish(a, unbatched) for a in y)
    return _finish(y, unbatched)


def _no_indices(return_indices):
    if return_indices:
        raise ValueError("fastconv.dask.apply: a max pool layer with return_indices=True is "
                         "not supported in a stack (call fastconv.dask.max_pool*d on its "
                         "input instead); got return_indices=True")


def _make_pools():
    made = {}
    for d in (1, 2, 3):
        def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     return_indices=False, *, threads=None, _d=d):
            _pool._check_bool(return_indices, "return_indices")
            return _pooling(_d, "max", x, kernel_size, stride, padding, dilation, ceil_mode, {},
                            threads, return_indices)

        def avg_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     count_include_pad=True, divisor_override=None, *, threads=None, _d=d):
            _pool._check_bool(count_include_pad, "count_include_pad")
            if divisor_override is not None:
                check_int(divisor_override, "divisor_override", 1)
            return _pooling(_d, "avg", x, kernel_size, stride, padding, dilation, ceil_mode,
                         {"count_include_pad": count_include_pad,
                          "divisor_override": divisor_override}, threads)

        def lp_pool(x, norm_type, kernel_size, stride=None, padding=0, dilation=1,
                    ceil_mode=False, *, threads=None, _d=d):
            return _pooling(_d, "lp", x, kernel_size, stride, padding, dilation, ceil_mode,
                         {"norm_type": norm_type}, threads)

        def adaptive_avg_pool(x, output_size, *, threads=None, _d=d):
            return _adaptive(_d, "avg", x, output_size, threads)

        def adaptive_max_pool(x, output_size, return_indices=False, *, threads=None, _d=d):
            _pool._check_bool(return_indices, "return_indices")
            return _adaptive(_d, "max", x, output_size, threads, return_indices)

        for fn, base in ((max_pool, "max_pool"), (avg_pool, "avg_pool"), (lp_pool, "lp_pool"),
                         (adaptive_avg_pool, "adaptive_avg_pool"),
                         (adaptive_max_pool, "adaptive_max_pool")):
            name = f"{base}{d}d"
            fn.__name__ = fn.__qualname__ = name
            fn.__doc__ = (f":func:`fastconv.{name}` on a dask array (lazy), same parameters "
                          f"plus ``threads`` per task (default 1); a max pool's "
                          f"``return_indices=True`` gives (values, indices) dask arrays, the "
                          f"indices flat positions in the whole plane as in memory.")
            made[name] = fn
    return made


globals().update(_make_pools())


def _adaptive(ndim, kind, x, output_size, threads, return_indices=False):
    threads = _threads(threads)
    xb, unbatched = _to_batched(x, ndim)
    in_size = tuple(xb.shape[2:])
    bins = _pool._adaptive_bins(in_size, ndim, output_size)  # the in-memory checks
    out_size = bins.out_size
    if all(n % o == 0 for n, o in zip(in_size, out_size)):
        # equal disjoint bins: the windowed pool the in-memory call runs too
        k = tuple(n // o for n, o in zip(in_size, out_size))
        step = _pool_step(ndim, kind, xb.shape, k, k, 0, 1, False, {})
        y = _windowed(xb, [step], ndim, threads, f"adaptive_{kind}_pool{ndim}d",
                      indices=return_indices)
        if return_indices:
            return tuple(_finish(a, unbatched) for a in y)
        return _finish(y, unbatched)
    # per dim: the chunk boundaries must be bin boundaries with no bin straddling them
    table = adaptive_pool_bins(in_size, out_size)
    new_chunks, why = [], []
    for d in range(ndim):
        edges = table[d]
        bounds = _bounds(xb.chunks[2 + d])
        ok = all(not any(s < b < e for s, e in edges) and any(s == b for s, _ in edges)
                 for b in bounds[1:-1])
        uniform = in_size[d] % out_size[d] == 0
        if ok and (uniform or len(bounds) == 2):
            new_chunks.append(xb.chunks[2 + d])
            continue
        if uniform:  # realign to multiples of the bin size
            size = in_size[d] // out_size[d]
            target = max(1, round(np.mean(xb.chunks[2 + d]) / size)) * size
            new_chunks.append(target)
        else:
            new_chunks.append(-1)
        why.append(d)
    if why:
        warnings.warn(
            f"fastconv.dask: adaptive pooling {in_size} -> {out_size}: rechunking spatial "
            f"dims {why} so that no bin straddles a chunk boundary (a dim whose bins differ in "
            f"size becomes one chunk)", RechunkWarning, stacklevel=3)
        xb = xb.rechunk({2 + d: c for d, c in enumerate(new_chunks)})
    out_chunks = []
    for d in range(ndim):
        if in_size[d] % out_size[d] == 0:
            size = in_size[d] // out_size[d]
            out_chunks.append(tuple(c // size for c in xb.chunks[2 + d]))
        else:
            out_chunks.append((out_size[d],))
    fn = getattr(_pool, f"adaptive_{kind}_pool{ndim}d")
    dtype = _PoolStep(ndim, kind, (), (), ()).channels(xb.shape[1], xb.dtype)[1]

    def block(b, block_info=None):
        loc = block_info[None]["chunk-location"][2:]
        sizes = tuple(out_chunks[d][loc[d]] for d in range(ndim))
        return fn(b, sizes, threads=threads)

    chunks = (xb.chunks[0], xb.chunks[1], *out_chunks)
    name = f"adaptive_{kind}_pool{ndim}d-{tokenize(xb.name, out_size, threads)}"
    if return_indices:
        in_bounds = [_bounds(c) for c in xb.chunks[2:]]
        name += "-indices"
        dsk = {}
        for key in itertools.product(*(range(len(c)) for c in xb.chunks)):
            origin = tuple(in_bounds[d][key[2 + d]] for d in range(ndim))
            sizes = tuple(out_chunks[d][key[2 + d]] for d in range(ndim))
            dsk[(name, *key)] = (_adaptive_indices_block, fn, (xb.name, *key), sizes, threads,
                                 origin, in_size)
        return tuple(_finish(a, unbatched) for a in _split_pair(name, dsk, xb, chunks, dtype))
    y = xb.map_blocks(block, chunks=chunks, dtype=dtype, name=name)
    return _finish(y, unbatched)


def _adaptive_indices_block(fn, b, sizes, threads, origin, whole_shape):
    y, local = fn(b, sizes, return_indices=True, threads=threads)
    return y, _whole_indices(local, b.shape[2:], origin, whole_shape)


def _global_block(b, kind, threads):
    if kind == "max":
        return _pool.global_max_pool(b, threads=threads)
    # a sum: the block's mean times its size, in the working dtype
    m = _pool.global_avg_pool(b, threads=threads)
    return m * m.dtype.type(math.prod(b.shape[2:]))


def _global(kind, x, threads):
    threads = _threads(threads)
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    if x.ndim < 3:
        raise ValueError(f"x must have shape (N, C, *spatial) with at least one spatial dim, "
                         f"got shape {x.shape}")
    xb, _ = _to_batched(x, x.ndim - 2)
    nd = xb.ndim - 2
    dtype = _PoolStep(nd, kind, (), (), ()).channels(xb.shape[1], xb.dtype)[1]
    parts = xb.map_blocks(_global_block, kind, threads, dtype=dtype,
                          chunks=(xb.chunks[0], xb.chunks[1],
                                  *((1,) * len(c) for c in xb.chunks[2:])))
    axes = tuple(range(2, xb.ndim))
    if kind == "max":
        return parts.max(axis=axes, keepdims=True)
    total = parts.sum(axis=axes, keepdims=True, dtype=dtype)
    return (total / dtype.type(math.prod(xb.shape[2:]))).astype(dtype)


def global_avg_pool(x, *, threads=None):
    """:func:`fastconv.global_avg_pool` on a dask array: per-chunk sums, then their mean
    (float32: equal to the in-memory call to 1e-5, not bit for bit)."""
    return _global("avg", x, threads)


def global_max_pool(x, *, threads=None):
    """:func:`fastconv.global_max_pool` on a dask array (exact)."""
    return _global("max", x, threads)


# ------------------------------------------------------------------------------------------
# Resizing
# ------------------------------------------------------------------------------------------
def _resize_axis(table, n_in: int, n_out: int, in_bounds: list[int]):
    """Output chunk boundaries of one resized dim (the input's, scaled by ``n_out / n_in`` and
    rounded) and, per output chunk, the input range ``[lo, hi)`` its table rows read and those
    rows with their indices made relative to ``lo``. ``table`` None: the dim is kept as is."""
    if table is None:
        return in_bounds, [((a, b), None) for a, b in zip(in_bounds[:-1], in_bounds[1:])]
    idx, w = table
    cuts = sorted({(2 * b * n_out + n_in) // (2 * n_in) for b in in_bounds[1:-1]})
    bounds = [0, *(c for c in cuts if 0 < c < n_out), n_out]
    plans = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = idx[a:b]
        lo, hi = int(rows.min()), int(rows.max()) + 1
        plans.append(((lo, hi), (rows - lo, None if w is None else w[a:b])))
    return bounds, plans


def _resize_tile(blocks, tables, order, dtype, ndim):
    x = _join(blocks, ndim)
    return _resize.resize_tables(_resize.working(x, dtype), tables, dtype, order=order)


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None, *,
                threads=None):
    """:func:`fastconv.interpolate` on a dask array (lazy), equal to the in-memory call bit
    for bit.

    ``x`` is ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, chunked along N and the
    spatial dims (channels one chunk). The spatial rank is the mode's (``"linear"`` 1,
    ``"bilinear"``/``"bicubic"`` 2, ``"trilinear"`` 3), else the length of a tuple ``size`` /
    ``scale_factor``, else ``x.ndim - 2`` (batched). Output chunk boundaries are the input's
    scaled by ``out / in`` (rounded); each output chunk is one task that reads just the input
    range its rows of the in-memory per-axis tables (:func:`fastconv.resize.plan`) touch (1
    tap for nearest, 2 linear, 4 bicubic) and applies those rows: the same weights, summed in
    the same order. ``threads`` is accepted for a uniform signature (the resize runs in
    NumPy).

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv, fastconv.dask
    >>> x = np.arange(12, dtype=np.float32).reshape(1, 1, 12)
    >>> y = fastconv.dask.interpolate(da.from_array(x, chunks=5), size=7, mode="linear")
    >>> y.chunks[2], bool(np.array_equal(y.compute(), fastconv.interpolate(x, size=7,
    ...                                                                    mode="linear")))
    ((3, 3, 1), True)
    """
    threads = _threads(threads)
    mode = check_choice(mode, "mode", _resize.MODES)
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    rank = _resize._MODE_DIMS.get(mode)
    if rank is None:
        given = size if size is not None else scale_factor
        rank = len(given) if isinstance(given, (list, tuple, np.ndarray)) else x.ndim - 2
    shape = (1, *x.shape) if x.ndim == rank + 1 else tuple(x.shape)
    if x.dtype.kind not in "biuf":
        check_array(np.empty(0, x.dtype), "x")  # the in-memory message
    out_sizes, tables, order = _resize.plan(shape, size, scale_factor, mode, align_corners)
    xb, unbatched = _to_batched(x, len(shape) - 2)
    ndim = xb.ndim - 2
    dtype = compute_dtype(np.empty(0, xb.dtype))
    in_bounds = [_bounds(c) for c in xb.chunks[2:]]
    per_dim = [_resize_axis(tables.get(d + 2), xb.shape[2 + d], out_sizes[d], in_bounds[d])
               for d in range(ndim)]
    name = f"interpolate-{tokenize(xb.name, size, scale_factor, mode, align_corners)}"
    dsk = {}
    for nb in range(len(xb.chunks[0])):
        for idx in itertools.product(*(range(len(p[1])) for p in per_dim)):
            spans = [per_dim[d][1][i][0] for d, i in enumerate(idx)]
            local = {d + 2: per_dim[d][1][i][1] for d, i in enumerate(idx)
                     if per_dim[d][1][i][1] is not None}
            dsk[(name, nb, 0, *idx)] = (
                _resize_tile, _region(dsk, xb, nb, in_bounds, spans), local, order, dtype,
                ndim)
    chunks = (xb.chunks[0], xb.chunks[1], *(tuple(np.diff(p[0]).tolist()) for p in per_dim))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[xb])
    return _finish(da.Array(graph, name, chunks, dtype=dtype), unbatched)


# ------------------------------------------------------------------------------------------
# Transposed convolution
# ------------------------------------------------------------------------------------------
def _run_transposed(plan, x, local, pads, out_shape, dtype, threads):
    """One output chunk: the transposed convolution of the input slice ``x`` with ``pads``
    (>= 0), placed at ``local`` inside a chunk of bias (positions no input reaches)."""
    y = np.zeros(out_shape, dtype=dtype)
    if plan.bias is not None:
        y[...] = plan.bias.astype(dtype).reshape((-1,) + (1,) * plan.ndim)
    if x is None:
        return y
    fn = getattr(_convt, f"conv_transpose{plan.ndim}d")
    core = fn(x, plan.weight, plan.bias, plan.stride, tuple(pads), 0, plan.groups,
              plan.dilation, algorithm=plan.resolved_algorithm(), threads=threads)
    y[(Ellipsis, *local)] = core
    return y


def _transposed_tile(plan, blocks, local, pads, out_shape, dtype, threads):
    x = None if blocks is None else _join(blocks, plan.ndim)
    return _run_transposed(plan, x, local, pads, out_shape, dtype, threads)


def _conv_transpose(ndim, x, weight, bias, stride, padding, output_padding, groups, dilation,
                    output_size, algorithm, threads):
    threads = _threads(threads)
    xb, unbatched = _to_batched(x, ndim)
    plan = _convt._Plan(ndim, weight, bias, stride, padding, output_padding, groups, dilation,
                        algorithm, copy_weight=True)
    plan.keep_prepared = False  # each task prepares its own (and nothing unpicklable is kept)
    plan.algorithm = plan.resolved_algorithm()  # pinned for every chunk
    pads, out_size = plan.geometry(xb.shape, output_size)
    in_size = tuple(xb.shape[2:])
    dtype = compute_dtype(np.empty(0, xb.dtype), plan.weight, plan.bias)
    in_bounds = [_bounds(c) for c in xb.chunks[2:]]
    per_dim = []
    for d in range(ndim):
        s, kd = plan.stride[d], (plan.kernel[d] - 1) * plan.dilation[d]
        pb = pads[d][0]
        cuts = sorted({b * s - pb for b in in_bounds[d][1:-1]})
        bounds = [0, *(c for c in cuts if 0 < c < out_size[d]), out_size[d]]
        entries = []
        for p0, p1 in zip(bounds[:-1], bounds[1:]):
            lo = max(0, (p0 + pb - kd) // s)
            hi = min(in_size[d], (p1 - 1 + pb) // s + 1)
            if hi <= lo:
                entries.append(None)
                continue
            full = (hi - lo - 1) * s + kd + 1  # the slice's transposed result, unpadded
            before = p0 + pb - lo * s  # where the chunk starts in it
            after = full - before - (p1 - p0)
            cut_b, cut_a = max(before, 0), max(after, 0)
            if full - cut_b - cut_a <= 0:  # no input reaches the chunk: bias only
                entries.append(None)
                continue
            start = max(-before, 0)
            local = slice(start, start + full - cut_b - cut_a)
            entries.append((lo, hi, (cut_b, cut_a), local))
        per_dim.append((bounds, entries))
    token = tokenize(xb.name, plan.weight, plan.bias, plan.stride, pads, out_size, plan.groups,
                     plan.dilation, plan.algorithm, threads)
    name = f"conv_transpose{ndim}d-{token}"
    plan_key = f"{name}-plan"
    dsk = {plan_key: plan}
    for nb, n_len in enumerate(xb.chunks[0]):
        for idx in itertools.product(*(range(len(p[1])) for p in per_dim)):
            entries = [per_dim[d][1][i] for d, i in enumerate(idx)]
            shape = (n_len, plan.c_out) + tuple(
                per_dim[d][0][i + 1] - per_dim[d][0][i] for d, i in enumerate(idx))
            if any(e is None for e in entries):
                task = (_transposed_tile, plan_key, None, None, None, shape, dtype, threads)
            else:
                spans = [(e[0], e[1]) for e in entries]
                task = (_transposed_tile, plan_key, _region(dsk, xb, nb, in_bounds, spans),
                        tuple(e[3] for e in entries), tuple(e[2] for e in entries), shape,
                        dtype, threads)
            dsk[(name, nb, 0, *idx)] = task
    chunks = (xb.chunks[0], (plan.c_out,), *(tuple(np.diff(p[0]).tolist()) for p in per_dim))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[xb])
    return _finish(da.Array(graph, name, chunks, dtype=dtype), unbatched)


def conv_transpose1d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None, algorithm="auto", threads=None):
    """:func:`fastconv.conv_transpose1d` on a dask array (lazy); see :func:`conv_transpose2d`."""
    return _conv_transpose(1, x, weight, bias, stride, padding, output_padding, groups,
                           dilation, output_size, algorithm, threads)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None, algorithm="auto", threads=None):
    """:func:`fastconv.conv_transpose2d` on a dask array (lazy), same parameters plus
    ``threads`` per task (default 1).

    Input boundary ``b`` becomes output boundary ``b * stride - pad_before``; each output chunk
    reads the input blocks whose taps reach it, and positions no input reaches hold the bias,
    as in the in-memory call.
    """
    return _conv_transpose(2, x, weight, bias, stride, padding, output_padding, groups,
                           dilation, output_size, algorithm, threads)


def conv_transpose3d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, output_size=None, algorithm="auto", threads=None):
    """:func:`fastconv.conv_transpose3d` on a dask array (lazy); see :func:`conv_transpose2d`."""
    return _conv_transpose(3, x, weight, bias, stride, padding, output_padding, groups,
                           dilation, output_size, algorithm, threads)


# ------------------------------------------------------------------------------------------
# apply: a stack of layer objects
# ------------------------------------------------------------------------------------------
def _flatten(layers):
    if isinstance(layers, (list, tuple)):
        out = []
        for layer in layers:
            out.extend(_flatten(layer))
        return out
    return [layers]


def _ndim_of(layer):
    if isinstance(layer, _conv._ConvNd):
        return layer._ndim
    if isinstance(layer, _convt._ConvTransposeNd):
        return layer._ndim
    if isinstance(layer, _pool._PoolLayer):
        return layer._spatial
    return None


def apply(layers, x, *, threads=None):
    """Run a stack of fastconv layer objects over a dask array, chunk by chunk (lazy).

    Parameters
    ----------
    layers : layer object, callable, or a list/tuple of them (nested lists are flattened)
        ``fastconv.Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``, ``MaxPool*``, ``AvgPool*``,
        ``LpPool*``, ``AdaptiveAvgPool*``, ``AdaptiveMaxPool*``, and callables that act on each
        spatial position alone and keep the spatial size (activations such as
        ``lambda y: np.maximum(y, 0, out=y)``; they may change the channel count). fastconv has
        no runtime ``Sequential``: a list is the sequence.
    x : dask.array.Array or array_like
        ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``.
    threads : int, optional
        fastconv threads per task (default 1).

    Returns
    -------
    dask.array.Array
        Equal to calling the layers one after another in memory.

    Notes
    -----
    Consecutive convolutions (zero padding), windowed pools and callables are fused: each
    output chunk is one task that reads the input region the whole run needs (traced back
    through every layer, per dim, as :func:`fastconv.shapes.receptive_field` composes fields)
    and applies every layer's own padding only where its region leaves the whole array. A
    convolution with another ``padding_mode`` starts a new run after ``dask.array.pad``;
    transposed convolutions and adaptive pools run as their own step.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv, fastconv.dask
    >>> block = [fastconv.Conv2d(np.ones((4, 3, 3, 3), np.float32), padding=1),
    ...          lambda y: np.maximum(y, 0, out=y), fastconv.MaxPool2d(2)]
    >>> x = da.ones((2, 3, 40, 40), chunks=(1, 3, 16, 16), dtype=np.float32)
    >>> y = fastconv.dask.apply(block, x)
    >>> y.shape, y.numblocks
    ((2, 4, 20, 20), (2, 1, 3, 3))
    """
    threads = _threads(threads)
    layers = _flatten(layers)
    ndims = {_ndim_of(layer) for layer in layers} - {None}
    if len(ndims) != 1:
        raise ValueError(f"apply: layers must contain at least one fastconv layer object and "
                         f"all of the same spatial rank, got ranks {sorted(ndims)}")
    ndim = ndims.pop()
    xb, unbatched = _to_batched(x, ndim)
    run: list = []

    def flush(xb):
        if run:
            xb = _windowed(xb, list(run), ndim, threads, "apply")
            run.clear()
        return xb

    # the shape each layer sees, tracked as the run grows
    shape = xb.shape
    c, dtype = xb.shape[1], xb.dtype
    for layer in layers:
        if getattr(layer, "_channels_last", False):
            raise ValueError(f"apply: layers must take channels-first data (N, C, *spatial); "
                             f"{layer!r} was made with a channels-last data_format")
        if isinstance(layer, _conv._ConvNd):
            spec = layer._spec
            if c != spec.weight.shape[1] * spec.groups:
                raise ValueError(f"apply: {layer!r} expects C_in = "
                                 f"{spec.weight.shape[1] * spec.groups}, got {c} channels")
            step, pre = _conv_step(spec, (shape[0], c, *shape[2:]), dtype, pin_layer=layer)
            if pre is not None:
                xb = flush(xb)
                xb = _pre_pad(xb, pre, spec.padding_mode)
            run.append(step)
        elif isinstance(layer, _pool._WindowLayer):
            fn = type(layer)._function
            kind = fn.__name__.split("_")[0]
            a = dict(layer._args)
            if kind == "max":
                _no_indices(a.pop("return_indices", False))
            extra = {k: a[k] for k in ("count_include_pad", "divisor_override", "norm_type")
                     if k in a}
            step = _pool_step(ndim, kind, (shape[0], c, *shape[2:]), a["kernel_size"],
                              a.get("stride"), a.get("padding", 0), a.get("dilation", 1),
                              a.get("ceil_mode", False), extra)
            run.append(step)
        elif isinstance(layer, (_pool._AdaptiveLayer, _convt._ConvTransposeNd)):
            xb = flush(xb)
            if isinstance(layer, _pool._AdaptiveLayer):
                kind = type(layer)._function.__name__.split("_")[1]
                _no_indices(layer._args.get("return_indices", False))
                xb = _adaptive(ndim, kind, xb, layer._args["output_size"], threads)
            else:
                p = layer._plan
                xb = _conv_transpose(ndim, xb, p.weight, p.bias, p.stride, p.padding,
                                     p.output_padding, p.groups, p.dilation, None, p.algorithm,
                                     threads)
            shape, c, dtype = xb.shape, xb.shape[1], xb.dtype
            continue
        elif callable(layer):
            run.append(_PointStep(layer))
            c, dtype = _point_meta(layer, c, dtype, ndim)
            continue
        else:
            raise TypeError(f"apply: layers must be fastconv layer objects or callables, got "
                            f"{layer!r} of type {type(layer).__name__}")
        c, dtype = step.channels(c, dtype)
        shape = (shape[0], c, *step.out)
    return _finish(flush(xb), unbatched)


# ------------------------------------------------------------------------------------------
# map_batches: any model over a batch dimension
# ------------------------------------------------------------------------------------------
def _batch_block(b, model, threads):
    if threads is None:
        return np.asarray(model(b))
    return np.asarray(model(b, threads=threads))


def map_batches(model, x, *, threads=None, output_shape=None, dtype=None):
    """Run ``model`` (any callable from a batch ``(n, ...)`` to ``(n, ...)``) on each N-chunk.

    Parameters
    ----------
    model : callable
        A fastconv layer object, a list of them (run in order), an ONNX model of
        ``fastconv.onnx``, or any function of one batch. It must pickle to run on a
        ``dask.distributed`` cluster (fastconv's layer objects do).
    x : dask.array.Array or array_like
        Batch first; only dim 0 may be chunked (the others are rechunked whole, with a warning).
    threads : int, optional
        Passed as ``model(batch, threads=threads)`` when given; by default the model is called
        as ``model(batch)`` inside ``fastconv.num_threads(1)``.
    output_shape, dtype : optional
        The output of one sample (without the batch dim) and its dtype; by default found by
        calling ``model`` once on a batch of one zero sample.

    Returns
    -------
    dask.array.Array
        ``(N, *output_shape)``, chunked along N as ``x``.
    """
    if isinstance(model, (list, tuple)):
        model = _Chain(tuple(_flatten(model)))
    if not callable(model):
        raise TypeError(f"map_batches: model must be callable, got {type(model).__name__}")
    if threads is not None and threads != -1:
        check_int(threads, "threads", 1)
    if not isinstance(x, da.Array):
        x = da.asarray(x)
    if x.ndim < 1:
        raise ValueError(f"map_batches: x must have a batch dim, got shape {x.shape}")
    if any(len(c) > 1 for c in x.chunks[1:]):
        warnings.warn(f"fastconv.dask.map_batches: only the batch dim may be chunked; "
                      f"rechunking x from {x.chunks[1:]} to one chunk per other dim",
                      RechunkWarning, stacklevel=2)
        x = x.rechunk({d: -1 for d in range(1, x.ndim)})
    fn = model if threads is not None else _OneThread(model)
    if output_shape is None or dtype is None:
        probe = np.asarray(_batch_block(np.zeros((1, *x.shape[1:]), x.dtype), fn, threads))
        output_shape = probe.shape[1:] if output_shape is None else tuple(output_shape)
        dtype = probe.dtype if dtype is None else np.dtype(dtype)
    output_shape = tuple(int(n) for n in output_shape)
    chunks = (x.chunks[0], *((n,) for n in output_shape))
    drop = tuple(range(1, x.ndim)) if x.ndim > 1 + len(output_shape) else ()
    new = tuple(range(x.ndim, 1 + len(output_shape))) if 1 + len(output_shape) > x.ndim else ()
    return x.map_blocks(_batch_block, fn, threads, chunks=chunks, dtype=dtype,
                        drop_axis=drop or None, new_axis=new or None,
                        name=f"map_batches-{tokenize(x.name, fn, threads)}")


class _Chain:
    """A list of layers called in order (picklable, so it ships to dask workers)."""

    def __init__(self, layers):
        self.layers = layers

    def __call__(self, x, threads=None):
        for layer in self.layers:
            kw = {"threads": threads} if threads is not None and _ndim_of(layer) else {}
            x = layer(x, **kw)
        return x


class _OneThread:
    """Call the model inside ``fastconv.num_threads(1)`` (dask supplies the parallelism)."""

    def __init__(self, model):
        self.model = model

    def __call__(self, x):
        from ._threads import num_threads

        with num_threads(1):
            return self.model(x)
