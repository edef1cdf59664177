"""The probe bundle built on Debian 12 inside a Debian 13 root filesystem with
torch 2.6 (tests/torch2/rootfs.sh), as a user of a torch 2.x image runs it.

usage: chroot_test.py ROOTFS_SH PROBE_BUNDLE_TAR COLLECTOR VPCTL WORKLOAD_DIR

The collector runs outside, on a Unix socket in a folder bind-mounted into
the chroot; the sample workload (tests/sample_workload) runs inside with
trixie's python3 3.13. Each chroot process gets its mounts (/proc, /dev, the
bundle read-only, the workload read-only, the socket folder, the shim cache)
in a private mount namespace (unshare), so nothing stays mounted when it
ends.

Cases:
  (a) the shim built in-process with g++ against torch 2.6, then loaded from
      the cache by a second process: operator events, inside steps, with
      shapes;
  (b) VLLM_PROFILER_SHIM_BUILD=0: operator events through torch's profiler
      (the fallback), inside steps, with shapes, named in the metadata;
      with VLLM_PROFILER_TORCH_FALLBACK=0 too, steps only and one line;
  (c) the vLLM API shapes of the step model (--vllm-api 0.10, 0.11, async,
      pooling) with the shim: operator events inside steps, with shapes.

Needs root (chroot, mounts). Without root, or when rootfs.sh cannot reach
the Debian mirror (its exit code 77), every case is skipped with a line
saying why.
"""
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest

ARGS = {}
ROOTFS = {}


PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MOUNTS = ("bundle", "work", "sock", "cache")
# $0 = root, $1.. = outside folders for /vp/<MOUNTS>, then the command.
MOUNT_SCRIPT = """set -e
R=$0
mount --bind /proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --bind -o ro "$1" "$R/vp/bundle"
mount --bind -o ro "$2" "$R/vp/work"
mount --bind "$3" "$R/vp/sock"
mount --bind "$4" "$R/vp/cache"
shift 4
exec chroot "$R" "$@"
"""


def setUpModule():
    if os.getuid() != 0:
        raise unittest.SkipTest("torch2 chroot tests need root (chroot, "
                                "mounts); skipped")
    if subprocess.run(["unshare", "--mount", "true"]).returncode != 0:
        raise unittest.SkipTest("torch2 chroot tests need mount namespaces "
                                "(CAP_SYS_ADMIN), which this root lacks; "
                                "skipped")
    t0 = time.monotonic()
    p = subprocess.run([ARGS["rootfs_sh"]], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    sys.stderr.write(p.stderr)
    if p.returncode == 77:
        raise unittest.SkipTest("torch2 chroot tests skipped: the Debian "
                                "mirror is unreachable, so the trixie root "
                                "filesystem cannot be built (%s)"
                                % p.stderr.strip())
    if p.returncode != 0:
        raise RuntimeError("tests/torch2/rootfs.sh failed (exit %d):\n%s"
                           % (p.returncode, p.stderr))
    ROOTFS["dir"] = p.stdout.strip()
    sys.stderr.write("torch2: root filesystem %s ready in %.0f s\n"
                     % (ROOTFS["dir"], time.monotonic() - t0))
    for m in MOUNTS:
        os.makedirs(os.path.join(ROOTFS["dir"], "vp", m), exist_ok=True)


def steps_and_ops(events):
    steps = [e for e in events if e.get("ph") == "X" and e.get("cat") == "step"]
    ops = [e for e in events if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
    return steps, ops


class ChrootTorch2Test(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        # /tmp, not TEST_TMPDIR: a Unix socket path must fit in 108 bytes.
        cls.tmp = tempfile.mkdtemp(prefix="vp-t2-", dir="/tmp")
        cls.dirs = {m: os.path.join(cls.tmp, m) for m in MOUNTS}
        for d in cls.dirs.values():
            os.makedirs(d)
        with tarfile.open(ARGS["bundle"]) as t:
            t.extractall(cls.dirs["bundle"])
        shutil.copytree(ARGS["workload"], cls.dirs["work"], dirs_exist_ok=True)
        cls.traces = os.path.join(cls.tmp, "traces")
        cls.ports = os.path.join(cls.tmp, "ports.json")
        cls.collector_log = open(os.path.join(cls.tmp, "collector.log"), "w")
        cls.collector = subprocess.Popen(
            [os.path.abspath(ARGS["collector"]),
             "--probe_socket=" + os.path.join(cls.dirs["sock"], "c.sock"),
             "--grpc_address=127.0.0.1:0", "--http_address=127.0.0.1:0",
             "--trace_dir=" + cls.traces, "--port_file=" + cls.ports],
            stderr=cls.collector_log)
        deadline = time.monotonic() + 30
        while not (os.path.exists(cls.ports) and os.path.getsize(cls.ports)):
            if time.monotonic() > deadline:
                raise RuntimeError("collector did not start")
            time.sleep(0.05)
        with open(cls.ports) as f:
            cls.grpc = "127.0.0.1:%d" % json.load(f)["grpc_port"]

    @classmethod
    def tearDownClass(cls):
        cls.collector.terminate()
        cls.collector.wait(timeout=30)
        cls.collector_log.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def chroot(self, args, program="/vp/work/run_workload.py", **env):
        """Starts `program` (the workload) in the chroot; returns the Popen
        (stderr is a pipe of text lines)."""
        envs = ["PATH=" + PATH, "HOME=/root", "LANG=C.UTF-8",
                "PYTHONPATH=/vp/bundle",
                "VLLM_PROFILER_SOCKET=/vp/sock/c.sock",
                "VLLM_PROFILER_CACHE_DIR=/vp/cache"]
        envs += ["%s=%s" % kv for kv in sorted(env.items())]
        cmd = (["unshare", "--mount", "--propagation", "private", "sh", "-c",
                MOUNT_SCRIPT, ROOTFS["dir"]] +
               [self.dirs[m] for m in MOUNTS] +
               ["/usr/bin/env", "-i"] + envs +
               ["python3", program] + args)
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)

    def lines_until(self, proc, pattern, timeout):
        """Probe lines of proc's stderr up to the first matching `pattern`
        (returned last), read on a thread so the deadline holds."""
        q = queue.Queue()

        def pump():
            for line in proc.stderr:
                q.put(line.rstrip("\n"))
            q.put(None)

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = q.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.fail("no %r within %d s; stderr so far:\n%s"
                          % (pattern, timeout, "\n".join(seen)))
            if line is None:
                self.fail("process ended before %r; stderr:\n%s"
                          % (pattern, "\n".join(seen)))
            seen.append(line)
            if re.search(pattern, line):
                return [l for l in seen if l.startswith("vllm-profiler:")]

    def capture(self, out, steps=10):
        """vpctl capture of `steps` steps; retried until the probe has
        connected (it connects at its first step)."""
        deadline = time.monotonic() + 120
        while True:
            p = subprocess.run(
                [os.path.abspath(ARGS["vpctl"]), "--addr", self.grpc,
                 "capture", "--steps", str(steps), "-o", out],
                capture_output=True, text=True, timeout=180)
            if p.returncode == 0:
                break
            self.assertLess(time.monotonic(), deadline, p.stdout + p.stderr)
            time.sleep(0.2)
        with open(out) as f:
            t = json.load(f)
        return t["traceEvents"] if isinstance(t, dict) else t

    def assert_ops_inside_steps_with_shapes(self, events, min_steps=10):
        steps, ops = steps_and_ops(events)
        self.assertGreaterEqual(len(steps), min_steps)
        self.assertGreater(len(ops), 10 * min_steps)
        spans = {}
        for s in steps:
            spans.setdefault((s["pid"], s["tid"]), []).append(
                (s["ts"], s["ts"] + s["dur"]))
        outside = [o for o in ops if not any(
            b - 0.001 <= o["ts"] and o["ts"] + o["dur"] <= e + 0.001
            for b, e in spans.get((o["pid"], o["tid"]), []))]
        self.assertEqual(outside[:3], [], "%d of %d operators lie outside "
                         "every step" % (len(outside), len(ops)))
        shaped = [o for o in ops if any(o.get("args", {}).get("Input Dims",
                                                              []))]
        self.assertGreater(len(shaped), len(ops) // 2)
        names = set(o["name"] for o in ops)
        self.assertTrue(names & {"aten::mm", "aten::addmm", "aten::linear"},
                        sorted(names))

    def run_with_shim(self, expect, trace, args=()):
        t0 = time.monotonic()
        proc = self.chroot(["--steps", "1000000", "--sleep-ms", "2"] +
                           list(args), VLLM_PROFILER_START_STEP=1000000000)
        try:
            lines = self.lines_until(proc, r"torch shim", timeout=600)
            ready = time.monotonic() - t0
            self.assertEqual(len(lines), 1, lines)
            self.assertRegex(lines[0], expect)
            events = self.capture(os.path.join(self.tmp, trace))
            first = time.monotonic() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=60)
            self.pump.join(timeout=60)
            proc.stderr.close()
        self.assert_ops_inside_steps_with_shapes(events)
        steps, ops = steps_and_ops(events)
        sys.stderr.write("torch2: %s\ntorch2: shim ready %.1f s after process "
                         "start; first capture with operators (%d steps, %d "
                         "operators) done at %.1f s\n"
                         % (lines[0], ready, len(steps), len(ops), first))

    def test_a_shim_built_in_process_then_cached(self):
        self.run_with_shim(
            r"^vllm-profiler: built the torch shim for torch 2\.6\.0\S* "
            r"\(C\+\+17, cxx11 ABI 1\) with /usr/bin/g\+\+ \(g\+\+ \(Debian "
            r"14[^)]*\) [\d.]+\) in \d+\.\d s: /vp/cache/torch-shim-\w+\.so$",
            "built.json")
        self.run_with_shim(
            r"^vllm-profiler: torch shim for torch 2\.6\.0\S* from the cache: "
            r"/vp/cache/torch-shim-\w+\.so \(built with .* in \d+\.\d s\)$",
            "cached.json")

    def test_c_vllm_api_shapes(self):
        # The step model's API shapes (one execute_model per step; vLLM >=
        # 0.11.1's execute_model + sample_tokens; the async pair; pooling)
        # with the shim of (a), built here if (a) did not run first.
        for api in ("0.10", "0.11", "async", "pooling"):
            with self.subTest(api=api):
                self.run_with_shim(
                    r"^vllm-profiler: (built the torch shim|torch shim for "
                    r"torch 2\.6\.0\S* from the cache)", "api-%s.json" % api,
                    args=["--vllm-api", api])

    def test_d_flight_reader_on_python_313(self):
        # The flight recorder's C reader of the SchedulerOutput and its
        # builtin step functions use CPython's stable ABI found at run time:
        # its test runs again here, under Python 3.13, with the bundle's
        # core library.
        shutil.copy(ARGS["reader_test"], self.dirs["work"])
        proc = self.chroot(["/vp/bundle/libvllm_profiler_probe.so"],
                           program="/vp/work/scheduler_reader_test.py")
        _, err = proc.communicate(timeout=120)
        self.assertEqual(proc.returncode, 0, err)
        self.assertRegex(err, r"Ran [1-9]\d* tests")
        self.assertIn("\nOK", err)

    def run_build_off(self, name, **env):
        proc = self.chroot(["--steps", "8"], VLLM_PROFILER_SHIM_BUILD="0",
                           VLLM_PROFILER_START_STEP=2,
                           VLLM_PROFILER_NUM_STEPS=3,
                           VLLM_TORCH_PROFILE="/x/%s.json" % name, **env)
        _, err = proc.communicate(timeout=300)
        self.assertEqual(proc.returncode, 0, err)
        lines = [l for l in err.splitlines() if l.startswith("vllm-profiler:")]
        path = os.path.join(self.traces, "%s.json" % name)
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            self.assertLess(time.monotonic(), deadline, "no trace")
            time.sleep(0.05)
        with open(path) as f:
            t = json.load(f)
        steps, ops = steps_and_ops(t["traceEvents"])
        self.assertEqual(sorted(s["args"]["step"] for s in steps), [2, 3, 4])
        return t, ops, lines, err

    def test_b_build_off_torch_profiler_fallback(self):
        t, ops, lines, err = self.run_build_off("build_off")
        self.assert_ops_inside_steps_with_shapes(t["traceEvents"], min_steps=3)
        (p,) = t["metadata"]["processes"]
        self.assertEqual(p["op_source"], "torch profiler")
        self.assertTrue(t["metadata"]["complete"])
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"^vllm-profiler: cannot load the torch "
                         r"shim \(libtorch\.so\.1\.13: cannot open shared "
                         r"object file: No such file or directory\); "
                         r"operator events come from torch's profiler \(no "
                         r"shim build: building is off "
                         r"\(VLLM_PROFILER_SHIM_BUILD=0\)\)$")

    def test_b_build_and_fallback_off_steps_only(self):
        t, ops, lines, err = self.run_build_off(
            "all_off", VLLM_PROFILER_TORCH_FALLBACK="0")
        self.assertEqual(ops, [])
        self.assertEqual(t["metadata"]["processes"][0]["op_source"], "off")
        self.assertEqual(len(lines), 1, err)
        self.assertRegex(lines[0], r"capturing steps without operator events "
                         r"\(no shim build: building is off")


if __name__ == "__main__":
    # chroot, unshare and mount live in sbin, which a test's PATH lacks.
    os.environ["PATH"] = "/usr/sbin:/sbin:" + os.environ.get("PATH", "")
    (ARGS["rootfs_sh"], ARGS["bundle"], ARGS["collector"], ARGS["vpctl"],
     ARGS["workload"], ARGS["reader_test"]) = sys.argv[1:7]
    del sys.argv[1:7]
    unittest.main(verbosity=2)
