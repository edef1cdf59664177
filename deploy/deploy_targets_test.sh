#!/bin/bash
# The deploy targets' scripts against the strict stand-in kubectl and
# skopeo (tests/fleet): what they run, what they print, their exit codes.
set -uo pipefail
R="${TEST_SRCDIR}/vllm_profiler"
T="$(mktemp -d "${TEST_TMPDIR:-/tmp}/deploy.XXXXXX")"
REAL_KUBECTL="$(command -v kubectl || true)"
mkdir -p "$T/bin" "$T/kubectl" "$T/skopeo" "$T/ws"
cp "$R/tests/fleet/kubectl" "$R/tests/fleet/skopeo" "$T/bin/"
export PATH="$T/bin:$PATH" FAKE_KUBECTL_DIR="$T/kubectl" \
  FAKE_SKOPEO_DIR="$T/skopeo"
# A workspace for `bazel run` scripts: the manifests.
cp -rL "$R/deploy" "$T/ws/deploy"
chmod -R u+w "$T/ws"
export BUILD_WORKSPACE_DIRECTORY="$T/ws"

fail() { echo "FAIL: $*"; exit 1; }
contains() { [[ "$1" == *"$2"* ]] || fail "expected '$2' in: $1"; }
no_unexpected_calls() {
  for f in "$T/kubectl/errors.log" "$T/skopeo/errors.log"; do
    [[ ! -s "$f" ]] || fail "unexpected stand-in call: $(cat "$f")"
  done
}

echo "== push: three skopeo copies from the OCI archive"
ARCHIVE="$R/deploy/images/vllm-profiler-images.oci.tar"
out="$(cd "$R" && deploy/images/push.sh deploy/images/vllm-profiler-images.oci.tar \
  --registry localhost:5000/team/ --tag v1 --insecure 2>&1)" || fail "push: $out"
contains "$out" "push: probe -> docker://localhost:5000/team/vllm-profiler/probe:v1"
contains "$out" "bazel run //deploy:apply -- --images localhost:5000/team:v1"
[[ "$(cat "$T/skopeo/calls.log")" == \
"[\"copy\", \"--dest-tls-verify=false\", \"oci-archive:$ARCHIVE:webhook\", \"docker://localhost:5000/team/vllm-profiler/webhook:v1\"]
[\"copy\", \"--dest-tls-verify=false\", \"oci-archive:$ARCHIVE:collector\", \"docker://localhost:5000/team/vllm-profiler/collector:v1\"]
[\"copy\", \"--dest-tls-verify=false\", \"oci-archive:$ARCHIVE:probe\", \"docker://localhost:5000/team/vllm-profiler/probe:v1\"]" ]] ||
  fail "skopeo calls: $(cat "$T/skopeo/calls.log")"
out="$(cd "$R" && deploy/images/push.sh deploy/images/vllm-profiler-images.oci.tar --tag v1 2>&1)"
[[ $? == 2 ]] || fail "push without --registry"
contains "$out" "usage: push --registry REGISTRY --tag TAG [--insecure]"
no_unexpected_calls

echo "== apply --images: the generated overlay pins all three images"
cd "$R/deploy" || fail "no runfiles"
out="$(bash "$R/deploy/deploy.sh" apply ../webhook/webhook --images localhost:5000/team:v1 2>&1)" ||
  fail "apply: $out"
contains "$out" "applied (fake kubectl)"
contains "$out" "successfully rolled out"
gen="$T/ws/deploy/overlays/images/kustomization.yaml"
[[ -s "$gen" ]] || fail "no generated overlay"
cmp "$gen" "$T/kubectl/apply-1.yaml" || fail "applied something else"
[[ -s "$T/ws/deploy/overlays/selfsigned/certs/tls.crt" ]] || fail "no certs"
if [[ -x "$REAL_KUBECTL" && "$REAL_KUBECTL" != "$T/bin/kubectl" ]]; then
  "$REAL_KUBECTL" kustomize "$T/ws/deploy/overlays/images" >"$T/rendered.yaml" 2>"$T/render.err" ||
    fail "the generated overlay does not render: $(cat "$T/render.err")"
  for want in "image: localhost:5000/team/vllm-profiler/webhook:v1" \
      "value: localhost:5000/team/vllm-profiler/probe:v1" \
      "value: localhost:5000/team/vllm-profiler/collector:v1"; do
    grep -qF "$want" "$T/rendered.yaml" || fail "rendered lacks $want"
  done
  grep -q "vllm-profiler/probe:latest" "$T/rendered.yaml" && fail "old probe image kept"
else
  echo "(no real kubectl: the overlay's rendering is not checked)"
fi
out="$(bash "$R/deploy/deploy.sh" apply ../webhook/webhook --images nocolon 2>&1)"
[[ $? == 2 ]] || fail "--images without a tag"
contains "$out" "deploy: --images wants REGISTRY:TAG (e.g. quay.io/me:v1), got 'nocolon'"
no_unexpected_calls

echo "== validate: an admitted pod passes item by item"
cp "$R/webhook/testdata/golden/03_existing_pythonpath.patched.json" \
  "$T/kubectl/dry_run.json"
out="$("$R/deploy/validate.sh" -n downstream-llm-d 2>&1)" || fail "validate: $out"
contains "$out" "dry run of a pod labelled llm-d.ai/inference-serving=true in namespace downstream-llm-d:"
contains "$out" "  PASS  init container vllm-profiler-probe-init"
contains "$out" "  PASS  collector sidecar vllm-profiler-collector (native sidecar)"
contains "$out" "  PASS  volumes vllm-profiler, vllm-profiler-traces"
contains "$out" "  PASS  PYTHONPATH prepended: /home/vllm/profiler:/app/lib:/opt/extra"
contains "$out" "  PASS  env VLLM_PROFILER_SOCKET, POD_NAME, POD_NAMESPACE, NODE_NAME"
contains "$out" "  PASS  security context of vllm-profiler-probe-init and vllm-profiler-collector"
contains "$out" "all 8 checks passed"
tail -1 "$T/kubectl/calls.log" | grep -q '^\["-n", "downstream-llm-d", "create", "--dry-run=server", "-o", "json", "-f", ' ||
  fail "dry run call: $(tail -1 "$T/kubectl/calls.log")"

echo "== validate: a pod the webhook did not touch fails, item by item"
rm "$T/kubectl/dry_run.json"
out="$("$R/deploy/validate.sh" -n team-a --label app=vllm 2>&1)"
[[ $? == 1 ]] || fail "validate of an unmutated pod succeeded: $out"
contains "$out" "  FAIL  init container vllm-profiler-probe-init"
contains "$out" "  FAIL  PYTHONPATH prepended"
contains "$out" "8 of 8 checks failed"
contains "$out" "does its TARGET_NAMESPACE include team-a"
no_unexpected_calls

echo "== teardown: asks first, --force does not"
out="$(echo n | bash "$R/deploy/teardown.sh" 2>&1)"
[[ $? == 1 ]] || fail "teardown without confirmation"
contains "$out" "teardown: aborted, nothing deleted"
grep -q '"delete"' "$T/kubectl/calls.log" && fail "deleted without confirmation"
out="$(bash "$R/deploy/teardown.sh" --force 2>&1)" || fail "teardown --force: $out"
contains "$out" "deleted (fake kubectl)"
contains "$out" "teardown: done"
tail -1 "$T/kubectl/calls.log" | grep -qF "[\"delete\", \"-k\", \"$T/ws/deploy/base\", \"--ignore-not-found\"]" ||
  fail "delete call: $(tail -1 "$T/kubectl/calls.log")"
no_unexpected_calls
echo PASS
