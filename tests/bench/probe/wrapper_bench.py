#!/usr/bin/env python3
"""Cost per step of the step wrappers, side by side in one run.

  /usr/bin/python3 tests/bench/probe/wrapper_bench.py --bundle DIR \
      [--steps 200000] [--rounds 5]

A worker whose execute_model returns None and whose sample_tokens returns
the output (vLLM >= 0.11.1), both doing nothing else, so what is measured is
the wrappers themselves. Modes, each a fresh /usr/bin/python3 process,
interleaved over rounds so machine noise hits them alike:
  none      no probe
  one       probe wrapping execute_model only (the probe before the step
            model: VLLM_PROFILER_TARGET=bench_mod:W.execute_model)
  pair      probe wrapping execute_model + sample_tokens (the step model)
No capture runs (the probe's steady state); no collector is needed.
Prints the median ns per step of each mode and the pair's added cost over
one wrapper (the issue's target: under 1 us per step).

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
    w = bench_mod.W()
    n = %(steps)d
    for _ in range(1000):
        w.execute_model(None); w.sample_tokens(None)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        w.execute_model(None)
        w.sample_tokens(None)
    print((time.perf_counter_ns() - t0) / n)
''')

TARGETS = {
    "one": "bench_mod:W.execute_model",
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
    path = [moddir]
    if mode != "none":
        path.insert(0, bundle)
        env["VLLM_PROFILER_TARGET"] = TARGETS[mode]
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
    modes = ["none", "one", "pair"]
    got = {m: [] for m in modes}
    for r in range(a.rounds):
        for m in (modes if r % 2 == 0 else modes[::-1]):
            got[m].append(run(m, a.bundle, moddir, a.steps))
    med = {m: statistics.median(v) for m, v in got.items()}
    for m in modes:
        print("%-5s %8.0f ns/step  (rounds: %s)" % (
            m, med[m], " ".join("%.0f" % x for x in got[m])))
    print("one wrapper adds  %6.0f ns/step over no probe" %
          (med["one"] - med["none"]))
    print("pair adds         %6.0f ns/step over one wrapper (target < 1000)" %
          (med["pair"] - med["one"]))
    if a.instructions:
        ins = {m: instructions(m, a.bundle, moddir, 20000) for m in modes}
        for m in modes:
            print("%-5s %8.0f instructions/step (callgrind)" % (m, ins[m]))
        print("pair adds         %6.0f instructions/step over one wrapper" %
              (ins["pair"] - ins["one"]))


if __name__ == "__main__":
    main()
