#!/usr/bin/env bash
# bench.sh - runs the benchmark suite (bench/) and reports it.
#
#   scripts/bench.sh [BUILD_DIR]     (default: build-bench, built by
#                                     `make bench` with -O2 -DNDEBUG)
#
# Runs every program BENCH_REPEAT times (default 3) and keeps the median of
# each figure, then prints one line per figure,
#
#   key value unit [target verdict]
#
# with the issue's targets where it sets one, and rewrites
# docs/PERFORMANCE.md with the same table and the machine's description.
# Everything in docs/PERFORMANCE.md below the findings marker line is
# written by hand and kept as it is. Exits 1 if a program failed (its
# figures are missing), 0 otherwise, whether or not targets are met.
#
# Sizes can be cut for a quick look: BENCH_BURST_N, BENCH_SEQ_N,
# BENCH_RTT_N, BENCH_MEMORY_N, BENCH_STARTUP_N, BENCH_BALANCE_N,
# BENCH_FIBER_N, BENCH_PAYLOAD_SCALE, BENCH_PPE_N, BENCH_MAP_N,
# BENCH_IO_ROUNDS, BENCH_PREDICT_ROWS, BENCH_REMOTE_SEQ_N,
# BENCH_REMOTE_BURST_N, BENCH_HOSTS_ROWS, BENCH_HOSTS_HTTP_ROWS. A program
# that cannot measure some figures here (network namespaces need root)
# prints a "skipped: KEYS: why" line, which goes into the notes.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
BIN=$BUILD/bench
DOC=${BENCH_DOC:-$ROOT/docs/PERFORMANCE.md}
REPEAT=${BENCH_REPEAT:-3}
PROG_TIMEOUT=${BENCH_PROG_TIMEOUT:-180}
MARKER='<!-- findings: everything below this line is written by hand; scripts/bench.sh keeps it -->'

# The figures in report order: key|target|what it is. Target is "<=N",
# ">=N" or empty.
SPEC='pipe_rtt_us||floor: median 1-byte round trip between two processes over an AF_UNIX socketpair (the hive'"'"'s transport), unpinned
pipe_rtt_p99_us||floor: its 99th percentile
pipe_rtt_same_cpu_us||floor: the same, both processes pinned to one CPU
pipe_rtt_same_cpu_p99_us||floor: its 99th percentile
pipe_rtt_cross_cpu_us||floor: the same, each process pinned to its own CPU
pipe_rtt_cross_cpu_p99_us||floor: its 99th percentile
pipe_rtt_pipe_same_cpu_us||floor: a pair of pipes instead, one CPU
pipe_rtt_pipe_same_cpu_p99_us||floor: its 99th percentile
pipe_rtt_pipe_cross_cpu_us||floor: a pair of pipes instead, two CPUs
pipe_rtt_pipe_cross_cpu_p99_us||floor: its 99th percentile
stream32_msgs_per_s||floor: 32-byte length-prefixed frames one way through a socketpair, written in 64 KiB batches, parsed one by one; both processes on one CPU
stream256_msgs_per_s||floor: the same with 256-byte frames
delegate_seq_p50_us||one worker, bh_delegate of a trivial task from the queen'"'"'s task, one at a time: median per call, unpinned
delegate_seq_p99_us||the same, 99th percentile
delegate_seq_same_cpu_p50_us||the same with queen and worker pinned to one CPU
delegate_seq_same_cpu_p99_us||the same, 99th percentile
delegate_seq_ratio|<=1.8|delegate_seq_same_cpu_p50_us / pipe_rtt_same_cpu_us: both pinned to one CPU, where the scheduler puts such pairs (a delegation is two round trips: 2.0 is the floor)
delegate_seq_ratio_unpinned||delegate_seq_p50_us / pipe_rtt_us: meaningful only when both landed on the same placement
delegate_seq_cross_cpu_p50_us||the same with queen and worker pinned to two CPUs
delegate_seq_cross_cpu_p99_us||the same, 99th percentile
delegate_seq_ratio_cross_cpu||delegate_seq_cross_cpu_p50_us / pipe_rtt_cross_cpu_us
burst_tasks_per_s_w1|>=250000|1,000,000 trivial delegations, 4,096 in flight (bh_group_delegate + bh_group_next), one worker
burst_tasks_per_s_w2|>=250000|the same with two workers
burst_queen_cpu_w1||the queen process'"'"'s CPU time over the wall time during the w1 burst (1.0: she alone is the limit)
burst_queen_cpu_w2||the same for w2
burst_workers_cpu_w1||the workers'"'"' CPU time over the same wall time (queen + workers near 1.0: they share one CPU)
burst_workers_cpu_w2||the same for w2 (both workers together)
burst_unlimited_tasks_per_s_w1||the w1 burst with max_concurrency -1 (no limit): the 4,096 tasks in flight all run at once in the worker
burst_unlimited_vs_1024_w1||burst_unlimited_tasks_per_s_w1 / burst_tasks_per_s_w1 (was 0.14 while each task took its fiber stack when it was made: see Findings)
burst_unlimited_tasks_per_s_w2||the w2 burst with no limit: neither worker is ever full, so every offer goes to both (no direct offers)
burst_unlimited_vs_1024_w2||burst_unlimited_tasks_per_s_w2 / burst_tasks_per_s_w2
burst_nap_tasks_per_s_w1||200,000 delegations of a task sleeping 1 ms (bh_sleep), 4,096 in flight, one worker at max_concurrency 1,024
burst_nap_unlimited_tasks_per_s_w1||the same with no limit: 4,096 tasks wait at once in the worker, ending and starting in waves
burst_nap_unlimited_vs_1024_w1||burst_nap_unlimited_tasks_per_s_w1 / burst_nap_tasks_per_s_w1 (was 0.09-0.10 with a fixed pool of 1,024 free stacks)
balance_min_share|>=0.45|20,000 tasks sleeping 1 ms, two workers with max_concurrency 64: the smaller worker'"'"'s share (by bh_result_child_id)
balance_makespan_ratio|<=1.15|makespan / ideal, ideal = 20,000 x 1 ms / (2 x 64) = 156.25 ms
balance_makespan_ms||the makespan: first delegation to last answer
balance_nap_mean_ms||how long a 1 ms bh_sleep really slept in the workers, on average
balance_makespan_ratio_slept||makespan / (the naps'"'"' real total / 128): the loss that is not the timer'"'"'s
payload_mb_per_s_64k||echo of a 64 KiB bin arg from a malloc()ed buffer (worker returns it), 16 in flight, queen and worker on one CPU: payload bytes both ways per second (1 MB = 10^6 B); default blob threshold (256 KiB), so inline
payload_mb_per_s_16m||the same with 16 MiB, 2 in flight: it travels as a blob (copied once into a sealed memfd by the queen; the worker sends the same memfd back)
payload_inline_mb_per_s_16m||the same with blobs off (bh_set_blob_threshold(0)), every byte through the socket, max_frame 64 MiB
payload_blob_mb_per_s_64k||echo of a 64 KiB bin lying in bh_blob_alloc() memory, blob threshold 64 KiB: no byte copied either way
payload_blob_mb_per_s_16m||the same with 16 MiB
raw_stream_mb_per_s_64k||floor: one-way socketpair stream of 64 KiB frames, each read whole into one buffer, both processes on one CPU
raw_stream_mb_per_s_16m||floor: the same with 16 MiB frames
payload_ratio_64k|>=0.5|payload_mb_per_s_64k / raw_stream_mb_per_s_64k (same placement)
payload_ratio_16m||payload_mb_per_s_16m / raw_stream_mb_per_s_16m
payload_ratio_16m_inline||payload_inline_mb_per_s_16m / raw_stream_mb_per_s_16m
payload_ratio_64k_blob||payload_blob_mb_per_s_64k / raw_stream_mb_per_s_64k
payload_ratio_16m_blob||payload_blob_mb_per_s_16m / raw_stream_mb_per_s_16m
payload_unpinned_mb_per_s_64k||the hive'"'"'s echo of 64 KiB, unpinned
payload_unpinned_mb_per_s_16m||the same, 16 MiB
payload_blob_unpinned_mb_per_s_64k||the bh_blob_alloc() echo of 64 KiB, unpinned
payload_blob_unpinned_mb_per_s_16m||the same, 16 MiB
raw_stream_unpinned_mb_per_s_64k||floor: the 64 KiB stream, unpinned
raw_stream_unpinned_mb_per_s_16m||floor: the 16 MiB stream, unpinned
payload_ratio_64k_unpinned||payload_unpinned_mb_per_s_64k / raw_stream_unpinned_mb_per_s_64k: meaningful only when both landed on the same placement
payload_ratio_16m_unpinned||the same for 16 MiB
startup_ms|<=20|a whole bh_run of a queen task delegating one trivial task to one fork-started worker, spawn to exit, median of 50
startup_exec_ms||the same with an exec-started worker
startup_python_ms||the same with a worker program in Python (examples/worker.py, a bh_program): python3'"'"'s start and imports included
queen_bytes_per_inflight|<=400|queen RSS growth per delegation with 1,000,000 started by bh_group_delegate and none answered (see Method)
queen_heap_bytes_per_inflight||the same growth counted by malloc (mallinfo2 uordblks)
worker_idle_rss_kib|<=4096|VmRSS of an idle fork-started worker
worker_idle_pss_kib||its Pss (pages shared with the queen counted by share)
worker_idle_anon_kib||its RssAnon
worker_idle_rss_exec_kib||VmRSS of an idle exec-started worker
worker_idle_pss_exec_kib||its Pss
fiber_switch_ns||one hand-over between two fibers through the scheduler (wake + suspend: two jump_fcontext)
fiber_jump_ns||half of it: one fiber <-> main context switch
fiber_spawn_ns||bh__fiber_new + first run of a fiber that returns at once
ppe_submit_tasks_per_s||Python ProcessPoolExecutor (nproc workers): 20,000 submits of a trivial function, then wait for all
ppe_seq_us||the same, one submit + result() at a time, median
ppe_map_chunk100_tasks_per_s||the same, map over 200,000 items with chunksize 100
map_chunk100_tasks_per_s||the hive'"'"'s map (bh_map_new, bench_map): 200,000 trivial items (a worker task returning its argument), chunk 100, in input order, 2 workers
map_chunk100_vs_ppe|>=3|map_chunk100_tasks_per_s / ppe_map_chunk100_tasks_per_s
burst_vs_ppe_map_chunk100|>=1.5|burst_tasks_per_s_w2 / ppe_map_chunk100_tasks_per_s: every task of the hive'"'"'s burst delegated on its own, against the Python pool sending a hundred per message
io_serial_gets_per_s_20ms||floor: a serial loop of GETs (libcurl easy) from nginx on loopback answering after 20 ms: the loop a hive replaces
io_raw_rows_per_s_256||floor: a plain libcurl multi client in one process, 256 GETs in flight, the same server: what the server and libcurl manage without the hive
io_hive_rows_per_s_256||the hive: the queen keeps 256 delegations in flight over 2 workers, each a task that GETs its row through its bee'"'"'s HTTP session
io_raw_efficiency_256||io_raw_rows_per_s_256 / (256 / 20 ms)
io_efficiency_256|>=0.8|io_hive_rows_per_s_256 / (256 / 20 ms)
io_hive_vs_serial_256|>=40|io_hive_rows_per_s_256 / io_serial_gets_per_s_20ms
io_raw_rows_per_s_1024||floor: the raw client with 1,024 in flight
io_hive_rows_per_s_1024||the hive with 1,024 in flight
io_raw_efficiency_1024||io_raw_rows_per_s_1024 / (1,024 / 20 ms)
io_efficiency_1024||io_hive_rows_per_s_1024 / (1,024 / 20 ms)
s3_raw_gets_per_s||floor: raw libcurl (CURLOPT_AWS_SIGV4), 16 GETs of a small object in flight, against s3rver behind the SigV4-checking proxy
s3_gets_per_s||the hive'"'"'s S3 clients (2 workers), 16 in flight, the same object and server
s3_gets_ratio||s3_gets_per_s / s3_raw_gets_per_s
predict_rows_per_s||the main job (examples/predict, defaults: 2 workers) on 20,000 rows from its file:// cache (written by a run before), its own rows/s (the whole bh_run: spawning, checking the cache, the rows)
serial_rows_per_s||floor: a serial C loop doing the same per-row work on the same rows in one process (read the file with stdio, decode, the 64x10 model, format the CSV line, write it), data already loaded; its CSV is checked equal to the hive'"'"'s
predict_file_py_rows_per_s||peer: the same loop in Python (bench/predict_peer.py)
predict_vs_serial|>=1.0|predict_rows_per_s / serial_rows_per_s (the ceiling on 2 cores is about 2 x serial_cpu_us_per_row / predict_cpu_us_per_row)
predict_cpu_us_per_row||CPU time (user + system) of the main job'"'"'s run over all its processes, per row
serial_cpu_us_per_row||CPU time of the serial loop per row
predict_sys_us_per_row||the kernel'"'"'s part of predict_cpu_us_per_row (system time: reads, the workers'"'"' and the queen'"'"'s messages, wake-ups)
serial_sys_us_per_row||the kernel'"'"'s part of serial_cpu_us_per_row (its reads and writes)
predict_file_hive_vs_py||predict_rows_per_s / predict_file_py_rows_per_s
io_rows_per_s_20ms||the main job on 20,000 rows from http:// (nginx on loopback answering each GET after 20 ms), defaults (window 4,096, 256 connections per worker); its CSV is checked equal to the file run'"'"'s
io_serial_rows_per_s_20ms||floor: the serial C loop over the same URLs (libcurl easy, one GET after another)
predict_http_py_rows_per_s_20ms||peer: asyncio + aiohttp, 512 GETs in flight (the hive'"'"'s 2 x 256 connections), the same per-row work
io_hive_vs_serial_20ms|>=40|io_rows_per_s_20ms / io_serial_rows_per_s_20ms
predict_http_hive_vs_py||io_rows_per_s_20ms / predict_http_py_rows_per_s_20ms
predict_s3_rows_per_s||the main job on 5,000 rows from s3:// (s3rver behind the SigV4 proxy, images put by --upload); CSV checked
predict_s3_serial_rows_per_s||floor: the serial C loop, GETs signed by libcurl (CURLOPT_AWS_SIGV4)
predict_s3_py_rows_per_s||peer: asyncio + aiohttp, 512 in flight, each GET signed by botocore'"'"'s S3SigV4Auth
predict_s3_hive_vs_serial||predict_s3_rows_per_s / predict_s3_serial_rows_per_s (s3rver, one Node.js process, is the limit: see s3_raw_gets_per_s)
predict_s3_hive_vs_py||predict_s3_rows_per_s / predict_s3_py_rows_per_s
tcp_rtt_us||floor of the workers of other hosts (bench_remote): median 1-byte round trip over one TCP connection on loopback (TCP_NODELAY) between two processes, unpinned
tcp_rtt_p99_us||floor: its 99th percentile
tcp_delegate_seq_p50_us||bh_delegate of a trivial task to one worker joined over TCP on loopback (BH_JOIN), one at a time from the queen'"'"'s task: median per call, unpinned
tcp_delegate_seq_p99_us||the same, 99th percentile
tcp_delegate_seq_ratio||tcp_delegate_seq_p50_us / tcp_rtt_us (1.0: one round trip per delegation)
tcp_rtt_same_cpu_us||floor: the TCP round trip with both processes pinned to one CPU
tcp_rtt_same_cpu_p99_us||floor: its 99th percentile
tcp_delegate_seq_same_cpu_p50_us||the TCP delegation with queen and worker pinned to one CPU
tcp_delegate_seq_same_cpu_p99_us||the same, 99th percentile
tcp_delegate_seq_ratio_same_cpu||tcp_delegate_seq_same_cpu_p50_us / tcp_rtt_same_cpu_us
tcp_vs_socketpair_seq||tcp_delegate_seq_same_cpu_p50_us / delegate_seq_same_cpu_p50_us: a delegation over TCP against one over the local socketpair, both pinned to one CPU
tcp_burst_tasks_per_s_w2||trivial delegations, 4,096 in flight (bh_group_delegate + bh_group_next), over two workers joined over TCP on loopback
tcp_vs_socketpair_burst_w2||tcp_burst_tasks_per_s_w2 / burst_tasks_per_s_w2 (two local workers on socketpairs)
netns_rtt_us||floor: the TCP round trip between this network namespace and a host'"'"'s (tests/netns.h), over their veth link
netns_rtt_p99_us||floor: its 99th percentile
netns_delegate_seq_p50_us||the sequential delegation to a worker joined from a host over its veth link
netns_delegate_seq_p99_us||the same, 99th percentile
netns_delegate_seq_ratio||netns_delegate_seq_p50_us / netns_rtt_us
netns_burst_tasks_per_s_w2||the burst over two workers, each joined from a host of its own over its veth link
netns_1ms_rtt_us||floor: the round trip across the hosts'"'"' link through a relay that holds each chunk 1 ms each way (bench/relay.c: this kernel has no sch_netem): about 2 ms plus the relay'"'"'s own
netns_1ms_rtt_p99_us||floor: its 99th percentile
netns_1ms_delegate_seq_p50_us||the sequential delegation to a worker joined across the same delayed link
netns_1ms_delegate_seq_p99_us||the same, 99th percentile
netns_1ms_delegate_seq_ratio||netns_1ms_delegate_seq_p50_us / netns_1ms_rtt_us (1.0: one round trip per delegation)
netns_1ms_burst_tasks_per_s_w2||the burst over two workers in two hosts, both across the delayed link
hosts_predict_local_rows_per_s||the main job (bench_hosts: examples/predict, its own rows/s, the whole bh_run) on 100,000 rows from its file:// cache, 2 local workers
hosts_predict_tcp_rows_per_s||the same with --workers 0 --listen and 2 workers joined over loopback (predict --join), started as soon as the queen says where; its CSV is checked equal to the local run'"'"'s
hosts_predict_tcp_vs_local||hosts_predict_tcp_rows_per_s / hosts_predict_local_rows_per_s
hosts_predict_tcp_together_rows_per_s||the same with the workers started together with the queen (a port fixed beforehand, as mpirun or srun start everyone): they find nobody listening yet and try again
hosts_predict_tcp_together_vs_local||hosts_predict_tcp_together_rows_per_s / hosts_predict_local_rows_per_s
hosts_predict_local_cpu_us_per_row||CPU time (user + system) of the local run'"'"'s processes per row
hosts_predict_tcp_cpu_us_per_row||the same for the run with joined workers (queen and joiners)
hosts_io_local_rows_per_s_20ms||the latency-bound main job: 20,000 rows from http:// (nginx answering each GET after 20 ms), 2 local workers
hosts_io_netns3_rows_per_s_20ms||the same with 3 workers joined from 3 network-namespace hosts over their veth links, and nothing else on the queen'"'"'s; the rows from the same nginx; CSV checked
hosts_io_netns3_vs_local_20ms||hosts_io_netns3_rows_per_s_20ms / hosts_io_local_rows_per_s_20ms
hosts_io_tcp3_rows_per_s_20ms||the same 3 joined workers on the queen'"'"'s host, over loopback: the namespaces'"'"' links left out
hosts_io_tcp3_vs_local_20ms||hosts_io_tcp3_rows_per_s_20ms / hosts_io_local_rows_per_s_20ms
hosts_io_local_cpu_us_per_row||CPU time of the hive'"'"'s processes per row, 2 local workers (nginx not counted)
hosts_io_tcp3_cpu_us_per_row||the same with the 3 workers joined over loopback (their start included)
hosts_io_netns3_cpu_us_per_row||the same with the 3 workers joined from the hosts'

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
FAILED=""
NOTES=""

note() {
  NOTES="$NOTES$1"$'\n'
  echo "# $1" >&2
}

# run NAME CMD...: appends the program's figures to $TMP/raw.
run() {
  local name=$1 out=$TMP/out rc
  shift
  echo "bench.sh: $name" >&2
  timeout "$PROG_TIMEOUT" "$@" >"$out" 2>"$TMP/err"
  rc=$?
  cat "$out" >&2
  grep -E '^[a-z0-9_]+ [-+0-9.e]+ [^ ]+$' "$out" >>"$TMP/raw"
  # once per program, not once per round
  while IFS= read -r line; do
    case "$NOTES" in *"$name $line"*) ;;
      *) note "$name $line" ;; esac
  done < <(grep '^skipped: ' "$out")
  if [ $rc -ne 0 ]; then
    FAILED="$FAILED $name"
    note "$name failed (exit $rc): $(tr '\n' ' ' <"$TMP/err" | cut -c1-300)"
  fi
}

if [ ! -x "$BIN/bench_floor" ]; then
  echo "bench.sh: no benchmarks in $BIN (run \`make bench\`)" >&2
  exit 2
fi

PY=""
if [ -x /usr/bin/python3 ]; then
  PY=/usr/bin/python3
elif command -v python3 >/dev/null 2>&1; then
  PY=$(command -v python3)
fi

# Other work on the machine skews every figure: before each round, the
# share of the CPUs busy over one second (nothing of ours runs then).
busy_share() {
  local a b
  a=$(head -n 1 /proc/stat)
  sleep 1
  b=$(head -n 1 /proc/stat)
  printf '%s\n%s\n' "$a" "$b" | awk '
    { t = 0; for (i = 2; i <= NF; i++) t += $i; idle = $5 + $6 }
    NR == 1 { t0 = t; i0 = idle }
    NR == 2 { printf "%.2f", ((t - t0) > 0 ? 1 - (idle - i0) / (t - t0) : 0) }'
}
BUSY=""
: >"$TMP/raw"
for i in $(seq 1 "$REPEAT"); do
  BUSY="$BUSY $(busy_share)"
  echo "bench.sh: round $i of $REPEAT (CPUs busy before it: ${BUSY##* })" >&2
  run bench_floor "$BIN/bench_floor"
  run bench_fiber "$BIN/bench_fiber"
  run bench_startup "$BIN/bench_startup"
  run bench_memory "$BIN/bench_memory"
  run bench_seq "$BIN/bench_seq"
  run bench_burst "$BIN/bench_burst"
  run bench_balance "$BIN/bench_balance"
  run bench_payload "$BIN/bench_payload"
  # as many items as ppe.py maps, unless BENCH_MAP_N says otherwise
  run bench_map "$BIN/bench_map" \
    "${BENCH_MAP_N:-$((${BENCH_PPE_N:-20000} * 10))}"
  if [ -n "$PY" ]; then
    run ppe "$PY" "$ROOT/bench/ppe.py" "${BENCH_PPE_N:-20000}"
  fi
  run bench_io "$BIN/bench_io" "${BENCH_IO_ROUNDS:-30}"
  if [ -x "$BUILD/examples/predict" ]; then
    run bench_predict "$BIN/bench_predict" "$BUILD/examples/predict" \
      "${BENCH_PREDICT_ROWS:-20000}"
  fi
  run bench_remote "$BIN/bench_remote"
  if [ -x "$BUILD/examples/predict" ]; then
    run bench_hosts "$BIN/bench_hosts" "$BUILD/examples/predict"
  fi
done
[ -n "$PY" ] || note "ppe: skipped, python3 is not installed"
# shellcheck disable=SC2086 # one share per line
if printf '%s\n' $BUSY | awk '$1 > 0.1 { bad = 1 } END { exit !bad }'; then
  note "other work kept the CPUs busy before a round (shares:$BUSY): figures may be low"
fi

# The median of each key over the rounds, then the derived ratios.
awk '
  { v[$1] = v[$1] " " $2; u[$1] = $3 }
  END {
    for (k in v) {
      n = split(substr(v[k], 2), a, " ")
      for (i = 2; i <= n; i++)          # insertion sort, n is small
        for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
          t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
        }
      m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      print k, m, u[k]
    }
  }' "$TMP/raw" >"$TMP/med"

val() { awk -v k="$1" '$1 == k { print $2 }' "$TMP/med"; }
ratio() { # ratio KEY NUM DEN
  local a b
  a=$(val "$2")
  b=$(val "$3")
  if [ -n "$a" ] && [ -n "$b" ]; then
    awk -v k="$1" -v a="$a" -v b="$b" \
      'BEGIN { if (b > 0) printf "%s %.3f ratio\n", k, a / b }' >>"$TMP/med"
  fi
}
# The targets compare the hive with the floor in the same, pinned placement
# (one CPU); the unpinned ratios depend on where the scheduler happened to
# put each pair of processes.
ratio delegate_seq_ratio delegate_seq_same_cpu_p50_us pipe_rtt_same_cpu_us
ratio delegate_seq_ratio_unpinned delegate_seq_p50_us pipe_rtt_us
ratio delegate_seq_ratio_cross_cpu delegate_seq_cross_cpu_p50_us \
  pipe_rtt_cross_cpu_us
ratio map_chunk100_vs_ppe map_chunk100_tasks_per_s \
  ppe_map_chunk100_tasks_per_s
ratio burst_vs_ppe_map_chunk100 burst_tasks_per_s_w2 \
  ppe_map_chunk100_tasks_per_s
ratio payload_ratio_64k payload_mb_per_s_64k raw_stream_mb_per_s_64k
ratio payload_ratio_16m payload_mb_per_s_16m raw_stream_mb_per_s_16m
ratio payload_ratio_16m_inline payload_inline_mb_per_s_16m \
  raw_stream_mb_per_s_16m
ratio payload_ratio_64k_blob payload_blob_mb_per_s_64k raw_stream_mb_per_s_64k
ratio payload_ratio_16m_blob payload_blob_mb_per_s_16m raw_stream_mb_per_s_16m
ratio payload_ratio_64k_unpinned payload_unpinned_mb_per_s_64k \
  raw_stream_unpinned_mb_per_s_64k
ratio tcp_vs_socketpair_seq tcp_delegate_seq_same_cpu_p50_us \
  delegate_seq_same_cpu_p50_us
ratio tcp_vs_socketpair_burst_w2 tcp_burst_tasks_per_s_w2 burst_tasks_per_s_w2
ratio payload_ratio_16m_unpinned payload_unpinned_mb_per_s_16m \
  raw_stream_unpinned_mb_per_s_16m
a=$(val delegate_seq_ratio_unpinned)
b=$(val delegate_seq_ratio)
if [ -n "$a" ] && [ -n "$b" ] &&
   awk -v a="$a" -v b="$b" 'BEGIN { exit !(a > 2 * b || b > 2 * a) }'; then
  note "delegate_seq_ratio_unpinned ($a) is far from the pinned delegate_seq_ratio ($b): unpinned, the floor and the hive ran in different placements (pipe_rtt_us $(val pipe_rtt_us) us, delegate_seq_p50_us $(val delegate_seq_p50_us) us)"
fi

# The table: key value unit target verdict what, tab-separated, in SPEC
# order, then any figure SPEC does not name.
printf '%s\n' "$SPEC" | awk -F'|' -v med="$TMP/med" '
  function fmt(x) {
    if (x + 0 >= 1000 || x + 0 <= -1000) return sprintf("%.0f", x)
    return sprintf("%.3f", x)
  }
  BEGIN { while ((getline l < med) > 0) { split(l, f, " ");
                                           v[f[1]] = f[2]; u[f[1]] = f[3] } }
  {
    k = $1; tgt = $2; what = $3; seen[k] = 1
    if (!(k in v)) {
      print k "\t-\t-\t" (tgt == "" ? "-" : tgt) "\tmissing\t" what
      next
    }
    verdict = "-"
    if (tgt ~ /^<=/) verdict = (v[k] + 0 <= substr(tgt, 3) + 0) ? "met" : "NOT MET"
    if (tgt ~ /^>=/) verdict = (v[k] + 0 >= substr(tgt, 3) + 0) ? "met" : "NOT MET"
    print k "\t" fmt(v[k]) "\t" u[k] "\t" (tgt == "" ? "-" : tgt) "\t" verdict "\t" what
  }
  END { for (k in v) if (!(k in seen))
          print k "\t" fmt(v[k]) "\t" u[k] "\t-\t-\t(not described)" }
' >"$TMP/table"

echo
awk -F'\t' '{ if ($4 == "-" && $5 == "-") printf "%-32s %14s %-8s\n", $1, $2, $3
              else printf "%-32s %14s %-8s %-10s %s\n", $1, $2, $3, $4, $5 }' \
  "$TMP/table"
[ -z "$NOTES" ] || printf '%s' "$NOTES" | sed 's/^/# /'

# ---- docs/PERFORMANCE.md ------------------------------------------------
cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
flags=$(sed -n 's/^CMAKE_C_FLAGS_RELEASE:[A-Z]*=//p' "$BUILD/CMakeCache.txt" 2>/dev/null)
compiler=$("${cc:-cc}" --version 2>/dev/null | head -n 1)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
libuv=$(pkg-config --modversion libuv 2>/dev/null || echo "?")
msgpack=$(pkg-config --modversion msgpack 2>/dev/null ||
          pkg-config --modversion msgpack-c 2>/dev/null || echo "?")
pyver=$([ -n "$PY" ] && "$PY" --version 2>&1 || echo "not installed")
kept=""
if [ -f "$DOC" ] && grep -qF -- "$MARKER" "$DOC"; then
  kept=$(awk -v m="$MARKER" 'found { print } $0 == m { found = 1 }' "$DOC")
fi
if [ -z "$kept" ]; then
  kept=$'\n## Findings\n\n(Not written yet.)'
fi

{
  cat <<EOF
# Performance

Written by \`make bench\` (scripts/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC');
everything above the findings marker is regenerated by each run. Each
figure is the median of $REPEAT runs of its program. Raw figures drift from
run to run and from machine to machine; ratios to the floor measured in the
same run hold better.

## Machine

| what | value |
| --- | --- |
| CPUs (nproc) | $(nproc) |
| CPU model | ${cpu:-unknown} |
| kernel | $(uname -srm) |
| compiler | ${compiler:-unknown}, flags \`${flags:-?}\` |
| libuv / msgpack-c | $libuv / $msgpack |
| python3 (peer) | $pyver |
| CPUs busy with other work before each round | $BUSY (share of all CPUs over one second) |

## Figures

| key | value | unit | target | met | what |
| --- | ---: | --- | --- | --- | --- |
EOF
  awk -F'\t' '{ printf "| `%s` | %s | %s | %s | %s | %s |\n",
                $1, $2, $3, $4, $5, $6 }' "$TMP/table"
  if [ -n "$NOTES" ]; then
    echo
    printf '%s' "$NOTES" | sed 's/^/- /'
  fi
  cat <<'EOF'

## Method

- Every program is in `bench/`, one per topic, built with `-O2 -DNDEBUG`
  into `build-bench/bench/`; each prints `key value unit` lines and can be
  run alone (its header comment gives its arguments). Hive figures are
  timed inside the queen's task unless said otherwise, so they leave out
  spawning and shutting down the hive (startup_ms measures those).
- The floor is measured by `bench_floor` in the same run, on the hive's own
  transport, an AF_UNIX stream socketpair. Placement matters a lot on a
  virtual machine: a wake-up across CPUs can cost far more than one on the
  same CPU, and where the scheduler puts a pair of processes changes from
  run to run. So the hive and the floor are measured in the same pinned
  placement, both processes on one CPU (where the scheduler puts
  ping-pong pairs anyway), and the targets' ratios compare those:
  `delegate_seq_ratio` and `payload_ratio_*`. The unpinned figures (as
  users run) and, for round trips, the cross-CPU ones are given too; an
  unpinned ratio means something only when both sides landed alike.
- Payload figures count the bin's bytes both ways (to the worker and back)
  per second; the floor streams frames of the same size one way. Both move
  each byte through the kernel once per direction.
- `queen_bytes_per_inflight`: in the queen's task, read VmRSS
  (`/proc/self/statm`), call `bh_group_delegate` 1,000,000 times without
  yielding (so no answer can arrive and every delegation is in flight:
  future, delegation record, backlog entry, and the offers to the worker's
  free slots queued in the channel's output buffer), read VmRSS again, and
  divide the growth by 1,000,000; then free the group (the delegations are
  forgotten) and end the hive. `queen_heap_bytes_per_inflight` is the same
  growth counted by malloc, which does not depend on which pages were
  touched.
- `worker_idle_*`: the queen delegates `pid` then `noop` to a fresh worker
  and reads `/proc/<pid>/status` and `smaps_rollup` of the worker, idle
  between tasks. A fork-started worker's RSS includes the pages it shares
  with the queen copy-on-write; its Pss divides those by their sharers.
- `fiber_*` use the internal scheduler directly (`src/runtime/fiber.h`), no loop.
- `bench_remote` and `bench_hosts` make their hosts as network namespaces
  joined to this one by veth links (`tests/netns.h`; root only: elsewhere
  they print a `skipped:` line, listed under the figures). The 1 ms link
  is `bench/relay.c`, a process that forwards each connection and writes
  every chunk it read 1 ms later (a timerfd per direction), in place of
  `tc netem`, which this kernel lacks. The joined workers are the program
  itself or `predict --join`, exec'd; the `hosts_*` rows/s are predict's
  own, the joiners' start included.
- The peer is Debian's `/usr/bin/python3` when present.
EOF
  echo
  echo "$MARKER"
  printf '%s\n' "$kept"
} >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
echo "bench.sh: wrote $DOC" >&2

[ -z "$FAILED" ] || { echo "bench.sh: failed:$FAILED" >&2; exit 1; }
exit 0
