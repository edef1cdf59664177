#!/usr/bin/env python3
"""GPU checks of issue 9, driven by run_gpu_check.sh after gpu_check.py.

  coexist_check.py --probe-dir DIR --socket SOCK --trace-dir DIR --out DIR
                   [--allow-cpu]

Each part runs the CUDA workload (gpu_workload.py) in a fresh Python process
under the probe (sitecustomize from --probe-dir, the collector on --socket):

  graphs     steps replay a CUDA graph captured at warm-up (vLLM's default):
             the probe's window must hold kernels of graph replays (kernel
             args "graph id", or cuda_graph events) on GPU stream tracks;
  coexist    our window (steps 3-4) with GPU activity; then torch.profiler
             with CPU + CUDA activity around steps 8-10 (as vLLM's
             /start_profile) must still get CUDA kernels; then a capture we
             request while a torch.profiler runs (steps 14-16) must leave
             CUPTI to it: no kernels in our trace, the reason in its
             metadata, torch.profiler's own kernels intact.

Writes coexist_check.json and coexist_check.md under --out; exit status 0
when every check passes. --allow-cpu: dry run of the plumbing without a
GPU (the kernel checks are reported, not required).
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r'''
import json, sys
sys.path.insert(0, %(here)r)
import torch
import vllm_profiler_probe as vp
from gpu_workload import Worker
part, out = %(part)r, %(out)r
w = Worker()
res = {"device": w.device}
if part == "graphs":
    w.execute_model(None)  # Warm-up (allocations) before capture.
    if w.device == "cuda":
        static_x = w.host_in.to("cuda")
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            y = torch.matmul(static_x, w.w_out)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            y = torch.relu(torch.matmul(static_x, w.w_out))
        def step():
            g.replay()
            torch.cuda.synchronize()
    else:
        def step():
            torch.relu(torch.matmul(w.host_in, w.w_out))
    class Runner:
        def execute_model(self, scheduler_output=None):
            step()
    vp._wrap_module(sys.modules[__name__])  # Runner is the probe's target.
    r = Runner()
    for _ in range(8):
        r.execute_model(None)
else:
    lib = vp.native()
    prof_kernels = []
    for i in range(1, 21):
        if i == 8 or i == 14:
            acts = [torch.profiler.ProfilerActivity.CPU]
            if w.device == "cuda":
                acts.append(torch.profiler.ProfilerActivity.CUDA)
            prof = torch.profiler.profile(activities=acts)
            prof.__enter__()
        if i == 14 and lib is not None:
            res["requested"] = lib.vp_request_capture(2, 0, 1)
        w.execute_model(None)
        if i == 10 or i == 16:
            prof.__exit__(None, None, None)
            n = sum(1 for e in prof.events()
                    if str(getattr(e, "device_type", "")).endswith("CUDA"))
            prof_kernels.append(n)
    res["torch_profiler_cuda_events"] = prof_kernels
with open(out, "w") as f:
    json.dump(res, f)
'''


def run(part, args, env_extra):
    result = os.path.join(args.out, "coexist_%s_child.json" % part)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("VLLM_PROFILER")}
    env.update({"PYTHONPATH": args.probe_dir + os.pathsep + HERE,
                "VLLM_PROFILER_SOCKET": args.socket,
                "VLLM_TORCH_PROFILE": "/x/coexist_%s.json" % part})
    env.update(env_extra)
    # The workload's step method is what the probe wraps.
    env["VLLM_PROFILER_TARGET"] = (
        "__main__:Runner.execute_model" if part == "graphs"
        else "gpu_workload:Worker.execute_model")
    t0 = time.time()
    p = subprocess.run([sys.executable, "-c", CHILD % {
        "here": HERE, "part": part, "out": result}], env=env,
        capture_output=True, text=True, timeout=300)
    with open(os.path.join(args.out, "coexist_%s.log" % part), "w") as f:
        f.write(p.stdout + p.stderr)
    child = {}
    if os.path.exists(result):
        with open(result) as f:
            child = json.load(f)
    return p.returncode, child, time.time() - t0


def read_trace(trace_dir, name, timeout_s=60):
    path = os.path.join(trace_dir, name)
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if os.path.exists(path):
            time.sleep(0.3)
            with open(path) as f:
                return json.load(f)
        time.sleep(0.1)
    return None


def gpu_events(trace):
    ev = trace.get("traceEvents", []) if trace else []
    kernels = [e for e in ev if e.get("cat") == "kernel"]
    graphs = [e for e in ev if e.get("cat") == "cuda_graph"]
    return kernels, graphs


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--probe-dir", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--trace-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--allow-cpu", action="store_true")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    checks = []

    def check(name, ok, detail):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})
        print("%s %s: %s" % ("PASS" if ok else "FAIL", name, detail))

    # graphs: window = steps 3..6.
    rc, child, secs = run("graphs", args, {"VLLM_PROFILER_START_STEP": "3",
                                           "VLLM_PROFILER_NUM_STEPS": "4"})
    gpu = child.get("device") == "cuda"
    check("graphs: workload ran", rc == 0, "rc %d in %.1f s" % (rc, secs))
    trace = read_trace(args.trace_dir, "coexist_graphs.json")
    kernels, graphs = gpu_events(trace)
    in_graph = [k for k in kernels if k.get("args", {}).get("graph id")]
    check("graphs: kernels of graph replays in the window",
          (len(in_graph) + len(graphs) > 0) or (args.allow_cpu and not gpu),
          "%d kernels, %d with a graph id, %d cuda_graph events%s" % (
              len(kernels), len(in_graph), len(graphs),
              "" if gpu else " (no GPU: dry run)"))

    # coexist: our window 3..4, torch.profiler 8..10, ours again (request)
    # under torch.profiler 14..16.
    rc, child, secs = run("coexist", args, {"VLLM_PROFILER_START_STEP": "3",
                                            "VLLM_PROFILER_NUM_STEPS": "2"})
    gpu = child.get("device") == "cuda"
    check("coexist: workload ran", rc == 0, "rc %d in %.1f s" % (rc, secs))
    counts = child.get("torch_profiler_cuda_events", [])
    check("coexist: torch.profiler after our capture gets CUDA events",
          (len(counts) == 2 and counts[0] > 0) or (args.allow_cpu and not gpu),
          "CUDA events seen by torch.profiler: %s" % counts)
    check("coexist: torch.profiler during our requested capture keeps its "
          "CUDA events",
          (len(counts) == 2 and counts[1] > 0) or (args.allow_cpu and not gpu),
          "CUDA events seen by torch.profiler: %s" % counts)
    traces = sorted(glob.glob(os.path.join(args.trace_dir, "*.json")),
                    key=os.path.getmtime)
    ours = [t for t in traces if "coexist" not in os.path.basename(t)]
    first = read_trace(args.trace_dir, "coexist_coexist.json")
    k1, _ = gpu_events(first)
    check("coexist: our window before it has kernels",
          len(k1) > 0 or (args.allow_cpu and not gpu), "%d kernels" % len(k1))
    second = None
    if ours:
        with open(ours[-1]) as f:
            second = json.load(f)
    k2, _ = gpu_events(second)
    notes = [p.get("gpu_activity_note", "") for p in
             (second or {}).get("metadata", {}).get("processes", [])]
    check("coexist: our capture under torch.profiler leaves CUPTI to it",
          second is not None and not k2 and any("torch.profiler" in n
                                                for n in notes),
          "trace %s, %d kernels, notes %s" % (
              os.path.basename(ours[-1]) if ours else None, len(k2), notes))

    ok = all(c["ok"] for c in checks)
    with open(os.path.join(args.out, "coexist_check.json"), "w") as f:
        json.dump({"ok": ok, "checks": checks}, f, indent=1)
    with open(os.path.join(args.out, "coexist_check.md"), "w") as f:
        f.write("| check | result | detail |\n| --- | --- | --- |\n")
        for c in checks:
            f.write("| %s | %s | %s |\n" % (c["check"],
                                            "pass" if c["ok"] else "FAIL",
                                            c["detail"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
