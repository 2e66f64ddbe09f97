"""Model summaries: output shape, parameters, multiply-accumulates and field per layer.

Parameters are counted as torchvision counts them (weights and biases; BatchNorm's scale and
shift, 2·C, but not its running statistics, which are buffers). Multiply-accumulates (MACs) are
those of convolutions and linear layers only, which is what torchvision's published "GFLOPS"
figures count; pooling, normalisation, activations and the residual additions are free.
"""

from fractions import Fraction
from math import prod
from typing import Any

from ._args import per_dim
from ._layers import (
    AdaptivePool,
    BatchNorm,
    Conv,
    ConvTranspose,
    Flatten,
    Identity,
    Linear,
    Parallel,
    Pool,
    Sequential,
    join_path,
)
from ._receptive import ReceptiveField, _layer_error, as_network, start, walk


def _channels(layer: Conv | ConvTranspose, c_in: int) -> tuple[int, int]:
    if layer.in_channels is not None and layer.in_channels != c_in:
        raise ValueError(f"in_channels={layer.in_channels} but the input has {c_in} channels")
    c_out = c_in if layer.out_channels is None else layer.out_channels
    for name, value in (("input channels", c_in), ("out_channels", c_out)):
        if value % layer.groups:
            raise ValueError(f"{name} ({value}) must be divisible by groups={layer.groups}")
    return c_in, c_out


def _leaf_row(layer: object, shape: tuple[int, ...],
              field: ReceptiveField) -> tuple[tuple[int, ...], int, int]:
    """Output shape, parameters and MACs of one layer given its input shape."""
    spatial = tuple(field._extents or ())
    if isinstance(layer, Identity):
        return shape, 0, 0
    if isinstance(layer, BatchNorm):
        if layer.num_features is not None and layer.num_features != shape[0]:
            raise ValueError(f"num_features={layer.num_features} but the input has "
                             f"{shape[0]} channels")
        return shape, 2 * shape[0], 0
    if isinstance(layer, Flatten):
        return (prod(shape),), 0, 0
    if isinstance(layer, Linear):
        if len(shape) != 1:
            raise ValueError(f"Linear needs a flat input, got shape {shape}; put a Flatten() "
                             f"before it")
        if layer.in_features is not None and layer.in_features != shape[0]:
            raise ValueError(f"in_features={layer.in_features} but the input has {shape[0]} "
                             f"features")
        weights = shape[0] * layer.out_features
        bias = layer.out_features if layer.bias else 0
        return (layer.out_features,), weights + bias, weights
    if len(shape) == 1:
        raise ValueError("this layer needs a spatial input, but it comes after Flatten/Linear")
    if isinstance(layer, (Pool, AdaptivePool)):
        return (shape[0], *spatial), 0, 0
    if not isinstance(layer, (Conv, ConvTranspose)):  # pragma: no cover - specs are checked
        raise TypeError(f"not a layer spec: {layer!r}")
    c_in, c_out = _channels(layer, shape[0])
    taps = prod(per_dim(layer.kernel_size, "kernel_size", len(spatial)))
    # (C_out, C_in/groups, *k) for a convolution, (C_in, C_out/groups, *k) transposed: the same
    # count. A convolution spends them all on every output position, a transposed one on
    # every input position.
    weights = c_out * c_in // layer.groups * taps
    params = weights + (c_out if layer.bias else 0)
    positions = prod(spatial) if isinstance(layer, Conv) else prod(shape[1:])
    macs = positions * weights
    return (c_out, *spatial), params, macs


def _walk_shapes(layer: object, shape: tuple[int, ...], path: str, fields: list[ReceptiveField],
                 rows: list[dict]) -> tuple[int, ...]:
    """Output shape of ``layer``; appends one row per leaf and merge, in the fields' order."""
    if isinstance(layer, Sequential):
        for element, child in layer.children():
            shape = _walk_shapes(child, shape, join_path(path, element), fields, rows)
        return shape
    if isinstance(layer, Parallel):
        shapes = [_walk_shapes(branch, shape, join_path(path, element), fields, rows)
                  for element, branch in layer.children()]
        field = fields[len(rows)]
        if layer.merge == "add":
            if any(s != shapes[0] for s in shapes):
                raise ValueError(f"Parallel {path or '(top)'}: merge='add' needs equal branch "
                                 f"shapes, got {shapes}")
            out = shapes[0]
        else:
            if any(s[1:] != shapes[0][1:] for s in shapes):
                raise ValueError(f"Parallel {path or '(top)'}: merge='concat' needs equal "
                                 f"spatial sizes, got {shapes}")
            out = (sum(s[0] for s in shapes), *shapes[0][1:])
        rows.append(_row(path, layer, out, 0, 0, field))
        return out
    field = fields[len(rows)]
    try:
        out, params, macs = _leaf_row(layer, shape, field)
    except ValueError as exc:
        raise _layer_error(path, layer, exc) from None
    rows.append(_row(path, layer, out, params, macs, field))
    return out


def _row(path: str, layer: Any, shape: tuple[int, ...], params: int, macs: int,
         field: ReceptiveField) -> dict:
    assert field.name == path, (field.name, path)  # both walks visit the layers in one order
    return {"name": path, "layer": layer.describe(), "output_shape": shape,
            "params": params, "macs": macs, "receptive_field": field.size,
            "stride": field.stride, "padding": field.padding,
            "whole_input": field.whole_input}


def _text(value: object) -> str:
    if value is None:
        return "?"
    if isinstance(value, tuple):
        return "x".join(_text(v) for v in value)
    return str(value)


def _fractional(value: object) -> bool:
    if isinstance(value, tuple):
        return any(_fractional(v) for v in value)
    return isinstance(value, Fraction) and value.denominator != 1


def _plain(value: object) -> object:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return float(value) if isinstance(value, Fraction) else value


def _engineering(macs: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if macs >= scale:
            return f"{macs / scale:.2f}{unit}"
    return str(macs)


class Summary:
    """A network's per-layer output shapes, parameters, MACs and receptive fields.

    Attributes
    ----------
    rows : list of dict
        One per layer (and per ``Parallel`` merge), in order, with keys ``name`` (the layer's
        path), ``layer`` (its spec in the ``fastconv shapes`` language), ``output_shape``,
        ``params``, ``macs``, ``receptive_field`` (size), ``stride``, ``padding`` and
        ``whole_input``.
    total_params, total_macs : int
    input_shape, output_shape : tuple of int
    receptive_field : ReceptiveField
        Of the whole network.
    spatial_field : ReceptiveField or None
        Of the last layer whose outputs do not yet see the whole input (the last convolution
        stage of a classifier): the field people quote for a network.

    ``str(summary)`` is an aligned table.

    Examples
    --------
    >>> s = summary([Conv(3, padding=1, out_channels=16), Pool(2)], (3, 32, 32))
    >>> s
    <Summary of 2 layers: 448 params, 442,368 MACs>
    >>> print("\\n".join(str(s).splitlines()[:4]))
    layer  type        output shape  params     MACs  field  stride  padding
    -----  ----------  ------------  ------  -------  -----  ------  -------
    0      conv3p1c16  16x32x32         448  442.37K      3       1        1
    1      maxpool2    16x16x16           0        0      4       2        1
    """

    def __init__(self, rows: list[dict], input_shape: tuple[int, ...],
                 field: ReceptiveField) -> None:
        self.rows = rows
        self.input_shape = input_shape
        self.output_shape = rows[-1]["output_shape"] if rows else input_shape
        self.total_params = sum(row["params"] for row in rows)
        self.total_macs = sum(row["macs"] for row in rows)
        self.receptive_field = field
        spatial = [i for i, f in enumerate(field.layers) if not f.whole_input]
        self.spatial_field = field.layers[spatial[-1]] if spatial else None
        # the footer names that layer as the table does: its path and its type
        self._spatial_row = rows[spatial[-1]] if spatial and len(rows) == len(
            field.layers) else None

    def to_dict(self) -> dict:
        """Everything as JSON-ready dicts and lists (fractions as floats).

        Examples
        --------
        >>> d = summary([Conv(3, padding=1, out_channels=16), Pool(2)], (3, 32, 32)).to_dict()
        >>> d["output_shape"], d["total_params"], d["layers"][1]["receptive_field"]
        ([16, 16, 16], 448, 4)
        >>> d["spatial_receptive_field"]
        {'layer': '1', 'size': 4, 'stride': 2, 'padding': 1, 'whole_input': False, 'reason': None}
        """
        spatial = self.spatial_field
        return {
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "total_params": self.total_params,
            "total_macs": self.total_macs,
            "receptive_field": self.receptive_field.to_dict(),
            "spatial_receptive_field": None if spatial is None
            else {"layer": spatial.name, **spatial.to_dict()},
            "layers": [{key: _plain(value) for key, value in row.items()} for row in self.rows],
        }

    def _layer_label(self, field: ReceptiveField) -> str:
        row = self._spatial_row
        name = field.name or "the whole network"
        kind = row["layer"] if row is not None else ""
        if field.name[:1].isdigit():
            name = f"layer {name}"  # an index path such as 0.9: say what it indexes
        return f"{name} ({kind})" if kind else name

    def __repr__(self) -> str:
        return (f"<Summary of {len(self.rows)} layers: {self.total_params:,} params, "
                f"{self.total_macs:,} MACs>")

    def __str__(self) -> str:
        header = ("layer", "type", "output shape", "params", "MACs", "field", "stride",
                  "padding")
        table = [header]
        for row in self.rows:
            whole = row["whole_input"]
            table.append((
                row["name"], row["layer"], _text(row["output_shape"]), f"{row['params']:,}",
                _engineering(row["macs"]) if row["macs"] else "0",
                "whole" if whole else _text(row["receptive_field"]),
                "-" if whole else _text(row["stride"]),
                "-" if whole else _text(row["padding"])))
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        right = {3, 4, 5, 6, 7}

        def line(cells: tuple[str, ...]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        lines = [line(header), line(tuple("-" * w for w in widths))]
        lines += [line(cells) for cells in table[1:]]
        lines.append("")
        lines.append(f"input {_text(self.input_shape)} -> output {_text(self.output_shape)}")
        lines.append(f"total params: {self.total_params:,}")
        lines.append(f"total MACs:   {self.total_macs:,} ({_engineering(self.total_macs)})")
        field = self.spatial_field
        if field is not None:
            lines.append(f"receptive field after {self._layer_label(field)}: size "
                         f"{_text(field.size)}, effective stride {_text(field.stride)}, "
                         f"effective padding {_text(field.padding)}")
        if any(_fractional(row[key]) for row in self.rows
               for key in ("receptive_field", "stride", "padding")):
            lines.append("'a/b': a transposed convolution of stride s counts as stride 1/s "
                         "(Distill's convention), so fields after it are measured in "
                         "fractions of an input pixel: stride 1/2 = two outputs per input "
                         "pixel, size 3/2 = a field one and a half input pixels wide")
        if self.receptive_field.whole_input:
            lines.append("'whole': every output of that layer depends on the whole input")
        if self.receptive_field.reason:
            lines.append(f"'?': {self.receptive_field.reason}")
        return "\n".join(lines)


def summary(layers: object, input_shape: tuple[int, ...]) -> Summary:
    """Per-layer output shape, parameters, multiply-accumulates and receptive field.

    Parameters
    ----------
    layers : layer spec or list of layer specs
    input_shape : tuple of int
        Without the batch dim: ``(C, L)``, ``(C, H, W)`` or ``(C, D, H, W)``.

    Returns
    -------
    Summary
        ``rows``, ``total_params``, ``total_macs``; ``str()`` is the table.

    Examples
    --------
    >>> s = summary([Conv(3, padding=1, out_channels=16), BatchNorm(), Identity("relu"),
    ...              Pool(2), Flatten(), Linear(None, 10)], (3, 32, 32))
    >>> s.total_params, s.total_macs
    (41450, 483328)
    >>> [row["output_shape"] for row in s.rows]
    [(16, 32, 32), (16, 32, 32), (16, 32, 32), (16, 16, 16), (4096,), (10,)]
    >>> s.rows[3]["receptive_field"], s.rows[3]["stride"]
    (4, 2)
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) < 2:
        raise ValueError(f"input_shape must be (C, *spatial) without the batch dim, e.g. "
                         f"(3, 224, 224), got {input_shape!r}")
    shape = tuple(per_dim(tuple(input_shape), "input_shape", len(input_shape)))
    network = as_network(layers)
    if not isinstance(network, (Sequential, Parallel)):
        network = Sequential(network)
    fields: list[ReceptiveField] = []
    state = walk(network, start(network, shape[1:]), "", fields)
    rows: list[dict] = []
    _walk_shapes(network, shape, "", fields, rows)
    field = ReceptiveField(tuple(state.sizes), tuple(state.strides), tuple(state.paddings),
                           reason=state.reason, whole_input=state.whole,
                           output_sizes=tuple(state.extents), layers=fields)
    return Summary(rows, shape, field)
