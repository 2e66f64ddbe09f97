"""``fastconv shapes``: a network's output shapes, parameters, MACs and receptive fields.

``main(argv)`` returns the exit code: 0, or 2 for a bad spec or input (the message says what
and where, without a traceback). ``python -m fastconv.shapes.cli`` runs it too.
"""

import argparse
import json
import sys

from . import presets
from ._spec import SpecError, parse
from ._summary import summary

EPILOG = """\
PRESET is one of {presets}; SPEC is a list of layers separated by commas.

layers (K is a size: 3, or 3x3 / 1x7 per dim):
  convK        convolution; options s2 (stride), p1 / p1x0 / p0-1 (padding, a (before,
               after) pair), same, same_lower, valid, full, d2 (dilation), c64 (output
               channels, default: keep), g32 (groups), nobias
  convtK       transposed convolution; same options plus op1 (output padding)
  maxpoolK     max pooling (also pool, avgpool, lppool); s2, p1, d2, same, ceil;
               the stride defaults to K
  adaptiveavgK adaptive average pooling to size K (adaptivemaxK; '_' keeps a dim)
  gap, gmp     global average / max pooling
  fcN          fully connected, N outputs (after flatten); bn; flatten
  relu relu6 gelu silu sigmoid tanh hardswish dropout id ...   (no effect on shapes)

blocks:
  (A, B)*N     repeat a group N times (also convK...*N)
  res(A, B)    residual block: A, B plus the identity shortcut
  res(A | S)   residual block with shortcut branch S (e.g. a strided 1x1 convolution)
  par(A | B)   branches added; cat(A | B) branches concatenated along channels

examples:
  fastconv shapes resnet18 --input 3x224x224
  fastconv shapes vgg16 --json
  # a VGG block: two 3x3 convolutions and a 2x2 max pooling
  fastconv shapes "(conv3x3p1c64, relu)*2, maxpool2" --input 3x32x32
  # a ResNet stem and a downsampling residual block
  fastconv shapes "conv7s2p3c64, bn, relu, maxpool3s2p1,
      res(conv3s2p1c128, bn, relu, conv3p1c128, bn | conv1s2c128, bn), relu"
  # an Inception-style block (branches concatenated) on 1-D signals
  fastconv shapes "cat(conv1c16 | conv3p1c16 | maxpool3s1p1, conv1c16)" --input 8x100
  # upsampling with a transposed convolution (same: output = input * stride)
  fastconv shapes "conv3s2samec32, convt4s2samec16" --input 3x64x64

The table lists each layer's output shape, parameters, multiply-accumulates (convolutions
and linear layers, as torchvision counts its GFLOPS) and receptive field: size, effective
stride and effective padding (Araujo, Norris & Sim, Distill 2019): output unit u sees input
units -padding + u*stride ... -padding + u*stride + size - 1 in every spatial dim.
""".format(presets=", ".join(presets.NAMES))


def _input_shape(text: str) -> tuple[int, ...]:
    parts = text.lower().split("x")
    if len(parts) < 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--input must be channels and spatial sizes joined by 'x', such as "
                         f"3x224x224 (or 8x100, 1x16x64x64), got {text!r}")
    return tuple(int(p) for p in parts)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastconv shapes",
        description="Output shape, parameters, multiply-accumulates and receptive field of\n"
                    "every layer of a network: a torchvision preset or a compact layer spec.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("network", metavar="PRESET|SPEC|MODEL.onnx",
                        help=f"one of {', '.join(presets.NAMES)}, a layer spec (see below), or "
                             f"an ONNX file (needs the onnx package)")
    parser.add_argument("--input", default=None, metavar="CxHxW",
                        help="input shape without the batch dim (default: 3x224x224; for an "
                             "ONNX file its declared shape)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, already printed)
        return int(exc.code or 0)
    if args.network.endswith(".onnx"):
        return _onnx_main(args)
    try:
        shape = _input_shape(args.input or "3x224x224")
        network = presets.get(args.network) if args.network in presets.NAMES \
            else parse(args.network)
        result = summary(network, shape)
    except SpecError as exc:
        print(f"fastconv shapes: bad spec: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"fastconv shapes: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result)
    return 0


def _onnx_main(args) -> int:
    """``fastconv shapes MODEL.onnx``: the summary of fastconv.onnx (NumPy and onnx needed)."""
    try:
        import fastconv.onnx as fonnx

        model = fonnx.load(args.network)
        shape = None if args.input is None else (1, *_input_shape(args.input))
        if args.json:
            print(json.dumps(model.summary_rows(shape), indent=2))
        else:
            print(model.summary(shape))
    except ImportError as exc:
        print(f"fastconv shapes: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"fastconv shapes: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
