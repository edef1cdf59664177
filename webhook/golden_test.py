#!/usr/bin/python3
"""Golden tests of the webhook's admission logic.

For every testdata/golden/NAME.review.json (an AdmissionReview as the API
server sends it):
  1. `webhook review` answers it; the answer, with the base64 patch decoded,
     must equal NAME.response.json;
  2. the patch is applied to request.object with python3-jsonpatch (an
     independent RFC 6902 implementation); the result must equal
     NAME.patched.json (or the unchanged pod when there is no patch);
  3. the patched pod, admitted again, gets no patch (idempotence);
  4. every op is an `add` that never replaces an array or object of the
     user's pod, and every injected container meets Pod Security Standards
     "restricted" and has requests and limits (none in BestEffort pods);
  5. the patched pod passes the API server's validation rules that the patch
     can break (validate_pod: names, env, mounts, volumes, quantities,
     restartPolicy), and keeps its QoS class (qos_class: the kubelet's
     algorithm, written again here).

Usage: golden_test.py WEBHOOK_BINARY [--update]   (--update rewrites the
expected files in the source tree; review the diff).
"""
import base64
import copy
import glob
import re
from fractions import Fraction
import json
import os
import subprocess
import sys
import tempfile

import jsonpatch

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "testdata", "golden")
# Fixed flags so the goldens do not depend on the environment.
FLAGS = [
    "--target_namespace=downstream-llm-d",
    "--namespace=vllm-profiler",
    "--probe_image=vllm-profiler/probe:test",
    "--collector_image=vllm-profiler/collector:test",
    "--log_level=ERROR",
]
INJECTED = {"vllm-profiler-probe-init", "vllm-profiler-collector"}


def run_review(binary, files):
    out = subprocess.run([binary, "review"] + FLAGS + files, check=True,
                         capture_output=True, text=True).stdout
    lines = out.splitlines()
    assert len(lines) == len(files), out
    results = []
    for line in lines:
        status, body = line.split("\t", 1)
        if status != "200":
            results.append({"http_status": int(status), "message": body})
            continue
        review = json.loads(body)
        resp = review["response"]
        if "patch" in resp:
            resp["patch"] = json.loads(base64.b64decode(resp["patch"]))
        results.append({"http_status": 200, "review": review})
    return results


def check_patch_ops(pod, ops, name):
    for op in ops:
        assert op["op"] == "add", f"{name}: non-add op {op}"
        path = op["path"]
        if path.endswith("/-"):
            continue
        try:
            existing = jsonpatch.JsonPointer(path).resolve(pod)
        except jsonpatch.JsonPointerException:
            continue  # creates a new member
        assert not isinstance(existing, (list, dict)), (
            f"{name}: {path} would replace the user's {type(existing).__name__}")
        assert path.endswith("/value") and "/env/" in path, (
            f"{name}: {path} replaces an existing value")


def check_injected_containers(pod, name, qos):
    spec = pod["spec"]
    pod_uid = spec.get("securityContext", {}).get("runAsUser")
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c["name"] not in INJECTED:
            continue
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, name
        assert sc.get("runAsUser", pod_uid) != 0, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert sc["readOnlyRootFilesystem"] is True, name
        if qos == "BestEffort":
            assert "resources" not in c, (name, c["name"])
            continue
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                assert c["resources"][kind][res], (name, c["name"], kind, res)


_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
           "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)([eE][0-9]+|[a-zA-Z]*)$")


def quantity(q):
    m = _QUANTITY.match(q)
    assert m and (m.group(2) in _SUFFIX or m.group(2)[:1] in "eE"), (
        f"{q!r} is not a quantity")
    suffix = m.group(2)
    if suffix in _SUFFIX:
        return Fraction(m.group(1)) * Fraction(_SUFFIX[suffix])
    return Fraction(m.group(1)) * 10 ** int(suffix[1:])


def qos_class(pod):
    """The kubelet's GetPodQOS: cpu and memory, summed over all containers."""
    spec = pod["spec"]
    requests, limits, guaranteed = {}, {}, True
    for c in spec.get("initContainers", []) + spec["containers"]:
        r = c.get("resources", {})
        found = set()
        for kind, acc in (("requests", requests), ("limits", limits)):
            for res, q in r.get(kind, {}).items():
                if res in ("cpu", "memory") and quantity(q) > 0:
                    acc[res] = acc.get(res, 0) + quantity(q)
                    if kind == "limits":
                        found.add(res)
        if found != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"


_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def validate_pod(pod, name):
    """The API server's pod validation, as far as the patch can break it."""
    spec = pod["spec"]
    volumes = [v["name"] for v in spec.get("volumes", [])]
    assert len(volumes) == len(set(volumes)), f"{name}: duplicate volume"
    for v in spec.get("volumes", []):
        assert _DNS_LABEL.match(v["name"]) and len(v["name"]) <= 63, name
        sources = [k for k in v if k != "name"]
        assert len(sources) == 1, f"{name}: volume {v['name']}: {sources}"
        if "emptyDir" in v and "sizeLimit" in v["emptyDir"]:
            quantity(v["emptyDir"]["sizeLimit"])
    inits = spec.get("initContainers", [])
    all_names = [c["name"] for c in inits + spec["containers"]]
    assert len(all_names) == len(set(all_names)), f"{name}: duplicate container"
    for c in inits + spec["containers"]:
        where = f"{name}: container {c['name']}"
        assert _DNS_LABEL.match(c["name"]) and len(c["name"]) <= 63, where
        assert isinstance(c.get("image"), str) and c["image"], where
        for field in ("command", "args"):
            assert all(isinstance(a, str) for a in c.get(field, [])), where
        for e in c.get("env", []):
            assert _ENV_NAME.match(e["name"]), f"{where}: env {e['name']}"
            assert set(e) <= {"name", "value", "valueFrom"}, where
            assert not ("value" in e and "valueFrom" in e), where
            if "value" in e:
                assert isinstance(e["value"], str), where
        paths = [m["mountPath"] for m in c.get("volumeMounts", [])]
        assert len(paths) == len(set(paths)), f"{where}: duplicate mountPath"
        for m in c.get("volumeMounts", []):
            assert m["name"] in volumes, f"{where}: mounts unknown {m['name']}"
        if "restartPolicy" in c:
            assert c in inits and c["restartPolicy"] == "Always", where
        r = c.get("resources", {})
        assert set(r) <= {"requests", "limits", "claims"}, where
        for kind in ("requests", "limits"):
            for q in r.get(kind, {}).values():
                quantity(q)
        for res, q in r.get("requests", {}).items():
            if res in r.get("limits", {}):
                assert quantity(q) <= quantity(r["limits"][res]), (
                    f"{where}: request {res} above its limit")
        for field in ("readinessProbe", "livenessProbe", "startupProbe"):
            if field in c:
                handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc")
                            if k in c[field]]
                assert len(handlers) == 1, f"{where}: {field}"
    for k, v in pod["metadata"].get("annotations", {}).items():
        assert isinstance(v, str), f"{name}: annotation {k}"
    assert sum(len(k) + len(v) for k, v in
               pod["metadata"].get("annotations", {}).items()) < 256 * 1024


def load(path):
    with open(path) as f:
        return json.load(f)


def dump(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    binary = os.path.abspath(sys.argv[1])
    update = "--update" in sys.argv
    reviews = sorted(glob.glob(os.path.join(GOLDEN, "*.review.json")))
    assert len(reviews) >= 20, f"only {len(reviews)} golden reviews"
    results = run_review(binary, reviews)
    failures = []
    tmp = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    again_files = []
    injected = 0
    qos_checked = {}  # QoS class -> first golden pod of that class
    for path, got in zip(reviews, results):
        name = os.path.basename(path)[: -len(".review.json")]
        expected_path = os.path.join(GOLDEN, name + ".response.json")
        patched_path = os.path.join(GOLDEN, name + ".patched.json")
        review_in = load(path)
        pod = review_in["request"]["object"]
        ops = got.get("review", {}).get("response", {}).get("patch")
        patched = copy.deepcopy(pod)
        if ops is not None:
            injected += 1
            check_patch_ops(pod, ops, name)
            patched = jsonpatch.JsonPatch(ops).apply(pod)
            qos = qos_class(pod)
            check_injected_containers(patched, name, qos)
            validate_pod(patched, name)
            if qos_class(patched) != qos:
                failures.append(f"{name}: QoS class {qos} became "
                                f"{qos_class(patched)}")
            status = json.loads(patched["metadata"]["annotations"][
                "vllm-profiler.llm-d.ai/status"])
            if status["qosClass"] != qos:
                failures.append(f"{name}: status says {status['qosClass']}, "
                                f"the pod is {qos}")
            qos_checked.setdefault(qos, name)
        if update:
            dump(expected_path, got)
            if ops is not None:
                dump(patched_path, patched)
            elif os.path.exists(patched_path):
                os.remove(patched_path)
        else:
            if got != load(expected_path):
                failures.append(f"{name}: response differs from {expected_path}:\n"
                                f"{json.dumps(got, indent=2, sort_keys=True)}")
            want = load(patched_path) if os.path.exists(patched_path) else pod
            if patched != want:
                failures.append(f"{name}: patched pod differs from {patched_path}:\n"
                                f"{json.dumps(patched, indent=2, sort_keys=True)}")
        again = copy.deepcopy(review_in)
        again["request"]["object"] = patched
        again_path = os.path.join(tmp, name + ".again.json")
        dump(again_path, again)
        again_files.append((name, again_path, got))
    for (name, _, first), second in zip(
            again_files, run_review(binary, [p for _, p, _ in again_files])):
        resp = second.get("review", {}).get("response", {})
        if "patch" in resp:
            failures.append(f"{name}: re-admitting the patched pod gives a patch: "
                            f"{resp['patch']}")
        if first["http_status"] != second["http_status"]:
            failures.append(f"{name}: status changed on re-admission")
    assert injected >= 10, f"only {injected} cases inject"
    assert set(qos_checked) == {"BestEffort", "Burstable", "Guaranteed"}, (
        qos_checked)
    if failures:
        print("\n\n".join(failures))
        sys.exit(1)
    print(f"{len(reviews)} golden reviews OK ({injected} injected)"
          + (" [updated]" if update else ""))


if __name__ == "__main__":
    main()
