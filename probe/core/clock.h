// The probe's clock seam. Every timestamp the probe sends is CLOCK_MONOTONIC
// nanoseconds (the wire contract); realtime is only read for ClockPairs.
//
// RealClock is stateless and thread-safe. FakeClock is for tests: it only
// moves when told, and may be read from any thread.
#ifndef VLLM_PROFILER_PROBE_CORE_CLOCK_H_
#define VLLM_PROFILER_PROBE_CORE_CLOCK_H_

#include <time.h>

#include <atomic>
#include <cstdint>

#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t MonotonicNs() const = 0;
  virtual int64_t RealtimeNs() const = 0;
};

class RealClock final : public Clock {
 public:
  int64_t MonotonicNs() const override { return Read(CLOCK_MONOTONIC); }
  int64_t RealtimeNs() const override { return Read(CLOCK_REALTIME); }
  // The process-wide instance (never destroyed).
  static const RealClock* Get();

 private:
  static int64_t Read(clockid_t id) {
    timespec ts;
    clock_gettime(id, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ns = 1000000000) : now_(start_ns) {}
  int64_t MonotonicNs() const override {
    // Relaxed: tests advance the clock from one thread; readers only need
    // some recent value.
    return now_.load(std::memory_order_relaxed);
  }
  int64_t RealtimeNs() const override {
    return MonotonicNs() + kRealtimeOffsetNs;
  }
  void AdvanceNs(int64_t ns) { now_.fetch_add(ns, std::memory_order_relaxed); }
  static constexpr int64_t kRealtimeOffsetNs = 1700000000000000000;

 private:
  std::atomic<int64_t> now_;
};

// Reads monotonic, realtime, monotonic back to back; the pair is the
// midpoint of the two monotonic reads (proto ClockPair's rule).
v1::ClockPair ReadClockPair(const Clock& clock);

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_CLOCK_H_
