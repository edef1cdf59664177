"""End-to-end tests of the probe in real Python processes.

usage: probe_e2e_test.py PROBE_BUNDLE_TAR FAKE_COLLECTOR RUN_WORKLOAD_PY

Each test runs the sample workload (tests/sample_workload) under the probe,
injected the way the webhook does it (PYTHONPATH + VLLM_PROFILER_* env, or
PYTHONUSERBASE for the user-site hook), against fake_collector, which logs
every ProbeMessage it receives as JSON.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
import unittest

ARGS = {}
PY = "/usr/bin/python3"


def _int(x):
    return int(x) if x is not None else 0


class Streams(object):
    """The messages fake_collector received, by stream."""

    def __init__(self, path):
        self.by_stream = {}
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    rec = json.loads(line)
                    self.by_stream.setdefault(rec["_stream"], []).append(rec["msg"])

    def hellos(self):
        return [m[0]["hello"] for m in self.by_stream.values() if "hello" in m[0]]

    def events(self, stream):
        strings = {}
        out = []
        for m in self.by_stream[stream]:
            b = m.get("batch")
            if not b:
                continue
            for s in b.get("strings", []):
                strings[s["id"]] = s.get("value", "")
            for e in b.get("events", []):
                e = dict(e)
                e["name"] = strings.get(e.get("name_id"), "?")
                e["_capture"] = b.get("capture_id")
                out.append(e)
        return out, strings

    def signature_definitions(self, stream):
        """Ids of the input signatures the stream defined, in order."""
        return [sig["id"] for m in self.by_stream[stream]
                for sig in m.get("batch", {}).get("input_signatures", [])]

    def capture_messages(self, stream, kind):
        return [m[kind] for m in self.by_stream[stream] if kind in m]


def steps_of(events):
    return sorted(_int(e.get("step")) for e in events
                  if e.get("kind") == "EVENT_KIND_STEP")


def ops_of(events):
    return [e for e in events if e.get("kind") == "EVENT_KIND_CPU_OP"]


def nested(op, steps):
    s0 = _int(op.get("start_ns"))
    s1 = s0 + _int(op.get("duration_ns"))
    for st in steps:
        t0 = _int(st.get("start_ns"))
        t1 = t0 + _int(st.get("duration_ns"))
        if st.get("tid") == op.get("tid") and t0 <= s0 and s1 <= t1:
            return True
    return False


class ProbeHarness(unittest.TestCase):
    """Unpacks the bundle once, runs fake_collector and the workload."""

    @classmethod
    def setUpClass(cls):
        # Unix socket paths must stay under 108 bytes: a short /tmp folder.
        cls.tmp = tempfile.mkdtemp(prefix="vp-e2e-", dir="/tmp")
        cls.bundle = os.path.join(cls.tmp, "profiler")
        os.makedirs(cls.bundle)
        with tarfile.open(ARGS["bundle"]) as t:
            t.extractall(cls.bundle)
        cls.workload = os.path.abspath(ARGS["workload"])
        cls.workload_dir = os.path.dirname(cls.workload)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self.tmp)
        self.sock = os.path.join(self.dir, "c.sock")
        self.out = os.path.join(self.dir, "msgs.jsonl")
        self.collector = None

    def tearDown(self):
        self.stop_collector()

    def start_collector(self, command_steps=0, command_after_ms=0,
                        signatures=True):
        ready = os.path.join(self.dir, "ready")
        if os.path.exists(ready):
            os.unlink(ready)                 # Left by a previous collector.
        self.collector = subprocess.Popen(
            [os.path.abspath(ARGS["collector"]), "--socket", self.sock,
             "--out", self.out, "--ready_file", ready,
             "--command_steps", str(command_steps),
             "--command_after_ms", str(command_after_ms),
             "--signatures", "1" if signatures else "0"])
        deadline = time.time() + 30
        while time.time() < deadline:
            if os.path.exists(ready):
                return
            time.sleep(0.01)
        self.fail("fake collector did not start")

    def wait_hello(self, timeout_s=60):
        """Waits until the current collector has received a probe's Hello."""
        deadline = time.time() + timeout_s
        while not (os.path.exists(self.out) and
                   "hello" in open(self.out).read()):
            self.assertLess(time.time(), deadline, "the probe never said Hello")
            time.sleep(0.05)

    def stop_collector(self):
        if self.collector is not None:
            self.collector.send_signal(signal.SIGTERM)
            self.collector.wait(timeout=20)
            self.collector = None
        return Streams(self.out)

    def env(self, probe=True, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
        if probe:
            env["PYTHONPATH"] = self.bundle
            env["VLLM_PROFILER_SOCKET"] = self.sock
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def run_workload(self, args, env, script=None):
        results = os.path.join(self.dir, "results-%d.json" % time.time_ns())
        cmd = [PY, script or self.workload] + list(args)
        if script is None:
            cmd += ["--out", results]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        data = None
        if script is None:
            with open(results) as f:
                data = json.load(f)
        return p, data

    def probe_lines(self, stderr):
        return [l for l in stderr.splitlines() if l.startswith("vllm-profiler:")]



class ProbeE2ETest(ProbeHarness):

    # -- the tests -------------------------------------------------

    def test_window_of_200_steps_has_exactly_the_window_with_nested_ops(self):
        self.start_collector()
        p, _ = self.run_workload(["--steps", "200"], self.env())
        self.assertEqual(self.probe_lines(p.stderr), [])
        streams = self.stop_collector()
        self.assertEqual(len(streams.by_stream), 1)
        (sid,) = streams.by_stream
        hello = streams.hellos()[0]
        self.assertEqual(_int(hello["pid"]), _int(hello["pid"]))
        self.assertEqual(hello["window"]["num_steps"], 50)
        events, strings = streams.events(sid)
        self.assertEqual(steps_of(events), list(range(100, 150)))
        steps = [e for e in events if e.get("kind") == "EVENT_KIND_STEP"]
        ops = ops_of(events)
        self.assertGreater(len(ops), 50 * 10)
        self.assertTrue(all(nested(op, steps) for op in ops))
        names = set(op["name"] for op in ops)
        for want in ("aten::matmul", "aten::layer_norm", "aten::softmax"):
            self.assertIn(want, names)
        mm = [op for op in ops if op["name"] == "aten::mm"]
        self.assertTrue(mm)
        self.assertTrue(all(op.get("input_shapes") for op in mm))
        self.assertEqual(len(mm[0]["input_shapes"][0]["dims"]), 2)
        # The inputs went out as signatures (fake_collector wrote them back
        # inline above), each defined once: 50 steps repeat a few shapes.
        self.assertTrue(all(op.get("input_signature_id") for op in mm))
        defined = streams.signature_definitions(sid)
        self.assertEqual(len(defined), len(set(defined)))
        self.assertLess(len(defined), len(ops) / 10)
        args = {strings[a["key_id"]]: _int(a["int_value"])
                for a in steps[0].get("args", []) if "int_value" in a}
        self.assertEqual(args["num_scheduled_requests"], 5)  # Step 100.
        self.assertEqual(args["num_scheduled_tokens"], 36)
        self.assertEqual(args["num_prefill_requests"], 1)
        self.assertEqual(args["num_decode_requests"], 4)
        fin = streams.capture_messages(sid, "capture_finished")
        self.assertEqual(len(fin), 1)
        self.assertEqual(_int(fin[0]["last_step"]), 149)
        self.assertEqual(_int(fin[0]["events_recorded"]), len(events))
        self.assertEqual(_int(fin[0].get("drops", {}).get(
            "events_dropped_buffer_full")), 0)
        started = streams.capture_messages(sid, "capture_started")[0]
        self.assertEqual(started["origin"], "CAPTURE_ORIGIN_WINDOW")
        self.assertEqual(_int(started["first_step"]), 100)

    def test_shapes_off_records_no_shapes(self):
        self.start_collector()
        self.run_workload(["--steps", "6"], self.env(
            VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=3,
            VLLM_PROFILER_RECORD_SHAPES=0))
        streams = self.stop_collector()
        events, _ = streams.events(1)
        self.assertEqual(steps_of(events), [2, 3, 4])
        ops = ops_of(events)
        self.assertTrue(ops)
        self.assertFalse(any(op.get("input_shapes") for op in ops))

    def test_collector_without_signatures_gets_inputs_inline(self):
        self.start_collector(signatures=False)
        self.run_workload(["--steps", "6"], self.env(
            VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=3))
        streams = self.stop_collector()
        events, strings = streams.events(1)
        mm = [op for op in ops_of(events) if op["name"] == "aten::mm"]
        self.assertTrue(mm)
        self.assertTrue(all(op.get("input_shapes") for op in mm))
        self.assertEqual(strings[mm[0]["input_dtype_ids"][0]].lower(), "float")
        self.assertFalse(any(op.get("input_signature_id") for op in mm))
        self.assertEqual(streams.signature_definitions(1), [])

    def test_no_collector_same_results_one_line(self):
        _, base = self.run_workload(["--steps", "160"], self.env(probe=False))
        p, got = self.run_workload(["--steps", "160"], self.env())
        self.assertEqual(got["processes"][0]["results"],
                         base["processes"][0]["results"])
        lines = self.probe_lines(p.stderr)
        self.assertEqual(lines, [
            "vllm-profiler: collector not reachable at unix:%s; the process "
            "runs on, captures are dropped until it is (retrying with "
            "backoff)" % self.sock])
        self.assertNotIn("Traceback", p.stderr)

    def _two_processes(self, flag):
        self.start_collector()
        p, data = self.run_workload(
            ["--steps", "8", flag, "2"],
            self.env(VLLM_PROFILER_START_STEP=3, VLLM_PROFILER_NUM_STEPS=4))
        self.assertEqual(data["exitcodes"], [0, 0])
        streams = self.stop_collector()
        pids = sorted(_int(h["pid"]) for h in streams.hellos())
        self.assertEqual(pids, sorted(pr["pid"] for pr in data["processes"]))
        # Named after the multiprocessing process ("SpawnProcess-1", ...).
        for h in streams.hellos():
            self.assertRegex(h["process_name"], r"^(Spawn|Fork)Process-\d+$")
        for sid in streams.by_stream:
            events, _ = streams.events(sid)
            self.assertEqual(steps_of(events), [3, 4, 5, 6])
            self.assertGreater(len(ops_of(events)), 10)

    def test_spawn_two_workers(self):
        self._two_processes("--spawn")

    def test_fork_two_workers(self):
        self._two_processes("--fork")

    def test_preexisting_sitecustomize_still_runs(self):
        other = os.path.join(self.dir, "image_site")
        os.makedirs(other)
        marker = os.path.join(self.dir, "marker")
        with open(os.path.join(other, "sitecustomize.py"), "w") as f:
            f.write("import os\nopen(os.environ['MARKER'], 'w').write('ran')\n")
        self.start_collector()
        env = self.env(VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=2,
                       MARKER=marker)
        env["PYTHONPATH"] = self.bundle + os.pathsep + other
        self.run_workload(["--steps", "5"], env)
        with open(marker) as f:
            self.assertEqual(f.read(), "ran")
        events, _ = self.stop_collector().events(1)
        self.assertEqual(steps_of(events), [2, 3])

    def _image_app(self):
        """A server reachable only through the PYTHONPATH its image sets
        (KServe's `python3 -m huggingfaceserver` is one): `python3 -m
        servingapp` starts two spawn workers that run the sample vLLM
        worker, which is also found through that PYTHONPATH only."""
        app = os.path.join(self.dir, "image_app")
        os.makedirs(os.path.join(app, "servingapp"))
        os.symlink(os.path.join(self.workload_dir, "vllm"),
                   os.path.join(app, "vllm"))
        open(os.path.join(app, "servingapp", "__init__.py"), "w").close()
        with open(os.path.join(app, "servingapp", "worker.py"), "w") as f:
            f.write(textwrap.dedent('''
                import os
                from vllm.v1.worker.gpu_worker import Worker

                class SchedulerOutput:
                    def __init__(self):
                        self.num_scheduled_tokens = {"a": 1, "b": 1}
                        self.total_num_scheduled_tokens = 2
                        self.scheduled_new_reqs = []
                        self.scheduled_cached_reqs = ["a", "b"]

                def serve(steps, rank, queue):
                    w = Worker(seed=rank)
                    for _ in range(steps):
                        w.execute_model(SchedulerOutput())
                    queue.put(os.getpid())
            '''))
        with open(os.path.join(app, "servingapp", "__main__.py"), "w") as f:
            f.write(textwrap.dedent('''
                import json, multiprocessing, sys
                from servingapp.worker import serve

                if __name__ == "__main__":
                    ctx = multiprocessing.get_context("spawn")
                    q = ctx.Queue()
                    ps = [ctx.Process(target=serve, args=(6, r, q))
                          for r in range(2)]
                    for p in ps:
                        p.start()
                    pids = sorted(q.get(timeout=300) for _ in ps)
                    for p in ps:
                        p.join(timeout=60)
                    print(json.dumps({"pids": pids,
                                      "exitcodes": [p.exitcode for p in ps]}))
            '''))
        return app

    def _run_image_app(self, env):
        cwd = os.path.join(self.dir, "cwd")  # Not the app's folder.
        os.makedirs(cwd, exist_ok=True)
        return subprocess.run([PY, "-m", "servingapp"], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=300)

    def test_user_site_hook_keeps_the_image_pythonpath_in_spawned_workers(self):
        app = self._image_app()
        # Why the webhook must not set PYTHONPATH=<probe folder>: it replaces
        # the image's value, and the server cannot start.
        old = self._run_image_app(self.env())
        self.assertNotEqual(old.returncode, 0)
        self.assertIn("No module named servingapp", old.stderr)
        # The user-site hook: the image's PYTHONPATH stays, the probe comes
        # from PYTHONUSERBASE, and both spawned workers are profiled.
        self.start_collector()
        env = self.env(probe=False, PYTHONPATH=app, PYTHONUSERBASE=self.bundle,
                       VLLM_PROFILER_SOCKET=self.sock,
                       VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=3)
        p = self._run_image_app(env)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(out["exitcodes"], [0, 0])
        self.assertEqual(self.probe_lines(p.stderr), [])
        streams = self.stop_collector()
        self.assertEqual(sorted(_int(h["pid"]) for h in streams.hellos()),
                         out["pids"])
        for h in streams.hellos():
            self.assertRegex(h["process_name"], r"^SpawnProcess-\d+$")
        for sid in streams.by_stream:
            events, _ = streams.events(sid)
            self.assertEqual(steps_of(events), [2, 3, 4])
            self.assertGreater(len(ops_of(events)), 10)

    def test_already_imported_module_wrapped_once_signature_kept(self):
        self.start_collector()
        env = self.env(probe=False, VLLM_PROFILER_SOCKET=self.sock,
                       VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=2)
        p, _ = self.run_workload(
            [self.bundle, self.workload_dir, "5"], env,
            script=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "already_imported.py"))
        report = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertTrue(report["wrapped"])
        self.assertTrue(report["wrapped_once"])
        self.assertTrue(report["signature_kept"])
        self.assertTrue(report["doc_kept"])
        self.assertEqual(report["name"], "execute_model")
        self.assertEqual(report["params"], ["self", "scheduler_output"])
        events, _ = self.stop_collector().events(1)
        self.assertEqual(steps_of(events), [2, 3])

    def test_fork_after_parent_connected_child_runs_untouched(self):
        self.start_collector()
        env = self.env(VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=2)
        p, _ = self.run_workload(
            [self.workload_dir], env,
            script=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "fork_after_connect.py"))
        report = json.loads(p.stdout.strip().splitlines()[-1])
        self.assertEqual(report["child_status"], 0)
        self.assertEqual(report["child"], report["parent"])
        self.assertEqual(self.probe_lines(p.stderr), [
            "vllm-profiler: this process was forked after the probe had "
            "connected in its parent; gRPC cannot be used after such a fork, "
            "so this process is not profiled (start workers with 'spawn', or "
            "let only the workers call the profiled method)"])
        streams = self.stop_collector()
        self.assertEqual(len(streams.hellos()), 1)  # The parent only.
        events, _ = streams.events(1)
        self.assertEqual(steps_of(events), [2, 3])

    def test_on_demand_command_captures_exactly_5_steps(self):
        self.start_collector(command_steps=5, command_after_ms=100)
        self.run_workload(["--steps", "60", "--sleep-ms", "10"],
                          self.env(VLLM_PROFILER_START_STEP=100000))
        streams = self.stop_collector()
        events, _ = streams.events(1)
        self.assertEqual(len(steps_of(events)), 5)
        st = steps_of(events)
        self.assertEqual(st, list(range(st[0], st[0] + 5)))
        started = streams.capture_messages(1, "capture_started")
        self.assertEqual(len(started), 1)
        self.assertEqual(started[0]["capture_id"], "cmd-1")
        self.assertEqual(started[0]["origin"], "CAPTURE_ORIGIN_COMMAND")
        self.assertTrue(all(e["_capture"] == "cmd-1" for e in events))

    def test_collector_restart_reconnects_and_later_capture_arrives(self):
        self.start_collector()
        # The workload holds at step 100 until the probe is connected to the
        # second collector, so the window (steps 200-202) always goes there.
        go = os.path.join(self.dir, "collector-back")
        work = subprocess.Popen(
            [PY, self.workload, "--steps", "300", "--sleep-ms", "1",
             "--wait-at", "100:" + go],
            env=self.env(VLLM_PROFILER_START_STEP=200,
                         VLLM_PROFILER_NUM_STEPS=3),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.wait_hello()
        first = self.stop_collector()        # The collector goes away ...
        self.assertEqual(len(first.hellos()), 1)
        self.out = os.path.join(self.dir, "msgs2.jsonl")
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.start_collector()               # ... and comes back.
        self.wait_hello()                    # The probe reconnected.
        open(go, "w").close()
        _, err = work.communicate(timeout=300)
        self.assertEqual(work.returncode, 0, err)
        second = self.stop_collector()
        self.assertEqual(len(second.hellos()), 1)
        events, _ = second.events(1)
        self.assertEqual(steps_of(events), [200, 201, 202])
        lines = self.probe_lines(err)
        self.assertEqual(lines[0],
                         "vllm-profiler: lost the connection to the collector "
                         "at unix:%s; reconnecting" % self.sock)
        self.assertIn("vllm-profiler: connected to the collector at unix:%s"
                      % self.sock, lines)
        self.assertLessEqual(len(lines), 3)

    def test_time_bounded_window(self):
        self.start_collector()
        self.run_workload(["--steps", "60", "--sleep-ms", "10"], self.env(
            VLLM_PROFILER_START_STEP=3, VLLM_PROFILER_NUM_STEPS=0,
            VLLM_PROFILER_DURATION_MS=200))
        streams = self.stop_collector()
        events, _ = streams.events(1)
        st = steps_of(events)
        # ~10 ms per step: about 20 steps in 200 ms, starting at step 3.
        self.assertEqual(st[0], 3)
        self.assertEqual(st, list(range(3, 3 + len(st))))
        self.assertGreaterEqual(len(st), 5)
        self.assertLess(len(st), 40)
        started = streams.capture_messages(1, "capture_started")[0]
        self.assertEqual(started["config"].get("duration_ms"), 200)

    def test_bad_window_env_logs_and_runs_untouched(self):
        _, base = self.run_workload(["--steps", "5"], self.env(probe=False))
        self.start_collector()
        p, got = self.run_workload(["--steps", "5"], self.env(
            VLLM_PROFILER_START_STEP="abc", VLLM_PROFILER_NUM_STEPS="2x"))
        self.assertEqual(got["processes"][0]["results"],
                         base["processes"][0]["results"])
        self.assertEqual(self.probe_lines(p.stderr), [
            "vllm-profiler: VLLM_PROFILER_START_STEP='abc' is not a "
            "non-negative integer; using 100",
            "vllm-profiler: VLLM_PROFILER_NUM_STEPS='2x' is not a "
            "non-negative integer; using 50",
        ])

    def test_unknown_target_module_logs_and_runs_untouched(self):
        p, _ = self.run_workload(["--steps", "3"], self.env(
            VLLM_PROFILER_TARGET="no.such.module:Worker.execute_model"))
        self.assertEqual(self.probe_lines(p.stderr), [
            "vllm-profiler: target module no.such.module was never imported; "
            "nothing was profiled (check VLLM_PROFILER_TARGET)"])
        p, _ = self.run_workload(["--steps", "3"], self.env(
            VLLM_PROFILER_TARGET="garbage"))
        self.assertEqual(self.probe_lines(p.stderr), [
            "vllm-profiler: VLLM_PROFILER_TARGET='garbage' is not "
            "'module:Class.method' (or 'module:Class.execute+sample', "
            "comma-separated); nothing profiled"])

    def test_disabled_does_nothing(self):
        self.start_collector()
        p, _ = self.run_workload(["--steps", "120"],
                                 self.env(VLLM_PROFILER_ENABLED=0))
        self.assertEqual(self.probe_lines(p.stderr), [])
        self.assertEqual(self.stop_collector().by_stream, {})

    def test_torch_mismatch_without_fallback_goes_on_without_ops(self):
        # A shim that claims another torch, no build, no fallback: steps are
        # captured, ops are not, one line says so.
        self.start_collector()
        p, _ = self.run_workload(["--steps", "5"], self.env(
            VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=2,
            VLLM_PROFILER_TEST_TORCH_VERSION="9.9.9",
            VLLM_PROFILER_SHIM_BUILD=0, VLLM_PROFILER_TORCH_FALLBACK=0))
        lines = self.probe_lines(p.stderr)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("torch shim was built for torch 1.13.0 but this process "
                      "runs torch 9.9.9", lines[0])
        self.assertIn("capturing steps without operator events", lines[0])
        streams = self.stop_collector()
        events, _ = streams.events(1)
        self.assertEqual(steps_of(events), [2, 3])
        self.assertEqual(ops_of(events), [])
        state = [m["state"] for m in streams.by_stream[1] if "state" in m]
        self.assertEqual(state[-1]["op_source"], "off")

    def test_torch_mismatch_ops_through_torch_profiler(self):
        # No shim for this torch and none built: torch's profiler stands in;
        # its operators look like the shim's (name, shapes, dtypes, thread,
        # sequence number) and lie inside the steps.
        self.start_collector()
        p, base = self.run_workload(["--steps", "6"], self.env(
            VLLM_PROFILER_START_STEP=2, VLLM_PROFILER_NUM_STEPS=3,
            VLLM_PROFILER_TEST_TORCH_VERSION="9.9.9",
            VLLM_PROFILER_SHIM_BUILD=0))
        lines = self.probe_lines(p.stderr)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("operator events come from torch's profiler", lines[0])
        streams = self.stop_collector()
        events, strings = streams.events(1)
        steps = [e for e in events if e.get("kind") == "EVENT_KIND_STEP"]
        self.assertEqual(steps_of(events), [2, 3, 4])
        ops = ops_of(events)
        self.assertGreater(len(ops), 3 * 50)
        self.assertTrue(all(nested(op, steps) for op in ops))
        mm = [op for op in ops if op["name"] == "aten::mm"]
        self.assertTrue(mm)
        self.assertEqual(len(mm[0]["input_shapes"][0]["dims"]), 2)
        self.assertEqual(strings[mm[0]["input_dtype_ids"][0]].lower(), "float")
        state = [m["state"] for m in streams.by_stream[1] if "state" in m]
        self.assertEqual(state[-1]["op_source"], "torch profiler")
        fin = streams.capture_messages(1, "capture_finished")
        self.assertEqual(_int(fin[0]["events_recorded"]), len(events))
        self.assertEqual(fin[0].get("error", ""), "")
        # The host's results are untouched.
        _, plain = self.run_workload(["--steps", "6"], self.env(probe=False))
        self.assertEqual(base["processes"][0]["results"],
                         plain["processes"][0]["results"])


    def test_each_problem_is_said_once(self):
        # No collector: each bad setting is one line, the outage one more;
        # nothing of gRPC's own logging reaches the host's stderr, however
        # many reconnects (steps sleep 150 ms: several retries).
        long_sock = os.path.join(self.dir, "s" * 120)
        cases = [
            ({"VLLM_PROFILER_ENABLED": "perhaps"},
             "VLLM_PROFILER_ENABLED='perhaps' is not a boolean (1 or 0); "
             "using 1"),
            ({"VLLM_PROFILER_LOG": "loudest"},
             "VLLM_PROFILER_LOG='loudest' is not info, debug, quiet or off; "
             "using info"),
            ({"VLLM_PROFILER_SOCKET": long_sock},
             "VLLM_PROFILER_SOCKET is %d bytes long; a Unix socket path holds "
             "at most 107, so the collector cannot be reached there"
             % len(long_sock)),
            ({"VLLM_PROFILER_ADDRESS": "[::1"}, None),
        ]
        for env, want in cases:
            p, _ = self.run_workload(["--steps", "8", "--sleep-ms", "150"],
                                     self.env(**env))
            lines = self.probe_lines(p.stderr)
            others = [l for l in p.stderr.splitlines()
                      if l.strip() and not l.startswith("vllm-profiler:")]
            self.assertEqual(others, [], (env, p.stderr))
            outage = [l for l in lines if "collector not reachable" in l]
            self.assertEqual(len(outage), 1, (env, lines))
            rest = [l for l in lines if l not in outage]
            self.assertEqual(rest, ["vllm-profiler: " + want] if want else [],
                             env)


if __name__ == "__main__":
    ARGS["bundle"], ARGS["collector"], ARGS["workload"] = sys.argv[1:4]
    del sys.argv[1:4]
    unittest.main(verbosity=2)
