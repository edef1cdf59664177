#!/usr/bin/env bash
# Renders deploy/overlays/selfsigned with freshly generated certificates and
# checks the output (kustomize_check.py).
set -euo pipefail
WEBHOOK="$(pwd)/$1"
SRC="$(cd "$(dirname "$0")" && pwd)"
T="${TEST_TMPDIR:-$(mktemp -d)}"
mkdir -p "$T/deploy"
cp -rL "$SRC/base" "$SRC/overlays" "$T/deploy/"
"$WEBHOOK" gen-certs --out_dir="$T/deploy/overlays/selfsigned/certs" \
  --service=vllm-profiler-webhook --service_namespace=vllm-profiler
kubectl kustomize "$T/deploy/overlays/selfsigned" > "$T/rendered.yaml"
# Without certificates the overlay must fail loudly, not render a
# webhook with an empty caBundle.
rm -rf "$T/nocerts" && mkdir -p "$T/nocerts" && cp -rL "$SRC/base" "$SRC/overlays" "$T/nocerts/"
if kubectl kustomize "$T/nocerts/overlays/selfsigned" >/dev/null 2>&1; then
  echo "FAIL: overlay rendered without certs"; exit 1
fi
/usr/bin/python3 "$SRC/kustomize_check.py" "$T/rendered.yaml" \
  "$T/deploy/overlays/selfsigned/certs"
kubectl kustomize "$T/deploy/overlays/cert-manager" > "$T/cert-manager.yaml"
exec /usr/bin/python3 "$SRC/kustomize_check.py" --cert-manager "$T/cert-manager.yaml"
