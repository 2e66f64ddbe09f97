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


LEARN_LR = 3e-2       # the tutorial's learning rate for the 1x2 kernel
LEARN_STEPS = 10
SOBEL_STEPS = 500     # gradient descent with momentum on the mean squared error
SOBEL_LR = 0.8
SOBEL_MOMENTUM = 0.9


def learn_edge_kernel(threads: int | None = None, seed: int = 0, echo=print) -> np.ndarray:
    """The tutorial's example: recover the edge kernel ``[[-1, 1]]`` from ``(X, Y)``.

    ``X`` is a 6x8 image of ones with a dark vertical band (columns 2..5 zero), ``Y`` its
    cross-correlation with ``[[-1, 1]]``; a random 1x2 kernel is trained by ten steps of plain
    gradient descent (learning rate 3e-2) on the summed squared error, the gradient coming from
    :func:`fastconv.conv2d_backward`. Returns the learned kernel ``(1, 2)``.

    Examples
    --------
    >>> from fastconv._demo import learn_edge_kernel
    >>> k = learn_edge_kernel(echo=lambda *a: None)
    >>> bool(abs(k[0, 0] + 1) < 0.1 and abs(k[0, 1] - 1) < 0.1)
    True
    """
    import fastconv

    x = np.ones((6, 8))
    x[:, 2:6] = 0
    x = x.reshape(1, 1, 6, 8)
    y = fastconv.conv2d(x, np.array([[[[-1.0, 1.0]]]]), threads=threads)
    weight = np.random.default_rng(seed).uniform(-1, 1, (1, 1, 1, 2))
    for step in range(LEARN_STEPS):
        y_hat = fastconv.conv2d(x, weight, threads=threads)
        loss = float(np.sum((y_hat - y) ** 2))
        _, grad_w, _ = fastconv.conv2d_backward(2 * (y_hat - y), x, weight, needs=("weight",),
                                                threads=threads)
        weight -= LEARN_LR * grad_w
        if (step + 1) % 2 == 0:
            echo(f"  epoch {step + 1}, loss {loss:.3f}")
    return weight.reshape(1, 2)


def learn_sobel(grey: np.ndarray, threads: int | None = None, seed: int = 0,
                steps: int = SOBEL_STEPS, echo=print):
    """Learn a 3x3 kernel whose response on ``grey`` (H, W) matches Sobel-x's.

    Gradient descent with momentum on the mean squared error between the two responses
    (``padding=1``); returns ``(kernel (3, 3), target response, learned response, loss)``.
    """
    import fastconv

    img = grey.reshape(1, 1, *grey.shape).astype(np.float64)
    target = fastconv.conv2d(img, SOBEL_X[None, None].astype(np.float64), padding=1,
                             threads=threads)
    weight = np.random.default_rng(seed).standard_normal((1, 1, 3, 3)) * 0.1
    velocity = np.zeros_like(weight)
    loss = float("nan")
    for step in range(steps):
        response = fastconv.conv2d(img, weight, padding=1, threads=threads)
        residual = response - target
        loss = float(np.mean(residual ** 2))
        _, grad_w, _ = fastconv.conv2d_backward(2 * residual / residual.size, img, weight,
                                                padding=1, needs=("weight",), threads=threads)
        velocity = SOBEL_MOMENTUM * velocity - SOBEL_LR * grad_w
        weight += velocity
        if step == 0 or (step + 1) % 100 == 0:
            echo(f"  step {step + 1:3d}, mean squared error {loss:.2e}")
    response = fastconv.conv2d(img, weight, padding=1, threads=threads)
    return weight[0, 0], target[0, 0], response[0, 0], loss


def run_learn(output: str, threads: int | None = None) -> np.ndarray:
    """``fastconv demo --learn``: the kernel-learning tutorial with fastconv's gradients."""
    import fastconv

    np.set_printoptions(precision=3, suppress=True)
    print(f"fastconv {fastconv.__version__} demo --learn: learning a kernel from data with "
          f"fastconv.conv2d_backward (no autograd framework)")
    print("1) X: 6x8 ones with a dark vertical band, Y = X * [[-1, 1]]; a random 1x2 kernel, "
          f"{LEARN_STEPS} steps of gradient descent, lr {LEARN_LR}, squared error:")
    kernel = learn_edge_kernel(threads)
    print(f"  learned kernel: {kernel}  (the kernel that made Y: [[-1.  1.]])")
    print(f"2) a 3x3 kernel learned to reproduce Sobel-x on the {SIZE}x{SIZE} demo image "
          f"({SOBEL_STEPS} steps, momentum {SOBEL_MOMENTUM}, lr {SOBEL_LR}, mean squared "
          "error):")
    image = synthetic_image()
    grey = 0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2]
    learned, target, response, _ = learn_sobel(grey, threads)
    print("  learned kernel:            Sobel-x:")
    for row_l, row_s in zip(learned, SOBEL_X):
        print(f"  {np.array2string(row_l, precision=3, suppress_small=True):<26s} "
              f"{np.array2string(row_s.astype(np.float64), precision=0)}")
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            'fastconv demo needs Pillow to write its PNG: pip install "fastconv[demo]" '
            "(or pip install Pillow)") from None
    pad = 8
    lo, hi = float(target.min()), float(target.max())

    def tile(a):  # both responses on the target's scale
        return (np.clip((a - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)

    canvas = np.full((SIZE + 2 * pad, 2 * SIZE + 3 * pad), 255, np.uint8)
    canvas[pad:pad + SIZE, pad:pad + SIZE] = tile(target)
    canvas[pad:pad + SIZE, 2 * pad + SIZE:2 * pad + 2 * SIZE] = tile(response)
    Image.fromarray(canvas).save(output)
    print(f"wrote {output}: Sobel-x response (left) | learned kernel's response (right)")
    return learned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastconv demo",
        description="Sobel edge detection and a small random CNN block (conv -> ReLU -> max "
                    "pool -> conv -> ReLU) on a synthetic image, with each step's output shape, "
                    "receptive field and time; writes one PNG montage. Needs Pillow: "
                    'pip install "fastconv[demo]".',
        epilog="examples:\n  fastconv demo\n  fastconv demo --image photo.jpg --output "
               "edges.png\n  fastconv demo --threads 1\n  fastconv demo --learn",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=None,
                        help="PNG file to write (default: fastconv-demo.png)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads to use (default: fastconv.get_num_threads())")
    parser.add_argument("--image", metavar="PATH", default=None,
                        help="your own image, any format Pillow reads (default: a synthetic "
                             f"256x256 image); scaled down to at most {MAX_SIDE} px a side")
    parser.add_argument("--learn", action="store_true",
                        help="learn kernels from data with fastconv's gradients instead: the "
                             "tutorial's 1x2 edge kernel, then Sobel-x on the synthetic image "
                             "(PNG default: fastconv-learn.png)")
    args = parser.parse_args(argv)
    try:
        if args.learn:
            run_learn("fastconv-learn.png" if args.output is None else args.output,
                      args.threads)
            return 0
        run("fastconv-demo.png" if args.output is None else args.output, args.threads,
            args.image)
    except (ImportError, ValueError) as exc:
        print(f"fastconv demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
