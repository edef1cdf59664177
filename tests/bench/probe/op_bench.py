#!/usr/bin/env python3
"""Per-operator cost of capturing, in one process (less noisy than step
times on a shared machine): a loop of small torch ops, timed idle, with a
do-nothing RecordFunction callback (the floor any RecordFunction-based
profiler pays; needs --null_callback), under our probe (shapes on/off) and
under torch.profiler (CPU, record_shapes on/off). Modes are interleaved
over --reps repetitions; each figure is the best repetition (wall), and the
process CPU (all threads, incl. our sender) of that repetition's loop.

  PYTHONPATH=<probe dir> VLLM_PROFILER_SOCKET=<collector socket or none> \
  VLLM_PROFILER_START_STEP=1000000000 /usr/bin/python3 \
      tests/bench/probe/op_bench.py [--null_callback PATH/libvp_null_callback.so]
"""
import argparse
import ctypes
import os
import threading
import time

import torch
import torch.profiler as tp
import vllm_profiler_probe as probe
from vllm_profiler_probe import _native


def loop(fn, n):
    """ns per call: wall, process CPU (all threads), CPU of the other threads
    (our sender and gRPC's; torch.profiler has none)."""
    c0 = time.process_time()
    m0 = time.thread_time()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    wall = (time.perf_counter() - t0) / n * 1e9
    cpu = (time.process_time() - c0) / n * 1e9
    return wall, cpu, cpu - (time.thread_time() - m0) / n * 1e9


def thread_cpu_by_name():
    """CPU seconds of this process's threads, summed by thread name
    (/proc/self/task; clock-tick resolution, fine over a whole run)."""
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/comm" % tid) as f:
                name = f.read().strip()
            with open("/proc/self/task/%s/stat" % tid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[name] = out.get(name, 0.0) + (int(fields[11]) +
                                          int(fields[12])) / tick
    return out


def pin_threads(step_cpu, other_cpus):
    """The calling (step) thread on `step_cpu`, every other thread of the
    process (our sender and reader, gRPC's) on `other_cpus`: on a 2-core
    machine the sender and the stand-in collector then stay off the step
    thread's core, as on a many-core node. Threads that appear later (a new
    gRPC thread) are pinned by the next call."""
    me = threading.get_native_id()
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), {step_cpu} if int(tid) == me
                                 else other_cpus)
        except OSError:
            pass  # The thread exited.


def stop(cm, n_calls, settle):
    """ns per call of ending a mode: its __exit__ (torch.profiler builds its
    events there, on the calling thread) plus what the process spends in the
    `settle` seconds after (our sender draining)."""
    c0 = time.process_time()
    t0 = time.perf_counter()
    cm.__exit__(None, None, None)
    wall = (time.perf_counter() - t0) / n_calls * 1e9
    time.sleep(settle)
    return wall, (time.process_time() - c0) / n_calls * 1e9


STEP_THREAD_STOPS = []  # Seconds in the fallback's stop(), per capture.


class Probe:
    """One step-long capture around the timed loops. With `hooks` (the
    torch-profiler fallback) operators come from torch's profiler, started
    and stopped as the step model does; its stop waits for the background
    conversion, so the mode's stop counts all of it."""

    def __init__(self, lib, shapes, hooks=None):
        self.lib, self.shapes, self.hooks = lib, shapes, hooks

    def __enter__(self):
        assert self.lib.vp_request_capture(1, 0, self.shapes) == 0
        self.lib.vp_step_begin()
        assert self.lib.vp_is_capturing() == 1
        if self.hooks is not None:
            self.hooks.start()

    def __exit__(self, *exc):
        self.lib.vp_step_end()
        assert self.lib.vp_is_capturing() == 0
        if self.hooks is not None:
            t0 = time.perf_counter()
            self.hooks.stop()  # What the step thread pays.
            STEP_THREAD_STOPS.append(time.perf_counter() - t0)
            self.hooks.wait(120)


class Null:
    def __init__(self, lib, needs_inputs):
        self.lib, self.needs_inputs = lib, needs_inputs

    def __enter__(self):
        self.lib.vp_bench_null_callback(1, self.needs_inputs)

    def __exit__(self, *exc):
        self.lib.vp_bench_null_callback(0, 0)


class Idle:
    def __enter__(self):
        pass

    def __exit__(self, *exc):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ops", type=int, default=20000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--null_callback", default="",
                    help="path of libvp_null_callback.so (optional)")
    ap.add_argument("--modes", default="",
                    help="comma-separated modes to run besides idle "
                         "(default: all; e.g. probe_shapes for a profile)")
    ap.add_argument("--only", default="",
                    help="comma-separated operators to run (default: all)")
    ap.add_argument("--pin", action="store_true",
                    help="the step thread on the first CPU, our other "
                         "threads on the rest (run the collector there "
                         "too: taskset -c 1-N)")
    ap.add_argument("--fallback", action="store_true",
                    help="our operators through torch's profiler (the "
                         "fallback without a shim) instead of the shim")
    args = ap.parse_args()
    lib = probe.native()
    core = probe._state.core_file
    hooks = None
    if args.fallback:
        from vllm_profiler_probe import _fallback
        hooks = _fallback.TorchProfilerFallback(
            lib, torch, lambda *a, **k: print(*a),
            record_shapes=lambda: lib.vp_record_shapes() == 1,
            usable=lambda: True)
    elif _native.load_torch_shim(core, torch.__version__, print) is None:
        # Another torch (a torch 2.x image): the shim built in-process, as
        # the probe does, synchronously here.
        from vllm_profiler_probe import _shim_build
        path, _ = _shim_build.build_or_load(
            torch, os.path.dirname(os.path.abspath(core)), print)
        assert path, "no torch shim for this torch"
        assert _native.load_torch_shim(core, torch.__version__, print,
                                       path=path) is not None
    a = torch.ones(8, 8)
    b = torch.ones(8, 8)
    ops = {
        "add": lambda: torch.add(a, b),
        "mm": lambda: torch.mm(a, b),
        "linear": lambda: torch.nn.functional.linear(a, b),  # Nested ops.
    }
    modes = {"idle": Idle}
    if args.null_callback:
        null = ctypes.CDLL(args.null_callback)
        modes["null_cb"] = lambda: Null(null, 0)
        modes["null_cb_inputs"] = lambda: Null(null, 1)
        modes["null_cb_sizes"] = lambda: Null(null, 2)
        modes["minimal_cb"] = lambda: Null(null, 3)
    modes["probe_shapes"] = lambda: Probe(lib, 1, hooks)
    modes["probe_noshapes"] = lambda: Probe(lib, 0, hooks)
    modes["torchprof_shapes"] = lambda: tp.profile(
        activities=[tp.ProfilerActivity.CPU], record_shapes=True)
    modes["torchprof_noshapes"] = lambda: tp.profile(
        activities=[tp.ProfilerActivity.CPU], record_shapes=False)
    if args.modes:
        keep = {"idle"} | set(args.modes.split(","))
        modes = {m: make for m, make in modes.items() if m in keep}
    if args.only:
        ops = {n: fn for n, fn in ops.items() if n in args.only.split(",")}
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin and len(cpus) < 2:
        print("--pin needs two CPUs; running unpinned")
        args.pin = False
    if args.pin:
        print("pinned: step thread on CPU %d, our other threads on %s" % (
            cpus[0], ",".join(map(str, cpus[1:]))))
    res = {}
    stops = {}
    for _ in range(args.reps):
        for mode, make in modes.items():
            if args.pin:
                pin_threads(cpus[0], set(cpus[1:]))
            cm = make()
            cm.__enter__()
            for name, fn in ops.items():
                r = loop(fn, args.ops)
                if (mode, name) not in res or r[0] < res[(mode, name)][0]:
                    res[(mode, name)] = r
            # The sleep's own CPU is ~0; what runs in it is the mode's.
            s = stop(cm, args.ops * len(ops), 0.3 if "probe" in mode else 0)
            if mode not in stops or s[1] < stops[mode][1]:
                stops[mode] = s
    names = list(ops)
    print("ns per call, best of %d x %d calls (wall / process CPU)" % (
        args.reps, args.ops))
    print("%-20s" % "mode" + "".join("%16s" % n for n in names))
    for mode in modes:
        print("%-20s" % mode + "".join(
            "%16s" % ("%.0f / %.0f" % res[(mode, n)][:2]) for n in names))
    print("added ns per call vs idle (wall / process CPU / other threads' "
          "CPU), and the stop (wall / CPU per call, sender drain included):")
    for mode in modes:
        if mode == "idle":
            continue
        print("%-20s" % mode + "".join(
            "%20s" % ("%.0f / %.0f / %.0f" % (
                res[(mode, n)][0] - res[("idle", n)][0],
                res[(mode, n)][1] - res[("idle", n)][1],
                res[(mode, n)][2] - res[("idle", n)][2]))
            for n in names) + "   stop %.0f / %.0f" % stops[mode])
    probe_calls = args.reps * args.ops * len(ops) * sum(
        1 for m in modes if m.startswith("probe"))
    if probe_calls:
        print("our threads' CPU over the run, ns per call of the probe modes:",
              ", ".join("%s %.0f" % (name, sec * 1e9 / probe_calls)
                        for name, sec in sorted(thread_cpu_by_name().items())
                        if name.startswith(("vp-", "grpc"))))
    if STEP_THREAD_STOPS:
        print("fallback stop() on the step thread: median %.0f ns per call" % (
            sorted(STEP_THREAD_STOPS)[len(STEP_THREAD_STOPS) // 2] * 1e9 /
            (args.ops * len(ops))))
    # Robust to the sender draining one operator's records during the next
    # operator's loop: every loop of the mode plus its stop, per call.
    print("whole mode, added process CPU per call (its loops and its stop):")
    for mode in modes:
        if mode == "idle":
            continue
        added = [res[(mode, n)][1] - res[("idle", n)][1] for n in names]
        print("%-20s %8.0f" % (mode, sum(added) / len(added) + stops[mode][1]))
    for n in names:
        if ("probe_shapes", n) not in res or ("torchprof_shapes", n) not in res:
            continue
        ours = res[("probe_shapes", n)][0] - res[("idle", n)][0]
        theirs = res[("torchprof_shapes", n)][0] - res[("idle", n)][0]
        line = "ratio ours/torch.profiler (shapes on) for %s: %.2f" % (
            n, ours / theirs)
        if ("null_cb_inputs", n) in res:
            floor = res[("null_cb_inputs", n)][0] - res[("idle", n)][0]
            line += ("; beyond the needsInputs floor (%.0f ns): ours %.0f, "
                     "torch.profiler %.0f" % (floor, ours - floor,
                                              theirs - floor))
        print(line)


if __name__ == "__main__":
    main()
