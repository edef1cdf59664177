#!/usr/bin/env bash
# op_bench.py on torch 2.6 (Python 3.13), in the Debian 13 root filesystem
# of tests/torch2 (built and cached by its rootfs.sh), with the probe bundle
# built here and the stand-in collector outside the chroot, as
# //tests/torch2:chroot_test runs them. Needs root. Arguments go to
# op_bench.py; --null_callback (first) also builds null_callback.cc with the
# chroot's g++ against torch 2.6 and adds op_bench.py's RecordFunction floor
# modes.
#   bazel build //probe:probe_bundle //tests/e2e/probe:fake_collector
#   tests/bench/probe/op_bench_torch2.sh [--null_callback] --reps 5 --ops 10000 [--pin]
set -euo pipefail
cd "$(dirname "$0")/../../.."
# Inside the chroot: optionally build the do-nothing callback, then the bench.
RUN='exec python3 /vp/work/op_bench.py "$@"'
if [[ "${1:-}" == --null_callback ]]; then
  shift
  RUN='g++ -O2 -std=c++17 -shared -fPIC -DNDEBUG -o /vp/cache/libvp_null_callback.so \
    /vp/work/null_callback.cc -ltorch -ltorch_cpu -lc10 &&
    exec python3 /vp/work/op_bench.py --null_callback /vp/cache/libvp_null_callback.so "$@"'
fi
BIN=$(bazel info bazel-bin 2>/dev/null)
ROOTFS=$(tests/torch2/rootfs.sh)
TMP=$(mktemp -d /tmp/opb2-XXXX)
trap 'kill $FC 2>/dev/null || true; rm -rf "$TMP"' EXIT
mkdir -p "$TMP/bundle" "$TMP/sock" "$TMP/cache"
# BUNDLE_TAR=FILE: another build of the bundle (a before/after comparison).
tar -xf "${BUNDLE_TAR:-$BIN/probe/probe_bundle.tar}" -C "$TMP/bundle"
# With --pin the collector stays off the step thread's CPU (the first).
PIN=()
if [[ " $* " == *" --pin "* ]] && (($(nproc) > 1)); then
  PIN=(taskset -c "1-$(($(nproc) - 1))")
fi
"${PIN[@]}" "$BIN/tests/e2e/probe/fake_collector" --socket "$TMP/sock/c.sock" \
  --out /dev/null --discard 1 >"$TMP/fc.log" 2>&1 &
FC=$!
mkdir -p "$ROOTFS/vp/bundle" "$ROOTFS/vp/work" "$ROOTFS/vp/sock" "$ROOTFS/vp/cache"
unshare --mount sh -c '
set -e
R=$0
mount --bind /proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --bind -o ro "$1" "$R/vp/bundle"
mount --bind -o ro "$2" "$R/vp/work"
mount --bind "$3" "$R/vp/sock"
mount --bind "$4" "$R/vp/cache"
shift 4
exec chroot "$R" "$@"' "$ROOTFS" "$TMP/bundle" "$PWD/tests/bench/probe" \
  "$TMP/sock" "$TMP/cache" \
  env -i PATH=/usr/bin:/bin HOME=/root PYTHONPATH=/vp/bundle \
  VLLM_PROFILER_SOCKET=/vp/sock/c.sock VLLM_PROFILER_START_STEP=1000000000 \
  VLLM_PROFILER_MAX_BUFFER_MB=512 VLLM_PROFILER_CACHE_DIR=/vp/cache \
  sh -c "$RUN" op_bench "$@"
