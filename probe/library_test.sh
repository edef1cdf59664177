#!/usr/bin/env bash
# Checks that libvllm_profiler_probe.so can be dropped into any vLLM image:
#  * it exports only the vp_* C ABI (plus its version node);
#  * it needs only glibc-level libraries, libstdc++, and the Debian
#    libraries that cannot be linked statically (their .a are not PIC:
#    libabsl_*, libprotobuf, libre2), which the bundle ships next to it and
#    which RPATH $ORIGIN finds first.
set -euo pipefail
SO="$1"
BUNDLE="$2"
fail() { echo "FAIL: $*"; exit 1; }

bad_syms=$(nm -D --defined-only "$SO" | awk '$2 ~ /^[A-Z]$/ && $3 !~ /^vp_/ && $2 != "A" {print $3}')
[ -z "$bad_syms" ] || fail "exports non-ABI symbols: $bad_syms"
nm -D --defined-only "$SO" | grep -q ' T vp_step_begin' || fail "vp_step_begin not exported"

allowed='^(libc\.so\.6|libm\.so\.6|libstdc\+\+\.so\.6|libgcc_s\.so\.1|ld-linux-x86-64\.so\.2|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libabsl_[a-z0-9_]+\.so\.20220623|libprotobuf\.so\.32|libre2\.so\.9)$'
for lib in $(readelf -d "$SO" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  [[ "$lib" =~ $allowed ]] || fail "unexpected dependency $lib"
done
readelf -d "$SO" | grep -q '(RPATH).*\$ORIGIN' || fail "no RPATH \$ORIGIN"

dir=$(mktemp -d)
tar -xf "$BUNDLE" -C "$dir"
for f in sitecustomize.py vllm_profiler_probe/__init__.py vllm_profiler_probe/_shim_build.py torch_shim/torch_shim.cc torch_shim/vllm_profiler/probe.h libvllm_profiler_probe.so libvllm_profiler_torch.so libprotobuf.so.32 libre2.so.9 \
    lib/python3.8/site-packages/usercustomize.py lib/python3.14/site-packages/usercustomize.py; do
  [ -e "$dir/$f" ] || fail "bundle lacks $f"
done
# Every bundled-kind dependency resolves inside the bundle folder.
ldd "$dir/libvllm_profiler_probe.so" | awk '/libabsl_|libprotobuf|libre2/ {print $3}' | while read -r p; do
  case "$p" in "$dir"/*) ;; *) fail "resolved outside the bundle: $p" ;; esac
done
ldd "$dir/libvllm_profiler_probe.so" | grep -q 'not found' && fail "unresolved dependency"
rm -rf "$dir"
echo "PASS"
