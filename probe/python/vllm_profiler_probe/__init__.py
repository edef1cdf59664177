"""vllm-profiler probe, Python side.

install() (called by our sitecustomize.py) arranges for the step methods of
vLLM (env VLLM_PROFILER_TARGET, default: see DEFAULT_TARGETS) to be wrapped
when their module is imported, or at once when it already is. The wrappers
mark engine steps for the native probe (libvllm_profiler_probe.so, loaded
with ctypes; it decides when captures run and streams them to the collector)
following the step model of _steps.py, and pass the batch read from vLLM's
SchedulerOutput (_schedule.py).

Rules: the host never sees an exception from us; every problem is logged
once ("vllm-profiler: ..."); nothing is wrapped twice; wrapped methods keep
their name, docstring and inspect.signature (functools.wraps). A process
that never imports a target (vLLM's API server) never loads the library:
no thread, no connection.
"""
import atexit
import importlib.abc
import os
import sys

from . import _schedule
from . import _steps

__all__ = ["install", "batch_shape", "native", "DEFAULT_TARGETS"]

# One engine step of every vLLM shape: the worker (multiproc and uniproc
# executors) and the model runners it calls (which Ray's execute_model_ray
# and other direct callers reach without the worker). Nested calls belong
# to the outer one, so wrapping both never counts a step twice.
DEFAULT_TARGETS = (
    "vllm.v1.worker.gpu_worker:Worker.execute_model+sample_tokens,"
    "vllm.v1.worker.gpu_model_runner:GPUModelRunner.execute_model+"
    "sample_tokens,"
    "vllm.v1.worker.gpu.model_runner:GPUModelRunner.execute_model+"
    "sample_tokens")

# vLLM's V0 engine (0.6 to 0.10 with VLLM_USE_V1=0) steps through this
# method and never imports the V1 worker: seeing it called means the probe
# has nothing to record in this process, which must be said, not left silent.
V0_WORKER = ("vllm.worker.worker_base", "LocalOrDistributedWorkerBase",
             "execute_model")

batch_shape = _schedule.batch_shape


class Target(object):
    """One `module:Class.method[+method2]` entry of VLLM_PROFILER_TARGET."""

    def __init__(self, module, cls, methods, explicit):
        self.module = module
        self.cls = cls
        self.methods = methods      # (execute[, sample])
        self.explicit = explicit    # Named by the user: log what is missing.
        self.wrapped = False

    def text(self):
        return "%s:%s.%s" % (self.module, self.cls, "+".join(self.methods))


class _State(object):
    installed = False
    native = None          # ctypes CDLL of the core, once loaded
    native_failed = False
    core_file = None
    shim = None
    shim_tried = False
    shim_build = None      # _shim_build's info dict, once a build ended
    shim_building = False  # A build thread runs
    fallback = None        # _fallback.TorchProfilerFallback when in use
    pid = None
    targets = ()           # Target objects
    v0_seen = False
    logged = set()


_state = _State()
_model = _steps.StepModel()


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
    """(module, class, method) of 'module:Class.method', else None (kept for
    callers of the single-method form)."""
    t = _parse_one(text, True)
    if t is None or len(t.methods) != 1:
        return None
    return t.module, t.cls, t.methods[0]


def _parse_one(text, explicit):
    module, sep, attr = text.strip().partition(":")
    parts = attr.split(".") if attr else []
    if not sep or not module or len(parts) != 2 or not all(parts):
        return None
    methods = tuple(m.strip() for m in parts[1].split("+"))
    if not 1 <= len(methods) <= 2 or not all(methods):
        return None
    return Target(module.strip(), parts[0].strip(), methods, explicit)


def parse_targets(text, explicit=True):
    """Targets of a comma-separated VLLM_PROFILER_TARGET, or None if any
    entry is malformed."""
    out = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        t = _parse_one(entry, explicit)
        if t is None:
            return None
        out.append(t)
    return out or None


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
        # The bundled shim, else one built in-process: it arrives later on
        # the build thread (_on_shim_built) and records from the next
        # capture start.
        fallback_ok = _fallback_possible(torch)
        _state.shim = _native.load_or_build_torch_shim(
            _state.core_file, torch, version, log, _on_shim_built,
            failure_note=("operator events come from torch's profiler"
                          if fallback_ok else
                          "capturing steps without operator events"),
            on_start=lambda: _building(lib))
        if _state.shim is not None:
            _set_op_source(lib, "bundled shim", "torch %s" % version)
            return
        fallback = fallback_ok and _start_fallback(lib, torch)
        if _state.shim_building:
            _set_op_source(lib, "torch profiler" if fallback else "off",
                           "the torch shim for torch %s is being built" %
                           version)
        elif _state.shim_build is None:
            _set_op_source(lib, "torch profiler" if fallback else "off",
                           "no torch shim for torch %s can be built here "
                           "(see the log)" % version)
    except Exception as e:
        log("torch shim not loaded (%s); capturing without operator events"
            % (e,), key="shim")
        _set_op_source(lib, "off", "torch shim not loaded: %s" % (e,))


def _set_op_source(lib, source, detail):
    """Names where this process's operator events come from (trace
    metadata, vpctl status)."""
    try:
        lib.vp_set_op_source(source.encode(), detail.encode("utf-8", "replace"))
    except Exception:
        pass


def _building(lib):
    _state.shim_building = True


def _fallback_possible(torch):
    """Whether torch's profiler can stand in for a missing shim here
    (VLLM_PROFILER_TORCH_FALLBACK=0 turns it off)."""
    if os.environ.get("VLLM_PROFILER_TORCH_FALLBACK", "1").strip().lower() in (
            "0", "false", "no", "off"):
        return False
    try:
        from . import _fallback
        why = _fallback.unsupported_reason(torch)
    except Exception as e:
        why = repr(e)
    if why is not None:
        log("torch's profiler cannot stand in for the shim (%s)" % why,
            key="fallback")
        return False
    return True


def _start_fallback(lib, torch):
    """Operator events through torch's profiler until (unless) a shim
    exists; returns whether it is on."""
    try:
        from . import _fallback
        _state.fallback = _fallback.TorchProfilerFallback(
            lib, torch, log, record_shapes=lambda: lib.vp_record_shapes() == 1,
            usable=lambda: _state.shim is None)
        _model.capture_hooks = _state.fallback
        return True
    except Exception as e:
        log("torch's profiler cannot stand in for the shim (%r)" % (e,),
            key="fallback")
        return False


def _on_shim_built(shim, info):
    """Called once on the shim build thread (_shim_build.start)."""
    _state.shim_build = info
    _state.shim_building = False
    if shim is not None:
        _state.shim = shim
    lib = _state.native
    if lib is None:
        return
    line = info.get("line") or info.get("reason") or ""
    if shim is not None:
        _set_op_source(lib, "built shim", line)
    else:
        _set_op_source(lib, "torch profiler" if _state.fallback else "off",
                       line)


def _flush():
    lib = _state.native
    if lib is not None:
        try:
            _model.close_pending()
            if _state.fallback is not None:
                _state.fallback.wait(10.0)
            lib.vp_shutdown(3000)
        except Exception:
            pass


def _process_name():
    """vLLM names its processes ("EngineCore_DP0", "VllmWorker-1"): use that
    name when multiprocessing has one, else the script's name."""
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


def _int_or(value, default=-1):
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def vllm_identity(obj):
    """(rank, local_rank, world_size) of this process in vLLM, -1 = unknown:
    from the worker object (Worker.rank, .local_rank, .parallel_config), else
    from vllm.distributed.parallel_state's world group when it exists."""
    rank = _int_or(getattr(obj, "rank", None))
    local_rank = _int_or(getattr(obj, "local_rank", None))
    world = -1
    pc = getattr(obj, "parallel_config", None)
    if pc is not None:
        world = _int_or(getattr(pc, "world_size", None))
    ps = sys.modules.get("vllm.distributed.parallel_state")
    group = getattr(ps, "_WORLD", None) if ps is not None else None
    if group is not None:
        if rank < 0:
            rank = _int_or(getattr(group, "rank", None))
        if local_rank < 0:
            local_rank = _int_or(getattr(group, "local_rank", None))
        if world < 0:
            world = _int_or(getattr(group, "world_size", None))
    return rank, local_rank, world


def _first_step(lib, obj):
    """Before the first step of this process (also after fork): names the
    process, tells vLLM's identity, loads the torch shim."""
    _state.pid = os.getpid()
    try:
        lib.vp_init(_process_name().encode("utf-8", "replace"), None, None)
        rank, local_rank, world = vllm_identity(obj)
        if rank >= 0 or local_rank >= 0 or world >= 0:
            lib.vp_set_identity(rank, local_rank, world)
        for t in _state.targets:
            if t.wrapped:
                lib.vp_add_wrapped_target(t.text().encode())
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
    if not _state.shim_tried:
        _load_shim(lib)
    _install_gpu_gate(lib)


def other_profiler():
    """Why CUPTI belongs to someone else right now, or None: torch's
    profiler (vLLM's /start_profile, a user's torch.profiler) collects CUDA
    activity through kineto, and taking CUPTI under it would steal its
    buffers. Detected by feature, not version: the global flag of torch >=
    2.0's autograd profiler, then the calling thread's profiler state."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        prof = getattr(getattr(torch, "autograd", None), "profiler", None)
        if getattr(prof, "_is_profiler_enabled", False) is True:
            return "torch.profiler is running in this process"
        autograd_c = getattr(getattr(torch, "_C", None), "_autograd", None)
        enabled = getattr(autograd_c, "_profiler_enabled", None)
        if enabled is not None and enabled():
            return "torch.profiler is running on this thread"
    except Exception:
        return None
    return None


def _gpu_gate(buf, size):
    """vp_gpu_gate: 1 = the capture may take CUPTI; 0 = leave it (reason in
    buf). Runs on the step thread at capture start; never raises."""
    try:
        reason = other_profiler()
        if reason is None:
            return 1
        import ctypes
        data = (reason + "; this capture records no GPU activity").encode()
        data = data[:max(0, size - 1)]
        ctypes.memmove(buf, data, len(data))
        return 0
    except Exception:
        return 1


_gate = None  # Keeps the ctypes callback alive.


def _install_gpu_gate(lib):
    global _gate
    try:
        from . import _native
        if _gate is None:
            _gate = _native.GpuGate(_gpu_gate)
        lib.vp_set_gpu_gate(_gate)
    except Exception as e:
        log("cannot watch for other profilers (%r)" % (e,), key="gate")


def _after_fork_in_child():
    _model.after_fork_in_child()
    if _state.shim is None:
        # A build running in the parent has no thread here: try again (the
        # child waits on the parent's build lock and loads its result).
        _state.shim_tried = False
        _state.shim_building = False


def _hook_failed(e):
    log("step hook failed (%r); profiling stops for this process" % (e,),
        key="step")


def _wrap_target(module, target):
    """Wraps target's methods on module's class; logs what is missing when
    the user named the target."""
    cls = getattr(module, target.cls, None)
    if cls is None:
        if target.explicit:
            log("target class %s not found in module %s; nothing profiled"
                % (target.cls, module.__name__))
        return
    execute = cls.__dict__.get(target.methods[0])
    if execute is None:
        if target.explicit:
            log("target method %s.%s not found in module %s; nothing profiled"
                % (target.cls, target.methods[0], module.__name__))
        return
    if getattr(execute, _steps._MARK, False):
        return
    if not callable(execute):
        log("target %s.%s is not a function; nothing profiled"
            % (target.cls, target.methods[0]))
        return
    sample = None
    if len(target.methods) == 2:
        sample = cls.__dict__.get(target.methods[1])
        if sample is not None and not callable(sample):
            sample = None
    if native() is None:
        return
    if not _model.dead:
        _model.lib = _state.native
    paired = sample is not None
    # The single-call shape keeps the step's name of old ("Worker.execute_model").
    step_name = ("%s.%s" % (target.cls, "+".join(target.methods)) if paired
                 else "%s.%s" % (target.cls, target.methods[0])).encode()
    setattr(cls, target.methods[0],
            _steps.make_execute_wrapper(_model, execute, step_name, paired))
    if paired and not getattr(sample, _steps._MARK, False):
        setattr(cls, target.methods[1],
                _steps.make_sample_wrapper(_model, sample))
    target.wrapped = True


def _wrap_module(module):
    try:
        for target in _state.targets:
            if target.module == module.__name__ and not target.wrapped:
                _wrap_target(module, target)
        if module.__name__ == V0_WORKER[0]:
            _watch_v0(module)
    except Exception as e:
        log("could not wrap the target (%r); the process runs unprofiled"
            % (e,), key="wrap")


def _watch_v0(module):
    """Reports the probe idle, once, when vLLM's V0 engine steps here."""
    cls = getattr(module, V0_WORKER[1], None)
    fn = cls.__dict__.get(V0_WORKER[2]) if cls is not None else None
    if fn is None or not callable(fn) or getattr(fn, _steps._MARK, False):
        return

    def execute_model_v0(self, *args, **kwargs):
        setattr(cls, V0_WORKER[2], fn)  # Once is enough: unwrap.
        # Idle only if no V1 step ever ran here (_first_step sets pid).
        if not _state.v0_seen and _state.pid is None:
            _state.v0_seen = True
            _report_idle(
                "vLLM's V0 engine runs here (%s.%s): the target %s was never "
                "imported, so no step is recorded; profile vLLM's V1 engine "
                "(VLLM_USE_V1=1, vLLM >= 0.8)" % (
                    V0_WORKER[1], V0_WORKER[2],
                    _state.targets[0].module if _state.targets else "?"))
        return fn(self, *args, **kwargs)

    setattr(execute_model_v0, _steps._MARK, True)
    setattr(cls, V0_WORKER[2], execute_model_v0)


def _report_idle(reason):
    log("idle: %s" % reason, key="idle")
    lib = native()
    if lib is None:
        return
    try:
        lib.vp_init(_process_name().encode("utf-8", "replace"), None, None)
        lib.vp_set_idle_reason(reason.encode("utf-8", "replace"))
    except Exception:
        pass


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
    """Wraps the targets when their modules are imported: finds the module's
    spec with the other finders and hands it a loader that wraps the
    targets right after the module's code has run."""

    def __init__(self, modules):
        self.modules = frozenset(modules)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.modules:
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
    explicit = [t for t in _state.targets if t.explicit]
    if explicit and not any(t.wrapped for t in _state.targets):
        missing = [t.module for t in explicit if t.module not in sys.modules]
        if len(missing) == len(explicit):
            log("target module %s was never imported; nothing was profiled "
                "(check VLLM_PROFILER_TARGET)" % ", ".join(missing))
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
        text = os.environ.get("VLLM_PROFILER_TARGET")
        targets = parse_targets(text or DEFAULT_TARGETS, explicit=bool(text))
        if targets is None:
            log("VLLM_PROFILER_TARGET=%r is not 'module:Class.method' (or "
                "'module:Class.execute+sample', comma-separated); nothing "
                "profiled" % text)
            return
        _state.targets = targets
        _model.on_first_step = _first_step
        _model.on_error = _hook_failed
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
        atexit.register(_at_exit)
        modules = [t.module for t in targets] + [V0_WORKER[0]]
        for name in modules:
            module = sys.modules.get(name)
            if module is not None:
                _wrap_module(module)
        if not any(isinstance(f, _Finder) for f in sys.meta_path):
            sys.meta_path.insert(0, _Finder(modules))
    except Exception as e:
        log("hook not installed (%r); the process runs unprofiled" % (e,),
            key="install")
