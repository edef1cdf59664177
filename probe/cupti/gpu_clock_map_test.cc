#include "probe/cupti/gpu_clock_map.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace vllm_profiler::probe::cupti {
namespace {

TEST(GpuClockMapTest, SinglePairIsAnOffset) {
  GpuClockMap map;
  map.Reset({/*gpu_ns=*/5'000'000'000, /*monotonic_ns=*/1'000});
  EXPECT_EQ(map.ToMonotonic(5'000'000'000), 1'000);
  EXPECT_EQ(map.ToMonotonic(5'000'000'250), 1'250);
  EXPECT_EQ(map.ToMonotonic(4'999'999'000), 0);
  EXPECT_DOUBLE_EQ(map.slope(), 1.0);
}

TEST(GpuClockMapTest, SecondPairCorrectsDrift) {
  // The GPU clock runs 100 ppm fast: 10 s of GPU time are 9.999 s of
  // monotonic time.
  GpuClockMap map;
  map.Reset({1'000'000'000, 50'000'000'000});
  map.AddPair({11'000'000'000, 59'999'000'000});
  EXPECT_NEAR(map.slope(), 0.9999, 1e-12);
  EXPECT_EQ(map.ToMonotonic(1'000'000'000), 50'000'000'000);
  EXPECT_EQ(map.ToMonotonic(11'000'000'000), 59'999'000'000);
  // Halfway: interpolated, not offset-only (which would be off by 500 us).
  EXPECT_EQ(map.ToMonotonic(6'000'000'000), 54'999'500'000);
  // After the last pair: extrapolated with the same slope.
  EXPECT_EQ(map.ToMonotonic(21'000'000'000), 69'998'000'000);
}

TEST(GpuClockMapTest, IgnoresPairsTooCloseOrImplausible) {
  GpuClockMap map;
  map.Reset({1'000'000'000, 0});
  map.AddPair({1'000'000'500, 10'000});  // 500 ns later: too close.
  EXPECT_DOUBLE_EQ(map.slope(), 1.0);
  map.AddPair({0, 10});  // Failed timestamp read.
  EXPECT_DOUBLE_EQ(map.slope(), 1.0);
  map.AddPair({2'000'000'000, 5'000'000'000});  // 5x: a clock jump.
  EXPECT_DOUBLE_EQ(map.slope(), 1.0);
  map.Reset({1'000'000'000, 0});
  map.AddPair({2'000'000'000, 1'000'000'100});
  EXPECT_NEAR(map.slope(), 1.0000001, 1e-12);
}

TEST(GpuClockMapTest, MeasurePairUsesTheMidpoint) {
  int64_t now = 100;
  auto monotonic = [&now] {
    const int64_t t = now;
    now += 40;
    return t;
  };
  GpuClockPair pair = MeasureGpuClockPair(
      [](uint64_t* ts) {
        *ts = 777;
        return true;
      },
      monotonic);
  EXPECT_EQ(pair.gpu_ns, 777u);
  EXPECT_EQ(pair.monotonic_ns, 120);
  pair = MeasureGpuClockPair([](uint64_t*) { return false; }, monotonic);
  EXPECT_EQ(pair.gpu_ns, 0u);
}

}  // namespace
}  // namespace vllm_profiler::probe::cupti
