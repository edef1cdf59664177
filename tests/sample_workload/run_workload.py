#!/usr/bin/env python3
"""Drives the sample vLLM-shaped engine: N engine steps.

  run_workload.py --steps 200 [--vllm-api 0.10|0.11|async|pooling|v0]
                  [--layout inline|engine-core|ray] [--tp N]
                  [--spawn N | --fork N] [--empty-every K]
                  [--out results.json] [--sleep-ms 0]

Shaped after vLLM's own code:
  * --vllm-api: 0.10 = one execute_model per step; 0.11 (default, vLLM >=
    0.11.1) = execute_model returns None, then sample_tokens returns the
    output; async = the pair with engine work between the two calls and
    after sample_tokens (async scheduling); pooling = execute_model returns
    the output; v0 = vLLM's V0 engine (vllm.worker.worker_base, never the
    V1 worker).
  * --layout: inline = the steps run in this process; engine-core = this
    process plays the API server (imports vllm.entrypoints, never the
    worker) and the engine runs in a spawned process named EngineCore_DP0,
    as `vllm serve` does; ray = the model runner is driven through a
    RayWorkerWrapper-like execute_model_ray, never through Worker.
  * --tp N: the engine drives N spawned processes VllmWorker-0..N-1 (rank,
    local rank and world size on their Worker) over pipes, as vLLM's
    multiproc executor does; the output comes from rank 0.
  * --spawn/--fork N: N independent replicas (each its own engine).
  * --empty-every K: every K-th step schedules no tokens.
  * --raise-in execute_model:K / sample_tokens:K: that call of step K
    raises RuntimeError("injected failure at step K"); the engine records
    the exception text as the step's result and goes on.
  * --torch-profiler-at A:B: torch.profiler (CPU) runs around steps A..B,
    as vLLM's /start_profile would; prints how many events it got.
  * --slow-at K:MS (repeatable): step K's execute_model takes MS ms more
    (a sleep inside the model runner): a slow step for the flight
    recorder's triggers, at a known step.
  * --skip-sample-at K: step K's sample_tokens is never called (the next
    execute_model comes first); --orphan-sample-at K: a sample_tokens call
    with no execute_model before it, ahead of step K (it raises, as vLLM's
    model runner does; recorded and ignored).

Prints/writes each process's per-step results, so runs with and without the
probe can be compared. Imports nothing from the probe.
"""
import argparse
import json
import multiprocessing
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _set_api(api):
    # The sample vllm package reads its API shape at import (like a vLLM
    # release); children inherit it through the environment.
    os.environ["SAMPLE_VLLM_API"] = api


def _engine_work(so):
    """The engine's own Python between and after the worker calls (async
    scheduling): builds the next batch, updates request states. No torch."""
    acc = 0
    for _ in range(200):
        for req_id, n in so.num_scheduled_tokens.items():
            acc += n + len(req_id)
    return acc


class InProcExecutor(object):
    """The worker in this process (vLLM's UniProcExecutor)."""

    def __init__(self, rank=0, world_size=1):
        from vllm.v1.worker.gpu_worker import Worker
        self.worker = Worker(rank=rank, local_rank=rank,
                             world_size=world_size, seed=rank)

    def execute_model(self, so):
        return self.worker.execute_model(so)

    def sample_tokens(self, grammar):
        return self.worker.sample_tokens(grammar)

    def results(self):
        return [{"rank": 0, "pid": os.getpid()}]

    def shutdown(self):
        pass


class RayExecutor(InProcExecutor):
    """Steps through RayWorkerWrapper.execute_model_ray (model runner only)."""

    def __init__(self):
        super().__init__()
        from vllm.v1.executor.ray_utils import RayWorkerWrapper
        self.wrapper = RayWorkerWrapper(self.worker)
        self.pending = None

    def execute_model(self, so):
        from vllm.v1.core.sched.output import GrammarOutput
        return self.wrapper.execute_model_ray((so, GrammarOutput()))


def _worker_proc(rank, world_size, conn):
    """A VllmWorker-N process: runs the RPCs the engine sends."""
    from vllm.v1.worker.gpu_worker import Worker
    worker = Worker(rank=rank, local_rank=rank, world_size=world_size,
                    seed=0)
    results = []
    while True:
        method, arg = conn.recv()
        if method == "shutdown":
            conn.send((os.getpid(), results))
            return
        out = getattr(worker, method)(arg)
        value = None if out is None else out.value
        if value is not None:
            results.append(value)
        conn.send(value)


class _Value(object):
    def __init__(self, value):
        self.value = value


class MultiProcExecutor(object):
    """N spawned VllmWorker-N processes (vLLM's MultiprocExecutor)."""

    def __init__(self, world_size):
        ctx = multiprocessing.get_context("spawn")
        self.conns, self.procs = [], []
        for rank in range(world_size):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker_proc, args=(rank, world_size, child),
                            name="VllmWorker-%d" % rank)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def _rpc(self, method, arg):
        for c in self.conns:
            c.send((method, arg))
        outs = [c.recv() for c in self.conns]
        return None if outs[0] is None else _Value(outs[0])

    def execute_model(self, so):
        return self._rpc("execute_model", so)

    def sample_tokens(self, grammar):
        return self._rpc("sample_tokens", grammar)

    def results(self):
        out = []
        for rank, c in enumerate(self.conns):
            c.send(("shutdown", None))
            pid, res = c.recv()
            out.append({"rank": rank, "pid": pid, "results": res})
        return out

    def shutdown(self):
        for p in self.procs:
            p.join(timeout=60)


def _faults(executor, raise_in):
    """Makes the worker's model runner raise at chosen calls."""
    if not raise_in:
        return
    runner = executor.worker.model_runner
    for spec in raise_in:
        method, _, step = spec.partition(":")
        step = int(step)
        orig = getattr(runner, method)

        def failing(*args, _orig=orig, _step=step, **kwargs):
            if executor.current_step == _step:
                raise RuntimeError("injected failure at step %d" % _step)
            return _orig(*args, **kwargs)
        setattr(runner, method, failing)


def _slow_steps(executor, slow_at):
    """Makes the model runner's execute_model sleep at chosen steps."""
    delays = {}
    for spec in slow_at:
        step, _, ms = spec.partition(":")
        delays[int(step)] = float(ms) / 1000.0
    if not delays:
        return
    runner = executor.worker.model_runner
    orig = runner.execute_model

    def slow(*args, **kwargs):
        delay = delays.get(executor.current_step)
        if delay:
            time.sleep(delay)
        return orig(*args, **kwargs)
    runner.execute_model = slow


def _one_step(executor, so, api, skip_sample):
    from vllm.v1.core.sched.output import GrammarOutput
    try:
        out = executor.execute_model(so)
        if api == "async":
            _engine_work(so)
        if out is None:
            if skip_sample:
                return "sample skipped"
            out = executor.sample_tokens(GrammarOutput())
        if api == "async":
            _engine_work(so)
        return out.value
    except RuntimeError as e:
        return "%s: %s" % (type(e).__name__, e)


def _wait_for_file(path, timeout_s=120):
    """Blocks until `path` exists (a test's go-ahead); fails after timeout."""
    deadline = time.time() + timeout_s
    while not os.path.exists(path):
        if time.time() > deadline:
            raise RuntimeError("--wait-at: %s did not appear" % path)
        time.sleep(0.01)


def run_engine(steps, api="0.11", layout="inline", tp=1, sleep_ms=0.0,
               empty_every=0, raise_in=(), skip_sample_at=0,
               orphan_sample_at=0, torch_profiler_at="", slow_at=(),
               wait_at=""):
    """Runs `steps` engine steps; returns [{"rank", "pid", "results"}].

    wait_at "STEP:FILE": before step STEP, wait until FILE exists."""
    from vllm.v1.core.sched.output import GrammarOutput, SchedulerOutput
    if api == "v0":
        return _run_v0(steps, sleep_ms)
    if tp > 1:
        executor = MultiProcExecutor(tp)
    elif layout == "ray":
        executor = RayExecutor()
    else:
        executor = InProcExecutor()
    _faults(executor, raise_in)
    _slow_steps(executor, slow_at)
    prof_from, _, prof_to = torch_profiler_at.partition(":")
    prof = None
    results = []
    wait_step, _, wait_file = wait_at.partition(":")
    for step in range(1, steps + 1):
        if wait_step and step == int(wait_step):
            _wait_for_file(wait_file)
        if prof_from and step == int(prof_from):
            import torch.profiler
            prof = torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU])
            prof.__enter__()
        so = SchedulerOutput(step, empty=bool(empty_every) and
                             step % empty_every == 0)
        executor.current_step = step
        if step == orphan_sample_at:
            try:
                executor.sample_tokens(GrammarOutput())
            except RuntimeError as e:
                results.append("orphan: %s" % e)
        results.append(_one_step(executor, so, api, step == skip_sample_at))
        if prof is not None and step == int(prof_to):
            prof.__exit__(None, None, None)
            print("torch.profiler events: %d" % len(prof.events()))
            prof = None
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)
    procs = executor.results()
    executor.shutdown()
    if tp == 1:
        procs[0]["results"] = results
    return procs


def _run_v0(steps, sleep_ms):
    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.worker.worker_base import LocalOrDistributedWorkerBase
    worker = LocalOrDistributedWorkerBase()
    results = []
    for step in range(1, steps + 1):
        results.append(worker.execute_model(SchedulerOutput(step)).value)
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)
    return [{"rank": 0, "pid": os.getpid(), "results": results}]


def run(steps, sleep_ms=0.0, rank=0):
    """One in-process engine of today's shape (used by other test scripts):
    (per-step results, per-step seconds)."""
    from vllm.v1.core.sched.output import GrammarOutput, SchedulerOutput
    executor = InProcExecutor(rank=rank)
    results, times = [], []
    for step in range(1, steps + 1):
        so = SchedulerOutput(step)
        t0 = time.perf_counter()
        out = executor.execute_model(so)
        if out is None:
            out = executor.sample_tokens(GrammarOutput())
        times.append(time.perf_counter() - t0)
        results.append(out.value)
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)
    return results, times


def _engine_core_proc(kwargs, queue):
    queue.put(run_engine(**kwargs))


def _replica(steps, sleep_ms, rank, queue):
    os.environ["RANK"] = str(rank)
    results, _ = run(steps, sleep_ms, rank)
    queue.put((rank, os.getpid(), results))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--vllm-api", default="0.11",
                   choices=["0.10", "0.11", "async", "pooling", "v0"])
    p.add_argument("--layout", default="inline",
                   choices=["inline", "engine-core", "ray"])
    p.add_argument("--tp", type=int, default=1)
    p.add_argument("--spawn", type=int, default=0)
    p.add_argument("--fork", type=int, default=0)
    p.add_argument("--empty-every", type=int, default=0)
    p.add_argument("--raise-in", action="append", default=[],
                   metavar="METHOD:STEP")
    p.add_argument("--slow-at", action="append", default=[],
                   metavar="STEP:MS")
    p.add_argument("--skip-sample-at", type=int, default=0)
    p.add_argument("--orphan-sample-at", type=int, default=0)
    p.add_argument("--torch-profiler-at", default="", metavar="A:B")
    p.add_argument("--sleep-ms", type=float, default=0.0)
    p.add_argument("--wait-at", default="", metavar="STEP:FILE",
                   help="before step STEP, wait until FILE exists")
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    _set_api(a.vllm_api)
    out = {"api": a.vllm_api, "layout": a.layout, "tp": a.tp}
    if a.spawn or a.fork:
        ctx = multiprocessing.get_context("spawn" if a.spawn else "fork")
        n = a.spawn or a.fork
        q = ctx.Queue()
        procs = [ctx.Process(target=_replica, args=(a.steps, a.sleep_ms, r, q))
                 for r in range(n)]
        for pr in procs:
            pr.start()
        got = sorted(q.get(timeout=600) for _ in procs)
        for pr in procs:
            pr.join(timeout=120)
        out["processes"] = [{"rank": r, "pid": pid, "results": res}
                            for r, pid, res in got]
        out["exitcodes"] = [pr.exitcode for pr in procs]
    else:
        kwargs = dict(steps=a.steps, api=a.vllm_api, layout=a.layout,
                      tp=a.tp, sleep_ms=a.sleep_ms, empty_every=a.empty_every,
                      raise_in=a.raise_in, skip_sample_at=a.skip_sample_at,
                      orphan_sample_at=a.orphan_sample_at,
                      torch_profiler_at=a.torch_profiler_at,
                      slow_at=a.slow_at, wait_at=a.wait_at)
        if a.layout == "engine-core":
            # This process is the API server: it never imports the worker.
            import vllm.entrypoints.api_server  # noqa: F401
            ctx = multiprocessing.get_context("spawn")
            q = ctx.Queue()
            engine = ctx.Process(target=_engine_core_proc, args=(kwargs, q),
                                 name="EngineCore_DP0")
            engine.start()
            out["processes"] = q.get(timeout=600)
            engine.join(timeout=120)
            out["api_server_pid"] = os.getpid()
            out["engine_pid"] = engine.pid
            out["api_server_threads"] = len(os.listdir("/proc/self/task"))
            out["worker_imported_in_api_server"] = (
                "vllm.v1.worker.gpu_worker" in sys.modules)
        else:
            out["processes"] = run_engine(**kwargs)
    text = json.dumps(out)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print("workload done: %d process(es), %d steps each"
          % (len(out["processes"]), a.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
