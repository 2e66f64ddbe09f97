"""``fastconv demo``: edge detection and a small random CNN block on an image.

Steps, each printed with its output shape, receptive field (``fastconv.shapes``) and time:

1. the user's image (``--image PATH``, any format Pillow reads, scaled down to at most
   ``MAX_SIDE`` pixels a side) or a deterministic 256x256 RGB test image made in code
   (gradients, a disc, a square, stripes);
2. Sobel x and Sobel y (``conv2d`` of the grey image with the two 3x3 difference kernels, one
   call with two output channels) and the gradient magnitude;
3. a small random CNN block: 3 -> 16 channels 3x3 conv -> ReLU -> 2x2 max pool (when the
   pooling operators are built) -> 16 -> 16 3x3 conv -> ReLU.

Writes one PNG montage (input, both edge maps, magnitude, feature maps), each panel labelled,
with Pillow, which is an optional dependency: ``pip install "fastconv[demo]"``.

Times are representative of a step in a loop: each step writes into a preallocated ``out=``
array (ReLU in place), is warmed up, then timed over many calls (the median is shown); a single
call after an allocation measured 3x slower than the same call in a loop.
"""

import argparse
import statistics
import sys
import time

import numpy as np

SIZE = 256
#: A user's image is scaled down (aspect kept) until its longer side is at most this.
MAX_SIDE = 512
#: Height of the label band above each panel of the montage.
LABEL = 18

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


def load_image(path: str) -> np.ndarray:
    """The image at ``path`` (any format Pillow reads) as float32 RGB in [0, 1], shape
    ``(3, H, W)``, scaled down so that its longer side is at most ``MAX_SIDE``."""
    from PIL import Image

    try:
        with Image.open(path) as opened:
            picture = opened.convert("RGB")
    except (OSError, ValueError) as exc:  # missing, unreadable or not an image
        raise ValueError(f"--image {path!r} cannot be read as an image: {exc}") from None
    if max(picture.size) > MAX_SIDE:
        picture.thumbnail((MAX_SIDE, MAX_SIDE), Image.BICUBIC)
    return np.moveaxis(np.asarray(picture, dtype=np.float32) / 255.0, -1, 0).copy()


def _timed(label: str, fn, rf, steps: list, min_calls: int = 20, min_seconds: float = 0.2):
    """Run ``fn`` (which writes into preallocated arrays), warmed up, and print the median
    time of at least ``min_calls`` calls and ``min_seconds``: a step as it runs in a loop."""
    for _ in range(3):  # one-off costs: thread team start, page faults, caches
        result = fn()
    times: list[float] = []
    begin = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - begin < min_seconds:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        if len(times) >= 2000:
            break
    ms = statistics.median(times) * 1e3
    shape = result.shape
    print(f"  {label:<34s} {str(shape):<18s} receptive field {rf.size!s:>3} px "
          f"(stride {rf.stride!s})  {ms:7.3f} ms")
    steps.append((label, shape, ms))
    return result


def _fit(tile: np.ndarray, Image) -> np.ndarray:
    """``tile`` (H, W) or (H, W, 3) uint8 scaled (aspect kept) and centred in a SIZE cell."""
    picture = Image.fromarray(tile)
    scale = SIZE / max(picture.size)
    size = (max(1, round(picture.size[0] * scale)), max(1, round(picture.size[1] * scale)))
    picture = picture.convert("RGB").resize(size, Image.NEAREST if scale >= 1 else
                                            Image.BILINEAR)
    cell = np.full((SIZE, SIZE, 3), 255, np.uint8)
    y0, x0 = (SIZE - size[1]) // 2, (SIZE - size[0]) // 2
    cell[y0:y0 + size[1], x0:x0 + size[0]] = np.asarray(picture)
    return cell


def run(output: str, threads: int | None = None, image_path: str | None = None) -> list:
    """Run the demo, write the montage to ``output``; returns the (label, shape, ms) steps."""
    try:
        from PIL import Image, ImageDraw
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
    image = synthetic_image() if image_path is None else load_image(image_path)
    height, width = image.shape[1:]
    grey = (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    sobel = np.stack([SOBEL_X, SOBEL_Y])[:, None]  # (2, 1, 3, 3)
    w1 = (rng.standard_normal((16, 3, 3, 3)) * np.sqrt(2 / 27)).astype(np.float32)
    b1 = np.full(16, -0.1, np.float32)
    w2 = (rng.standard_normal((16, 16, 3, 3)) * np.sqrt(2 / 144)).astype(np.float32)

    conv = shapes.Conv(3, padding=1)
    cnn = [conv, shapes.Pool(2), conv] if max_pool2d else [conv, conv]
    fields = shapes.receptive_field(shapes.Sequential(*cnn), (height, width)).layers

    source = "synthetic image" if image_path is None else repr(image_path)
    print(f"fastconv {fastconv.__version__} demo: {width}x{height} {source}, "
          f"isa={fastconv.config()['isa']}, threads={threads or fastconv.get_num_threads()} "
          "(times: median over >= 20 calls after a warm-up, outputs written with out=)")
    steps: list = []
    edge = np.empty((2, height, width), np.float32)
    _timed("Sobel x, y (conv2d 1->2, 3x3, p1)",
           lambda: fastconv.conv2d(grey, sobel, padding=1, threads=threads, out=edge),
           shapes.receptive_field(conv, (height, width)), steps)
    magnitude = np.hypot(edge[0], edge[1])

    def conv_relu(x, w, b, out):
        fastconv.conv2d(x, w, b, padding=1, threads=threads, out=out)
        return np.maximum(out, 0, out=out)

    feat1 = np.empty((16, height, width), np.float32)
    feat = _timed("conv2d 3->16, 3x3, p1 + ReLU", lambda: conv_relu(image, w1, b1, feat1),
                  fields[0], steps)
    if max_pool2d:
        pooled = np.empty((16, height // 2, width // 2), np.float32)
        feat = _timed("max_pool2d 2x2",
                      lambda: max_pool2d(feat1, 2, threads=threads, out=pooled), fields[1],
                      steps)
    feat2 = np.empty(feat.shape, np.float32)
    feat = _timed("conv2d 16->16, 3x3, p1 + ReLU", lambda: conv_relu(feat, w2, None, feat2),
                  fields[-1], steps)

    tiles = [("input", np.moveaxis(_to_uint8(image), 0, -1)),
             ("Sobel x", _to_uint8(np.abs(edge[0]))), ("Sobel y", _to_uint8(np.abs(edge[1]))),
             ("gradient magnitude", _to_uint8(magnitude))]
    # the four liveliest feature maps (a random block leaves some channels dead after ReLU)
    for c in np.argsort([-float(f.std()) for f in feat])[:4]:
        tiles.append((f"feature map {c} ({feat.shape[1]}x{feat.shape[2]})",
                      _to_uint8(feat[c])))
    pad = 8
    cell = SIZE + LABEL
    canvas = Image.new("RGB", (4 * SIZE + 5 * pad, 2 * cell + 3 * pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (label, tile) in enumerate(tiles):
        r, c = divmod(i, 4)
        y0, x0 = pad + r * (cell + pad), pad + c * (SIZE + pad)
        draw.text((x0 + 2, y0 + 3), label, fill=(0, 0, 0))
        canvas.paste(Image.fromarray(_fit(tile, Image)), (x0, y0 + LABEL))
    canvas.save(output)
    print(f"wrote {output}: input | Sobel x | Sobel y | magnitude (top), "
          f"4 feature maps of the CNN block (bottom), each labelled")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastconv demo",
        description="Sobel edge detection and a small random CNN block (conv -> ReLU -> max "
                    "pool -> conv -> ReLU) on a synthetic image, with each step's output shape, "
                    "receptive field and time; writes one PNG montage. Needs Pillow: "
                    'pip install "fastconv[demo]".',
        epilog="examples:\n  fastconv demo\n  fastconv demo --image photo.jpg --output "
               "edges.png\n  fastconv demo --threads 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="fastconv-demo.png",
                        help="PNG file to write (default: fastconv-demo.png)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads to use (default: fastconv.get_num_threads())")
    parser.add_argument("--image", metavar="PATH", default=None,
                        help="your own image, any format Pillow reads (default: a synthetic "
                             f"256x256 image); scaled down to at most {MAX_SIDE} px a side")
    args = parser.parse_args(argv)
    try:
        run(args.output, args.threads, args.image)
    except (ImportError, ValueError) as exc:
        print(f"fastconv demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
