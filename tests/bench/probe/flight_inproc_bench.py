#!/usr/bin/env python3
"""The flight recorder's per-step cost in ONE process, interleaved.

  PYTHONPATH=BUNDLE VLLM_PROFILER_SOCKET=SOCK VLLM_PROFILER_START_STEP=1000000000 \
      /usr/bin/python3 tests/bench/probe/flight_inproc_bench.py [--blocks 200]
      [--control]

The probe is loaded with the flight recorder on (the default). Blocks of 70
steps (the workload's cycle) alternate between the step model's flight path
on and off (the wrapper's `flight` switch: the batch read and the two phase
times, with vp_step_begin_read or vp_step_begin_slots, and
vp_step_end_slots, in place of the plain calls), so machine load hits both
alike; the ring's Begin/End in the core run in both (their cost is the C++
benchmark's). Prints the median step time and step-thread CPU of each, and
the difference. --control runs both halves on: what it prints then is the
bench's own noise.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "sample_workload"))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--blocks", type=int, default=200)
    # The sample workload repeats every 70 steps (a prefill every 10th, a
    # resumed request every 7th, a finished one every 5th): blocks of a
    # multiple of 70 steps give both modes the same mix. (Blocks of 25 gave
    # odd and even blocks 2 or 3 prefill steps, a 33 us bias with both
    # halves on.)
    ap.add_argument("--block_steps", type=int, default=70)
    ap.add_argument("--control", action="store_true",
                    help="both halves on: the bench's own noise (A/A)")
    args = ap.parse_args()
    import vllm_profiler_probe  # noqa: F401  (the hook is installed)
    from vllm.v1.core.sched.output import GrammarOutput, SchedulerOutput
    from vllm.v1.worker.gpu_worker import Worker
    model = vllm_profiler_probe._model
    w = Worker()
    g = GrammarOutput()
    step = 0

    def one():
        nonlocal step
        step += 1
        so = SchedulerOutput(step)
        c0 = time.thread_time()
        t0 = time.perf_counter()
        w.execute_model(so)
        w.sample_tokens(g)
        return time.perf_counter() - t0, time.thread_time() - c0

    for _ in range(100):
        one()
    if not model.flight:
        raise SystemExit("the flight recorder is off in this process")
    wall = {False: [], True: []}
    cpu = {False: [], True: []}
    for b in range(args.blocks):
        flag = b % 2 == 1
        model.flight = flag or args.control
        for _ in range(args.block_steps):
            t, c = one()
            wall[flag].append(t)
            cpu[flag].append(c)
    model.flight = True
    for name, d in (("wall", wall), ("step-thread CPU", cpu)):
        off = statistics.median(d[False]) * 1e6
        on = statistics.median(d[True]) * 1e6
        print("%-16s off %8.1f us  on %8.1f us  added %+6.1f us (%+.2f%%)" % (
            name, off, on, on - off, 100 * (on - off) / off))
    print("steps per mode: %d" % len(wall[True]))


if __name__ == "__main__":
    main()
