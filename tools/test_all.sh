#!/usr/bin/env bash
# The whole test suite, as README.md's second command and CI run it:
# installs missing Debian packages, then runs every Bazel test in the default
# configuration, again under AddressSanitizer + UBSan, and under
# ThreadSanitizer (tests that run Debian's uninstrumented gRPC/abseil
# synchronization are tagged no_tsan), then builds everything with clang and
# -Werror=thread-safety-analysis (--config=clang: the ABSL_GUARDED_BY
# annotations are checked; counted as one pass or one failure). Prints one
# closing line "N passed, N failed".
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

# bazel build with clang's -Wthread-safety as errors: one result. Its own
# output base: --config=clang switches the C++ toolchain repository, which
# would otherwise make the next default build reconfigure and rebuild
# everything. No convenience symlinks (bazel-bin stays the default build);
# the patterns name the source folders so the other output base's bazel-*
# links are not read as packages.
build_clang() {
  local log patterns
  log=$(mktemp)
  patterns=$(for d in */; do
    case "$d" in bazel-*) continue ;; esac
    if [ -n "$(find "$d" \( -name BUILD.bazel -o -name BUILD \) -print -quit)" ]; then
      echo "//${d%/}/..."
    fi
  done)
  echo "== bazel build --config=clang (thread-safety analysis)"
  local ob
  ob="$HOME/.cache/vllm-profiler/clang-output-base/$(pwd | md5sum | cut -c1-12)"
  # shellcheck disable=SC2086
  if bazel --output_base="$ob" \
      build --config=clang --symlink_prefix=/ -- //:all $patterns \
      >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "//... --config=clang build PASSED"
  else
    failed=$((failed + 1))
    grep -E 'error:|^ERROR' "$log" | head -40
    echo "//... --config=clang build FAILED"
  fi
  rm -f "$log"
}

run_config default
run_config asan --config=asan --test_tag_filters=-no_asan
run_config tsan --config=tsan --test_tag_filters=-no_asan,-no_tsan
build_clang
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
