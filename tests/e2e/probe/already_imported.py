"""The target module is imported before the hook installs: it must still be
wrapped, once, with its signature kept. Prints a JSON report.

usage: already_imported.py BUNDLE_DIR WORKLOAD_DIR STEPS
"""
import inspect
import json
import sys

bundle, workload, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, workload)
import run_workload  # noqa: E402  (imports vllm.v1.worker.gpu_worker)
from vllm.v1.worker.gpu_worker import Worker  # noqa: E402

orig = Worker.execute_model
sig = inspect.signature(orig)
sys.path.insert(0, bundle)
import vllm_profiler_probe  # noqa: E402

vllm_profiler_probe.install()
first = Worker.execute_model
vllm_profiler_probe.install()        # A second load ...
sys._vllm_profiler_installed = False
vllm_profiler_probe.install()        # ... even a forced one ...
import importlib  # noqa: E402
vllm_profiler_probe._wrap_module(sys.modules["vllm.v1.worker.gpu_worker"])
report = {
    "wrapped": Worker.execute_model is not orig,
    "wrapped_once": Worker.execute_model is first and
    Worker.execute_model.__wrapped__ is orig,
    "signature_kept": inspect.signature(Worker.execute_model) == sig,
    "name": Worker.execute_model.__name__,
    "doc_kept": Worker.execute_model.__doc__ == orig.__doc__,
    "params": list(inspect.signature(Worker.execute_model).parameters),
}
results, _ = run_workload.run(steps)
report["results"] = results
print(json.dumps(report))
