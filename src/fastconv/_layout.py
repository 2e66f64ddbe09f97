"""Channels-last data and other weight layouts: ``data_format=`` and ``weight_format=``.

A first version, by conversion at the edges (issue 21 item 9): the kernels compute
channels-first, so a channels-last input is viewed channels-first (``np.moveaxis``, no copy)
and made contiguous by the operator's usual input copy (one extra read and write of the
input, the same as any non-contiguous input costs), and the channels-first result is written
once more in the requested layout (one extra read and write of the output, into ``out=`` when
given). A weight in ``"HWIO"`` / ``"OHWI"`` is viewed as ``"OIHW"`` and copied contiguous with
the weight's usual working copy (layer objects: once, at construction). None of this runs for
the default layouts, which cost one keyword check.
"""

import functools
import inspect

import numpy as np

#: data_format names by spatial rank: (channels-first, channels-last)
DATA_FORMATS = {1: ("NCW", "NWC"), 2: ("NCHW", "NHWC"), 3: ("NCDHW", "NDHWC")}
#: weight_format names by spatial rank: the default first
WEIGHT_FORMATS = {1: ("OIW", "WIO", "OWI"), 2: ("OIHW", "HWIO", "OHWI"),
                  3: ("OIDHW", "DHWIO", "ODHWI")}


def channels_last(data_format: object, ndim: int | None) -> tuple[bool, int]:
    """Whether ``data_format`` is channels-last, and its spatial rank (``ndim`` when given)."""
    if data_format is None:
        return False, ndim or 0
    ranks = (ndim,) if ndim else (1, 2, 3)
    for rank in ranks:
        if data_format in DATA_FORMATS[rank]:
            return data_format == DATA_FORMATS[rank][1], rank
    valid = ", ".join(repr(f) for rank in ranks for f in DATA_FORMATS[rank])
    if not isinstance(data_format, str):
        raise TypeError(f"data_format must be a string ({valid}) or None, got {data_format!r}")
    raise ValueError(f"data_format must be one of {valid}, got {data_format!r}")


def weight_as_oihw(weight: object, weight_format: object, ndim: int):
    """``weight`` given in ``weight_format`` as a (view of an) ``(C_out, C_in/g, *k)`` array."""
    names = WEIGHT_FORMATS[ndim]
    if weight_format is None or weight_format == names[0]:
        return weight
    if weight_format not in names:
        valid = ", ".join(repr(f) for f in names)
        if not isinstance(weight_format, str):
            raise TypeError(f"weight_format must be a string ({valid}) or None, got "
                            f"{weight_format!r}")
        raise ValueError(f"weight_format must be one of {valid}, got {weight_format!r}")
    w = np.asarray(weight)
    if w.ndim != ndim + 2:
        raise ValueError(f"weight must have {ndim + 2} dims in weight_format={weight_format!r}, "
                         f"got shape {w.shape}")
    if weight_format == names[1]:  # (*k, I, O)
        return np.moveaxis(w, (ndim + 1, ndim), (0, 1))
    return np.moveaxis(w, -1, 1)  # (O, *k, I)


def to_channels_first(x: object, ndim: int, name: str = "x"):
    """A channels-last ``(N, *spatial, C)`` / ``(*spatial, C)`` array viewed channels-first."""
    a = np.asarray(x)
    if a.ndim not in (ndim + 1, ndim + 2):
        spatial = DATA_FORMATS[ndim][1][1:-1]
        raise ValueError(f"{name} must have {ndim + 2} dims (N, {', '.join(spatial)}, C) or "
                         f"{ndim + 1} ({', '.join(spatial)}, C) unbatched for channels-last "
                         f"data, got shape {a.shape}")
    return np.moveaxis(a, -1, a.ndim - ndim - 1)


def _to_last(y: np.ndarray, ndim: int) -> np.ndarray:
    return np.moveaxis(y, y.ndim - ndim - 1, -1)


def write_channels_last(y: np.ndarray, ndim: int, out: object) -> np.ndarray:
    """The channels-first result ``y`` in channels-last layout: into ``out`` or a new array."""
    if out is None:
        return np.ascontiguousarray(_to_last(y, ndim))
    shape = _to_last(y, ndim).shape
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape or out.dtype != y.dtype or not out.flags.c_contiguous or not (
            out.flags.writeable):
        raise ValueError(f"out must be a writeable C-contiguous array of shape {shape} and dtype "
                         f"{y.dtype} (the channels-last output), got shape {out.shape}, dtype "
                         f"{out.dtype}")
    np.copyto(np.moveaxis(out, -1, out.ndim - ndim - 1), y)
    return out


def with_layout(ndim: int | None, arrays=("x",), output: bool = True, weights: bool = False,
                rank_argument: str | None = "spatial_dims"):
    """Give an operator ``data_format=`` (and, with ``weights``, ``weight_format=``).

    ``ndim`` None (the global pools, interpolate): the format string gives the spatial rank,
    passed on as ``rank_argument`` unless that is None. ``arrays``: the data arguments to
    view channels-first; ``output``: whether the result (each array of a returned tuple) is
    written channels-last.
    """
    def decorate(function):
        signature = inspect.signature(function)
        params = list(signature.parameters.values())
        extra = [inspect.Parameter("data_format", inspect.Parameter.KEYWORD_ONLY, default=None)]
        if weights:
            extra.append(inspect.Parameter("weight_format", inspect.Parameter.KEYWORD_ONLY,
                                           default=None))
        at = next((i for i, p in enumerate(params) if p.name == "threads"), len(params))

        @functools.wraps(function)
        def wrapper(*args, data_format=None, **kwargs):
            if weights:
                weight_format = kwargs.pop("weight_format", None)
                if weight_format is not None:
                    bound = signature.bind(*args, **kwargs)
                    bound.arguments["weight"] = weight_as_oihw(bound.arguments["weight"],
                                                               weight_format, ndim)
                    args, kwargs = bound.args, bound.kwargs
            if data_format is None:
                return function(*args, **kwargs)
            last, rank = channels_last(data_format, ndim)
            if not last:
                if ndim is None and rank_argument:
                    kwargs = _spatial_dims(kwargs, rank)
                return function(*args, **kwargs)
            bound = signature.bind(*args, **kwargs)
            for name in arrays:
                if bound.arguments.get(name) is not None:
                    bound.arguments[name] = to_channels_first(bound.arguments[name], rank, name)
            out = bound.arguments.pop("out", None)
            call_kwargs = dict(bound.kwargs)
            if ndim is None and rank_argument:
                call_kwargs = _spatial_dims(call_kwargs, rank)
            result = function(*bound.args, **call_kwargs)
            if not output:
                return result if out is None else _copy_into(result, out)
            if isinstance(result, tuple):  # values and indices: the indices are not out=
                return (write_channels_last(result[0], rank, out),
                        *(np.ascontiguousarray(_to_last(r, rank)) for r in result[1:]))
            return write_channels_last(result, rank, out)

        wrapper.__signature__ = signature.replace(parameters=params[:at] + extra + params[at:])
        wrapper.__doc__ = _document(function.__doc__ or "", ndim, weights)
        return wrapper
    return decorate


def _spatial_dims(kwargs: dict, rank: int) -> dict:
    given = kwargs.get("spatial_dims")
    if given is not None and given != rank:
        raise ValueError(f"spatial_dims={given!r} contradicts data_format, which has {rank} "
                         f"spatial dims")
    return {**kwargs, "spatial_dims": rank}


def _copy_into(result: np.ndarray, out: np.ndarray) -> np.ndarray:
    if not isinstance(out, np.ndarray) or out.shape != result.shape or (
            out.dtype != result.dtype) or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous array of shape {result.shape} and dtype "
                         f"{result.dtype}, got {getattr(out, 'shape', out)!r}")
    np.copyto(out, result)
    return out


def _document(doc: str, ndim: int | None, weight_format: bool) -> str:
    names = (DATA_FORMATS[ndim] if ndim else tuple(f for r in (1, 2, 3)
                                                   for f in DATA_FORMATS[r]))
    text = (f"\n    data_format : {{{', '.join(repr(n) for n in names)}}} or None, keyword-only\n"
            f"        The layout of the data: channels-first (default) or channels-last "
            f"(``x`` and the output then ``(N, *spatial, C)``); channels-last costs one more "
            f"pass over the input and the output (docs/quickstart.md, \"Channels-last\").")
    if ndim is None:
        text += " The format also gives the spatial rank."
    if weight_format:
        w = WEIGHT_FORMATS[ndim]
        text += (f"\n    weight_format : {{{', '.join(repr(n) for n in w)}}} or None, "
                 f"keyword-only\n        The weight's layout: ``{w[0]}`` (default, "
                 f"``(C_out, C_in // groups, *k)``), ``{w[1]}`` (``(*k, C_in // groups, "
                 f"C_out)``) or ``{w[2]}`` (``(C_out, *k, C_in // groups)``).")
    marker = "\n\n    Returns\n"
    return doc.replace(marker, text + marker, 1) if marker in doc else doc + text
