"""End-to-end tests of the collector binary with the synthetic probe.

The real //collector:collector process (port 0 + --port_file, a Unix socket
under a short temp dir), the real //tests/synthetic_probe:synthetic_probe,
HTTP with urllib. Checks what a user sees: the start-up line, the trace
names, the JSON structure, downloads, incomplete traces, SIGTERM.

Usage: collector_e2e_test.py COLLECTOR SYNTHETIC_PROBE
"""

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "harness"))
from collector_process import CollectorProcess  # noqa: E402

COLLECTOR = os.path.abspath(sys.argv[1])
PROBE = os.path.abspath(sys.argv[2])


class Collector(CollectorProcess):
    """The collector under test, with the synthetic probe at hand."""

    def __init__(self, extra_args=(), reuse_dir=None):
        super().__init__(COLLECTOR, extra_args, linger_ms=100, dir=reuse_dir)

    def probe(self, *args, check=True):
        result = subprocess.run([PROBE, "--socket=" + self.socket] + list(args),
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError("synthetic_probe failed: %s\n%s" %
                                 (result.stdout, result.stderr))
        return result

    def cleanup(self):
        super().cleanup()
        shutil.rmtree(self.dir, ignore_errors=True)


class CollectorE2ETest(unittest.TestCase):

    def setUp(self):
        self.c = Collector()

    def tearDown(self):
        self.c.cleanup()

    def test_startup_line_and_health(self):
        out = self.c.output()
        self.assertIn("collector: listening grpc=127.0.0.1:%d http=127.0.0.1:"
                      % self.c.grpc_port, out)
        self.assertIn("probes=unix:" + self.c.socket, out)
        self.assertEqual(self.c.get("/healthz")[2], b"ok\n")
        self.assertEqual(oct(os.stat(self.c.socket).st_mode & 0o777), "0o666")

    def test_two_processes_one_trace(self):
        self.c.probe("--processes=2", "--pid_base=5000", "--events=20000")
        traces = self.c.wait_for_traces(1)
        self.assertEqual(len(traces), 1)
        t = traces[0]
        self.assertEqual(t["id"], "trace5000_5001")
        self.assertEqual(t["file_name"], "trace5000_5001.json")
        self.assertTrue(t["complete"])
        self.assertEqual(t["pids"], [5000, 5001])
        status, headers, body = self.c.get("/traces/trace5000_5001")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Disposition"],
                         'attachment; filename="trace5000_5001.json"')
        with open(os.path.join(self.c.trace_dir, t["file_name"]), "rb") as f:
            self.assertEqual(body, f.read())
        trace = json.loads(body)
        meta = trace["metadata"]
        self.assertTrue(meta["complete"])
        self.assertEqual(meta["events_received"], 40000)
        self.assertEqual(sorted(p["pid"] for p in meta["processes"]),
                         [5000, 5001])
        events = trace["traceEvents"]
        names = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
                 if e["ph"] == "M" and e["name"] == "thread_name"}
        self.assertTrue(any(n.startswith("GPU ") for n in names.values()))
        pnames = [e for e in events
                  if e["ph"] == "M" and e["name"] == "process_name"]
        self.assertEqual(sorted(e["pid"] for e in pnames), [5000, 5001])
        # Launch -> kernel flows pair up by id.
        starts = {e["id"] for e in events if e["ph"] == "s"}
        finishes = {e["id"] for e in events if e["ph"] == "f"}
        self.assertTrue(starts)
        self.assertEqual(starts, finishes)
        kinds = {e.get("cat") for e in events if e["ph"] == "X"}
        for cat in ("step", "cpu_op", "cuda_runtime", "kernel", "gpu_memcpy",
                    "gpu_memset"):
            self.assertIn(cat, kinds)
        # gzip: by Accept-Encoding and as a .json.gz file.
        status, headers, gz = self.c.get("/traces/trace5000_5001.json",
                                         {"Accept-Encoding": "gzip"})
        self.assertEqual(headers.get("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(gz), body)
        status, headers, gz = self.c.get("/traces/trace5000_5001.json.gz")
        self.assertEqual(headers["Content-Type"], "application/gzip")
        self.assertEqual(gzip.decompress(gz), body)
        index = self.c.get("/")[2].decode()
        self.assertIn('href="/traces/trace5000_5001.json"', index)
        metrics = self.c.get("/metrics")[2].decode()
        self.assertIn("vllm_profiler_events_received_total 40000\n", metrics)

    def test_same_pid_two_processes_one_trace(self):
        # Two containers' processes with the same pid, told apart by
        # Hello.process_uid: one trace, two distinct processes.
        self.c.probe("--processes=2", "--pid_base=31337", "--same_pid",
                     "--process_uid_base=9000", "--events=2000")
        # A split would name the trace after one pid ("trace31337"), and
        # the metadata below would list one process.
        traces = self.c.wait_for_traces(1)
        self.assertEqual([t["id"] for t in traces], ["trace31337_31337"])
        trace = json.loads(self.c.get("/traces/trace31337_31337.json")[2])
        procs = trace["metadata"]["processes"]
        self.assertEqual([p["pid"] for p in procs], [31337, 31337])
        self.assertEqual(sorted(p["process_uid"] for p in procs), [9000, 9001])
        trace_pids = {e["pid"] for e in trace["traceEvents"]}
        self.assertEqual(trace_pids, {31337, 31337 + (1 << 22)})
        self.assertEqual(sorted(p.get("trace_pid", p["pid"]) for p in procs),
                         [31337, 31337 + (1 << 22)])
        self.assertTrue(trace["metadata"]["complete"], trace["metadata"])

    def test_requested_name_and_collision(self):
        self.c.probe("--pid_base=77", "--events=1000",
                     "--requested_name=/tmp/out/my_run.json")
        self.c.wait_for_traces(1)
        self.c.probe("--pid_base=77", "--events=1000",
                     "--requested_name=/tmp/out/my_run.json")
        ids = sorted(t["id"] for t in self.c.wait_for_traces(2))
        self.assertEqual(ids, ["my_run", "my_run-2"])

    def test_crashed_probe_gives_incomplete_trace(self):
        self.c.probe("--pid_base=900", "--events=100000",
                     "--disconnect_after_events=30000", check=False)
        t = self.c.wait_for_traces(1)[0]
        self.assertEqual(t["id"], "trace900")
        self.assertFalse(t["complete"])
        self.assertIn("pid 900 disconnected before the capture finished",
                      t["error"])
        trace = json.loads(self.c.get("/traces/trace900")[2])
        self.assertFalse(trace["metadata"]["complete"])
        # What was in flight dies with the aborted stream (gRPC drops the
        # buffered writes of a cancelled call): the trace keeps what arrived,
        # never more than was sent, and says it is incomplete.
        received = trace["metadata"]["events_received"]
        self.assertGreater(received, 0)
        self.assertLessEqual(received, 30000)

    def test_not_found_and_traversal(self):
        for path in ("/traces/nope", "/traces/../../etc/passwd",
                     "/traces/..%2F..%2Fetc%2Fpasswd", "/traces/.x.meta"):
            status, _, body = self.c.get(path)
            self.assertEqual(status, 404, path)
            self.assertNotIn(b"root:", body)

    def test_sigterm_finalizes_open_capture(self):
        # A probe mid-capture when the collector is stopped.
        probe = subprocess.Popen(
            [PROBE, "--socket=" + self.c.socket, "--pid_base=321",
             "--events=50000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 20
            while time.time() < deadline:
                m = self.c.get("/metrics")[2].decode()
                line = [l for l in m.splitlines()
                        if l.startswith("vllm_profiler_events_received_total")]
                if line and int(line[0].split()[1]) > 10000:
                    break
                time.sleep(0.02)
            self.assertEqual(self.c.stop(), 0)
        finally:
            probe.kill()
            probe.wait()
        out = self.c.output()
        self.assertIn("shutting down", out)
        self.assertIn("trace trace321 written", out)
        meta_path = os.path.join(self.c.trace_dir, "trace321.json")
        trace = json.load(open(meta_path))
        self.assertFalse(trace["metadata"]["complete"])
        self.assertIn("collector shutting down",
                      " ".join(trace["metadata"]["errors"]))

    def test_sigkill_mid_capture_is_recovered_at_start(self):
        probe = subprocess.Popen(
            [PROBE, "--socket=" + self.c.socket, "--pid_base=654",
             "--events=50000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Wait until the partial trace holds a few MB on disk.
            deadline = time.time() + 20
            size = 0
            while time.time() < deadline and size < (4 << 20):
                names = [n for n in os.listdir(self.c.trace_dir)
                         if n.startswith(".inprogress-")]
                size = max([os.path.getsize(os.path.join(self.c.trace_dir, n))
                            for n in names] or [0])
                time.sleep(0.02)
            self.assertGreaterEqual(size, 4 << 20)
            self.c.proc.kill()  # SIGKILL: no chance to finalize.
            self.c.proc.wait()
        finally:
            probe.kill()
            probe.wait()
        self.c.log.close()
        start = time.time()
        self.c = Collector(reuse_dir=self.c.dir)
        up = time.time() - start
        out = self.c.output()
        self.assertRegex(out, r"recovered partial trace \.inprogress-[0-9-]+"
                         r"\.tmp as recovered: [0-9]+ events kept")
        traces = self.c.wait_for_traces(1)
        self.assertEqual([t["id"] for t in traces], ["recovered"])
        t = traces[0]
        self.assertFalse(t["complete"])
        self.assertEqual(t["error"],
                         "collector stopped while writing (recovered at start)")
        status, _, body = self.c.get("/traces/recovered.json")
        self.assertEqual(status, 200)
        trace = json.loads(body)  # Parses: valid JSON.
        self.assertFalse(trace["metadata"]["complete"])
        self.assertEqual(trace["metadata"]["errors"],
                         ["collector stopped while writing (recovered at start)"])
        self.assertEqual(len(trace["traceEvents"]), t["num_events"])
        self.assertGreater(t["num_events"], 10000)
        print("SIGKILL recovery: %d events, %d bytes, collector up in %.3f s; %s"
              % (t["num_events"], t["size_bytes"], up,
                 [l for l in out.splitlines() if "recovered partial" in l][0]))


class CollectorFlagsTest(unittest.TestCase):

    def test_gzip_storage_and_retention(self):
        c = Collector(["--gzip", "--max_traces=2",
                       "--probe_eviction_min_age_s=0"])
        try:
            for pid in (1, 2, 3):
                c.probe("--pid_base=%d" % pid, "--events=500")
                deadline = time.time() + 20
                while time.time() < deadline:
                    ids = [t["id"] for t in json.loads(c.get("/traces")[2])["traces"]]
                    if "trace%d" % pid in ids:
                        break
                    time.sleep(0.05)
            traces = c.wait_for_traces(2)
            self.assertEqual([t["id"] for t in traces], ["trace3", "trace2"])
            self.assertEqual(traces[0]["file_name"], "trace3.json.gz")
            self.assertEqual(sorted(os.listdir(c.trace_dir)),
                             [".trace2.meta", ".trace3.meta", "trace2.json.gz",
                              "trace3.json.gz"])
            # Plain download of a gzip-stored trace is decompressed.
            status, _, body = c.get("/traces/trace3")
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body)["metadata"]["events_received"], 500)
        finally:
            c.cleanup()

    def test_probes_over_tcp(self):
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        c = Collector(["--probe_tcp_address=127.0.0.1:%d" % port])
        try:
            self.assertIn("probes=unix:%s,127.0.0.1:%d" % (c.socket, port),
                          c.output())
            r = subprocess.run([PROBE, "--address=127.0.0.1:%d" % port,
                                "--pid_base=31", "--events=2000"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(c.wait_for_traces(1)[0]["id"], "trace31")
        finally:
            c.cleanup()

    def test_bad_flag_value_fails_clearly(self):
        d = tempfile.mkdtemp(prefix="vpe2e-", dir="/tmp")
        try:
            r = subprocess.run(
                [COLLECTOR, "--probe_socket=" + d + "/s.sock",
                 "--grpc_address=127.0.0.1:0", "--http_address=nonsense"],
                capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn('cannot start: address "nonsense" is not host:port',
                          r.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1], verbosity=2)
