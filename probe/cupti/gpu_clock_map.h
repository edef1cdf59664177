// GpuClockMap: converts CUPTI timestamps (cuptiGetTimestamp's clock, the
// clock of every activity record) to the probe's CLOCK_MONOTONIC ns.
//
// The map is linear through two clock pairs: the one taken when the capture
// starts and the latest one (taken whenever CUPTI completes a buffer and at
// the capture's end). Every record in a completed buffer happened before the
// pair taken at its completion, so interpolation between the pairs corrects
// drift between the two clocks over the capture; records after the latest
// pair are extrapolated with the same slope. With a single pair the map is a
// pure offset.
//
// Not thread-safe: the tracer calls it under its own lock.
#ifndef VLLM_PROFILER_PROBE_CUPTI_GPU_CLOCK_MAP_H_
#define VLLM_PROFILER_PROBE_CUPTI_GPU_CLOCK_MAP_H_

#include <cstdint>
#include <functional>

namespace vllm_profiler::probe::cupti {

struct GpuClockPair {
  uint64_t gpu_ns = 0;       // cuptiGetTimestamp.
  int64_t monotonic_ns = 0;  // CLOCK_MONOTONIC.
};

// Reads monotonic, gpu, monotonic back to back and pairs the gpu reading
// with the midpoint of the two monotonic readings. `gpu` returns false when
// the timestamp cannot be read; then the result has gpu_ns 0.
GpuClockPair MeasureGpuClockPair(const std::function<bool(uint64_t*)>& gpu,
                                 const std::function<int64_t()>& monotonic);

class GpuClockMap {
 public:
  GpuClockMap() = default;

  // Starts over from `first` (the capture-start pair).
  void Reset(GpuClockPair first);
  // A later pair; ignored unless its gpu time is after the first pair's
  // (a pair too close to the first would give a noisy slope).
  void AddPair(GpuClockPair pair);

  int64_t ToMonotonic(uint64_t gpu_ns) const;
  // ns of monotonic time per ns of GPU time (1.0 until a second pair).
  double slope() const { return slope_; }

 private:
  // Pairs closer than this (GPU ns) do not update the slope.
  static constexpr uint64_t kMinSpanNs = 1000000;  // 1 ms.

  GpuClockPair first_;
  double slope_ = 1.0;
};

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_GPU_CLOCK_MAP_H_
