"""vllm-profiler probe hook, loaded by Python at start-up through the user
site: the webhook sets PYTHONUSERBASE=<probe folder>, and the bundle ships
this file as <probe folder>/lib/python3.X/site-packages/usercustomize.py for
3.8 to 3.14. Python imports `usercustomize` after `sitecustomize` whenever
the user site is enabled, so the image's PYTHONPATH (and its sitecustomize)
stay untouched.

The user site is disabled, and this file never runs, in a virtualenv
created without system site-packages, under `python -s` or `-I`, with
PYTHONNOUSERSITE set, and in set-uid processes; use the PYTHONPATH hook
there (webhook annotation vllm-profiler.llm-d.ai/python-hook: pythonpath).

It installs the probe's import hook exactly as our sitecustomize does, then
runs the usercustomize this one shadows, if any. sys.path is not changed:
the probe package is loaded from the probe folder by file location. Nothing
here may raise: any failure is logged once with the prefix "vllm-profiler:".
"""
import os as _os
import sys as _sys


def _vllm_profiler_bootstrap():
    here = _os.path.dirname(_os.path.abspath(__file__))
    # <probe>/lib/python3.X/site-packages -> <probe>
    probe_dir = _os.path.dirname(_os.path.dirname(_os.path.dirname(here)))
    try:
        probe = _sys.modules.get("vllm_profiler_probe")
        if probe is None:
            import importlib.util
            pkg = _os.path.join(probe_dir, "vllm_profiler_probe")
            spec = importlib.util.spec_from_file_location(
                "vllm_profiler_probe", _os.path.join(pkg, "__init__.py"),
                submodule_search_locations=[pkg])
            probe = importlib.util.module_from_spec(spec)
            _sys.modules["vllm_profiler_probe"] = probe
            try:
                spec.loader.exec_module(probe)
            except BaseException:
                del _sys.modules["vllm_profiler_probe"]
                raise
        probe.install()
    except Exception as e:  # pragma: no cover - defensive
        try:
            _sys.stderr.write("vllm-profiler: hook not installed: %r\n" % (e,))
        except Exception:
            pass
    try:
        from vllm_profiler_probe import _chain
        _chain.run_next(here, "usercustomize")
    except Exception as e:  # pragma: no cover - defensive
        try:
            _sys.stderr.write(
                "vllm-profiler: the image's own usercustomize failed: %r\n"
                % (e,))
        except Exception:
            pass


_vllm_profiler_bootstrap()
del _vllm_profiler_bootstrap
