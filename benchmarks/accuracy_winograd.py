"""Accuracy of Winograd F(2x2,3x3), F(4x4,3x3), F(6x6,3x3) against the float64 reference.

For each tile, dtype and input-channel count ``C_in`` in {16, 64, 256, 512} this measures the
error measure of the accuracy policy (API.md): ``max|y - ref| / max|ref|`` over the output,
with standard-normal inputs and weights, ``ref`` the float64 NumPy reference
(``tests/reference.py``). Each cell is the worst of ``--trials`` fresh random problems
(``--size`` x ``--size`` image, ``--c-out`` output channels, padding 1). The im2col column is
the library's ordinary GEMM path, for scale. The table goes into ``docs/winograd.md``; the
bounds in ``fastconv._winograd_plan.ERROR_BOUND`` must stay above every cell (checked here:
"ok" / "EXCEEDS" per row).

    python benchmarks/accuracy_winograd.py [--trials 3] [--size 28] [--c-out 32] [--threads 2]
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from reference import ref_conv  # noqa: E402

import fastconv  # noqa: E402
from fastconv import _winograd_plan as wp  # noqa: E402

C_INS = (16, 64, 256, 512)
PADS = ((1, 1), (1, 1))


def relative_error(actual, expected) -> float:
    """``max|actual - expected| / max|expected|`` (the accuracy policy's measure)."""
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def measure(c_in: int, dtype, trials: int, size: int, c_out: int, threads: int,
            rng: np.random.Generator) -> dict[str, float]:
    """Worst error of every tile (and of im2col) over ``trials`` fresh problems."""
    worst: dict[str, float] = {}
    for _ in range(trials):
        x = rng.standard_normal((1, c_in, size, size))
        w = rng.standard_normal((c_out, c_in, 3, 3))
        ref = ref_conv(x, w, None, padding=1)
        xd = x.astype(dtype)
        results = {"im2col": fastconv.conv2d(xd, w.astype(dtype), padding=1,
                                               algorithm="im2col", threads=threads)}
        for tile in wp.TILES:
            prepared = wp.prepare_weights(w, tile, dtype)
            results[f"F{tile}"] = wp.winograd_conv2d(xd, prepared, None, PADS, threads)
        for name, y in results.items():
            worst[name] = max(worst.get(name, 0.0), relative_error(y, ref))
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--c-out", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=None, help="default: fresh entropy")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    status = 0
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        print(f"\n{name}: max|err| / max|ref|, worst of {args.trials} trial(s), "
              f"{args.size}x{args.size}, C_out {args.c_out}")
        print("| tile | bound | " + " | ".join(f"C_in {c}" for c in C_INS) + " | |")
        print("|---|---|" + "---|" * len(C_INS) + "---|")
        rows: dict[str, list[float]] = {}
        for c_in in C_INS:
            for key, err in measure(c_in, dtype, args.trials, args.size, args.c_out,
                                    args.threads, rng).items():
                rows.setdefault(key, []).append(err)
        for key, errs in rows.items():
            bound = wp.ERROR_BOUND[name].get(int(key[1:])) if key.startswith("F") else None
            verdict = "" if bound is None else ("ok" if max(errs) <= bound else "EXCEEDS")
            status |= verdict == "EXCEEDS"
            print(f"| {key} | {'-' if bound is None else f'{bound:.0e}'} | "
                  + " | ".join(f"{e:.1e}" for e in errs) + f" | {verdict} |")
    return status


if __name__ == "__main__":
    sys.exit(main())
