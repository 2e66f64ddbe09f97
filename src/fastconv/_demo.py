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
        epilog="examples:\n  fastconv demo\n  fastconv demo --output /tmp/edges.png\n"
               "  fastconv demo --threads 1\n  fastconv demo --learn",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=None,
                        help="PNG file to write (default: fastconv-demo.png)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads to use (default: fastconv.get_num_threads())")
    parser.add_argument("--learn", action="store_true",
                        help="learn kernels from data with fastconv's gradients instead: the "
                             "tutorial's 1x2 edge kernel, then Sobel-x (PNG default: "
                             "fastconv-learn.png)")
    args = parser.parse_args(argv)
    try:
        if args.learn:
            run_learn("fastconv-learn.png" if args.output is None else args.output,
                      args.threads)
            return 0
        run("fastconv-demo.png" if args.output is None else args.output, args.threads)
    except ImportError as exc:
        print(f"fastconv demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
