#include "probe/cupti/gpu_clock_map.h"

#include <cmath>

namespace vllm_profiler::probe::cupti {

GpuClockPair MeasureGpuClockPair(const std::function<bool(uint64_t*)>& gpu,
                                 const std::function<int64_t()>& monotonic) {
  GpuClockPair pair;
  const int64_t before = monotonic();
  uint64_t gpu_ns = 0;
  const bool ok = gpu(&gpu_ns);
  const int64_t after = monotonic();
  pair.gpu_ns = ok ? gpu_ns : 0;
  pair.monotonic_ns = before + (after - before) / 2;
  return pair;
}

void GpuClockMap::Reset(GpuClockPair first) {
  first_ = first;
  slope_ = 1.0;
}

void GpuClockMap::AddPair(GpuClockPair pair) {
  if (pair.gpu_ns <= first_.gpu_ns ||
      pair.gpu_ns - first_.gpu_ns < kMinSpanNs) {
    return;
  }
  const double slope =
      static_cast<double>(pair.monotonic_ns - first_.monotonic_ns) /
      static_cast<double>(pair.gpu_ns - first_.gpu_ns);
  // A broken reading (clock jump, zero timestamp) must not fold the
  // timeline: real drift is parts per million.
  if (!std::isfinite(slope) || slope < 0.9 || slope > 1.1) return;
  slope_ = slope;
}

int64_t GpuClockMap::ToMonotonic(uint64_t gpu_ns) const {
  // Deltas stay well inside double's 53-bit mantissa (104 days in ns).
  const double delta = gpu_ns >= first_.gpu_ns
                           ? static_cast<double>(gpu_ns - first_.gpu_ns)
                           : -static_cast<double>(first_.gpu_ns - gpu_ns);
  return first_.monotonic_ns +
         static_cast<int64_t>(std::llround(delta * slope_));
}

}  // namespace vllm_profiler::probe::cupti
