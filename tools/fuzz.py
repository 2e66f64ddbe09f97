"""Fuzz fastconv's argument checks and kernels; a crash or hang is caught and shown with its input.

Every input is a byte string decoded into one operator call (operator, array shapes, dtypes,
layouts and every parameter, with edge values such as 0, -1, 2**31, 2**62, floats, bools,
None and bad strings mixed in). The call must either raise ``ValueError``, ``TypeError`` or
``MemoryError`` with a message, or return the result the float64 reference
(``tests/reference.py``) gives. Anything else is a *finding*: another exception type, an empty
message, a wrong answer, a crash (signal) or a hang.

The fuzzing runs in a child process (atheris / libFuzzer when ``pip install atheris`` works,
else random byte strings); the child writes each input to a file before running it, so when it
dies the parent still knows the input. The parent prints every finding as a runnable repro,
saves it under ``--findings`` and restarts the child until the time is up.

Usage::

    python tools/fuzz.py --minutes 60            # an hour (see docs/reliability.md)
    python tools/fuzz.py --replay HEX            # rerun one input, printing the call
    python tools/fuzz.py --minutes 5 --engine random

Exit status: 0 when nothing was found, 1 otherwise.
"""

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

# Child memory cap: outputs that cannot be allocated must give MemoryError, not an OOM kill.
MEMORY_LIMIT = 3 << 30
# An input running longer than this (seconds) is a hang.
HANG_SECONDS = 60
# Results larger than this are not checked against the (slow) reference.
REFERENCE_MAX_WORK = 2_000_000

EDGE_INTS = (0, -1, 1, 2, 3, 5, 7, 64, 2**31 - 1, 2**31, 2**32 + 1, 2**62, -2**62, 2**70)
ODD_VALUES = (1.0, 2.5, True, False, None, "2", float("nan"), float("inf"), object())
PAD_STRINGS = ("valid", "same", "same_lower", "full", "SAME", "")
DTYPES = ("float32", "float64", "float16", "int8", "uint8", "int32", "int64", "bool",
          "complex64", "object", "<U1", "datetime64[s]", ">f4")


class Bytes:
    """Consume a byte string as a sequence of choices (zeros once it runs out)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        return self.byte() % n if n > 1 else 0

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def chance(self, sixteenths: int) -> bool:
        """True with probability sixteenths/16 (for random bytes)."""
        return self.byte() % 16 < sixteenths


def _size_value(b: Bytes, spatial: int, lo: int, hi: int):
    """A size parameter: mostly valid (int or per-dim tuple), sometimes an edge or odd value."""
    roll = b.below(16)
    if roll < 9:
        return lo + b.below(hi - lo + 1)
    if roll < 12:
        return tuple(lo + b.below(hi - lo + 1) for _ in range(spatial))
    if roll < 14:
        return b.choice(EDGE_INTS)
    if roll < 15:
        return tuple(b.choice(EDGE_INTS) if b.chance(4) else lo + b.below(hi - lo + 1)
                     for _ in range(spatial + (1 if b.chance(2) else 0)))
    return b.choice(ODD_VALUES)


def _padding(b: Bytes, spatial: int):
    roll = b.below(16)
    if roll < 7:
        return b.below(3)
    if roll < 9:
        return tuple(b.below(3) for _ in range(spatial))
    if roll < 11:
        return tuple((b.below(3), b.below(3)) for _ in range(spatial))
    if roll < 14:
        return b.choice(PAD_STRINGS)
    return _size_value(b, spatial, 0, 2)


def _array(b: Bytes, shape, np, dtype=None):
    """A small array: random values (sometimes NaN/Inf), some dtype, sometimes non-contiguous."""
    dtype = dtype or (b.choice(DTYPES) if b.chance(3) else b.choice(("float32", "float64")))
    rng = np.random.default_rng(b.byte())
    strided = b.chance(3)
    full = tuple(2 * n if strided and i == len(shape) - 1 else n for i, n in enumerate(shape))
    values = rng.standard_normal(full)
    if b.chance(1) and values.size:
        values.flat[b.below(values.size)] = b.choice((np.nan, np.inf, -np.inf, 1e-42))
    if dtype in ("object", "<U1"):
        arr = values.astype(dtype)
    elif dtype == "datetime64[s]":
        arr = np.zeros(full, dtype)
    elif np.dtype(dtype).kind in "iub":
        arr = (values * 4).astype(np.int64).astype(dtype) if dtype != "bool" else values > 0
    else:
        arr = values.astype(dtype)
    if strided:
        arr = arr[..., ::2]
    if b.chance(1):
        arr = arr[..., ::-1]
    if b.chance(1):
        arr.flags.writeable = False
    return arr


def decode(data: bytes):
    """``(operator name, args, kwargs)`` for one fuzz input."""
    import numpy as np

    b = Bytes(data)
    family = b.choice(("conv", "conv", "conv_transpose", "conv_transpose", "max_pool",
                       "avg_pool", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool",
                       "global", "max_unpool", "spp", "mixed"))
    spatial = 2 if family in ("spp", "mixed") else 1 + b.below(3)
    batch = b.below(3) if b.chance(14) else b.choice((0, 5))
    channels = 1 + b.below(4)
    in_size = tuple(1 + b.below(7) for _ in range(spatial))
    unbatched = b.chance(2)
    x_shape = ((channels,) if unbatched else (batch, channels)) + in_size
    if b.chance(1):  # wrong rank
        x_shape = x_shape[:-1] if b.chance(8) else x_shape + (2,)
    x = _array(b, x_shape, np) if b.chance(15) else b.choice((None, [1.0, 2.0], 3.0))
    kwargs = {}
    if b.chance(3):
        kwargs["threads"] = b.choice((1, 2, -1, 0, None, 2.0, 2**40))
    if family in ("conv", "conv_transpose"):
        groups = b.choice((1, 1, 1, channels, 2, 0, 3))
        kernel = tuple(1 + b.below(4) for _ in range(spatial))
        per_group = 1 + b.below(3)
        if family == "conv":
            w_shape = (per_group * max(1, groups if isinstance(groups, int) else 1),
                       channels // max(1, groups) or 1) + kernel
        else:
            w_shape = (channels, per_group) + kernel
        if b.chance(1):
            w_shape = w_shape[:-1]
        weight = _array(b, w_shape, np) if b.chance(15) else None
        c_out = w_shape[0] if family == "conv" else w_shape[1] * max(1, groups)
        bias = None if b.chance(10) else _array(b, (c_out + (1 if b.chance(2) else 0),), np)
        kwargs.update(bias=bias, stride=_size_value(b, spatial, 1, 3),
                      padding=_padding(b, spatial), dilation=_size_value(b, spatial, 1, 2),
                      groups=groups)
        name = f"{family}{spatial}d"
        if family == "conv":
            kwargs["padding_mode"] = b.choice(("zeros", "zeros", "reflect", "replicate",
                                               "circular", "wrap"))
            kwargs["algorithm"] = b.choice(("auto", "auto", "direct", "im2col", "winograd",
                                            "winograd_f2", "winograd_f4", "winograd_f6", "fft"))
        else:
            kwargs["output_padding"] = b.choice((0, 0, 0, 1, 2, -1, (0, 1)))
            kwargs["algorithm"] = b.choice(("auto", "auto", "gemm", "phase", "direct"))
            if b.chance(2):
                kwargs["output_size"] = _size_value(b, spatial, 1, 12)
        return name, (x, weight), kwargs
    if family in ("max_pool", "avg_pool", "lp_pool", "mixed"):
        kernel = _size_value(b, spatial, 1, 3)
        kwargs.update(stride=None if b.chance(4) else _size_value(b, spatial, 1, 3),
                      padding=_padding(b, spatial))
        if family == "mixed":
            kwargs["alpha"] = b.choice((0.0, 0.25, 1.0, 1.5, -0.1, float("nan"), "a"))
            return "mixed_pool2d", (x, kernel), kwargs
        kwargs["dilation"] = _size_value(b, spatial, 1, 2)
        kwargs["ceil_mode"] = b.choice((False, True, False, 1))
        name = f"{family}{spatial}d"
        if family == "max_pool":
            kwargs["return_indices"] = b.chance(4)
        elif family == "avg_pool":
            kwargs["count_include_pad"] = b.choice((True, False))
            kwargs["divisor_override"] = b.choice((None, None, None, 1, 3, 0, -2, 2.0))
        else:
            return name, (x, b.choice((1, 2, 3, 1.5, float("inf"), 0, -1, float("nan")))
                          , kernel), kwargs
        return name, (x, kernel), kwargs
    if family.startswith("adaptive"):
        size = _size_value(b, spatial, 1, 9)
        if b.chance(2):
            size = tuple(None if b.chance(6) else 1 + b.below(5) for _ in range(spatial))
        if family == "adaptive_max_pool":
            kwargs["return_indices"] = b.chance(4)
        return f"{family}{spatial}d", (x, size), kwargs
    if family == "global":
        return b.choice(("global_avg_pool", "global_max_pool")), (x,), kwargs
    if family == "spp":
        levels = b.choice(((1, 2, 4), (1,), (3, 2), (), (0,), (1, 9), 2))
        return "spatial_pyramid_pool2d", (x,), dict(kwargs, levels=levels,
                                                     mode=b.choice(("max", "avg", "min")))
    # max_unpool: indices from a real max pool most of the time
    kernel = 1 + b.below(3)
    stride = 1 + b.below(3)
    if isinstance(x, np.ndarray) and x.ndim == spatial + 2 and x.dtype.kind == "f" and all(
            n >= kernel for n in x.shape[2:]) and b.chance(12):
        import fastconv

        pooled, indices = getattr(fastconv, f"max_pool{spatial}d")(
            x, kernel, stride, return_indices=True)
        if b.chance(2) and indices.size:
            indices = indices.copy()
            indices.flat[0] = b.choice((-1, 10**6, 2**40))
        x = pooled
    else:
        indices = _array(b, getattr(x, "shape", (1,)), np,
                         dtype=b.choice(("int64", "int32", "float64")))
    kwargs.update(stride=stride, padding=b.choice((0, 0, 1, -1, "same")))
    if b.chance(3):
        kwargs["output_size"] = _size_value(b, spatial, 1, 12)
    return f"max_unpool{spatial}d", (x, indices, kernel), kwargs


def describe(name, args, kwargs) -> str:
    """The call as text, with arrays shown by shape, dtype and layout."""
    import numpy as np

    def show(v):
        if isinstance(v, np.ndarray):
            flags = []
            if not v.flags.c_contiguous:
                flags.append("non-contiguous")
            if not v.flags.writeable:
                flags.append("read-only")
            return f"<array {v.shape} {v.dtype}{' ' + ' '.join(flags) if flags else ''}>"
        return repr(v)

    parts = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    return f"fastconv.{name}({', '.join(parts)})"


# ------------------------------------------------------------------------------------------
# The oracle
# ------------------------------------------------------------------------------------------
class Finding(Exception):
    """The call did something the API does not allow."""


def _spatial(name: str) -> int | None:
    for d in (1, 2, 3):
        if name.endswith(f"{d}d"):
            return d
    return None


def _reference(name, args, kwargs, np):
    """The float64 reference result for a call that fastconv accepted (None: not checked)."""
    import reference as ref

    x = np.asarray(args[0])
    d = _spatial(name)
    if d is not None and x.ndim == d + 1:
        x = x[np.newaxis]
    kw = {k: v for k, v in kwargs.items() if k not in ("threads", "out", "algorithm")}
    if name.startswith("conv_transpose"):
        kw.pop("output_size", None)
        if "output_size" in kwargs and kwargs["output_size"] is not None:
            return None  # output_padding chosen by fastconv.shapes: compared by shape only
        return ref.ref_conv_transpose(x, args[1], **kw)
    if name.startswith("conv"):
        return ref.ref_conv(x, args[1], **kw)
    if name.startswith("max_pool"):
        return ref.ref_max_pool(x, args[1], **kw)
    if name.startswith("avg_pool"):
        return ref.ref_avg_pool(x, args[1], **kw)
    if name.startswith("lp_pool"):
        return ref.ref_lp_pool(x, args[1], args[2], **kw)
    if name.startswith("adaptive_avg"):
        return ref.ref_adaptive_avg_pool(x, args[1])
    if name.startswith("adaptive_max"):
        return ref.ref_adaptive_max_pool(x, args[1], **kw)
    if name == "global_avg_pool":
        return ref.ref_global_avg_pool(x)
    if name == "global_max_pool":
        return ref.ref_global_max_pool(x)
    if name == "mixed_pool2d":
        return ref.ref_mixed_pool2d(x, args[1], **kw)
    if name == "spatial_pyramid_pool2d":
        return ref.ref_spatial_pyramid_pool2d(x, **kw)
    return None


def _finite_max(a):
    import numpy as np

    finite = np.isfinite(a)
    return float(np.max(np.abs(a[finite]))) if finite.any() else 0.0


def check(data: bytes) -> None:
    """Run one input; raise :class:`Finding` when fastconv misbehaves."""
    import numpy as np

    import fastconv

    name, args, kwargs = decode(data)
    call = describe(name, args, kwargs)
    copies = [a.copy() if isinstance(a, np.ndarray) else None for a in args]
    try:
        with np.errstate(all="ignore"):
            result = getattr(fastconv, name)(*args, **kwargs)
    except (ValueError, TypeError, MemoryError) as exc:
        if not str(exc).strip() and not isinstance(exc, MemoryError):
            raise Finding(f"{type(exc).__name__} without a message from {call}") from exc
        return
    except Exception as exc:
        raise Finding(f"{type(exc).__name__}: {exc} from {call}\n"
                      f"{traceback.format_exc(limit=-4)}") from exc
    for a, c in zip(args, copies):
        if c is not None and not np.array_equal(a, c, equal_nan=a.dtype.kind == "f"):
            raise Finding(f"an input was modified by {call}")
    values = result[0] if isinstance(result, tuple) else result
    work = values.size * max(1, int(np.prod(np.shape(args[1])[2:] or (1,)))
                             if name.startswith("conv") else 1)
    if work > REFERENCE_MAX_WORK:
        return
    try:
        with np.errstate(all="ignore"):
            expected = _reference(name, args, kwargs, np)
    except MemoryError:  # the reference builds per-tap index arrays: huge windows do not fit
        return
    except Exception as exc:  # fastconv accepted what the reference refuses
        raise Finding(f"accepted by fastconv but the reference raised {type(exc).__name__}: "
                      f"{exc} for {call}") from exc
    if expected is None:
        return
    if isinstance(expected, tuple):
        expected = expected[0]
    if values.shape != expected.shape and values.shape != expected.shape[1:]:
        raise Finding(f"shape {values.shape} != reference {expected.shape} for {call}")
    import reference as ref

    finite = np.isfinite(expected)
    if (values.dtype.kind == "f" and finite.any()
            and np.abs(expected[finite]).max() < 1e3 * np.finfo(values.dtype).tiny):
        # results in the subnormal range carry only a few bits: compare positions only
        expected = np.where(finite, 0.0, expected)
        values = np.where(np.isfinite(values), 0.0, values)
    if name == "mixed_pool2d" and values.dtype.kind == "f":
        # alpha * max + (1 - alpha) * avg can cancel: the error of a float32 result is
        # relative to the two terms, not to their (possibly tiny) sum
        x64 = np.asarray(args[0]).astype(np.float64)
        x64 = x64 if x64.ndim == 4 else x64[np.newaxis]
        alpha = kwargs.get("alpha", 0.5)
        window = dict(stride=kwargs.get("stride"), padding=kwargs.get("padding", 0))
        terms = [ref.ref_max_pool(x64, args[1], **window),
                 ref.ref_avg_pool(x64, args[1], **window, count_include_pad=False)]
        scale = max(alpha * _finite_max(terms[0]) + (1 - alpha) * _finite_max(terms[1]), 1e-300)
        finite = np.isfinite(expected)
        same = np.array_equal(np.isfinite(values), finite.reshape(values.shape))
        err = (float(np.max(np.abs(values[finite.reshape(values.shape)]
                                   - expected[finite].ravel()))) / scale
               if finite.any() and same else 0.0)
        if not same or err > ref.tolerance(values.dtype):
            raise Finding(f"wrong answer for {call}: max|err| / max|terms| = {err:.3e}"
                          f"{'' if same else ' (non-finite positions differ)'}")
        return
    try:
        ref.assert_close(values, expected.reshape(values.shape), values.dtype,
                         kwargs.get("algorithm") if name.startswith("conv") and not
                         name.startswith("conv_t") and kwargs.get("algorithm") in
                         ref.ALGORITHMS else None)
    except AssertionError as exc:
        raise Finding(f"wrong answer for {call}: {exc}") from exc


# ------------------------------------------------------------------------------------------
# Child: the fuzzing loop
# ------------------------------------------------------------------------------------------
def _child(args) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    current = args.current

    def one_input(data: bytes) -> None:
        with open(current, "wb") as f:
            f.write(data)
        try:
            check(data)
        except Finding as exc:
            with open(current + ".finding", "w") as f:
                f.write(str(exc))
            os._exit(3)

    deadline = time.monotonic() + args.seconds
    if args.engine == "atheris":
        import atheris

        with atheris.instrument_imports(include=["fastconv"]):
            import fastconv  # noqa: F401
        atheris.Setup([sys.argv[0], f"-max_total_time={int(args.seconds)}", "-max_len=256",
                       f"-rss_limit_mb={MEMORY_LIMIT >> 20}",
                       f"-seed={args.seed}", "-print_final_stats=1"], one_input)
        atheris.Fuzz()
        return
    import random

    rng = random.Random(args.seed)
    count = 0
    while time.monotonic() < deadline:
        one_input(rng.randbytes(rng.randrange(8, 200)))
        count += 1
    print(f"fuzz child: {count} inputs", flush=True)


# ------------------------------------------------------------------------------------------
# Parent: run children, catch crashes and hangs, report
# ------------------------------------------------------------------------------------------
def _report(kind: str, data: bytes, detail: str, findings_dir: str, seen: set) -> bool:
    try:
        call = describe(*decode(data))
    except Exception as exc:  # the decoder itself should not fail, but do not lose the input
        call = f"<could not decode: {exc}>"
    key = (kind, call.split("(")[0], detail.splitlines()[0][:60] if detail else "")
    new = key not in seen
    seen.add(key)
    if new:
        text = (f"== {kind}: {call}\n{detail}\n"
                f"   replay: python tools/fuzz.py --replay {data.hex()}\n")
        print(text, flush=True)
        os.makedirs(findings_dir, exist_ok=True)
        with open(os.path.join(findings_dir, f"{kind}-{len(seen):03d}.txt"), "w") as f:
            f.write(text)
    return new


def _engine(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import atheris  # noqa: F401

        return "atheris"
    except ImportError:
        return "random"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="total fuzzing time")
    parser.add_argument("--engine", choices=("auto", "atheris", "random"), default="auto")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--findings", default="fuzz-findings",
                        help="directory for the findings' repro files")
    parser.add_argument("--replay", metavar="HEX", help="run one input (hex) and explain")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=60, help=argparse.SUPPRESS)
    parser.add_argument("--current", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    if args.replay:
        data = bytes.fromhex(args.replay)
        print(describe(*decode(data)))
        check(data)
        print("no finding")
        return 0

    engine = _engine(args.engine)
    end = time.monotonic() + args.minutes * 60
    seen: set = set()
    runs = crashes = 0
    seed = args.seed
    with tempfile.TemporaryDirectory() as tmp:
        current = os.path.join(tmp, "current")
        while time.monotonic() < end - 1:
            seconds = max(1, end - time.monotonic())
            for path in (current, current + ".finding"):
                if os.path.exists(path):
                    os.remove(path)
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--engine", engine,
                   "--seconds", str(int(seconds)), "--seed", str(seed), "--current", current]
            proc = subprocess.Popen(cmd, cwd=tmp, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            hung = False
            last, last_change = None, time.monotonic()
            while proc.poll() is None:
                time.sleep(1)
                stamp = os.stat(current).st_mtime_ns if os.path.exists(current) else None
                if stamp != last:
                    last, last_change = stamp, time.monotonic()
                elif time.monotonic() - last_change > HANG_SECONDS:
                    hung = True
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                if time.monotonic() > end + HANG_SECONDS:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            runs += 1
            seed += 1
            data = open(current, "rb").read() if os.path.exists(current) else b""
            if hung:
                crashes += _report("hang", data, f"no progress for {HANG_SECONDS} s",
                                   args.findings, seen)
            elif os.path.exists(current + ".finding"):
                detail = open(current + ".finding").read()
                crashes += _report("finding", data, detail, args.findings, seen)
            elif proc.returncode < 0:
                crashes += _report("crash", data, f"killed by signal "
                                   f"{signal.Signals(-proc.returncode).name}",
                                   args.findings, seen)
            elif proc.returncode != 0 and not (engine == "atheris" and "Done" in output):
                tail = "\n".join(output.splitlines()[-15:])
                crashes += _report("crash", data, f"exit status {proc.returncode}:\n{tail}",
                                   args.findings, seen)
            else:
                stats = [ln for ln in output.splitlines()
                         if "number_of_executed_units" in ln or "fuzz child:" in ln]
                print(f"fuzz: child {runs} finished cleanly {' '.join(stats)}", flush=True)
    print(f"fuzz: {args.minutes:g} min with {engine}, {runs} child runs, {len(seen)} distinct "
          f"findings (saved under {args.findings}/)", flush=True)
    return 1 if seen else 0


if __name__ == "__main__":
    sys.exit(main())
