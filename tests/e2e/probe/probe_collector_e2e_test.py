"""The probe with the real collector (//collector:collector): the sample
workload under the probe ends up as Chrome trace files.

usage: probe_collector_e2e_test.py PROBE_BUNDLE_TAR COLLECTOR RUN_WORKLOAD_PY VPCTL
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))
from collector_process import CollectorProcess  # noqa: E402

ARGS = {}


class ProbeWithCollectorTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="vp-e2ec-", dir="/tmp")
        cls.bundle = os.path.join(cls.tmp, "profiler")
        os.makedirs(cls.bundle)
        with tarfile.open(ARGS["bundle"]) as t:
            t.extractall(cls.bundle)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self.tmp)
        # Long enough that two spawned workers, which import torch side by
        # side, land in one window trace even on a loaded machine.
        self.c = CollectorProcess(ARGS["collector"], linger_ms=3000,
                                  dir=self.dir)
        self.sock = self.c.socket
        self.traces = self.c.trace_dir

    def grpc_port(self):
        return self.c.grpc_port

    def tearDown(self):
        self.c.stop()
        self.c.cleanup()

    def run_workload(self, args, **env_extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
        env["PYTHONPATH"] = self.bundle
        env["VLLM_PROFILER_SOCKET"] = self.sock
        env.update({k: str(v) for k, v in env_extra.items()})
        p = subprocess.run(["/usr/bin/python3", os.path.abspath(ARGS["workload"])]
                           + args, env=env, capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def wait_traces(self, n):
        """The file names of the stored traces, once there are `n`."""
        return sorted(t["file_name"] for t in self.c.wait_for_traces(n))

    def load(self, name):
        with open(os.path.join(self.traces, name)) as f:
            t = json.load(f)
        ev = t["traceEvents"] if isinstance(t, dict) else t
        # The time base is the earliest event, whichever process joined
        # first: no ts is negative.
        negative = [e for e in ev if e.get("ts", 0) < 0]
        self.assertEqual(negative[:3], [])
        return ev

    def test_window_trace_has_exactly_the_window(self):
        p = self.run_workload(["--steps", "200"])
        (name,) = self.wait_traces(1)
        self.assertRegex(name, r"^trace\d+\.json$")
        ev = self.load(name)
        steps = sorted(e["args"]["step"] for e in ev
                       if e.get("ph") == "X" and e.get("cat") == "step")
        self.assertEqual(steps, list(range(100, 150)))
        ops = [e for e in ev if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
        self.assertGreater(len(ops), 500)

    def test_requested_name_names_the_trace(self):
        self.run_workload(["--steps", "6"], VLLM_PROFILER_START_STEP=2,
                          VLLM_PROFILER_NUM_STEPS=2,
                          VLLM_TORCH_PROFILE="/somewhere/my_run.json")
        self.assertEqual(self.wait_traces(1), ["my_run.json"])

    def _two(self, flag):
        p = self.run_workload(["--steps", "12", "--sleep-ms", "20", flag, "2"],
                              VLLM_PROFILER_START_STEP=3,
                              VLLM_PROFILER_NUM_STEPS=4)
        (name,) = self.wait_traces(1)
        ev = self.load(name)
        pids = sorted(set(e["pid"] for e in ev
                          if e.get("ph") == "X" and e.get("cat") == "step"))
        self.assertEqual(len(pids), 2)
        self.assertEqual(name, "trace%d_%d.json" % tuple(pids))
        for pid in pids:
            steps = sorted(e["args"]["step"] for e in ev if e.get("pid") == pid
                           and e.get("ph") == "X" and e.get("cat") == "step")
            self.assertEqual(steps, [3, 4, 5, 6])
            self.assertTrue(any(e.get("pid") == pid and e.get("cat") == "cpu_op"
                                for e in ev))

    def test_tp2_engine_one_trace_ranked_workers_with_step_parts(self):
        self.run_workload(["--steps", "10", "--layout", "engine-core", "--tp",
                           "2", "--vllm-api", "async"],
                          VLLM_PROFILER_START_STEP=3, VLLM_PROFILER_NUM_STEPS=4)
        (name,) = self.wait_traces(1)
        ev = self.load(name)
        procs = sorted(e["args"]["name"] for e in ev
                       if e.get("ph") == "M" and e["name"] == "process_name")
        self.assertEqual(procs, ["VllmWorker-0 \u00b7 rank 0",
                                 "VllmWorker-1 \u00b7 rank 1"])
        for pid in set(e["pid"] for e in ev if e.get("cat") == "step"):
            mine = [e for e in ev if e.get("pid") == pid and e.get("ph") == "X"]
            self.assertEqual(sorted(e["args"]["step"] for e in mine
                                    if e["cat"] == "step"), [3, 4, 5, 6])
            parts = sorted(e["name"] for e in mine
                           if e["cat"] == "python_function")
            self.assertEqual(parts, ["execute_model"] * 4 +
                             ["sample_tokens"] * 4)
        with open(os.path.join(self.traces, name)) as f:
            meta = json.load(f)["metadata"]
        for p in meta["processes"]:
            self.assertEqual(p["world_size"], 2)
            self.assertIn("vllm.v1.worker.gpu_worker:Worker.execute_model+"
                          "sample_tokens", p["wrapped_targets"])

    def test_spawn_two_workers_one_trace(self):
        self._two("--spawn")

    def test_fork_two_workers_one_trace(self):
        self._two("--fork")


    def test_vpctl_capture_5_steps_while_running(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
        env.update(PYTHONPATH=self.bundle, VLLM_PROFILER_SOCKET=self.sock,
                   VLLM_PROFILER_START_STEP="1000000")
        work = subprocess.Popen(
            ["/usr/bin/python3", os.path.abspath(ARGS["workload"]), "--steps",
             "400", "--sleep-ms", "10"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        try:
            out = os.path.join(self.dir, "cmd.json")
            # The probe connects at its first step; retry until it is there.
            for _ in range(100):
                p = subprocess.run(
                    [os.path.abspath(ARGS["vpctl"]), "--addr",
                     "127.0.0.1:%d" % self.grpc_port(), "capture", "--steps",
                     "5", "-o", out], capture_output=True, text=True,
                    timeout=120)
                if p.returncode == 0:
                    break
                time.sleep(0.1)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        finally:
            work.wait(timeout=120)
        with open(out) as f:
            t = json.load(f)
        ev = t["traceEvents"] if isinstance(t, dict) else t
        steps = sorted(e["args"]["step"] for e in ev
                       if e.get("ph") == "X" and e.get("cat") == "step")
        self.assertEqual(len(steps), 5)
        self.assertEqual(steps, list(range(steps[0], steps[0] + 5)))
        self.assertTrue(any(e.get("cat") == "cpu_op" for e in ev))

    def test_vpctl_run_profiles_a_command(self):
        out = os.path.join(self.dir, "run.json")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
        p = subprocess.run(
            [os.path.abspath(ARGS["vpctl"]), "run", "--start-step", "3",
             "--steps", "4", "--collector", os.path.abspath(ARGS["collector"]),
             "--probe-dir", self.bundle, "-o", out, "--",
             "/usr/bin/python3", os.path.abspath(ARGS["workload"]), "--steps",
             "10"], env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(out) as f:
            t = json.load(f)
        ev = t["traceEvents"] if isinstance(t, dict) else t
        steps = sorted(e["args"]["step"] for e in ev
                       if e.get("ph") == "X" and e.get("cat") == "step")
        self.assertEqual(steps, [3, 4, 5, 6])


if __name__ == "__main__":
    (ARGS["bundle"], ARGS["collector"], ARGS["workload"],
     ARGS["vpctl"]) = sys.argv[1:5]
    del sys.argv[1:5]
    unittest.main(verbosity=2)
