// Saturating arithmetic for counters that add values a peer reports (drop
// counts, event counts): a hostile or buggy probe can send 2^64-1, and a sum
// that wraps would show a small or absurd number instead of "at least this
// many". Saturated sums stay at UINT64_MAX.
#ifndef VLLM_PROFILER_COMMON_SATURATING_H_
#define VLLM_PROFILER_COMMON_SATURATING_H_

#include <atomic>
#include <cstdint>
#include <limits>

namespace vllm_profiler {

inline uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  const uint64_t sum = a + b;
  return sum < a ? std::numeric_limits<uint64_t>::max() : sum;
}

// `counter` += `n`, saturating. Relaxed: statistics.
inline void SaturatingAdd(std::atomic<uint64_t>* counter, uint64_t n) {
  uint64_t old = counter->load(std::memory_order_relaxed);
  while (!counter->compare_exchange_weak(old, SaturatingAdd(old, n),
                                         std::memory_order_relaxed)) {
  }
}

}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COMMON_SATURATING_H_
