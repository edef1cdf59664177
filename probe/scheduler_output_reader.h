// Reads the flight recorder's per-step batch from vLLM's SchedulerOutput in
// C, through the CPython C API: one call instead of the Python reader
// (_schedule.pack_batch), which runs cold between two steps' torch work
// (about 6 us there, against 1.3 us in a warm loop).
//
// The library links no Python (-z defs): the API's functions are looked up
// with dlsym in the process, which is a Python interpreter whenever this is
// called. Only functions of the stable ABI are used, none of its macros or
// struct layouts, so one build serves every CPython 3.8-3.14 with a GIL.
// The caller holds the GIL (ctypes.PyDLL) and the Python side never calls
// this on a free-threaded build.
//
// The values are those of _schedule.pack_batch's fast path. An object not of
// today's shape (a missing attribute, a non-str or comma-holding request id,
// ids over the length bound) is refused, and the caller reads it the
// careful Python way. No Python exception is ever left set.
#ifndef VLLM_PROFILER_PROBE_SCHEDULER_OUTPUT_READER_H_
#define VLLM_PROFILER_PROBE_SCHEDULER_OUTPUT_READER_H_

#include <cstddef>
#include <cstdint>

namespace vllm_profiler::probe {

struct SchedulerBatch {
  // As _schedule: the first 64 request ids, at most 64 x 128 bytes joined.
  static constexpr int kMaxRequestIds = 64;
  static constexpr size_t kMaxRequestIdBytes = 64 * 128;
  // vp_step_batch's num_* values (-1 = unknown), then request_ids_total.
  int64_t values[8];
  char request_ids[kMaxRequestIdBytes + 1];  // Comma-joined, NUL-ended.
};

// Whether this process has the C API functions the reader needs.
bool SchedulerReaderAvailable();

// Fills `out` from `scheduler_output` (a PyObject*, GIL held). Returns false
// when the object is not of today's shape (see above) or the API is absent.
bool ReadSchedulerOutput(void* scheduler_output, SchedulerBatch* out);

// Builtin Python functions over C functions, for the step path: calling one
// from Python costs a fraction of a ctypes call (no argument conversion, no
// GIL release). `fn` is a PyCFunction: PyObject* fn(PyObject* self,
// PyObject* arg), `arg` the one argument (takes_arg) or null; it returns a
// new reference (PythonInt, PythonNone). GIL held.
struct StepFunction {
  const char* name;
  void* (*fn)(void* self, void* arg);
  bool takes_arg;
};
// A new tuple of the functions, in order, or null (no API, or an error,
// cleared).
void* MakeStepFunctions(const StepFunction* functions, int n);
void* PythonInt(int64_t value);
void* PythonNone();

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_SCHEDULER_OUTPUT_READER_H_
