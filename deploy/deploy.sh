#!/usr/bin/env bash
# bazel run //deploy:apply | //deploy:delete
# apply: generates the certificates once (deploy/overlays/selfsigned/certs,
# git-ignored) with `webhook gen-certs`, then `kubectl apply -k`.
# delete: `kubectl delete -k`.
set -euo pipefail
ACTION="$1"
WEBHOOK="$(pwd)/$2"
ROOT="${BUILD_WORKSPACE_DIRECTORY:?run me with bazel run}"
OVERLAY="$ROOT/deploy/overlays/selfsigned"
if ! kubectl version --request-timeout=5s >/dev/null 2>&1; then
  echo "deploy: no Kubernetes cluster reachable with the current kubeconfig" \
       "(kubectl version failed); nothing done" >&2
  exit 1
fi
case "$ACTION" in
  apply)
    if [ ! -s "$OVERLAY/certs/tls.crt" ]; then
      "$WEBHOOK" gen-certs --out_dir="$OVERLAY/certs" \
        --service=vllm-profiler-webhook --service_namespace=vllm-profiler
    fi
    kubectl apply -k "$OVERLAY"
    kubectl -n vllm-profiler rollout status deployment/vllm-profiler-webhook --timeout=120s
    ;;
  delete)
    # The base renders without certificates; the Secret goes with the
    # namespace.
    kubectl delete -k "$ROOT/deploy/base" --ignore-not-found
    ;;
  *) echo "usage: deploy.sh apply|delete WEBHOOK" >&2; exit 2 ;;
esac
