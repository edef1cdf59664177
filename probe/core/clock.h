// The probe's clock seam. Every timestamp the probe sends is CLOCK_MONOTONIC
// nanoseconds (the wire contract); realtime is only read for ClockPairs.
//
// The record path reads NowTicks(), which is the CPU's time-stamp counter
// where it is invariant (constant_tsc and nonstop_tsc: one rdtsc, a few ns,
// against clock_gettime's 20-130 ns on virtual machines) and MonotonicNs()
// elsewhere. The sender turns ticks into nanoseconds with a TickConverter.
//
// RealClock is stateless after construction and thread-safe. FakeClock is
// for tests: it only moves when told, and may be read from any thread.
#ifndef VLLM_PROFILER_PROBE_CORE_CLOCK_H_
#define VLLM_PROFILER_PROBE_CORE_CLOCK_H_

#include <time.h>

#include <atomic>
#include <cstdint>
#include <deque>

#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t MonotonicNs() const = 0;
  virtual int64_t RealtimeNs() const = 0;
  // The record path's timestamp, in ticks (see ticks_are_ns()).
  virtual int64_t NowTicks() const { return MonotonicNs(); }
  // True when NowTicks() is MonotonicNs() (no conversion needed).
  virtual bool ticks_are_ns() const { return true; }
};

class RealClock final : public Clock {
 public:
  int64_t MonotonicNs() const override { return Read(CLOCK_MONOTONIC); }
  int64_t RealtimeNs() const override { return Read(CLOCK_REALTIME); }
  int64_t NowTicks() const override;
  bool ticks_are_ns() const override { return !use_tsc_; }

  // The process-wide instances (never destroyed): with the TSC when the CPU
  // has an invariant one, and one that never uses it.
  static const RealClock* Get();
  static const RealClock* GetMonotonicOnly();
  // Whether this CPU's TSC can time the record path (/proc/cpuinfo flags).
  static bool TscIsInvariant();

 private:
  explicit RealClock(bool use_tsc) : use_tsc_(use_tsc) {}
  static int64_t Read(clockid_t id) {
    timespec ts;
    clock_gettime(id, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  }
  const bool use_tsc_;
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

// Turns a clock's ticks into CLOCK_MONOTONIC ns. It keeps (ticks, ns)
// anchor pairs, read back to back, and maps ticks linearly between the two
// anchors around them, so the error stays that of reading a pair (tens of
// ns) however the tick rate drifts against CLOCK_MONOTONIC (NTP slewing,
// a VM's TSC scaling); kineto's ApproximateClockToUnixTimeConverter uses one
// pair at each end of a whole capture instead. Ticks older than the oldest
// kept anchor (4,096 of them) or newer than the newest use the nearest
// segment's rate.
//
// Owned and called by one thread (the sender). Identity when the clock's
// ticks are ns.
class TickConverter {
 public:
  explicit TickConverter(const Clock* clock);
  TickConverter(const TickConverter&) = delete;
  TickConverter& operator=(const TickConverter&) = delete;

  // Records an anchor, at most one per `min_interval_ns` (a first anchor is
  // taken at construction). Call it before converting ticks recorded
  // since the last call.
  void Anchor(int64_t min_interval_ns = 1000000);
  int64_t ToNs(int64_t ticks) {
    if (identity_) return ticks;
    // Records come mostly in order, so most ticks fall in the segment of
    // the last conversion: inline, without the deque's indexing or a
    // division (the sender converts two ticks per operator).
    if (ticks >= last_.lo && ticks < last_.hi) return last_.Map(ticks);
    return ToNsSlow(ticks);
  }

  size_t num_anchors() const { return anchors_.size(); }

 private:
  struct Pair {
    int64_t ticks;
    int64_t ns;
  };
  // The segment of the last conversion: the ticks it covers [lo, hi) (the
  // first and last segments extend to the ends of the range) and its map.
  struct CachedSegment {
    int64_t lo = 0, hi = 0;  // Empty until a conversion fills it.
    int64_t a_ticks = 0, a_ns = 0;
    double rate = 0;  // ns per tick.
    int64_t Map(int64_t ticks) const {
      // llround without the libm call: x - trunc(x) is exact here, and ties
      // go away from zero as llround's do.
      const double x = static_cast<double>(ticks - a_ticks) * rate;
      int64_t r = static_cast<int64_t>(x);
      const double frac = x - static_cast<double>(r);
      r += (frac >= 0.5) - (frac <= -0.5);
      return a_ns + r;
    }
  };
  static constexpr size_t kMaxAnchors = 4096;
  Pair ReadPair() const;
  // Index k of the segment [k, k+1] to use for `ticks` (at least 2
  // anchors).
  size_t Segment(int64_t ticks) const;
  int64_t ToNsSlow(int64_t ticks);

  const Clock* const clock_;
  const bool identity_;
  std::deque<Pair> anchors_;
  // The last segment used (records mostly come in order); emptied
  // whenever the anchors change.
  CachedSegment last_;
};

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_CLOCK_H_
