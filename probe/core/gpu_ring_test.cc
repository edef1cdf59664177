#include "probe/core/gpu_ring.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

v1::Event Kernel(int64_t start, int64_t duration, uint32_t name_id = 5) {
  v1::Event e;
  e.set_kind(v1::EVENT_KIND_KERNEL);
  e.set_name_id(name_id);
  e.set_start_ns(start);
  e.set_duration_ns(duration);
  e.set_device(0);
  e.set_stream(7);
  e.set_correlation_id(static_cast<uint64_t>(start));
  e.mutable_kernel_info()->set_grid_x(128);
  return e;
}

std::vector<int64_t> Starts(const std::vector<v1::Event>& events) {
  std::vector<int64_t> out;
  for (const v1::Event& e : events) out.push_back(e.start_ns());
  return out;
}

TEST(GpuRingTest, KeepsWhatFitsAndRoundTripsTheEvent) {
  GpuRing ring(4096);
  const v1::Event k = Kernel(1000, 50);
  ring.Add(k);
  std::vector<v1::Event> out;
  EXPECT_EQ(ring.CopyRange(0, 10000, &out), 1u);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].SerializeAsString(), k.SerializeAsString());
  EXPECT_EQ(ring.stats().used_bytes, GpuRing::RecordBytes(k));
}

TEST(GpuRingTest, DropsTheOldestAndTheByteBoundIsExact) {
  // Every event here has the same size: room for exactly 5 of them.
  const size_t one = GpuRing::RecordBytes(Kernel(1000, 10));
  GpuRing ring(5 * one);
  for (int i = 0; i < 5; ++i) ring.Add(Kernel(1000 + i, 10));
  EXPECT_EQ(ring.stats().used_bytes, 5 * one);  // Full to the byte.
  EXPECT_EQ(ring.stats().overwritten, 0u);
  ring.Add(Kernel(1005, 10));  // One more: the oldest goes.
  GpuRing::Stats s = ring.stats();
  EXPECT_EQ(s.records, 5u);
  EXPECT_EQ(s.overwritten, 1u);
  EXPECT_EQ(s.used_bytes, 5 * one);
  std::vector<v1::Event> out;
  ring.CopyRange(0, 1 << 30, &out);
  EXPECT_EQ(Starts(out), (std::vector<int64_t>{1001, 1002, 1003, 1004, 1005}));
  // A byte short of five: four fit, never more than the bound.
  GpuRing tight(5 * one - 1);
  for (int i = 0; i < 20; ++i) tight.Add(Kernel(1000 + i, 10));
  EXPECT_EQ(tight.stats().records, 4u);
  EXPECT_LE(tight.stats().used_bytes, 5 * one - 1);
  out.clear();
  tight.CopyRange(0, 1 << 30, &out);
  EXPECT_EQ(Starts(out), (std::vector<int64_t>{1016, 1017, 1018, 1019}));
}

TEST(GpuRingTest, RecordsOfMixedSizesWrapAroundIntact) {
  GpuRing ring(1000);
  std::vector<v1::Event> added;
  for (int i = 0; i < 200; ++i) {
    v1::Event e = Kernel(10 * i, 5, static_cast<uint32_t>(1 + i * 977));
    for (int a = 0; a < i % 4; ++a) e.add_args()->set_int_value(i * 1000 + a);
    ring.Add(e);
    added.push_back(e);
    ASSERT_LE(ring.stats().used_bytes, 1000u);
  }
  std::vector<v1::Event> out;
  ring.CopyRange(0, 1 << 30, &out);
  ASSERT_FALSE(out.empty());
  // The newest events, in order, byte for byte.
  const size_t first = added.size() - out.size();
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].SerializeAsString(), added[first + i].SerializeAsString());
  }
  // Nothing older fits beside them.
  EXPECT_GT(ring.stats().used_bytes + GpuRing::RecordBytes(added[first - 1]),
            1000u);
}

TEST(GpuRingTest, CopyRangeSelectsTheOverlappingEvents) {
  GpuRing ring(1 << 16);
  ring.Add(Kernel(100, 50));   // 100..150: before.
  ring.Add(Kernel(180, 40));   // 180..220: overlaps the start.
  ring.Add(Kernel(300, 10));   // Inside.
  ring.Add(Kernel(390, 0));    // Zero duration, inside.
  ring.Add(Kernel(395, 100));  // Overlaps the end.
  ring.Add(Kernel(401, 5));    // After.
  std::vector<v1::Event> out;
  EXPECT_EQ(ring.CopyRange(200, 400, &out), 4u);
  EXPECT_EQ(Starts(out), (std::vector<int64_t>{180, 300, 390, 395}));
}

TEST(GpuRingTest, AnEventLargerThanTheRingIsCountedNotKept) {
  GpuRing ring(64);
  v1::Event big = Kernel(1, 1);
  for (int i = 0; i < 20; ++i) big.add_args()->set_int_value(i);
  ASSERT_GT(GpuRing::RecordBytes(big), 64u);
  ring.Add(big);
  EXPECT_EQ(ring.stats().too_large, 1u);
  EXPECT_EQ(ring.stats().records, 0u);
  ring.Clear();
  EXPECT_EQ(ring.stats().used_bytes, 0u);
}

// CUPTI's buffer thread adds while the sender copies a range (run under
// --config=tsan too): every copy is a run of whole events, oldest first.
TEST(GpuRingTest, AddAndCopyRangeFromTwoThreads) {
  GpuRing ring(4096);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) ring.Add(Kernel(i, 1));
    done.store(true);
  });
  int copies = 0;
  while (!done.load() || copies == 0) {
    std::vector<v1::Event> out;
    ring.CopyRange(0, 1 << 30, &out);
    for (size_t i = 1; i < out.size(); ++i) {
      ASSERT_EQ(out[i].start_ns(), out[i - 1].start_ns() + 1);
    }
    ++copies;
  }
  writer.join();
  EXPECT_EQ(ring.stats().added, 20000u);
  EXPECT_LE(ring.stats().used_bytes, 4096u);
}

}  // namespace
}  // namespace vllm_profiler::probe
