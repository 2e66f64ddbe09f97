"""The runtime: config report, ISA choice, thread-count rules, a missing extension."""

import json
import os
import re
import subprocess
import sys
import threading
import warnings

import pytest

import fastconv
from fastconv import _dispatch, _threads


def run_python(code, **env):
    full_env = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_config_keys_and_types():
    cfg = fastconv.config()
    for key in ("version", "isa", "isa_available", "openmp", "openmp_runtime", "max_threads"):
        assert key in cfg
    assert cfg["version"] == fastconv.__version__
    assert cfg["isa"] in cfg["isa_available"]
    assert "scalar" in cfg["isa_available"]
    assert isinstance(cfg["openmp"], bool)
    assert cfg["max_threads"] == fastconv.get_num_threads()
    assert (cfg["openmp_runtime"] is None) == (not cfg["openmp"])


def test_show_config_prints_every_key(capsys):
    fastconv.show_config()
    printed = capsys.readouterr().out
    for key in fastconv.config():
        assert key in printed


def test_best_isa_is_chosen_by_default():
    code = "import fastconv; print(fastconv.config()['isa'])"
    proc = run_python(code, FASTCONV_ISA="")
    assert proc.stdout.strip() == _dispatch.available_isas()[0]


@pytest.mark.parametrize("cap", ["scalar", "avx2", "avx512", "neon"])
def test_fastconv_isa_caps_the_choice(cap):
    code = "import warnings, fastconv; warnings.simplefilter('always'); " \
           "print(fastconv.config()['isa'])"
    proc = run_python(code, FASTCONV_ISA=cap)
    chosen = proc.stdout.strip()
    available = _dispatch.available_isas()
    if cap in available:
        assert chosen == cap
        assert "not available" not in proc.stderr
    else:
        # A cap the CPU lacks: the best it has, with a warning naming it.
        assert chosen == available[0]
        assert "not available" in proc.stderr and cap in proc.stderr


def test_unknown_fastconv_isa_warns_and_is_ignored():
    proc = run_python("import fastconv; print(fastconv.config()['isa'])", FASTCONV_ISA="sse9")
    assert proc.stdout.strip() == _dispatch.available_isas()[0]
    assert "sse9" in proc.stderr
    # the warning lists the valid names
    assert all(name in proc.stderr for name in _dispatch.isa_names()), proc.stderr


@pytest.mark.parametrize("usable,cap,expected", [
    (("avx2", "scalar"), "avx512", "avx2"),
    (("avx2", "scalar"), "neon", "avx2"),      # another architecture's name: the best there is
    (("avx512", "avx2", "scalar"), "neon", "avx512"),
    (("neon", "scalar"), "avx2", "neon"),
    (("scalar",), "avx512", "scalar"),
    (("avx512", "avx2", "scalar"), "avx2", "avx2"),   # a cap the machine has is honoured
    (("avx512", "avx2", "scalar"), " AVX2 ", "avx2"),
])
def test_fastconv_isa_the_cpu_lacks_falls_back_to_the_best_it_has(monkeypatch, usable, cap,
                                                                   expected):
    # issue 21 item 7: a missing ISA used to fall to the next in preference order (neon on
    # x86 -> scalar); the API says the best the machine has. Any machine: the ISAs are faked.
    monkeypatch.setattr(_dispatch, "available_isas", lambda: usable)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert _dispatch._choose(cap) == expected
    lacking = cap.strip().lower() not in usable
    assert len(caught) == lacking
    if lacking:
        message = str(caught[0].message)
        assert repr(cap.strip().lower()) in message and ", ".join(usable) in message


def test_unknown_isa_name_lists_the_valid_names(monkeypatch):
    monkeypatch.setattr(_dispatch, "available_isas", lambda: ("avx2", "scalar"))
    valid = re.escape(", ".join(_dispatch.isa_names()))
    with pytest.warns(RuntimeWarning, match=rf"'sse9'.*valid names: {valid}.*available on "
                                            r"this machine: avx2, scalar"):
        assert _dispatch._choose("sse9") == "avx2"


def test_use_isa_switches_and_restores():
    before = _dispatch.current_isa()
    with _dispatch.use_isa("scalar"):
        assert _dispatch.current_isa() == "scalar"
        assert _dispatch.isa_index() == 0
    assert _dispatch.current_isa() == before
    with pytest.raises(ValueError, match="isa='nope'"):
        with _dispatch.use_isa("nope"):
            pass


def test_cli_info_and_json():
    proc = subprocess.run([sys.executable, "-m", "fastconv.cli", "info", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["isa"] == _dispatch.current_isa()
    proc = subprocess.run([sys.executable, "-m", "fastconv.cli", "nonsense"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "unknown command" in proc.stderr


# --- threads -------------------------------------------------------------------------------

def test_default_threads_follow_omp_num_threads():
    code = "import fastconv; print(fastconv.get_num_threads())"
    assert run_python(code, OMP_NUM_THREADS="3").stdout.strip() == "3"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.stdout.strip() == str(_threads.cpu_count())


def test_default_threads_follow_cpu_affinity():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity on this platform")
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "import fastconv; print(fastconv.get_num_threads())")
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.stdout.strip() == "1"


def test_set_num_threads_and_context_manager():
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(3)
        assert fastconv.get_num_threads() == 3
        with fastconv.num_threads(1):
            assert fastconv.get_num_threads() == 1
            with fastconv.num_threads(-1):
                assert fastconv.get_num_threads() == _threads.cpu_count()
            assert fastconv.get_num_threads() == 1
        assert fastconv.get_num_threads() == 3
        fastconv.set_num_threads(-1)
        assert fastconv.get_num_threads() == _threads.cpu_count()
    finally:
        fastconv.set_num_threads(before)


def test_context_manager_is_local_to_its_thread():
    seen = []
    inside = threading.Event()
    release = threading.Event()

    def worker():
        with fastconv.num_threads(1):
            inside.set()
            release.wait(10)

    t = threading.Thread(target=worker)
    with fastconv.num_threads(2):
        t.start()
        inside.wait(10)
        seen.append(fastconv.get_num_threads())
        release.set()
        t.join()
    assert seen == [2]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2", None])
def test_bad_thread_counts_are_rejected(bad):
    error = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    with pytest.raises(error, match="n must be"):
        fastconv.set_num_threads(bad)
    if bad is not None:  # threads=None means the default
        with pytest.raises(error, match="threads must be"):
            _threads.resolve(bad)


def test_resolve_threads():
    assert _threads.resolve(None) == fastconv.get_num_threads()
    assert _threads.resolve(2) == 2
    assert _threads.resolve(-1) == _threads.cpu_count()


def test_small_work_stays_on_one_thread():
    assert _threads.for_work(8, 100) == 1
    assert _threads.for_work(8, 10 * _threads.MIN_WORK_PER_THREAD) == 8
    assert _threads.for_work(2, 10**12) == 2
    assert _threads.for_work(4, 2 * _threads.MIN_WORK_PER_THREAD) == 2
    assert _threads.for_work(2, 2 * _threads.MIN_WORK_PER_THREAD,
                             per_thread=4 * _threads.MIN_WORK_PER_THREAD) == 1


def test_threadpoolctl_limits_fastconv():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not fastconv.config()["openmp"]:
        pytest.skip("serial build: there is no OpenMP runtime to limit")
    with fastconv.num_threads(2):
        fastconv.get_num_threads()  # records the runtime's initial value
        with threadpoolctl.threadpool_limits(1, user_api="openmp"):
            assert fastconv.get_num_threads() == 1
        assert fastconv.get_num_threads() == 2


_TEAM_PROBE = """
import json, numpy as np, threadpoolctl
import fastconv
from fastconv import pool
used = []  # the thread count each call hands the compiled driver: the team it runs
real = pool._driver()
class Spy:
    def __getattr__(self, name):
        return getattr(real, name)
    def pool(self, *args):
        used.append(args[-1])
        return real.pool(*args)
pool._DRIVER = Spy()
x = np.ones((1, 8, 256, 256), np.float32)  # work enough for 4 threads
if {first_use_before}:
    fastconv.max_pool2d(x, 2)
    fastconv.get_num_threads()
    used.clear()
with threadpoolctl.threadpool_limits(2, user_api="openmp"):
    inside = fastconv.get_num_threads()
    fastconv.max_pool2d(x, 2)
    with fastconv.num_threads(3):   # an explicit default is capped as well
        capped = fastconv.get_num_threads()
    explicit = fastconv.max_pool2d(x, 2, threads=3) is not None  # threads= is not capped
after = fastconv.get_num_threads()
fastconv.max_pool2d(x, 2)
print(json.dumps(dict(inside=inside, capped=capped, after=after, used=used)))
"""


@pytest.mark.parametrize("first_use_before", [False, True])
def test_threadpoolctl_limit_holds_whatever_the_order(first_use_before):
    # issue 21 item 6: entered before fastconv's first call, the limit used to be taken for the
    # runtime's baseline and ignored. OMP_NUM_THREADS=4 makes the default differ from the limit
    # on any machine; the team size checked is the one each call hands the driver.
    pytest.importorskip("threadpoolctl")
    if not fastconv.config()["openmp"]:
        pytest.skip("serial build: there is no OpenMP runtime to limit")
    proc = run_python(_TEAM_PROBE.format(first_use_before=first_use_before),
                      OMP_NUM_THREADS="4")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["inside"] == 2 and result["capped"] == 2 and result["after"] == 4, result
    assert result["used"] == [2, 3, 4], result


# --- import without the compiled extension --------------------------------------------------

def test_missing_extension_gives_readable_import_error(tmp_path):
    # A copy of the pure-Python part of the package, without any compiled module.
    import shutil

    src = os.path.dirname(fastconv.__file__)
    dst = tmp_path / "fastconv"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.so", "*.pyd", "*.c", "*.pyx",
                                                            "__pycache__"))
    code = ("import fastconv, fastconv.shapes\n"
            "try:\n    fastconv.config()\nexcept ImportError as e:\n    print('ERR', e)\n")
    proc = run_python(code, PYTHONPATH=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "ERR" in proc.stdout and "pip install" in proc.stdout
