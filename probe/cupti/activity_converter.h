// ActivityConverter: turns CUPTI activity records into v1::Events for one
// capture.
//
// What it produces (proto/profiler.proto):
//   CONCURRENT_KERNEL/KERNEL -> KERNEL (demangled name, grid, block,
//       registers, static/dynamic shared memory, graph id, device, stream,
//       context, correlation id)
//   MEMCPY / MEMCPY2 (peer) -> MEMCPY ("Memcpy HtoD (Pinned -> Device)")
//   MEMSET -> MEMSET ("Memset (Device)")
//   RUNTIME / DRIVER -> CUDA_RUNTIME / CUDA_DRIVER (callback name without
//       its "_v7000" suffix, tid)
//   SYNCHRONIZATION -> SYNC ("Stream Sync", ...)
//   OVERHEAD -> OVERHEAD ("CUPTI overhead: buffer flush", ...)
//   GRAPH_TRACE -> CUDA_GRAPH ("CUDA graph <id>", arg graph_id)
//   MARKER start/end pairs -> USER_SPAN; instantaneous markers -> INSTANT
//       (NVTX; domain as category)
//   EXTERNAL_CORRELATION (CUSTOM0) -> no event: maps a correlation id to the
//       torch operator id, set as external_id on the API and GPU events with
//       that correlation id (kineto's join).
//
// Joining: API calls (and syncs) are sent at once, with the external id if
// its record came first (CUPTI writes it at API entry, the API record at
// exit, in the same thread buffer). A GPU event whose correlation id has no
// external correlation yet is held (at most Options::max_pending_events)
// until the external correlation arrives, or the buffer holding its API
// call has been read without one (the launch was outside any operator:
// EndBuffer sends it without external id), or the capture finishes (Finish
// sends the rest). Timestamps go through the GpuClockMap at Process().
//
// Record layouts are those of the CUDA 13 headers (Kernel10, Memcpy6,
// Memset4, ...). Only fields that sit at the same offsets in the previous
// record versions that CUPTI 12.x delivers (Kernel9, Memcpy5, Memset3, ...)
// are read; activity_converter_test checks those offsets.
//
// Not thread-safe: the tracer serializes calls under its lock.
#ifndef VLLM_PROFILER_PROBE_CUPTI_ACTIVITY_CONVERTER_H_
#define VLLM_PROFILER_PROBE_CUPTI_ACTIVITY_CONVERTER_H_

#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "probe/core/gpu_tracer.h"
#include "probe/cupti/gpu_clock_map.h"

namespace vllm_profiler::probe::cupti {

class ActivityConverter {
 public:
  struct Options {
    // GPU/API events waiting for their external correlation record.
    size_t max_pending_events = 1 << 18;
    // correlation id -> external id entries, and correlation ids of API
    // calls read, kept per capture (each); beyond, new ones are ignored
    // (and counted).
    size_t max_correlations = 1 << 21;
    // NVTX ranges open at once (start seen, end not yet).
    size_t max_open_markers = 1 << 14;
  };
  // Returns CUPTI's name for a callback id, or nullptr.
  using CallbackNameFn =
      std::function<const char*(CUpti_CallbackDomain domain, uint32_t cbid)>;

  struct Stats {
    uint64_t records = 0;  // Records seen.
    uint64_t events = 0;   // Events sent to the sink.
    uint64_t ignored = 0;  // Kinds not converted, malformed records.
    uint64_t correlations_dropped = 0;
    uint64_t pending_overflow = 0;  // Sent early without external id.
  };

  ActivityConverter(Options options, CallbackNameFn callback_name);
  ActivityConverter(const ActivityConverter&) = delete;
  ActivityConverter& operator=(const ActivityConverter&) = delete;

  // Starts a capture: forgets all state of the previous one. `correlate`
  // false (the flight recorder, which records no operators): GPU events are
  // sent at once, never held for an external correlation.
  void Begin(GpuEventSink* sink, const GpuClockMap* clock,
             bool correlate = true);
  // Converts one record (sink must be set).
  void Process(const CUpti_Activity& record);
  // Sends held events whose external correlation has arrived.
  void EndBuffer();
  // Sends everything still held and forgets the sink.
  void Finish();

  const Stats& stats() const { return stats_; }
  bool active() const { return sink_ != nullptr; }

 private:
  struct OpenMarker {
    int64_t start_ns = 0;
    uint32_t name_id = 0;
    uint32_t category_id = 0;
    uint32_t tid = 0;
  };

  void Emit(v1::Event event);
  // GPU side: sets external_id when known, else holds the event.
  void EmitCorrelated(v1::Event event);
  // API side: sets external_id when known and sends at once.
  void EmitApiSide(v1::Event event, bool is_api_call);
  uint32_t Intern(const std::string& value);
  uint32_t KernelName(const char* mangled);
  uint32_t ApiName(CUpti_CallbackDomain domain, uint32_t cbid);
  void SetTimes(uint64_t start, uint64_t end, v1::Event* event) const;
  // Kind, times, device, stream, context and correlation of a GPU operation;
  // false (counted as ignored) when CUPTI could not time it.
  template <class Record>
  bool StartGpuEvent(const Record& r, v1::EventKind kind, v1::Event* event);

  void ProcessKernel(const CUpti_ActivityKernel10& r);
  void ProcessMemcpy(const CUpti_ActivityMemcpy6& r);
  void ProcessPeerMemcpy(const CUpti_ActivityMemcpyPtoP4& r);
  void ProcessMemset(const CUpti_ActivityMemset4& r);
  void ProcessApi(const CUpti_ActivityAPI& r);
  void ProcessSync(const CUpti_ActivitySynchronization2& r);
  void ProcessOverhead(const CUpti_ActivityOverhead3& r);
  void ProcessGraph(const CUpti_ActivityGraphTrace2& r);
  void ProcessMarker(const CUpti_ActivityMarker2& r);
  void ProcessExternalCorrelation(const CUpti_ActivityExternalCorrelation& r);

  const Options options_;
  const CallbackNameFn callback_name_;
  GpuEventSink* sink_ = nullptr;
  const GpuClockMap* clock_ = nullptr;
  bool correlate_ = true;
  Stats stats_;
  absl::flat_hash_map<uint32_t, uint64_t> external_ids_;  // correlation ->
  // Correlation ids of API calls read in completed buffers / this buffer.
  absl::flat_hash_set<uint32_t> api_done_;
  std::vector<uint32_t> api_seen_in_buffer_;
  std::vector<v1::Event> pending_;
  absl::flat_hash_map<uint32_t, OpenMarker> open_markers_;  // marker id ->
  // Interned ids are per sink (per capture).
  absl::flat_hash_map<const char*, uint32_t> kernel_names_;
  absl::flat_hash_map<uint64_t, uint32_t> api_names_;  // domain<<32 | cbid
  absl::flat_hash_map<std::string, uint32_t> names_;
};

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_ACTIVITY_CONVERTER_H_
