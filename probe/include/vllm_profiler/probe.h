/*
 * vllm-profiler probe: the one public C ABI of libvllm_profiler_probe.so.
 *
 * Callers: Python (ctypes, probe/python/vllm_profiler_probe) and the torch
 * shim (probe/torch). Nothing else links the core. No torch, CUPTI or gRPC
 * type appears here; every integer is explicitly sized.
 *
 * Lifecycle: the library starts lazily on the first call of any function
 * (configuration from VLLM_PROFILER_* env, background threads, connection to
 * the collector). After fork() the child starts its own threads and
 * connection on its next call. vp_shutdown() flushes and stops.
 *
 * Failure: no function ever throws or aborts into the caller. An internal
 * failure is logged once (prefix "vllm-profiler:") and the probe disables
 * itself; every function then returns its "not capturing" value.
 *
 * Threads: every function may be called from any thread. The record
 * functions (vp_op_*, vp_instant, vp_counter) cost one relaxed atomic load
 * when no capture runs.
 */
#ifndef VLLM_PROFILER_PROBE_INCLUDE_VLLM_PROFILER_PROBE_H_
#define VLLM_PROFILER_PROBE_INCLUDE_VLLM_PROFILER_PROBE_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VP_ABI_VERSION                              \
  4 /* 2: spans, step args/errors, identity, state; \
       3: vp_flight_level;                          \
       4: vp_step_slots, vp_step_begin_slots,       \
          vp_step_end_slots, vp_step_begin_read,    \
          vp_step_functions */

/* Version string of the probe ("0.1.0"); static storage. */
const char* vp_version(void);
/* VP_ABI_VERSION the library was built with. */
int32_t vp_abi_version(void);

/* Optional explicit start. `process_name` (may be NULL) names the process in
 * the trace; `python_version`/`torch_version` (may be NULL) go into the
 * Hello. Returns 0 on success, -1 when the probe is disabled (by env or by an
 * internal failure). Calling it again only updates the names. */
int32_t vp_init(const char* process_name, const char* python_version,
                const char* torch_version);

/* Step: one engine step (vLLM >= 0.11.1: execute_model and the
 * sample_tokens that follows; before: one execute_model call). The caller
 * (Python) decides where a step begins and ends. vp_step_begin decides at
 * this boundary whether a capture starts (window, command) and returns the
 * 1-based step number (0 when disabled); vp_step_end may stop it (step
 * count, duration, stop command). Steps are counted per process and at most
 * one is open at a time; begin and end may come from different threads. */
int64_t vp_step_begin(void);
void vp_step_end(void);
/* vp_step_begin and vp_is_capturing in one call (the step path's only call
 * at a step's start): returns step << 1 | capturing (0 when disabled). */
int64_t vp_step_begin_ex(void);
/* Ends the open step like vp_step_end, recording `error` (e.g. the Python
 * exception's type name; copied, may be NULL) as the step's "error" arg. */
void vp_step_end_error(const char* error);

/* One named argument of the open step (when capturing; copied: the key
 * truncated at 512 bytes, a string value at 8 KiB). */
void vp_step_arg_int(const char* key, int64_t value);
void vp_step_arg_str(const char* key, const char* value);

/* A span of the calling thread (e.g. a step's "execute_model" and
 * "sample_tokens" calls): recorded while capturing and, as a child span of
 * the open step, by the flight recorder. Returns an id for vp_span_end, 0
 * when not recording. `name` is copied. */
uint64_t vp_span_begin(const char* name);
void vp_span_end(uint64_t span_id);

/* The flight recorder's level (VLLM_PROFILER_FLIGHT): 0 off, 1 steps, 2
 * gpu. While it is on, the step's batch shape, args and child spans are
 * kept for every step (vp_step_annotate, vp_step_arg_*, vp_span_*), not only
 * while capturing. */
int32_t vp_flight_level(void);
/* The flight recorder's per-step calls when no capture runs (one ctypes
 * call each, the cheap path): the open step's whole batch (-1 = unknown;
 * `request_ids` comma-joined, copied, may be NULL), and its phases: mark 1
 * when execute_model returned (child span "execute_model" from the step's
 * start), mark 2 when sample_tokens is entered (child span "sample_tokens"
 * to the step's end). */
void vp_step_batch(int64_t num_requests, int64_t num_tokens,
                   int64_t num_prefill, int64_t num_decode, int64_t num_new,
                   int64_t num_resumed, int64_t num_finished,
                   const char* request_ids, int64_t request_ids_total);
void vp_step_mark(int32_t mark);
/* The same as two calls per step, with the values passed through memory:
 * a ctypes call converts each argument (about 1 us for nine), a write into
 * memory costs a fraction of that. vp_step_slots() returns VP_STEP_SLOTS
 * int64 slots owned by the library, for the thread that runs steps:
 *  - before vp_step_begin_slots: slots 0-6 hold vp_step_batch's num_*
 *    values (-1 = unknown) and VP_SLOT_REQUEST_IDS_TOTAL its
 *    request_ids_total. vp_step_begin_slots(request_ids) is then
 *    vp_step_begin_ex followed by vp_step_batch, and returns what
 *    vp_step_begin_ex returns;
 *  - before vp_step_end_slots: VP_SLOT_EXECUTE_END_NS and
 *    VP_SLOT_SAMPLE_BEGIN_NS hold the times of marks 1 and 2
 *    (CLOCK_MONOTONIC ns, as Python's time.monotonic_ns(); 0 = no such
 *    mark). vp_step_end_slots(error) sets those marks, then ends the step
 *    as vp_step_end, or as vp_step_end_error when `error` is not NULL. */
#define VP_STEP_SLOTS 16
#define VP_SLOT_REQUEST_IDS_TOTAL 7
#define VP_SLOT_EXECUTE_END_NS 8
#define VP_SLOT_SAMPLE_BEGIN_NS 9
int64_t* vp_step_slots(void);
int64_t vp_step_begin_slots(const char* request_ids);
void vp_step_end_slots(const char* error);
/* The same begin with the batch read in C from vLLM's SchedulerOutput
 * (probe/scheduler_output_reader.h), for a caller holding the GIL
 * (ctypes.PyDLL, the object as ctypes.py_object). Returns -1, having begun
 * no step, when the object is not of today's shape: the caller then reads
 * it and calls vp_step_begin_slots. vp_scheduler_reader_available() says
 * whether this process has the CPython functions it needs (1) or not (0;
 * never call vp_step_begin_read then). The values it read are left in
 * slots 0-7 and its request ids in vp_step_read_request_ids() (until the
 * next read). */
int32_t vp_scheduler_reader_available(void);
int64_t vp_step_begin_read(void* scheduler_output);
const char* vp_step_read_request_ids(void);
/* The flight path's step calls as builtin Python functions, for a caller
 * holding the GIL (ctypes.PyDLL, restype ctypes.py_object): calling one
 * costs a fraction of a ctypes call. Returns a new tuple (begin(so),
 * mark_execute_end(), mark_sample_begin(), end()), or NULL where the
 * CPython functions are missing: begin is vp_step_begin_read; the marks
 * write the current CLOCK_MONOTONIC time into their slots; end is
 * vp_step_end_slots(NULL). vp_step_end_slots clears the mark slots. */
void* vp_step_functions(void);

/* What the process is in vLLM (learnt at its first step): rank, local rank
 * and world size (-1 = unknown). Sent to the collector (ProbeState). */
void vp_set_identity(int32_t rank, int32_t local_rank, int32_t world_size);

/* The probe is loaded but will not record steps here, and why (NULL or ""
 * clears it). Starts the probe's connection so that the collector and
 * `vpctl status` can show the reason. */
void vp_set_idle_reason(const char* reason);

/* Where operator events come from ("bundled shim", "built shim", "torch
 * profiler", "off") and why; copied. Shown in the trace metadata and
 * `vpctl status`. */
void vp_set_op_source(const char* source, const char* detail);

/* The step methods the Python side wrapped ("module:Class.a+b"); appended,
 * copied. */
void vp_add_wrapped_target(const char* target);

/* Batch shape of the step begun last on this thread, when capturing or the
 * flight recorder is on (-1 = unknown, left out). */
void vp_step_annotate(int64_t num_requests, int64_t num_tokens,
                      int64_t num_prefill, int64_t num_decode);

/* Name of the step spans in the trace (default "execute_model"); copied. */
void vp_set_step_name(const char* name);

/* Cheap: 1 while a capture records on this process, else 0. */
int32_t vp_is_capturing(void);
/* 1 while the capture records operator shapes. */
int32_t vp_record_shapes(void);

/* One operator input (shapes on). `dims` has `ndim` entries. */
typedef struct vp_tensor_meta {
  const int64_t* dims;
  int32_t ndim;      /* -1: not a tensor (scalar/other) */
  const char* dtype; /* e.g. "float", may be NULL */
} vp_tensor_meta;

/* Operator begin: returns a non-zero id to pass to vp_op_end, or 0 when not
 * recording. `name` is copied. `inputs` may be NULL. `sequence_nr` < 0 when
 * unknown. */
uint64_t vp_op_begin(const char* name, int64_t sequence_nr,
                     const vp_tensor_meta* inputs, int32_t num_inputs);
void vp_op_end(uint64_t op_id);

/* A point in time / a sampled value on the calling thread. */
void vp_instant(const char* name);
void vp_counter(const char* name, double value);

/* Names the calling thread in the trace (copied). */
void vp_set_thread_name(const char* name);

/* Called on the thread of vp_step_begin/vp_step_end (or the probe's timer
 * thread for duration-bound captures) when a capture starts (capturing = 1,
 * record_shapes as configured) or stops (capturing = 0). Used by the torch
 * shim to add/remove its RecordFunction callback. One listener; NULL clears.
 * The listener must not call vp_step_begin/vp_step_end. */
typedef void (*vp_capture_listener)(int32_t capturing, int32_t record_shapes,
                                    void* user);
void vp_set_capture_listener(vp_capture_listener listener, void* user);

/* Asked at each capture start, before the probe takes CUPTI: returns 1 to
 * record GPU activity, or 0 to leave CUPTI alone for this capture, writing
 * why into `reason` (NUL-terminated, at most reason_len bytes), e.g. because
 * torch.profiler is running in the process (vLLM's /start_profile). Called
 * with the probe's control lock held, on the thread starting the capture:
 * it must not call back into the probe. One gate; NULL clears. */
typedef int32_t (*vp_gpu_gate)(char* reason, int32_t reason_len);
void vp_set_gpu_gate(vp_gpu_gate gate);

/* Operators from another source than the shim: the torch-profiler fallback
 * (Python), which gets its events only after the capture's steps.
 * vp_external_ops_expect(), on a capture's first step, returns a handle (0:
 * no capture with operators is running) and makes that capture's finish
 * wait, at most 30 s, for vp_external_ops_done(handle); in between,
 * vp_op_complete records timed operators into it from any one thread
 * (times in CLOCK_MONOTONIC ns, `tid` the OS thread they ran on). */
int64_t vp_external_ops_expect(void);
void vp_op_complete(int64_t handle, const char* name, int64_t sequence_nr,
                    int64_t start_ns, int64_t end_ns, uint32_t tid,
                    const vp_tensor_meta* inputs, int32_t num_inputs);
void vp_external_ops_done(int64_t handle);

/* On-demand local capture: starts at the next step boundary for num_steps
 * steps (0: bounded by duration_ms only). Returns 0, or -1 when disabled or
 * a capture is already pending/running. */
int32_t vp_request_capture(uint32_t num_steps, uint32_t duration_ms,
                           int32_t record_shapes);

/* Stops any capture, sends what is buffered, closes the connection; waits at
 * most timeout_ms. Safe to call more than once and from atexit. */
void vp_shutdown(uint32_t timeout_ms);

/* Counters for tests and the Python side. */
typedef struct vp_stats {
  uint64_t events_recorded;
  uint64_t events_dropped_buffer_full;
  uint64_t events_dropped_send;
  uint64_t captures_started;
  uint64_t captures_finished;
  uint64_t batches_sent;
  int32_t connected;
  int32_t enabled;
} vp_stats;
void vp_get_stats(vp_stats* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* VLLM_PROFILER_PROBE_INCLUDE_VLLM_PROFILER_PROBE_H_ */
