"""Operator events through torch's own profiler, when no torch shim records
them (no C++ compiler in the image, the build turned off or failed, or
while the shim is still building).

At a capture's first step, on the step thread, torch's autograd profiler is
enabled with CPU activity only (CUPTI stays the probe's: kineto never takes
it for a CPU-only profile). At the capture's last step it is disabled with
the raw torch._C._autograd._disable_profiler() (none of torch's Python
post-processing runs on the step thread); a low-priority background thread
then converts its events into the probe's operator records
(vp_op_complete: name, start and end, thread, input shapes and dtypes,
sequence number), the same events the shim produces. The capture's finish
waits for them (vp_external_ops_expect/_done, at most 30 s).

API differences across torch 2.0 to 2.13 (and Debian's 1.13) are detected
by feature: start_ns()/duration_ns() or start_us()/duration_us(), shapes()
and dtypes() when present. torch reports wall-clock (Unix epoch) times;
they are mapped to CLOCK_MONOTONIC with one offset read at the stop.

Limits: torch's profiler is per process, so while ours runs a user's
torch.profiler (vLLM's /start_profile) cannot start, and the other way
round (a capture that finds one running records steps only). torch's
internal thread ids are not OS ids: operators of the thread that ran most
of them are put on the step thread, the others on a track per torch thread.
"""
import ctypes
import os
import threading
import time

from ._native import TensorMeta

_MAX_INPUTS = 32
_MAX_DIMS = 12
_SKIP_PREFIXES = ("ProfilerStep", "[memory]", "profiler::", "[pgo]")
# torch threads that are not OS threads get tids above any real one.
_TORCH_THREAD_TID_BASE = 0x7F000000


def unsupported_reason(torch):
    """None when this torch has what the fallback uses, else why not."""
    prof = getattr(getattr(torch, "autograd", None), "profiler", None)
    if getattr(prof, "profile", None) is None:
        return "torch.autograd.profiler.profile is missing"
    autograd_c = getattr(getattr(torch, "_C", None), "_autograd", None)
    if getattr(autograd_c, "_disable_profiler", None) is None:
        return "torch._C._autograd._disable_profiler is missing"
    return None


class TorchProfilerFallback(object):
    """Capture hooks for the step model (start at a capture's first step,
    stop after its last); never raises into the host."""

    def __init__(self, lib, torch, log, record_shapes, usable):
        self.lib = lib
        self.torch = torch
        self.log = log
        self.record_shapes = record_shapes  # Callable -> bool.
        self.usable = usable                # Callable -> bool (no shim yet).
        self.active = None                  # (handle, step thread tid)
        self.converted = 0                  # Operators, for tests.
        self.thread = None                  # The conversion running, if any.

    def start(self):
        if self.active is not None or not self.usable():
            return
        handle = 0
        try:
            handle = self.lib.vp_external_ops_expect()
            if handle <= 0:
                return
            from . import other_profiler
            busy = other_profiler()
            if busy is not None:
                self.log("%s: this capture has no operator events from torch's "
                         "profiler" % busy, key="fallback-busy")
                self.lib.vp_external_ops_done(handle)
                return
            p = self.torch.autograd.profiler.profile(
                record_shapes=bool(self.record_shapes()))
            p.__enter__()
            self.active = (handle, threading.get_native_id())
        except Exception as e:
            self.log("torch's profiler did not start (%r); this capture has "
                     "no operator events" % (e,), key="fallback-start")
            if handle > 0:
                self.lib.vp_external_ops_done(handle)

    def stop(self):
        if self.active is None:
            return
        handle, tid = self.active
        self.active = None
        try:
            result = self.torch._C._autograd._disable_profiler()
            # What profile.__exit__ does after it (torch >= 2.0): clear the
            # process-wide "profiler enabled" flag we set at the start.
            prof = self.torch.autograd.profiler
            stop_hook = getattr(prof, "_run_on_profiler_stop", None)
            if stop_hook is not None:
                stop_hook()
            elif hasattr(prof, "_set_is_profiler_enabled"):
                prof._set_is_profiler_enabled(False)
            offset_ns = time.time_ns() - time.monotonic_ns()
        except Exception as e:
            self.log("torch's profiler did not stop cleanly (%r); this "
                     "capture has no operator events" % (e,),
                     key="fallback-stop")
            self.lib.vp_external_ops_done(handle)
            return
        # result.events() builds a Python object per event (30-110 ms per
        # 40,000 on torch 2.6 here): on the conversion thread, not the step
        # thread. Only _disable_profiler itself must run here, on the thread
        # that enabled it.
        self.thread = threading.Thread(
            target=self._convert, args=(handle, result, offset_ns, tid),
            name="vllm-profiler-ops", daemon=True)
        self.thread.start()

    def wait(self, timeout_s):
        """At exit: lets a running conversion finish (bounded)."""
        t = self.thread
        if t is not None and t.is_alive():
            t.join(timeout_s)

    def _convert(self, handle, result, offset_ns, step_tid):
        """On the background thread: events -> vp_op_complete, then done."""
        try:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            except Exception:
                pass
            cpu = [e for e in result.events() if _is_cpu_op(e)]
            counts = {}
            for e in cpu:
                k = e.start_thread_id()
                counts[k] = counts.get(k, 0) + 1
            main = max(counts, key=counts.get) if counts else None
            for i, e in enumerate(cpu):
                k = e.start_thread_id()
                tid = step_tid if k == main else _TORCH_THREAD_TID_BASE + k
                self._record(handle, e, offset_ns, tid)
                self.converted += 1
                if i % 256 == 255:
                    time.sleep(0)  # Lets the host's threads have the GIL.
        except Exception as e:
            self.log("converting torch's profiler events failed (%r); the "
                     "capture keeps what was converted" % (e,),
                     key="fallback-convert")
        finally:
            self.lib.vp_external_ops_done(handle)

    def _record(self, handle, e, offset_ns, tid):
        if hasattr(e, "start_ns"):
            start = e.start_ns()
            end = start + e.duration_ns()
        else:
            start = e.start_us() * 1000
            end = start + e.duration_us() * 1000
        metas, keep = None, []
        n = 0
        shapes = e.shapes() if hasattr(e, "shapes") else []
        if shapes:
            dtypes = e.dtypes() if hasattr(e, "dtypes") else []
            n = min(len(shapes), _MAX_INPUTS)
            metas = (TensorMeta * n)()
            for i in range(n):
                dims = list(shapes[i])[:_MAX_DIMS]
                dtype = dtypes[i] if i < len(dtypes) else ""
                tensor = dtype not in ("", "Scalar", "ScalarList",
                                       "TensorList", "GenericList")
                if tensor and dims:
                    arr = (ctypes.c_int64 * len(dims))(*dims)
                    keep.append(arr)
                    metas[i].dims = arr
                metas[i].ndim = len(dims) if tensor else -1
                metas[i].dtype = dtype.encode() if dtype else None
        self.lib.vp_op_complete(
            handle, e.name().encode("utf-8", "replace"), e.sequence_nr(),
            start - offset_ns, end - offset_ns, tid, metas, n)


def _is_cpu_op(e):
    try:
        if str(e.device_type()).split(".")[-1] != "CPU":
            return False
    except Exception:
        pass
    name = e.name()
    return bool(name) and not name.startswith(_SKIP_PREFIXES)
