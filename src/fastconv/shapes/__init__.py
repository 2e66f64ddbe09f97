"""Shapes, padding and receptive fields of convolutional networks, in pure Python.

``fastconv.shapes`` imports neither NumPy nor any compiled module. It is the single place where
fastconv computes output sizes and padding (the operators call it), and it answers the design
questions around them:

- sizes: :func:`conv_output_size`, :func:`conv_transpose_output_size`,
  :func:`conv_transpose_output_padding`, :func:`pool_output_size`, :func:`adaptive_pool_bins`;
- padding: :func:`resolve_padding` turns every padding form (int, per-dim, ``(before, after)``
  pairs, ``"valid"``, ``"same"``, ``"same_lower"``, ``"full"``) into explicit pairs;
- receptive fields: :func:`receptive_field` over layer specs (:class:`Conv`,
  :class:`DeformConv` (the field of its regular grid), :class:`ConvTranspose`, :class:`Pool`,
  :class:`AdaptivePool`, :class:`Linear`, :class:`BatchNorm`, :class:`Flatten`,
  :class:`Identity`, :class:`Sequential`, :class:`Parallel`);
- model summaries: :func:`summary`, with torchvision's architectures in :mod:`.presets`;
- checkerboard artifacts: :func:`transpose_overlap`.

Examples
--------
>>> from fastconv import shapes
>>> shapes.conv_output_size(13, 3, padding="same")
13
>>> shapes.receptive_field(shapes.presets.vgg16()[0]).size
212
"""

from . import presets
from ._layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    ConvTranspose,
    DeformConv,
    Flatten,
    Identity,
    Linear,
    Parallel,
    Pool,
    Sequential,
)
from ._overlap import transpose_overlap
from ._receptive import ReceptiveField, receptive_field
from ._sizes import (
    adaptive_pool_bins,
    conv_output_size,
    conv_transpose_output_padding,
    conv_transpose_output_size,
    pool_output_size,
    resolve_padding,
)
from ._summary import Summary, summary

__all__ = [
    "conv_output_size", "conv_transpose_output_size", "conv_transpose_output_padding",
    "pool_output_size", "resolve_padding", "adaptive_pool_bins", "receptive_field",
    "ReceptiveField", "summary", "Summary", "transpose_overlap", "presets",
    "Conv", "DeformConv", "ConvTranspose", "Pool", "AdaptivePool", "Linear", "BatchNorm", "Flatten",
    "Identity", "Sequential", "Parallel",
]
