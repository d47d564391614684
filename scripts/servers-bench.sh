#!/usr/bin/env bash
# servers-bench.sh [BUILD_DIR] - what the test servers manage alone on
# loopback, measured with wrk (Debian's; installed if missing): nginx with
# 256 and 1,024 connections on /delay/20/ (the rows benchmark's server: it
# must sustain well above 0.8 x in-flight / 20 ms), and on a file at once;
# small GETs with keep-alive from s3rver alone and through the SigV4 proxy.
# Starts the servers with BUILD_DIR/tests/helpers/servers_up (default
# build/) and stops them at the end. Prints one line per run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
secs=${SECS:-5}
sh scripts/deps.sh wrk >/dev/null

docroot=$(mktemp -d /tmp/bh-bench-docroot-XXXXXX)
trap 'rm -rf "$docroot"' EXIT
chmod 755 "$docroot"
printf 'hello\n' > "$docroot/small.txt"

# wrk -c C URL [header...]: "req/s  latency avg  p99"
measure() {
  local c=$1 url=$2
  shift 2
  local args=() h
  for h in "$@"; do args+=(-H "$h"); done
  wrk -t$((c < 2 ? 1 : 2)) -c"$c" -d"${secs}s" --latency "${args[@]}" "$url" |
    awk '/^ +Latency +[0-9]/{avg=$2} /^ +99%/{p99=$2}
         /Requests\/sec/{rps=$2} /Non-2xx/{bad=$NF}
         END{printf "%10.0f req/s  latency avg %s p99 %s%s\n", rps, avg,
             p99, bad ? "  NON-2xx: " bad : ""}'
}

# Runs servers_up with its arguments as a coprocess; sets the variables
# it prints.
up() {
  coproc UP { "$build/tests/helpers/servers_up" "$@"; }
  local line
  while read -r line <&"${UP[0]}"; do
    [ "$line" = ready ] && return 0
    export "${line?}"
  done
  echo "servers-bench.sh: servers_up failed" >&2
  exit 1
}
down() {
  local pid=$UP_PID
  eval "exec ${UP[1]}>&-"
  wait "$pid" || true
}

for workers in 1 2; do
  up --http "$docroot" --workers "$workers"
  for c in 256 1024; do
    echo "nginx $workers worker(s), $c conns, /delay/20/: $(measure "$c" \
      "$HTTP_BASE/delay/20/small.txt")  (0.8 x c / 20 ms = $((c * 40)) req/s)"
  done
  echo "nginx $workers worker(s), 64 conns, file at once: $(measure 64 \
    "$HTTP_BASE/small.txt")"
  down
done

up --s3 bench
curl -s -X PUT --data-binary hello "$S3_STORE/$S3_BUCKET/small" >/dev/null
for c in 1 16 64; do
  echo "s3rver alone, $c conns, GET 5 B: $(measure "$c" \
    "$S3_STORE/$S3_BUCKET/small")"
done
# One signature, replayed: S3 (and the proxy) take it for 15 minutes.
mapfile -t signed < <(/usr/bin/python3 - "$S3_ENDPOINT/$S3_BUCKET/small" <<'EOF'
import os, sys
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
r = AWSRequest(method="GET", url=sys.argv[1])
S3SigV4Auth(Credentials(os.environ["S3_ACCESS_KEY"],
                        os.environ["S3_SECRET_KEY"]),
            "s3", os.environ["S3_REGION"]).add_auth(r)
for k, v in r.headers.items():
    print(f"{k}: {v}")
EOF
)
for c in 1 16 64; do
  echo "proxy + s3rver, $c conns, GET 5 B: $(measure "$c" \
    "$S3_ENDPOINT/$S3_BUCKET/small" "${signed[@]}")"
done
echo "proxy stats: $(curl -s "$S3_ENDPOINT/__proxy/stats")"
down
