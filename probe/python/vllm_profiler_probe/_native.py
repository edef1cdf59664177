"""ctypes bindings of the probe's C ABI (probe/include/vllm_profiler/probe.h)
and loading of the torch shim."""
import ctypes
import os
import re

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
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    return lib


def _version_tuple(text):
    m = re.match(r"\s*(\d+)\.(\d+)(?:\.(\d+))?", text or "")
    if not m:
        return None
    return tuple(int(x or 0) for x in m.groups())


def load_torch_shim(core_file, torch_version, log):
    """Loads the shim next to the core when it was built for this torch.

    Returns the shim or None (mismatch or failure, logged once by `log`).
    """
    path = os.environ.get("VLLM_PROFILER_TORCH_SHIM") or os.path.join(
        os.path.dirname(os.path.abspath(core_file)), SHIM_NAME)
    if not os.path.exists(path):
        log("torch shim %s not found; capturing steps without operator "
            "events" % path)
        return None
    try:
        shim = ctypes.CDLL(path)
    except OSError as e:
        log("cannot load the torch shim (%s); capturing steps without "
            "operator events" % (e,))
        return None
    shim.vp_torch_shim_built_for.restype = ctypes.c_char_p
    built = (shim.vp_torch_shim_built_for() or b"").decode("utf-8", "replace")
    if _version_tuple(built) != _version_tuple(torch_version):
        log("torch shim was built for torch %s but this process runs torch "
            "%s; capturing without operator events (rebuild it with "
            "probe/torch/build_shim.sh)" % (built, torch_version))
        return None
    shim.vp_torch_shim_init.restype = ctypes.c_int32
    shim.vp_torch_shim_init.argtypes = [ctypes.c_char_p]
    if shim.vp_torch_shim_init(os.fsencode(core_file)) != 0:
        return None
    return shim
