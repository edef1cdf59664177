// The seam between the probe core and GPU activity tracing (CUPTI).
//
// The core owns one GpuTracer per process (CuptiTracer in production, a fake
// in tests) and one GpuEventSink per capture. The tracer turns vendor
// activity records into v1::Event messages already on the probe's
// CLOCK_MONOTONIC timeline and hands them to the sink.
//
// Threads: Start/Stop are called by the core's control thread, never from a
// CUDA callback. Push/PopExternalCorrelation are called on the application
// thread that runs a torch operator (hot path while capturing with GPU
// activity on: must not allocate or lock). The sink may be called from any
// thread, including CUPTI's buffer-completed thread.
#ifndef VLLM_PROFILER_PROBE_CORE_GPU_TRACER_H_
#define VLLM_PROFILER_PROBE_CORE_GPU_TRACER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

// Receives converted GPU events. Implementations are thread-safe and never
// block for long: when the probe's memory bound is hit they drop and count.
class GpuEventSink {
 public:
  virtual ~GpuEventSink() = default;
  // Returns the stream-wide interned id for `value` (never 0).
  virtual uint32_t InternString(std::string_view value) = 0;
  virtual void AddEvent(v1::Event event) = 0;
  // Records lost by the tracer itself (CUPTI drops, pool exhausted).
  virtual void AddTracerDrops(uint64_t records_dropped,
                              uint64_t buffers_dropped) = 0;
};

class GpuTracer {
 public:
  virtual ~GpuTracer() = default;

  // Starts recording for one capture. Returns FAILED_PRECONDITION or
  // UNAVAILABLE with a user-facing reason ("libcupti not found: ...",
  // "no CUDA device", "CUPTI is in use by another profiler") when GPU
  // activity cannot be recorded; the capture then goes on without it.
  virtual absl::Status Start(GpuEventSink* sink) = 0;

  // Stops recording, flushes every pending record into the sink passed to
  // Start (or StartFlight), and returns when done. Safe to call when Start
  // failed.
  virtual void Stop() = 0;

  // The flight recorder's level gpu (VLLM_PROFILER_FLIGHT=gpu): records
  // only kernels, memcpy and memset into `sink` until Stop(), converted as
  // for a capture but without external correlation (Push/Pop stay no-ops,
  // no event is held for one). Fails as Start does; a Start while flight
  // recording (or the reverse) is FAILED_PRECONDITION: the core stops one
  // before it starts the other. Default: UNIMPLEMENTED.
  virtual absl::Status StartFlight(GpuEventSink* sink) {
    (void)sink;
    return absl::UnimplementedError("GPU flight recording not supported");
  }

  // Another profiler took CUPTI over while recording: lets go of CUPTI
  // without disabling the activity kinds or flushing (the other profiler
  // enabled the same kinds and owns the buffers now; disabling them would
  // take its kernels away). What was not delivered yet is lost. Default:
  // Stop().
  virtual void Yield() { Stop(); }

  // Bracket a torch operator so GPU work it launches is attributed to it
  // (CUPTI external correlation). No-ops when not started.
  virtual void PushExternalCorrelation(uint64_t operator_id) = 0;
  virtual void PopExternalCorrelation() = 0;

  // One line for the log and the collector's status: which library was
  // loaded from where, or why none was.
  virtual std::string Describe() const = 0;
};

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_GPU_TRACER_H_
