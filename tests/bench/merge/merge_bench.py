#!/usr/bin/env python3
"""`vpctl merge` throughput, next to a baseline in the same run.

  /usr/bin/python3 tests/bench/merge/merge_bench.py bazel-bin/collector/vpctl/vpctl [PODS] [EVENTS_PER_POD]

Writes PODS collector-shaped traces (two ranked processes each, the same
pids in every pod, X events with args, flow pairs) of EVENTS_PER_POD events,
then times, three rounds each, best of three:
  * vpctl merge of all of them (parse, check, remap, shift, write);
  * baseline: Python's json.load + json.dump of the same files (a parse and
    a write of the same bytes, no merging).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

VPCTL = sys.argv[1]
PODS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
EVENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
BASE = 1_700_000_000_000_000_000


def trace(pod):
    events = []
    for pid, rank in ((10, 0), (11, 1)):
        events.append({"ph": "M", "name": "process_name", "pid": pid,
                       "args": {"name": "VllmWorker-%d · rank %d" % (rank, rank)}})
    for i in range(EVENTS // 2):
        pid = 10 + i % 2
        ts = i * 1.5
        events.append({"ph": "X", "cat": "cpu_op", "name": "aten::mm",
                       "pid": pid, "tid": 100, "ts": round(ts, 3), "dur": 1.25,
                       "args": {"External id": i, "Input Dims": [[8, 4096]]}})
        if i % 2 == 0:
            events.append({"ph": "s", "id": i, "cat": "ac2g", "name": "ac2g",
                           "pid": pid, "tid": 100, "ts": round(ts, 3)})
        else:
            events.append({"ph": "f", "id": i - 1, "cat": "ac2g", "name": "ac2g",
                           "pid": pid, "tid": 7, "ts": round(ts, 3), "bp": "e"})
    procs = [{"pid": p, "process_name": "VllmWorker-%d" % r, "rank": r,
              "world_size": 2, "pod_name": pod, "node_name": "n"}
             for p, r in ((10, 0), (11, 1))]
    return {"traceEvents": events,
            "metadata": {"capture_id": "c", "config": {"group_id": "g"},
                         "base_time_unix_ns": BASE, "complete": True,
                         "processes": procs}}


def best(fn, rounds=3):
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    d = tempfile.mkdtemp(prefix="mergebench-")
    files = []
    for i in range(PODS):
        files.append(os.path.join(d, "pod-%d.json" % i))
        with open(files[-1], "w") as f:
            json.dump(trace("pod-%d" % i), f)
    size = sum(os.path.getsize(f) for f in files)
    out = os.path.join(d, "merged.json")

    def merge():
        subprocess.run([VPCTL, "merge"] + files + ["-o", out], check=True,
                       stdout=subprocess.DEVNULL)

    def baseline():
        docs = []
        for f in files:
            with open(f) as fh:
                docs.append(json.load(fh))
        with open(os.path.join(d, "baseline.json"), "w") as fh:
            json.dump(docs, fh)

    t_merge = best(merge)
    t_base = best(baseline)
    print("%d pods x %d events, %.1f MB in, %.1f MB out" %
          (PODS, EVENTS, size / 1e6, os.path.getsize(out) / 1e6))
    print("vpctl merge:               %.2f s (%.1f MB/s)" %
          (t_merge, size / 1e6 / t_merge))
    print("python json.load+dump:     %.2f s (%.1f MB/s)" %
          (t_base, size / 1e6 / t_base))
    print("ratio merge / baseline:    %.2f" % (t_merge / t_base))
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    os.rmdir(d)


if __name__ == "__main__":
    main()
