#!/usr/bin/env bash
# Dry run of coexist_check.py (the CUDA-graph and coexistence checks) here:
# the real probe bundle in Debian's python with torch, the real collector.
# Without a GPU the kernel checks are reported, not required; what must hold
# here: the workloads run, a capture under torch.profiler leaves CUPTI to it
# with the reason in the trace.
set -euo pipefail
BUNDLE_TAR="$1" COLLECTOR="$2"
T="$(mktemp -d /tmp/vp-cx.XXXXXX)"
trap 'kill $CPID 2>/dev/null || true; rm -rf "$T"' EXIT
mkdir -p "$T/probe" "$T/traces"
tar -xf "$BUNDLE_TAR" -C "$T/probe"
"$COLLECTOR" --probe_socket="$T/c.sock" --grpc_address=127.0.0.1:0 \
  --http_address=127.0.0.1:0 --trace_dir="$T/traces" \
  --port_file="$T/ports.json" --window_linger_ms=300 2>"$T/collector.log" &
CPID=$!
for _ in $(seq 1 200); do [ -s "$T/ports.json" ] && break; sleep 0.05; done
PYTHON=/usr/bin/python3
"$PYTHON" "$(dirname "$0")/coexist_check.py" --probe-dir "$T/probe" \
  --socket "$T/c.sock" --trace-dir "$T/traces" --out "$T/out" --allow-cpu
