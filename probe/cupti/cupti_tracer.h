// CUPTI implementation of the probe's GpuTracer seam (probe/core/gpu_tracer.h).
//
// CuptiTracer records GPU activity with the CUPTI Activity API for the span
// of one capture: kernels, memcpy/memset, CUDA runtime and driver API calls,
// synchronization, CUPTI overhead, CUDA graph launches and NVTX ranges. It
// converts each record into a v1::Event on the probe's CLOCK_MONOTONIC
// timeline and hands it to the capture's GpuEventSink.
//
// libcupti is never linked: it is dlopen()ed on the first Start() (see
// cupti_loader.h for the search order). Without libcupti, without a CUDA
// driver or device, or when CUDA is not initialized in this process, Start()
// returns UNAVAILABLE with a one-line reason (logged once per reason); when
// another profiler holds CUPTI (torch.profiler with CUDA activity, nsys) it
// returns FAILED_PRECONDITION "CUPTI is in use by another profiler (...)".
// The capture goes on with CPU events in both cases. Describe() is "" until
// the first Start() tried to load libcupti.
//
// Environment (read by the tracer itself):
//   VLLM_PROFILER_CUPTI_LIB          libcupti file or folder (cupti_loader.h)
//   VLLM_PROFILER_CUPTI_GRAPH_TRACE  "1": CUDA graph launches as one record
//   NVTX_INJECTION64_PATH            NVTX's own: must name libcupti before
//                                    the application's first NVTX call for
//                                    NVTX ranges to reach CUPTI (MARKER);
//                                    not set by the tracer, since it routes
//                                    every NVTX call of the process through
//                                    CUPTI, capture or not.
//
// Ownership: the core owns the tracer (one per process). The sink passed to
// Start() must outlive the matching Stop(). Only one CuptiTracer may be
// started at a time in a process (CUPTI callbacks are process-global); a
// second concurrent Start() returns FAILED_PRECONDITION.
//
// Threads: see GpuTracer. Start/Stop on the core's control thread; Push/Pop
// on application threads (lock- and allocation-free); CUPTI's buffer
// callbacks on CUPTI's threads. No exception escapes a CUPTI callback.
// Call PopExternalCorrelation() after every PushExternalCorrelation() call,
// whether or not a capture still runs: the tracer counts per thread what it
// really pushed and pops only that, so CUPTI's stack stays balanced (a
// skipped pop would leave a stale operator id under later launches).
#ifndef VLLM_PROFILER_PROBE_CUPTI_CUPTI_TRACER_H_
#define VLLM_PROFILER_PROBE_CUPTI_CUPTI_TRACER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "probe/core/gpu_tracer.h"

namespace vllm_profiler::probe::cupti {

class CuptiApi;  // probe/cupti/cupti_api.h

struct CuptiTracerOptions {
  // Size of one activity buffer handed to CUPTI (kineto's size).
  size_t buffer_bytes = 4 << 20;
  // Cap on all activity buffers alive at once. When reached CUPTI gets no
  // buffer (it drops and counts the records) and the tracer counts the
  // refused buffer; both end up in GpuEventSink::AddTracerDrops.
  size_t max_buffer_bytes = 128 << 20;
  // Activity kinds beyond kernels/memcpy/memset/external correlation.
  bool runtime_api = true;
  bool driver_api = true;
  bool synchronization = true;
  bool overhead = true;
  // CUDA graph launches as one GRAPH_TRACE record each (CUPTI then stops
  // reporting the graph's kernels one by one). Unset: on when the
  // environment has VLLM_PROFILER_CUPTI_GRAPH_TRACE=1. Off (the default),
  // a graph launch shows as its cudaGraphLaunch call with a flow to every
  // kernel it ran, each kernel carrying the graph id.
  std::optional<bool> graph_trace;
  bool nvtx = true;  // MARKER records; needs NVTX_INJECTION64_PATH.
  // GPU records waiting for their external correlation record are held at
  // most this many at a time; beyond, they are sent without external id.
  size_t max_pending_events = 1 << 18;
  // Where the tracer's own log lines go (one line, no newline). Default:
  // stderr prefixed "vllm-profiler: ".
  std::function<void(std::string_view)> log;
  // CLOCK_MONOTONIC in ns; replaced by tests.
  std::function<int64_t()> monotonic_ns;
  // Loads the CUPTI seam; default: LoadCuptiApi() from cupti_loader.h with
  // the process environment. Tests inject a fake.
  std::function<absl::StatusOr<std::unique_ptr<CuptiApi>>()> load_api;
};

// The production tracer, with defaults.
std::unique_ptr<GpuTracer> NewCuptiTracer();
std::unique_ptr<GpuTracer> NewCuptiTracer(CuptiTracerOptions options);

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_CUPTI_TRACER_H_
