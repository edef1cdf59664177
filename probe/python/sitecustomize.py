"""vllm-profiler probe hook, loaded by Python at start-up through PYTHONPATH.

The webhook prepends this folder to PYTHONPATH when the container spec sets
one (or the pod asks for the pythonpath hook; otherwise the user-site hook,
usercustomize.py, is used); Python then imports this file as
`sitecustomize`. It installs the probe's import hook (see
vllm_profiler_probe) and then runs the image's own sitecustomize, if one
exists further down sys.path, so the host loses nothing. Nothing here may
raise: any failure is logged once with the prefix "vllm-profiler:".
"""
import os as _os
import sys as _sys


def _vllm_profiler_bootstrap():
    here = _os.path.dirname(_os.path.abspath(__file__))
    try:
        import vllm_profiler_probe
        vllm_profiler_probe.install()
    except Exception as e:  # pragma: no cover - defensive
        try:
            _sys.stderr.write("vllm-profiler: hook not installed: %r\n" % (e,))
        except Exception:
            pass
    try:
        from vllm_profiler_probe import _chain
        _chain.run_next_sitecustomize(here)
    except Exception as e:  # pragma: no cover - defensive
        try:
            _sys.stderr.write(
                "vllm-profiler: the image's own sitecustomize failed: %r\n" % (e,))
        except Exception:
            pass


_vllm_profiler_bootstrap()
del _vllm_profiler_bootstrap
