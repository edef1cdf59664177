"""Runs the sitecustomize or usercustomize that ours shadows (the image's
own), if any."""
import importlib.machinery
import importlib.util
import os
import sys

_CHAINED = "_vllm_profiler_chained_"


def run_next(our_dir, name):
    """Executes the first module `name` on sys.path outside our_dir, once per
    process, as sys.modules["_vllm_profiler_chained_<name>"]."""
    key = _CHAINED + name
    if key in sys.modules:
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
    spec = importlib.machinery.PathFinder.find_spec(name, rest)
    if spec is None or spec.loader is None:
        return
    if spec.origin and os.path.realpath(os.path.dirname(spec.origin)) == our_dir:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)


def run_next_sitecustomize(our_dir):
    run_next(our_dir, "sitecustomize")
