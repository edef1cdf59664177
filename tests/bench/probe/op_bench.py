#!/usr/bin/env python3
"""Per-operator cost of capturing, in one process (less noisy than step
times on a shared machine): a loop of small torch ops, timed idle, under
our probe (shapes on/off) and under torch.profiler (CPU, record_shapes
on/off). Each figure is the best of --reps repetitions.

  PYTHONPATH=<probe dir> VLLM_PROFILER_SOCKET=<collector socket or none> \
  VLLM_PROFILER_START_STEP=1000000000 /usr/bin/python3 tests/bench/probe/op_bench.py
"""
import argparse
import os
import time

import torch
import torch.profiler as tp
import vllm_profiler_probe as probe
from vllm_profiler_probe import _native


def loop(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    lib = probe.native()
    _native.load_torch_shim(probe._state.core_file, torch.__version__, print)
    a = torch.ones(8, 8)
    b = torch.ones(8, 8)
    ops = {
        "add": lambda: torch.add(a, b),
        "mm": lambda: torch.mm(a, b),
        "linear": lambda: torch.nn.functional.linear(a, b),  # Nested ops.
    }
    res = {}

    def best(mode, name, fn):
        res[(mode, name)] = min(loop(fn, args.ops) for _ in range(args.reps))

    for name, fn in ops.items():
        best("idle", name, fn)
    for shapes in (1, 0):
        mode = "probe_shapes" if shapes else "probe_noshapes"
        # One step-long capture around the timed loops.
        assert lib.vp_request_capture(1, 0, shapes) == 0
        lib.vp_step_begin()
        assert lib.vp_is_capturing() == 1
        for name, fn in ops.items():
            best(mode, name, fn)
        lib.vp_step_end()
        assert lib.vp_is_capturing() == 0
    for shapes in (True, False):
        mode = "torchprof_shapes" if shapes else "torchprof_noshapes"
        with tp.profile(activities=[tp.ProfilerActivity.CPU],
                        record_shapes=shapes):
            for name, fn in ops.items():
                best(mode, name, fn)
    names = list(ops)
    print("ns per call (best of %d x %d calls)" % (args.reps, args.ops))
    print("%-20s" % "mode" + "".join("%12s" % n for n in names))
    for mode in ("idle", "probe_shapes", "probe_noshapes", "torchprof_shapes",
                 "torchprof_noshapes"):
        print("%-20s" % mode + "".join("%12.0f" % res[(mode, n)] for n in names))
    print("added ns per call vs idle:")
    for mode in ("probe_shapes", "probe_noshapes", "torchprof_shapes",
                 "torchprof_noshapes"):
        print("%-20s" % mode + "".join(
            "%12.0f" % (res[(mode, n)] - res[("idle", n)]) for n in names))
    for n in names:
        ours = res[("probe_shapes", n)] - res[("idle", n)]
        theirs = res[("torchprof_shapes", n)] - res[("idle", n)]
        print("ratio ours/torch.profiler (shapes on) for %s: %.2f" % (n, ours / theirs))


if __name__ == "__main__":
    main()
