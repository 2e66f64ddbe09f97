#!/usr/bin/env bash
# Build fastconv with AddressSanitizer + UndefinedBehaviorSanitizer in a temporary copy of the
# repository (never in place: other checkouts' .so files stay untouched) and run the tests there.
#
# Usage: tools/sanitize.sh [--quick] [--keep] [--tests-only] [pytest arguments...]
#   --quick   the CI subset: operator tests without the slow sweeps plus the error catalogue
#             and property tests (a few minutes on 2 cores)
#   --keep    keep the temporary copy (its path is printed) to rerun pytest by hand
#   --tests-only  reuse the build in FASTCONV_SANITIZE_DIR; refresh only tests/ from the tree
#   default   the whole test suite (benchmarks excluded)
# Environment: FASTCONV_SANITIZE_DIR=<dir> builds there (reused between runs: faster rebuilds);
#              FASTCONV_OPENMP=0 builds the serial variant; CC picks the compiler (gcc default).
#
# Why each setting (see docs/reliability.md):
# - Python is not built with ASan, so libasan must be loaded first: LD_PRELOAD=libasan.so.
# - detect_leaks=0: CPython and NumPy keep allocations alive until exit on purpose (interned
#   objects, caches), which LeakSanitizer reports as leaks; leaks of fastconv's own scratch
#   are tested instead by the resident-memory test in tests/test_concurrency.py.
# - PYTHONMALLOC=malloc: objects go through malloc, so ASan sees every allocation.
# - allocator_may_return_null=1: huge requests return NULL, so fastconv's MemoryError paths
#   run (by default ASan aborts on "allocation-size-too-big").
# - halt_on_error / -fno-sanitize-recover: the first report stops the run with a non-zero code.
set -euo pipefail

quick=0
keep=0
tests_only=0
pytest_args=()
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    --tests-only) tests_only=1 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) pytest_args+=("$arg") ;;
  esac
done

repo="$(cd "$(dirname "$0")/.." && pwd)"
cc="${CC:-gcc}"
if [ -n "${FASTCONV_SANITIZE_DIR:-}" ]; then
  work="$FASTCONV_SANITIZE_DIR"
  keep=1
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/fastconv-sanitize.XXXXXX")"
fi
if [ "$keep" = 0 ]; then
  trap 'rm -rf "$work"' EXIT
fi
libasan="$($cc -print-file-name=libasan.so)"
if [ ! -e "$libasan" ]; then
  echo "sanitize.sh: $cc has no libasan.so ($libasan); install the compiler's ASan runtime" >&2
  exit 2
fi
if [ "$tests_only" = 1 ]; then
  if [ -z "${FASTCONV_SANITIZE_DIR:-}" ] || [ ! -d "$work/repo/src" ]; then
    echo "sanitize.sh: --tests-only needs FASTCONV_SANITIZE_DIR with a previous build" >&2
    exit 2
  fi
  echo "== reusing the build in $work; refreshing tests/ only"
  tar -C "$repo" -cf - --exclude=__pycache__ tests | tar -C "$work/repo" -xf -
else
  mkdir -p "$work/repo"
  echo "== copying $repo to $work/repo (no compiled modules, no build dirs)"
  # The working tree as it is (including uncommitted files), without build products.
  tar -C "$repo" -cf - --exclude=.git --exclude='*.so' --exclude=build --exclude='*.egg-info' \
      --exclude=__pycache__ --exclude=.hypothesis --exclude=.pytest_cache . |
    tar -C "$work/repo" -xf -
  # Cython's generated C is regenerated from the .pyx (a stale copy must not be reused)
  find "$work/repo/src/fastconv" -maxdepth 1 -name '_*.c' -delete

  san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"

  echo "== building with $san"
  start=$(date +%s)
  # The flags go into CC itself so that setup.py's OpenMP probe program (compiled, linked and run)
  # is sanitized too; in CFLAGS only, the probe fails to link and the build silently goes serial.
  (cd "$work/repo" && CC="$cc $san" LDSHARED="$cc $san -shared" \
     python setup.py -q build_ext --inplace --build-temp "$work/build" >"$work/build.log" 2>&1) || {
    tail -40 "$work/build.log" >&2
    echo "sanitize.sh: build failed (log: $work/build.log)" >&2
    exit 2
  }
  echo "   built in $(( $(date +%s) - start )) s"
fi

export LD_PRELOAD="$libasan"
# Reports also go to files: pytest captures fd 2, and a report written there dies with the
# process.
reports="$work/reports"
rm -rf "$reports" && mkdir -p "$reports"
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:\
handle_segv=1:allow_user_segv_handler=1:strict_init_order=1:detect_stack_use_after_return=0:\
allocator_may_return_null=1:\
log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87:log_path=$reports/ubsan"
export PYTHONMALLOC=malloc
# the copy's src/ must win over any editable install of the original checkout
export PYTHONPATH="$work/repo/src${PYTHONPATH:+:$PYTHONPATH}"
export FASTCONV_SANITIZED=1

cd "$work/repo"
python - <<'PY'
import fastconv
import fastconv._conv as m
print("== sanitized build in use:", m.__file__)
print("   isa", fastconv.config()["isa_available"], "openmp", fastconv.config()["openmp"])
PY

if [ "$quick" = 1 ]; then
  # The operators at every ISA and thread count, their error paths, random argument sets.
  targets=()
  for f in tests/test_conv.py tests/test_pool.py tests/test_conv_transpose.py \
           tests/test_gemm.py tests/test_errors.py tests/test_properties.py \
           tests/test_concurrency.py; do
    [ -f "$f" ] && targets+=("$f")
  done
  set -- -q -p no:cacheprovider -m "not slow" "${targets[@]}"
else
  set -- -q -p no:cacheprovider tests
fi
# Two tests measure what ASan changes by design: its quarantine keeps freed memory resident,
# and without the child's address-space limit (ASan reserves terabytes) a 2**30-element output
# is really allocated and filled instead of failing fast with MemoryError.
set -- "$@" --deselect "tests/test_concurrency.py::test_resident_memory_flat_over_10000_calls" \
  --deselect "tests/test_errors.py::test_huge_sizes[adaptive-1d-2**30]"
echo "== python -m pytest $* ${pytest_args[*]:-}"
start=$(date +%s)
status=0
python -m pytest "$@" "${pytest_args[@]}" || status=$?
echo "== pytest exit status $status after $(( $(date +%s) - start )) s"
for f in "$reports"/*; do
  [ -e "$f" ] || continue
  echo "== sanitizer report $f:"
  cat "$f"
done
case "$status" in
  86) echo "sanitize.sh: AddressSanitizer reported an error (see above)" >&2 ;;
  87) echo "sanitize.sh: UndefinedBehaviorSanitizer reported an error (see above)" >&2 ;;
esac
if [ "$keep" = 1 ]; then
  echo "kept: $work (rerun: cd $work/repo && LD_PRELOAD=$libasan PYTHONPATH=$work/repo/src"\
       "ASAN_OPTIONS=detect_leaks=0 PYTHONMALLOC=malloc python -m pytest ...)"
fi
exit "$status"
