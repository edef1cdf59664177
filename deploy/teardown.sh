#!/usr/bin/env bash
# bazel run //deploy:teardown [-- --force]
# Removes everything //deploy:apply created (the vllm-profiler namespace
# with the webhook, its Secret and Service, and the cluster-wide
# MutatingWebhookConfiguration), after a confirmation unless --force. Pods
# already injected keep their sidecar until they are recreated.
set -euo pipefail
ROOT="${BUILD_WORKSPACE_DIRECTORY:?run me with bazel run}"
FORCE=0
for a in "$@"; do
  case "$a" in
    --force) FORCE=1 ;;
    *) echo "usage: teardown [--force]" >&2; exit 2 ;;
  esac
done
echo "This deletes the vllm-profiler namespace (webhook, Secret, Service)"
echo "and the MutatingWebhookConfiguration vllm-profiler-webhook."
if [[ $FORCE == 0 ]]; then
  read -r -p "Continue? [y/N] " answer || answer=""
  if [[ "$answer" != "y" && "$answer" != "Y" ]]; then
    echo "teardown: aborted, nothing deleted"
    exit 1
  fi
fi
kubectl delete -k "$ROOT/deploy/base" --ignore-not-found
echo "teardown: done"
