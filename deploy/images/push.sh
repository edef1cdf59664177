#!/usr/bin/env bash
# bazel run //deploy/images:push -- --registry REGISTRY --tag TAG [--insecure]
# Pushes the three images of //deploy/images (webhook, collector, probe)
# from the OCI archive to REGISTRY/vllm-profiler/NAME:TAG with skopeo: no
# container engine needed. Credentials: skopeo's own (skopeo login, or
# $REGISTRY_AUTH_FILE). --insecure: plain HTTP or a self-signed registry.
# Then: bazel run //deploy:apply -- --images REGISTRY:TAG
set -euo pipefail
ARCHIVE="$(pwd)/$1"
shift
REGISTRY=""
TAG=""
TLS=()
usage() {
  echo "usage: push --registry REGISTRY --tag TAG [--insecure]" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) REGISTRY="${2:-}"; shift 2 || usage ;;
    --tag) TAG="${2:-}"; shift 2 || usage ;;
    --insecure) TLS=(--dest-tls-verify=false); shift ;;
    *) usage ;;
  esac
done
[ -n "$REGISTRY" ] && [ -n "$TAG" ] || usage
REGISTRY="${REGISTRY%/}"
if ! command -v skopeo >/dev/null; then
  echo "push: skopeo is not on PATH (Debian/Ubuntu: apt-get install skopeo)" >&2
  exit 1
fi
for image in webhook collector probe; do
  dest="docker://$REGISTRY/vllm-profiler/$image:$TAG"
  echo "push: $image -> $dest"
  skopeo copy "${TLS[@]}" "oci-archive:$ARCHIVE:$image" "$dest"
done
echo "push: done; deploy them with: bazel run //deploy:apply -- --images $REGISTRY:$TAG"
