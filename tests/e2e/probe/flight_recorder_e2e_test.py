"""The flight recorder end to end: the real probe in the sample workload,
the real collector (through `vpctl run`), slow steps injected at known
steps (run_workload.py --slow-at).

Checks what a user gets: exactly one triggered trace (the second slow step
falls in the cooldown), holding the ring's N steps before the capture
(including the slow step), the K steps after captured fully, and the marker
at the slow step naming the rule and the step's time; and that a run with
VLLM_PROFILER_FLIGHT=off gets no trigger at all.

usage: flight_recorder_e2e_test.py VPCTL RUN_WORKLOAD_PY
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = {}
PRE, POST = 100, 5


class FlightRecorderE2eTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vp-flight-", dir="/tmp")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def vpctl_run(self, run_args, workload_args):
        out = os.path.join(self.dir, "t.json")
        p = subprocess.run(
            [os.path.abspath(ARGS["vpctl"]), "run", "--steps", "0",
             "--no-summary", "-o", out] + run_args + [
                "--", "/usr/bin/python3", os.path.abspath(ARGS["workload"])]
            + workload_args, capture_output=True, text=True, timeout=300,
            cwd=self.dir)
        return p, out

    def test_slow_steps_give_one_trace_with_ring_capture_and_marker(self):
        p, out = self.vpctl_run(
            ["--trigger-slow-step-ms", "150", "--trigger-pre-steps", str(PRE),
             "--trigger-post-steps", str(POST)],
            ["--steps", "220", "--sleep-ms", "10", "--slow-at", "60:300",
             "--slow-at", "150:300"])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("1 process(es)", p.stdout + p.stderr)
        with open(out) as f:
            d = json.load(f)
        ev = d["traceEvents"]
        steps = [e for e in ev if e.get("cat") == "step"]
        ringed = sorted((e for e in steps
                         if e.get("args", {}).get("flight_recorder")),
                        key=lambda e: e["args"]["step"])
        captured = sorted((e for e in steps
                           if not e.get("args", {}).get("flight_recorder")),
                          key=lambda e: e["args"]["step"])
        numbers = [e["args"]["step"] for e in ringed]
        self.assertEqual(len(captured), POST, [e["args"] for e in captured])
        first = captured[0]["args"]["step"]
        self.assertEqual([e["args"]["step"] for e in captured],
                         list(range(first, first + POST)))
        # The ring's last PRE steps before the capture (fewer when the
        # process had not run that many yet).
        self.assertEqual(numbers, list(range(max(1, first - PRE), first)))
        self.assertIn(60, numbers)
        slow = [e for e in ringed if e["args"]["step"] == 60][0]
        self.assertGreaterEqual(slow["dur"], 300000)  # us
        self.assertIn("num_scheduled_tokens", slow["args"])
        # The ring keeps the child spans.
        spans = [e for e in ev if e.get("name") == "execute_model"
                 and slow["ts"] <= e["ts"] <= slow["ts"] + slow["dur"]]
        self.assertEqual(len(spans), 1, spans)
        markers = [e for e in ev
                   if str(e.get("name", "")).startswith("flight trigger")]
        self.assertEqual(len(markers), 1, markers)
        m = markers[0]
        self.assertIn("(slow_step_ms): slow step: step 60 took", m["name"])
        self.assertIn("> 150 ms", m["name"])
        self.assertAlmostEqual(m["ts"], slow["ts"], delta=1)
        # The captured steps have operators; the ring ones are steps only.
        ops = [e for e in ev if e.get("cat") == "cpu_op"]
        self.assertTrue(ops)
        self.assertGreaterEqual(min(o["ts"] for o in ops), captured[0]["ts"])
        # Only one trace: the slow step 150 fell in the cooldown.
        extra = [f for f in os.listdir(self.dir)
                 if f.endswith(".json") and f != "t.json"]
        self.assertEqual(extra, [])

    def test_flight_off_triggers_nothing(self):
        p, out = self.vpctl_run(
            ["--flight", "off", "--trigger-slow-step-ms", "150"],
            ["--steps", "40", "--slow-at", "10:300"])
        # No trace at all: vpctl says so and exits 1.
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertFalse(os.path.exists(out))

    def test_bad_trigger_setting_is_rejected_at_start(self):
        p, _ = self.vpctl_run(["--trigger-factor", "0.5"], ["--steps", "3"])
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("--trigger_factor='0.5': must be greater than 1",
                      p.stdout + p.stderr)


if __name__ == "__main__":
    ARGS["vpctl"], ARGS["workload"] = sys.argv[1:3]
    unittest.main(argv=sys.argv[:1])
