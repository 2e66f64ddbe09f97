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
winograd*   not in this build yet (the Winograd issue adds it here): ``ValueError``
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

So, in order:

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
    if algorithm.startswith("winograd"):
        return (f"algorithm={algorithm!r} is not available in this build of fastconv yet; use "
                f"'auto', 'direct' or 'im2col'")
    return None


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
    if algorithm != "auto":
        return algorithm
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
    return "im2col"
