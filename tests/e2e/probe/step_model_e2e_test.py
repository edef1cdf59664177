"""The step model on every vLLM API shape and process layout (issue: one
step is execute_model + sample_tokens).

usage: step_model_e2e_test.py PROBE_BUNDLE_TAR FAKE_COLLECTOR RUN_WORKLOAD_PY

Real /usr/bin/python3 processes with Debian's torch run the sample engine
(tests/sample_workload/run_workload.py) under the probe bundle, injected as
the webhook does, against fake_collector (every ProbeMessage as JSON).
"""
import os
import sys
import unittest

import probe_e2e_test as base
from probe_e2e_test import ARGS, _int, ops_of, steps_of

# A small window keeps each run short: steps 5..14 of 20.
WINDOW = dict(VLLM_PROFILER_START_STEP=5, VLLM_PROFILER_NUM_STEPS=10)
PAIR_NAME = "Worker.execute_model+sample_tokens"


def kind(events, k):
    return [e for e in events if e.get("kind") == k]


def spans(events, name):
    return [e for e in kind(events, "EVENT_KIND_PYTHON") if e["name"] == name]


def inside(inner, outer):
    s0 = _int(inner.get("start_ns"))
    s1 = s0 + _int(inner.get("duration_ns"))
    t0 = _int(outer.get("start_ns"))
    t1 = t0 + _int(outer.get("duration_ns"))
    return t0 <= s0 and s1 <= t1


def in_some_step(op, steps):
    return any(inside(op, st) for st in steps)


def step_args(step, strings):
    out = {}
    for a in step.get("args", []):
        key = strings[a["key_id"]]
        if "string_id" in a:
            out[key] = strings[a["string_id"]]
        else:
            out[key] = _int(a.get("int_value"))
    return out


class StepModelTest(base.ProbeHarness):
    """The harness: bundle, fake collector, run_workload."""

    def run_shape(self, api, layout="inline", tp=1, steps=20, extra=(),
                  **env):
        self.start_collector()
        args = ["--steps", str(steps), "--vllm-api", api, "--layout", layout,
                "--tp", str(tp)] + list(extra)
        e = dict(WINDOW)
        e.update(env)
        p, data = self.run_workload(args, self.env(**e))
        return p, data, self.stop_collector()

    def stepping_streams(self, streams):
        """{stream: (hello, events, strings)} of the streams with steps."""
        out = {}
        for sid, msgs in streams.by_stream.items():
            events, strings = streams.events(sid)
            if kind(events, "EVENT_KIND_STEP"):
                out[sid] = (msgs[0]["hello"], events, strings)
        return out

    def check_window(self, events, paired, sample_span=True):
        steps = kind(events, "EVENT_KIND_STEP")
        self.assertEqual(steps_of(events), list(range(5, 15)))
        ops = ops_of(events)
        self.assertGreater(len(ops), 10 * 10)
        outside = [op["name"] for op in ops if not in_some_step(op, steps)]
        self.assertEqual(outside, [], "operators outside every step span")
        ex, sa = spans(events, "execute_model"), spans(events, "sample_tokens")
        if not paired:
            self.assertEqual(ex + sa, [])
            return steps
        self.assertEqual(len(ex), 10)
        self.assertEqual(len(sa), 10 if sample_span else 0)
        for st in steps:
            self.assertEqual(st["name"], PAIR_NAME)
            mine = [s for s in ex + sa if inside(s, st)]
            self.assertEqual(sorted(s["name"] for s in mine),
                             ["execute_model"] + (["sample_tokens"]
                                                  if sample_span else []))
        # Sampling operators sit inside sample_tokens, after execute_model.
        argmax = [op for op in ops if op["name"] == "aten::argmax"]
        if sample_span:
            self.assertEqual(len(argmax), 10)
            self.assertTrue(all(any(inside(op, s) for s in sa)
                                for op in argmax))
        return steps

    # -- API shapes ----------------------------------------------------------

    def test_0_11_pair_is_one_step_with_both_child_spans(self):
        p, _, streams = self.run_shape("0.11")
        self.assertEqual(self.probe_lines(p.stderr), [])
        (hello, events, strings), = self.stepping_streams(streams).values()
        (sid,) = self.stepping_streams(streams)
        state = [m["state"] for m in streams.by_stream[sid] if "state" in m]
        self.assertEqual(state[-1]["op_source"], "bundled shim")
        steps = self.check_window(events, paired=True)
        args = step_args(steps[5], strings)  # Step 10: a new prompt.
        self.assertEqual(args["num_scheduled_requests"], 5)
        self.assertEqual(args["num_scheduled_tokens"], 36)
        self.assertEqual(args["num_prefill_requests"], 1)
        self.assertEqual(args["num_decode_requests"], 4)
        self.assertEqual(args["num_new_requests"], 1)
        self.assertEqual(args["num_finished_requests"], 1)
        self.assertEqual(args["num_resumed_requests"], 0)
        self.assertEqual(args["request_ids"], "req-0,req-1,req-2,req-3,new-10")
        self.assertEqual(args["request_ids_total"], 5)
        self.assertEqual(step_args(steps[2], strings)["num_resumed_requests"],
                         1)  # Step 7.

    def test_async_gap_between_calls_is_inside_the_step(self):
        _, _, streams = self.run_shape("async")
        (hello, events, strings), = self.stepping_streams(streams).values()
        steps = self.check_window(events, paired=True)
        ex, sa = spans(events, "execute_model"), spans(events, "sample_tokens")
        for st in steps:
            e = [s for s in ex if inside(s, st)][0]
            s = [s for s in sa if inside(s, st)][0]
            gap = _int(s["start_ns"]) - (_int(e["start_ns"]) +
                                         _int(e["duration_ns"]))
            self.assertGreater(gap, 0)
            self.assertLessEqual(_int(s["start_ns"]) + _int(s["duration_ns"]),
                                 _int(st["start_ns"]) + _int(st["duration_ns"]))

    def test_pooling_step_ends_at_execute_model(self):
        _, _, streams = self.run_shape("pooling")
        (hello, events, strings), = self.stepping_streams(streams).values()
        self.check_window(events, paired=True, sample_span=False)

    def test_0_10_single_call_steps_as_before(self):
        p, _, streams = self.run_shape("0.10")
        self.assertEqual(self.probe_lines(p.stderr), [])
        (hello, events, strings), = self.stepping_streams(streams).values()
        steps = self.check_window(events, paired=False)
        # Today's trace: steps named after the one wrapped method, operators,
        # nothing else.
        self.assertEqual(set(st["name"] for st in steps),
                         {"Worker.execute_model"})
        self.assertEqual(set(e["kind"] for e in events),
                         {"EVENT_KIND_STEP", "EVENT_KIND_CPU_OP"})

    def test_empty_steps_end_at_execute_model_and_still_count(self):
        _, _, streams = self.run_shape("0.11", extra=["--empty-every", "3"])
        (hello, events, strings), = self.stepping_streams(streams).values()
        steps = kind(events, "EVENT_KIND_STEP")
        self.assertEqual(steps_of(events), list(range(5, 15)))
        sa = spans(events, "sample_tokens")
        # Steps 6, 9, 12 scheduled nothing: no sample_tokens.
        self.assertEqual(len(sa), 7)
        self.assertEqual(len(spans(events, "execute_model")), 10)

    # -- layouts -------------------------------------------------------------

    def test_ray_path_drives_the_model_runner_directly(self):
        _, _, streams = self.run_shape("0.11", layout="ray")
        (hello, events, strings), = self.stepping_streams(streams).values()
        steps = kind(events, "EVENT_KIND_STEP")
        self.assertEqual(steps_of(events), list(range(5, 15)))
        self.assertEqual(set(st["name"] for st in steps),
                         {"GPUModelRunner.execute_model+sample_tokens"})
        self.assertEqual(len(spans(events, "execute_model")), 10)
        self.assertEqual(len(spans(events, "sample_tokens")), 10)
        ops = ops_of(events)
        self.assertTrue(ops)
        self.assertTrue(all(in_some_step(op, steps) for op in ops))

    def test_engine_core_tp2_workers_named_with_ranks_api_server_idle(self):
        p, data, streams = self.run_shape("0.11", layout="engine-core", tp=2)
        self.assertEqual(self.probe_lines(p.stderr), [])
        stepping = self.stepping_streams(streams)
        self.assertEqual(len(stepping), 2)
        names = {}
        for sid, (hello, events, strings) in stepping.items():
            self.check_window(events, paired=True)
            state = [m["state"] for m in streams.by_stream[sid]
                     if "state" in m]
            self.assertTrue(state, "no ProbeState")
            names[hello["process_name"]] = (
                _int(state[-1].get("rank")), _int(state[-1].get("world_size")),
                state[-1].get("wrapped_targets", []))
        self.assertEqual(sorted(names), ["VllmWorker-0", "VllmWorker-1"])
        self.assertEqual(names["VllmWorker-0"][:2], (0, 2))
        self.assertEqual(names["VllmWorker-1"][:2], (1, 2))
        self.assertIn("vllm.v1.worker.gpu_worker:Worker.execute_model+"
                      "sample_tokens", names["VllmWorker-1"][2])
        # Each process says who it is beyond its pid (pid namespaces of
        # containers collide): distinct, non-zero process_uid.
        uids = [int(h.get("process_uid", 0)) for h in streams.hellos()]
        self.assertNotIn(0, uids)
        self.assertEqual(len(set(uids)), len(uids))
        # The API server process: no connection, no thread of ours.
        pids = [_int(h["pid"]) for h in streams.hellos()]
        self.assertNotIn(data["api_server_pid"], pids)
        self.assertEqual(data["api_server_threads"], 1)
        self.assertFalse(data["worker_imported_in_api_server"])

    def test_engine_core_tp1_worker_runs_in_engine_core(self):
        _, data, streams = self.run_shape("0.11", layout="engine-core")
        (hello, events, strings), = self.stepping_streams(streams).values()
        self.assertEqual(hello["process_name"], "EngineCore_DP0")
        self.assertEqual(_int(hello["pid"]), data["engine_pid"])
        self.check_window(events, paired=True)

    def test_v0_engine_reports_idle_once(self):
        p, data, streams = self.run_shape("v0")
        lines = self.probe_lines(p.stderr)
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith(
            "vllm-profiler: idle: vLLM's V0 engine runs here "
            "(LocalOrDistributedWorkerBase.execute_model): the target "
            "vllm.v1.worker.gpu_worker was never imported"), lines[0])
        (sid,) = streams.by_stream
        states = [m["state"] for m in streams.by_stream[sid] if "state" in m]
        self.assertTrue(states[-1]["idle_reason"].startswith(
            "vLLM's V0 engine runs here"))
        events, _ = streams.events(sid)
        self.assertEqual(events, [])

    # -- faults and odd orders ---------------------------------------------

    def test_exceptions_end_the_step_with_error_and_propagate(self):
        _, data, streams = self.run_shape(
            "0.11", extra=["--raise-in", "execute_model:7",
                           "--raise-in", "sample_tokens:9"])
        # The engine saw the exceptions unchanged.
        results = data["processes"][0]["results"]
        self.assertEqual(results[6], "RuntimeError: injected failure at step 7")
        self.assertEqual(results[8], "RuntimeError: injected failure at step 9")
        (hello, events, strings), = self.stepping_streams(streams).values()
        steps = {_int(s["step"]): s for s in kind(events, "EVENT_KIND_STEP")}
        self.assertEqual(sorted(steps), list(range(5, 15)))
        self.assertEqual(step_args(steps[7], strings)["error"], "RuntimeError")
        self.assertEqual(step_args(steps[9], strings)["error"], "RuntimeError")
        self.assertNotIn("error", step_args(steps[8], strings))
        # Step 7 never sampled; step 9 has both calls.
        in7 = [s["name"] for s in kind(events, "EVENT_KIND_PYTHON")
               if inside(s, steps[7])]
        self.assertEqual(in7, ["execute_model"])

    def test_skipped_and_orphan_sample_tokens_never_break_counting(self):
        _, data, streams = self.run_shape(
            "0.11", extra=["--skip-sample-at", "8", "--orphan-sample-at", "10"])
        results = data["processes"][0]["results"]
        self.assertIn("orphan: sample_tokens() called without a preceding "
                      "execute_model() that returned None", results)
        (hello, events, strings), = self.stepping_streams(streams).values()
        steps = {_int(s["step"]): s for s in kind(events, "EVENT_KIND_STEP")}
        self.assertEqual(sorted(steps), list(range(5, 15)))
        # Step 8 ends when step 9's execute_model arrives.
        self.assertLessEqual(
            _int(steps[8]["start_ns"]) + _int(steps[8]["duration_ns"]),
            _int(steps[9]["start_ns"]))
        orphans = [s for s in spans(events, "sample_tokens")
                   if not any(inside(s, st) for st in steps.values())]
        self.assertEqual(len(orphans), 1)
        self.assertEqual(len(spans(events, "sample_tokens")), 10)


if __name__ == "__main__":
    ARGS["bundle"], ARGS["collector"], ARGS["workload"] = sys.argv[1:4]
    unittest.main(argv=[sys.argv[0], "-v"])
