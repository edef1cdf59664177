"""In-process torch shim build time against the torch of this interpreter,
with the same compile run by hand as the baseline, interleaved.

usage: shim_build_bench.py PROBE_DIR [--runs 3]

PROBE_DIR is an unpacked probe bundle (it holds torch_shim/). Each run
builds into a fresh cache folder through _shim_build.build_or_load (nice 19,
key, checksum, dlopen check included), then loads it back from that cache,
then runs the plan's compiler command directly (no nice, no cache) as the
baseline. Prints one line per run and the medians as a Markdown row.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("probe_dir")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, a.probe_dir)
    import torch
    from vllm_profiler_probe import _shim_build

    built, hit, hand = [], [], []
    for i in range(a.runs):
        tmp = tempfile.mkdtemp(prefix="shim-bench-")
        try:
            env = dict(os.environ, VLLM_PROFILER_CACHE_DIR=tmp)
            _, info = _shim_build.build_or_load(torch, a.probe_dir,
                                                lambda m: None, env=env)
            assert info["outcome"] == "built", info
            built.append(info["seconds"])
            _, again = _shim_build.build_or_load(torch, a.probe_dir,
                                                 lambda m: None, env=env)
            assert again["outcome"] == "cached", again
            hit.append(again["seconds"])
            plan = _shim_build._Plan(torch, a.probe_dir, torch.__version__,
                                     env)
            t0 = time.monotonic()
            subprocess.run(plan.argv(os.path.join(tmp, "by_hand.so")),
                           check=True)
            hand.append(time.monotonic() - t0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print("run %d: in-process build %.1f s, cache hit %.3f s, by hand "
              "%.1f s (load %.1f)" % (i + 1, built[-1], hit[-1], hand[-1],
                                      os.getloadavg()[0]))
    print("| torch %s, %s | %.1f s | %.1f s | %.2fx | %.0f ms |"
          % (torch.__version__, info["compiler"].split(" (")[0],
             statistics.median(built), statistics.median(hand),
             statistics.median(built) / statistics.median(hand),
             statistics.median(hit) * 1000))


if __name__ == "__main__":
    main()
