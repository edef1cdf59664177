#!/usr/bin/env python3
"""Cost of the always-on flight recorder on the sample workload, in one run.

  /usr/bin/python3 tests/bench/probe/flight_bench.py --bundle DIR \
      --collector PATH/fake_collector [--steps 400] [--rounds 5]

Modes (each a fresh /usr/bin/python3 process, interleaved over rounds):
  none          no probe
  idle_off      probe loaded, no capture, VLLM_PROFILER_FLIGHT=off
  idle_steps    probe loaded, no capture, VLLM_PROFILER_FLIGHT=steps (the
                default): every step's batch, request ids and child spans
                go into the ring; summaries go out once a second
Prints the median step wall time and step-thread CPU per mode and the
flight recorder's cost relative to the probe idle without it.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_bench  # noqa: E402  (the child program and its output)


def run(mode, args, sock):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
    if mode != "none":
        env["PYTHONPATH"] = args.bundle
        env["VLLM_PROFILER_SOCKET"] = sock
        env["VLLM_PROFILER_START_STEP"] = "1000000000"
        env["VLLM_PROFILER_FLIGHT"] = "off" if mode == "idle_off" else "steps"
    code = step_bench.CHILD % {
        "workload": os.path.abspath(step_bench.WORKLOAD), "mode": "idle",
        "steps": args.steps, "warm": 50, "null_cb": ""}
    p = subprocess.run(["/usr/bin/python3", "-c", code], env=env,
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise SystemExit("mode %s failed:\n%s" % (mode, p.stderr))
    import json
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--collector", required=True)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="vp-flight-bench-", dir="/tmp")
    sock = os.path.join(tmp, "c.sock")
    ready = os.path.join(tmp, "ready")
    coll = subprocess.Popen([args.collector, "--socket", sock, "--out",
                             os.path.join(tmp, "msgs.jsonl"), "--ready_file",
                             ready, "--discard", "1"])
    for _ in range(500):
        if os.path.exists(ready):
            break
        time.sleep(0.01)
    modes = ["none", "idle_off", "idle_steps"]
    wall = {m: [] for m in modes}
    cpu = {m: [] for m in modes}
    try:
        for _ in range(args.rounds):
            for m in modes:
                r = run(m, args, sock)
                wall[m].append(statistics.median(r["times"]) * 1e6)
                cpu[m].append(statistics.median(r["cpu"]) * 1e6)
    finally:
        coll.send_signal(signal.SIGTERM)
        coll.wait(timeout=20)
    w = {m: statistics.median(wall[m]) for m in modes}
    c = {m: statistics.median(cpu[m]) for m in modes}
    print("steps per mode per round: %d, rounds: %d" % (args.steps, args.rounds))
    print("%-11s %12s %14s" % ("mode", "wall_us", "thread_cpu_us"))
    for m in modes:
        print("%-11s %12.1f %14.1f" % (m, w[m], c[m]))
    print("flight recorder (steps) vs probe idle without it: wall %+.1f us "
          "(%+.2f%%), step-thread CPU %+.1f us (%+.2f%%)" % (
              w["idle_steps"] - w["idle_off"],
              100 * (w["idle_steps"] - w["idle_off"]) / w["idle_off"],
              c["idle_steps"] - c["idle_off"],
              100 * (c["idle_steps"] - c["idle_off"]) / c["idle_off"]))


if __name__ == "__main__":
    main()
