// The C ABI (probe/include/vllm_profiler/probe.h) over one lazily created
// ProbeRuntime per process.
//
// Every entry point catches everything: an exception (or any internal
// failure) is logged once and disables the probe for the rest of the
// process; the host only ever sees the "not capturing" return values.
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/mutex.h"
#include "probe/core/config.h"
#include "probe/core/log.h"
#include "probe/core/probe_runtime.h"
#include "probe/cupti/cupti_tracer.h"
#include "probe/include/vllm_profiler/probe.h"
#include "probe/scheduler_output_reader.h"

namespace vllm_profiler::probe {
namespace {

std::atomic<ProbeRuntime*> g_runtime{nullptr};
// vp_step_slots: written by the caller that runs steps, read by the step
// calls on the same thread (no lock, as the step calls themselves).
int64_t g_step_slots[VP_STEP_SLOTS] = {};
// vp_step_begin_read's batch (the step thread's, as the slots).
SchedulerBatch g_read_batch;
// Set in an op id returned by vp_op_begin when it pushed a GPU correlation.
constexpr uint64_t kPushedBit = uint64_t{1} << 63;
// Relaxed loads of g_disabled: once set it stays set; a call racing with
// the switch is harmless (the runtime is never destroyed).
std::atomic<bool> g_disabled{false};
Mutex g_create_mu;
// gRPC was started in this process (a runtime exists or existed). gRPC has
// no fork support enabled here, and using it in a child forked after that
// aborts inside gRPC: such a child stays unprofiled instead (logged once).
std::atomic<bool> g_grpc_started{false};
std::atomic<bool> g_forked_after_grpc{false};

struct PendingNames {
  std::string process_name, python_version, torch_version, step_name;
  // ProbeState parts set before the runtime exists.
  int32_t rank = -1, local_rank = -1, world_size = -1;
  std::string op_source, op_source_detail;
  std::vector<std::string> wrapped_targets;
  ProbeRuntime::CaptureListener listener = nullptr;
  ProbeRuntime::GpuGate gpu_gate = nullptr;
  void* listener_user = nullptr;
};
PendingNames* g_pending ABSL_GUARDED_BY(g_create_mu) = new PendingNames();
ProbeConfig* g_config ABSL_GUARDED_BY(g_create_mu) = nullptr;

void Disable(const char* where) {
  if (!g_disabled.exchange(true)) {
    ProbeLog(ProbeLogLevel::kInfo,
             std::string("internal error in ") + where +
                 "; the probe disables itself, the process runs on");
  }
  ProbeRuntime* r = g_runtime.load(std::memory_order_acquire);
  if (r != nullptr) r->recorder().ForceOff();
}

void AtForkChild() {
  // Only this thread exists in the child: abandon the parent's runtime (its
  // threads are gone, its locks may be held) and start afresh on next use.
  g_runtime.store(nullptr, std::memory_order_release);
  new (&g_create_mu) Mutex();
  if (g_grpc_started.load()) g_forked_after_grpc.store(true);
  Recorder::ResetThreadCacheAfterFork();
}

// Reads the env once per process (logs each problem once).
const ProbeConfig& ConfigLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_create_mu) {
  if (g_config == nullptr) {
    std::vector<std::string> problems;
    g_config = new ProbeConfig(ParseProbeConfig(
        [](const char* name) -> const char* { return std::getenv(name); },
        &problems));
    SetProbeLogLevel(ParseProbeLogLevel(g_config->log_level.c_str()));
    for (const std::string& p : problems) {
      // Python's hook reads VLLM_PROFILER_ENABLED first, in every process,
      // and says it there: once is enough.
      if (absl::StartsWith(p, "VLLM_PROFILER_ENABLED=")) continue;
      ProbeLog(ProbeLogLevel::kInfo, p);
    }
    if (!g_config->enabled) g_disabled.store(true);
    static bool atfork = (pthread_atfork(nullptr, nullptr, AtForkChild), true);
    (void)atfork;
  }
  return *g_config;
}

// Creates the runtime on first use (threads, connection).
ProbeRuntime* Runtime() {
  ProbeRuntime* r = g_runtime.load(std::memory_order_acquire);
  if (r != nullptr) return r;
  if (g_disabled.load(std::memory_order_relaxed)) return nullptr;
  MutexLock lock(&g_create_mu);
  r = g_runtime.load(std::memory_order_acquire);
  if (r != nullptr) return r;
  const ProbeConfig& config = ConfigLocked();
  if (g_disabled.load()) return nullptr;
  if (g_forked_after_grpc.load()) {
    g_disabled.store(true);
    ProbeLog(ProbeLogLevel::kInfo,
             "this process was forked after the probe had connected in its "
             "parent; gRPC cannot be used after such a fork, so this process "
             "is not profiled (start workers with 'spawn', or let only the "
             "workers call the profiled method)");
    return nullptr;
  }
  g_grpc_started.store(true);
  ProbeRuntime::Options options;
  options.config = config;
  options.process_name = g_pending->process_name;
  options.python_version = g_pending->python_version;
  options.torch_version = g_pending->torch_version;
  if (config.gpu) {
    cupti::CuptiTracerOptions cupti;
    cupti.log = [](std::string_view line) {
      // Debug: the reason also goes into CaptureFinished.gpu_activity_note,
      // and "no CUDA" is the normal case on CPU-only hosts.
      ProbeLog(ProbeLogLevel::kDebug,
               absl::string_view(line.data(), line.size()));
    };
    options.gpu_tracer = cupti::NewCuptiTracer(std::move(cupti));
  }
  r = new ProbeRuntime(std::move(options));  // Never deleted (see header).
  if (!g_pending->step_name.empty()) r->SetStepName(g_pending->step_name);
  if (g_pending->rank >= 0 || g_pending->local_rank >= 0 ||
      g_pending->world_size >= 0) {
    r->SetIdentity(g_pending->rank, g_pending->local_rank,
                   g_pending->world_size);
  }
  if (!g_pending->op_source.empty()) {
    r->SetOpSource(g_pending->op_source, g_pending->op_source_detail);
  }
  for (const std::string& t : g_pending->wrapped_targets) {
    r->AddWrappedTarget(t);
  }
  if (g_pending->listener != nullptr) {
    r->SetCaptureListener(g_pending->listener, g_pending->listener_user);
  }
  if (g_pending->gpu_gate != nullptr) r->SetGpuGate(g_pending->gpu_gate);
  g_runtime.store(r, std::memory_order_release);
  return r;
}

// The runtime if it exists and the probe is on; never creates it.
inline ProbeRuntime* Existing() {
  if (g_disabled.load(std::memory_order_relaxed)) return nullptr;
  return g_runtime.load(std::memory_order_acquire);
}

// Begins a step, with `batch` (vp_step_batch's seven values, then
// request_ids_total; null: none). Returns step * 2 + capturing, or 0.
int64_t BeginStep(const int64_t* batch, const char* request_ids) {
  ProbeRuntime* r = Runtime();
  if (r == nullptr) return 0;
  const int64_t step = r->StepBegin();
  if (step <= 0) return 0;
  if (batch != nullptr) {
    r->StepBatch(batch, request_ids, batch[VP_SLOT_REQUEST_IDS_TOTAL]);
  }
  return step * 2 + (r->recorder().capturing() ? 1 : 0);
}

}  // namespace
}  // namespace vllm_profiler::probe

using vllm_profiler::probe::BeginStep;
using vllm_profiler::probe::Disable;
using vllm_profiler::probe::Existing;
using vllm_profiler::probe::g_read_batch;
using vllm_profiler::probe::g_step_slots;
using vllm_profiler::probe::kPushedBit;
using vllm_profiler::probe::ProbeRuntime;
using vllm_profiler::probe::Runtime;

namespace {

int64_t MonotonicNowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

extern "C" {
int64_t vp_step_begin_read(void* scheduler_output);
void vp_step_end_slots(const char* error);
}

namespace {

// vp_step_functions' builtins (GIL held; each returns a new reference).
// begin(scheduler_output) -> vp_step_begin_read's value.
void* PyStepBegin(void*, void* scheduler_output) {
  return vllm_profiler::probe::PythonInt(vp_step_begin_read(scheduler_output));
}
void* PyMarkExecuteEnd(void*, void*) {
  g_step_slots[VP_SLOT_EXECUTE_END_NS] = MonotonicNowNs();
  return vllm_profiler::probe::PythonNone();
}
void* PyMarkSampleBegin(void*, void*) {
  g_step_slots[VP_SLOT_SAMPLE_BEGIN_NS] = MonotonicNowNs();
  return vllm_profiler::probe::PythonNone();
}
void* PyStepEnd(void*, void*) {
  vp_step_end_slots(nullptr);
  return vllm_profiler::probe::PythonNone();
}

}  // namespace

#define VP_GUARD_BEGIN try {
#define VP_GUARD_END(where, ret) \
  }                              \
  catch (...) {                  \
    Disable(where);              \
    ret;                         \
  }

extern "C" {

const char* vp_version(void) { return vllm_profiler::probe::kProbeVersion; }

int32_t vp_abi_version(void) { return VP_ABI_VERSION; }

int32_t vp_init(const char* process_name, const char* python_version,
                const char* torch_version) {
  VP_GUARD_BEGIN
  namespace p = vllm_profiler::probe;
  vllm_profiler::MutexLock lock(&p::g_create_mu);
  p::ConfigLocked();
  if (p::g_disabled.load()) return -1;
  auto s = [](const char* v) {
    return v == nullptr ? std::string() : std::string(v);
  };
  if (process_name) p::g_pending->process_name = s(process_name);
  if (python_version) p::g_pending->python_version = s(python_version);
  if (torch_version) p::g_pending->torch_version = s(torch_version);
  ProbeRuntime* r = p::g_runtime.load();
  if (r != nullptr) {
    r->SetNames(s(process_name), s(python_version), s(torch_version));
  }
  return 0;
  VP_GUARD_END("vp_init", return -1)
}

int64_t vp_step_begin(void) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Runtime();
  return r == nullptr ? 0 : r->StepBegin();
  VP_GUARD_END("vp_step_begin", return 0)
}

int64_t vp_step_begin_ex(void) {
  VP_GUARD_BEGIN
  return BeginStep(nullptr, nullptr);
  VP_GUARD_END("vp_step_begin_ex", return 0)
}

void vp_step_end(void) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr) r->StepEnd();
  VP_GUARD_END("vp_step_end", return )
}

void vp_step_end_error(const char* error) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr) r->StepEndError(error);
  VP_GUARD_END("vp_step_end_error", return )
}

void vp_step_arg_int(const char* key, int64_t value) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr && key != nullptr) r->StepArgInt(key, value);
  VP_GUARD_END("vp_step_arg_int", return )
}

void vp_step_arg_str(const char* key, const char* value) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr && key != nullptr) r->StepArgStr(key, value);
  VP_GUARD_END("vp_step_arg_str", return )
}

uint64_t vp_span_begin(const char* name) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  return r == nullptr ? 0 : r->SpanBegin(name);
  VP_GUARD_END("vp_span_begin", return 0)
}

void vp_span_end(uint64_t span_id) {
  VP_GUARD_BEGIN
  if (span_id == 0) return;
  ProbeRuntime* r = Existing();
  if (r != nullptr) r->SpanEnd(span_id);
  VP_GUARD_END("vp_span_end", return )
}

int32_t vp_flight_level(void) {
  VP_GUARD_BEGIN
  namespace p = vllm_profiler::probe;
  vllm_profiler::MutexLock lock(&p::g_create_mu);
  const p::ProbeConfig& config = p::ConfigLocked();
  if (p::g_disabled.load()) return 0;
  switch (config.flight) {
    case p::FlightLevel::kOff:
      return 0;
    case p::FlightLevel::kSteps:
      return 1;
    case p::FlightLevel::kGpu:
      return 2;
  }
  return 0;
  VP_GUARD_END("vp_flight_level", return 0)
}

void vp_step_batch(int64_t num_requests, int64_t num_tokens,
                   int64_t num_prefill, int64_t num_decode, int64_t num_new,
                   int64_t num_resumed, int64_t num_finished,
                   const char* request_ids, int64_t request_ids_total) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r == nullptr) return;
  const int64_t batch[7] = {num_requests, num_tokens,  num_prefill, num_decode,
                            num_new,      num_resumed, num_finished};
  r->StepBatch(batch, request_ids, request_ids_total);
  VP_GUARD_END("vp_step_batch", return )
}

void vp_step_mark(int32_t mark) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr) r->StepMark(mark);
  VP_GUARD_END("vp_step_mark", return )
}

int64_t* vp_step_slots(void) { return g_step_slots; }

int64_t vp_step_begin_slots(const char* request_ids) {
  VP_GUARD_BEGIN
  return BeginStep(g_step_slots, request_ids);
  VP_GUARD_END("vp_step_begin_slots", return 0)
}

int32_t vp_scheduler_reader_available(void) {
  VP_GUARD_BEGIN
  return vllm_profiler::probe::SchedulerReaderAvailable() ? 1 : 0;
  VP_GUARD_END("vp_scheduler_reader_available", return 0)
}

int64_t vp_step_begin_read(void* scheduler_output) {
  VP_GUARD_BEGIN
  if (!vllm_profiler::probe::ReadSchedulerOutput(scheduler_output,
                                                 &g_read_batch)) {
    return -1;
  }
  std::memcpy(g_step_slots, g_read_batch.values, sizeof(g_read_batch.values));
  return BeginStep(g_step_slots, g_read_batch.request_ids);
  VP_GUARD_END("vp_step_begin_read", return 0)
}

const char* vp_step_read_request_ids(void) { return g_read_batch.request_ids; }

void vp_step_end_slots(const char* error) {
  VP_GUARD_BEGIN
  const int64_t execute_end = g_step_slots[VP_SLOT_EXECUTE_END_NS];
  const int64_t sample_begin = g_step_slots[VP_SLOT_SAMPLE_BEGIN_NS];
  g_step_slots[VP_SLOT_EXECUTE_END_NS] = 0;
  g_step_slots[VP_SLOT_SAMPLE_BEGIN_NS] = 0;
  ProbeRuntime* r = Existing();
  if (r == nullptr) return;
  r->StepEndMarked(execute_end, sample_begin, error);
  VP_GUARD_END("vp_step_end_slots", return )
}

void* vp_step_functions(void) {
  VP_GUARD_BEGIN
  namespace p = vllm_profiler::probe;
  static const p::StepFunction kFunctions[] = {
      {"vp_step_begin", &PyStepBegin, true},
      {"vp_mark_execute_end", &PyMarkExecuteEnd, false},
      {"vp_mark_sample_begin", &PyMarkSampleBegin, false},
      {"vp_step_end", &PyStepEnd, false},
  };
  return p::MakeStepFunctions(kFunctions, 4);
  VP_GUARD_END("vp_step_functions", return nullptr)
}

void vp_set_identity(int32_t rank, int32_t local_rank, int32_t world_size) {
  VP_GUARD_BEGIN
  namespace p = vllm_profiler::probe;
  ProbeRuntime* r;
  {
    vllm_profiler::MutexLock lock(&p::g_create_mu);
    p::g_pending->rank = rank;
    p::g_pending->local_rank = local_rank;
    p::g_pending->world_size = world_size;
    r = p::g_runtime.load();
  }
  if (r != nullptr) r->SetIdentity(rank, local_rank, world_size);
  VP_GUARD_END("vp_set_identity", return )
}

void vp_set_idle_reason(const char* reason) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Runtime();  // Connects: the reason is for the collector.
  if (r != nullptr) r->SetIdleReason(reason == nullptr ? "" : reason);
  VP_GUARD_END("vp_set_idle_reason", return )
}

void vp_set_op_source(const char* source, const char* detail) {
  VP_GUARD_BEGIN
  namespace p = vllm_profiler::probe;
  const std::string s = source == nullptr ? "" : source;
  const std::string d = detail == nullptr ? "" : detail;
  ProbeRuntime* r;
  {
    vllm_profiler::MutexLock lock(&p::g_create_mu);
    p::g_pending->op_source = s;
    p::g_pending->op_source_detail = d;
    r = p::g_runtime.load();
  }
  if (r != nullptr) r->SetOpSource(s, d);
  VP_GUARD_END("vp_set_op_source", return )
}

void vp_add_wrapped_target(const char* target) {
  VP_GUARD_BEGIN
  if (target == nullptr || *target == '\0') return;
  namespace p = vllm_profiler::probe;
  ProbeRuntime* r;
  {
    vllm_profiler::MutexLock lock(&p::g_create_mu);
    p::g_pending->wrapped_targets.push_back(target);
    r = p::g_runtime.load();
  }
  if (r != nullptr) r->AddWrappedTarget(target);
  VP_GUARD_END("vp_add_wrapped_target", return )
}

void vp_step_annotate(int64_t num_requests, int64_t num_tokens,
                      int64_t num_prefill, int64_t num_decode) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr && (r->recorder().capturing() || r->flight_on())) {
    r->StepAnnotate(num_requests, num_tokens, num_prefill, num_decode);
  }
  VP_GUARD_END("vp_step_annotate", return )
}

void vp_set_step_name(const char* name) {
  VP_GUARD_BEGIN
  if (name == nullptr || *name == '\0') return;
  namespace p = vllm_profiler::probe;
  vllm_profiler::MutexLock lock(&p::g_create_mu);
  p::g_pending->step_name = name;
  ProbeRuntime* r = p::g_runtime.load();
  if (r != nullptr) r->SetStepName(name);
  VP_GUARD_END("vp_set_step_name", return )
}

int32_t vp_is_capturing(void) {
  ProbeRuntime* r = Existing();
  return r != nullptr && r->recorder().capturing() ? 1 : 0;
}

int32_t vp_record_shapes(void) {
  ProbeRuntime* r = Existing();
  return r != nullptr && r->record_shapes() ? 1 : 0;
}

uint64_t vp_op_begin(const char* name, int64_t sequence_nr,
                     const vp_tensor_meta* inputs, int32_t num_inputs) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r == nullptr || !r->recorder().capturing()) return 0;
  static_assert(
      sizeof(vp_tensor_meta) == sizeof(vllm_profiler::probe::InputArg),
      "vp_tensor_meta and InputArg share a layout");
  // vp_tensor_meta is {dims, ndim, dtype}; InputArg mirrors it.
  const auto* args =
      reinterpret_cast<const vllm_profiler::probe::InputArg*>(inputs);
  const uint64_t id = r->recorder().OpBegin(name, sequence_nr, args,
                                            inputs == nullptr ? 0 : num_inputs);
  if (id != 0 && r->gpu_active()) {
    r->gpu_tracer()->PushExternalCorrelation(id);
    // Remember the push in the id (op ids never use bit 63) so the end pops
    // even if the capture stopped in between: the push/pop stack of the
    // thread stays balanced.
    return id | kPushedBit;
  }
  return id;
  VP_GUARD_END("vp_op_begin", return 0)
}

void vp_op_end(uint64_t op_id) {
  VP_GUARD_BEGIN
  if (op_id == 0) return;
  ProbeRuntime* r = Existing();
  if (r == nullptr) return;
  if ((op_id & kPushedBit) != 0) r->gpu_tracer()->PopExternalCorrelation();
  r->recorder().OpEnd(op_id & ~kPushedBit);
  VP_GUARD_END("vp_op_end", return )
}

void vp_instant(const char* name) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr) r->recorder().Instant(name);
  VP_GUARD_END("vp_instant", return )
}

void vp_counter(const char* name, double value) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr) r->recorder().Counter(name, value);
  VP_GUARD_END("vp_counter", return )
}

void vp_set_thread_name(const char* name) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr && name != nullptr) r->recorder().ThreadName(name);
  VP_GUARD_END("vp_set_thread_name", return )
}

void vp_set_capture_listener(vp_capture_listener listener, void* user) {
  VP_GUARD_BEGIN
  namespace p = vllm_profiler::probe;
  ProbeRuntime* r;
  {
    vllm_profiler::MutexLock lock(&p::g_create_mu);
    p::g_pending->listener = listener;
    p::g_pending->listener_user = user;
    r = p::g_runtime.load();
  }
  if (r != nullptr) r->SetCaptureListener(listener, user);
  VP_GUARD_END("vp_set_capture_listener", return )
}

int64_t vp_external_ops_expect(void) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  return r == nullptr ? 0 : static_cast<int64_t>(r->ExpectExternalOps());
  VP_GUARD_END("vp_external_ops_expect", return 0)
}

void vp_op_complete(int64_t handle, const char* name, int64_t sequence_nr,
                    int64_t start_ns, int64_t end_ns, uint32_t tid,
                    const vp_tensor_meta* inputs, int32_t num_inputs) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r == nullptr || handle <= 0) return;
  r->recorder().OpComplete(
      static_cast<uint64_t>(handle), name, sequence_nr, start_ns, end_ns, tid,
      reinterpret_cast<const vllm_profiler::probe::InputArg*>(inputs),
      inputs == nullptr ? 0 : num_inputs);
  VP_GUARD_END("vp_op_complete", return )
}

void vp_external_ops_done(int64_t handle) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Existing();
  if (r != nullptr && handle > 0) {
    r->ExternalOpsDone(static_cast<uint64_t>(handle));
  }
  VP_GUARD_END("vp_external_ops_done", return )
}

void vp_set_gpu_gate(vp_gpu_gate gate) {
  VP_GUARD_BEGIN
  namespace p = vllm_profiler::probe;
  ProbeRuntime* r;
  {
    vllm_profiler::MutexLock lock(&p::g_create_mu);
    p::g_pending->gpu_gate = gate;
    r = p::g_runtime.load();
  }
  if (r != nullptr) r->SetGpuGate(gate);
  VP_GUARD_END("vp_set_gpu_gate", return )
}

int32_t vp_request_capture(uint32_t num_steps, uint32_t duration_ms,
                           int32_t record_shapes) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = Runtime();
  if (r == nullptr) return -1;
  return r->RequestCapture(num_steps, duration_ms, record_shapes != 0) ? 0 : -1;
  VP_GUARD_END("vp_request_capture", return -1)
}

void vp_shutdown(uint32_t timeout_ms) {
  VP_GUARD_BEGIN
  ProbeRuntime* r = vllm_profiler::probe::g_runtime.load();
  if (r != nullptr) r->Shutdown(absl::Milliseconds(timeout_ms));
  VP_GUARD_END("vp_shutdown", return )
}

void vp_get_stats(vp_stats* out) {
  VP_GUARD_BEGIN
  if (out == nullptr) return;
  *out = vp_stats{};
  out->enabled = vllm_profiler::probe::g_disabled.load() ? 0 : 1;
  ProbeRuntime* r = vllm_profiler::probe::g_runtime.load();
  if (r == nullptr) return;
  ProbeRuntime::Stats s = r->stats();
  out->events_recorded = s.events_recorded;
  out->events_dropped_buffer_full = s.events_dropped_buffer_full;
  out->events_dropped_send = s.events_dropped_send;
  out->captures_started = s.captures_started;
  out->captures_finished = s.captures_finished;
  out->batches_sent = s.batches_sent;
  out->connected = s.connected ? 1 : 0;
  VP_GUARD_END("vp_get_stats", return )
}

}  // extern "C"
