#!/usr/bin/env python3
"""Cost per step of the step wrappers, side by side in one run.

  /usr/bin/python3 tests/bench/probe/wrapper_bench.py --bundle DIR \
      [--steps 200000] [--rounds 5]

A worker whose execute_model returns None and whose sample_tokens returns
the output (vLLM >= 0.11.1), both doing nothing else, so what is measured is
the wrappers themselves. Each step gets the sample workload's
SchedulerOutput (4 decoding requests; tests/sample_workload). Modes, each a
fresh /usr/bin/python3 process, interleaved over rounds so machine noise
hits them alike:
  none        no probe
  one         probe wrapping execute_model only (the probe before the step
              model: VLLM_PROFILER_TARGET=bench_mod:W.execute_model), flight
              recorder off
  pair_noflt  probe wrapping execute_model + sample_tokens (the step
              model), VLLM_PROFILER_FLIGHT=off
  pair        the same with the flight recorder at its default (steps):
              the batch read, its phases and the ring per step
No capture runs (the probe's steady state); no collector is needed.
Prints the median ns per step of each mode, the pair's added cost over one
wrapper (the issue's target: under 1 us per step) and the flight
recorder's cost per step.

--instructions also counts instructions per step with valgrind's callgrind
(the difference between a run of 2N and one of N steps, divided by N):
repeatable whatever else the machine is doing.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

MODULE = textwrap.dedent('''
    class W(object):
        def execute_model(self, scheduler_output):
            return None

        def sample_tokens(self, grammar_output):
            return 1
''')

CHILD = textwrap.dedent('''
    import sys, time
    import bench_mod
    from vllm.v1.core.sched.output import SchedulerOutput
    w = bench_mod.W()
    sos = [SchedulerOutput(i) for i in range(1, 71)]
    n = %(steps)d
    for i in range(1000):
        w.execute_model(sos[i %% 70]); w.sample_tokens(None)
    t0 = time.perf_counter_ns()
    for i in range(n):
        w.execute_model(sos[i %% 70])
        w.sample_tokens(None)
    print((time.perf_counter_ns() - t0) / n)
''')

WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                        "sample_workload")
TARGETS = {
    "one": "bench_mod:W.execute_model",
    "pair_noflt": "bench_mod:W.execute_model+sample_tokens",
    "pair": "bench_mod:W.execute_model+sample_tokens",
}


def instructions(mode, bundle, moddir, steps):
    """Instructions per step of `mode` under callgrind."""
    def total(n):
        env, code = _child(mode, bundle, moddir, n)
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
             "/usr/bin/python3", "-c", code], env=env, capture_output=True,
            text=True, check=True)
        for line in out.stderr.splitlines():
            if "Collected :" in line:
                return int(line.split(":")[-1].strip())
        raise RuntimeError("no callgrind total in:\n" + out.stderr)
    return (total(2 * steps) - total(steps)) / steps


def _child(mode, bundle, moddir, steps):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VLLM_PROFILER") and k != "PYTHONPATH"}
    path = [moddir, os.path.abspath(WORKLOAD)]
    if mode != "none":
        path.insert(0, bundle)
        env["VLLM_PROFILER_TARGET"] = TARGETS[mode]
        if mode != "pair":
            env["VLLM_PROFILER_FLIGHT"] = "off"
        env["VLLM_PROFILER_LOG"] = "quiet"
        env["VLLM_PROFILER_SOCKET"] = os.path.join(moddir, "absent.sock")
        env["VLLM_PROFILER_START_STEP"] = str(10 ** 9)
    env["PYTHONPATH"] = os.pathsep.join(path)
    return env, CHILD % {"steps": steps}


def run(mode, bundle, moddir, steps):
    env, code = _child(mode, bundle, moddir, steps)
    out = subprocess.run(["/usr/bin/python3", "-c", code],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bundle", required=True)
    p.add_argument("--steps", type=int, default=200000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--instructions", action="store_true")
    a = p.parse_args()
    moddir = tempfile.mkdtemp(prefix="vp-wb-")
    with open(os.path.join(moddir, "bench_mod.py"), "w") as f:
        f.write(MODULE)
    modes = ["none", "one", "pair_noflt", "pair"]
    got = {m: [] for m in modes}
    for r in range(a.rounds):
        for m in (modes if r % 2 == 0 else modes[::-1]):
            got[m].append(run(m, a.bundle, moddir, a.steps))
    med = {m: statistics.median(v) for m, v in got.items()}
    for m in modes:
        print("%-10s %8.0f ns/step  (rounds: %s)" % (
            m, med[m], " ".join("%.0f" % x for x in got[m])))
    print("one wrapper adds  %6.0f ns/step over no probe" %
          (med["one"] - med["none"]))
    print("pair adds         %6.0f ns/step over one wrapper (target < 1000)" %
          (med["pair_noflt"] - med["one"]))
    print("flight adds       %6.0f ns/step over the pair without it" %
          (med["pair"] - med["pair_noflt"]))
    if a.instructions:
        ins = {m: instructions(m, a.bundle, moddir, 20000) for m in modes}
        for m in modes:
            print("%-10s %8.0f instructions/step (callgrind)" % (m, ins[m]))
        print("pair adds         %6.0f instructions/step over one wrapper" %
              (ins["pair_noflt"] - ins["one"]))
        print("flight adds       %6.0f instructions/step over the pair "
              "without it" % (ins["pair"] - ins["pair_noflt"]))


if __name__ == "__main__":
    main()
