"""The real collector binary as a test fixture (shared by the e2e tests).

CollectorProcess starts //collector:collector on free ports (port 0 and
--port_file), a Unix probe socket under a short folder (socket paths are
limited to 107 bytes), a trace folder, and its log in a file. Every wait
has a deadline and says what it waited for; nothing sleeps and then
asserts.

    c = CollectorProcess(binary, linger_ms=100)
    ... point probes at c.socket ...
    traces = c.wait_for_traces(1)      # GET /traces, complete or not
    status, headers, body = c.get("/traces/" + traces[0]["id"])
    c.stop()                           # SIGTERM; returns the exit code
"""

import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request


class CollectorProcess:
    """A collector process on free ports."""

    def __init__(self, binary, extra_args=(), linger_ms=100, dir=None,
                 start_timeout_s=30):
        self.dir = dir or tempfile.mkdtemp(prefix="vpe2e-", dir="/tmp")
        self.socket = os.path.join(self.dir, "run", "collector.sock")
        self.trace_dir = os.path.join(self.dir, "traces")
        self.port_file = os.path.join(self.dir, "ports.json")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)       # Left by a previous collector.
        self.log_path = os.path.join(self.dir, "collector.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [os.path.abspath(binary), "--probe_socket=" + self.socket,
             "--grpc_address=127.0.0.1:0", "--http_address=127.0.0.1:0",
             "--trace_dir=" + self.trace_dir, "--port_file=" + self.port_file,
             "--window_linger_ms=%d" % linger_ms] + list(extra_args),
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + start_timeout_s
        while not os.path.exists(self.port_file):   # Written atomically.
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("collector did not start:\n" + self.output())
            time.sleep(0.02)
        with open(self.port_file) as f:
            ports = json.load(f)
        self.http = "http://127.0.0.1:%d" % ports["http_port"]
        self.grpc_port = ports["grpc_port"]

    def output(self):
        """The collector's log so far."""
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def get(self, path, headers=None):
        """(status, headers, body) of GET `path` on the HTTP front end."""
        req = urllib.request.Request(self.http + path, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def wait_for_traces(self, n, timeout_s=60):
        """The trace list (GET /traces) once it has at least `n` traces."""
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            traces = json.loads(self.get("/traces")[2])["traces"]
            if len(traces) >= n:
                return traces
            time.sleep(0.05)
        raise AssertionError("no %d traces within %d s; log:\n%s" %
                             (n, timeout_s, self.output()))

    def load_trace(self, file_name):
        """The parsed JSON of a plain (not gzip) trace file."""
        with open(os.path.join(self.trace_dir, file_name)) as f:
            return json.load(f)

    def stop(self):
        """SIGTERM, then waits; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        """Kills the process if it still runs (tearDown after a failure)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if not self.log.closed:
            self.log.close()
