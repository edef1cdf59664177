#!/usr/bin/env python3
"""Step-time overhead of the probe on the sample workload, in one run.

  /usr/bin/python3 tests/bench/probe/step_bench.py --bundle DIR \
      --collector PATH/fake_collector [--steps 400] [--rounds 3]

Modes (each a fresh /usr/bin/python3 process, interleaved over rounds so
machine noise hits them alike, every other round in reverse order so that
no mode gains from its position; use an even --rounds):
  none        no probe (no PYTHONPATH)
  idle        probe loaded, wrapper active, no capture running
  probe       capturing every measured step with our probe (shapes on)
  probe_base  as probe, with the bundle of --baseline_bundle (optional: an
              older build, for before/after figures in the same run)
  null_cb     (with --null_callback) a do-nothing RecordFunction callback
              with needsInputs: the floor any RecordFunction-based
              profiler with shapes pays
  minimal_cb  (with --null_callback) a minimal recorder callback: name and
              clock_gettime at begin/end into a thread-local ring, sizes
              touched, nothing else (a lower bound for such a profiler)
  torchprof   torch.profiler(activities=[CPU], record_shapes=True) around
              the measured steps, no probe (vLLM's built-in profiler)
Prints per-mode median step time and the ratios the issue asks for, plus
peak RSS per mode (ru_maxrss) and RSS added by capturing.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "..", "..", "sample_workload")

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, %(workload)r)
import run_workload
from vllm.v1.core.sched.output import GrammarOutput, SchedulerOutput
from vllm.v1.worker.gpu_worker import Worker
mode, steps, warm = %(mode)r, %(steps)d, %(warm)d
w = Worker()
sos = [SchedulerOutput(i) for i in range(1, steps + warm + 1)]
g = GrammarOutput()
for so in sos[:warm]:
    w.execute_model(so)
    w.sample_tokens(g)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
prof = None
if mode in ("null_cb", "minimal_cb"):
    import ctypes
    ctypes.CDLL(%(null_cb)r).vp_bench_null_callback(
        1, 1 if mode == "null_cb" else 3)
if mode == "torchprof":
    import torch.profiler as tp
    prof = tp.profile(activities=[tp.ProfilerActivity.CPU], record_shapes=True)
    prof.__enter__()
times = []
cpu = []
p0 = time.process_time()
for so in sos[warm:]:
    c0 = time.thread_time()
    t0 = time.perf_counter()
    w.execute_model(so)
    w.sample_tokens(g)  # One step of vLLM >= 0.11.1.
    times.append(time.perf_counter() - t0)
    cpu.append(time.thread_time() - c0)
proc_cpu = (time.process_time() - p0) / steps
stop_s = 0.0
if prof is not None:
    # vLLM's torch.profiler integration stops and exports inside the step
    # function: that stall is part of what the inference process pays.
    import tempfile
    t0 = time.perf_counter()
    prof.__exit__(None, None, None)
    prof.export_chrome_trace(tempfile.mktemp(suffix=".json"))
    stop_s = time.perf_counter() - t0
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"times": times, "cpu": cpu, "proc_cpu": proc_cpu,
                  "rss0_kb": rss0, "rss1_kb": rss1, "stop_s": stop_s}))
"""


def run_mode(mode, args, sock):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
    warm = 50
    if mode in ("idle", "probe", "probe_base"):
        env["PYTHONPATH"] = (args.baseline_bundle if mode == "probe_base"
                             else args.bundle)
        env["VLLM_PROFILER_SOCKET"] = sock
        env["VLLM_PROFILER_RECORD_SHAPES"] = "1"
        if mode == "idle":
            env["VLLM_PROFILER_START_STEP"] = "1000000000"
        else:
            env["VLLM_PROFILER_START_STEP"] = str(warm + 1)
            env["VLLM_PROFILER_NUM_STEPS"] = str(args.steps)
    code = CHILD % {"workload": os.path.abspath(WORKLOAD),
                    "mode": "probe" if mode == "probe_base" else mode,
                    "steps": args.steps, "warm": warm,
                    "null_cb": os.path.abspath(args.null_callback)
                    if args.null_callback else ""}
    p = subprocess.run(["/usr/bin/python3", "-c", code], env=env,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit("mode %s failed:\n%s" % (mode, p.stderr))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--collector", required=True)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline_bundle", default="",
                    help="another probe bundle, measured as mode probe_base")
    ap.add_argument("--null_callback", default="",
                    help="libvp_null_callback.so: adds modes null_cb and "
                    "minimal_cb")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vp-bench-", dir="/tmp")
    sock = os.path.join(tmp, "c.sock")
    ready = os.path.join(tmp, "ready")
    coll = subprocess.Popen([args.collector, "--socket", sock, "--out",
                             os.path.join(tmp, "msgs.jsonl"), "--ready_file", ready,
                             "--discard", "1"])
    for _ in range(500):
        if os.path.exists(ready):
            break
        time.sleep(0.01)
    modes = ["none", "idle", "probe", "torchprof"]
    if args.baseline_bundle:
        modes.insert(3, "probe_base")
    if args.null_callback:
        modes[2:2] = ["null_cb", "minimal_cb"]
    per = {m: [] for m in modes}
    rss = {m: [] for m in modes}
    stop = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    proc = {m: [] for m in modes}
    try:
        for rnd in range(args.rounds):
            # Every other round in reverse: a mode's position in the round
            # biased it (with the same bundle as both, `probe` read 20-50 us
            # per step above `probe_base`, which ran right after it).
            for m in (modes if rnd % 2 == 0 else modes[::-1]):
                r = run_mode(m, args, sock)
                per[m].append(r["times"])
                rss[m].append((r["rss0_kb"], r["rss1_kb"]))
                stop[m].append(r["stop_s"])
                cpu[m].append(r["cpu"])
                proc[m].append(r["proc_cpu"])
    finally:
        coll.send_signal(signal.SIGTERM)
        coll.wait(timeout=20)
    # Median step time per round, then the median over rounds.
    med = {m: statistics.median(statistics.median(t) for t in per[m]) * 1e6
           for m in modes}
    mean = {m: statistics.median(statistics.fmean(t) for t in per[m]) * 1e6
            for m in modes}
    # CPU time of the step thread per step (immune to other processes'
    # load) and of the whole process (includes our sender thread).
    tcpu = {m: statistics.median(statistics.median(t) for t in cpu[m]) * 1e6
            for m in modes}
    pcpu = {m: statistics.median(proc[m]) * 1e6 for m in modes}
    print("steps per mode per round: %d, rounds: %d" % (args.steps, args.rounds))
    print("%-10s %10s %10s %12s %12s %13s %13s" % (
        "mode", "wall_med", "wall_mean", "thread_cpu", "proc_cpu",
        "peak_rss_MiB", "rss_add_MiB"))
    for m in modes:
        r0 = statistics.median(a for a, _ in rss[m]) / 1024
        r1 = statistics.median(b for _, b in rss[m]) / 1024
        print("%-10s %10.1f %10.1f %12.1f %12.1f %13.1f %13.1f" % (
            m, med[m], mean[m], tcpu[m], pcpu[m], r1, r1 - r0))
    print("(us per step; wall = median step wall time, thread_cpu = median "
          "CPU of the step thread, proc_cpu = process CPU per step incl. the "
          "probe's sender thread)")
    cidle = 100.0 * (tcpu["idle"] - tcpu["none"]) / tcpu["none"]
    print("CPU: not capturing vs no probe: %+.2f%% (target < 1%%)" % cidle)
    c_ours = pcpu["probe"] - pcpu["none"]
    c_theirs = pcpu["torchprof"] - pcpu["none"]
    print("CPU added per step while capturing (process): ours %.1f us, "
          "torch.profiler %.1f us, ratio %.2f" % (
              c_ours, c_theirs, c_ours / c_theirs if c_theirs else float("nan")))
    idle_pct = 100.0 * (med["idle"] - med["none"]) / med["none"]
    ours = med["probe"] - med["none"]
    theirs = med["torchprof"] - med["none"]
    print("not capturing vs no probe: %+.2f%% (target < 1%%)" % idle_pct)
    if args.baseline_bundle:
        base = med["probe_base"] - med["none"]
        print("baseline bundle: added per step %.1f us wall (ratio %.2f), "
              "%.1f us process CPU (ratio %.2f)" % (
                  base, base / theirs if theirs else float("nan"),
                  pcpu["probe_base"] - pcpu["none"],
                  (pcpu["probe_base"] - pcpu["none"]) / c_theirs
                  if c_theirs else float("nan")))
    if args.null_callback:
        floor = med["null_cb"] - med["none"]
        minimal = med["minimal_cb"] - med["none"]
        print("RecordFunction floor (do-nothing callback, needsInputs): "
              "%.1f us per step; minimal recorder callback: %.1f us "
              "(ratio to torch.profiler %.2f, %.2f)" % (
                  floor, minimal, floor / theirs if theirs else float("nan"),
                  minimal / theirs if theirs else float("nan")))
    print("added per step while capturing: ours %.1f us, torch.profiler "
          "%.1f us, ratio %.2f (target <= 0.5)"
          % (ours, theirs, ours / theirs if theirs else float("nan")))
    export_us = statistics.median(stop["torchprof"]) * 1e6 / args.steps
    print("torch.profiler stop+export_chrome_trace (in the step function, as "
          "vLLM does): %.1f ms, %.1f us per captured step" %
          (statistics.median(stop["torchprof"]) * 1e3, export_us))
    print("added per step incl. stop/export: ours %.1f us, torch.profiler "
          "%.1f us, ratio %.2f" % (ours, theirs + export_us,
                                   ours / (theirs + export_us)))


if __name__ == "__main__":
    main()
