#!/usr/bin/env bash
# Stages what the GPU machine needs, on the build machine (it has no Bazel
# and none of the Debian libraries):
#
#   tests/gpu/prepare_bundle.sh [DEST=out/gpu_bundle]
#
# DEST/probe      the probe install folder (//probe:probe_bundle unpacked)
# DEST/collector  the collector binary plus every shared library it loads,
#                 glibc and its loader included, so it runs on any x86-64
#                 Linux as `lib/ld-linux-x86-64.so.2 --library-path lib
#                 collector ...`.
# out/ is git-ignored; pass it to the device run with carry=["out/gpu_bundle"].
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST="${1:-out/gpu_bundle}"
OB=()
[ -n "${BAZEL_OUTPUT_BASE:-}" ] && OB=(--output_base="$BAZEL_OUTPUT_BASE")
bazel "${OB[@]}" build --jobs=2 //probe:probe_bundle //collector:collector
BIN="$(bazel "${OB[@]}" info bazel-bin 2>/dev/null)"
rm -rf "$DEST"
mkdir -p "$DEST/probe" "$DEST/collector/lib"
tar -xf "$BIN/probe/probe_bundle.tar" -C "$DEST/probe"
chmod -R u+w "$DEST/probe"
cp "$BIN/collector/collector" "$DEST/collector/"
chmod u+w "$DEST/collector/collector"
ldd "$BIN/collector/collector" | awk '/=> \// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' |
  while read -r lib; do cp -L "$lib" "$DEST/collector/lib/"; done
# Debug info is not needed there; the device run carries at most 64 MiB.
strip --strip-debug "$DEST/collector/collector" "$DEST"/collector/lib/*.so* \
  "$DEST"/probe/*.so* 2>/dev/null || true
du -sh "$DEST"
echo "staged $DEST; device run: carry [\"$DEST\"], command tests/gpu/run_gpu_check.sh $DEST"
