#!/usr/bin/env python3
"""Writes the golden AdmissionReview inputs (golden/*.review.json).

The inputs are checked in; this script documents how they were made and can
regenerate them. Each case is a pod as the API server would send it. The
expected outputs (*.response.json, *.patched.json) are written by
golden_test.py --update and reviewed by hand.
"""
import copy
import json
import os

NS = "downstream-llm-d"
LABEL = {"llm-d.ai/inferenceServing": "true"}


def vllm_container(name="vllm", **extra):
    c = {
        "name": name,
        "image": "vllm/vllm-openai:v0.10.0",
        "args": ["--model", "Qwen/Qwen3-0.6B", "--port", "8000"],
        "ports": [{"containerPort": 8000, "name": "http", "protocol": "TCP"}],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
    }
    c.update(extra)
    return c


def pod(name="vllm-0", ns=NS, labels=None, annotations=None, containers=None,
        generate_name=None, **spec_extra):
    meta = {"namespace": ns, "labels": dict(LABEL if labels is None else labels)}
    if name is not None:
        meta["name"] = name
    if generate_name is not None:
        meta["generateName"] = generate_name
    if annotations is not None:
        meta["annotations"] = annotations
    if not meta["labels"]:
        del meta["labels"]
    spec = {"containers": containers or [vllm_container()]}
    spec.update(spec_extra)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def review(obj, uid, operation="CREATE", kind=None, ns=None, dry_run=False,
           request_ns=True):
    kind = kind or {"group": "", "version": "v1", "kind": "Pod"}
    ns = ns if ns is not None else obj.get("metadata", {}).get("namespace", NS)
    req = {
        "uid": uid,
        "kind": kind,
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": kind,
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": obj.get("metadata", {}).get("name", ""),
        "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": obj,
        "oldObject": None,
        "dryRun": dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
    }
    if request_ns:
        req["namespace"] = ns
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": req}


CASES = {}


def case(name, r):
    CASES[name] = r


case("01_plain_vllm", review(pod(), "uid-01"))
case("02_several_containers", review(pod(containers=[
    vllm_container("vllm"),
    {"name": "proxy", "image": "envoyproxy/envoy:v1.30",
     "resources": {"limits": {"cpu": "1"}}},
    vllm_container("vllm-decode")]), "uid-02"))
case("03_existing_pythonpath", review(pod(containers=[vllm_container(env=[
    {"name": "HF_HOME", "value": "/models"},
    {"name": "PYTHONPATH", "value": "/app/lib:/opt/extra"}])]), "uid-03"))
case("04_envfrom", review(pod(containers=[vllm_container(envFrom=[
    {"configMapRef": {"name": "vllm-env"}}])]), "uid-04"))
c = vllm_container()
del c["resources"]
del c["ports"]
case("05_no_env_at_all", review(pod(containers=[c]), "uid-05"))
case("06_existing_volumes_and_init", review(pod(
    containers=[vllm_container(volumeMounts=[
        {"name": "models", "mountPath": "/models"},
        {"name": "shm", "mountPath": "/dev/shm"}])],
    initContainers=[{"name": "download", "image": "busybox:1.36",
                     "command": ["sh", "-c", "echo hi"]}],
    volumes=[{"name": "models", "persistentVolumeClaim": {"claimName": "models"}},
             {"name": "shm", "emptyDir": {"medium": "Memory"}}]), "uid-06"))
already = pod(annotations={
    "vllm-profiler.llm-d.ai/status": "{\"version\":\"0.1.0\"}"})
case("07_already_injected", review(already, "uid-07"))
case("08_generate_name_only", review(pod(name=None,
                                         generate_name="vllm-7d9f8c-"), "uid-08"))
case("09_label_key_with_slash_and_annotations", review(pod(
    labels={"llm-d.ai/inferenceServing": "true", "app.kubernetes.io/name": "vllm"},
    annotations={"prometheus.io/scrape": "true", "a~b/c": "tilde"}), "uid-09"))
case("10_host_network", review(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"),
                               "uid-10"))
case("11_opted_out", review(pod(annotations={"vllm-profiler.llm-d.ai/inject": "false"}),
                            "uid-11"))
case("12_non_target_namespace", review(pod(ns="default"), "uid-12"))
case("13_label_missing", review(pod(labels={"app": "vllm"}), "uid-13"))
case("14_opt_in_by_annotation", review(pod(labels={},
                                           annotations={"vllm-profiler.llm-d.ai/inject": "true"}),
                                       "uid-14"))
case("15_kube_system", review(pod(ns="kube-system"), "uid-15"))
case("16_mirror_pod", review(pod(annotations={"kubernetes.io/config.mirror": "abc123"}),
                             "uid-16"))
case("17_update_operation", review(pod(), "uid-17", operation="UPDATE"))
case("18_not_a_pod", review({"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "x", "namespace": NS}}, "uid-18",
                            kind={"group": "", "version": "v1", "kind": "ConfigMap"}))
case("19_probe_annotations", review(pod(annotations={
    "vllm-profiler.llm-d.ai/start-step": "20",
    "vllm-profiler.llm-d.ai/steps": "5",
    "vllm-profiler.llm-d.ai/duration-ms": "1500",
    "vllm-profiler.llm-d.ai/record-shapes": "false",
    "vllm-profiler.llm-d.ai/gpu": "1"}), "uid-19"))
case("20_bad_probe_annotations", review(pod(annotations={
    "vllm-profiler.llm-d.ai/start-step": "soon",
    "vllm-profiler.llm-d.ai/steps": "0",
    "vllm-profiler.llm-d.ai/gpu": "maybe"}), "uid-20"))
case("21_containers_annotation", review(pod(
    annotations={"vllm-profiler.llm-d.ai/containers": "vllm-decode, missing"},
    containers=[vllm_container("vllm-prefill"), vllm_container("vllm-decode")]),
    "uid-21"))
case("22_pythonpath_value_from", review(pod(containers=[
    vllm_container(env=[{"name": "PYTHONPATH", "valueFrom": {
        "configMapKeyRef": {"name": "env", "key": "pp"}}}]),
    vllm_container("sidecar-python")]), "uid-22"))
case("23_pythonpath_already_has_probe", review(pod(containers=[vllm_container(env=[
    {"name": "PYTHONPATH", "value": "/home/vllm/profiler:/app"},
    {"name": "POD_NAME", "value": "custom"},
    {"name": "VLLM_PROFILER_NUM_STEPS", "value": "7"}])]), "uid-23"))
case("24_dry_run", review(pod(), "uid-24", dry_run=True))
case("25_namespace_from_object", review(pod(), "uid-25", request_ns=False))
case("26_default_container_set", review(pod(
    annotations={"kubectl.kubernetes.io/default-container": "vllm"},
    containers=[{"name": "init-like", "image": "busybox"}, vllm_container()]),
    "uid-26"))
case("27_own_namespace", review(pod(ns="vllm-profiler"), "uid-27"))
case("28_mount_path_conflict", review(pod(containers=[vllm_container(volumeMounts=[
    {"name": "custom", "mountPath": "/home/vllm/profiler/"}])],
    volumes=[{"name": "custom", "emptyDir": {}}]), "uid-28"))
case("29_empty_pythonpath", review(pod(containers=[vllm_container(env=[
    {"name": "PYTHONPATH", "value": ""}, {"name": "X"}])]), "uid-29"))
case("30_name_conflict", review(pod(volumes=[{"name": "vllm-profiler", "emptyDir": {}}]),
                                "uid-30"))

# Reinvocation (reinvocationPolicy: IfNeeded): the pod as injected by us
# (golden 01's patched pod), then changed by another webhook that added a
# container; nothing may be injected twice.
_patched = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden",
                        "01_plain_vllm.patched.json")
if os.path.exists(_patched):
    with open(_patched) as _f:
        _reinvoked = json.load(_f)
    _reinvoked["spec"]["containers"].append(
        {"name": "istio-proxy", "image": "istio/proxyv2:1.22"})
    case("31_reinvoked_after_other_webhook", review(_reinvoked, "uid-31"))


if __name__ == "__main__":
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
    os.makedirs(out, exist_ok=True)
    for name, r in CASES.items():
        with open(os.path.join(out, name + ".review.json"), "w") as f:
            json.dump(r, f, indent=2, sort_keys=True)
            f.write("\n")
    print(f"wrote {len(CASES)} reviews to {out}")
