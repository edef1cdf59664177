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

# --- Pods modelled on real ones (llm-d modelservice, vLLM images). ---
HYPHEN = {"llm-d.ai/inference-serving": "true"}


def res(cpu=None, memory=None, gpu=None, lim_cpu=None, lim_memory=None,
        **extra):
    """resources as the API server has them after defaulting (requests
    default to limits when only limits are given)."""
    r = {"requests": {}, "limits": {}}
    for kind, c, m in (("requests", cpu, memory),
                       ("limits", lim_cpu, lim_memory)):
        if c:
            r[kind]["cpu"] = c
        if m:
            r[kind]["memory"] = m
        if gpu:
            r[kind]["nvidia.com/gpu"] = gpu
    for k, v in extra.items():
        r["requests"][k.replace("_", "-")] = v
        r["limits"][k.replace("_", "-")] = v
    return {k: v for k, v in r.items() if v}


def routing_proxy():
    """llm-d-modelservice's routing sidecar (a native sidecar)."""
    return {
        "name": "routing-proxy",
        "image": "ghcr.io/llm-d/llm-d-routing-sidecar:v0.2.0",
        "imagePullPolicy": "Always",
        "args": ["--port=8000", "--vllm-port=8200", "--connector=nixlv2",
                 "-v=5", "--secure-proxy=false"],
        "ports": [{"containerPort": 8000, "protocol": "TCP"}],
        "restartPolicy": "Always",
        "securityContext": {"allowPrivilegeEscalation": False,
                            "runAsNonRoot": True},
        "resources": {},
    }


def llmd_vllm(role, resources, port=8200):
    return {
        "name": "vllm",
        "image": "ghcr.io/llm-d/llm-d:v0.2.0",
        "command": ["vllm", "serve"],
        "args": ["Qwen/Qwen3-32B", "--port", str(port),
                 "--enforce-eager", "--kv-transfer-config",
                 '{"kv_connector":"NixlConnector","kv_role":"kv_both"}'],
        "env": [
            {"name": "CUDA_VISIBLE_DEVICES", "value": "0"},
            {"name": "UCX_TLS", "value": "cuda_ipc,cuda_copy,tcp"},
            {"name": "VLLM_NIXL_SIDE_CHANNEL_PORT", "value": "5557"},
            {"name": "VLLM_NIXL_SIDE_CHANNEL_HOST",
             "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HF_HOME", "value": "/model-cache"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
                "name": "llm-d-hf-token", "key": "HF_TOKEN"}}},
        ],
        "ports": [{"containerPort": port, "protocol": "TCP"},
                  {"containerPort": 5557, "protocol": "TCP"}],
        "resources": resources,
        "securityContext": {"capabilities": {"add": ["IPC_LOCK", "SYS_RAWIO"]}},
        "volumeMounts": [{"name": "metrics-volume", "mountPath": "/.config"},
                         {"name": "torch-compile-cache", "mountPath": "/.cache"},
                         {"name": "model-storage", "mountPath": "/model-cache"},
                         {"name": "shm", "mountPath": "/dev/shm"}],
    }


LLMD_VOLUMES = [
    {"name": "metrics-volume", "emptyDir": {}},
    {"name": "torch-compile-cache", "emptyDir": {}},
    {"name": "model-storage", "emptyDir": {"sizeLimit": "100Gi"}},
    {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
]


def llmd_labels(role):
    return dict(HYPHEN, **{"llm-d.ai/model": "qwen-qwen3-32b",
                           "llm-d.ai/role": role,
                           "app.kubernetes.io/name": "llm-d-modelservice"})


case("32_llmd_decode_routing_proxy", review(pod(
    name="ms-qwen-llm-d-modelservice-decode-5d9c7b-x2k4p",
    labels=llmd_labels("decode"),
    containers=[llmd_vllm("decode", res(gpu="1"))],
    initContainers=[routing_proxy()],
    volumes=LLMD_VOLUMES, serviceAccountName="ms-qwen-llm-d-modelservice"),
    "uid-32"))
case("33_llmd_prefill_guaranteed", review(pod(
    name="ms-qwen-llm-d-modelservice-prefill-7f6d8-9qwzt",
    labels=llmd_labels("prefill"),
    containers=[llmd_vllm("prefill", res(
        cpu="16", memory="64Gi", gpu="1", lim_cpu="16", lim_memory="64Gi"),
        port=8000)],
    volumes=LLMD_VOLUMES), "uid-33"))
# llm-d deployer preset with NIXL: the image's NIXL paths are in its
# PYTHONPATH, given by annotation so that they are kept.
case("34_llmd_nixl_image_pythonpath", review(pod(
    name="llama-3-2-1b-decode-0",
    labels=llmd_labels("decode"),
    annotations={"vllm-profiler.llm-d.ai/image-pythonpath":
                 "/opt/nixl/lib/python3/dist-packages:/opt/vllm-source"},
    containers=[llmd_vllm("decode", res(gpu="1"))],
    initContainers=[routing_proxy()], volumes=LLMD_VOLUMES), "uid-34"))


def lws_container(name, role):
    script = ("bash /vllm-workspace/examples/online_serving/"
              "multi-node-serving.sh ")
    if role == "leader":
        cmd = (script + "leader --ray_cluster_size=$(LWS_GROUP_SIZE); "
               "python3 -m vllm.entrypoints.openai.api_server --port 8080 "
               "--model meta-llama/Meta-Llama-3.1-405B-Instruct "
               "--tensor-parallel-size 8 --pipeline_parallel_size 2")
    else:
        cmd = script + "worker --ray_address=$(LWS_LEADER_ADDRESS)"
    c = {
        "name": name,
        "image": "docker.io/vllm/vllm-openai:latest",
        "command": ["sh", "-c", cmd],
        "env": [{"name": "HUGGING_FACE_HUB_TOKEN", "value": "$HUGGING_FACE_HUB_TOKEN"},
                {"name": "LWS_LEADER_ADDRESS",
                 "value": "vllm-0.vllm.downstream-llm-d"},
                {"name": "LWS_GROUP_SIZE", "value": "2"},
                {"name": "LWS_WORKER_INDEX", "valueFrom": {"fieldRef": {
                    "fieldPath": "metadata.labels['leaderworkerset.sigs.k8s.io/worker-index']"}}}],
        "resources": {"limits": {"nvidia.com/gpu": "8", "memory": "1124Gi",
                                 "ephemeral-storage": "800Gi"},
                      "requests": {"nvidia.com/gpu": "8", "memory": "1124Gi",
                                   "ephemeral-storage": "800Gi", "cpu": "125"}},
        "volumeMounts": [{"mountPath": "/dev/shm", "name": "dshm"}],
    }
    if role == "leader":
        c["ports"] = [{"containerPort": 8080}]
        c["readinessProbe"] = {"tcpSocket": {"port": 8080},
                               "initialDelaySeconds": 15, "periodSeconds": 10}
    return c


def lws_labels(index, role):
    return dict(HYPHEN, **{
        "leaderworkerset.sigs.k8s.io/name": "vllm",
        "leaderworkerset.sigs.k8s.io/group-index": "0",
        "leaderworkerset.sigs.k8s.io/worker-index": str(index),
        "role": role})


LWS_VOLUMES = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "15Gi"}}]
case("35_lws_ray_leader", review(pod(
    name="vllm-0", labels=lws_labels(0, "leader"),
    annotations={"leaderworkerset.sigs.k8s.io/size": "2"},
    containers=[lws_container("vllm-leader", "leader")],
    volumes=LWS_VOLUMES), "uid-35"))
case("36_lws_ray_worker", review(pod(
    name="vllm-0-1", labels=lws_labels(1, "worker"),
    annotations={"leaderworkerset.sigs.k8s.io/size": "2",
                 "leaderworkerset.sigs.k8s.io/leader-name": "vllm-0"},
    containers=[lws_container("vllm-worker", "worker")],
    volumes=LWS_VOLUMES), "uid-36"))

# vLLM production-stack: disaggregated prefill (hostIPC/hostPID; its vllm
# runs from /opt/venv, where the user site may be off: python-hook
# pythonpath, see webhook/README.md) and a LoRA deployment (envFrom,
# hardened, with the Python `sidecar`).
case("37_prodstack_disagg_prefill_host_ipc", review(pod(
    name="vllm-llama-prefill-deployment-vllm-6b8f9d-2xk8d",
    labels=dict(LABEL, **{"model": "llama-prefill", "helm-release-name": "vllm"}),
    annotations={"vllm-profiler.llm-d.ai/python-hook": "pythonpath"},
    hostIPC=True, hostPID=True,
    containers=[{
        "name": "vllm",
        "image": "lmcache/vllm-openai:2025-05-27-v1",
        "command": ["/opt/venv/bin/vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct",
                    "--host", "0.0.0.0", "--port", "8000",
                    "--kv-transfer-config",
                    '{"kv_connector":"LMCacheConnectorV1","kv_role":"kv_producer"}'],
        "env": [{"name": "LMCACHE_LOCAL_CPU", "value": "True"},
                {"name": "LMCACHE_MAX_LOCAL_CPU_SIZE", "value": "40"},
                {"name": "LMCACHE_ENABLE_NIXL", "value": "True"},
                {"name": "LMCACHE_NIXL_ROLE", "value": "sender"},
                {"name": "UCX_TLS", "value": "cuda_ipc,cuda_copy,tcp"}],
        "resources": res(cpu="8", memory="32Gi", gpu="1", lim_cpu="8",
                         lim_memory="32Gi"),
        "ports": [{"containerPort": 8000, "name": "container-port"}],
    }]), "uid-37"))
case("38_prodstack_lora_sidecar_envfrom_hardened", review(pod(
    name="vllm-llama3-deployment-vllm-5c8f7-bx7q2",
    labels=dict(LABEL, **{"model": "llama3", "helm-release-name": "vllm"}),
    securityContext={"runAsNonRoot": True, "runAsUser": 1000,
                     "runAsGroup": 1000, "fsGroup": 1000},
    containers=[
        {"name": "vllm", "image": "lmcache/vllm-openai:latest",
         "command": ["vllm", "serve", "meta-llama/Llama-3.1-8B-Instruct",
                     "--enable-lora", "--max-loras", "4"],
         "envFrom": [{"secretRef": {"name": "vllm-secrets"}},
                     {"configMapRef": {"name": "vllm-env"}}],
         "env": [{"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"}],
         "securityContext": {"allowPrivilegeEscalation": False,
                             "readOnlyRootFilesystem": True,
                             "capabilities": {"drop": ["ALL"]}},
         "resources": res(cpu="4", memory="16Gi", gpu="1", lim_memory="24Gi"),
         "volumeMounts": [{"name": "lora-adapters", "mountPath": "/data/lora"},
                          {"name": "tmp", "mountPath": "/tmp"}]},
        {"name": "sidecar", "image": "lmcache/lmstack-sidecar:latest",
         "command": ["/bin/bash", "-c",
                     "python3 -m lora_controller --port 30090 --lora-dir /data/lora"],
         "securityContext": {"allowPrivilegeEscalation": False,
                             "readOnlyRootFilesystem": True},
         "resources": res(cpu="100m", memory="128Mi", lim_memory="256Mi"),
         "volumeMounts": [{"name": "lora-adapters", "mountPath": "/data/lora"}]},
    ],
    volumes=[{"name": "lora-adapters", "persistentVolumeClaim": {"claimName": "lora"}},
             {"name": "tmp", "emptyDir": {}}]), "uid-38"))

# KServe's Hugging Face server with the vLLM backend (raw deployment,
# requests equal to limits: Guaranteed). The server package is found
# through the image's PYTHONPATH only; here the image's value is given by
# annotation (the pythonpath hook, which works in a virtualenv too).
case("39_kserve_huggingfaceserver", review(pod(
    name="huggingface-llama3-predictor-6d7c8f5b9-4lqkz",
    labels=dict(HYPHEN, **{
        "serving.kserve.io/inferenceservice": "huggingface-llama3",
        "component": "predictor"}),
    annotations={"serving.kserve.io/deploymentMode": "RawDeployment",
                 "vllm-profiler.llm-d.ai/image-pythonpath":
                 "/kserve-workspace/huggingfaceserver"},
    containers=[{
        "name": "kserve-container",
        "image": "kserve/huggingfaceserver:v0.15.0-gpu",
        "args": ["--model_name=llama3",
                 "--model_id=meta-llama/meta-llama-3-8b-instruct",
                 "--backend=vllm", "--http_port=8080"],
        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {
                    "name": "hf-secret", "key": "HF_TOKEN", "optional": False}}},
                {"name": "PORT", "value": "8080"},
                {"name": "K_REVISION", "value": "huggingface-llama3-predictor"}],
        "resources": res(cpu="6", memory="24Gi", gpu="1", lim_cpu="6",
                         lim_memory="24Gi"),
        "ports": [{"containerPort": 8080, "name": "user-port", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/v1/models/llama3", "port": 8080}},
    }]), "uid-39"))

# vLLM's Kubernetes doc example with hostNetwork: skipped by default, and
# injected with the Unix-socket control plane when opted in.
VLLM_DOC = {
    "name": "vllm", "image": "vllm/vllm-openai:latest",
    "command": ["/bin/sh", "-c"],
    "args": ["vllm serve meta-llama/Llama-3.2-1B-Instruct --trust-remote-code "
             "--enable-chunked-prefill --max_num_batched_tokens 1024"],
    "env": [{"name": "HUGGING_FACE_HUB_TOKEN", "valueFrom": {"secretKeyRef": {
        "name": "hf-token-secret", "key": "token"}}}],
    "ports": [{"containerPort": 8000}],
    "resources": res(cpu="10", memory="20G", gpu="1", lim_cpu="10",
                     lim_memory="20G"),
    "volumeMounts": [{"mountPath": "/root/.cache/huggingface", "name": "cache-volume"},
                     {"name": "shm", "mountPath": "/dev/shm"}],
}
DOC_VOLUMES = [{"name": "cache-volume", "persistentVolumeClaim": {"claimName": "mistral-7b"}},
               {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}}]
case("40_vllm_doc_host_network_skipped", review(pod(
    name="mistral-7b-5f8d9c-abcde", labels=dict(HYPHEN, app="mistral-7b"),
    hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet",
    containers=[copy.deepcopy(VLLM_DOC)], volumes=DOC_VOLUMES), "uid-40"))
case("41_vllm_doc_host_network_opted_in", review(pod(
    name="mistral-7b-5f8d9c-fghij", labels=dict(HYPHEN, app="mistral-7b"),
    annotations={"vllm-profiler.llm-d.ai/host-network": "true"},
    hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet",
    containers=[copy.deepcopy(VLLM_DOC)], volumes=DOC_VOLUMES), "uid-41"))

# AIBrix: the engine plus the Python `aibrix-runtime` sidecar.
case("42_aibrix_runtime_sidecar", review(pod(
    name="deepseek-r1-distill-llama-8b-6c9f7d-kq2mz",
    labels=dict(HYPHEN, **{"model.aibrix.ai/name": "deepseek-r1-distill-llama-8b",
                           "model.aibrix.ai/port": "8000"}),
    containers=[
        {"name": "vllm-openai", "image": "vllm/vllm-openai:v0.7.1",
         "command": ["python3", "-m", "vllm.entrypoints.openai.api_server",
                     "--host", "0.0.0.0", "--port", "8000",
                     "--model", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
                     "--served-model-name", "deepseek-r1-distill-llama-8b"],
         "resources": res(gpu="1"),
         "ports": [{"containerPort": 8000, "protocol": "TCP"}]},
        {"name": "aibrix-runtime", "image": "aibrix/runtime:v0.2.1",
         "command": ["aibrix_runtime", "--port", "8080"],
         "env": [{"name": "INFERENCE_ENGINE", "value": "vllm"},
                 {"name": "INFERENCE_ENGINE_ENDPOINT", "value": "http://localhost:8000"}],
         "ports": [{"containerPort": 8080, "protocol": "TCP"}]},
    ]), "uid-42"))

# Hardened pods: non-root UIDs with fsGroup and a read-only root
# filesystem; and a pod that runs as root.
case("43_nonroot_fsgroup_read_only_root", review(pod(
    securityContext={"runAsNonRoot": True, "runAsUser": 2000,
                     "runAsGroup": 2000, "fsGroup": 2000,
                     "seccompProfile": {"type": "RuntimeDefault"}},
    containers=[vllm_container(securityContext={
        "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]}},
        volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}])],
    volumes=[{"name": "tmp", "emptyDir": {}}]), "uid-43"))
case("44_root_pod", review(pod(securityContext={"runAsUser": 0}), "uid-44"))

# The user-site hook cannot work when the container sets PYTHONUSERBASE
# (and no PYTHONPATH to prepend to): not injected, and why.
case("45_pythonuserbase_set", review(pod(containers=[vllm_container(env=[
    {"name": "PYTHONUSERBASE", "value": "/opt/userbase"}])]), "uid-45"))
# Both labels: one webhook entry per key calls the webhook twice; the
# second call (goldens re-admit every patched pod) is a no-op.
case("46_both_label_keys", review(pod(labels=dict(LABEL, **HYPHEN)), "uid-46"))
# Containers named by annotation override the vLLM default.
case("47_default_container_without_vllm", review(pod(
    annotations={"kubectl.kubernetes.io/default-container": "server"},
    containers=[{"name": "proxy", "image": "envoyproxy/envoy:v1.30"},
                {"name": "server", "image": "registry.example/llm-server:1",
                 "command": ["python3", "-m", "server"]}]), "uid-47"))
# Guaranteed with a native sidecar already present: llm-d decode with
# resources on the routing proxy too.
_proxy = routing_proxy()
_proxy["resources"] = res(cpu="500m", memory="256Mi", lim_cpu="500m",
                          lim_memory="256Mi")
case("48_llmd_decode_guaranteed_with_native_sidecar", review(pod(
    name="ms-qwen-llm-d-modelservice-decode-5d9c7b-gq7rn",
    labels=llmd_labels("decode"),
    containers=[llmd_vllm("decode", res(
        cpu="16", memory="64Gi", gpu="1", lim_cpu="16", lim_memory="64Gi"))],
    initContainers=[_proxy], volumes=LLMD_VOLUMES), "uid-48"))

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
