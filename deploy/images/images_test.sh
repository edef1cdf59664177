#!/usr/bin/env bash
# Checks the OCI images: tags present (umoci ls), config (skopeo inspect:
# user, entrypoint), contents (files at the paths the webhook's patch uses),
# and that every binary runs with only the libraries inside its image (run
# through the image's own dynamic loader with --inhibit-cache and the
# image's library folders).
set -uo pipefail
TAR="$(pwd)/$1"
T="${TEST_TMPDIR:-$(mktemp -d)}"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
mkdir -p "$T/layout" && tar -xf "$TAR" -C "$T/layout"
tags=$(umoci ls --layout "$T/layout" | sort | tr '\n' ' ')
[ "$tags" = "collector probe webhook " ] || fail "tags: $tags"
for tag in webhook collector probe; do
  cfg=$(skopeo inspect --config "oci:$T/layout:$tag") || { fail "skopeo $tag"; continue; }
  user=$(echo "$cfg" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["User"])')
  [ "$user" = "65532:65532" ] || fail "$tag user $user"
  skopeo inspect "oci:$T/layout:$tag" >/dev/null || fail "skopeo inspect $tag"
  umoci unpack --rootless --image "$T/layout:$tag" "$T/$tag" >/dev/null || fail "unpack $tag"
done
ep() { skopeo inspect --config "oci:$T/layout:$1" | /usr/bin/python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin)["config"]["Entrypoint"]))'; }
[ "$(ep webhook)" = "/usr/local/bin/webhook serve" ] || fail "webhook entrypoint $(ep webhook)"
[ "$(ep probe)" = "/bin/cp -R /opt/vllm-profiler/probe/. /home/vllm/profiler/" ] || fail "probe entrypoint"
for f in sitecustomize.py vllm_profiler_probe/__init__.py libvllm_profiler_probe.so libvllm_profiler_torch.so; do
  [ -f "$T/probe/rootfs/opt/vllm-profiler/probe/$f" ] || fail "probe image lacks $f"
done
[ -x "$T/collector/rootfs/usr/local/bin/vpctl" ] || fail "no vpctl"

# Any UID (OpenShift: an arbitrary one with group 0) can use the images:
# every layer entry is owned by 0:0, every file readable by group and
# others, every folder searchable, nothing group- or world-writable.
for tag in webhook collector probe; do
  manifest=$(skopeo inspect --raw "oci:$T/layout:$tag")
  for digest in $(echo "$manifest" | /usr/bin/python3 -c 'import json,sys; print(" ".join(l["digest"].split(":")[1] for l in json.load(sys.stdin)["layers"]))'); do
    bad=$(tar -tvzf "$T/layout/blobs/sha256/$digest" | awk '
      { mode=$1; owner=$2 }
      owner != "root/root" && owner != "0/0" { print "owner " owner ": " $0; next }
      substr(mode,1,1) == "l" { next }
      substr(mode,5,1) != "r" || substr(mode,8,1) != "r" { print "unreadable: " $0; next }
      substr(mode,1,1) == "d" && (substr(mode,7,1) != "x" || substr(mode,10,1) != "x") { print "unsearchable: " $0; next }
      substr(mode,6,1) == "w" || substr(mode,9,1) == "w" { print "writable: " $0 }')
    [ -z "$bad" ] || fail "$tag: $bad"
  done
done

# run TAG BINARY ARGS...: the binary with only the image's libraries.
run() {
  local root="$T/$1/rootfs"; shift
  local bin="$root$1"; shift
  if file -L "$bin" | grep -q "statically linked"; then "$bin" "$@"; return; fi
  local libs
  libs=$(find "$root" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
  "$root/lib64/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$libs" "$bin" "$@"
}
run webhook /usr/local/bin/webhook gen-certs --out_dir="$T/c" 2>/dev/null || fail "webhook does not run from its image"
[ -s "$T/c/tls.crt" ] || fail "webhook gen-certs wrote nothing"
run collector /usr/local/bin/collector --version 2>&1 | grep -q "^collector" || fail "collector does not run from its image"
run collector /usr/local/bin/vpctl --help 2>&1 | grep -q "usage: vpctl" || fail "vpctl does not run from its image"
out=$(run collector /usr/local/bin/collector --healthcheck --port_file=/nonexistent 2>&1)
[ $? = 1 ] || fail "collector --healthcheck does not run"
case "$out" in *"collector not listening yet"*) ;; *) fail "collector --healthcheck: $out";; esac
mkdir -p "$T/dst"
run probe /bin/cp -R "$T/probe/rootfs/opt/vllm-profiler/probe/." "$T/dst/" || fail "cp does not run"
[ -f "$T/dst/sitecustomize.py" ] || fail "cp copied nothing"
[ "$fails" = 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "images_test: $(du -hL "$TAR" | cut -f1) layout, all checks passed"
