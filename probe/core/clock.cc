#include "probe/core/clock.h"

namespace vllm_profiler::probe {

const RealClock* RealClock::Get() {
  static const RealClock* clock = new RealClock();
  return clock;
}

v1::ClockPair ReadClockPair(const Clock& clock) {
  const int64_t m1 = clock.MonotonicNs();
  const int64_t r = clock.RealtimeNs();
  const int64_t m2 = clock.MonotonicNs();
  v1::ClockPair pair;
  pair.set_monotonic_ns(m1 + (m2 - m1) / 2);
  pair.set_realtime_ns(r);
  return pair;
}

}  // namespace vllm_profiler::probe
