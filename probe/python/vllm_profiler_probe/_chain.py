"""Runs the sitecustomize that ours shadows (the image's own), if any."""
import importlib.machinery
import importlib.util
import os
import sys

_CHAINED = "_vllm_profiler_chained_sitecustomize"


def run_next_sitecustomize(our_dir):
    if _CHAINED in sys.modules:
        return
    our_dir = os.path.realpath(our_dir)
    rest = []
    for entry in sys.path:
        try:
            real = os.path.realpath(entry or os.getcwd())
        except Exception:
            continue
        if real == our_dir:
            continue
        rest.append(entry)
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None:
        return
    if spec.origin and os.path.realpath(os.path.dirname(spec.origin)) == our_dir:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[_CHAINED] = module
    spec.loader.exec_module(module)
