#!/usr/bin/env python3
"""bazel run //deploy:validate [-- -n NAMESPACE] [--label KEY=VALUE]

Checks a deployed webhook without creating anything: a server-side dry run
(`kubectl -n NS create --dry-run=server -o json -f POD`) of a labelled
vLLM-shaped pod in the target namespace, then, item by item with PASS or
FAIL, that the admitted pod has what the webhook injects: the probe's init
container and the collector sidecar, the volumes, PYTHONPATH prepended (the
image's own value kept), the env, the security context, and the status
annotation. Exit 0 when every item passes, 1 otherwise, 2 on usage errors.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

PROBE_DIR = "/home/vllm/profiler"
IMAGE_PYTHONPATH = "/app/lib:/opt/extra"
INIT = "vllm-profiler-probe-init"
SIDECAR = "vllm-profiler-collector"
VOLUMES = ("vllm-profiler", "vllm-profiler-traces")
ENV = ("VLLM_PROFILER_SOCKET", "POD_NAME", "POD_NAMESPACE", "NODE_NAME")
STATUS = "vllm-profiler.llm-d.ai/status"


def test_pod(namespace, label):
    key, _, value = label.partition("=")
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "vllm-profiler-validate",
                     "namespace": namespace, "labels": {key: value}},
        "spec": {"containers": [{
            "name": "vllm", "image": "vllm/vllm-openai:latest",
            "args": ["--model", "Qwen/Qwen3-0.6B"],
            "env": [{"name": "PYTHONPATH", "value": IMAGE_PYTHONPATH}]}]},
    }


def by_name(items):
    return {i.get("name"): i for i in items or []}


def secure(container):
    sc = container.get("securityContext", {})
    return (sc.get("allowPrivilegeEscalation") is False and
            "ALL" in sc.get("capabilities", {}).get("drop", []) and
            sc.get("runAsNonRoot") is True and
            sc.get("readOnlyRootFilesystem") is True)


def checks(pod):
    """(description, passed) in the order they are reported."""
    spec = pod.get("spec", {})
    inits = by_name(spec.get("initContainers"))
    containers = by_name(spec.get("containers"))
    sidecar = inits.get(SIDECAR) or containers.get(SIDECAR)
    native = SIDECAR in inits and inits[SIDECAR].get("restartPolicy") == "Always"
    vllm = containers.get("vllm", {})
    env = {e.get("name"): e for e in vllm.get("env", [])}
    pythonpath = env.get("PYTHONPATH", {}).get("value", "")
    mounts = {m.get("mountPath") for m in vllm.get("volumeMounts", [])}
    volumes = by_name(spec.get("volumes"))
    annotations = pod.get("metadata", {}).get("annotations", {})
    return [
        ("init container %s" % INIT, INIT in inits),
        ("collector sidecar %s (%s)" % (
            SIDECAR, "native sidecar" if native else "container"),
         sidecar is not None),
        ("volumes %s" % ", ".join(VOLUMES), all(v in volumes for v in VOLUMES)),
        ("vllm mounts %s" % PROBE_DIR, PROBE_DIR in mounts),
        ("PYTHONPATH prepended: %s:%s" % (PROBE_DIR, IMAGE_PYTHONPATH),
         pythonpath == "%s:%s" % (PROBE_DIR, IMAGE_PYTHONPATH)),
        ("env %s" % ", ".join(ENV), all(e in env for e in ENV)),
        ("security context of %s and %s (no privilege escalation, drop ALL, "
         "non-root, read-only root)" % (INIT, SIDECAR),
         INIT in inits and sidecar is not None and
         secure(inits[INIT]) and secure(sidecar)),
        ("status annotation %s" % STATUS, STATUS in annotations),
    ]


def main():
    p = argparse.ArgumentParser(prog="validate")
    p.add_argument("-n", "--namespace",
                   default=os.environ.get("TARGET_NS", "downstream-llm-d"))
    p.add_argument("--label", default="llm-d.ai/inference-serving=true")
    p.add_argument("--context", default="")
    args = p.parse_args()
    if "=" not in args.label:
        p.error("--label must be KEY=VALUE")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(test_pod(args.namespace, args.label), f)
        f.flush()
        cmd = ["kubectl"] + (["--context", args.context] if args.context
                             else []) + [
            "-n", args.namespace, "create", "--dry-run=server", "-o", "json",
            "-f", f.name]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=60)
        except FileNotFoundError:
            print("validate: kubectl is not on PATH", file=sys.stderr)
            return 1
    if r.returncode != 0:
        print("validate: the server-side dry run failed: %s" %
              r.stderr.strip(), file=sys.stderr)
        return 1
    try:
        pod = json.loads(r.stdout)
    except ValueError:
        print("validate: kubectl did not answer a pod", file=sys.stderr)
        return 1
    print("dry run of a pod labelled %s in namespace %s:" %
          (args.label, args.namespace))
    results = checks(pod)
    for what, ok in results:
        print("  %s  %s" % ("PASS" if ok else "FAIL", what))
    failed = sum(1 for _, ok in results if not ok)
    if failed == 0:
        print("all %d checks passed" % len(results))
        return 0
    print("%d of %d checks failed" % (failed, len(results)))
    if STATUS not in pod.get("metadata", {}).get("annotations", {}):
        print("the webhook did not mutate the pod: is it deployed "
              "(bazel run //deploy:apply), does its TARGET_NAMESPACE include "
              "%s, and does its TARGET_LABEL_KEY match the label?" %
              args.namespace)
    return 1


if __name__ == "__main__":
    sys.exit(main())
