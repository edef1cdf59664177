#!/bin/bash
# Builds the collector and the synthetic probe, then runs bench.py.
#   tests/bench/collector_e2e/run.sh [bench.py flags, e.g. --repeat 1]
# Set OUTPUT_BASE to use a private Bazel output base.
set -euo pipefail
cd "$(dirname "$0")/../../.."
BAZEL=(bazel)
[[ -n "${OUTPUT_BASE:-}" ]] && BAZEL=(bazel "--output_base=$OUTPUT_BASE")
"${BAZEL[@]}" build --jobs=2 //collector //tests/synthetic_probe >&2
BIN="$("${BAZEL[@]}" info bazel-bin 2>/dev/null)"
exec /usr/bin/python3 tests/bench/collector_e2e/bench.py \
  --collector "$BIN/collector/collector" \
  --synthetic_probe "$BIN/tests/synthetic_probe/synthetic_probe" "$@"
