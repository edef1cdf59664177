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

    def test_older_layout_lists_and_missing_total(self):
        so = Obj(num_scheduled_tokens={"a": 2, "b": 3},
                 scheduled_new_reqs=[], scheduled_cached_reqs=["a", "b"])
        self.assertEqual(probe.batch_shape(so), (2, 5, 0, 2))

    def test_missing_attributes_are_left_out(self):
        self.assertEqual(probe.batch_shape(object()), (-1, -1, -1, -1))
        self.assertEqual(probe.batch_shape(None), (-1, -1, -1, -1))
        self.assertEqual(probe.batch_shape(Obj(num_scheduled_tokens=5)),
                         (-1, -1, -1, -1))


class TargetTest(unittest.TestCase):

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
