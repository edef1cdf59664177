#!/usr/bin/env bash
# The whole test suite, as README.md's second command and CI run it:
# installs missing Debian packages, then runs every Bazel test in the default
# configuration, again under AddressSanitizer + UBSan, and under
# ThreadSanitizer (tests that run Debian's uninstrumented gRPC/abseil
# synchronization are tagged no_tsan). Prints one closing line
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh || { echo "install_deps failed"; exit 1; }

passed=0
failed=0
run_config() {
  local label="$1"; shift
  local log
  log=$(mktemp)
  echo "== bazel test $* //... ($label)"
  bazel test "$@" //... 2>&1 | tee "$log" | grep -E '(PASSED|FAILED|TIMEOUT|NO STATUS|FLAKY)|^ERROR|Executed' || true
  local rc=${PIPESTATUS[0]}
  local p f
  p=$(grep -cE '^//.* (PASSED|FLAKY)' "$log")
  f=$(grep -cE '^//.* (FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)' "$log")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    # Build or analysis failure before any test ran.
    f=1
    tail -40 "$log"
  fi
  passed=$((passed + p))
  failed=$((failed + f))
  rm -f "$log"
}

run_config default
run_config asan --config=asan --test_tag_filters=-no_asan
run_config tsan --config=tsan --test_tag_filters=-no_asan,-no_tsan
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
