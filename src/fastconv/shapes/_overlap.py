"""Checkerboard check for transposed convolutions (Odena, Dumoulin & Olah, 2016).

A transposed convolution with stride ``s`` writes input ``i`` through tap ``j`` to output
``i*s + j`` (before cropping the padding). An output of phase ``p = (i*s + j) mod s`` is therefore
reached by the taps ``j`` with ``j mod s == p``: ``ceil((k - p) / s)`` of them in each dim. When
``s`` does not divide ``k`` the phases get different counts and the output shows the checkerboard.
Padding only rotates which phase is which, so phases are counted on the unpadded output grid.
"""

from ._args import Size, ndim_of, per_dim


def _nest(per_dim_counts: list[list[int]]) -> tuple:
    """The outer product of per-dim counts as nested tuples (one level per dim)."""
    first, rest = per_dim_counts[0], per_dim_counts[1:]
    if not rest:
        return tuple(first)
    inner = _nest(rest)
    return tuple(_scale(inner, c) for c in first)


def _scale(nested: tuple, factor: int) -> tuple:
    return tuple(_scale(x, factor) if isinstance(x, tuple) else x * factor for x in nested)


def transpose_overlap(kernel_size: Size, stride: Size) -> tuple:
    """How many kernel taps reach an output of each phase of a transposed convolution.

    Parameters
    ----------
    kernel_size, stride : int or tuple of int

    Returns
    -------
    tuple
        Nested tuples of counts with shape ``stride`` (one level per spatial dim): entry
        ``[p0][p1]...`` counts the taps that reach outputs ``o`` with ``o mod stride == p``.
        Unequal counts mean checkerboard artifacts; a kernel size divisible by the stride
        gives equal counts.

    Examples
    --------
    >>> transpose_overlap(3, 2)
    (2, 1)
    >>> transpose_overlap(4, 2)
    (2, 2)
    >>> transpose_overlap((3, 3), (2, 2))
    ((4, 2), (2, 1))
    >>> transpose_overlap(1, 2)
    (1, 0)
    """
    ndim, _ = ndim_of(kernel_size=kernel_size, stride=stride)
    ks = per_dim(kernel_size, "kernel_size", ndim)
    ss = per_dim(stride, "stride", ndim)
    counts = [[max(-(-(k - p) // s), 0) for p in range(s)] for k, s in zip(ks, ss)]
    return _nest(counts)
