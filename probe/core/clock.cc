#include "probe/core/clock.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace vllm_profiler::probe {

bool RealClock::TscIsInvariant() {
#if defined(__x86_64__)
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    // Word boundaries: " constant_tsc " and " nonstop_tsc ".
    line += ' ';
    return line.find(" constant_tsc ") != std::string::npos &&
           line.find(" nonstop_tsc ") != std::string::npos;
  }
#endif
  return false;
}

int64_t RealClock::NowTicks() const {
#if defined(__x86_64__)
  if (use_tsc_) return static_cast<int64_t>(__rdtsc());
#endif
  return Read(CLOCK_MONOTONIC);
}

const RealClock* RealClock::Get() {
  static const RealClock* clock = new RealClock(TscIsInvariant());
  return clock;
}

const RealClock* RealClock::GetMonotonicOnly() {
  static const RealClock* clock = new RealClock(false);
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

TickConverter::TickConverter(const Clock* clock)
    : clock_(clock), identity_(clock->ticks_are_ns()) {
  if (!identity_) anchors_.push_back(ReadPair());
}

TickConverter::Pair TickConverter::ReadPair() const {
  // The tightest of three tries: a pair read across a preemption would
  // put its error into every tick converted with it.
  Pair best{0, 0};
  int64_t best_width = INT64_MAX;
  for (int i = 0; i < 3; ++i) {
    const int64_t n1 = clock_->MonotonicNs();
    const int64_t t = clock_->NowTicks();
    const int64_t n2 = clock_->MonotonicNs();
    if (n2 - n1 < best_width) {
      best_width = n2 - n1;
      best = Pair{t, n1 + (n2 - n1) / 2};
    }
    if (best_width < 2000) break;
  }
  return best;
}

void TickConverter::Anchor(int64_t min_interval_ns) {
  if (identity_) return;
  const Pair p = ReadPair();
  const Pair& last = anchors_.back();
  if (p.ns - last.ns < min_interval_ns || p.ticks <= last.ticks) return;
  anchors_.push_back(p);
  last_ = CachedSegment{};
  if (anchors_.size() > kMaxAnchors) anchors_.pop_front();
}

size_t TickConverter::Segment(int64_t ticks) const {
  auto it =
      std::upper_bound(anchors_.begin(), anchors_.end(), ticks,
                       [](int64_t t, const Pair& p) { return t < p.ticks; });
  const size_t k = static_cast<size_t>(it - anchors_.begin());
  return std::min(k == 0 ? 0 : k - 1, anchors_.size() - 2);
}

int64_t TickConverter::ToNsSlow(int64_t ticks) {
  if (anchors_.size() < 2) {
    // No rate yet (a capture's first records, converted before the second
    // anchor): take one now.
    Anchor(0);
    if (anchors_.size() < 2) return anchors_.back().ns;
  }
  const size_t k = Segment(ticks);
  const Pair& a = anchors_[k];
  const Pair& b = anchors_[k + 1];
  last_.lo = k == 0 ? INT64_MIN : a.ticks;
  last_.hi = k + 2 == anchors_.size() ? INT64_MAX : b.ticks;
  last_.a_ticks = a.ticks;
  last_.a_ns = a.ns;
  last_.rate =
      static_cast<double>(b.ns - a.ns) / static_cast<double>(b.ticks - a.ticks);
  return last_.Map(ticks);
}

}  // namespace vllm_profiler::probe
