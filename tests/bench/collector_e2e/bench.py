#!/usr/bin/python3
"""End-to-end collector benchmark (issue 2).

Starts the collector on a temp dir and runs the synthetic probe against it
over the Unix socket, then reports:
  * events/s end to end (probe start -> trace downloadable), and the bytes/s
    of JSON written, next to `cat` and memcpy of the same bytes in this run;
  * the collector's peak RSS (VmHWM from /proc/PID/status);
  * the time from the end of the capture (the probe has sent CaptureFinished
    and its stream is closed) to the trace being downloadable (HTTP GET
    /traces/<id> answers 200), polled every 2 ms.

The collector is pinned to CPU 0 and the synthetic probe to CPU 1 (taskset),
so "events/s" is what one collector core sustains.

  tests/bench/collector_e2e/run.sh            # builds, then runs this
  bench.py --collector C --synthetic_probe S [--events 2000000]
           [--latency_events 1000000] [--repeat 3] [--json out.json]
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def start_collector(binary, work, linger_ms, gzip=False):
    traces = os.path.join(work, "traces")
    os.makedirs(traces, exist_ok=True)
    port_file = os.path.join(work, "ports.json")
    sock = os.path.join(work, "c.sock")
    log = open(os.path.join(work, "collector.log"), "wb")
    cmd = ["taskset", "-c", "0", binary, "--probe_socket=" + sock,
           "--grpc_address=127.0.0.1:0", "--http_address=127.0.0.1:0",
           "--trace_dir=" + traces, "--port_file=" + port_file,
           "--window_linger_ms=%d" % linger_ms, "--log_level=warning"]
    if gzip:
        cmd.append("--gzip")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while time.time() < deadline:
        if os.path.exists(port_file) and os.path.getsize(port_file) > 0:
            with open(port_file) as f:
                ports = json.load(f)
            return proc, sock, traces, ports["http_port"]
        if proc.poll() is not None:
            sys.exit("collector exited: see %s/collector.log" % work)
        time.sleep(0.01)
    sys.exit("collector did not start")


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def cpu_seconds(pid):
    """utime + stime of a process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http_status(port, path, method="HEAD"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        r.read()
        return r.status
    finally:
        conn.close()


def wait_downloadable(port, trace_id, timeout=120.0, poll=0.002):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if http_status(port, "/traces/" + trace_id) == 200:
            return time.time()
        time.sleep(poll)
    sys.exit("trace %s never became downloadable" % trace_id)


def run_probe(synth, sock, events, pid_base, batch):
    cmd = ["taskset", "-c", "1", synth, "--socket=" + sock,
           "--events=%d" % events, "--pid_base=%d" % pid_base,
           "--batch_events=%d" % batch]
    t0 = time.time()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return t0, time.time(), out.stdout.strip()


def time_cat(path, dest_dir):
    t = time.time()
    subprocess.run(["cat", path], check=True, stdout=subprocess.DEVNULL)
    read_s = time.time() - t
    copy = os.path.join(dest_dir, "cat_copy.json")
    t = time.time()
    with open(copy, "wb") as out:
        subprocess.run(["cat", path], check=True, stdout=out)
    copy_s = time.time() - t
    os.unlink(copy)
    return read_s, copy_s


def time_memcpy(nbytes):
    chunk = 64 << 20
    src = memoryview(bytearray(os.urandom(1 << 20) * 64))
    dst = memoryview(bytearray(chunk))
    dst[:] = src  # Fault the pages in before timing.
    t = time.time()
    done = 0
    while done < nbytes:
        n = min(chunk, nbytes - done)
        dst[:n] = src[:n]  # memoryview slices: one memcpy, no temporaries.
        done += n
    return time.time() - t


def one_run(args, events, pid_base):
    work = tempfile.mkdtemp(prefix="vpbench.", dir="/tmp")
    try:
        proc, sock, traces, http_port = start_collector(
            args.collector, work, args.linger_ms, args.gzip)
        try:
            t0, t_sent, probe_line = run_probe(
                args.synthetic_probe, sock, events, pid_base, args.batch_events)
            trace_id = "trace%d" % pid_base
            t_ready = wait_downloadable(http_port, trace_id)
            rss = peak_rss_kib(proc.pid)
            cpu_s = cpu_seconds(proc.pid)
            name = trace_id + (".json.gz" if args.gzip else ".json")
            size = os.path.getsize(os.path.join(traces, name))
            t = time.time()
            status = http_status(http_port, "/traces/" + trace_id, "GET")
            download_s = time.time() - t
            assert status == 200, status
            cat_read_s, cat_copy_s = time_cat(os.path.join(traces, name), work)
        finally:
            proc.terminate()
            proc.wait()
        memcpy_s = time_memcpy(size)
        total_s = t_ready - t0
        return {
            "events": events,
            "probe": probe_line,
            "end_to_end_s": round(total_s, 3),
            "events_per_s": round(events / total_s),
            "json_bytes": size,
            "json_mb_per_s": round(size / total_s / 1e6, 1),
            # Collector CPU time (user+sys) over the whole run: events per
            # CPU-second is robust to other load on the machine.
            "collector_cpu_s": round(cpu_s, 3),
            "events_per_cpu_s": round(events / cpu_s) if cpu_s else None,
            "loadavg_1m": os.getloadavg()[0],
            "capture_end_to_downloadable_s": round(t_ready - t_sent, 4),
            "peak_rss_mib": round(rss / 1024.0, 1),
            "http_download_s": round(download_s, 3),
            "cat_to_devnull_s": round(cat_read_s, 3),
            "cat_to_file_s": round(cat_copy_s, 3),
            "memcpy_s": round(memcpy_s, 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--collector", required=True)
    p.add_argument("--synthetic_probe", required=True)
    p.add_argument("--events", type=int, default=2000000)
    p.add_argument("--latency_events", type=int, default=1000000)
    p.add_argument("--batch_events", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--linger_ms", type=int, default=0,
                   help="--window_linger_ms of the collector (0: finalize as "
                        "soon as the only process finished)")
    p.add_argument("--gzip", action="store_true")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args()

    results = {"throughput": [], "latency": []}
    for i in range(args.repeat):
        r = one_run(args, args.events, 700000 + i)
        results["throughput"].append(r)
        print("throughput run %d: %s" % (i + 1, json.dumps(r)), flush=True)
    for i in range(args.repeat):
        r = one_run(args, args.latency_events, 800000 + i)
        results["latency"].append(r)
        print("latency run %d: %s" % (i + 1, json.dumps(r)), flush=True)

    def med(rows, key):
        v = sorted(r[key] for r in rows)
        return v[len(v) // 2]

    t, l = results["throughput"], results["latency"]
    summary = {
        "events": args.events,
        "events_per_s_median": med(t, "events_per_s"),
        "json_mb_per_s_median": med(t, "json_mb_per_s"),
        "events_per_collector_cpu_s_median": med(t, "events_per_cpu_s"),
        "json_bytes": t[0]["json_bytes"],
        "end_to_end_s_median": med(t, "end_to_end_s"),
        "cat_to_devnull_s_median": med(t, "cat_to_devnull_s"),
        "cat_to_file_s_median": med(t, "cat_to_file_s"),
        "memcpy_s_median": med(t, "memcpy_s"),
        "peak_rss_mib_max": max(r["peak_rss_mib"] for r in t),
        "latency_events": args.latency_events,
        "capture_end_to_downloadable_s_median":
            med(l, "capture_end_to_downloadable_s"),
        "capture_end_to_downloadable_s_max":
            max(r["capture_end_to_downloadable_s"] for r in l),
        "gzip": args.gzip,
    }
    results["summary"] = summary
    print("summary: " + json.dumps(summary, indent=1))
    ok = (summary["events_per_s_median"] >= 1000000 and
          summary["peak_rss_mib_max"] < 128 and
          summary["capture_end_to_downloadable_s_max"] < 1.0)
    print("targets (>=1M events/s, <128 MiB RSS, <1 s to downloadable): %s" %
          ("MET" if ok else "NOT MET"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
