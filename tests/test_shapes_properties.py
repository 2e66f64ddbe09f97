"""Property tests of fastconv.shapes against brute force and the article's closed forms.

The hypothesis profile (deterministic, no deadline, a modest number of examples) is registered
in conftest.py; ``HYPOTHESIS_PROFILE=long`` runs more.
"""

from fractions import Fraction
from math import ceil, prod

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from fastconv.shapes import (
    Conv,
    ConvTranspose,
    Parallel,
    Pool,
    Sequential,
    adaptive_pool_bins,
    conv_output_size,
    conv_transpose_output_padding,
    conv_transpose_output_size,
    pool_output_size,
    receptive_field,
    resolve_padding,
    transpose_overlap,
)

sizes = st.integers(1, 64)
kernels = st.integers(1, 7)
strides = st.integers(1, 4)
dilations = st.integers(1, 3)
same_modes = st.sampled_from(["same", "same_lower"])


@given(sizes, kernels, strides, dilations, same_modes)
def test_same_gives_ceil_in_over_s(size, k, s, d, mode):
    expected = ceil(size / s)
    assert conv_output_size(size, k, s, mode, d) == expected
    ((before, after),) = resolve_padding(mode, size, k, s, d)
    assert abs(before - after) <= 1
    assert (after >= before) if mode == "same" else (before >= after)
    # the least total padding that gives ceil(in/s) windows
    extent = (k - 1) * d + 1
    total = before + after
    assert (size + total - extent) // s + 1 == expected
    assert total == 0 or (size + total - 1 - extent) // s + 1 < expected
    if max(before, after) < extent:  # pools accept it, and agree in both rounding modes
        for ceil_mode in (False, True):
            assert pool_output_size(size, k, s, mode, d, ceil_mode) == expected


@given(sizes, kernels, strides, dilations, st.integers(0, 4), st.integers(0, 4))
def test_conv_size_counts_the_windows_that_fit(size, k, s, d, before, after):
    extent = (k - 1) * d + 1
    fits = [o for o in range(size + before + after + 1) if o * s + extent <= size + before + after]
    assume(fits)
    assert conv_output_size(size, k, s, ((before, after),), d) == (len(fits),)


@given(sizes, kernels, strides, dilations, st.data())
def test_pool_size_follows_the_ceil_mode_rule(size, k, s, d, data):
    extent = (k - 1) * d + 1
    before = data.draw(st.integers(0, extent - 1))
    after = data.draw(st.integers(0, extent - 1))
    span = size + before + after - extent
    assume(span >= 0)
    padding = ((before, after),)
    # floor: whole windows; ceil: windows that start inside the input or the left padding,
    # including ones that hang past the right padding
    floor_count = len([o for o in range(size + before + after) if o * s <= span])
    ceil_count = len([o for o in range(size + before + after)
                      if o * s < span + s and o * s < size + before])
    assert pool_output_size(size, k, s, padding, d, False) == (floor_count,)
    assert pool_output_size(size, k, s, padding, d, True) == (ceil_count,)


@given(sizes, kernels, strides, dilations, st.integers(0, 3))
def test_transpose_inverts_convolution(size, k, s, d, pad):
    assume(size + 2 * pad >= (k - 1) * d + 1)
    out = conv_output_size(size, k, s, pad, d)
    op = conv_transpose_output_padding(out, size, k, s, pad, d)
    assert 0 <= op < s or s == 1 and op == 0
    assert conv_transpose_output_size(out, k, s, pad, op, d) == size


@given(sizes, kernels, strides, dilations, st.integers(0, 3), st.data())
def test_output_padding_round_trip(size, k, s, d, pad, data):
    op = data.draw(st.integers(0, max(s, d) - 1))
    assume((size - 1) * s + (k - 1) * d + 1 + op - 2 * pad >= 1)
    out = conv_transpose_output_size(size, k, s, pad, op, d)
    assert conv_transpose_output_padding(size, out, k, s, pad, d) == op


@given(sizes, kernels, strides, dilations, same_modes, st.data())
def test_transposed_same_gives_in_times_s(size, k, s, d, mode, data):
    extent = (k - 1) * d + 1
    op = data.draw(st.integers(max(s - extent, 0), max(s, d) - 1)) if max(s, d) > max(
        s - extent, 0) else None
    assume(op is not None)
    assert conv_transpose_output_size(size, k, s, mode, op, d) == size * s
    ((before, after),) = resolve_padding(mode, size, k, s, d, transposed=True, output_padding=op)
    assert before + after == extent - s + op


@given(st.lists(st.integers(1, 30), min_size=1, max_size=3), st.data())
def test_per_dim_results_are_the_scalar_results(input_sizes, data):
    ndim = len(input_sizes)
    ks = data.draw(st.lists(kernels, min_size=ndim, max_size=ndim))
    ss = data.draw(st.lists(strides, min_size=ndim, max_size=ndim))
    mode = data.draw(st.sampled_from(["same", "same_lower", "valid", "full"]))
    try:
        expected = tuple(conv_output_size(n, k, s, mode) for n, k, s in zip(input_sizes, ks, ss))
    except ValueError:  # a dim too small for "valid": the per-dim call must refuse it too
        with pytest.raises(ValueError, match="output size"):
            conv_output_size(tuple(input_sizes), tuple(ks), tuple(ss), mode)
        return
    assert conv_output_size(tuple(input_sizes), tuple(ks), tuple(ss), mode) == expected
    pads = resolve_padding(mode, tuple(input_sizes), tuple(ks), tuple(ss))
    assert pads == tuple(resolve_padding(mode, n, k, s)[0]
                         for n, k, s in zip(input_sizes, ks, ss))


@given(sizes, st.integers(1, 70))
def test_adaptive_bins_cover_the_input(size, out):
    bins = adaptive_pool_bins(size, out)
    assert len(bins) == out
    assert bins[0][0] == 0 and bins[-1][1] == size
    assert all(start < end for start, end in bins)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(bins, bins[1:]))
    assert all(b[0] <= a[1] for a, b in zip(bins, bins[1:]))     # no gaps
    if size % out == 0:  # equal bins: the pool with kernel = stride = in/out
        step = size // out
        assert bins == [(i * step, (i + 1) * step) for i in range(out)]


@given(st.integers(1, 9), st.integers(1, 5))
def test_transpose_overlap_counts_the_taps(k, s):
    counts = transpose_overlap(k, s)
    # brute force: scatter 20 inputs through k taps; count the taps hitting each position
    hits = {}
    for i in range(20):
        for j in range(k):
            hits.setdefault(i * s + j, []).append(j)
    middle = range(k + s, 19 * s)  # positions every tap can reach
    for o in middle:
        assert len(hits.get(o, [])) == counts[o % s]
    assert sum(counts) == k
    assert (len(set(counts)) == 1) == (k % s == 0)


@given(st.lists(st.tuples(kernels, strides, dilations, st.integers(0, 3), st.booleans()),
                min_size=1, max_size=6))
def test_field_equals_the_closed_form(chain):
    layers = [Pool(k, s, min(p, (k - 1) * d), d) if pool else Conv(k, s, p, d)
              for k, s, d, p, pool in chain]
    rf = receptive_field(layers)
    r = 1 + sum(((k - 1) * d) * prod(c[1] for c in chain[:i])
                for i, (k, s, d, _, _) in enumerate(chain))
    pad = sum(layer.padding * prod(c[1] for c in chain[:i]) for i, layer in enumerate(layers))
    assert (rf.size, rf.stride, rf.padding) == (r, prod(c[1] for c in chain), pad)
    assert [f.stride for f in rf.layers] == [prod(c[1] for c in chain[:i + 1])
                                             for i in range(len(chain))]


def _support(layers, size):
    """For each output of a 1-d chain, the input positions it depends on (brute force)."""
    deps = [{i} for i in range(size)]
    for layer in layers:
        k, s, d = layer.kernel_size, layer.stride or layer.kernel_size, layer.dilation
        ((before, after),) = resolve_padding(layer.padding, len(deps), k, s, d,
                                             transposed=isinstance(layer, ConvTranspose))
        if isinstance(layer, ConvTranspose):
            n = conv_transpose_output_size(len(deps), k, s, ((before, after),),
                                           layer.output_padding, d)[0]
            out = [set() for _ in range(n)]
            for i, dep in enumerate(deps):
                for j in range(k):
                    o = i * s + j * d - before
                    if 0 <= o < n:
                        out[o] |= dep
        else:
            n = conv_output_size(len(deps), k, s, ((before, after),), d)[0]
            out = [set().union(*(deps[o * s - before + j * d] for j in range(k)
                                 if 0 <= o * s - before + j * d < len(deps)))
                   for o in range(n)]
        deps = out
    return deps


@given(st.lists(st.tuples(kernels, strides, dilations, st.integers(0, 2)), min_size=1,
                max_size=4), st.integers(40, 90))
def test_field_is_the_brute_force_support(chain, size):
    layers = [Conv(k, s, p, d) for k, s, d, p in chain]
    extents = [(k - 1) * d + 1 for k, s, d, p in chain]
    assume(all(e <= size for e in extents))
    try:
        support = _support(layers, size)
    except ValueError:  # the input got too small on the way
        assume(False)
    rf = receptive_field(layers, input_size=size)
    for u, dep in enumerate(support):
        first, last = rf.region(u)
        if dep:
            assert first <= min(dep) and max(dep) <= last
        if dep and first >= 0 and last < size:
            assert (min(dep), max(dep)) == (first, last)   # exact where no padding is involved


@given(st.lists(st.tuples(kernels, strides, dilations, st.integers(0, 2), st.booleans()),
                min_size=1, max_size=3), st.integers(30, 60))
def test_transposed_field_bounds_the_brute_force_support(chain, size):
    layers = []
    for k, s, d, p, transposed in chain:
        if transposed:
            layers.append(ConvTranspose(k, s, min(p, (k - 1) * d), dilation=d))
        else:
            layers.append(Conv(k, s, p, d))
    try:
        support = _support(layers, size)
    except ValueError:
        assume(False)
    rf = receptive_field(layers, input_size=size)
    assert rf.output_size == len(support)
    for u, dep in enumerate(support):
        first, last = rf.region(u)
        if dep:
            assert Fraction(first) <= min(dep) and max(dep) <= Fraction(last)


@given(st.lists(st.tuples(st.integers(0, 3), dilations), min_size=1, max_size=3),
       st.integers(0, 3))
def test_same_padding_residuals_are_aligned(branch, shortcut_half):
    # odd kernels with padding (k - 1)*d/2 keep the centre: residual blocks always align
    main = Sequential(*[Conv(2 * h + 1, padding=h * d, dilation=d) for h, d in branch])
    shortcut = Conv(2 * shortcut_half + 1, padding=shortcut_half)
    rf = receptive_field([Conv(3, 2, 1), Parallel(main, shortcut)], input_size=32)
    largest = max(1 + sum(2 * h * d for h, d in branch), 2 * shortcut_half + 1)
    assert rf.size == 3 + (largest - 1) * 2
    assert rf.center(5) == 10
