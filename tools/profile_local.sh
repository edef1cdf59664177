#!/usr/bin/env bash
# README's first command: profile the vLLM-shaped sample workload locally,
# with the probe injected exactly as the webhook injects it (PYTHONPATH +
# VLLM_PROFILER_* env), streamed to a local collector.
#
#   tools/profile_local.sh [--steps N] [--start-step S] [--num-steps K]
#                          [--spawn 2 | --fork 2] [--out DIR]
#
# Defaults: 200 steps, the seed's window (step 100, 50 steps). Prints where
# the trace is, how to open it, and a short summary (top operators by self
# time, step durations).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STEPS=200 START=100 NUM=50 OUT="${TMPDIR:-/tmp}/vllm-profiler-local" EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    --start-step) START=$2; shift 2 ;;
    --num-steps) NUM=$2; shift 2 ;;
    --spawn|--fork) EXTRA+=("$1" "$2"); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

echo "== installing dependencies (tools/install_deps.sh)"
tools/install_deps.sh >/dev/null

BAZEL=(bazel)
[ -n "${VP_BAZEL_OUTPUT_BASE:-}" ] && BAZEL+=(--output_base="$VP_BAZEL_OUTPUT_BASE")
echo "== building the probe bundle, the collector and vpctl"
"${BAZEL[@]}" build --jobs="${VP_JOBS:-2}" //probe:probe_bundle //collector:collector >/dev/null 2>&1 || {
  "${BAZEL[@]}" build --jobs="${VP_JOBS:-2}" //probe:probe_bundle //collector:collector; exit 1; }
HAVE_VPCTL=0
"${BAZEL[@]}" build --jobs="${VP_JOBS:-2}" //collector/vpctl:vpctl >/dev/null 2>&1 && HAVE_VPCTL=1
BIN=$("${BAZEL[@]}" info bazel-bin 2>/dev/null)

rm -rf "$OUT" && mkdir -p "$OUT/profiler" "$OUT/traces"
# The probe folder, as the init container lays it out in /home/vllm/profiler.
tar -xf "$BIN/probe/probe_bundle.tar" -C "$OUT/profiler"

if [ "$HAVE_VPCTL" = 1 ] && [ -z "${VP_NO_VPCTL:-}" ]; then
  # `vpctl run` injects the probe the webhook's way (PYTHONPATH +
  # VLLM_PROFILER_*), runs a private collector, fetches and summarizes.
  echo "== vpctl run: sample workload, $STEPS steps, capture steps $START..$((START + NUM - 1))"
  exec "$BIN/collector/vpctl/vpctl" run --start-step "$START" --steps "$NUM" \
    --collector "$BIN/collector/collector" --probe-dir "$OUT/profiler" \
    -o "$OUT/trace.json" -- \
    /usr/bin/python3 "$ROOT/tests/sample_workload/run_workload.py" --steps "$STEPS" "${EXTRA[@]}"
fi
# Fallback without vpctl: the same flow by hand.
SOCK="$OUT/collector.sock"
if [ ${#SOCK} -gt 100 ]; then SOCK=$(mktemp -u /tmp/vp-XXXXXX.sock); fi

echo "== starting the collector"
"$BIN/collector/collector" --probe_socket="$SOCK" --grpc_address=127.0.0.1:0 \
  --http_address=127.0.0.1:0 --trace_dir="$OUT/traces" \
  --port_file="$OUT/ports.json" --window_linger_ms=500 2>"$OUT/collector.log" &
COLLECTOR=$!
trap 'kill $COLLECTOR 2>/dev/null || true; wait $COLLECTOR 2>/dev/null || true' EXIT
for _ in $(seq 1 200); do [ -s "$OUT/ports.json" ] && break; sleep 0.05; done
[ -s "$OUT/ports.json" ] || { cat "$OUT/collector.log"; echo "collector did not start"; exit 1; }
HTTP_PORT=$(/usr/bin/python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["http_port"])' "$OUT/ports.json")

echo "== running the sample workload under the probe ($STEPS steps, capture steps $START..$((START + NUM - 1)))"
PYTHONPATH="$OUT/profiler" VLLM_PROFILER_SOCKET="$SOCK" \
VLLM_PROFILER_START_STEP="$START" VLLM_PROFILER_NUM_STEPS="$NUM" \
  /usr/bin/python3 tests/sample_workload/run_workload.py --steps "$STEPS" "${EXTRA[@]}"

echo "== fetching the trace"
ID=""
for _ in $(seq 1 100); do
  ID=$(curl -fsS "http://127.0.0.1:$HTTP_PORT/traces" 2>/dev/null |
       /usr/bin/python3 -c 'import json,sys
t=[x for x in json.load(sys.stdin).get("traces",[]) if x.get("complete",True)]
print(t[0]["id"] if t else "")' 2>/dev/null || true)
  [ -n "$ID" ] && break
  sleep 0.1
done
[ -n "$ID" ] || { cat "$OUT/collector.log"; echo "no trace arrived"; exit 1; }
TRACE="$OUT/$ID.json"
curl -fsS "http://127.0.0.1:$HTTP_PORT/traces/$ID" -o "$TRACE"

echo
echo "Trace: $TRACE"
echo "Open it in the Perfetto UI (https://ui.perfetto.dev, \"Open trace file\") or chrome://tracing (\"Load\")."
echo
/usr/bin/python3 - "$TRACE" <<'PY'
import collections, json, sys
events = json.load(open(sys.argv[1]))
if isinstance(events, dict):
    events = events.get("traceEvents", [])
spans = [e for e in events if e.get("ph") == "X"]
steps = [e for e in spans if e.get("cat") in ("step", "STEP") or
         str(e.get("name", "")).startswith(("execute_model", "Worker.execute_model"))]
ops = [e for e in spans if e not in steps and e.get("cat") in ("cpu_op", "CPU_OP", "operator")]
if not ops:
    ops = [e for e in spans if e not in steps]
# Self time: duration minus direct children on the same thread.
by_thread = collections.defaultdict(list)
for e in ops:
    by_thread[(e.get("pid"), e.get("tid"))].append(e)
self_us = collections.Counter()
count = collections.Counter()
for evs in by_thread.values():
    evs.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
    stack = []
    for e in evs:
        while stack and stack[-1]["ts"] + stack[-1].get("dur", 0) <= e["ts"]:
            stack.pop()
        if stack:
            self_us[stack[-1]["name"]] -= e.get("dur", 0)
        self_us[e["name"]] += e.get("dur", 0)
        count[e["name"]] += 1
        stack.append(e)
pids = sorted(set(e.get("pid") for e in steps))
print("Steps captured: %d (processes: %s)" % (len(steps), ", ".join(map(str, pids))))
if steps:
    d = sorted(e.get("dur", 0) / 1000.0 for e in steps)
    print("Step duration ms: min %.3f  median %.3f  p90 %.3f  max %.3f"
          % (d[0], d[len(d) // 2], d[int(len(d) * 0.9)], d[-1]))
print("Top operators by self time:")
print("  %-32s %8s %12s" % ("operator", "calls", "self ms"))
for name, us in self_us.most_common(10):
    print("  %-32s %8d %12.3f" % (name[:32], count[name], us / 1000.0))
PY
