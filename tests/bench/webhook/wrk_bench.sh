#!/usr/bin/env bash
# wrk over TLS keep-alive against the webhook binary with a real
# AdmissionReview (the plain vLLM golden pod, injected):
#   1. fixed offered load, 1,000 req/s (paced_mutate.lua), 30 s
#   2. saturation (no pacing), 20 s
# Usage: bazel run //tests/bench/webhook:wrk_bench [-- DURATION_FIXED DURATION_SAT]
set -euo pipefail
WEBHOOK="$(pwd)/$1"
D1="${2:-30}"
D2="${3:-20}"
HERE="$(pwd)/tests/bench/webhook"
BODY="$(pwd)/webhook/testdata/golden/01_plain_vllm.review.json"
T=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$T"' EXIT
"$WEBHOOK" gen-certs --out_dir="$T/certs" --extra_sans=localhost,127.0.0.1 2>/dev/null
"$WEBHOOK" serve --listen_address=127.0.0.1:0 --port_file="$T/port" \
  --tls_cert_file="$T/certs/tls.crt" --tls_key_file="$T/certs/tls.key" \
  --log_level=WARNING --threads="${WEBHOOK_THREADS:-2}" 2>"$T/log" &
PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT=$(sed 's/[^0-9]//g' "$T/port")
URL="https://127.0.0.1:$PORT"
echo "webhook pid $PID port $PORT, $(nproc) cores, load average $(cut -d" " -f1-3 /proc/loadavg); body $(wc -c < "$BODY") bytes"
# warm-up
BODY_FILE="$BODY" RATE=0 THREADS=1 wrk -t1 -c2 -d2s -s "$HERE/paced_mutate.lua" "$URL" >/dev/null
echo "== fixed load 1000 req/s: wrk -t2 -c16 -d${D1}s (paced)"
BODY_FILE="$BODY" RATE=1000 THREADS=2 wrk -t2 -c16 -d"${D1}s" --latency \
  -s "$HERE/paced_mutate.lua" "$URL" | grep RESULT
echo "== baseline GET /healthz, fixed load 1000 req/s: wrk -t2 -c16 -d${D1}s (paced)"
BASELINE=1 BODY_FILE="$BODY" RATE=1000 THREADS=2 wrk -t2 -c16 -d"${D1}s" --latency \
  -s "$HERE/paced_mutate.lua" "$URL" | grep RESULT
echo "== saturation: wrk -t2 -c16 -d${D2}s"
BODY_FILE="$BODY" RATE=0 THREADS=2 wrk -t2 -c16 -d"${D2}s" --latency \
  -s "$HERE/paced_mutate.lua" "$URL" | grep RESULT
echo "== baseline GET /healthz, saturation: wrk -t2 -c16 -d${D2}s"
BASELINE=1 BODY_FILE="$BODY" RATE=0 THREADS=2 wrk -t2 -c16 -d"${D2}s" --latency \
  -s "$HERE/paced_mutate.lua" "$URL" | grep RESULT
echo "== saturation: wrk -t1 -c4 -d${D2}s"
BODY_FILE="$BODY" RATE=0 THREADS=1 wrk -t1 -c4 -d"${D2}s" --latency \
  -s "$HERE/paced_mutate.lua" "$URL" | grep RESULT
grep -E "ERROR|WARN" "$T/log" | head -5 || true
