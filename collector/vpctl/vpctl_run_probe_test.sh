#!/bin/bash
# `vpctl run` with the real probe bundle on the vLLM-shaped sample workload:
# the README's local quick start, as a test.
set -uo pipefail
R="${TEST_SRCDIR}/vllm_profiler"
T="$(mktemp -d /tmp/vpctl_run_test.XXXXXX)"
trap 'rm -rf "$T"' EXIT
cd "$T"
"$R/collector/vpctl/vpctl" run --start-step 3 --steps 4 -o "$T/t.json" -- \
  /usr/bin/python3 "$R/tests/sample_workload/run_workload.py" --steps 10 \
  >out.txt 2>err.txt
rc=$?
cat out.txt err.txt
[[ $rc == 0 ]] || { echo "FAIL: exit $rc"; exit 1; }
grep -q "^vpctl: trace written to $T/t.json (.*, 1 process(es), complete)" out.txt ||
  { echo "FAIL: no trace line"; exit 1; }
grep -q "^Steps (Worker.execute_model+sample_tokens): 4 " out.txt || { echo "FAIL: steps"; exit 1; }
for part in execute_model sample_tokens "gap (engine)"; do
  grep -q "^  $part  " out.txt || { echo "FAIL: step split has no $part row"; exit 1; }
done
grep -q "aten::mm" out.txt || { echo "FAIL: no aten::mm"; exit 1; }
/usr/bin/python3 - "$T/t.json" <<'PY' || { echo "FAIL: trace content"; exit 1; }
import json, sys
d = json.load(open(sys.argv[1]))
ev = d["traceEvents"]
steps = [e for e in ev if e.get("cat") == "step"]
ops = [e for e in ev if e.get("cat") == "cpu_op"]
assert len(steps) == 4, len(steps)
assert len(ops) > 10, len(ops)
PY
echo PASS
