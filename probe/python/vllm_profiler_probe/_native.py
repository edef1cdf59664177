"""ctypes bindings of the probe's C ABI (probe/include/vllm_profiler/probe.h)
and loading of the torch shim."""
import ctypes
import os
import re
import struct
import time

from . import _schedule

CORE_NAME = "libvllm_profiler_probe.so"
SHIM_NAME = "libvllm_profiler_torch.so"


class Stats(ctypes.Structure):
    _fields_ = [
        ("events_recorded", ctypes.c_uint64),
        ("events_dropped_buffer_full", ctypes.c_uint64),
        ("events_dropped_send", ctypes.c_uint64),
        ("captures_started", ctypes.c_uint64),
        ("captures_finished", ctypes.c_uint64),
        ("batches_sent", ctypes.c_uint64),
        ("connected", ctypes.c_int32),
        ("enabled", ctypes.c_int32),
    ]


class TensorMeta(ctypes.Structure):
    """vp_tensor_meta of probe.h."""
    _fields_ = [("dims", ctypes.POINTER(ctypes.c_int64)),
                ("ndim", ctypes.c_int32),
                ("dtype", ctypes.c_char_p)]


# int32_t gate(char* reason, int32_t reason_len) (probe.h vp_gpu_gate).
GpuGate = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int32)


def default_lib_dir():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def core_path():
    path = os.environ.get("VLLM_PROFILER_LIB")
    if path:
        return path
    return os.path.join(default_lib_dir(), CORE_NAME)


def load_core(path):
    lib = ctypes.CDLL(path)  # RTLD_LOCAL: nothing of ours leaks into globals.
    i32, i64, u32, u64 = ctypes.c_int32, ctypes.c_int64, ctypes.c_uint32, ctypes.c_uint64
    cp = ctypes.c_char_p
    sig = {
        "vp_version": (cp, []),
        "vp_abi_version": (i32, []),
        "vp_init": (i32, [cp, cp, cp]),
        "vp_step_begin": (i64, []),
        "vp_step_end": (None, []),
        "vp_step_annotate": (None, [i64, i64, i64, i64]),
        "vp_set_step_name": (None, [cp]),
        "vp_is_capturing": (i32, []),
        "vp_record_shapes": (i32, []),
        "vp_instant": (None, [cp]),
        "vp_counter": (None, [cp, ctypes.c_double]),
        "vp_set_thread_name": (None, [cp]),
        "vp_request_capture": (i32, [u32, u32, i32]),
        "vp_shutdown": (None, [u32]),
        "vp_get_stats": (None, [ctypes.POINTER(Stats)]),
        # ABI 2: the step model and the probe's state.
        "vp_step_begin_ex": (i64, []),
        "vp_step_end_error": (None, [cp]),
        "vp_step_arg_int": (None, [cp, i64]),
        "vp_step_arg_str": (None, [cp, cp]),
        "vp_span_begin": (u64, [cp]),
        "vp_span_end": (None, [u64]),
        "vp_set_identity": (None, [i32, i32, i32]),
        "vp_set_idle_reason": (None, [cp]),
        "vp_set_op_source": (None, [cp, cp]),
        "vp_add_wrapped_target": (None, [cp]),
        "vp_set_gpu_gate": (None, [GpuGate]),
        # ABI 3: the flight recorder.
        "vp_flight_level": (i32, []),
        "vp_step_batch": (None, [i64, i64, i64, i64, i64, i64, i64, cp, i64]),
        "vp_step_mark": (None, [i32]),
        # ABI 4: the flight recorder's step through memory (_steps.py).
        # argtypes None: ctypes then converts the one bytes/None argument
        # on its fast path (a typed argument costs about 1,000
        # instructions); callers pass bytes or None only.
        "vp_step_slots": (ctypes.c_void_p, []),
        "vp_step_begin_slots": (i64, None),
        "vp_step_end_slots": (None, None),
        # vp_step_begin_read and vp_step_functions are not here: they must
        # keep the GIL (FlightCalls), and a CDLL function releases it.
        "vp_scheduler_reader_available": (i32, []),
        "vp_step_read_request_ids": (cp, []),
        # The torch-profiler fallback (_fallback.py).
        "vp_external_ops_expect": (i64, []),
        "vp_op_complete": (None, [i64, cp, i64, i64, i64, u32,
                                  ctypes.POINTER(TensorMeta), i32]),
        "vp_external_ops_done": (None, [i64]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        if args is not None:
            fn.argtypes = args
    return lib


def step_slots(lib):
    """The core's VP_STEP_SLOTS int64 step slots as a writable ctypes array
    (struct.pack_into writes them)."""
    return (ctypes.c_int64 * STEP_SLOTS).from_address(lib.vp_step_slots())


class FlightCalls(object):
    """The flight recorder's per-step calls (_steps.py):
    begin(scheduler_output) -> vp_step_begin_ex's value, or -1 when the
    object is not of today's shape (no step begun: call begin_slots);
    begin_slots(scheduler_output) reads it in Python; mark_execute_end(),
    mark_sample_begin() and end() keep the step's phases.

    Where the core can, they are its builtin Python functions
    (vp_step_functions: the batch read in C, no ctypes call per step);
    otherwise (a free-threaded Python, a process without the CPython
    functions) Python versions over the core's step slots."""

    def __init__(self, lib):
        slots = step_slots(lib)
        pack_one = struct.Struct("q").pack_into
        mono = time.monotonic_ns
        begin_slots = lib.vp_step_begin_slots
        end_slots = lib.vp_step_end_slots

        def begin_python(so):
            return begin_slots(_schedule.pack_batch(slots, so))

        self.begin_slots = begin_python
        self.builtin = False
        fns = _step_functions(lib)
        if fns is not None:
            self.begin, self.mark_execute_end, self.mark_sample_begin, \
                self.end = fns
            self.builtin = True
            return
        self.begin = begin_python
        self.mark_execute_end = lambda: pack_one(slots, SLOT_MARKS_OFFSET,
                                                 mono())
        self.mark_sample_begin = lambda: pack_one(
            slots, SLOT_MARKS_OFFSET + 8, mono())
        self.end = lambda: end_slots(None)


def _step_functions(lib):
    """vp_step_functions' tuple, or None where it must not be used: a
    free-threaded Python, or a process without the CPython functions."""
    try:
        import sysconfig
        if sysconfig.get_config_var("Py_GIL_DISABLED"):
            return None
        if lib.vp_scheduler_reader_available() != 1:
            return None
        make = ctypes.PyDLL(lib._name).vp_step_functions
        make.restype = ctypes.py_object
        make.argtypes = []
        fns = make()
        return tuple(fns) if isinstance(fns, tuple) and len(fns) == 4 \
            else None
    except Exception:
        return None


# probe.h: VP_STEP_SLOTS and the slots' offsets in bytes.
STEP_SLOTS = 16
SLOT_BATCH_OFFSET = 0          # Slots 0-7: the batch, request_ids_total.
SLOT_MARKS_OFFSET = 8 * 8      # Slots 8-9: the two mark times.


def _version_tuple(text):
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        return None
    return tuple(int(x or 0) for x in m.groups())


def _shim_path(core_file):
    return os.environ.get("VLLM_PROFILER_TORCH_SHIM") or os.path.join(
        os.path.dirname(os.path.abspath(core_file)), SHIM_NAME)


def _open_shim(path, torch_version):
    """(shim, None) when `path` loads and was built for this torch, else
    (None, why) with a complete sentence for the log."""
    if not os.path.exists(path):
        return None, "torch shim %s not found" % path
    try:
        shim = ctypes.CDLL(path)
    except OSError as e:
        return None, "cannot load the torch shim (%s)" % (e,)
    shim.vp_torch_shim_built_for.restype = ctypes.c_char_p
    built = (shim.vp_torch_shim_built_for() or b"").decode("utf-8", "replace")
    if _version_tuple(built) != _version_tuple(torch_version):
        return None, ("torch shim was built for torch %s but this process "
                      "runs torch %s" % (built, torch_version))
    return shim, None


def _init_shim(shim, core_file):
    shim.vp_torch_shim_init.restype = ctypes.c_int32
    shim.vp_torch_shim_init.argtypes = [ctypes.c_char_p]
    if shim.vp_torch_shim_init(os.fsencode(core_file)) != 0:
        return None
    return shim


def load_torch_shim(core_file, torch_version, log, path=None):
    """Loads the shim at `path` (default: next to the core, or
    VLLM_PROFILER_TORCH_SHIM) when it was built for this torch.

    Returns the shim or None (mismatch or failure, logged once by `log`).
    """
    shim, why = _open_shim(path or _shim_path(core_file), torch_version)
    if shim is None:
        hint = (" (rebuild it with probe/torch/build_shim.sh)"
                if "was built for" in why else "")
        log("%s; capturing steps without operator events%s" % (why, hint))
        return None
    return _init_shim(shim, core_file)


def load_or_build_torch_shim(core_file, torch_module, torch_version, log,
                             on_built,
                             failure_note="capturing steps without operator "
                             "events", on_start=None):
    """The bundled shim when it fits this torch; else builds one in-process.

    Returns the bundled shim (connected to the core), or None. When it
    returns None after starting a build (_shim_build.start, a daemon thread
    at nice 19), on_built(shim_or_None, info) is called later on that
    thread, with the built shim already connected to the core (it records
    from the next capture start) and info as _shim_build.build_or_load
    documents it. Exactly one log line per outcome; `failure_note` says
    what happens without a shim (e.g. the torch-profiler fallback);
    on_start() is called just before a build starts. An
    explicit VLLM_PROFILER_TORCH_SHIM is loaded as given, never rebuilt.
    """
    if os.environ.get("VLLM_PROFILER_TORCH_SHIM"):
        return load_torch_shim(core_file, torch_version, log)
    shim, why = _open_shim(_shim_path(core_file), torch_version)
    if shim is not None:
        return _init_shim(shim, core_file)
    from . import _shim_build
    probe_dir = os.path.dirname(os.path.abspath(core_file))
    cannot = _shim_build.precheck(torch_module, probe_dir, torch_version)
    if cannot is not None:
        log("%s; %s (no shim build: %s)" % (why, failure_note, cannot))
        return None

    def done(path, info):
        built = None
        if path is not None:
            built, _ = _open_shim(path, torch_version)
            if built is not None:
                built = _init_shim(built, core_file)
        on_built(built, info)

    if on_start is not None:
        on_start()
    _shim_build.start(torch_module, probe_dir, log, done,
                      torch_version=torch_version, failure_note=failure_note)
    return None
