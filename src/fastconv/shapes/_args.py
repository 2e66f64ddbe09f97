"""Argument checks for the size functions: ints, per-dim sizes and the padding forms.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad value)
whose message names the argument and shows the value. They are plain arithmetic on small tuples,
cheap enough for the operators to call on every call.
"""

import operator
from collections.abc import Sequence
from typing import Any

# Type names of the booleans we refuse where an int is required (Python's and NumPy 1.x / 2.x's),
# checked by name because this package must not import NumPy.
_BOOL_TYPES = ("bool", "bool_")

PADDING_STRINGS = ("valid", "same", "same_lower", "full")

Size = int | Sequence[int]


def is_per_dim(value: Any) -> bool:
    """Whether ``value`` is a per-dim sequence (tuple, list, 1-d array) rather than a scalar."""
    if isinstance(value, (tuple, list)):
        return True
    if isinstance(value, (int, str, bytes, dict)) or not hasattr(value, "__iter__"):
        return False
    try:
        len(value)
    except TypeError:  # a 0-d array: iterable type, no length
        return False
    return True


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as an int (bools and floats refused), optionally ``>= minimum``."""
    if type(value) is int:  # the common case, first: the operators call this on every call
        number = value
    elif type(value).__name__ in _BOOL_TYPES or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    else:
        number = operator.index(value)
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def ndim_of(**named: Any) -> tuple[int, bool]:
    """The number of spatial dims the per-dim arguments agree on, and whether any was per-dim.

    Scalars fit any number of dims; with no per-dim argument at all the answer is ``(1, False)``.
    Strings (padding names) carry no dim information.
    """
    ndim, source = 0, ""
    for name, value in named.items():
        if value is None or isinstance(value, str) or not is_per_dim(value):
            continue
        length = len(value)
        if length == 0:
            raise ValueError(f"{name} must have at least one entry (one per spatial dim), "
                             f"got {value!r}")
        if ndim and length != ndim:
            if "padding" in (name, source):
                # name what padding accepts, not the other argument (an operator may have
                # passed a size of its own there)
                padding = value if name == "padding" else named["padding"]
                raise padding_forms_error(padding, length if name != "padding" else ndim)
            raise ValueError(
                f"{name} has {length} entries but {source} has {ndim} (one per spatial dim): "
                f"{name}={value!r}, {source}={named[source]!r}")
        ndim, source = length, name
    return (ndim, True) if ndim else (1, False)


def per_dim(value: Any, name: str, ndim: int, minimum: int | None = 1) -> tuple[int, ...]:
    """An int or a sequence of ``ndim`` ints, as a tuple of ``ndim`` ints ``>= minimum``."""
    if is_per_dim(value):
        items = list(value)
        if len(items) != ndim:
            raise ValueError(f"{name} must be an int or a tuple of {ndim} ints (one per spatial "
                             f"dim), got {value!r}")
        return tuple(check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(items))
    return (check_int(value, name, minimum),) * ndim


def optional_per_dim(value: Any, name: str, ndim: int) -> tuple[int | None, ...]:
    """Like :func:`per_dim` (entries >= 1), but an entry may be None."""
    items = list(value) if is_per_dim(value) else [value] * ndim
    if len(items) != ndim:
        raise ValueError(f"{name} must be an int, None or a tuple of {ndim} of them (one per "
                         f"spatial dim), got {value!r}")
    label = (lambda i: f"{name}[{i}]") if is_per_dim(value) else (lambda i: name)
    return tuple(None if v is None else check_int(v, label(i), 1) for i, v in enumerate(items))


def padding_forms_error(padding: Any, ndim: int) -> ValueError:
    """The error for a padding tuple of the wrong length: the forms accepted and what was given.

    A flat ``(left, right, top, bottom)`` tuple (``torch.nn.functional.pad``'s form) is the
    common mistake, so the message then shows the pairs form it should have been.
    """
    count = len(padding) if is_per_dim(padding) else 1
    message = (f"padding must be an int, a string, a tuple of {ndim} ints or a tuple of {ndim} "
               f"(before, after) pairs (one per spatial dim); got {padding!r} ({count} "
               f"entries)")
    if count == 2 * ndim and not any(is_per_dim(p) for p in padding):
        sides = ("(front, back)", "(top, bottom)", "(left, right)")[-ndim:] if ndim <= 3 else (
            ("(before, after)",) * ndim)
        message += (f". A flat tuple of {count} ints is torch.nn.functional.pad's form (last "
                    f"dim first), not a padding form: write ({', '.join(sides)})")
    return ValueError(message)


def explicit_padding(padding: Any, ndim: int) -> tuple[tuple[int, int], ...]:
    """An explicit padding (int, per-dim ints, or (before, after) pairs) as pairs per dim."""
    if not is_per_dim(padding):
        pad = check_int(padding, "padding", 0)
        return ((pad, pad),) * ndim
    items = list(padding)
    if len(items) != ndim:
        raise padding_forms_error(padding, ndim)
    pairs = []
    for i, item in enumerate(items):
        if is_per_dim(item):
            if len(item) != 2:
                raise ValueError(f"padding[{i}] must be an int or a (before, after) pair, "
                                 f"got {item!r}")
            pairs.append((check_int(item[0], f"padding[{i}][0]", 0),
                          check_int(item[1], f"padding[{i}][1]", 0)))
        else:
            pad = check_int(item, f"padding[{i}]", 0)
            pairs.append((pad, pad))
    return tuple(pairs)


def padding_name(padding: str) -> str:
    """A padding string, checked against the ones we know."""
    if padding not in PADDING_STRINGS:
        valid = ", ".join(repr(p) for p in PADDING_STRINGS)
        raise ValueError(f"padding must be an int, a tuple, or one of {valid}; got {padding!r}")
    return padding


def shaped(values: tuple, per_dim_form: bool) -> Any:
    """Give a per-dim result back in the caller's form: a tuple, or the single value."""
    return values if per_dim_form else values[0]
