"""Unit tests of the Python hook that need no native library and no torch:
target parsing, batch shapes, the import finder, sitecustomize chaining,
the user-site hook (usercustomize) and the library-missing path (logged
once, host untouched)."""
import importlib
import io
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vllm_profiler_probe as probe  # noqa: E402


class Obj(object):
    def __init__(self, **kw):
        self.__dict__.update(kw)


class BatchShapeTest(unittest.TestCase):

    def test_vllm_v1_scheduler_output(self):
        so = Obj(num_scheduled_tokens={"a": 1, "b": 1, "c": 30},
                 total_num_scheduled_tokens=32,
                 scheduled_new_reqs=[object()],
                 scheduled_cached_reqs=Obj(req_ids=["a", "b"]))
        self.assertEqual(probe.batch_shape(so), (3, 32, 1, 2))

    def test_more_than_one_token_is_prefill_unless_speculative(self):
        so = Obj(num_scheduled_tokens={"a": 2, "b": 3, "c": 1},
                 scheduled_spec_decode_tokens={"b": [7, 8]},
                 scheduled_new_reqs=[], scheduled_cached_reqs=["a", "b"])
        self.assertEqual(probe.batch_shape(so), (3, 6, 1, 2))

    def test_without_per_request_tokens_new_and_cached_count(self):
        so = Obj(scheduled_new_reqs=[1], scheduled_cached_reqs=Obj(
            req_ids=["a", "b"]))
        self.assertEqual(probe.batch_shape(so), (3, -1, 1, 2))

    def test_missing_attributes_are_left_out(self):
        self.assertEqual(probe.batch_shape(object()), (-1, -1, -1, -1))
        self.assertEqual(probe.batch_shape(None), (-1, -1, -1, -1))
        self.assertEqual(probe.batch_shape(Obj(num_scheduled_tokens=5)),
                         (-1, -1, -1, -1))


class PackBatchTest(unittest.TestCase):
    """The flight recorder's one-pass read gives what the careful readers
    give, for every shape of SchedulerOutput."""

    def careful(self, so):
        from vllm_profiler_probe import _schedule
        shape = _schedule.batch_shape(so)
        counts = dict(_schedule.request_counts(so))
        ids = _schedule.request_ids(so)
        return (shape + (counts.get("num_new_requests", -1),
                         counts.get("num_resumed_requests", -1),
                         counts.get("num_finished_requests", -1),
                         ids[1] if ids else 0),
                ids[0].encode() if ids else None)

    def packed(self, so):
        import ctypes
        from vllm_profiler_probe import _schedule
        slots = (ctypes.c_int64 * 16)()
        ids = _schedule.pack_batch(slots, so)
        return tuple(slots[:8]), ids

    def test_fast_path_agrees_with_the_careful_readers(self):
        cached = Obj(req_ids=["a", "b"], resumed_req_ids={"a"})
        shapes = [
            # Decode only (the shortcut: as many tokens as requests).
            dict(num_scheduled_tokens={"a": 1, "b": 1},
                 total_num_scheduled_tokens=2),
            # A prefill chunk among decodes.
            dict(num_scheduled_tokens={"a": 1, "b": 1, "c": 30},
                 total_num_scheduled_tokens=32),
            # Speculative tokens are not prefill.
            dict(num_scheduled_tokens={"a": 2, "b": 3, "c": 1},
                 total_num_scheduled_tokens=6,
                 scheduled_spec_decode_tokens={"b": [7, 8], "a": [1]}),
            # More ids than are kept.
            dict(num_scheduled_tokens={"r%d" % i: 1 for i in range(70)},
                 total_num_scheduled_tokens=70),
            # Non-str ids and a comma in an id: the careful path.
            dict(num_scheduled_tokens={1: 1, 2: 4},
                 total_num_scheduled_tokens=5),
            dict(num_scheduled_tokens={"x,y": 1}, total_num_scheduled_tokens=1),
            # No total: the careful path sums.
            dict(num_scheduled_tokens={"a": 3, "b": 1}),
        ]
        for kw in shapes:
            base = dict(scheduled_new_reqs=[1], scheduled_cached_reqs=cached,
                        finished_req_ids={"z"}, scheduled_spec_decode_tokens={})
            base.update(kw)
            so = Obj(**base)
            self.assertEqual(self.packed(so), self.careful(so), kw)

    def test_odd_objects_give_unknowns(self):
        for so in (None, object(), Obj(num_scheduled_tokens=5)):
            self.assertEqual(self.packed(so), self.careful(so))
        self.assertEqual(self.packed(None),
                         ((-1, -1, -1, -1, -1, -1, -1, 0), None))


class ScheduleArgsTest(unittest.TestCase):

    def test_counts_and_ids(self):
        from vllm_profiler_probe import _schedule
        ids = ["r%d" % i for i in range(70)]
        so = Obj(num_scheduled_tokens={i: 1 for i in ids},
                 scheduled_new_reqs=[1, 2],
                 scheduled_cached_reqs=Obj(req_ids=ids, resumed_req_ids={"r1"}),
                 finished_req_ids={"x", "y", "z"})
        self.assertEqual(_schedule.request_counts(so), [
            ("num_new_requests", 2), ("num_resumed_requests", 1),
            ("num_finished_requests", 3)])
        text, total = _schedule.request_ids(so)
        self.assertEqual(total, 70)
        self.assertEqual(text.split(","), ids[:64])

    def test_older_resumed_flags_and_odd_objects(self):
        from vllm_profiler_probe import _schedule
        so = Obj(scheduled_cached_reqs=Obj(
            resumed_from_preemption=[True, False, True]))
        self.assertEqual(_schedule.request_counts(so),
                         [("num_resumed_requests", 2)])
        self.assertEqual(_schedule.request_counts(object()), [])
        self.assertIsNone(_schedule.request_ids(object()))
        self.assertEqual(_schedule.request_ids(
            Obj(num_scheduled_tokens={"a,b": 1}))[0], "a%2Cb")


class FakeLib(object):
    """Records the C ABI calls the step model makes."""

    def __init__(self, capturing=False):
        self.calls = []
        self.step = 0
        self.capturing = capturing
        self.next_span = 0

    def vp_step_begin_ex(self):
        self.step += 1
        self.calls.append(("begin", self.step))
        return self.step * 2 + (1 if self.capturing else 0)

    def vp_step_end(self):
        self.calls.append(("end",))

    def vp_step_end_error(self, error):
        self.calls.append(("end_error", error))

    def vp_is_capturing(self):
        return 1 if self.capturing else 0

    def vp_set_step_name(self, name):
        self.calls.append(("name", name))

    def vp_span_begin(self, name):
        self.next_span += 1
        self.calls.append(("span", name))
        return self.next_span

    def vp_span_end(self, span):
        self.calls.append(("span_end",))

    def vp_step_annotate(self, *a):
        pass

    def vp_step_arg_int(self, *a):
        pass

    def vp_step_arg_str(self, *a):
        pass


class FlightLib(FakeLib):
    """A core with the flight recorder on: values come through its slots."""

    def __init__(self, capturing=False):
        import ctypes
        FakeLib.__init__(self, capturing)
        self.slots = (ctypes.c_int64 * 16)()

    def vp_flight_level(self):
        return 1

    def vp_step_slots(self):
        import ctypes
        return ctypes.addressof(self.slots)

    def vp_step_begin_slots(self, request_ids):
        self.step += 1
        self.calls.append(("begin_batch", self.step,
                           tuple(self.slots[:7]) + (request_ids,
                                                    self.slots[7])))
        return self.step * 2 + (1 if self.capturing else 0)

    def vp_step_end_slots(self, error):
        self.calls.append(("end_marked", self.slots[8], self.slots[9], error))
        self.slots[8] = self.slots[9] = 0  # As the core: marks are used once.


class StepModelTest(unittest.TestCase):
    """The state machine of _steps.py against a fake library."""

    def make(self, paired=True, capturing=False, returns=None, flight=False,
             sample_raises=None):
        from vllm_profiler_probe import _steps
        lib = (FlightLib if flight else FakeLib)(capturing)
        model = _steps.StepModel()
        model.lib = lib
        calls = []

        class W(object):
            def execute_model(self, so):
                """doc"""
                calls.append("exec")
                if isinstance(returns, Exception):
                    raise returns
                return returns

            def sample_tokens(self, g):
                calls.append("sample")
                if sample_raises is not None:
                    raise sample_raises
                return "out"

        W.execute_model = _steps.make_execute_wrapper(
            model, W.execute_model, b"W.step", paired)
        if paired:
            W.sample_tokens = _steps.make_sample_wrapper(model, W.sample_tokens)
        return model, lib, W(), calls

    def test_pair_is_one_step(self):
        model, lib, w, _ = self.make()
        self.assertIsNone(w.execute_model(1))
        self.assertEqual(w.sample_tokens(2), "out")
        self.assertEqual(lib.calls, [("name", b"W.step"), ("begin", 1),
                                     ("end",)])

    def test_flight_step_is_two_calls_with_batch_and_phases(self):
        import time
        model, lib, w, _ = self.make(flight=True)
        so = Obj(num_scheduled_tokens={"r1": 5, "r2": 1},
                 total_num_scheduled_tokens=6,
                 scheduled_new_reqs=[1], finished_req_ids=set(),
                 scheduled_cached_reqs=Obj(resumed_req_ids=set()))
        before = time.monotonic_ns()
        self.assertIsNone(w.execute_model(so))
        self.assertEqual(w.sample_tokens(2), "out")
        after = time.monotonic_ns()
        self.assertEqual(lib.calls[:2], [
            ("name", b"W.step"),
            ("begin_batch", 1, (2, 6, 1, 1, 1, 0, 0, b"r1,r2", 2))])
        self.assertEqual(len(lib.calls), 3)
        tag, execute_end, sample_begin, error = lib.calls[2]
        self.assertEqual((tag, error), ("end_marked", None))
        self.assertTrue(before <= execute_end <= sample_begin <= after)

    def test_flight_step_that_raises_keeps_its_phases(self):
        model, lib, w, _ = self.make(flight=True,
                                     sample_raises=ValueError("x"))
        w.execute_model(Obj())  # An odd SchedulerOutput: unknown batch.
        with self.assertRaises(ValueError):
            w.sample_tokens(2)
        self.assertEqual(lib.calls[1], ("begin_batch", 1, (
            -1, -1, -1, -1, -1, -1, -1, None, 0)))
        tag, execute_end, sample_begin, error = lib.calls[2]
        self.assertEqual((tag, error), ("end_marked", b"ValueError"))
        self.assertTrue(0 < execute_end <= sample_begin)

    def test_flight_unsampled_step_ends_with_its_execute_phase(self):
        model, lib, w, _ = self.make(flight=True)
        w.execute_model(Obj())
        w.execute_model(Obj())
        self.assertEqual(lib.calls[2][0], "end_marked")
        self.assertGreater(lib.calls[2][1], 0)
        self.assertEqual(lib.calls[2][2:], (0, None))
        self.assertEqual(lib.calls[3][:2], ("begin_batch", 2))

    def test_flight_while_capturing_spans_instead_of_marks(self):
        model, lib, w, _ = self.make(flight=True, capturing=True)
        w.execute_model(Obj())
        w.sample_tokens(2)
        self.assertEqual([c[0] for c in lib.calls[1:]], [
            "begin_batch", "span", "span_end", "span", "span_end", "end"])

    def test_child_spans_while_capturing(self):
        model, lib, w, _ = self.make(capturing=True)
        w.execute_model(1)
        w.sample_tokens(2)
        self.assertEqual(lib.calls[1:], [
            ("begin", 1), ("span", b"execute_model"), ("span_end",),
            ("span", b"sample_tokens"), ("span_end",), ("end",)])

    def test_next_execute_model_ends_an_unsampled_step(self):
        model, lib, w, _ = self.make()
        w.execute_model(1)
        w.execute_model(2)
        self.assertEqual(lib.calls[1:], [("begin", 1), ("end",), ("begin", 2)])
        model.close_pending()
        self.assertEqual(lib.calls[-1], ("end",))

    def test_output_from_execute_model_ends_the_step(self):
        model, lib, w, _ = self.make(returns="pooled")
        self.assertEqual(w.execute_model(1), "pooled")
        self.assertEqual(lib.calls[1:], [("begin", 1), ("end",)])

    def test_single_call_shape_is_one_step_per_call(self):
        model, lib, w, _ = self.make(paired=False)
        w.execute_model(1)
        self.assertEqual(lib.calls[1:], [("begin", 1), ("end",)])

    def test_exception_ends_with_error_and_propagates(self):
        err = KeyError("boom")
        model, lib, w, _ = self.make(returns=err)
        with self.assertRaises(KeyError) as ctx:
            w.execute_model(1)
        self.assertIs(ctx.exception, err)
        self.assertEqual(lib.calls[1:], [("begin", 1),
                                         ("end_error", b"KeyError")])
        self.assertFalse(model.open_step)

    def test_orphan_sample_counts_nothing(self):
        model, lib, w, calls = self.make(capturing=True)
        self.assertEqual(w.sample_tokens(1), "out")
        self.assertEqual(lib.calls, [("span", b"sample_tokens"),
                                     ("span_end",)])

    def test_nested_calls_belong_to_the_outer_one(self):
        from vllm_profiler_probe import _steps
        model, lib, w, _ = self.make()

        class Outer(object):
            def execute_model(self, so):
                return w.execute_model(so)

            def sample_tokens(self, g):
                return w.sample_tokens(g)
        Outer.execute_model = _steps.make_execute_wrapper(
            model, Outer.execute_model, b"Outer.step", True)
        Outer.sample_tokens = _steps.make_sample_wrapper(
            model, Outer.sample_tokens)
        o = Outer()
        o.execute_model(1)
        o.sample_tokens(2)
        self.assertEqual(lib.calls, [("name", b"Outer.step"), ("begin", 1),
                                     ("end",)])

    def test_wrapper_keeps_name_doc_signature(self):
        import inspect
        model, lib, w, _ = self.make()
        self.assertEqual(type(w).execute_model.__name__, "execute_model")
        self.assertEqual(type(w).execute_model.__doc__, "doc")
        self.assertEqual(list(inspect.signature(type(w).execute_model)
                              .parameters), ["self", "so"])

    def test_hook_failure_turns_off_and_host_runs(self):
        model, lib, w, calls = self.make()
        errors = []
        model.on_error = errors.append

        def broken():
            raise OSError("lib gone")
        lib.vp_step_begin_ex = broken
        self.assertIsNone(w.execute_model(1))
        self.assertEqual(calls, ["exec"])
        self.assertEqual(len(errors), 1)
        self.assertIsNone(model.lib)
        w.execute_model(1)
        self.assertEqual(calls, ["exec", "exec"])


class TargetTest(unittest.TestCase):

    def test_parse_targets(self):
        ts = probe.parse_targets(probe.DEFAULT_TARGETS, explicit=False)
        self.assertEqual([t.text() for t in ts], [
            "vllm.v1.worker.gpu_worker:Worker.execute_model+sample_tokens",
            "vllm.v1.worker.gpu_model_runner:GPUModelRunner.execute_model+"
            "sample_tokens",
            "vllm.v1.worker.gpu.model_runner:GPUModelRunner.execute_model+"
            "sample_tokens"])
        self.assertEqual(probe.parse_targets("m:A.b")[0].methods, ("b",))
        for bad in ("m:A.b+", "m:A.a+b+c", "m:A.b,garbage"):
            self.assertIsNone(probe.parse_targets(bad), bad)

    def test_parse(self):
        self.assertEqual(probe._parse_target(
            "vllm.v1.worker.gpu_worker:Worker.execute_model"),
            ("vllm.v1.worker.gpu_worker", "Worker", "execute_model"))
        for bad in ("garbage", "m:", ":A.b", "m:A", "m:A.b.c", "m:A."):
            self.assertIsNone(probe._parse_target(bad), bad)


def run_py(code, env_extra, pythonpath, flags=()):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VLLM_PROFILER") and
           k not in ("PYTHONUSERBASE", "PYTHONNOUSERSITE")}
    env["PYTHONPATH"] = os.pathsep.join(pythonpath)
    env.update(env_extra)
    return subprocess.run([sys.executable] + list(flags) + ["-c", code],
                          env=env, capture_output=True, text=True, timeout=60)


class HookProcessTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        pkg = os.path.join(self.tmp, "app", "eng")
        os.makedirs(pkg)
        open(os.path.join(self.tmp, "app", "__init__.py"), "w").close()
        with open(os.path.join(pkg, "__init__.py"), "w") as f:
            f.write(textwrap.dedent('''
                class W:
                    def run(self, x, y=2):
                        """doc"""
                        return x + y
            '''))

    def test_missing_native_library_logs_once_and_leaves_host_alone(self):
        code = textwrap.dedent('''
            import inspect
            from app.eng import W
            print(W().run(1), W().run(2), W.run.__name__, W.run.__doc__,
                  list(inspect.signature(W.run).parameters))
        ''')
        p = run_py(code, {"VLLM_PROFILER_TARGET": "app.eng:W.run",
                          "VLLM_PROFILER_LIB": "/nonexistent/lib.so"},
                   [HERE, self.tmp])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.strip(), "3 4 run doc ['self', 'x', 'y']")
        lines = [l for l in p.stderr.splitlines()
                 if l.startswith("vllm-profiler:")]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith(
            "vllm-profiler: cannot load the probe library ("), lines[0])
        self.assertTrue(lines[0].endswith(
            "); the process runs without profiling"), lines[0])

    def test_missing_class_or_method_is_logged(self):
        p = run_py("import app.eng", {"VLLM_PROFILER_TARGET": "app.eng:Nope.run"},
                   [HERE, self.tmp])
        self.assertEqual(p.returncode, 0)
        self.assertIn("vllm-profiler: target class Nope not found in module "
                      "app.eng; nothing profiled", p.stderr)
        p = run_py("import app.eng", {"VLLM_PROFILER_TARGET": "app.eng:W.nope"},
                   [HERE, self.tmp])
        self.assertIn("vllm-profiler: target method W.nope not found in module "
                      "app.eng; nothing profiled", p.stderr)

    def test_bad_enabled_value_is_logged(self):
        p = run_py("pass", {"VLLM_PROFILER_ENABLED": "maybe"}, [HERE])
        self.assertIn("vllm-profiler: VLLM_PROFILER_ENABLED='maybe' is not a "
                      "boolean (1 or 0); using 1", p.stderr)

    def test_chains_to_the_next_sitecustomize_once(self):
        other = os.path.join(self.tmp, "other")
        os.makedirs(other)
        with open(os.path.join(other, "sitecustomize.py"), "w") as f:
            f.write("import sys\nsys.stdout.write('other-site ')\n")
        p = run_py("import sitecustomize, sys; print(sitecustomize.__file__)",
                   {}, [HERE, other])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.count("other-site"), 1)
        self.assertIn(os.path.join(HERE, "sitecustomize.py"), p.stdout)


class UserSiteHookTest(unittest.TestCase):
    """PYTHONUSERBASE=<probe folder>: the probe loads, PYTHONPATH is the
    image's alone."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        # The probe folder as the bundle lays it out.
        self.base = os.path.join(self.tmp, "profiler")
        site = os.path.join(self.base, "lib", "python%d.%d" %
                            sys.version_info[:2], "site-packages")
        os.makedirs(site)
        with open(os.path.join(HERE, "usercustomize.py")) as f:
            src = f.read()
        with open(os.path.join(site, "usercustomize.py"), "w") as f:
            f.write(src)
        os.symlink(os.path.join(HERE, "vllm_profiler_probe"),
                   os.path.join(self.base, "vllm_profiler_probe"))
        # The "image": an app importable only through its PYTHONPATH, and
        # its own usercustomize further down sys.path (a .pth in the user
        # site appends that folder, as an image's site-packages would).
        self.app = os.path.join(self.tmp, "image_app")
        os.makedirs(os.path.join(self.app, "servingapp"))
        with open(os.path.join(self.app, "servingapp", "__init__.py"), "w") as f:
            f.write(textwrap.dedent('''
                class W:
                    def run(self, x):
                        return x * 2
            '''))
        other = os.path.join(self.tmp, "image_site")
        os.makedirs(other)
        with open(os.path.join(other, "usercustomize.py"), "w") as f:
            f.write("import sys\nsys.stdout.write('image-usercustomize ')\n")
        with open(os.path.join(site, "image.pth"), "w") as f:
            f.write(other + "\n")

    def run_app(self, env=None, flags=()):
        code = ("import sys, servingapp; "
                "print(servingapp.W().run(21), "
                "'vllm_profiler_probe' in sys.modules, "
                "getattr(sys, '_vllm_profiler_installed', False), "
                "any(p.endswith('profiler') for p in sys.path))")
        e = {"PYTHONUSERBASE": self.base, "VLLM_PROFILER_TARGET":
             "servingapp:W.run", "VLLM_PROFILER_LIB": "/nonexistent/lib.so"}
        e.update(env or {})
        return run_py(code, e, [self.app], flags)

    def test_installs_chains_and_keeps_the_image_pythonpath(self):
        p = self.run_app()
        self.assertEqual(p.returncode, 0, p.stderr)
        # Our hook ran (and tried the native library when the target was
        # imported), the image's usercustomize ran once, and the probe
        # folder is not on sys.path.
        self.assertEqual(p.stdout.strip(),
                         "image-usercustomize 42 True True False")
        lines = [l for l in p.stderr.splitlines()
                 if l.startswith("vllm-profiler:")]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertTrue(lines[0].startswith(
            "vllm-profiler: cannot load the probe library ("), lines[0])

    def test_disabled_user_site_leaves_the_process_alone(self):
        # -s, and PYTHONNOUSERSITE: the documented limits. Nothing of ours
        # runs, nothing is logged, the app works.
        for flags, env in ((("-s",), {}), ((), {"PYTHONNOUSERSITE": "1"})):
            p = self.run_app(env, flags)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.strip(), "42 False False False")
            self.assertEqual(p.stderr, "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
