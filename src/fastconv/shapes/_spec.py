"""The compact layer language of ``fastconv shapes``: ``"conv3x3p1c64, relu, maxpool2"``.

Grammar (spaces are ignored, names are lower case)::

    network := items
    items   := item ("," item)*
    item    := atom ("*" N)?                 repeat N times
    atom    := "(" items ")"                 a group
             | "res(" items ("|" items)? ")"  residual: items + identity (or + the 2nd branch)
             | "par(" items ("|" items)+ ")"  branches added together
             | "cat(" items ("|" items)+ ")"  branches concatenated along channels
             | layer

    layer   := conv K opts | dconv K opts | convt K opts | maxpool K opts | avgpool K opts
             | lppool K opts | adaptiveavg K | adaptivemax K | gap | gmp | fc N | bn | flatten
             | activation

``K`` is a size: ``3`` (every dim) or ``3x3``/``1x7`` (per dim). Options, in any order:
``s2`` stride, ``p1`` padding (``p1x0`` per dim, ``p0-1`` a (before, after) pair), ``same``,
``same_lower``, ``valid``, ``full``, ``d2`` dilation, ``c64`` output channels, ``g32`` groups,
``op1`` output padding (``convt``), ``nobias``, ``ceil`` (pools). ``dconv`` is a deformable
convolution (shapes as ``conv``). ``pool`` is ``maxpool``; a
pool's stride defaults to its size; ``gap``/``gmp`` are global average/max pooling; ``fc``
needs a flat input (``flatten, fc10``). Activations and dropout (``relu``, ``relu6``,
``gelu``, ``silu``, ``sigmoid``, ``tanh``, ``hardswish``, ``dropout``, ``id``) change no shape.
"""

import re
from dataclasses import dataclass

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

ACTIVATIONS = ("relu", "relu6", "gelu", "silu", "swish", "sigmoid", "tanh", "hardswish",
               "leakyrelu", "elu", "softmax", "dropout", "id", "identity")
BLOCKS = ("res", "par", "cat")
# layer name -> the options it takes
WINDOW_OPTIONS = {
    "conv": {"s", "p", "d", "c", "g", "nobias", "same", "same_lower", "valid", "full"},
    "dconv": {"s", "p", "d", "c", "g", "nobias", "same", "same_lower", "valid", "full"},
    "convt": {"s", "p", "op", "d", "c", "g", "nobias", "same", "same_lower", "valid"},
    "deconv": {"s", "p", "op", "d", "c", "g", "nobias", "same", "same_lower", "valid"},
    "maxpool": {"s", "p", "d", "ceil", "same", "same_lower", "valid"},
    "avgpool": {"s", "p", "d", "ceil", "same", "same_lower", "valid"},
    "lppool": {"s", "p", "d", "ceil", "same", "same_lower", "valid"},
    "pool": {"s", "p", "d", "ceil", "same", "same_lower", "valid"},
}

_TOKEN = re.compile(r"\s*(?:(?P<word>[A-Za-z_][A-Za-z0-9_\-]*)|(?P<number>\d+)"
                    r"|(?P<punct>[(),|*]))")
_DIMS = r"\d+(?:x\d+)*"
_PADDING_DIMS = r"\d+(?:-\d+)?(?:x\d+(?:-\d+)?)*"
_OPTION = re.compile(rf"(?P<word>same_lower|same|valid|full|nobias|ceil)"
                     rf"|(?P<key>op|s|d|c|g)(?P<value>{_DIMS})"
                     rf"|(?P<pkey>p)(?P<pvalue>{_PADDING_DIMS})")


class SpecError(ValueError):
    """A bad layer spec; ``str()`` shows the spec with a caret under the offending part."""

    def __init__(self, message: str, spec: str, start: int, end: int) -> None:
        self.message, self.spec = message, spec
        self.start, self.end = start, max(end, start + 1)
        super().__init__(str(self))

    def __str__(self) -> str:
        marker = " " * self.start + "^" * (self.end - self.start)
        return f"{self.message}\n  {self.spec}\n  {marker}"


@dataclass
class _Token:
    kind: str  # "word", "number", "punct" or "end"
    text: str
    start: int
    end: int


def _tokens(spec: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(spec):
        if spec[position:].isspace():
            break
        match = _TOKEN.match(spec, position)
        if match is None:
            bad = len(spec) - len(spec[position:].lstrip()) if spec[position].isspace() \
                else position
            raise SpecError(f"unexpected character {spec[bad]!r}", spec, bad, bad + 1)
        kind = match.lastgroup or "word"
        tokens.append(_Token(kind, match.group(kind), match.start(kind), match.end(kind)))
        position = match.end()
    tokens.append(_Token("end", "", len(spec), len(spec)))
    return tokens


def _size(text: str) -> int | tuple:
    """``"3"`` -> 3, ``"3x5"`` -> (3, 5), ``"0-1"`` -> ((0, 1),), ``"1x0-1"`` -> (1, (0, 1))."""
    parts = [tuple(int(v) for v in p.split("-")) if "-" in p else int(p)
             for p in text.split("x")]
    if len(parts) == 1 and not isinstance(parts[0], tuple):
        return parts[0]
    return tuple(parts)


class _Parser:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.tokens = _tokens(spec)
        self.index = 0

    def error(self, message: str, token: _Token) -> SpecError:
        return SpecError(message, self.spec, token.start, token.end)

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self, text: str) -> bool:
        if self.token.kind == "punct" and self.token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str, what: str) -> None:
        if not self.take(text):
            found = f"{self.token.text!r}" if self.token.kind != "end" else "the end"
            raise self.error(f"expected {what}, found {found}", self.token)

    def network(self) -> Sequential:
        if self.token.kind == "end":
            raise self.error("empty spec: give a preset name or layers such as "
                             "'conv3x3p1c64, relu, maxpool2'", self.token)
        layers = self.items()
        if self.token.kind != "end":
            raise self.error(f"expected ',' between layers, found {self.token.text!r}",
                             self.token)
        return Sequential(*layers)

    def items(self) -> list[object]:
        layers = [self.item()]
        while self.take(","):
            layers.append(self.item())
        return layers

    def item(self) -> object:
        layer = self.atom()
        if self.take("*"):
            count = self.token
            if count.kind != "number" or int(count.text) < 1:
                raise self.error("expected a repeat count >= 1 after '*'", count)
            self.index += 1
            layer = Sequential(*[layer] * int(count.text))
        return layer

    def atom(self) -> object:
        token = self.token
        if self.take("("):
            group = Sequential(*self.items())
            self.expect(")", "')' closing the group")
            return group
        if token.kind != "word":
            found = repr(token.text) if token.kind != "end" else "the end of the spec"
            raise self.error(f"expected a layer, found {found}", token)
        self.index += 1
        if token.text.lower() in BLOCKS:
            return self.block(token)
        return self.layer(token)

    def block(self, token: _Token) -> Parallel:
        kind = token.text.lower()
        self.expect("(", f"'(' after {kind!r}")
        branches: list[object] = [Sequential(*self.items())]
        while self.take("|"):
            branches.append(Sequential(*self.items()))
        self.expect(")", f"')' closing {kind}(...) (or '|' between branches)")
        if kind == "res":
            if len(branches) > 2:
                raise self.error("res(...) takes the residual branch and at most one "
                                 "shortcut branch after '|'", token)
            if len(branches) == 1:
                branches.append(Identity(name="identity"))
        elif len(branches) < 2:
            raise self.error(f"{kind}(...) needs two or more branches separated by '|'", token)
        return Parallel(*branches, merge="concat" if kind == "cat" else "add")

    def layer(self, token: _Token) -> object:
        word = token.text.lower()
        if word in ACTIVATIONS:
            return Identity(word)
        simple = {"bn": BatchNorm, "flatten": Flatten}
        if word in simple:
            return simple[word]()
        if word in ("gap", "gmp"):
            return AdaptivePool(1, mode="avg" if word == "gap" else "max")
        for name in ("adaptiveavg", "adaptivemax"):
            if word.startswith(name):
                return self.adaptive(token, name, word[len(name):])
        for name in ("fc", "linear"):
            match = re.fullmatch(rf"{name}(\d+)(nobias)?", word)
            if match:
                return self.build(token, Linear, None, int(match.group(1)),
                                  bias=match.group(2) is None)
        for name in sorted(WINDOW_OPTIONS, key=len, reverse=True):
            if word.startswith(name):
                return self.window(token, name, word)
        raise self.error(f"unknown layer {token.text!r}; layers: conv, dconv, convt, maxpool, "
                         f"avgpool, lppool, adaptiveavg, adaptivemax, gap, gmp, fc, bn, flatten, "
                         f"{', '.join(ACTIVATIONS)}; blocks: res(...), par(...), cat(...)",
                         token)

    def adaptive(self, token: _Token, name: str, rest: str) -> object:
        if not re.fullmatch(r"(?:\d+|_)(?:x(?:\d+|_))*", rest):
            raise self.error(f"{name} needs an output size such as {name}7 or {name}7x7 "
                             f"('_' keeps a dim), got {token.text!r}", token)
        sizes = [None if v == "_" else int(v) for v in rest.split("x")]
        size = sizes[0] if len(sizes) == 1 else tuple(sizes)
        return self.build(token, AdaptivePool, size, mode=name[len("adaptive"):])

    def window(self, token: _Token, name: str, word: str) -> object:
        kernel = re.match(_DIMS, word[len(name):])
        if kernel is None:
            raise self.error(f"{name} needs a kernel size right after it, as in {name}3 or "
                             f"{name}3x3", token)
        options: dict[str, object] = {}
        position = len(name) + kernel.end()
        while position < len(word):
            match = _OPTION.match(word, position)
            key = None if match is None else (match.group("word") or match.group("key")
                                              or match.group("pkey"))
            if match is None or key not in WINDOW_OPTIONS[name]:
                end = position + (match.end() - match.start() if match else len(word) - position)
                raise SpecError(
                    f"unknown option {word[position:end]!r} for {name}; it takes "
                    f"{', '.join(sorted(WINDOW_OPTIONS[name]))}",
                    self.spec, token.start + position, token.start + end)
            if key in ("same", "same_lower", "valid", "full"):
                slot, value = "p", key
            elif key in ("nobias", "ceil"):
                slot, value = key, True
            else:
                slot, value = key, _size(match.group("value") or match.group("pvalue"))
            if slot in options:
                raise SpecError(f"{'padding' if slot == 'p' else repr(key)} given twice",
                                self.spec, token.start + position, token.start + match.end())
            options[slot] = value
            position = match.end()
        size = _size(kernel.group())
        arguments: dict[str, object] = {}
        for key, argument in (("s", "stride"), ("p", "padding"), ("d", "dilation"),
                              ("c", "out_channels"), ("g", "groups"), ("op", "output_padding")):
            if key in options:
                arguments[argument] = options[key]
        if "nobias" in options:
            arguments["bias"] = False
        if "ceil" in options:
            arguments["ceil_mode"] = True
        if name == "conv":
            return self.build(token, Conv, size, **arguments)
        if name == "dconv":
            return self.build(token, DeformConv, size, **arguments)
        if name in ("convt", "deconv"):
            return self.build(token, ConvTranspose, size, **arguments)
        mode = {"pool": "max", "maxpool": "max", "avgpool": "avg", "lppool": "lp"}[name]
        return self.build(token, Pool, size, mode=mode, **arguments)

    def build(self, token: _Token, kind: type, *args: object, **kwargs: object) -> object:
        try:
            return kind(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise self.error(f"bad layer {token.text!r}: {exc}", token) from None


def parse(spec: str) -> Sequential:
    """The :class:`Sequential` a layer spec describes.

    Raises
    ------
    SpecError
        A ``ValueError`` whose message shows the spec with a caret under the bad token.

    Examples
    --------
    >>> net = parse("conv3x3s2p1c64, relu")
    >>> net[0].kernel_size, net[0].stride, net[0].padding, net[0].out_channels, net[1].label
    ((3, 3), 2, 1, 64, 'relu')
    >>> len(parse("(conv3p1c64, relu)*2, maxpool2")[0])
    2
    >>> parse("conv3, cnv3")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fastconv.shapes._spec.SpecError: unknown layer 'cnv3'; ...
    """
    if not isinstance(spec, str):
        raise TypeError(f"spec must be a string, got {spec!r}")
    return _Parser(spec).network()
