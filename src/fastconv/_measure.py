"""``algorithm="measure"``: time the candidates once per problem, keep the fastest, remember it.

One small module, used by the convolution layer objects and meant for any other caller that has
several ways to compute the same thing (``fastconv.onnx.load(algorithm="measure")``): the
caller names the problem with :func:`key` and hands :func:`choose` one zero-argument callable
per candidate; :func:`choose` answers from the memory cache, else from the disk cache, else
times the candidates (:mod:`fastconv._timing`, interleaved rounds, fastest call) and stores the
fastest in both. The caller's fallback (``"auto"``'s choice) is replaced only by a candidate
faster by more than :data:`TIE` twice: in the measurement and in a head-to-head rematch.

The disk cache is one JSON file, ``measure-v1.json`` in ``FASTCONV_CACHE_DIR`` (default: the
user's cache directory, e.g. ``$XDG_CACHE_HOME/fastconv`` or ``~/.cache/fastconv``; an empty
``FASTCONV_CACHE_DIR`` turns the disk cache off). Its keys carry the CPU model, the instruction
set, the fastconv version, the problem (operator and every parameter), the input shape, the
dtype and the thread count, so entries of other machines or versions are never used, only
kept. Nothing about the file can break a call:

- it is written whole to a temporary file in the same directory, then ``os.replace``-d over the
  old one (atomic on POSIX and Windows), under an advisory lock where the OS has one
  (``fcntl``; without it two concurrent writers may each drop the other's newest entry, never
  corrupt the file);
- on read it is validated (JSON, format number, each entry); a file that fails is treated as
  empty, an entry that fails (or names an algorithm the caller no longer offers) is ignored;
- a directory that is missing and cannot be made, or is not writable, only disables the disk
  cache (the memory cache still works);
- a candidate that raises is left out; if every candidate raises, the caller's fallback
  (``"auto"``'s choice) is returned and nothing is stored.

Examples
--------
>>> from fastconv import _measure
>>> k = _measure.key("demo", {"n": 3}, (1, 3), "float32", 1)
>>> "isa=" in k and "threads=1" in k and "shape=1x3" in k
True
>>> choice = _measure.choose(k, {"a": lambda: None, "b": lambda: sum(range(10_000))}, "a",
...                          disk=False)
>>> choice.algorithm in ("a", "b"), choice.source
(True, 'measured')
>>> _measure.choose(k, {"a": lambda: None, "b": lambda: None}, "a", disk=False).source
'memory'
"""

import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["CACHE_FILE", "FORMAT", "Choice", "cache_dir", "cache_path", "choose", "clear_memory",
           "key", "load", "lookup", "store"]

#: Version of the file layout (the file name carries it too).
FORMAT = 1
CACHE_FILE = f"measure-v{FORMAT}.json"
#: Most entries kept in the file (oldest dropped first): one per problem, input shape, dtype,
#: thread count, CPU and version, so a few thousand are years of use.
MAX_ENTRIES = 4096

#: Timing of one measurement (see :func:`fastconv._timing.interleaved_samples`): at least
#: ``REPEATS`` interleaved rounds after one warm-up round, more (up to 50x) while a candidate
#: has run less than ``MIN_TIME`` seconds, none started after ``MAX_TIME`` seconds.
REPEATS = 5
MIN_TIME = 0.02
MAX_TIME = 2.0
#: A candidate must beat the fallback (``"auto"``'s choice) by more than this fraction, in the
#: measurement and again in a head-to-head rematch, to be chosen over it: closer than that, the
#: two are a tie within the noise of a shared machine, and the fallback keeps the choice stable
#: from run to run.
TIE = 0.05

_memory: dict[str, dict] = {}
_lock = threading.Lock()
# path -> (mtime_ns, size) of the file content last merged into _memory
_seen: dict[str, tuple[int, int]] = {}


@dataclass(frozen=True)
class Choice:
    """What :func:`choose` decided.

    ``algorithm``: the candidate to use. ``seconds``: seconds per call of each candidate
    timed (from the measurement that made the choice, also when it comes from a cache; empty
    for ``"fallback"``). ``source``: ``"measured"`` (now), ``"memory"`` (earlier in this
    process), ``"disk"`` (read from the cache file) or ``"fallback"``
    (every candidate raised). ``saved``: whether a measured choice reached the disk cache.
    """

    algorithm: str
    seconds: dict[str, float] = field(default_factory=dict)
    source: str = "measured"
    saved: bool = False


# ---- keys ------------------------------------------------------------------------------------
_cpu_model: str | None = None


def _cpu() -> str:
    """The CPU model as the key names it (fastconv._config: the model name with family, model
    and stepping, since virtual machines often say only "AMD EPYC")."""
    global _cpu_model
    if _cpu_model is None:
        from ._config import _cpu_model as model

        _cpu_model = model()
    return _cpu_model


def key(op: str, params: Mapping[str, object], shape, dtype, threads: int,
        isa: str | None = None) -> str:
    """The cache key of one problem: CPU model, ISA, fastconv version, the operator and its
    parameters, input shape, dtype and thread count, as one readable string.

    ``params`` holds whatever else decides the problem (weight shape, stride, padding, ...);
    values are written with ``repr``, so they must have a stable one. ``isa`` defaults to the
    one in use.

    Examples
    --------
    >>> from fastconv._measure import key
    >>> key("conv2d", {"weight": (8, 4, 3, 3)}, (1, 4, 16, 16), "float32", 2,
    ...     isa="avx2").split("|")[2:]
    ['isa=avx2', 'op=conv2d', 'weight=(8, 4, 3, 3)', 'shape=1x4x16x16', 'dtype=float32', \
'threads=2']
    """
    import numpy as np

    from . import _dispatch
    from ._version import __version__

    fields = [f"fastconv={__version__}", f"cpu={_cpu()}",
              f"isa={isa or _dispatch.current_isa()}", f"op={op}"]
    fields += [f"{name}={value!r}" for name, value in params.items()]
    fields += [f"shape={'x'.join(str(int(n)) for n in shape)}",
               f"dtype={np.dtype(dtype).name}", f"threads={int(threads)}"]
    return "|".join(fields)


# ---- the disk cache --------------------------------------------------------------------------
def cache_dir() -> str | None:
    """The cache directory: ``FASTCONV_CACHE_DIR``, else the user's cache dir; None when
    ``FASTCONV_CACHE_DIR`` is set but empty (disk cache off)."""
    env = os.environ.get("FASTCONV_CACHE_DIR")
    if env is not None:
        return os.path.abspath(os.path.expanduser(env)) if env.strip() else None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "fastconv", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/fastconv")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "fastconv")


def cache_path() -> str | None:
    """The cache file (None: disk cache off)."""
    directory = cache_dir()
    return None if directory is None else os.path.join(directory, CACHE_FILE)


def _valid_entry(entry: object) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("algorithm"), str):
        return False
    seconds = entry.get("seconds", {})
    return isinstance(seconds, dict) and all(
        isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
        and v >= 0 for k, v in seconds.items())


def load(path: str | None = None) -> dict[str, dict]:
    """The valid entries of the cache file (``{}`` if it is missing, unreadable or invalid)."""
    path = cache_path() if path is None else path
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return {}
    entries = data.get("entries")
    if not isinstance(entries, dict):
        return {}
    return {k: v for k, v in entries.items() if isinstance(k, str) and _valid_entry(v)}


@contextlib.contextmanager
def _file_lock(directory: str, timeout: float = 2.0) -> Iterator[None]:
    """An advisory lock on ``directory``'s lock file, where the OS has ``fcntl``; gives up
    (and proceeds without it) after ``timeout`` seconds: the atomic replace alone keeps the
    file valid, the lock only keeps concurrent writers from dropping each other's entries."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        handle = open(os.path.join(directory, CACHE_FILE + ".lock"), "a")
    except OSError:
        yield
        return
    locked = False
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
        yield
    finally:
        if locked:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def store(entries: Mapping[str, dict], path: str | None = None) -> bool:
    """Merge ``entries`` into the cache file (atomically); False if it could not be written."""
    path = cache_path() if path is None else path
    if path is None:
        return False
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        with _file_lock(directory):
            merged = load(path)
            for k, entry in entries.items():
                merged.pop(k, None)  # re-inserted last: the newest entries are kept
                merged[k] = entry
            if len(merged) > MAX_ENTRIES:
                merged = dict(list(merged.items())[-MAX_ENTRIES:])
            fd, tmp = tempfile.mkstemp(prefix=CACHE_FILE + ".", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump({"format": FORMAT, "entries": merged}, f, indent=1,
                              sort_keys=False)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
    except (OSError, ValueError):
        return False
    return True


def _refresh_from_disk() -> None:
    """Merge the cache file into the memory cache if it changed since last read."""
    path = cache_path()
    if path is None:
        return
    try:
        st = os.stat(path)
    except OSError:
        return
    stamp = (st.st_mtime_ns, st.st_size)
    if _seen.get(path) == stamp:
        return
    entries = load(path)
    with _lock:
        for k, entry in entries.items():
            _memory.setdefault(k, {**entry, "from_disk": True})
        _seen[path] = stamp


def clear_memory() -> None:
    """Forget every choice held in memory (the file is untouched); for tests and ``tune``."""
    with _lock:
        _memory.clear()
        _seen.clear()


# ---- choosing --------------------------------------------------------------------------------
def lookup(k: str, candidates, disk: bool = True) -> Choice | None:
    """The cached choice for key ``k`` if it names one of ``candidates``, else None."""
    entry = _memory.get(k)
    if (entry is None or entry["algorithm"] not in candidates) and disk:
        _refresh_from_disk()
        entry = _memory.get(k)
    if entry is None or entry["algorithm"] not in candidates:
        return None
    seconds = {a: float(s) for a, s in entry.get("seconds", {}).items()}
    return Choice(entry["algorithm"], seconds, "disk" if entry.get("from_disk") else "memory")


def _time(candidates: Mapping[str, Callable[[], object]]) -> dict[str, float]:
    """Seconds per call of each candidate that runs (those that raise are left out): the
    fastest of its interleaved calls. On a machine shared with other jobs most calls can be
    slowed, and only the fastest says what the algorithm costs when it runs undisturbed (other
    jobs only ever add time); a median then follows the load more than the algorithm."""
    from . import _timing

    working = {}
    for name, run in candidates.items():
        try:
            run()  # the first call also prepares (weights, plans) outside the timing
        except Exception:  # noqa: BLE001 - a candidate that cannot run is simply not chosen
            continue
        working[name] = run
    if len(working) <= 1:
        return dict.fromkeys(working, 0.0)
    try:
        samples = _timing.interleaved_samples(working, repeats=REPEATS, warmup=1,
                                              min_time=MIN_TIME, max_time=MAX_TIME)
    except Exception:  # noqa: BLE001 - e.g. MemoryError later on: no choice, the fallback
        return {}
    return {name: min(t) for name, t in samples.items()}


def choose(k: str, candidates: Mapping[str, Callable[[], object]], fallback: str, *,
           disk: bool = True, refresh: bool = False) -> Choice:
    """The fastest of ``candidates`` for the problem named ``k`` (see :func:`key`).

    Parameters
    ----------
    k : str
        The cache key.
    candidates : mapping of name -> callable taking no argument
        One per algorithm that can serve the problem (within the accuracy policy); called only
        when the choice is not cached. A candidate may prepare itself on its first call: that
        call is not timed.
    fallback : str
        ``"auto"``'s choice: kept unless a candidate is more than :data:`TIE` faster, and
        returned (not stored) if every candidate raises.
    disk : bool
        Use the disk cache (read and write); the memory cache is always used.
    refresh : bool
        Measure again even if a choice is cached (``fastconv tune --refresh``).

    Returns
    -------
    Choice
    """
    if not candidates:
        return Choice(fallback, {}, "fallback")
    if not refresh:
        cached = lookup(k, candidates, disk)
        if cached is not None:
            return cached
    seconds = _time(candidates)
    if not seconds:
        return Choice(fallback, {}, "fallback")
    best = min(seconds, key=seconds.__getitem__)
    entry: dict = {}
    if fallback in seconds and best != fallback:
        if seconds[fallback] <= seconds[best] * (1 + TIE):
            best = fallback
        else:  # confirm the change, head to head: noise must not replace "auto"
            again = _time({name: candidates[name] for name in (best, fallback)})
            entry["recheck"] = again
            if len(again) < 2 or again[fallback] <= again[best] * (1 + TIE):
                best = fallback
    entry.update(algorithm=best, seconds=seconds, when=time.strftime("%Y-%m-%d %H:%M:%S"))
    with _lock:
        _memory[k] = entry
    saved = store({k: entry}) if disk else False
    return Choice(best, seconds, "measured", saved)
