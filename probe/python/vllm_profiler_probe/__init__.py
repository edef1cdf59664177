"""vllm-profiler probe, Python side.

install() (called by our sitecustomize.py) arranges for the target method
(env VLLM_PROFILER_TARGET, default
"vllm.v1.worker.gpu_worker:Worker.execute_model") to be wrapped when its
module is imported, or at once when it already is. The wrapper marks each
call as a step of the native probe (libvllm_profiler_probe.so, loaded with
ctypes; it decides when captures run and streams them to the collector) and
passes the batch shape of a vLLM SchedulerOutput-like argument.

Rules: the host never sees an exception from us; every problem is logged
once ("vllm-profiler: ..."); nothing is wrapped twice; the wrapped method
keeps its name, docstring and inspect.signature (functools.wraps).
"""
import atexit
import functools
import importlib.abc
import os
import sys

__all__ = ["install", "batch_shape", "native"]

_TARGET_DEFAULT = "vllm.v1.worker.gpu_worker:Worker.execute_model"
_MARK = "__vllm_profiler_wrapped__"


class _State(object):
    installed = False
    native = None          # ctypes CDLL of the core, once loaded
    native_failed = False
    core_file = None
    shim = None
    shim_tried = False
    pid = None
    target = None          # (module, class, method)
    wrapped = False
    logged = set()


_state = _State()


def _quiet():
    return os.environ.get("VLLM_PROFILER_LOG", "info").strip().lower() in (
        "quiet", "off")


def log(message, key=None):
    """Writes one 'vllm-profiler:' line to stderr, once per key."""
    key = key or message
    if key in _state.logged:
        return
    _state.logged.add(key)
    if _quiet():
        return
    try:
        sys.stderr.write("vllm-profiler: %s\n" % (message,))
        sys.stderr.flush()
    except Exception:
        pass


def _enabled():
    v = os.environ.get("VLLM_PROFILER_ENABLED")
    if v is None:
        return True
    s = v.strip().lower()
    if s in ("0", "false", "no", "off"):
        return False
    if s not in ("1", "true", "yes", "on"):
        log("VLLM_PROFILER_ENABLED=%r is not a boolean (1 or 0); using 1" % v)
    return True


def _parse_target(text):
    module, sep, attr = text.partition(":")
    parts = attr.split(".") if attr else []
    if not sep or not module or len(parts) != 2 or not all(parts):
        return None
    return module.strip(), parts[0].strip(), parts[1].strip()


def batch_shape(scheduler_output):
    """(num_requests, num_tokens, num_prefill, num_decode), -1 = unknown.

    Reads what vLLM's v1 SchedulerOutput has: num_scheduled_tokens (dict
    req_id -> tokens), total_num_scheduled_tokens, scheduled_new_reqs
    (prefills), scheduled_cached_reqs. Missing attributes stay -1.
    """
    so = scheduler_output
    n_req = n_tok = n_pre = n_dec = -1
    try:
        per_req = getattr(so, "num_scheduled_tokens", None)
        if isinstance(per_req, dict):
            n_req = len(per_req)
        total = getattr(so, "total_num_scheduled_tokens", None)
        if isinstance(total, int):
            n_tok = total
        elif isinstance(per_req, dict):
            n_tok = int(sum(per_req.values()))
        new = getattr(so, "scheduled_new_reqs", None)
        if new is not None:
            n_pre = len(new)
        cached = getattr(so, "scheduled_cached_reqs", None)
        if cached is not None:
            ids = getattr(cached, "req_ids", cached)
            try:
                n_dec = len(ids)
            except TypeError:
                n_dec = -1
        if n_req < 0 and n_pre >= 0 and n_dec >= 0:
            n_req = n_pre + n_dec
    except Exception:
        pass
    return n_req, n_tok, n_pre, n_dec


def native():
    """The loaded core library, or None (loads it on first use)."""
    if _state.native is not None or _state.native_failed:
        return _state.native
    try:
        from . import _native
        path = _native.core_path()
        lib = _native.load_core(path)
        lib.vp_init(_process_name().encode("utf-8", "replace"),
                    sys.version.split()[0].encode(), None)
        if _state.target is not None:
            lib.vp_set_step_name(
                ("%s.%s" % (_state.target[1], _state.target[2])).encode())
        _state.native = lib
        _state.core_file = path
    except Exception as e:
        _state.native_failed = True
        log("cannot load the probe library (%s); the process runs without "
            "profiling" % (e,), key="load")
    return _state.native


def _load_shim(lib):
    _state.shim_tried = True
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        from . import _native
        version = str(getattr(torch, "__version__", ""))
        # Tests simulate a torch the shim was not built for.
        version = os.environ.get("VLLM_PROFILER_TEST_TORCH_VERSION", version)
        lib.vp_init(None, None, version.encode())
        _state.shim = _native.load_torch_shim(_state.core_file, version, log)
    except Exception as e:
        log("torch shim not loaded (%s); capturing without operator events"
            % (e,), key="shim")


def _flush():
    lib = _state.native
    if lib is not None:
        try:
            lib.vp_shutdown(3000)
        except Exception:
            pass


def _process_name():
    """vLLM names its worker processes (e.g. "VllmWorker-0"): use that name
    when multiprocessing has one, else the script's name."""
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        try:
            name = mp.current_process().name
            if name and name != "MainProcess":
                return name
        except Exception:
            pass
    arg0 = sys.argv[0] if getattr(sys, "argv", None) else ""
    return os.path.basename(arg0) if arg0 and arg0 != "-c" else "python"


def _on_new_process(lib):
    """First step in this process (also after fork)."""
    _state.pid = os.getpid()
    try:
        lib.vp_init(_process_name().encode("utf-8", "replace"), None, None)
    except Exception:
        pass
    mp = sys.modules.get("multiprocessing")
    if mp is not None:
        # multiprocessing children leave through os._exit (no atexit): its
        # own exit hook runs Finalize callbacks, so flush there too.
        try:
            from multiprocessing import util
            util.Finalize(None, _flush, exitpriority=-100)
        except Exception:
            pass


def _step_begin(args, kwargs):
    lib = _state.native
    if _state.pid != os.getpid():
        _on_new_process(lib)
    if not _state.shim_tried:
        _load_shim(lib)
    step = lib.vp_step_begin()
    if step > 0 and lib.vp_is_capturing():
        so = args[1] if len(args) > 1 else kwargs.get("scheduler_output")
        if so is not None:
            lib.vp_step_annotate(*batch_shape(so))


def _make_wrapper(fn):
    @functools.wraps(fn)
    def execute_model_profiled(*args, **kwargs):
        if _state.native is None:
            return fn(*args, **kwargs)
        try:
            _step_begin(args, kwargs)
        except Exception as e:
            log("step hook failed (%r); profiling stops for this process" % (e,),
                key="step")
            _state.native = None
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        finally:
            try:
                _state.native.vp_step_end()
            except Exception:
                pass

    setattr(execute_model_profiled, _MARK, True)
    return execute_model_profiled


def _wrap_module(module):
    try:
        _, cls_name, meth_name = _state.target
        cls = getattr(module, cls_name, None)
        if cls is None:
            log("target class %s not found in module %s; nothing profiled"
                % (cls_name, module.__name__))
            return
        fn = cls.__dict__.get(meth_name)
        if fn is None:
            log("target method %s.%s not found in module %s; nothing profiled"
                % (cls_name, meth_name, module.__name__))
            return
        if getattr(fn, _MARK, False):
            return
        if not callable(fn):
            log("target %s.%s is not a function; nothing profiled"
                % (cls_name, meth_name))
            return
        if native() is None:
            return
        setattr(cls, meth_name, _make_wrapper(fn))
        _state.wrapped = True
    except Exception as e:
        log("could not wrap the target (%r); the process runs unprofiled"
            % (e,), key="wrap")


class _WrappingLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        create = getattr(self._loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module):
        self._loader.exec_module(module)
        _wrap_module(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Wraps the target when its module is imported (the seed's hook)."""

    def __init__(self, module):
        self.module = module

    def find_spec(self, fullname, path, target=None):
        if fullname != self.module:
            return None
        try:
            for finder in sys.meta_path:
                if finder is self or isinstance(finder, _Finder):
                    continue
                find = getattr(finder, "find_spec", None)
                if find is None:
                    continue
                spec = find(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
            if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            spec.loader = _WrappingLoader(spec.loader)
            return spec
        except Exception as e:
            log("import hook failed (%r); %s is not profiled" % (e, fullname),
                key="finder")
            return None


def _at_exit():
    if not _state.wrapped and _state.target is not None and \
            _state.target[0] not in sys.modules:
        if os.environ.get("VLLM_PROFILER_TARGET"):
            log("target module %s was never imported; nothing was profiled "
                "(check VLLM_PROFILER_TARGET)" % _state.target[0])
    _flush()


def install():
    """Installs the hook once per process; never raises."""
    try:
        if getattr(sys, "_vllm_profiler_installed", False):
            return
        sys._vllm_profiler_installed = True
        _state.installed = True
        if not _enabled():
            return
        text = os.environ.get("VLLM_PROFILER_TARGET") or _TARGET_DEFAULT
        target = _parse_target(text)
        if target is None:
            log("VLLM_PROFILER_TARGET=%r is not 'module:Class.method'; "
                "nothing profiled" % text)
            return
        _state.target = target
        atexit.register(_at_exit)
        module = sys.modules.get(target[0])
        if module is not None:
            _wrap_module(module)
        if not any(isinstance(f, _Finder) for f in sys.meta_path):
            sys.meta_path.insert(0, _Finder(target[0]))
    except Exception as e:
        log("hook not installed (%r); the process runs unprofiled" % (e,),
            key="install")
