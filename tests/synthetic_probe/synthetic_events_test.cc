#include "tests/synthetic_probe/synthetic_events.h"

#include <map>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler::synthetic_probe {
namespace {

std::vector<v1::EventBatch> All(SyntheticEvents& gen) {
  std::vector<v1::EventBatch> batches;
  v1::EventBatch b;
  while (gen.NextBatch(&b)) batches.push_back(b);
  EXPECT_EQ(b.events_size(), 0);
  return batches;
}

TEST(SyntheticEventsTest, ExactCountsBatchesAndSequence) {
  SyntheticEvents::Options o;
  o.total_events = 10007;
  o.batch_events = 1000;
  SyntheticEvents gen(o);
  std::vector<v1::EventBatch> batches = All(gen);
  ASSERT_EQ(batches.size(), 11u);
  uint64_t total = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    EXPECT_EQ(batches[i].sequence(), i);
    EXPECT_EQ(batches[i].capture_id(), "synthetic");
    EXPECT_LE(batches[i].events_size(), 1000);
    total += batches[i].events_size();
  }
  EXPECT_EQ(batches.back().events_size(), 7);
  EXPECT_EQ(total, 10007u);
  EXPECT_EQ(gen.events_generated(), 10007u);
  EXPECT_EQ(gen.CaptureFinished().capture_finished().events_recorded(), 10007u);
}

TEST(SyntheticEventsTest, EveryKindAppears) {
  SyntheticEvents::Options o;
  o.total_events = 1000;
  SyntheticEvents gen(o);
  std::set<int> kinds;
  for (const auto& b : All(gen)) {
    for (const auto& e : b.events()) kinds.insert(e.kind());
  }
  for (int k = v1::EVENT_KIND_STEP; k <= v1::EVENT_KIND_PYTHON; ++k) {
    EXPECT_TRUE(kinds.count(k)) << v1::EventKind_Name(k);
  }
  EXPECT_FALSE(kinds.count(v1::EVENT_KIND_UNSPECIFIED));
}

TEST(SyntheticEventsTest, StringsAreDefinedBeforeUse) {
  SyntheticEvents::Options o;
  o.total_events = 5000;
  o.batch_events = 333;
  SyntheticEvents gen(o);
  std::set<uint32_t> defined;
  for (const auto& b : All(gen)) {
    for (const auto& s : b.strings()) {
      EXPECT_TRUE(defined.insert(s.id()).second) << "redefined " << s.id();
    }
    auto check = [&](uint32_t id) {
      if (id != 0) {
        EXPECT_TRUE(defined.count(id)) << "undefined id " << id;
      }
    };
    for (const auto& t : b.threads()) check(t.name_id());
    for (const auto& e : b.events()) {
      EXPECT_NE(e.name_id(), 0u);
      check(e.name_id());
      check(e.category_id());
      for (uint32_t d : e.input_dtype_ids()) check(d);
      for (const auto& a : e.args()) {
        check(a.key_id());
        if (a.has_string_id()) check(a.string_id());
      }
    }
  }
}

TEST(SyntheticEventsTest, GpuWorkCorrelatesWithItsLaunch) {
  SyntheticEvents::Options o;
  o.total_events = 3 * (1 + 16 + 300);  // Three whole steps.
  SyntheticEvents gen(o);
  std::map<uint64_t, v1::Event> launches;
  std::vector<v1::Event> gpu;
  int cpu_ops_with_shapes = 0;
  for (const auto& b : All(gen)) {
    for (const auto& e : b.events()) {
      switch (e.kind()) {
        case v1::EVENT_KIND_CUDA_RUNTIME:
        case v1::EVENT_KIND_CUDA_DRIVER:
          ASSERT_NE(e.correlation_id(), 0u);
          EXPECT_TRUE(launches.emplace(e.correlation_id(), e).second);
          break;
        case v1::EVENT_KIND_KERNEL:
        case v1::EVENT_KIND_MEMCPY:
        case v1::EVENT_KIND_MEMSET:
          gpu.push_back(e);
          break;
        case v1::EVENT_KIND_CPU_OP:
          if (e.input_shapes_size() > 0) ++cpu_ops_with_shapes;
          break;
        default:
          break;
      }
    }
  }
  ASSERT_EQ(gpu.size(), launches.size());
  for (const auto& g : gpu) {
    auto it = launches.find(g.correlation_id());
    ASSERT_NE(it, launches.end()) << g.ShortDebugString();
    EXPECT_GT(g.start_ns(), it->second.start_ns());
    EXPECT_EQ(g.external_id(), it->second.external_id());
  }
  EXPECT_GT(cpu_ops_with_shapes, 300);
}

TEST(SyntheticEventsTest, CpuEventsNestInsideTheirStep) {
  SyntheticEvents::Options o;
  o.total_events = 2000;
  SyntheticEvents gen(o);
  std::vector<v1::Event> steps, main_events;
  for (const auto& b : All(gen)) {
    for (const auto& e : b.events()) {
      if (e.kind() == v1::EVENT_KIND_STEP) {
        steps.push_back(e);
      } else if (e.tid() == SyntheticEvents::kMainTid) {
        main_events.push_back(e);
      }
    }
  }
  ASSERT_EQ(steps.size(), 7u);  // 2000 / 317, rounded up.
  EXPECT_EQ(steps[0].step(), 100);
  EXPECT_EQ(steps[6].step(), 106);
  for (const auto& e : main_events) {
    bool inside = false;
    for (const auto& s : steps) {
      inside |=
          e.start_ns() >= s.start_ns() &&
          e.start_ns() + e.duration_ns() <= s.start_ns() + s.duration_ns();
    }
    EXPECT_TRUE(inside) << e.ShortDebugString();
  }
}

TEST(SyntheticEventsTest, DeterministicAndIdentity) {
  SyntheticEvents::Options o;
  o.pid = 77;
  o.total_events = 3000;
  o.capture_id = "c1";
  o.requested_name = "my_trace.json";
  SyntheticEvents a(o), b(o);
  v1::EventBatch ba, bb;
  while (a.NextBatch(&ba)) {
    ASSERT_TRUE(b.NextBatch(&bb));
    ASSERT_EQ(ba.SerializeAsString(), bb.SerializeAsString());
  }
  v1::ProbeMessage hello = a.Hello();
  EXPECT_EQ(hello.hello().pid(), 77);
  EXPECT_EQ(hello.hello().protocol_version(), 1u);
  EXPECT_NE(hello.hello().clock().monotonic_ns(), 0);
  v1::ProbeMessage started = a.CaptureStarted();
  EXPECT_EQ(started.capture_started().capture_id(), "c1");
  EXPECT_EQ(started.capture_started().requested_name(), "my_trace.json");
  v1::ProbeMessage finished = a.CaptureFinished(5);
  EXPECT_EQ(finished.capture_finished().drops().events_dropped_buffer_full(),
            5u);
  EXPECT_EQ(finished.capture_finished().events_recorded(), 3000u);
}

}  // namespace
}  // namespace vllm_profiler::synthetic_probe
