"""Full stack without a GPU: the real probe + CuptiTracer over a fake
libcupti, in Debian's python with torch, with the real collector.

usage: probe_fake_cupti_test.py PROBE_BUNDLE_TAR COLLECTOR FAKE_LIBCUPTI FAKE_LIBCUDA

The sample workload runs under the probe; the torch shim pushes one external
correlation id per operator; fake_libcupti turns each into a launch
(cudaLaunchKernel on the operator's thread) and a kernel on "GPU 0 stream 7".
The trace must show those kernels on the GPU stream track, each at the end
of a flow from its launch, attributed to the operator that pushed its id.
"""
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "e2e", "harness"))
from collector_process import CollectorProcess  # noqa: E402

ARGS = {}
KERNEL = "fake_kernel(float*, int)"


class ProbeFakeCuptiTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vp-gpu-", dir="/tmp")
        self.bundle = os.path.join(self.tmp, "profiler")
        os.makedirs(self.bundle)
        with tarfile.open(ARGS["bundle"]) as t:
            t.extractall(self.bundle)
        self.c = CollectorProcess(ARGS["collector"], linger_ms=200,
                                  dir=self.tmp)
        self.sock = self.c.socket

    def tearDown(self):
        self.c.stop()
        self.c.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_workload(self, args=(), steps=8, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
        env.update({
            "PYTHONPATH": self.bundle,
            "VLLM_PROFILER_SOCKET": self.sock,
            "VLLM_PROFILER_START_STEP": "3",
            "VLLM_PROFILER_NUM_STEPS": "3",
            "VLLM_PROFILER_LOG": "debug",
        })
        env.update(extra)
        p = subprocess.run(
            ["/usr/bin/python3",
             os.path.abspath("tests/sample_workload/run_workload.py"),
             "--steps", str(steps)] + list(args),
            env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def read_trace(self):
        """The first stored trace, parsed."""
        return self.c.load_trace(self.c.wait_for_traces(1)[0]["file_name"])

    def test_kernels_flows_and_operators(self):
        p = self.run_workload(
            VLLM_PROFILER_CUPTI_LIB=os.path.abspath(ARGS["cupti"]),
            LD_PRELOAD=os.path.abspath(ARGS["cuda"]))
        trace = self.read_trace()
        events = trace["traceEvents"]
        threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
                   if e.get("ph") == "M" and e.get("name") == "thread_name"}
        xs = [e for e in events if e.get("ph") == "X"]
        kernels = [e for e in xs if e.get("cat") == "kernel"]
        ops = [e for e in xs if e.get("cat") == "cpu_op"]
        launches = [e for e in xs if e.get("name") == "cudaLaunchKernel"]
        meta = json.dumps(trace.get("metadata", {}))
        self.assertTrue(kernels, "no kernels; probe stderr:\n%s\nmetadata: %s"
                        % (p.stderr[-3000:], meta))
        self.assertEqual(len(kernels), len(launches))
        self.assertTrue(all(k["name"] == KERNEL for k in kernels))
        self.assertEqual({threads[(k["pid"], k["tid"])] for k in kernels},
                         {"GPU 0 stream 7"})
        # Launches on the operators' (CPU) threads.
        op_tids = {o["tid"] for o in ops}
        self.assertTrue({l["tid"] for l in launches} <= op_tids)
        # Every kernel at the end of a flow from its launch.
        starts = {}
        for e in events:
            if e.get("cat") == "ac2g" and e.get("ph") == "s":
                starts[e["id"]] = e
        ends = [e for e in events if e.get("cat") == "ac2g" and e.get("ph") == "f"]
        end_at = {(e["tid"], e["ts"]): e["id"] for e in ends}
        launch_at = {(l["tid"], l["ts"]) for l in launches}
        for k in kernels:
            fid = end_at.get((k["tid"], k["ts"]))
            self.assertIsNotNone(fid, k)
            self.assertIn(fid, starts)
            self.assertIn((starts[fid]["tid"], starts[fid]["ts"]), launch_at)
        # Attribution: each kernel's external id is an operator's id.
        op_ids = {o.get("args", {}).get("External id") for o in ops} - {None}
        ext = [k["args"].get("External id") for k in kernels]
        self.assertTrue(all(x in op_ids for x in ext), (ext[:5], list(op_ids)[:5]))
        # Every kernel gets an op2g flow from its operator whatever order the
        # probe sent the GPU events and CPU chunks in (the collector draws
        # the pair when the second side arrives). The operator's name is on
        # the kernel only when the operator arrived first; the external id
        # always is.
        named = [k for k in kernels if k["args"].get("op")]
        op2g = [e for e in events if e.get("cat") == "op2g"]
        sys.stderr.write("kernels %d, with args.op %d, op2g flow events %d\n"
                         % (len(kernels), len(named), len(op2g)))
        op_names = {o["name"] for o in ops}
        self.assertTrue(all(k["args"]["op"] in op_names for k in named))
        op_at = {(o["tid"], o["ts"]): o for o in ops}
        op2g_starts = {e["id"]: e for e in op2g if e["ph"] == "s"}
        op2g_ends = {}
        for e in op2g:
            if e["ph"] == "f":
                self.assertEqual(e.get("bp"), "e", e)
                op2g_ends.setdefault((e["tid"], e["ts"]), []).append(e["id"])
        self.assertEqual(len(op2g_starts), len(op2g) // 2)
        for k in kernels:
            ids = op2g_ends.get((k["tid"], k["ts"]))
            self.assertTrue(ids, ("kernel without op2g flow", k))
            starts_k = [op2g_starts.get(i) for i in ids]
            self.assertTrue(all(starts_k), (k, ids))
            # The flow starts at the operator with the kernel's external id.
            self.assertTrue(any(
                op_at.get((st["tid"], st["ts"]), {}).get("args", {})
                .get("External id") == k["args"]["External id"]
                for st in starts_k), (k, starts_k))
        self.assertEqual(len(op2g), 2 * len(kernels))
        for m in trace["metadata"]["processes"]:
            self.assertEqual(m["op2g_unmatched_evicted"], 0)
            self.assertEqual(m["op2g_unmatched_at_end"], 0)
        # The GPU note is empty: GPU activity was recorded.
        self.assertIn('"gpu_activity_note": ""', meta)

    def test_no_driver_gives_cpu_events_and_a_note(self):
        # Same fake libcupti, but no libcuda in the process.
        p = self.run_workload(
            VLLM_PROFILER_CUPTI_LIB=os.path.abspath(ARGS["cupti"]))
        trace = self.read_trace()
        xs = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
        self.assertTrue(any(e.get("cat") == "cpu_op" for e in xs))
        self.assertFalse(any(e.get("cat") == "kernel" for e in xs))
        self.assertIn("no CUDA in this process (libcuda is not loaded)",
                      json.dumps(trace["metadata"]))
        lines = [l for l in p.stderr.splitlines() if "GPU activity off" in l]
        self.assertEqual(len(lines), 1, p.stderr)


    def test_other_profiler_keeps_cupti_and_ours_releases_it(self):
        # torch.profiler runs around steps 2..6 (as vLLM's /start_profile):
        # our window (3..5) must leave CUPTI to it and say so; and after the
        # run nothing of CUPTI is held (fake libcupti's exit report).
        report = os.path.join(self.tmp, "cupti.json")
        p = self.run_workload(
            ["--torch-profiler-at", "2:6"],
            VLLM_PROFILER_CUPTI_LIB=os.path.abspath(ARGS["cupti"]),
            LD_PRELOAD=os.path.abspath(ARGS["cuda"]),
            FAKE_CUPTI_REPORT=report)
        self.assertRegex(p.stdout, r"torch.profiler events: [1-9]")
        trace = self.read_trace()
        xs = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
        self.assertTrue(any(e.get("cat") == "cpu_op" for e in xs))
        self.assertFalse(any(e.get("cat") == "kernel" for e in xs))
        notes = [m["gpu_activity_note"] for m in trace["metadata"]["processes"]]
        self.assertEqual(notes, ["torch.profiler is running on this thread; "
                                 "this capture records no GPU activity"])
        lines = [l for l in p.stderr.splitlines()
                 if "records no GPU activity" in l]
        self.assertEqual(len(lines), 1, p.stderr)
        # libcupti is loaded at the first capture that takes it: never here.
        self.assertFalse(os.path.exists(report))

    def test_cupti_released_after_a_capture(self):
        report = os.path.join(self.tmp, "cupti.json")
        self.run_workload(
            VLLM_PROFILER_CUPTI_LIB=os.path.abspath(ARGS["cupti"]),
            LD_PRELOAD=os.path.abspath(ARGS["cuda"]),
            FAKE_CUPTI_REPORT=report)
        self.read_trace()
        with open(report) as f:
            held = json.load(f)
        self.assertEqual(held, {"subscribed": 0, "subscribes_total": 1,
                                "enabled_kinds": 0})


class FlightGpuTest(unittest.TestCase):
    """VLLM_PROFILER_FLIGHT=gpu: a slow step triggers a trace whose
    pre-trigger steps (from the ring) come with the GPU kernels that ran in
    them (fake_libcupti's flight kernels, one per ms on stream 9)."""

    # The collector hears of the slow step within a summary interval (1 s)
    # and the capture starts at the next step: PRE covers well over 1 s of
    # 5 ms steps, and the run goes on long enough for the POST steps.
    PRE, POST = 600, 3

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vp-gpuf-", dir="/tmp")
        self.bundle = os.path.join(self.tmp, "profiler")
        os.makedirs(self.bundle)
        with tarfile.open(ARGS["bundle"]) as t:
            t.extractall(self.bundle)
        self.c = CollectorProcess(
            ARGS["collector"], linger_ms=200, dir=self.tmp,
            extra_args=["--trigger_slow_step_ms=150",
                        "--trigger_pre_steps=%d" % self.PRE,
                        "--trigger_post_steps=%d" % self.POST])
        self.sock = self.c.socket

    tearDown = ProbeFakeCuptiTest.tearDown
    run_workload = ProbeFakeCuptiTest.run_workload
    read_trace = ProbeFakeCuptiTest.read_trace

    def test_triggered_trace_holds_the_kernels_of_the_pre_trigger_steps(self):
        report = os.path.join(self.tmp, "cupti.json")
        p = self.run_workload(
            ["--sleep-ms", "5", "--slow-at", "30:300"], steps=700,
            VLLM_PROFILER_FLIGHT="gpu",
            VLLM_PROFILER_START_STEP="1000000", VLLM_PROFILER_NUM_STEPS="0",
            VLLM_PROFILER_CUPTI_LIB=os.path.abspath(ARGS["cupti"]),
            LD_PRELOAD=os.path.abspath(ARGS["cuda"]),
            FAKE_CUPTI_REPORT=report)
        trace = self.read_trace()
        events = trace["traceEvents"]
        threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
                   if e.get("ph") == "M" and e.get("name") == "thread_name"}
        xs = [e for e in events if e.get("ph") == "X"]
        steps = [e for e in xs if e.get("cat") == "step"]
        ringed = sorted((e for e in steps
                         if e.get("args", {}).get("flight_recorder")),
                        key=lambda e: e["args"]["step"])
        captured = [e for e in steps
                    if not e.get("args", {}).get("flight_recorder")]
        self.assertTrue(ringed, p.stderr[-3000:])
        self.assertIn(30, [e["args"]["step"] for e in ringed])
        self.assertEqual(len(captured), self.POST)
        flight = [e for e in xs if e.get("cat") == "kernel"
                  and e["name"] == "flight_kernel()"]
        self.assertTrue(flight, "no flight kernels; probe stderr:\n%s"
                        % p.stderr[-3000:])
        # On their stream's track, as captured kernels are.
        self.assertEqual({threads[(k["pid"], k["tid"])] for k in flight},
                         {"GPU 0 stream 9"})
        # All inside the dumped steps' time range (us, rounding).
        lo = ringed[0]["ts"]
        hi = ringed[-1]["ts"] + ringed[-1]["dur"]
        for k in flight:
            self.assertTrue(lo - 1 <= k["ts"] + k["dur"] and k["ts"] <= hi + 1,
                            (k, lo, hi))
        # The slow step (300 ms) ran ~300 of them: the kernels of the step
        # that already happened are there.
        slow = [e for e in ringed if e["args"]["step"] == 30][0]
        inside = [k for k in flight
                  if slow["ts"] <= k["ts"] <= slow["ts"] + slow["dur"]]
        self.assertGreater(len(inside), 200)
        # The triggered capture's own kernels come from the capture
        # (operators pushed correlation ids): fake_kernel on stream 7.
        self.assertTrue(any(e.get("name") == KERNEL for e in xs))
        self.assertIn("origin", json.dumps(trace.get("metadata", {})))
        # The probe let go of CUPTI at exit.
        with open(report) as f:
            held = json.load(f)
        self.assertEqual(held["subscribed"], 0)


if __name__ == "__main__":
    ARGS["bundle"], ARGS["collector"], ARGS["cupti"], ARGS["cuda"] = sys.argv[1:5]
    unittest.main(argv=sys.argv[:1])
