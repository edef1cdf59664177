"""vpctl's fleet mode end to end, without a cluster.

Three "pods" are real local collectors, each with the vLLM-shaped sample
workload and the real probe bundle (vllm-a runs two tensor-parallel ranks),
plus one collector without a workload (it refuses captures: no probes).
A strict stand-in kubectl (tests/fleet/kubectl) lists them from a Pod List
fixture, next to a pod the webhook did not inject and one whose collector
is not ready, and port-forwards to the local collectors' ports.

Checks what a user sees: the skip lines, the status and list tables, the
per-pod traces and merged.json of a synchronized capture (unique pids,
names and order, every pod's steps on one timeline, clock offsets), starts
within one step, and the bad cases: a dying port-forward, a pod that
disappears, a refusing collector, `vpctl merge` of bad input.

Usage: fleet_test.py VPCTL COLLECTOR PROBE_BUNDLE_TAR WORKLOAD KUBECTL
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

VPCTL, COLLECTOR, PROBE_TAR, WORKLOAD, KUBECTL = [
    os.path.abspath(a) for a in sys.argv[1:6]]
NS = "llm"
STEP_SLEEP_MS = 50
RUNNING = {"a": ("vllm-a", 2, "node-1"), "b": ("vllm-b", 1, "node-2"),
           "c": ("vllm-c", 1, "node-2")}


class Pod:
    """A collector (and optionally a workload) standing for one pod."""

    def __init__(self, root, name, tp, node, probe_dir):
        self.name, self.node = name, node
        self.dir = os.path.join(root, name)
        os.makedirs(os.path.join(self.dir, "traces"))
        sock = os.path.join(self.dir, "c.sock")
        port_file = os.path.join(self.dir, "ports.json")
        self.log = open(os.path.join(self.dir, "collector.log"), "wb")
        self.collector = subprocess.Popen(
            [COLLECTOR, "--probe_socket=" + sock,
             "--grpc_address=127.0.0.1:0", "--http_address=127.0.0.1:0",
             "--trace_dir=" + os.path.join(self.dir, "traces"),
             "--port_file=" + port_file, "--window_linger_ms=100"],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            assert self.collector.poll() is None and time.time() < deadline, \
                "collector of %s did not start" % name
            time.sleep(0.02)
        with open(port_file) as f:
            self.grpc_port = json.load(f)["grpc_port"]
        self.workload = None
        if tp == 0:
            return
        env = dict(os.environ, PYTHONPATH=probe_dir,
                   VLLM_PROFILER_SOCKET=sock, VLLM_PROFILER_START_STEP="1",
                   VLLM_PROFILER_NUM_STEPS="0", VLLM_PROFILER_GPU="0",
                   POD_NAME=name, POD_NAMESPACE=NS, NODE_NAME=node)
        self.wlog = open(os.path.join(self.dir, "workload.log"), "wb")
        self.workload = subprocess.Popen(
            ["/usr/bin/python3", WORKLOAD, "--steps", "1000000",
             "--sleep-ms", str(STEP_SLEEP_MS), "--tp", str(tp)],
            env=env, stdout=self.wlog, stderr=subprocess.STDOUT)

    def stop(self):
        for p in (self.workload, self.collector):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        self.log.close()
        if self.workload is not None:
            self.wlog.close()


def pod_json(name, node, injected=True, ready=True, labels=None):
    meta = {"name": name, "namespace": NS,
            "labels": dict({"app": "vllm"}, **(labels or {}))}
    if injected:
        meta["annotations"] = {"vllm-profiler.llm-d.ai/status": "{}"}
    collector = {"name": "vllm-profiler-collector", "ready": ready}
    if not ready:
        collector["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return {"metadata": meta, "spec": {"nodeName": node},
            "status": {"phase": "Running",
                       "initContainerStatuses": [collector]}}


class FleetTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="vpfleet-", dir="/tmp")
        probe_dir = os.path.join(cls.root, "probe")
        with tarfile.open(PROBE_TAR) as t:
            t.extractall(probe_dir)
        cls.pods = [Pod(cls.root, n, tp, node, probe_dir)
                    for n, tp, node in RUNNING.values()]
        cls.pods.append(Pod(cls.root, "vllm-empty", 0, "node-3", probe_dir))
        # vllm-b and vllm-c are the two pods of one LeaderWorkerSet group.
        lws = {"leaderworkerset.sigs.k8s.io/name": "llama",
               "leaderworkerset.sigs.k8s.io/group-index": "0"}
        items = [pod_json(p.name, p.node,
                          labels=lws if p.name in ("vllm-b", "vllm-c")
                          else None) for p in cls.pods]
        items.append(pod_json("vllm-plain", "node-3", injected=False))
        items.append(pod_json("vllm-pending", "node-3", ready=False))
        items.append(pod_json("other", "node-3", labels={"app": "web"}))
        cls.pod_list = {"kind": "List", "items": items}
        cls.ports = {p.name: p.grpc_port for p in cls.pods}
        for p in cls.pods:
            want = {"vllm-a": 2, "vllm-empty": 0}.get(p.name, 1)
            cls.wait_probes(p, want)

    @classmethod
    def wait_probes(cls, pod, want):
        deadline = time.time() + 90
        while time.time() < deadline:
            out = subprocess.run(
                [VPCTL, "--addr", "127.0.0.1:%d" % pod.grpc_port, "status"],
                capture_output=True, text=True).stdout
            if ("probes (%d):" % want) in out and "idle" not in out:
                return
            time.sleep(0.2)
        raise AssertionError("%s: %d probes not connected:\n%s" %
                             (pod.name, want, out))

    @classmethod
    def tearDownClass(cls):
        for p in cls.pods:
            p.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self):
        self.state = tempfile.mkdtemp(dir=self.root)
        self.write("pods.json", self.pod_list)
        self.write("ports.json", self.ports)
        self.write_text("context", "test-ctx")

    def tearDown(self):
        errors = os.path.join(self.state, "errors.log")
        if os.path.exists(errors):
            self.fail("the stand-in kubectl was called unexpectedly:\n" +
                      open(errors).read())

    def write(self, name, obj):
        self.write_text(name, json.dumps(obj))

    def write_text(self, name, text):
        with open(os.path.join(self.state, name), "w") as f:
            f.write(text)

    def vpctl(self, *args, select=("-l", "app=vllm")):
        env = dict(os.environ, FAKE_KUBECTL_DIR=self.state,
                   VPCTL_KUBECTL=KUBECTL)
        cmd = [VPCTL, "--context", "test-ctx", "-n", NS] + list(select)
        r = subprocess.run(cmd + list(args), capture_output=True, text=True,
                           env=env, timeout=240)
        return r.returncode, r.stdout, r.stderr

    def test_status_one_table_and_skip_reasons(self):
        t0 = time.time()
        rc, out, err = self.vpctl("status")
        print("fleet status of 4 pods (list, 4 port-forwards, 3 status "
              "calls each, one table): %.2f s" % (time.time() - t0))
        self.assertEqual(rc, 0, err)
        self.assertIn("vpctl: pod vllm-plain skipped: not injected (no "
                      "vllm-profiler.llm-d.ai/status annotation)", err)
        self.assertIn("vpctl: pod vllm-pending skipped: its "
                      "vllm-profiler-collector container is not ready "
                      "(ContainerCreating)", err)
        self.assertIn("vpctl: 6 pod(s) found in llm, 4 usable\n", err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("POD  "), out)
        self.assertIn("CLOCK OFFSET", lines[0])
        self.assertEqual([l.split()[0] for l in lines[1:]],
                         ["vllm-a", "vllm-b", "vllm-c", "vllm-empty"])
        self.assertEqual(lines[1].split()[1:3], ["node-1", "2"])
        self.assertEqual(lines[4].split()[1:3], ["node-3", "0"])

    def test_max_pods_cap_and_pod_names(self):
        rc, out, err = self.vpctl("--max-pods", "2", "list")
        self.assertEqual(rc, 0, err)
        self.assertIn("4 usable; using the first 2 (--max-pods 2)", err)
        self.assertEqual(sorted({l.split()[0] for l in out.splitlines()[1:]}),
                         ["vllm-a", "vllm-b"])
        rc, out, err = self.vpctl("list", select=("--pod", "vllm-c",
                                                  "--pod", "gone"))
        self.assertEqual(rc, 0, err)
        self.assertIn("vpctl: pod gone skipped: not found", err)
        self.assertEqual({l.split()[0] for l in out.splitlines()[1:]},
                         {"vllm-c"})

    def capture(self, out_dir, select=("-l", "app=vllm")):
        return self.vpctl("capture", "--steps", "20", "--no-gpu",
                          "--timeout-ms", "60000", "-o", out_dir,
                          select=select)

    def test_synchronized_capture_and_merged_timeline(self):
        out_dir = os.path.join(self.state, "out")
        t0 = time.time()
        rc, out, err = self.capture(out_dir)
        elapsed = time.time() - t0
        print("fleet capture of 4 pods (3 with workloads), 20 steps: "
              "%.2f s" % elapsed)
        self.assertEqual(rc, 1, err)  # vllm-empty refuses.
        self.assertIn("vpctl: pod vllm-empty: the collector refused the "
                      "capture: no probes are connected", err)
        self.assertIn("merged 3 pod(s), 4 processes -> %s/merged.json" %
                      out_dir, out)
        self.assertEqual(sorted(os.listdir(out_dir)),
                         ["merged.json", "vllm-a.json", "vllm-b.json",
                          "vllm-c.json"])
        with open(os.path.join(out_dir, "merged.json")) as f:
            merged = json.load(f)
        meta = merged["metadata"]
        names = {}
        order = {}
        for e in merged["traceEvents"]:
            if e.get("ph") == "M" and e["name"] == "process_name":
                names[e["pid"]] = e["args"]["name"]
            if e.get("ph") == "M" and e["name"] == "process_sort_index":
                order[e["args"]["sort_index"]] = e["pid"]
        self.assertEqual(len(set(names)), 4, names)  # Unique pids.
        self.assertEqual([names[order[i]] for i in sorted(order)],
                         ["vllm-a · VllmWorker-0 · rank 0",
                          "vllm-a · VllmWorker-1 · rank 1",
                          "vllm-b · run_workload.py · rank 0",
                          "vllm-c · run_workload.py · rank 0"])
        self.assertEqual([p["instance"] for p in meta["processes"]],
                         ["", "", "llama/0", "llama/0"])
        steps = {}
        for e in merged["traceEvents"]:
            if e.get("cat") == "step":
                steps.setdefault(e["pid"], []).append(e["ts"])
        self.assertEqual(sorted(len(v) for v in steps.values()), [20] * 4)
        self.check_one_timeline_and_sync(steps, meta)
        self.check_started_after_the_instant(steps, merged)
        self.assertEqual(len({p["metadata"]["config"]["group_id"]
                              for p in meta["pods"]}), 1)
        for pod in meta["pods"]:
            self.assertIn("clock_offset_ns", pod)
            self.assertLess(abs(pod["clock_offset_ns"]),
                            pod["clock_uncertainty_ns"] + 5000000)
            self.assertEqual(pod["node"], RUNNING[pod["pod"][-1]][2])
        # The offline merge of the per-pod files gives the same processes.
        rc, out, err = subprocess.run(
            [VPCTL, "merge"] + [os.path.join(out_dir, "vllm-%s.json" % p)
                                for p in "cab"] +
            ["-o", os.path.join(self.state, "again.json")],
            capture_output=True, text=True).returncode, None, None
        self.assertEqual(rc, 0)
        with open(os.path.join(self.state, "again.json")) as f:
            again = json.load(f)
        self.assertEqual([p["name"] for p in again["metadata"]["processes"]],
                         [p["name"] for p in meta["processes"]])

    def check_one_timeline_and_sync(self, steps, meta):
        firsts = [min(v) for v in steps.values()]
        periods = []
        for v in steps.values():
            v = sorted(v)
            gaps = sorted(b - a for a, b in zip(v, v[1:]))
            periods.append(gaps[len(gaps) // 2])
        spread = max(firsts) - min(firsts)
        print("first captured steps spread over %.3f ms; step period %.3f "
              "ms" % (spread / 1000, max(periods) / 1000))
        # One timeline: every pod's steps within the same second.
        self.assertLess(spread, 1e6)
        # Synchronized: the first steps differ by less than one step.
        self.assertLess(spread, max(periods))

    def check_started_after_the_instant(self, steps, merged):
        """Each pod began at its first step at or after T (not at once)."""
        meta = merged["metadata"]
        by_pod = {p["pod"]: p for p in meta["pods"]}
        for proc in meta["processes"]:
            pod = by_pod[proc["pod"]]
            t = (pod["metadata"]["config"]["start_at_unix_ns"] -
                 pod["clock_offset_ns"])
            first_ns = meta["base_time_unix_ns"] + min(steps[proc["pid"]]) * 1e3
            late_ms = (first_ns - t) / 1e6
            self.assertGreaterEqual(late_ms, -1, proc["name"])
            self.assertLess(late_ms, 1000, proc["name"])

    def test_dying_port_forward_and_disappearing_pod(self):
        self.write("faults.json", {
            "vllm-b": {"die_after_s": 1.0, "restart": "ok"},
            "vllm-c": {"die_after_s": 1.0, "restart": "gone"}})
        out_dir = os.path.join(self.state, "out")
        rc, out, err = self.capture(out_dir, select=(
            "--pod", "vllm-a,vllm-b", "--pod", "vllm-c"))
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"vpctl: pod vllm-b: port-forward died; "
                              r"restarted on 127\.0\.0\.1:\d+\n")
        self.assertIn("vpctl: pod vllm-c: kubectl port-forward pod/vllm-c "
                      "died (error: lost connection to pod) and could not be "
                      "restarted: kubectl port-forward pod/vllm-c: error: "
                      "error upgrading connection: pods \"vllm-c\" not found",
                      err)
        self.assertIn("merged 2 pod(s), 3 processes", out)
        self.assertEqual(sorted(os.listdir(out_dir)),
                         ["merged.json", "vllm-a.json", "vllm-b.json"])

    def test_merge_bad_input_writes_nothing(self):
        junk = os.path.join(self.state, "junk.json")
        self.write_text("junk.json", "not json")
        out = os.path.join(self.state, "m.json")
        trace = os.path.join(self.pods[0].dir, "t.json")
        r = subprocess.run([VPCTL, "merge", junk, junk, "-o", out],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "vpctl: %s: not a vllm-profiler trace "
                         "(invalid JSON)\n" % junk)
        self.assertFalse(os.path.exists(out))
        # Two fleet captures are two capture groups.
        dirs = []
        for i in range(2):
            dirs.append(os.path.join(self.state, "cap%d" % i))
            rc, _, err = self.capture(dirs[-1], select=("--pod", "vllm-b"))
            self.assertEqual(rc, 0, err)
        files = [os.path.join(d, "vllm-b.json") for d in dirs]
        r = subprocess.run([VPCTL, "merge"] + files + ["-o", out],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("are not from one capture (group 'fleet-", r.stderr)
        self.assertIn("--force merges them anyway", r.stderr)
        self.assertFalse(os.path.exists(out))
        r = subprocess.run([VPCTL, "merge", "--force"] + files + ["-o", out],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "merged 2 traces (2 processes) into %s\n"
                         % out)

    def test_usage_errors(self):
        rc, _, err = self.vpctl("status", select=())
        self.assertEqual(rc, 2)
        self.assertEqual(err, "vpctl: pod selection needs exactly one of -l "
                              "SELECTOR and --pod NAME\n")
        rc, _, err = self.vpctl("capture", "--steps", "3")
        self.assertEqual(rc, 2)
        # Usage errors come before any pod is contacted.
        self.assertEqual(err, "vpctl: a capture on several pods needs -o DIR "
                              "(one trace per pod, and merged.json)\n")
        rc, _, err = self.vpctl("capture", "--steps", "3", "--pids", "4",
                                "-o", "x")
        self.assertEqual(rc, 2)
        self.assertIn("--pids selects processes of one collector", err)
        rc, _, err = self.vpctl("delete", "x")
        self.assertEqual(rc, 2)
        self.assertIn("'vpctl delete' works on one collector", err)
        rc, _, err = self.vpctl("status", select=("-l", "app=nothing"))
        self.assertEqual(rc, 1)
        self.assertIn("vpctl: 0 pod(s) found in llm, 0 usable", err)
        self.assertIn("vpctl: no usable pod", err)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
