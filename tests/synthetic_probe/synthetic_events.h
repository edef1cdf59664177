// Generates the messages a real probe would send for one process: a Hello,
// CaptureStarted, EventBatches and CaptureFinished, with events of every
// EventKind laid out like a vLLM decode loop:
//
//   STEP (tid main) contains repeated groups of
//     CPU_OP aten::* (shapes, dtypes, args, sequence number, external id)
//       CUDA_RUNTIME cudaLaunchKernel (correlation id)
//     KERNEL on device 0 stream 7 (same correlation id and external id)
//   and, once per step, every other kind: CUDA_DRIVER cuLaunchKernel + its
//   KERNEL, cudaMemcpyAsync + MEMCPY, cudaMemsetAsync + MEMSET, SYNC,
//   INSTANT, COUNTER (allocated bytes), USER_SPAN, OVERHEAD, CUDA_GRAPH,
//   PYTHON, and a CPU_OP on a second thread.
//
// The first batch defines every interned string and both thread names, so
// each batch after it carries only events (like a probe in steady state).
// Timestamps are a fake CLOCK_MONOTONIC starting at Options::start_ns;
// spans nest properly (children inside parents, GPU work after its launch).
//
// Deterministic for given Options. Not thread-safe: one generator per
// simulated process.
#ifndef VLLM_PROFILER_TESTS_SYNTHETIC_PROBE_SYNTHETIC_EVENTS_H_
#define VLLM_PROFILER_TESTS_SYNTHETIC_PROBE_SYNTHETIC_EVENTS_H_

#include <cstdint>
#include <string>

#include "proto/profiler.pb.h"

namespace vllm_profiler::synthetic_probe {

class SyntheticEvents {
 public:
  struct Options {
    int64_t pid = 1000;
    uint64_t process_uid = 0;  // Hello.process_uid; 0 = not set.
    // Rank fields of the Hello; -1 = unknown.
    int32_t rank = -1;
    int32_t world_size = -1;
    // Exactly this many events are generated in total.
    uint64_t total_events = 10000;
    // Events per EventBatch (the last one may be smaller).
    uint32_t batch_events = 2000;
    std::string capture_id = "synthetic";
    v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_WINDOW;
    // CaptureStarted.requested_name (what VLLM_TORCH_PROFILE names).
    std::string requested_name;
    // Fake CLOCK_MONOTONIC of the first event; realtime_ns pairs with it.
    int64_t start_ns = 1000000000000;
    int64_t realtime_ns = 1700000000000000000;
    // The step number of the first step (the window default starts at 100).
    int64_t first_step = 100;
    // Kernel/op groups per step (3 events each).
    uint32_t groups_per_step = 100;
  };

  explicit SyntheticEvents(Options options);
  SyntheticEvents(const SyntheticEvents&) = delete;
  SyntheticEvents& operator=(const SyntheticEvents&) = delete;

  v1::ProbeMessage Hello() const;
  v1::ProbeMessage CaptureStarted() const;
  // `dropped` goes to drops.events_dropped_buffer_full (and the other
  // counters get small fixed values when it is non-zero).
  v1::ProbeMessage CaptureFinished(uint64_t dropped = 0) const;

  // Clears `batch` and fills it with the next events. Returns false (and
  // leaves `batch` empty) once all events have been generated.
  bool NextBatch(v1::EventBatch* batch);

  uint64_t events_generated() const { return generated_; }
  uint64_t batches_generated() const { return sequence_; }
  // Steps started so far.
  int64_t steps() const { return step_index_; }

  // Interned string ids (fixed; defined in the first batch).
  enum StringId : uint32_t {
    kStrMainThread = 1,
    kStrWorkerThread,
    kStrStep,
    kStrMatmul,
    kStrAdd,
    kStrSoftmax,
    kStrLaunchKernel,
    kStrCuLaunchKernel,
    kStrMemcpyAsync,
    kStrMemsetAsync,
    kStrGemmKernel,
    kStrElementwiseKernel,
    kStrSoftmaxKernel,
    kStrMemcpyHtoD,
    kStrMemset,
    kStrStreamSync,
    kStrInstant,
    kStrMemoryCounter,
    kStrUserSpan,
    kStrOverhead,
    kStrGraph,
    kStrPython,
    kStrDtypeHalf,
    kStrDtypeFloat,
    kStrArgAlpha,
    kStrArgName,
    kStrArgValue,
    kStrArgFlag,
    kStrCategory,
    kNumStrings,  // One past the last id.
  };
  static constexpr uint32_t kMainTid = 4242;
  static constexpr uint32_t kWorkerTid = 4243;
  static constexpr uint32_t kGpuStream = 7;
  static constexpr uint32_t kCopyStream = 13;
  // Events of the once-per-step block (all kinds besides the groups).
  static constexpr uint32_t kExtraEventsPerStep = 16;

 private:
  // Appends the events of the current step that fit in `room`; returns how
  // many were appended.
  uint32_t EmitStepEvents(v1::EventBatch* batch, uint32_t room);
  // The once-per-step events: extras 0-5 are three API calls, each with the
  // GPU activity it started; 6-12 markers (sync, instant, counter, user
  // span, overhead, CUDA graph, Python); 13-14 operators on a second
  // thread; the rest a closing memory counter.
  void AddExtra(v1::EventBatch* batch, uint32_t index);
  void AddCallAndActivity(v1::EventBatch* batch, uint32_t index);
  void AddMarker(v1::EventBatch* batch, uint32_t index);
  void AddWorkerOp(v1::EventBatch* batch, uint32_t index);
  v1::Event* NewEvent(v1::EventBatch* batch, v1::EventKind kind, uint32_t name,
                      int64_t start, int64_t duration);

  const Options options_;
  uint64_t generated_ = 0;
  uint64_t sequence_ = 0;
  uint64_t next_correlation_ = 1;
  uint64_t next_external_ = 1;
  // Position within the current step.
  int64_t step_index_ = 0;          // Steps started.
  uint64_t step_events_total_ = 0;  // Events of the current step.
  uint64_t step_events_done_ = 0;
  int64_t step_start_ns_ = 0;
  int64_t next_step_start_ns_ = 0;
};

}  // namespace vllm_profiler::synthetic_probe

#endif  // VLLM_PROFILER_TESTS_SYNTHETIC_PROBE_SYNTHETIC_EVENTS_H_
