"""The C reader of vLLM's SchedulerOutput (vp_step_functions' begin, in the
real core library under this Python) against the Python reader it replaces
(_schedule.pack_batch): the same values for every shape, a refusal (-1, no
step begun) for every odd one, no Python error left behind, no reference
leaked.

  /usr/bin/python3 scheduler_reader_test.py PATH/libvllm_profiler_probe.so
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vllm_profiler_probe import _native, _schedule  # noqa: E402

LIB = {}


class Obj(object):
    def __init__(self, **kw):
        self.__dict__.update(kw)


class Cached(object):
    def __init__(self, resumed):
        self.resumed_req_ids = resumed


def scheduler_output(**kw):
    base = dict(num_scheduled_tokens={"a": 1, "b": 1},
                total_num_scheduled_tokens=2, scheduled_new_reqs=[],
                scheduled_cached_reqs=Cached({"a"}), finished_req_ids=set(),
                scheduled_spec_decode_tokens={})
    base.update(kw)
    return Obj(**base)


class ReaderTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        os.environ["VLLM_PROFILER_SOCKET"] = "/nonexistent/vp.sock"
        os.environ["VLLM_PROFILER_LOG"] = "quiet"
        os.environ["VLLM_PROFILER_START_STEP"] = str(10 ** 9)
        cls.lib = _native.load_core(LIB["path"])
        cls.calls = _native.FlightCalls(cls.lib)
        cls.read = cls.calls.begin
        cls.slots = _native.step_slots(cls.lib)

    def python_values(self, so):
        ids = _schedule.pack_batch(self.slots, so)
        return tuple(self.slots[:8]), ids

    def test_available_here(self):
        self.assertTrue(self.calls.builtin, "the core's builtins are not here")
        self.assertEqual(type(self.read).__name__, "builtin_function_or_method")

    def test_marks_go_into_the_slots_and_end_uses_them_once(self):
        import time
        self.assertGreaterEqual(self.read(scheduler_output()), 0)
        before = time.monotonic_ns()
        self.calls.mark_execute_end()
        self.calls.mark_sample_begin()
        after = time.monotonic_ns()
        self.assertTrue(before <= self.slots[8] <= self.slots[9] <= after)
        self.assertIsNone(self.calls.end())
        self.assertEqual((self.slots[8], self.slots[9]), (0, 0))

    def test_same_values_as_the_python_reader(self):
        shapes = [
            {},
            dict(num_scheduled_tokens={"a": 1, "b": 1, "c": 30},
                 total_num_scheduled_tokens=32),
            dict(num_scheduled_tokens={"a": 2, "b": 3, "c": 1},
                 total_num_scheduled_tokens=6,
                 scheduled_spec_decode_tokens={"b": [7, 8], "a": [1]}),
            dict(num_scheduled_tokens={"a": 4},
                 total_num_scheduled_tokens=4,
                 scheduled_spec_decode_tokens=["not", "a", "dict"]),
            dict(num_scheduled_tokens={"r%d" % i: 1 for i in range(300)},
                 total_num_scheduled_tokens=300),
            dict(num_scheduled_tokens={"é-%d" % i: 2 for i in range(5)},
                 total_num_scheduled_tokens=10, scheduled_new_reqs=[1, 2],
                 finished_req_ids={"x", "y", "z"}),
            dict(num_scheduled_tokens={}, total_num_scheduled_tokens=0),
        ]
        for kw in shapes:
            so = scheduler_output(**kw)
            want = self.python_values(so)
            got = self.lib_values(so)
            self.assertEqual(got, want, kw)

    def lib_values(self, so):
        """Runs the C reader; returns what it read (the slots and
        vp_step_read_request_ids)."""
        for i in range(8):
            self.slots[i] = -99
        self.assertGreaterEqual(self.read(so), 0)
        self.lib.vp_step_end()
        return tuple(self.slots[:8]), self.lib.vp_step_read_request_ids()

    def test_odd_objects_are_refused_and_leave_no_error(self):
        odd = [
            None, object(), Obj(),
            scheduler_output(num_scheduled_tokens=[("a", 1)]),
            scheduler_output(total_num_scheduled_tokens="2"),
            scheduler_output(num_scheduled_tokens={1: 1, 2: 1}),
            scheduler_output(num_scheduled_tokens={"a,b": 1},
                             total_num_scheduled_tokens=1),
            scheduler_output(num_scheduled_tokens={"a": "1", "b": 2},
                             total_num_scheduled_tokens=3),
            scheduler_output(scheduled_cached_reqs=Obj()),
            scheduler_output(finished_req_ids=None),
            scheduler_output(num_scheduled_tokens={"\ud800": 1},
                             total_num_scheduled_tokens=1),
            scheduler_output(num_scheduled_tokens={"x" * 9000: 1},
                             total_num_scheduled_tokens=1),
            scheduler_output(total_num_scheduled_tokens=2 ** 70),
        ]
        before = self.lib.vp_step_begin_ex()
        self.lib.vp_step_end()
        for so in odd:
            self.assertEqual(self.read(so), -1, repr(so))
        after = self.lib.vp_step_begin_ex()
        self.lib.vp_step_end()
        # No step was begun by a refused read.
        self.assertEqual(after, before + 2)

    def test_no_reference_is_leaked(self):
        per_req = {"a": 1, "b": 5}
        spec = {"b": [1]}
        new, fin, resumed = [1], {"f"}, {"a"}
        cached = Cached(resumed)
        so = scheduler_output(num_scheduled_tokens=per_req,
                              total_num_scheduled_tokens=6,
                              scheduled_spec_decode_tokens=spec,
                              scheduled_new_reqs=new, finished_req_ids=fin,
                              scheduled_cached_reqs=cached)
        objs = [so, per_req, spec, new, fin, resumed, cached, spec["b"]]
        counts = [sys.getrefcount(o) for o in objs]
        for _ in range(1000):
            self.assertGreaterEqual(self.read(so), 0)
            self.lib.vp_step_end()
        self.assertEqual([sys.getrefcount(o) for o in objs], counts)


if __name__ == "__main__":
    LIB["path"] = os.path.abspath(sys.argv.pop(1))
    unittest.main()
