#!/bin/sh
# build-matrix.sh [DIR] - builds the library and the examples with every
# compiler and build type a user may pick, warnings as errors, and says
# which failed. The tests run in `make test`; here only compiling counts:
# each optimisation level and NDEBUG brings warnings of its own (gcc's
# -Wmaybe-uninitialized at -O3, an assert-only variable under NDEBUG).
#
#   MATRIX_CC     compilers (default "gcc clang")
#   MATRIX_TYPES  build types (default "Debug RelWithDebInfo Release
#                 MinSizeRel")
#   MATRIX_ARGS   more cmake arguments (default -DBH_WERROR=ON and no tests)
#   JOBS          parallel compile jobs (default 2)
#
# Each build is DIR/<cc>-<type> (default build-matrix/); its log is
# DIR/<cc>-<type>.log. Prints one line per build with its time, and exits
# non-zero when any failed.
set -u

dir=${1:-build-matrix}
ccs=${MATRIX_CC:-gcc clang}
types=${MATRIX_TYPES:-Debug RelWithDebInfo Release MinSizeRel}
args=${MATRIX_ARGS:--DBH_WERROR=ON -DBH_BUILD_TESTS=OFF -DBH_BUILD_EXAMPLES=ON}
jobs=${JOBS:-2}
cmake=${CMAKE:-cmake}
src=$(cd "$(dirname "$0")/.." && pwd)

mkdir -p "$dir"
failed=""
start=$(date +%s)
for cc in $ccs; do
  if ! command -v "$cc" >/dev/null 2>&1; then
    echo "matrix: $cc: not found (scripts/deps.sh installs it as root)" >&2
    failed="$failed $cc"
    continue
  fi
  for type in $types; do
    b="$dir/$cc-$type"
    t0=$(date +%s)
    # shellcheck disable=SC2086 # MATRIX_ARGS is meant to split into words
    if { "$cmake" -S "$src" -B "$b" -DCMAKE_C_COMPILER="$cc" \
           -DCMAKE_BUILD_TYPE="$type" $args &&
         "$cmake" --build "$b" -j"$jobs"; } >"$b.log" 2>&1; then
      status=ok
    else
      status=FAILED
      failed="$failed $cc-$type"
    fi
    echo "matrix: $cc $type: $status in $(($(date +%s) - t0)) s"
    [ "$status" = ok ] || grep -E -m 20 "error|warning" "$b.log" >&2
  done
done
echo "matrix: $(($(date +%s) - start)) s in all"
if [ -n "$failed" ]; then
  echo "matrix: failed:$failed (logs in $dir/)" >&2
  exit 1
fi
