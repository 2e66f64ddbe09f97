#!/usr/bin/env bash
# Run every SIMD kernel against the scalar kernels and a float64 reference, in C
# (tests/native/kernel_check.c), without Python.
#
#   tools/test_neon.sh            the NEON kernels: cross-compiled for aarch64 with Debian's
#                                 gcc-aarch64-linux-gnu and run under qemu-user (installed with
#                                 apt-get when missing: needs root and Debian's mirrors)
#   tools/test_neon.sh --native   this machine's kernels with the host compiler (on x86-64:
#                                 AVX2 and AVX-512, those the CPU has)
#   --sanitize                    (with either) built with AddressSanitizer + UBSan: a vector
#                                 load or store past the end of an array is reported
#
# Each src/fastconv/_isa/<area>_<isa>.c is compiled with that ISA's flags only and the
# FC_HAVE_<ISA> / FC_OPENMP macros and -O3, as setup.py does. OpenMP is used when a tiny OpenMP
# program builds and runs (under qemu too), else (or with FASTCONV_OPENMP=0) the serial build.
# Extra arguments go to kernel_check (-v: every check; -t N: threads of the threaded runs).
# Emulated timings mean nothing: this is a correctness check only.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=neon
sanitize=0
while [ $# -gt 0 ]; do
  case "$1" in
    --native) mode=native ;;
    --sanitize) sanitize=1 ;;
    *) break ;;
  esac
  shift
done

run=()
if [ "$mode" = neon ]; then
  cc=${CC_AARCH64:-aarch64-linux-gnu-gcc}
  qemu() { command -v qemu-aarch64 || command -v qemu-aarch64-static; }
  if ! command -v "$cc" >/dev/null || ! qemu >/dev/null; then
    echo "== installing the aarch64 cross compiler and qemu-user (apt-get)"
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu \
      libc6-dev-arm64-cross qemu-user >/dev/null ||
      "${sudo[@]}" apt-get install -y -qq --no-install-recommends gcc-aarch64-linux-gnu \
        libc6-dev-arm64-cross qemu-user-static >/dev/null
  fi
  run=("$(qemu)" -L "${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}")
  isas=(scalar neon)
  declare -A flags=([scalar]="" [neon]="")
else
  cc=${CC:-cc}
  case "$(uname -m)" in
    x86_64 | amd64)
      isas=(scalar avx2 avx512)
      declare -A flags=([scalar]="" [avx2]="-mavx2 -mfma" [avx512]="-mavx512f -mavx2 -mfma") ;;
    aarch64 | arm64)
      isas=(scalar neon)
      declare -A flags=([scalar]="" [neon]="") ;;
    *)
      isas=(scalar)
      declare -A flags=([scalar]="") ;;
  esac
fi

build=$(mktemp -d "${TMPDIR:-/tmp}/fastconv-kernel-check.XXXXXX")
trap 'rm -rf "$build"' EXIT
base=(-O3 -fno-strict-aliasing -g0 -Iinclude)
if [ "$sanitize" = 1 ]; then
  # every buffer kernel_check hands over is exactly its size: a read or write past it is a report
  base+=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  # LeakSanitizer cannot run under qemu-user (and the check frees what it allocates)
  export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:exitcode=86${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87"
fi

# OpenMP: compiled and run the way the check will be (under qemu for aarch64)
cat >"$build/omp.c" <<'EOF'
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel num_threads(2) reduction(+:n)
    n += 1;
    return n == 2 ? 0 : 1;
}
EOF
omp=()
if [[ "${FASTCONV_OPENMP:-1}" =~ ^(0|false|no|off)$ ]]; then
  echo "OpenMP: disabled by FASTCONV_OPENMP=0: serial build"
elif "$cc" "${base[@]}" -fopenmp "$build/omp.c" -o "$build/omp" 2>/dev/null && "${run[@]}" "$build/omp"; then
  omp=(-fopenmp -DFC_OPENMP=1 '-DFC_OPENMP_RUNTIME="libgomp"')
  echo "OpenMP: works ($cc${run:+, under ${run[0]}})"
else
  echo "OpenMP: not available with $cc${run:+ under ${run[0]}}: serial build"
fi

defines=()
for isa in "${isas[@]}"; do
  defines+=("-DFC_HAVE_${isa^^}=1")
done

objects=()
pids=()
for isa in "${isas[@]}"; do
  for src in src/fastconv/_isa/*_"$isa".c; do
    obj="$build/$(basename "$src" .c).o"
    # shellcheck disable=SC2086  # the ISA's flags are words
    "$cc" "${base[@]}" ${flags[$isa]} "${defines[@]}" "${omp[@]}" -c "$src" -o "$obj" &
    pids+=($!)
    objects+=("$obj")
  done
done
for pid in "${pids[@]}"; do
  wait "$pid"  # a failed compile stops the script here
done
"$cc" "${base[@]}" "${defines[@]}" "${omp[@]}" tests/native/kernel_check.c "${objects[@]}" \
  -o "$build/kernel_check" -lm -lpthread
echo "built with $cc for: ${isas[*]}"
"${run[@]}" "$build/kernel_check" "$@"
