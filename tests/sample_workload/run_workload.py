#!/usr/bin/env python3
"""Drives the sample vLLM-shaped worker: N steps of execute_model.

  run_workload.py --steps 200 [--spawn 2 | --fork 2] [--out results.json]
                  [--sleep-ms 0]

Builds SchedulerOutput-like objects (a mix of prefill and decode requests)
and prints/writes the per-step results, so runs with and without the probe
can be compared. Imports nothing from the probe.
"""
import argparse
import json
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vllm.v1.worker.gpu_worker import Worker  # noqa: E402


class NewRequestData:
    def __init__(self, req_id, prompt_len):
        self.req_id = req_id
        self.prompt_token_ids = list(range(prompt_len))


class CachedRequestData:
    def __init__(self, req_ids):
        self.req_ids = req_ids


class SchedulerOutput:
    """The attributes of vllm.v1.core.sched.output.SchedulerOutput we use."""

    def __init__(self, step):
        n_new = 1 if step % 10 == 0 else 0
        decode_ids = ["req-%d" % i for i in range(4)]
        new = [NewRequestData("new-%d" % step, 32)] if n_new else []
        self.scheduled_new_reqs = new
        self.scheduled_cached_reqs = CachedRequestData(decode_ids)
        self.num_scheduled_tokens = {r: 1 for r in decode_ids}
        for r in new:
            self.num_scheduled_tokens[r.req_id] = len(r.prompt_token_ids)
        self.total_num_scheduled_tokens = sum(self.num_scheduled_tokens.values())


def run(steps, sleep_ms=0.0, rank=0):
    worker = Worker(seed=rank)
    results = []
    times = []
    for step in range(1, steps + 1):
        so = SchedulerOutput(step)
        t0 = time.perf_counter()
        results.append(worker.execute_model(so))
        times.append(time.perf_counter() - t0)
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)
    return results, times


def _child(steps, sleep_ms, rank, queue):
    os.environ["RANK"] = str(rank)
    results, _ = run(steps, sleep_ms, rank)
    queue.put((rank, os.getpid(), results))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--spawn", type=int, default=0)
    p.add_argument("--fork", type=int, default=0)
    p.add_argument("--sleep-ms", type=float, default=0.0)
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    if a.spawn or a.fork:
        ctx = multiprocessing.get_context("spawn" if a.spawn else "fork")
        n = a.spawn or a.fork
        q = ctx.Queue()
        procs = [ctx.Process(target=_child, args=(a.steps, a.sleep_ms, r, q))
                 for r in range(n)]
        for pr in procs:
            pr.start()
        got = sorted(q.get(timeout=600) for _ in procs)
        for pr in procs:
            pr.join(timeout=120)
        out = {"processes": [{"rank": r, "pid": pid, "results": res}
                             for r, pid, res in got],
               "exitcodes": [pr.exitcode for pr in procs]}
    else:
        results, times = run(a.steps, a.sleep_ms)
        out = {"processes": [{"rank": 0, "pid": os.getpid(),
                              "results": results}],
               "mean_step_ms": 1000 * sum(times) / len(times)}
    text = json.dumps(out)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    print("workload done: %d process(es), %d steps each"
          % (len(out["processes"]), a.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
