"""Thread-count rules, written down once.

- ``threads=None`` means ``get_num_threads()``; an int ``n >= 1`` means exactly ``n``; ``-1`` means
  every CPU this process may run on; anything else is an error.
- The default is ``OMP_NUM_THREADS`` if set, else the CPUs this process may run on (affinity).
- ``set_num_threads(n)`` changes the default for the process; ``with num_threads(n):`` changes it
  for the current thread / async context only (a ``ContextVar``), so concurrent callers do not
  see each other's blocks.
- threadpoolctl's ``threadpool_limits(n, user_api="openmp")`` sets the OpenMP runtime's
  ``nthreads-var``; while it is below the runtime's start-up value (``OMP_NUM_THREADS``, else the
  CPUs this process may run on, computed from those rules rather than sampled, so a block
  entered before fastconv's first call counts too), it caps the default. threadpoolctl can only
  limit a runtime that is loaded when its block is entered: importing any operator module
  (``fastconv.conv2d``, ``from fastconv import max_pool2d``, ``fastconv.config()``) loads it;
  a bare ``import fastconv`` does not (``import fastconv.shapes`` loads no compiled module).
- Small problems run on one thread: waking a team costs more than it saves.
- GNU OpenMP (libgomp) cannot start a team in a process forked after the parent ran one (the
  child hangs), so such a child runs every operator on one thread, as ``get_num_threads()``
  then reports. LLVM's libomp and serial builds are not affected.
"""

import contextlib
import contextvars
import os
from collections.abc import Iterator

from ._extension import load

# Below this much work per thread (in multiply-adds) extra threads do not pay for themselves.
MIN_WORK_PER_THREAD = 1 << 17
# The same for convolutions, counted in the multiplications they do (Winograd's, not the direct
# convolution's): a call on two threads first wakes a sleeping OpenMP worker (passive wait),
# 20-40 us on the development machine (AMD Zen 4, KVM). Measured, 1 vs 2 threads: 1.8M MACs of
# direct 3x3 or 0.9M of depthwise tie, a 1x1 of 0.8M and F(4,3) of 1.8M / 4 take twice as long
# on two, 3.6M of depthwise and 7M of im2col are faster on two.
CONV_MIN_WORK_PER_THREAD = 1 << 20
# More threads than any machine has: a larger count is a mistake (and would overflow C's int).
MAX_THREADS = 1 << 16

_process_default: int | None = None
_context_default: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fastconv_num_threads", default=None)
_omp_initial: int | None = None
_cpu = None  # the compiled _cpu module, loaded on first use (import fastconv.shapes needs none)
_team_started = False  # this process has asked for a team of more than one thread
_serial_after_fork = False  # forked from a libgomp process that had a team: stay on one thread


def _cpu_module():
    global _cpu, _omp_initial
    if _cpu is None:
        _cpu = load("_cpu")
        if _cpu.openmp_enabled():
            # The runtime's start-up nthreads-var, from the rules it applies when it loads
            # (OMP_NUM_THREADS, else the CPUs of the affinity mask), not read from it: a
            # threadpoolctl block already in force would make the reading the limit itself.
            # A runtime that starts higher (its own reading of the machine) is taken at its word.
            _omp_initial = max(_cpu.omp_max_threads(), _env_default())
    return _cpu


def preload_runtime() -> None:
    """Load the compiled ``_cpu`` module, and with it the OpenMP runtime, if it was built.

    The operator modules call this at import, so that a threadpoolctl block entered before
    fastconv's first call finds the runtime to limit. Without the extension it does nothing
    (the first operator call then raises the ImportError that says how to build it).
    """
    try:
        _cpu_module()
    except ImportError:
        pass


def _after_fork_in_child() -> None:
    global _serial_after_fork, _team_started
    if _team_started and _cpu_module().openmp_runtime() == "libgomp":
        _serial_after_fork = True
    _team_started = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _env_default() -> int:
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    return cpu_count()


def check_threads(n: object, name: str = "threads") -> int:
    """Validate a thread count: an int >= 1, or -1 for every CPU."""
    if isinstance(n, bool) or not isinstance(n, int) and not hasattr(n, "__index__"):
        raise TypeError(f"{name} must be an int from 1 to {MAX_THREADS} or -1 (all CPUs), "
                        f"got {n!r}")
    n = int(n)  # type: ignore[call-overload]
    if n == -1:
        return cpu_count()
    if n < 1 or n > MAX_THREADS:
        raise ValueError(f"{name} must be an int from 1 to {MAX_THREADS} or -1 (all CPUs), "
                         f"got {n}")
    return n


def _openmp_cap() -> int | None:
    cpu = _cpu_module()
    if not cpu.openmp_enabled():
        return None
    now = cpu.omp_max_threads()
    return now if _omp_initial is not None and now < _omp_initial else None


def get_num_threads() -> int:
    """The number of threads an operator called with ``threads=None`` uses at most.

    Starts from ``OMP_NUM_THREADS`` or the CPUs this process may run on (its affinity), and
    follows :func:`set_num_threads`, :func:`num_threads` and threadpoolctl limits.

    Examples
    --------
    >>> import fastconv
    >>> fastconv.get_num_threads() >= 1
    True
    """
    n = _context_default.get()
    if n is None:
        n = _process_default if _process_default is not None else _env_default()
    if _serial_after_fork:
        return 1
    cap = _openmp_cap()
    return min(n, cap) if cap else n


def set_num_threads(n: int) -> None:
    """Set the default thread count for the whole process (``-1``: every CPU).

    Examples
    --------
    >>> import fastconv
    >>> before = fastconv.get_num_threads()
    >>> fastconv.set_num_threads(1)
    >>> fastconv.get_num_threads()
    1
    >>> fastconv.set_num_threads(before)
    """
    global _process_default
    _process_default = check_threads(n, "n")


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    """Use ``n`` threads by default inside the ``with`` block (this thread/context only).

    Examples
    --------
    >>> import fastconv
    >>> with fastconv.num_threads(1):
    ...     fastconv.get_num_threads()
    1
    """
    token = _context_default.set(check_threads(n, "n"))
    try:
        yield
    finally:
        _context_default.reset(token)


def serial_after_fork() -> bool:
    """Whether this process is a child that must run every operator on one thread."""
    return _serial_after_fork


def resolve(threads: object) -> int:
    """The thread count an operator was asked for (``threads=`` keyword)."""
    if threads is None:
        return get_num_threads()
    n = check_threads(threads)
    return 1 if _serial_after_fork else n


def for_work(threads: int, work: float, per_thread: float = MIN_WORK_PER_THREAD) -> int:
    """Threads worth using for ``work`` multiply-adds when up to ``threads`` are allowed and each
    thread needs ``per_thread`` of them to pay for itself."""
    global _team_started
    n = int(max(1, min(threads, work // per_thread)))
    if n > 1:
        _team_started = True
    return n

