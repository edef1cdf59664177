#!/bin/bash
# vpctl end to end: a real collector process fed by the synthetic probe.
set -uo pipefail

R="${TEST_SRCDIR}/vllm_profiler"
VPCTL="$R/collector/vpctl/vpctl"
COLLECTOR="$R/collector/collector"
SYNTH="$R/tests/synthetic_probe/synthetic_probe"
# A short folder: Unix socket paths are limited to 108 bytes.
T="$(mktemp -d /tmp/vpctl_test.XXXXXX)"
CPID=""
cleanup() {
  if [[ -n "$CPID" ]]; then kill "$CPID" 2>/dev/null; wait "$CPID" 2>/dev/null; fi
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- collector log (tail) ---"
  tail -20 "$T/collector.log"
  exit 1
}
contains() {  # contains TEXT NEEDLE
  [[ "$1" == *"$2"* ]] || fail "expected to find '$2' in: $1"
}

mkdir -p "$T/traces"
# As the webhook injects it (the pod's status annotation).
VLLM_PROFILER_INJECTION='{"containers":["vllm"],"pythonHook":{"vllm":"usercustomize"},"skipped":{"sidecar":"its image, command and args do not name vLLM"},"version":"0.1.0"}' \
"$COLLECTOR" --probe_socket="$T/c.sock" --grpc_address=127.0.0.1:0 \
  --http_address=127.0.0.1:0 --trace_dir="$T/traces" \
  --port_file="$T/ports.json" --window_linger_ms=200 >"$T/collector.log" 2>&1 &
CPID=$!
for _ in $(seq 200); do [[ -s "$T/ports.json" ]] && break; sleep 0.05; done
GRPC_PORT="$(sed -E 's/.*"grpc_port":([0-9]+).*/\1/' "$T/ports.json")"
[[ "$GRPC_PORT" =~ ^[0-9]+$ ]] || fail "no port file"
ADDR="127.0.0.1:$GRPC_PORT"
V() { "$VPCTL" --addr "$ADDR" "$@"; }

echo "== empty list"
out="$(V list)" || fail "list failed"
[[ "$out" == "No traces yet." ]] || fail "unexpected list: $out"

echo "== a synthetic capture shows up in the list"
"$SYNTH" --socket="$T/c.sock" --events=5000 --pid_base=4242 >/dev/null ||
  fail "synthetic probe failed"
for _ in $(seq 100); do V list | grep -q '^trace4242 ' && break; sleep 0.1; done
out="$(V list)"
contains "$out" "ID         SIZE"
line="$(grep '^trace4242 ' <<<"$out")" || fail "trace4242 not listed: $out"
[[ "$line" =~ ^trace4242\ +[0-9.]+\ (KiB|MiB)\ +4242\ +[0-9]+\ +yes\ +20[0-9-]+\  ]] ||
  fail "bad list line: $line"

echo "== fetch: plain, gzip, stdout"
V fetch trace4242 -o "$T/out.json" 2>"$T/err" || fail "fetch: $(cat "$T/err")"
contains "$(cat "$T/err")" "vpctl: wrote $T/out.json ("
cmp "$T/out.json" "$T/traces/trace4242.json" || fail "plain fetch differs"
V fetch trace4242 -o "$T/out.json.gz" 2>/dev/null || fail "gzip fetch"
gunzip -c "$T/out.json.gz" | cmp - "$T/traces/trace4242.json" ||
  fail "gzip fetch differs"
V fetch trace4242 -o - | cmp - "$T/traces/trace4242.json" ||
  fail "stdout fetch differs"
(cd "$T" && "$VPCTL" --addr "$ADDR" fetch trace4242 2>/dev/null) ||
  fail "fetch to the default name"
cmp "$T/trace4242.json" "$T/traces/trace4242.json" || fail "default name"
ls "$T" | grep -q partial && fail "a partial file was left behind"

echo "== unknown id"
if V fetch nosuch -o "$T/x.json" 2>"$T/err"; then fail "fetch nosuch succeeded"; fi
contains "$(cat "$T/err")" "vpctl: NOT_FOUND: "
[[ ! -e "$T/x.json" ]] || fail "output created for an unknown id"

echo "== unreachable collector"
if "$VPCTL" --addr 127.0.0.1:1 list 2>"$T/err"; then fail "list succeeded"; fi
contains "$(cat "$T/err")" "vpctl: cannot reach collector at 127.0.0.1:1: "

echo "== status"
out="$(V status)" || fail "status failed"
contains "$out" "disk: $T/traces  1/"
contains "$out" "probes (0):"
contains "$out" "webhook: injected vllm (usercustomize)
  skipped sidecar: its image, command and args do not name vLLM"

echo "== capture without probes"
if V capture --steps 3 2>"$T/err"; then fail "capture without probes"; fi
contains "$(cat "$T/err")" "vpctl: FAILED_PRECONDITION: "

echo "== capture without --wait, and for an unknown pid"
"$SYNTH" --socket="$T/c.sock" --wait_for_command --events=1000 \
  --pid_base=5000 >/dev/null &
SP=$!
for _ in $(seq 100); do V status | grep -q '^  5000 ' && break; sleep 0.1; done
if V capture --steps 2 --pids 4999 2>"$T/err"; then fail "capture for pid 4999"; fi
contains "$(cat "$T/err")" "vpctl: NOT_FOUND: no connected probe with pid 4999"
if V capture --steps 2 --pids 12x 2>"$T/err"; then fail "capture --pids 12x"; fi
contains "$(cat "$T/err")" "vpctl: --pids: '12x' is not a pid"
out="$(V capture --steps 2 --pids 5000)" || fail "capture without --wait"
contains "$out" "started on pids 5000"
contains "$out" "see \`vpctl list\` for the trace"
wait "$SP" || fail "synthetic probe (command mode, no wait) failed"

echo "== capture --wait -o with a probe waiting for the command"
"$SYNTH" --socket="$T/c.sock" --wait_for_command --events=3000 \
  --pid_base=5555 >/dev/null &
SP=$!
for _ in $(seq 100); do V status | grep -q '^  5555 ' && break; sleep 0.1; done
out="$(V capture --steps 3 --no-gpu --wait --timeout-ms 30000 -o "$T/cap.json" 2>&1)" ||
  fail "capture: $out"
contains "$out" "started on pids 5555"
wait "$SP" || fail "synthetic probe (command mode) failed"
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["traceEvents"]' \
  "$T/cap.json" || fail "captured trace is not JSON"

echo "== 16 concurrent probes, then 16 concurrent downloads"
"$SYNTH" --socket="$T/c.sock" --processes=16 --events=3000 --pid_base=6000 \
  >/dev/null || fail "16-process synthetic probe failed"
ID="trace6000_6001_6002_6003_and12more"
for _ in $(seq 100); do V list | grep -q "^$ID " && break; sleep 0.1; done
V list | grep -q "^$ID .* yes " || fail "16-process trace not listed: $(V list)"
pids=()
for i in $(seq 16); do
  V fetch "$ID" -o "$T/par$i.json.gz" 2>/dev/null &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent download failed"; done
for i in $(seq 16); do
  gunzip -c "$T/par$i.json.gz" | cmp - "$T/traces/$ID.json" ||
    fail "concurrent download $i differs"
done
rm -f "$T"/par*.json.gz

echo "== delete"
out="$(V delete trace4242)" || fail "delete"
[[ "$out" == "deleted trace4242" ]] || fail "delete said: $out"
V list | grep -q '^trace4242 ' && fail "still listed after delete"
if V delete trace4242 2>"$T/err"; then fail "second delete succeeded"; fi
contains "$(cat "$T/err")" "vpctl: NOT_FOUND: "

echo "== usage errors"
"$VPCTL" frobnicate 2>"$T/err"; [[ $? == 2 ]] || fail "bad command exit code"
contains "$(cat "$T/err")" "vpctl: unknown command 'frobnicate'"
"$VPCTL" fetch 2>"$T/err"; [[ $? == 2 ]] || fail "fetch without id"
contains "$(cat "$T/err")" "'vpctl fetch' needs a trace ID"

echo "== vpctl run with the synthetic probe as the command"
mkdir -p "$T/run" "$T/probe"
(cd "$T/run" && "$VPCTL" run --probe-dir "$T/probe" -- "$SYNTH" --events=4000 \
  >out.txt 2>err.txt) || fail "vpctl run: $(cat "$T/run/err.txt")"
out="$(cat "$T/run/out.txt")"
contains "$out" "vpctl: trace written to ./trace"
contains "$out" "open it in https://ui.perfetto.dev"
contains "$out" "Steps (execute_model): 13"
contains "$out" "Top CPU operators by self time:"
contains "$out" "aten::mm"
contains "$out" "Top GPU kernels by time:"
name="$(sed -nE 's|^vpctl: trace written to \./(trace[0-9]+\.json) .*|\1|p' <<<"$out")"
[[ -s "$T/run/$name" ]] || fail "run did not leave $name: $(ls "$T/run")"
contains "$(cat "$T/run/err.txt")" "vpctl: command exited with status 0"

echo "== vpctl run -o, window flags reach the command's environment"
"$VPCTL" run --collector "$COLLECTOR" --probe-dir "$T/probe" --start-step 7 \
  --steps 3 --no-gpu -o "$T/named.json" -- /bin/sh -c \
  'echo "$PYTHONPATH $VLLM_PROFILER_START_STEP $VLLM_PROFILER_NUM_STEPS $VLLM_PROFILER_GPU" >"'"$T"'/env.txt"; exec "'"$SYNTH"'" --events=500' \
  >"$T/run2.txt" 2>&1 || fail "vpctl run -o: $(cat "$T/run2.txt")"
[[ -s "$T/named.json" ]] || fail "no $T/named.json"
[[ "$(cat "$T/env.txt")" == "$T/probe"* ]] || fail "PYTHONPATH: $(cat "$T/env.txt")"
contains "$(cat "$T/env.txt")" " 7 3 0"

echo "== vpctl run: a command that captures nothing, and its exit code"
"$VPCTL" run --probe-dir "$T/probe" -- /bin/sh -c 'exit 3' >"$T/run3.txt" 2>&1
[[ $? == 3 ]] || fail "exit code not passed through: $(cat "$T/run3.txt")"
contains "$(cat "$T/run3.txt")" "vpctl: no trace was captured."
"$VPCTL" run --probe-dir "$T/probe" -- /nonexistent/cmd >"$T/run4.txt" 2>&1
[[ $? != 0 ]] || fail "missing command succeeded"
contains "$(cat "$T/run4.txt")" "vpctl: cannot run /nonexistent/cmd: "

echo "PASS"
