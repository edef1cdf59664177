#!/usr/bin/python3
"""Checks the rendered webhook manifests.

Usage: kustomize_check.py RENDERED.yaml CERT_DIR      (overlays/selfsigned)
       kustomize_check.py --cert-manager RENDERED.yaml (overlays/cert-manager)
"""
import base64
import subprocess
import sys

import yaml


def b64(s):
    return base64.b64decode("".join(s.split()))


def check_cert_manager(path):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = [d["kind"] for d in docs]
    assert "Secret" not in kinds, "cert-manager overlay must not ship a Secret"
    dep = [d for d in docs if d["kind"] == "Deployment"][0]
    vol = [v for v in dep["spec"]["template"]["spec"]["volumes"]
           if v["name"] == "certs"][0]
    certs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Certificate"}
    serving = certs["vllm-profiler-webhook"]
    assert serving["spec"]["secretName"] == vol["secret"]["secretName"]
    assert serving["metadata"]["namespace"] == "vllm-profiler"
    for n in ("vllm-profiler-webhook.vllm-profiler.svc",
              "vllm-profiler-webhook.vllm-profiler.svc.cluster.local"):
        assert n in serving["spec"]["dnsNames"], n
    issuers = {d["metadata"]["name"] for d in docs if d["kind"] == "Issuer"}
    assert serving["spec"]["issuerRef"]["name"] in issuers
    assert certs["vllm-profiler-webhook-ca"]["spec"]["isCA"] is True
    mwc = [d for d in docs if d["kind"] == "MutatingWebhookConfiguration"][0]
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == \
        "vllm-profiler/vllm-profiler-webhook"
    assert len(mwc["webhooks"]) == 2
    for wh in mwc["webhooks"]:
        assert "caBundle" not in wh["clientConfig"]
    print(f"cert-manager overlay OK ({len(docs)} objects)")


def check_webhook(wh, svc, certs):
    assert wh["sideEffects"] == "None"
    assert wh["failurePolicy"] == "Ignore"
    assert wh["reinvocationPolicy"] == "IfNeeded"
    assert wh["admissionReviewVersions"] == ["v1"]
    assert 1 <= wh["timeoutSeconds"] <= 10
    assert wh["rules"] == [{"operations": ["CREATE"], "apiGroups": [""],
                            "apiVersions": ["v1"], "resources": ["pods"],
                            "scope": "Namespaced"}]
    ref = wh["clientConfig"]["service"]
    assert ref["name"] == svc["metadata"]["name"]
    assert ref["namespace"] == svc["metadata"]["namespace"]
    assert ref["port"] == svc["spec"]["ports"][0]["port"]
    assert ref["path"] == "/mutate"
    assert b64(wh["clientConfig"]["caBundle"]) == open(f"{certs}/ca.crt", "rb").read()
    exprs = wh["namespaceSelector"]["matchExpressions"]
    assert {"key": "kubernetes.io/metadata.name", "operator": "In",
            "values": ["downstream-llm-d"]} in exprs
    excluded = [e for e in exprs if e["operator"] == "NotIn"][0]["values"]
    for n in ("kube-system", "kube-public", "kube-node-lease", "vllm-profiler"):
        assert n in excluded, n


def main():
    if sys.argv[1] == "--cert-manager":
        return check_cert_manager(sys.argv[2])
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
    certs = sys.argv[2]
    by_kind = {d["kind"]: d for d in docs}
    for kind in ("Namespace", "ServiceAccount", "Secret", "Service",
                 "Deployment", "PodDisruptionBudget",
                 "MutatingWebhookConfiguration"):
        assert kind in by_kind, f"missing {kind}"
    ns = by_kind["Namespace"]
    assert ns["metadata"]["name"] == "vllm-profiler"
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

    dep = by_kind["Deployment"]
    assert dep["metadata"]["namespace"] == "vllm-profiler"
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    for kind in ("requests", "limits"):
        assert c["resources"][kind]["cpu"] and c["resources"][kind]["memory"]
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in c["env"]}
    defaults = {"TARGET_NAMESPACE": "downstream-llm-d",
            "TARGET_LABEL_KEY":
                "llm-d.ai/inference-serving,llm-d.ai/inferenceServing",
            "TARGET_LABEL_VALUE": "true", "INJECT_ENV_NAME": "PYTHONPATH",
            "INJECT_ENV_VALUE": "/home/vllm/profiler"}
    for k, v in defaults.items():
        assert env[k] == v, (k, env.get(k))
    assert "POD_NAMESPACE" in env
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["https"]
    assert env["LISTEN_ADDRESS"].endswith(f":{port}")

    secret = by_kind["Secret"]
    vol = [v for v in pod["volumes"] if v["name"] == "certs"][0]
    assert vol["secret"]["secretName"] == secret["metadata"]["name"]
    assert secret["metadata"]["namespace"] == "vllm-profiler"
    mount = [m for m in c["volumeMounts"] if m["name"] == "certs"][0]
    assert env["TLS_CERT_FILE"] == mount["mountPath"] + "/tls.crt"
    assert env["TLS_KEY_FILE"] == mount["mountPath"] + "/tls.key"
    for name in ("tls.crt", "tls.key", "ca.crt"):
        assert b64(secret["data"][name]) == open(f"{certs}/{name}", "rb").read(), name

    svc = by_kind["Service"]
    assert svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["targetPort"] == "https"

    mwc = by_kind["MutatingWebhookConfiguration"]
    # One entry per TARGET_LABEL_KEY key, otherwise identical.
    keys = env["TARGET_LABEL_KEY"].split(",")
    assert [wh["objectSelector"] for wh in mwc["webhooks"]] == [
        {"matchLabels": {k: env["TARGET_LABEL_VALUE"]}} for k in keys]
    names = [wh["name"] for wh in mwc["webhooks"]]
    assert len(set(names)) == len(names), names
    first = dict(mwc["webhooks"][0], name=None, objectSelector=None)
    for other in mwc["webhooks"][1:]:
        assert dict(other, name=None, objectSelector=None) == first
    for wh in mwc["webhooks"]:
        check_webhook(wh, svc, certs)
    ref = mwc["webhooks"][0]["clientConfig"]["service"]

    # The serving certificate matches the Service DNS names and the CA.
    subprocess.run(["openssl", "verify", "-CAfile", f"{certs}/ca.crt",
                    f"{certs}/tls.crt"], check=True, capture_output=True)
    for host in (f"{ref['name']}.{ref['namespace']}.svc",
                 f"{ref['name']}.{ref['namespace']}.svc.cluster.local"):
        out = subprocess.run(["openssl", "x509", "-noout", "-in",
                              f"{certs}/tls.crt", "-checkhost", host],
                             check=True, capture_output=True, text=True).stdout
        assert "does match" in out and "NOT" not in out, out
    print(f"kustomize output OK ({len(docs)} objects)")


if __name__ == "__main__":
    main()
