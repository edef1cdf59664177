#!/usr/bin/env bash
# Collector throughput, memory and time-to-downloadable, end to end over the
# Unix socket: the synthetic probe streams N events (one process), the real
# collector binary writes the trace. Prints events/s, JSON MB/s next to
# `cat` of the same file, the collector's CPU time, peak RSS (VmHWM) and the
# time from the probe's last message to the trace being listed.
#
#   tests/bench/collector/collector_throughput.sh [EVENTS] [BATCH_EVENTS]
#
# Builds //collector:collector and //tests/synthetic_probe:synthetic_probe
# with the output base in $VP_OUTPUT_BASE (default: bazel's).
set -euo pipefail
cd "$(dirname "$0")/../../.."
EVENTS=${1:-2000000}
BATCH=${2:-2000}
OB=${VP_OUTPUT_BASE:+--output_base=$VP_OUTPUT_BASE}
bazel ${OB} build --experimental_convenience_symlinks=ignore -c opt \
  //collector:collector //tests/synthetic_probe:synthetic_probe >/dev/null 2>&1
BIN=$(bazel ${OB} info -c opt bazel-bin 2>/dev/null)
COLLECTOR=$BIN/collector/collector
PROBE=$BIN/tests/synthetic_probe/synthetic_probe

WORK=$(mktemp -d /tmp/vpbench-XXXXXX)
trap 'kill $CPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$COLLECTOR" --probe_socket="$WORK/c.sock" --grpc_address=127.0.0.1:0 \
  --http_address=127.0.0.1:0 --trace_dir="$WORK/traces" \
  --port_file="$WORK/ports" --window_linger_ms=0 --log_level=warning &
CPID=$!
for _ in $(seq 100); do [ -s "$WORK/ports" ] && break; sleep 0.05; done
HTTP=$(sed 's/.*"http_port":\([0-9]*\).*/\1/' "$WORK/ports")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$CPID/stat"; }
TICKS0=$(cpu_ticks)
T0=$(date +%s.%N)
"$PROBE" --socket="$WORK/c.sock" --events="$EVENTS" --batch_events="$BATCH" \
  --pid_base=4242 >"$WORK/probe.out"
T1=$(date +%s.%N)
# Poll until the trace is listed (downloadable).
until curl -sf "http://127.0.0.1:$HTTP/traces" | grep -q '"id"'; do sleep 0.005; done
T2=$(date +%s.%N)
TICKS1=$(cpu_ticks)
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$CPID/status")
FILE=$(ls "$WORK"/traces/*.json* | head -1)
BYTES=$(stat -c %s "$FILE")
# Baseline in the same run: cat of the same bytes (page cache warm).
C0=$(date +%s.%N); cat "$FILE" >/dev/null; C1=$(date +%s.%N)
D0=$(date +%s.%N); curl -s -o "$WORK/dl.json" "http://127.0.0.1:$HTTP/traces/trace4242"; D1=$(date +%s.%N)
cmp -s "$FILE" "$WORK/dl.json" || { echo "download differs"; exit 1; }
/usr/bin/python3 - "$FILE" <<'PY' >"$WORK/check"
import json, sys
j = json.load(open(sys.argv[1]))
print(len(j["traceEvents"]), j["metadata"]["complete"], j["metadata"]["events_received"])
PY
HZ=$(getconf CLK_TCK)
awk -v ev="$EVENTS" -v t0="$T0" -v t1="$T1" -v t2="$T2" -v by="$BYTES" \
    -v c0="$C0" -v c1="$C1" -v d0="$D0" -v d1="$D1" -v k0="$TICKS0" -v k1="$TICKS1" \
    -v hz="$HZ" -v hwm="$HWM" -v check="$(cat "$WORK/check")" 'BEGIN {
  e2e = t2 - t0; cpu = (k1 - k0) / hz;
  printf "events:                 %d (trace events, complete, received: %s)\n", ev, check;
  printf "end to end:             %.3f s  -> %.0f events/s, %.1f MB/s of JSON\n", e2e, ev / e2e, by / e2e / 1e6;
  printf "collector CPU:          %.3f s  -> %.0f events per CPU-second\n", cpu, ev / cpu;
  printf "trace size:             %.1f MB (%.1f bytes/event)\n", by / 1e6, by / ev;
  printf "cat of the same file:   %.3f s  (%.0f MB/s)\n", c1 - c0, by / (c1 - c0) / 1e6;
  printf "HTTP download:          %.3f s  (%.0f MB/s)\n", d1 - d0, by / (d1 - d0) / 1e6;
  printf "probe done -> listed:   %.0f ms\n", (t2 - t1) * 1000;
  printf "collector peak RSS:     %.1f MiB\n", hwm / 1024;
}'
cat "$WORK/probe.out"
