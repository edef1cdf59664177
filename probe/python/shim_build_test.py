"""Tests of _shim_build (the in-process torch shim build) with Debian 12's
torch 1.13 and /usr/bin/python3.

usage: shim_build_test.py BUNDLED_SHIM_SO

Each build_or_load() runs in a fresh child process (this file with --child),
as in a worker: dlopen results do not carry over between cases, and eight
children can race for one cache entry. One case compiles for real with g++;
the others use fake compilers (shell scripts): one that copies the
Bazel-built shim to its -o argument and counts its runs, one that fails, one
that hangs.

usage (child): shim_build_test.py --child PROBE_DIR  (env as the case sets)
  prints the info dict as JSON on stdout; log lines go to stderr.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ARGS = {}

# Copies the real shim to the -o argument after `delay` seconds and appends
# one line per compile (not per --version) to a count file.
COPYING_COMPILER = """#!/bin/sh
if [ "$1" = --version ]; then echo "fake-c++ 1.0"; exit 0; fi
echo run >> "{count}"
sleep {delay}
while [ $# -gt 0 ]; do
  if [ "$1" = -o ]; then cp "{shim}" "$2"; exit 0; fi
  shift
done
exit 1
"""
FAILING_COMPILER = """#!/bin/sh
if [ "$1" = --version ]; then echo "fake-c++ 1.0"; exit 0; fi
echo "torch_shim.cc:1:1: error: simulated failure" >&2
exit 1
"""
HANGING_COMPILER = """#!/bin/sh
if [ "$1" = --version ]; then echo "fake-c++ 1.0"; exit 0; fi
echo $$ > "{pidfile}"
exec sleep 1000
"""


def child(probe_dir):
    import torch
    from vllm_profiler_probe import _shim_build
    version = os.environ.get("TEST_TORCH_VERSION") or None
    _, info = _shim_build.build_or_load(
        torch, probe_dir, lambda m: sys.stderr.write("vllm-profiler: %s\n" % m),
        torch_version=version)
    json.dump(info, sys.stdout)


class ShimBuildTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
        cls.tmp = tempfile.mkdtemp(prefix="shim-build-", dir=base)
        cls.probe_dir = os.path.join(cls.tmp, "probe")
        src = os.path.join(cls.probe_dir, "torch_shim")
        os.makedirs(os.path.join(src, "vllm_profiler"))
        root = os.path.dirname(os.path.dirname(HERE))
        shutil.copy(os.path.join(root, "probe", "torch", "torch_shim.cc"), src)
        shutil.copy(os.path.join(root, "probe", "include", "vllm_profiler",
                                 "probe.h"),
                    os.path.join(src, "vllm_profiler"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(dir=self.tmp)
        self.cache = os.path.join(self.dir, "cache")
        self.count = os.path.join(self.dir, "count")

    def fake(self, name, text, **fmt):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text.format(**fmt))
        os.chmod(path, 0o755)
        return path

    def copying(self, delay=0):
        return self.fake("copy-c++", COPYING_COMPILER, count=self.count,
                         delay=delay, shim=os.path.abspath(ARGS["shim"]))

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("VLLM_PROFILER") and k != "CXX"}
        env["VLLM_PROFILER_CACHE_DIR"] = self.cache
        env.update(extra)
        return env

    def spawn(self, env):
        return subprocess.Popen(
            ["/usr/bin/python3", os.path.abspath(__file__), "--child",
             self.probe_dir], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)

    def finish(self, p):
        out, err = p.communicate(timeout=600)
        self.assertEqual(p.returncode, 0, err)
        lines = [l for l in err.splitlines() if l.startswith("vllm-profiler:")]
        self.assertEqual(len(lines), 1, err)
        return json.loads(out), lines[0]

    def run_child(self, **env):
        return self.finish(self.spawn(self.env(**env)))

    def compiles(self):
        if not os.path.exists(self.count):
            return 0
        with open(self.count) as f:
            return len(f.read().splitlines())

    def assert_no_entry(self):
        names = os.listdir(self.cache) if os.path.isdir(self.cache) else []
        self.assertEqual([n for n in names if n.endswith((".so", ".json"))],
                         [])
        self.assertEqual([n for n in names if n.startswith(".")], [])

    def test_real_build_then_cache_hit(self):
        info, line = self.run_child()
        self.assertEqual(info["outcome"], "built", line)
        self.assertRegex(line, r"^vllm-profiler: built the torch shim for "
                         r"torch 1\.13\.0\S* \(C\+\+17, cxx11 ABI 1\) with "
                         r"\S+g\+\+ \(g\+\+ .*\) in \d+\.\d s: " +
                         self.cache + r"/torch-shim-\w+\.so$")
        self.assertEqual(info["std"], 17)
        self.assertGreater(info["build_seconds"], 0.5)
        # What the bundled Bazel-built shim needs, this one needs too.
        needed = subprocess.run(["readelf", "-d", info["path"]],
                                capture_output=True, text=True).stdout
        self.assertIn("libtorch_cpu.so.1.13", needed)
        self.assertIn("libc10.so.1.13", needed)

        again, line = self.run_child()
        self.assertEqual(again["outcome"], "cached", line)
        self.assertEqual(again["path"], info["path"])
        self.assertIn("from the cache", line)
        self.assertAlmostEqual(again["build_seconds"], info["build_seconds"])
        self.assertLess(again["seconds"], info["build_seconds"])

    def test_eight_processes_one_build(self):
        env = self.env(CXX=self.copying(delay=2))
        procs = [self.spawn(env) for _ in range(8)]
        results = [self.finish(p) for p in procs]
        self.assertEqual(self.compiles(), 1)
        outcomes = sorted(info["outcome"] for info, _ in results)
        self.assertEqual(outcomes.count("built"), 1, results)
        self.assertEqual(set(outcomes) - {"built", "waited", "cached"}, set())
        self.assertEqual(len(set(info["path"] for info, _ in results)), 1)
        waited = [line for info, line in results if info["outcome"] == "waited"]
        for line in waited:
            self.assertRegex(line, r"built by another process \(waited "
                             r"\d+\.\d s\)")

    def test_corrupt_entry_is_rebuilt(self):
        cxx = self.copying()
        info, _ = self.run_child(CXX=cxx)
        self.assertEqual(info["outcome"], "built")
        with open(info["path"], "r+b") as f:  # flip bytes in the middle
            f.seek(4096)
            f.write(b"\xff" * 64)
        again, line = self.run_child(CXX=cxx)
        self.assertEqual(again["outcome"], "built", line)
        self.assertIn("(the cached one was rebuilt: checksum mismatch)", line)
        self.assertEqual(self.compiles(), 2)

        # Garbage whose checksum the metadata agrees with: dlopen refuses it.
        with open(info["path"], "wb") as f:
            f.write(b"not an ELF file")
        meta_path = info["path"][:-3] + ".json"
        with open(meta_path) as f:
            meta = json.load(f)
        import hashlib
        meta["sha256"] = hashlib.sha256(b"not an ELF file").hexdigest()
        with open(meta_path, "w") as f:
            json.dump(meta, f)
        third, line = self.run_child(CXX=cxx)
        self.assertEqual(third["outcome"], "built", line)
        self.assertIn("(the cached one was rebuilt: does not load", line)
        self.assertEqual(self.compiles(), 3)

    def test_leftovers_of_killed_builds_are_removed(self):
        os.makedirs(self.cache)
        old = os.path.join(self.cache, ".build-killed.so")
        fresh = os.path.join(self.cache, ".build-running.so")
        for path in (old, fresh):
            with open(path, "w") as f:
                f.write("partial")
        os.utime(old, (1, 1))
        info, _ = self.run_child(CXX=self.copying())
        self.assertEqual(info["outcome"], "built")
        self.assertFalse(os.path.exists(old))
        self.assertTrue(os.path.exists(fresh))  # maybe another live build

    def test_no_compiler(self):
        empty = os.path.join(self.dir, "bin")
        os.makedirs(empty)
        info, line = self.run_child(PATH=empty)
        self.assertEqual(info["outcome"], "unavailable")
        self.assertEqual(line, "vllm-profiler: torch shim not built: no C++ "
                         "compiler (CXX, g++, c++, clang++) on PATH; "
                         "capturing without operator events")
        self.assert_no_entry()

    def test_failing_compiler(self):
        info, line = self.run_child(CXX=self.fake("bad-c++", FAILING_COMPILER))
        self.assertEqual(info["outcome"], "failed")
        self.assertEqual(line, "vllm-profiler: torch shim not built: bad-c++ "
                         "exited with 1: torch_shim.cc:1:1: error: simulated "
                         "failure; capturing without operator events")
        self.assert_no_entry()

    def test_hanging_compiler_is_killed(self):
        pidfile = os.path.join(self.dir, "pid")
        cxx = self.fake("slow-c++", HANGING_COMPILER, pidfile=pidfile)
        info, line = self.run_child(CXX=cxx,
                                    VLLM_PROFILER_SHIM_BUILD_TIMEOUT="2")
        self.assertEqual(info["outcome"], "timeout")
        self.assertEqual(line, "vllm-profiler: torch shim not built: slow-c++ "
                         "ran past the 2 s limit "
                         "(VLLM_PROFILER_SHIM_BUILD_TIMEOUT) and was killed; "
                         "capturing without operator events")
        with open(pidfile) as f:
            pid = int(f.read())
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)
        self.assert_no_entry()

    def test_headers_of_another_torch(self):
        info, line = self.run_child(CXX=self.copying(),
                                    TEST_TORCH_VERSION="2.6.0")
        self.assertEqual(info["outcome"], "unavailable")
        self.assertRegex(line, r"torch shim not built: the torch headers "
                         r"under \S+/torch/include are for torch 1\.13\.0, "
                         r"this process runs torch 2\.6\.0;")
        self.assertEqual(self.compiles(), 0)

    def test_disabled(self):
        info, line = self.run_child(CXX=self.copying(),
                                    VLLM_PROFILER_SHIM_BUILD="0")
        self.assertEqual(info["outcome"], "disabled")
        self.assertEqual(line, "vllm-profiler: torch shim not built: building "
                         "is off (VLLM_PROFILER_SHIM_BUILD=0); capturing "
                         "without operator events")
        self.assertEqual(self.compiles(), 0)

    def _unusable_dirs(self, temp_too=False):
        """A read-only folder and a nearly full one, each in its own mount
        (as root, where permissions do not stop writes), in a child mount
        namespace so nothing outlives the test. temp_too: /tmp and /var/tmp
        read-only as well (tempfile's fallbacks)."""
        ro = os.path.join(self.dir, "ro")
        full = os.path.join(self.dir, "full")
        os.makedirs(ro)
        os.makedirs(full)
        if os.getuid() != 0:
            return ro, full, None
        script = ('mount --bind -o ro "$0" "$0" && '
                  'mount -t tmpfs -o size=1m tmpfs "$1" && ')
        if temp_too:
            script += ('mount --bind -o ro /tmp /tmp && '
                       'mount --bind -o ro /var/tmp /var/tmp && ')
        return ro, full, ["unshare", "--mount", "--propagation", "private",
                          "sh", "-c", script + 'shift && exec "$@"', ro, full]

    def test_read_only_and_full_cache_folders_are_skipped(self):
        ro, full, wrap = self._unusable_dirs()
        xdg = os.path.join(self.dir, "xdg")
        env = self.env(CXX=self.copying(), VLLM_PROFILER_CACHE_DIR=ro,
                       VLLM_PROFILER_CACHE_VOLUME=full, XDG_CACHE_HOME=xdg)
        cmd = ["/usr/bin/python3", os.path.abspath(__file__), "--child",
               self.probe_dir]
        if wrap is None:
            self.skipTest("needs root for read-only mounts")
        p = subprocess.run(wrap + cmd, env=env, capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        info = json.loads(p.stdout)
        self.assertEqual(info["outcome"], "built", p.stderr)
        self.assertEqual(info["cache_dir"], os.path.join(xdg, "vllm-profiler"))
        self.assertEqual(os.listdir(ro), [])
        self.assertEqual(os.listdir(full), [])

    def test_no_usable_cache_folder(self):
        ro, full, wrap = self._unusable_dirs(temp_too=True)
        if wrap is None:
            self.skipTest("needs root for read-only mounts")
        # Every candidate is read-only or full, the temp folders included.
        env = self.env(CXX=self.copying(), VLLM_PROFILER_CACHE_DIR=ro,
                       VLLM_PROFILER_CACHE_VOLUME=ro, XDG_CACHE_HOME=ro,
                       HOME=ro, TMPDIR=ro)
        p = subprocess.run(wrap + ["/usr/bin/python3", os.path.abspath(
            __file__), "--child", self.probe_dir], env=env, cwd=ro,
            capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        info = json.loads(p.stdout)
        self.assertEqual(info["outcome"], "unavailable", p.stderr)
        lines = [l for l in p.stderr.splitlines()
                 if l.startswith("vllm-profiler:")]
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertRegex(lines[0], r"^vllm-profiler: torch shim not built: "
                         r"no writable cache folder \(.*Read-only file "
                         r"system.*\); capturing without operator events$")
        self.assertEqual(self.compiles(), 0)

    def test_start_runs_in_a_thread_and_calls_back(self):
        import threading
        import torch
        from vllm_profiler_probe import _shim_build
        done = threading.Event()
        got = []
        lines = []
        old = dict(os.environ)
        os.environ.update(VLLM_PROFILER_SHIM_BUILD="0")
        try:
            t = _shim_build.start(torch, self.probe_dir, lines.append,
                                  lambda path, info: (got.append(
                                      (path, info, threading.current_thread())),
                                      done.set()))
            self.assertTrue(done.wait(60))
        finally:
            os.environ.clear()
            os.environ.update(old)
        path, info, thread = got[0]
        self.assertIsNone(path)
        self.assertEqual(info["outcome"], "disabled")
        self.assertIs(thread, t)
        self.assertEqual(t.name, "vllm-profiler-shim")
        self.assertTrue(t.daemon)
        self.assertEqual(len(lines), 1)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2])
        sys.exit(0)
    ARGS["shim"] = sys.argv[1]
    del sys.argv[1:2]
    unittest.main(verbosity=2)
