"""``fastconv demo``: edge detection and a small random CNN block on a synthetic image.

Steps, each printed with its output shape, receptive field (``fastconv.shapes``) and time:

1. a deterministic 256x256 RGB test image made in code (gradients, a disc, a square, stripes);
2. Sobel x and Sobel y (``conv2d`` of the grey image with the two 3x3 difference kernels, one
   call with two output channels) and the gradient magnitude;
3. a small random CNN block: 3 -> 16 channels 3x3 conv -> ReLU -> 2x2 max pool (when the
   pooling operators are built) -> 16 -> 16 3x3 conv -> ReLU.

Writes one PNG montage (input, both edge maps, magnitude, feature maps) with Pillow, which is
an optional dependency: ``pip install "fastconv[demo]"``.
"""

import argparse
import statistics
import sys
import time

import numpy as np

SIZE = 256

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
SOBEL_Y = SOBEL_X.T.copy()


def synthetic_image(size: int = SIZE) -> np.ndarray:
    """A deterministic RGB test image, float32 in [0, 1], shape (3, size, size)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    r = xx.copy()
    g = yy.copy()
    b = 0.5 * (1 - xx) + 0.25
    disc = (xx - 0.32) ** 2 + (yy - 0.35) ** 2 < 0.18 ** 2
    square = (np.abs(xx - 0.7) < 0.15) & (np.abs(yy - 0.68) < 0.15)
    stripes = (yy > 0.85) & (np.floor(xx * 16) % 2 == 0)
    r[disc], g[disc], b[disc] = 1.0, 0.85, 0.1
    r[square], g[square], b[square] = 0.1, 0.2, 0.9
    r[stripes], g[stripes], b[stripes] = 0.0, 0.0, 0.0
    return np.stack([r, g, b]).astype(np.float32)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    scaled = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return (scaled * 255 + 0.5).astype(np.uint8)


def _timed(label: str, fn, rf, steps: list, repeats: int = 5):
    # the first call pays one-off costs (thread team start, page faults): time the ones after
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    ms = statistics.median(times) * 1e3
    shape = result.shape
    print(f"  {label:<34s} {str(shape):<18s} receptive field {rf.size!s:>3} px "
          f"(stride {rf.stride!s})  {ms:7.2f} ms")
    steps.append((label, shape, ms))
    return result


def run(output: str, threads: int | None = None) -> list:
    """Run the demo, write the montage to ``output``; returns the (label, shape, ms) steps."""
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            'fastconv demo needs Pillow to write its PNG: pip install "fastconv[demo]" '
            "(or pip install Pillow)") from None
    import fastconv
    from fastconv import shapes

    try:
        max_pool2d = fastconv.max_pool2d
    except (ImportError, AttributeError):
        max_pool2d = None

    rng = np.random.default_rng(0)
    image = synthetic_image()
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    sobel = np.stack([SOBEL_X, SOBEL_Y])[:, None]  # (2, 1, 3, 3)
    w1 = (rng.standard_normal((16, 3, 3, 3)) * np.sqrt(2 / 27)).astype(np.float32)
    b1 = np.full(16, -0.1, np.float32)
    w2 = (rng.standard_normal((16, 16, 3, 3)) * np.sqrt(2 / 144)).astype(np.float32)

    conv = shapes.Conv(3, padding=1)
    cnn = [conv, shapes.Pool(2), conv] if max_pool2d else [conv, conv]
    fields = shapes.receptive_field(shapes.Sequential(*cnn), SIZE).layers

    print(f"fastconv {fastconv.__version__} demo: {SIZE}x{SIZE} synthetic image, "
          f"isa={fastconv.config()['isa']}, threads={threads or fastconv.get_num_threads()} "
          "(times: median of 5 calls after a warm-up)")
    steps: list = []
    edge = _timed("Sobel x, y (conv2d 1->2, 3x3, p1)",
                  lambda: fastconv.conv2d(grey, sobel, padding=1, threads=threads),
                  shapes.receptive_field(conv, SIZE), steps)
    magnitude = np.hypot(edge[0], edge[1])
    feat = _timed("conv2d 3->16, 3x3, p1 + ReLU",
                  lambda: np.maximum(fastconv.conv2d(image, w1, b1, padding=1,
                                                     threads=threads), 0), fields[0], steps)
    if max_pool2d:
        feat = _timed("max_pool2d 2x2", lambda: max_pool2d(feat, 2, threads=threads),
                      fields[1], steps)
    feat = _timed("conv2d 16->16, 3x3, p1 + ReLU",
                  lambda: np.maximum(fastconv.conv2d(feat, w2, padding=1, threads=threads), 0),
                  fields[-1], steps)

    tiles = [np.moveaxis(_to_uint8(image), 0, -1), _to_uint8(np.abs(edge[0])),
             _to_uint8(np.abs(edge[1])), _to_uint8(magnitude)]
    # the four liveliest feature maps (a random block leaves some channels dead after ReLU)
    for c in np.argsort([-float(f.std()) for f in feat])[:4]:
        fm = Image.fromarray(_to_uint8(feat[c])).resize((SIZE, SIZE), Image.NEAREST)
        tiles.append(np.asarray(fm))
    pad = 8
    canvas = np.full((2 * SIZE + 3 * pad, 4 * SIZE + 5 * pad, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, 4)
        y0, x0 = pad + r * (SIZE + pad), pad + c * (SIZE + pad)
        canvas[y0:y0 + SIZE, x0:x0 + SIZE] = tile if tile.ndim == 3 else tile[..., None]
    Image.fromarray(canvas).save(output)
    print(f"wrote {output}: input | Sobel x | Sobel y | magnitude (top), "
          f"4 feature maps of the CNN block (bottom)")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastconv demo",
        description="Sobel edge detection and a small random CNN block (conv -> ReLU -> max "
                    "pool -> conv -> ReLU) on a synthetic image, with each step's output shape, "
                    "receptive field and time; writes one PNG montage. Needs Pillow: "
                    'pip install "fastconv[demo]".',
        epilog="examples:\n  fastconv demo\n  fastconv demo --output /tmp/edges.png\n"
               "  fastconv demo --threads 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="fastconv-demo.png",
                        help="PNG file to write (default: fastconv-demo.png)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads to use (default: fastconv.get_num_threads())")
    args = parser.parse_args(argv)
    try:
        run(args.output, args.threads)
    except ImportError as exc:
        print(f"fastconv demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
