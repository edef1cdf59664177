#!/usr/bin/env bash
# README's first command: profile the vLLM-shaped sample workload locally,
# with the probe injected exactly as the webhook injects it (PYTHONPATH +
# VLLM_PROFILER_* env), streamed to a local collector.
#
#   tools/profile_local.sh [--steps N] [--start-step S] [--num-steps K]
#                          [--vllm-api 0.10|0.11|async|pooling]
#                          [--layout inline|engine-core|ray] [--tp N]
#                          [--spawn 2 | --fork 2] [--out DIR]
#
# Defaults: 200 steps of today's vLLM shape (execute_model + sample_tokens),
# the default window (step 100, 50 steps). Prints where the trace is, how to
# open it, and a short summary (step time split into execute_model,
# sample_tokens and the engine's gap; top operators by self time).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STEPS=200 START=100 NUM=50 OUT="${TMPDIR:-/tmp}/vllm-profiler-local" EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) STEPS=$2; shift 2 ;;
    --start-step) START=$2; shift 2 ;;
    --num-steps) NUM=$2; shift 2 ;;
    --spawn|--fork|--vllm-api|--layout|--tp) EXTRA+=("$1" "$2"); shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

echo "== installing dependencies (tools/install_deps.sh)"
tools/install_deps.sh >/dev/null

BAZEL=(bazel)
[ -n "${VP_BAZEL_OUTPUT_BASE:-}" ] && BAZEL+=(--output_base="$VP_BAZEL_OUTPUT_BASE")
echo "== building the probe bundle, the collector and vpctl"
TARGETS=(//probe:probe_bundle //collector:collector //collector/vpctl:vpctl)
"${BAZEL[@]}" build --jobs="${VP_JOBS:-2}" "${TARGETS[@]}" >/dev/null 2>&1 || {
  "${BAZEL[@]}" build --jobs="${VP_JOBS:-2}" "${TARGETS[@]}"; exit 1; }
BIN=$("${BAZEL[@]}" info bazel-bin 2>/dev/null)

rm -rf "$OUT" && mkdir -p "$OUT/profiler"
# The probe folder, as the init container lays it out in /home/vllm/profiler.
tar -xf "$BIN/probe/probe_bundle.tar" -C "$OUT/profiler"

# `vpctl run` injects the probe the webhook's way (PYTHONPATH +
# VLLM_PROFILER_*), runs a private collector, fetches and summarizes.
echo "== vpctl run: sample workload, $STEPS steps, capture steps $START..$((START + NUM - 1))"
exec "$BIN/collector/vpctl/vpctl" run --start-step "$START" --steps "$NUM" \
  --collector "$BIN/collector/collector" --probe-dir "$OUT/profiler" \
  -o "$OUT/trace.json" -- \
  /usr/bin/python3 "$ROOT/tests/sample_workload/run_workload.py" --steps "$STEPS" "${EXTRA[@]}"
