#!/usr/bin/env bash
# bench-profile.sh - profiles the hot paths of the benchmark suite.
#
#   scripts/bench-profile.sh [BUILD_DIR]   (default: build-profile, built
#                                           by `make bench-profile` with
#                                           -O2 -g -fno-omit-frame-pointer)
#
# 1. valgrind --tool=callgrind (instruction counts, repeatable) on
#    bench_burst (100,000 delegations, one worker) and bench_seq (10,000
#    sequential delegations): for the queen and the worker process, the
#    instructions per delegation, the calls per delegation of allocation,
#    copying and decoding functions, and the top functions by their own
#    instructions and by inclusive instructions.
# 2. perf record (when perf works here) on bench_burst at full size: the
#    top symbols by process.
# 3. perf stat page faults of bench_payload, per size.
#
# Raw profiles stay in BUILD_DIR/profile/ for callgrind_annotate, kcachegrind
# or perf report. Takes about a minute.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-profile}
BIN=$BUILD/bench
OUT=$BUILD/profile
BURST_N=${PROFILE_BURST_N:-100000}
SEQ_N=${PROFILE_SEQ_N:-10000}

if [ ! -x "$BIN/bench_burst" ]; then
  echo "bench-profile.sh: no benchmarks in $BIN (run \`make bench-profile\`)" >&2
  exit 2
fi
mkdir -p "$OUT"

# The functions whose calls per delegation are counted, and the outer
# frames (main, the loop) left out of the inclusive table.
WATCH='^(malloc|calloc|realloc|free|msgpack_unpack|msgpack_zone_init|bh_value_vpack|bh_value_from_object|bh__wire_decode|uv_timer_start|uv_timer_stop|clock_gettime.*|__memcpy.*|__memmove.*|__strlen.*|make_fcontext|read|write|epoll_wait)$'
OUTER='main|bench_run|bh_run|queen_setup|queen_spawn|spawn_worker|call_main|do_fork|worker_run|run_seq'

# Sums the calls= counts per callee in a callgrind file: "count name".
calls() {
  awk '
    /^c?fn=\(/ {
      s = index($0, "("); e = index($0, ")")
      id = substr($0, s + 1, e - s - 1)
      rest = substr($0, e + 1); sub(/^ /, "", rest)
      if (rest != "") name[id] = rest
      if ($0 ~ /^cfn=/) callee = id
      next
    }
    /^calls=/ { split(substr($0, 7), a, " "); n[callee] += a[1] }
    END { for (i in n) print n[i], name[i] }' "$1"
}

# report FILE ROLE N: the summary of one process's callgrind profile.
report() {
  local f=$1 role=$2 n=$3 total
  total=$(sed -n 's/^summary: *//p; s/^totals: *//p' "$f" | head -n 1)
  echo "--- $role (pid ${f##*.}): $total instructions in all," \
       "$(awk -v t="$total" -v n="$n" 'BEGIN { printf "%.0f", t / n }')" \
       "per delegation"
  echo "calls per delegation:"
  calls "$f" | awk -v n="$n" -v re="$WATCH" '
    $2 ~ re && $1 / n >= 0.005 { printf "  %-28s %8.2f\n", $2, $1 / n }' |
    sort -k2 -rn
  echo "top functions by own instructions:"
  annotate no "$f" | head -n 18
  echo "top functions of the library by inclusive instructions:"
  annotate yes "$f" | grep -E ' (src|bench)/' | grep -vE "$OUTER" |
    awk '!seen[$0]++' | head -n 28
}

# annotate yes|no FILE: callgrind_annotate's function table, paths cut.
annotate() {
  callgrind_annotate --auto=no --inclusive="$1" "$2" 2>/dev/null |
    awk '/file:function/ { go = 1; next } go && NF && !/^-/' |
    sed -E 's| \[[^]]*\]$||; s|/[^ ]*/(src\|bench)/|\1/|; s|\./[^ ]*/||'
}

# profile NAME N ARGS...: callgrind on one benchmark, a report per process
# (the queen is the first pid, her worker the second).
profile() {
  local name=$1 n=$2
  shift 2
  rm -f "$OUT/callgrind.$name".*
  echo "=== callgrind: $name $* (n = $n)"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$name.%p" \
    "$BIN/$name" "$@" 2>"$OUT/valgrind.$name.log"
  local files=()
  # One file per process, named by pid: the queen's pid is the smaller.
  mapfile -t files < <(printf '%s\n' "$OUT/callgrind.$name".* |
    awk -F. '{ print $NF "\t" $0 }' | sort -n | cut -f2-)
  report "${files[0]}" queen "$n"
  [ ${#files[@]} -ge 2 ] && report "${files[1]}" worker "$n"
  echo
}

if command -v valgrind >/dev/null 2>&1; then
  profile bench_burst "$BURST_N" "$BURST_N" 4096 1
  profile bench_seq "$SEQ_N" "$SEQ_N" 1
else
  echo "bench-profile.sh: valgrind is not installed; callgrind skipped"
fi

if perf record -e cpu-clock -o "$OUT/perf.probe" true >/dev/null 2>&1; then
  echo "=== perf record -g: bench_burst 1000000 4096 1"
  perf record -e cpu-clock -F 5000 -g -o "$OUT/perf.burst.data" -- \
    "$BIN/bench_burst" 1000000 4096 1 2>/dev/null
  perf report -i "$OUT/perf.burst.data" --no-children --sort pid,sym \
    --stdio -g none 2>/dev/null | grep '%' | grep -v '^#' | head -n 30
  echo
  for size in 64k 16m; do
    echo "=== perf stat: bench_payload 4 $size"
    perf stat -e page-faults,context-switches,task-clock -- \
      "$BIN/bench_payload" 4 "$size" 2>&1 |
      grep -E 'payload|page-faults|context-switches|task-clock|elapsed'
  done
else
  echo "bench-profile.sh: perf does not work here; perf runs skipped"
fi
echo "bench-profile.sh: raw profiles in $OUT" >&2
