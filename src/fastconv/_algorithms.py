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
            (2-D, 3x3, stride 1, dilation 1, >= 4 channels per group in and out);
            ``"winograd"`` picks the tile by :func:`winograd_tile`
==========  ==================================================================================

``"auto"`` (:func:`choose`) follows a table measured on the development machine (AMD Zen 5,
AVX-512, 1 thread, float32, ``benchmarks/bench_conv.py``), where the direct kernel
ran at 150-175 GFLOP/s on full tiles and the im2col GEMM at 120-170 GFLOP/s:

==================  ===========  =========  =================================================
layer               direct       im2col     why
==================  ===========  =========  =================================================
resnet18.conv2      150 GF/s     124        56 columns: 88% of the direct tiles used
vgg16.conv1_2       172          75         224 columns; the GEMM's B block spills the cache
conv3d 32ch 56x56   154          87         GEMM M = 32 wastes most of a 14-row micro-tile
resnet18.conv4      78           135        14 columns: 44% of a 32-wide direct tile used
resnet18.conv5      16           119        7 columns: 22%
resnet50.1x1        125          164        1x1: the GEMM reads the input as it is
mobilenet.dw        23.7         4.4        depthwise: one input channel per group
==================  ===========  =========  =================================================

Winograd (``benchmarks/bench_winograd.py``, and the direct/im2col/F2/F4/F6 sweep in the
closing note of the Winograd issue) beat both on every 3x3 stride-1 layer with >= 16 channels
per group measured on the same machine at 1 thread: F(4,3) ran at 100-325 effective GFLOP/s
where the output is at least 16 pixels a side, F(2,3) at 118-156 on 14x14 and 7x7, where F(4,3)
and F(6,3) waste most of their tiles (7 = 4 + 3: half of the second tile row is padding).
F(6,3) is never chosen by ``"auto"``: its documented float32 error bound (6e-5) is above the
accuracy policy's 1e-5 (API.md). So, in order:

0. a 2-D 3x3 stride-1 dilation-1 convolution with at least ``WINOGRAD_MIN_CHANNELS`` channels
   per group in and out -> :func:`winograd_tile` (F(4,3), or F(2,3) on small outputs);
1. ``groups == C_in`` (depthwise, any channel multiplier) -> ``direct`` (depthwise kernel);
2. few input channels per group (``C_in / groups <= DIRECT_MAX_CIN``, e.g. an RGB stem) ->
   ``direct``: the GEMM's reduction is too short to amortise packing its panels;
3. 1x1 / stride 1 / unpadded -> ``im2col`` (a plain GEMM on the input);
4. the direct kernel's output tiles (``2 * vector width`` columns, ``DIRECT_BLOCK[isa]`` output
   channels) at least ``DIRECT_MIN_TILE_USE`` used -> ``direct``;
5. everything else -> ``im2col``.

Every algorithm can serve every convolution (any stride, dilation, padding, groups), so
``"direct"`` and ``"im2col"`` never raise; their answers agree to rounding.
"""

from dataclasses import dataclass

#: Public ``algorithm=`` values (API.md).
ALGORITHMS = ("auto", "direct", "im2col", "winograd", "winograd_f2", "winograd_f4",
              "winograd_f6")

#: ``"auto"`` uses the direct kernel up to this many input channels per group (rule 2).
DIRECT_MAX_CIN = 4
#: Rule 4: the least fraction of the direct kernel's register tiles that must hold real outputs.
DIRECT_MIN_TILE_USE = 0.75
#: The direct kernel's register block per ISA: (vector bytes, output channels per block);
#: the same constants as FC_VEC_BYTES / FC_DIRECT_OB in src/fastconv/_isa/conv_<isa>.c.
DIRECT_BLOCK = {"scalar": (16, 4), "avx2": (32, 6), "avx512": (64, 8), "neon": (16, 8)}
#: Rule 0: ``"auto"`` uses Winograd from this many channels per group (input and output).
WINOGRAD_MIN_CHANNELS = 16
#: :func:`winograd_tile`: outputs smaller than this (either side) use F(2,3) instead of F(4,3).
WINOGRAD_F4_MIN_OUTPUT = 16


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


def winograd_tile(problem: Problem) -> str:
    """The Winograd variant ``"winograd"`` (and ``"auto"``) uses: F(4,3) unless the output is
    small, where F(2,3) wastes fewer tile cells; never F(6,3) (accuracy policy)."""
    if min(problem.out_size) < WINOGRAD_F4_MIN_OUTPUT:
        return "winograd_f2"
    return "winograd_f4"


def winograd_worth(problem: Problem) -> bool:
    """Rule 0: Winograd can serve ``problem`` and has enough channels to win."""
    return (winograd_unsupported("auto", len(problem.kernel), problem.kernel, problem.stride,
                                 problem.dilation, problem.c_in, problem.c_out,
                                 problem.groups) is None
            and min(problem.cin_per_group, problem.c_out // problem.groups)
            >= WINOGRAD_MIN_CHANNELS)


def direct_tile_use(problem: Problem, isa: str, itemsize: int) -> float:
    """Fraction of the direct kernel's register tiles (columns x channels) holding outputs."""
    vec_bytes, block = DIRECT_BLOCK.get(isa, (16, 4))
    width = 2 * vec_bytes // itemsize
    ow = problem.out_size[-1]
    opg = problem.c_out // problem.groups
    cols = ow / (-(-ow // width) * width)
    chans = opg / (-(-opg // block) * block) if opg >= block else 0.5
    return cols * chans


def choose(algorithm: str, problem: Problem, isa: str = "avx512", itemsize: int = 4) -> str:
    """The public algorithm that computes ``problem`` when the caller asked for ``algorithm``.

    ``isa`` and ``itemsize`` (of the working dtype) matter for ``"auto"`` only.
    """
    if algorithm == "winograd":
        return winograd_tile(problem)
    if algorithm != "auto":
        return algorithm
    if winograd_worth(problem):
        return winograd_tile(problem)
    if problem.depthwise or problem.cin_per_group <= DIRECT_MAX_CIN:
        return "direct"
    if problem.pointwise:
        return "im2col"
    if direct_tile_use(problem, isa, itemsize) >= DIRECT_MIN_TILE_USE:
        return "direct"
    return "im2col"


def kernel(algorithm: str, problem: Problem) -> str:
    """The compiled kernel (a key of ``fastconv._conv.KERNELS``) behind a public algorithm."""
    if algorithm == "direct":
        return "depthwise" if problem.depthwise else "direct"
    if algorithm.startswith("winograd_"):
        return algorithm  # run by fastconv._winograd_plan, not a fastconv._conv kernel
    return "im2col"
