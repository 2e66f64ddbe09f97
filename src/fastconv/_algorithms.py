"""Which algorithm computes a convolution: the selection table, in one place.

Public algorithm names (``algorithm=`` of ``conv1d/2d/3d`` and the layer objects) map to the
compiled kernels of ``fastconv._conv``:

==========  ==================================================================================
algorithm   kernel
==========  ==================================================================================
direct      ``depthwise`` when every group has one input channel (``groups == C_in``), else
            ``direct`` (register-blocked output channels x output width, no GEMM)
im2col      ``im2col``: the packed GEMM, im2col columns written straight into its B panels;
            a 1x1 / stride-1 / unpadded convolution hands the input itself to the GEMM
winograd*   ``winograd_f2`` / ``_f4`` / ``_f6``: F(m x m, 3 x 3) of ``fastconv._winograd_plan``
            (2-D, 3x3, stride 1, dilation 1, any channels and groups when asked for;
            ``"auto"`` only from ``MIN_CHANNELS_PER_GROUP`` per group);
            ``"winograd"`` picks the tile by :func:`winograd_tile`
==========  ==================================================================================

``"auto"`` (:func:`choose`) follows a table measured on the development machine (AMD Zen 5,
AVX-512; GFLOP/s of the layer objects, float32, 1 thread, ``benchmarks/bench_conv.py`` shapes;
CPU time or best-of-15 wall time, ranges over runs: the machine was shared). The direct kernel
runs bands of output rows laid end to end, and cuts one-row bands (1-D layers) into column
windows so that every thread gets work (fastconv/direct.h):

==================  ===========  =========  =================================================
layer               direct       im2col     why
==================  ===========  =========  =================================================
resnet18.conv2      175-196      126-157    56 columns: 97% of the direct tiles used
resnet18.conv3      166-185      122-178    28 columns: 93%
resnet18.conv4      120          146        14 columns: 88%, and 16 rows of staging per band
resnet18.conv5      59           134        7 columns: 78%
vgg16.conv1_2       175-198      118        224 columns; the GEMM's B block spills the cache
vgg16.conv3_2       155-179      176-196    256 channels: a weight block outgrows L1
conv3d 32ch 56x56   173-182      113-120    GEMM M = 32 wastes most of a 14-row micro-tile
conv1d 256ch 1024   212-222      203-213    1024 columns; also at 2 threads (windows)
resnet.down (s2)    120-138      153-177    stride 2: rows staged per kh and output row
resnet.stem (3ch)   178-192      107-138    K = 147: too short to amortise GEMM packing
resnet50.1x1        124-131      161-183    1x1: the GEMM reads the input as it is
mobilenet.dw        76 (34GB/s)  4          depthwise "k3r" path, FMA-bound (Zen 4 VM)
==================  ===========  =========  =================================================

Winograd (``benchmarks/bench_winograd.py``, table in ``docs/winograd.md``) beats both on 3x3
stride-1 layers with enough channels and tiles: F(4,3) from 32 channels per group and 16 4x4
tiles per call (1.2-2.6x faster than direct / im2col; at 16 channels direct is 1.4x faster),
F(2,3) from 64 channels on outputs of 10x10 or less, where F(4,3) wastes its partial tiles.
F(6,3) is never chosen by ``"auto"``: its documented float32 error bound (6e-5) is above the
accuracy policy's 1e-5 (API.md). So, in order:

0. a 2-D 3x3 stride-1 dilation-1 convolution where :func:`winograd_auto` finds a tile (the
   thresholds live in ``fastconv._winograd_plan.auto_tile``; a functional call, which
   transforms the weight every time, also needs 32 tiles);
1. ``groups == C_in`` (depthwise, any channel multiplier) -> ``direct`` (depthwise kernel);
2. few input channels per group (``C_in / groups <= DIRECT_MAX_CIN``, e.g. an RGB stem) ->
   ``direct``: the GEMM's reduction is too short to amortise packing its panels;
3. 1x1 / stride 1 / unpadded -> ``im2col`` (a plain GEMM on the input);
4. stride 1, and the direct kernel's output tiles (:func:`direct_tile_use`: columns, and
   ``direct_block(isa)`` output channels) at least ``DIRECT_MIN_TILE_USE`` used -> ``direct``
   (strided layers stage each input row once per kh and output row: the GEMM wins);
5. everything else -> ``im2col``.

Every algorithm can serve every convolution (any stride, dilation, padding, groups), so
``"direct"`` and ``"im2col"`` never raise; their answers agree to rounding.
"""

from dataclasses import dataclass

#: Public ``algorithm=`` values (API.md).
ALGORITHMS = ("auto", "direct", "im2col", "winograd", "winograd_f2", "winograd_f4",
              "winograd_f6")

#: What ``algorithm="measure"`` (layer objects) times, in this order; :func:`candidates` keeps
#: those that can serve a problem within the accuracy policy.
MEASURED = ("direct", "im2col", "winograd_f2", "winograd_f4", "winograd_f6")

#: ``"auto"`` uses the direct kernel up to this many input channels per group (rule 2).
DIRECT_MAX_CIN = 4
#: Rule 4: the least fraction of the direct kernel's register tiles that must hold real outputs.
DIRECT_MIN_TILE_USE = 0.9


def direct_block(isa: str) -> tuple[int, int]:
    """The direct kernel's register block of ``isa``: (vector bytes, output channels per block),
    from the ISA registry (include/fastconv/isa.h)."""
    from ._extension import load

    return load("_cpu").DIRECT_BLOCK.get(isa, (16, 4))


@dataclass(frozen=True)
class Problem:
    """What the choice depends on: one convolution call, sizes already resolved.

    Spatial entries are per-dim tuples (1, 2 or 3 dims); ``pads`` holds (before, after) pairs.
    """

    batch: int
    c_in: int
    c_out: int
    groups: int
    in_size: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    out_size: tuple[int, ...]

    @property
    def cin_per_group(self) -> int:
        return self.c_in // self.groups

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.cin_per_group == 1

    @property
    def pointwise(self) -> bool:
        """1x1, stride 1, unpadded: the GEMM reads the input as it is."""
        return (all(k == 1 for k in self.kernel) and all(s == 1 for s in self.stride)
                and all(p == (0, 0) for p in self.pads))


def unsupported(algorithm: str, problem: Problem | None = None) -> str | None:
    """Why ``algorithm`` cannot compute ``problem`` (None if it can).

    With ``problem=None`` only what holds for every input shape is checked (layer construction).
    """
    if algorithm.startswith("winograd") and problem is not None:
        return winograd_unsupported(algorithm, len(problem.kernel), problem.kernel,
                                    problem.stride, problem.dilation, problem.c_in,
                                    problem.c_out, problem.groups)
    return None


def winograd_unsupported(algorithm: str, ndim: int, kernel, stride, dilation, c_in: int,
                         c_out: int, groups: int) -> str | None:
    """Why a Winograd ``algorithm`` cannot serve this convolution (None if it can).

    Everything it depends on is known from the weight and the arguments, so layer objects and
    functions check it before seeing an input.
    """
    from . import _winograd_plan  # NumPy-only module, but keep importing conv cheap

    if ndim != 2:
        ok, why = False, f"Winograd is implemented for conv2d only, got a {ndim}-D convolution"
    else:
        ok, why = _winograd_plan.supports(kernel, stride, dilation, c_in, c_out, groups)
    return None if ok else f"algorithm={algorithm!r} cannot serve this convolution: {why}"


def within_accuracy_policy(algorithm: str) -> bool:
    """Whether ``algorithm``'s documented float32 error bound is within the accuracy policy
    (API.md: at most 1e-5); direct and im2col are exact up to rounding.

    Examples
    --------
    >>> from fastconv._algorithms import within_accuracy_policy
    >>> [within_accuracy_policy(a) for a in ("im2col", "winograd_f4", "winograd_f6")]
    [True, True, False]
    """
    from . import _winograd_plan

    tile = _winograd_plan.ALGORITHM_TILE.get(algorithm)
    return tile is None or (_winograd_plan.ERROR_BOUND["float32"][tile]
                            <= _winograd_plan.AUTO_FLOAT32_BOUND)


def candidates(problem: Problem) -> tuple[str, ...]:
    """The algorithms ``algorithm="measure"`` times for ``problem``: every one of
    :data:`MEASURED` that can serve it and whose documented float32 error bound is within the
    accuracy policy (so never F(6,3)). ``"auto"``'s choice is always among them.

    Examples
    --------
    >>> from fastconv._algorithms import Problem, candidates
    >>> p = Problem(1, 64, 64, 1, (58, 58), (3, 3), (1, 1), (1, 1), ((0, 0),) * 2, (56, 56))
    >>> candidates(p)
    ('direct', 'im2col', 'winograd_f2', 'winograd_f4')
    >>> candidates(Problem(1, 64, 64, 1, (57, 57), (3, 3), (2, 2), (1, 1), ((0, 0),) * 2,
    ...                    (28, 28)))
    ('direct', 'im2col')
    """
    return tuple(a for a in MEASURED
                 if unsupported(a, problem) is None and within_accuracy_policy(a))


def winograd_tile(problem: Problem) -> str:
    """The Winograd variant ``algorithm="winograd"`` uses: F(4,3) when the call has enough 4x4
    tiles to fill the GEMM's micro-panels, else F(2,3); never F(6,3) (accuracy policy).
    The rule and its measurements live in :func:`fastconv._winograd_plan.explicit_tile`."""
    from . import _winograd_plan

    return f"winograd_f{_winograd_plan.explicit_tile(problem.batch, problem.out_size)}"


def winograd_auto(problem: Problem, weights_prepared: bool) -> str | None:
    """Rule 0: the Winograd variant ``"auto"`` uses for ``problem``, or None where direct /
    im2col are faster. Delegates to :func:`fastconv._winograd_plan.auto_tile` (measured:
    F(4,3) from 32 channels per group and 16 tiles per call, F(2,3) from 64 channels on small
    outputs; a functional call, which transforms the weight every time, also needs 32 tiles).
    """
    from . import _winograd_plan

    if len(problem.kernel) != 2 or winograd_unsupported(
            "auto", 2, problem.kernel, problem.stride, problem.dilation, problem.c_in,
            problem.c_out, problem.groups):
        return None
    if min(problem.cin_per_group,
           problem.c_out // problem.groups) < _winograd_plan.MIN_CHANNELS_PER_GROUP:
        return None  # an explicit request serves it; "auto" declines (it never pays)
    tile = _winograd_plan.auto_tile(problem.batch, problem.out_size, problem.cin_per_group,
                                    problem.c_out // problem.groups,
                                    per_call_weights=not weights_prepared)
    return None if tile is None else f"winograd_f{tile}"


def direct_tile_use(problem: Problem, isa: str, itemsize: int) -> float:
    """Fraction of the direct kernel's register tiles (columns x channels) holding outputs.

    The tiles run along bands of output rows laid end to end with the pitch of the staged
    input (fastconv/direct.h), so only its border columns are wasted:
    ``OW / (OW + (kW - 1) * dilation // stride + (stride > 1))``.
    """
    _, block = direct_block(isa)
    ow, sw = problem.out_size[-1], problem.stride[-1]
    span = (problem.kernel[-1] - 1) * problem.dilation[-1]
    pitch = ow + span if sw == 1 else ow + span // sw + 1
    opg = problem.c_out // problem.groups
    chans = opg / (-(-opg // block) * block) if opg >= block else 0.5
    return ow / pitch * chans


def choose(algorithm: str, problem: Problem, isa: str = "avx512", itemsize: int = 4,
           weights_prepared: bool = True) -> str:
    """The public algorithm that computes ``problem`` when the caller asked for ``algorithm``.

    ``isa``, ``itemsize`` (of the working dtype) and ``weights_prepared`` (False for the
    functional calls, which transform the weight on every call) matter for ``"auto"`` only.
    """
    if algorithm == "winograd":
        return winograd_tile(problem)
    if algorithm != "auto":
        return algorithm
    winograd = winograd_auto(problem, weights_prepared)
    if winograd:
        return winograd
    if problem.depthwise or problem.cin_per_group <= DIRECT_MAX_CIN:
        return "direct"
    if problem.pointwise:
        return "im2col"
    if (all(s == 1 for s in problem.stride)
            and direct_tile_use(problem, isa, itemsize) >= DIRECT_MIN_TILE_USE):
        return "direct"
    return "im2col"


def kernel(algorithm: str, problem: Problem) -> str:
    """The compiled kernel (a key of ``fastconv._conv.KERNELS``) behind a public algorithm."""
    if algorithm == "direct":
        return "depthwise" if problem.depthwise else "direct"
    if algorithm.startswith("winograd_"):
        return algorithm  # run by fastconv._winograd_plan, not a fastconv._conv kernel
    return "im2col"
