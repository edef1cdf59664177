#!/usr/bin/env bash
# Builds the three OCI images offline with umoci, from scratch (no base
# image): each holds its binaries plus exactly the shared libraries they load
# (their ldd closure, copied at the same paths, with the dynamic loader),
# runs as 65532:65532, and nothing else. Any UID works as well (OpenShift's
# restricted SCC picks one, with group 0): every file is owned by 0:0 and
# readable (folders searchable) by group and others; nothing is written
# outside the volumes the webhook mounts.
#   webhook    /usr/local/bin/webhook                      entrypoint webhook serve
#   collector  /usr/local/bin/collector (also its readiness probe:
#              collector --healthcheck), /usr/local/bin/vpctl (kubectl exec,
#              for hostNetwork pods whose collector serves gRPC on a Unix
#              socket only)
#   probe      /opt/vllm-profiler/probe/ (//probe:probe_bundle) and /bin/cp
#              (the init container copies the bundle into the pod's volume)
# Usage: build_images.sh OUT.tar WEBHOOK COLLECTOR PROBE_BUNDLE.tar VPCTL
# OUT.tar is an OCI image layout (tags webhook, collector, probe) as a tar;
# push with e.g.
#   skopeo copy oci-archive:OUT.tar:webhook docker://REGISTRY/vllm-profiler/webhook:TAG
set -euo pipefail
OUT="$1"; WEBHOOK="$2"; COLLECTOR="$3"; BUNDLE="$4"; VPCTL="$5"
T=$(mktemp -d)
trap 'chmod -R u+w "$T" 2>/dev/null; rm -rf "$T"' EXIT
LAYOUT="$T/layout"
umoci init --layout "$LAYOUT"

# Copies a binary and its shared-library closure into ROOTFS at the same
# paths (symlinks resolved).
add_binary() {
  local rootfs="$1" src="$2" dest="$3"
  mkdir -p "$rootfs$(dirname "$dest")"
  cp -L "$src" "$rootfs$dest"
  chmod 0755 "$rootfs$dest"
  # ldd fails on static binaries: nothing to copy then.
  { ldd "$src" 2>/dev/null || true; } |
  awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' |
  while read -r lib; do
    if [ ! -e "$rootfs$lib" ]; then
      mkdir -p "$rootfs$(dirname "$lib")"
      cp -L "$lib" "$rootfs$lib"
    fi
  done
}

# new_image TAG: an empty image unpacked into $T/TAG; prints its rootfs.
new_image() {
  umoci new --image "$LAYOUT:$1"
  umoci unpack --rootless --image "$LAYOUT:$1" "$T/$1" >/dev/null
  echo "$T/$1/rootfs"
}

finish_image() {  # TAG ENTRYPOINT...
  local tag="$1"; shift
  chmod -R go+rX,go-w "$T/$tag/rootfs"
  umoci repack --image "$LAYOUT:$tag" "$T/$tag"
  local args=()
  for a in "$@"; do args+=(--config.entrypoint "$a"); done
  umoci config --image "$LAYOUT:$tag" "${args[@]}" \
    --config.user 65532:65532 --config.workingdir / \
    --config.label org.opencontainers.image.title="vllm-profiler-$tag" \
    --config.label org.opencontainers.image.source=vllm-profiler
}

R=$(new_image webhook)
add_binary "$R" "$WEBHOOK" /usr/local/bin/webhook
finish_image webhook /usr/local/bin/webhook serve

R=$(new_image collector)
add_binary "$R" "$COLLECTOR" /usr/local/bin/collector
add_binary "$R" "$VPCTL" /usr/local/bin/vpctl
mkdir -p "$R/var/lib/vllm-profiler/traces" "$R/home/vllm/profiler"
finish_image collector /usr/local/bin/collector

R=$(new_image probe)
mkdir -p "$R/opt/vllm-profiler/probe"
tar -xf "$BUNDLE" -C "$R/opt/vllm-profiler/probe"
chmod -R a+rX "$R/opt/vllm-profiler/probe"
add_binary "$R" /bin/cp /bin/cp
finish_image probe /bin/cp -R /opt/vllm-profiler/probe/. /home/vllm/profiler/

umoci gc --layout "$LAYOUT"
tar --sort=name --mtime=@0 --owner=0 --group=0 -cf "$OUT" -C "$LAYOUT" .
