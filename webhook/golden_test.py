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
     "restricted" and has requests and limits.

Usage: golden_test.py WEBHOOK_BINARY [--update]   (--update rewrites the
expected files in the source tree; review the diff).
"""
import base64
import copy
import glob
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


def check_injected_containers(pod, name):
    spec = pod["spec"]
    for c in spec.get("initContainers", []) + spec["containers"]:
        if c["name"] not in INJECTED:
            continue
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True, name
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
        assert sc["readOnlyRootFilesystem"] is True, name
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                assert c["resources"][kind][res], (name, c["name"], kind, res)


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
            check_injected_containers(patched, name)
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
    if failures:
        print("\n\n".join(failures))
        sys.exit(1)
    print(f"{len(reviews)} golden reviews OK ({injected} injected)"
          + (" [updated]" if update else ""))


if __name__ == "__main__":
    main()
