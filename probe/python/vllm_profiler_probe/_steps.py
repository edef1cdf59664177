"""The step model: which calls make one engine step of vLLM.

vLLM >= 0.11.1 runs one step as two calls on the worker (and on its model
runner): `execute_model(scheduler_output)` runs the forward pass and returns
None, then `sample_tokens(grammar_output)` samples and returns the output.
Async scheduling lets the engine work between the two. Pooling models, steps
that schedule no tokens and vLLM <= 0.11.0 return the output from
`execute_model` itself. So:

  * a step begins when `execute_model` is entered;
  * it ends when the `sample_tokens` that follows returns, or when
    `execute_model` returns an output (not None), or raises, or when the
    next `execute_model` arrives first;
  * for a class without `sample_tokens` (vLLM <= 0.11.0) one `execute_model`
    call is one step, exactly as before;
  * a `sample_tokens` with no open step is recorded as a span of its own
    and counts nothing;
  * a call made while another wrapped call is running (Worker.execute_model
    calling GPUModelRunner.execute_model) belongs to the outer one: wrapping
    the worker and its model runner covers both the worker path and the
    paths that call the model runner directly (Ray's execute_model_ray).

The flight recorder (VLLM_PROFILER_FLIGHT, on by default) keeps every
step's batch and phases in the core's ring, not only captured ones. Its
step makes no ctypes call at all (_native.FlightCalls): the core hands
out builtin Python functions (vp_step_functions) that begin the step
reading the batch from the SchedulerOutput in C, mark the two phases
(execute_model returned, sample_tokens entered) and end it. A SchedulerOutput
of another shape is read here (_schedule.pack_batch) and passed through the
core's step slots; a Python where the builtins cannot be made (free-threaded)
uses that path and ctypes throughout. Cost figures: docs/PERFORMANCE.md.

Steps are counted per process. The step span has child spans
"execute_model" and "sample_tokens" (pair shape only), so the engine's gap
between them shows on the timeline.

Cost when no capture runs: the execute_model wrapper makes one ctypes call
(vp_step_begin_ex: step number and capturing flag together) and, for the
single-call shape, one more (vp_step_end); the pair shape moves vp_step_end
into the sample_tokens wrapper, whose fast path is inlined (a step open, no
capture). Everything else is attribute access on one object. Fork is seen
through os.register_at_fork, not a getpid per step.
"""
import functools
from . import _native, _schedule

_MARK = "__vllm_profiler_wrapped__"
_EXEC_SPAN = b"execute_model"
_SAMPLE_SPAN = b"sample_tokens"


class StepModel(object):
    """Process-wide step state (vLLM calls the step methods from one thread
    at a time; `busy` also keeps nested calls from counting twice)."""

    def __init__(self):
        self.lib = None           # The native core (ctypes), None = off.
        self.busy = False         # A wrapped call is running.
        self.open_step = False    # execute_model returned None: sample next.
        self.capturing = False    # Decided at the open step's begin.
        self.flight = False       # The core's flight recorder is on.
        self.calls = None         # _native.FlightCalls (flight only).
        # The open step's execute_model returned and was marked (flight).
        self.marked = False
        self.step_name = None     # Last name given to vp_set_step_name.
        self.on_first_step = None  # Callable(lib, self_obj) once per process.
        self.first_pending = True  # on_first_step not yet run here.
        self.on_error = None      # Callable(exc): the hook failed (log, off).
        self.dead = False         # Failed once: stays off in this process.
        # Optional object with start()/stop(), told when a capture starts
        # (at its first step) and ends (after its last): the torch-profiler
        # fallback. Costs one vp_is_capturing per captured step end.
        self.capture_hooks = None
        self.capture_on = False

    # -- step boundaries --------------------------------------------------

    def after_fork_in_child(self):
        """A forked child is a new process: first-step work runs again."""
        self.first_pending = True
        self.open_step = False
        self.busy = False
        self.capture_on = False

    def _begin(self, name, obj, args, kwargs):
        lib = self.lib
        if self.first_pending:
            self.first_pending = False
            self.flight = _flight_on(lib)
            if self.flight:
                self.calls = _native.FlightCalls(lib)
            if self.on_first_step is not None:
                self.on_first_step(lib, obj)
        if name is not self.step_name:
            lib.vp_set_step_name(name)
            self.step_name = name
        self.marked = False
        so = None
        if self.flight:
            so = args[0] if args else kwargs.get("scheduler_output")
        if so is not None:
            # Read before the step begins: not counted in the step's time.
            begun = self.calls.begin(so)
            if begun < 0:  # Not today's shape: read here.
                begun = self.calls.begin_slots(so)
        else:
            begun = lib.vp_step_begin_ex()
        self.capturing = capturing = bool(begun & 1)
        if capturing and not self.capture_on and self.capture_hooks is not None:
            self.capture_on = True
            self.capture_hooks.start()
        if capturing and not self.flight:
            so = args[0] if args else kwargs.get("scheduler_output")
            if so is not None:
                _schedule.annotate(lib, so)
        return capturing

    def _end(self, error=None):
        self.open_step = False
        if self.marked:
            if error is None:
                self.calls.end()
            else:
                self.lib.vp_step_end_slots(_error_name(error))
        elif error is None:
            self.lib.vp_step_end()
        else:
            self.lib.vp_step_end_error(_error_name(error))
        self._after_end()

    def _after_end(self):
        if self.capture_on and not self.lib.vp_is_capturing():
            self.capture_on = False
            self.capture_hooks.stop()

    def close_pending(self):
        """Ends a step left open by an execute_model without sample_tokens
        (called when the next execute_model arrives, and at exit)."""
        if self.open_step and self.lib is not None:
            self._end()

    # -- wrappers -----------------------------------------------------------

    def execute(self, fn, step_name, paired, obj, args, kwargs):
        """Runs `fn` (an execute_model) as the start of a step."""
        try:
            if self.open_step:
                self._end()
            capturing = self._begin(step_name, obj, args, kwargs)
            span = self.lib.vp_span_begin(_EXEC_SPAN) if (
                capturing and paired) else 0
        except Exception as e:  # Our bug: the host still runs its step.
            self._failed(e)
            return fn(obj, *args, **kwargs)
        self.busy = True
        try:
            out = fn(obj, *args, **kwargs)
        except BaseException as e:
            self.busy = False
            self._safe(span, e)
            raise
        self.busy = False
        try:
            if span:
                self.lib.vp_span_end(span)
            elif paired and self.flight:
                self.calls.mark_execute_end()
                self.marked = True
            if paired and out is None:
                self.open_step = True  # The sample_tokens that follows ends it.
            else:
                self._end()
        except Exception as e:
            self._failed(e)
        return out

    def sample(self, fn, obj, args, kwargs):
        """Runs `fn` (a sample_tokens): the end of the open step, or a span
        of its own when no step is open."""
        try:
            in_step = self.open_step
            self.open_step = False
            capturing = self.capturing if in_step else \
                self.lib.vp_is_capturing()
            span = self.lib.vp_span_begin(_SAMPLE_SPAN) if capturing else 0
        except Exception as e:
            self._failed(e)
            return fn(obj, *args, **kwargs)
        self.busy = True
        try:
            out = fn(obj, *args, **kwargs)
        except BaseException as e:
            self.busy = False
            if in_step:
                self._safe(span, e)
            elif span:
                self._safe_span_end(span)
            raise
        self.busy = False
        try:
            if span:
                self.lib.vp_span_end(span)
            if in_step:
                self.lib.vp_step_end()
                self._after_end()
        except Exception as e:
            self._failed(e)
        return out

    # -- failure paths --------------------------------------------------------

    def _safe(self, span, error):
        """Ends the span and the step with `error`; never raises."""
        try:
            if span:
                self.lib.vp_span_end(span)
            self._end(error)
        except Exception as e:
            self._failed(e)

    def _safe_span_end(self, span):
        try:
            self.lib.vp_span_end(span)
        except Exception as e:
            self._failed(e)

    def _failed(self, e):
        self.lib = None
        self.dead = True
        self.open_step = False
        if self.on_error is not None:
            self.on_error(e)


def _flight_on(lib):
    """Whether the core keeps a flight recorder (an older core: no)."""
    try:
        return lib.vp_flight_level() > 0
    except Exception:
        return False


def _error_name(error):
    name = type(error).__name__
    return name.encode("utf-8", "replace")


def make_execute_wrapper(model, fn, step_name, paired):
    """The execute_model wrapper (keeps fn's name, doc and signature)."""
    @functools.wraps(fn)
    def execute_model_profiled(self, *args, **kwargs):
        if model.lib is None or model.busy:
            return fn(self, *args, **kwargs)
        return model.execute(fn, step_name, paired, self, args, kwargs)

    setattr(execute_model_profiled, _MARK, True)
    return execute_model_profiled


def make_sample_wrapper(model, fn):
    """The sample_tokens wrapper (keeps fn's name, doc and signature)."""
    @functools.wraps(fn)
    def sample_tokens_profiled(self, *args, **kwargs):
        m = model
        if m.lib is None or m.busy:
            return fn(self, *args, **kwargs)
        if not m.open_step or m.capturing:
            return m.sample(fn, self, args, kwargs)
        # The common case, inlined: the step's second call, no capture.
        m.open_step = False
        if m.marked:
            m.calls.mark_sample_begin()
        m.busy = True
        try:
            out = fn(self, *args, **kwargs)
        except BaseException as e:
            m.busy = False
            m._safe(0, e)
            raise
        m.busy = False
        try:
            if m.marked:
                m.calls.end()
            else:
                m.lib.vp_step_end()
            if m.capture_on:  # A capture ended by its time bound.
                m._after_end()
        except Exception as e:
            m._failed(e)
        return out

    setattr(sample_tokens_profiled, _MARK, True)
    return sample_tokens_profiled
