#include "probe/core/clock.h"

#include <thread>

#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

// Ticks run at `rate` ticks per ns from an arbitrary origin; the rate can
// change mid-test (a VM's TSC scaling, NTP slewing the other way).
class ScaledClock final : public Clock {
 public:
  int64_t MonotonicNs() const override { return ns_; }
  int64_t RealtimeNs() const override { return ns_; }
  int64_t NowTicks() const override { return ticks_; }
  bool ticks_are_ns() const override { return false; }
  void Advance(int64_t ns) {
    ns_ += ns;
    ticks_ += static_cast<int64_t>(static_cast<double>(ns) * rate_);
  }
  int64_t ticks() const { return ticks_; }
  double rate_ = 3.0;

 private:
  int64_t ns_ = 5000000000;
  int64_t ticks_ = 123456789;
};

TEST(TickConverterTest, IdentityWhenTicksAreNs) {
  FakeClock clock;
  TickConverter c(&clock);
  EXPECT_EQ(c.ToNs(42), 42);
  EXPECT_EQ(c.num_anchors(), 0u);
}

TEST(TickConverterTest, ExactBetweenAnchorsAcrossARateChange) {
  ScaledClock clock;
  TickConverter c(&clock);
  const int64_t ns0 = clock.MonotonicNs();
  const int64_t t0 = clock.ticks();
  clock.Advance(10000000);  // 10 ms at 3 ticks/ns.
  c.Anchor();
  const int64_t t1 = clock.ticks();
  clock.rate_ = 2.0;  // The TSC slows: the next segment has its own rate.
  clock.Advance(10000000);
  c.Anchor();
  EXPECT_EQ(c.num_anchors(), 3u);
  EXPECT_EQ(c.ToNs(t0), ns0);
  EXPECT_EQ(c.ToNs(t0 + 3000), ns0 + 1000);
  EXPECT_EQ(c.ToNs(t1), ns0 + 10000000);
  EXPECT_EQ(c.ToNs(t1 + 2000), ns0 + 10001000);  // Second segment's rate.
  // Out of order (another thread's chunk), then beyond the last anchor.
  EXPECT_EQ(c.ToNs(t0 + 300), ns0 + 100);
  EXPECT_EQ(c.ToNs(clock.ticks() + 2000), ns0 + 20001000);
  // Before the first anchor: the first segment's rate.
  EXPECT_EQ(c.ToNs(t0 - 3000), ns0 - 1000);
}

TEST(TickConverterTest, ANewAnchorEndsTheExtrapolation) {
  ScaledClock clock;
  TickConverter c(&clock);
  clock.Advance(10000000);
  c.Anchor();
  const int64_t ns1 = clock.MonotonicNs();
  const int64_t t1 = clock.ticks();
  // Past the last anchor: extrapolated at the last segment's rate (3).
  EXPECT_EQ(c.ToNs(t1 + 3000), ns1 + 1000);
  clock.rate_ = 2.0;
  clock.Advance(10000000);
  c.Anchor();
  const int64_t ns2 = clock.MonotonicNs();
  const int64_t t2 = clock.ticks();
  // The new segment and the one past it use the new rate, not the
  // extrapolation converted (and remembered) before the anchor.
  EXPECT_EQ(c.ToNs(t1 + 2000), ns1 + 1000);
  EXPECT_EQ(c.ToNs(t2 + 2000), ns2 + 1000);
}

TEST(TickConverterTest, RoundsToTheNearestNsWithTiesAwayFromZero) {
  ScaledClock clock;
  clock.rate_ = 2.0;  // Half a ns per tick: every odd tick is a tie.
  TickConverter c(&clock);
  const int64_t ns0 = clock.MonotonicNs();
  const int64_t t0 = clock.ticks();
  clock.Advance(10000000);
  c.Anchor();
  EXPECT_EQ(c.ToNs(t0 + 1), ns0 + 1);  // 0.5
  EXPECT_EQ(c.ToNs(t0 + 2), ns0 + 1);
  EXPECT_EQ(c.ToNs(t0 + 3), ns0 + 2);  // 1.5
  EXPECT_EQ(c.ToNs(t0 - 1), ns0 - 1);  // -0.5, before the first anchor.
  EXPECT_EQ(c.ToNs(t0 - 3), ns0 - 2);  // -1.5
}

TEST(TickConverterTest, AnchorsAreRateLimitedAndBounded) {
  ScaledClock clock;
  TickConverter c(&clock);
  clock.Advance(100);
  c.Anchor();  // Within 1 ms of the first: skipped.
  EXPECT_EQ(c.num_anchors(), 1u);
  for (int i = 0; i < 5000; ++i) {
    clock.Advance(2000000);
    c.Anchor();
  }
  EXPECT_EQ(c.num_anchors(), 4096u);
  const int64_t t = clock.ticks();
  EXPECT_EQ(c.ToNs(t), clock.MonotonicNs());
}

TEST(TickConverterTest, FirstConversionTakesItsOwnSecondAnchor) {
  ScaledClock clock;
  TickConverter c(&clock);
  const int64_t t0 = clock.ticks();
  const int64_t ns0 = clock.MonotonicNs();
  clock.Advance(500);  // Less than the anchor interval.
  EXPECT_EQ(c.ToNs(t0 + 750), ns0 + 250);
  EXPECT_EQ(c.num_anchors(), 2u);
}

// The real clock: a tick read between two monotonic reads converts to a
// time between them (within a few µs: the pair's own reading error).
TEST(RealClockTest, TicksConvertIntoTheMonotonicClock) {
  const RealClock* clock = RealClock::Get();
  TickConverter c(clock);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t before = clock->MonotonicNs();
  const int64_t ticks = clock->NowTicks();
  const int64_t after = clock->MonotonicNs();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  c.Anchor();
  const int64_t ns = c.ToNs(ticks);
  EXPECT_GE(ns, before - 5000);
  EXPECT_LE(ns, after + 5000);
  EXPECT_TRUE(RealClock::GetMonotonicOnly()->ticks_are_ns());
}

}  // namespace
}  // namespace vllm_profiler::probe
