#include "collector/chrome_trace_mapper.h"

#include <memory>
#include <string>
#include <vector>

#include "collector/probe_messages_testing.h"
#include "common/filesystem_testing.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector {
namespace {

using nlohmann::json;

// A mapper writing into a string, and one probe stream whose strings are
// FullBatch's.
class ChromeTraceMapperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    writer_ = std::make_unique<TraceWriter>(
        std::unique_ptr<WritableFile>(new StringFile(&out_)));
    mapper_ = std::make_unique<ChromeTraceMapper>(writer_.get(),
                                                  ChromeTraceMapper::Options());
    for (const v1::ProbeMessage& m :
         {testutil::Hello(10, 0), testutil::Started("c"),
          testutil::FullBatch("c", 0)}) {
      ASSERT_TRUE(stream_.Accept(m, m.ByteSizeLong()).ok());
    }
    process_.pid = 10;
    process_.real_pid = 10;
    process_.hello = stream_.hello();
  }

  static v1::Event Event(v1::EventKind kind, uint32_t tid, uint32_t name_id) {
    v1::Event e;
    e.set_kind(kind);
    e.set_tid(tid);
    e.set_name_id(name_id);
    e.set_duration_ns(2000);
    return e;
  }

  // The trace's events.
  json Events() {
    writer_->EndEvents();
    EXPECT_TRUE(writer_->Finish().ok());
    return json::parse(out_)["traceEvents"];
  }

  std::string out_;
  std::unique_ptr<TraceWriter> writer_;
  std::unique_ptr<ChromeTraceMapper> mapper_;
  ProbeStream stream_;
  TraceProcess process_;
};

TEST_F(ChromeTraceMapperTest, SpanInstantAndCounterHaveTheirPhase) {
  mapper_->WriteEvent(process_, stream_,
                      Event(v1::EVENT_KIND_USER_SPAN, 100, testutil::kStrNvtx),
                      1500);
  mapper_->WriteEvent(process_, stream_,
                      Event(v1::EVENT_KIND_INSTANT, 100, testutil::kStrMarker),
                      2000);
  v1::Event counter = Event(v1::EVENT_KIND_COUNTER, 100, testutil::kStrMemory);
  counter.set_value(2.5);
  mapper_->WriteEvent(process_, stream_, counter, 3000);
  const json events = Events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], json::parse(R"({"ph":"X","cat":"user_annotation",
                "name":"nvtx range","pid":10,"tid":100,"ts":1.5,"dur":2})"));
  EXPECT_EQ(events[1], json::parse(R"({"ph":"i","s":"t","cat":"instant",
                "name":"marker \"quoted\"","pid":10,"tid":100,"ts":2})"));
  EXPECT_EQ(events[2], json::parse(R"({"ph":"C","cat":"counter",
      "name":"gpu_memory_allocated","pid":10,"tid":100,"ts":3,
      "args":{"value":2.5}})"));
}

TEST_F(ChromeTraceMapperTest, UnnamedStepIsProfilerStepAndCategoryIsKept) {
  v1::Event step = Event(v1::EVENT_KIND_STEP, 100, 0);
  step.set_step(7);
  mapper_->WriteEvent(process_, stream_, step, 0);
  v1::Event op = Event(v1::EVENT_KIND_CPU_OP, 100, 0);
  op.set_category_id(testutil::kStrKey);
  mapper_->WriteEvent(process_, stream_, op, 0);
  const json events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["name"], "ProfilerStep#7");
  EXPECT_EQ(events[0]["cat"], "step");
  EXPECT_EQ(events[0]["args"], json::parse(R"({"step":7})"));
  // The probe's category wins; without a name the category names it.
  EXPECT_EQ(events[1]["cat"], "note");
  EXPECT_EQ(events[1]["name"], "cpu_op");
  EXPECT_FALSE(events[1].contains("args"));
}

TEST_F(ChromeTraceMapperTest, GpuWorkAndThreadlessSyncShareOneNamedTrack) {
  v1::Event kernel = Event(v1::EVENT_KIND_KERNEL, 0, testutil::kStrKernel);
  kernel.set_device(1);
  kernel.set_stream(7);
  mapper_->WriteEvent(process_, stream_, kernel, 0);
  v1::Event sync = Event(v1::EVENT_KIND_SYNC, 0, testutil::kStrSync);
  sync.set_device(1);
  sync.set_stream(7);
  mapper_->WriteEvent(process_, stream_, sync, 5000);
  // With a thread, a sync is that thread's.
  mapper_->WriteEvent(process_, stream_,
                      Event(v1::EVENT_KIND_SYNC, 100, testutil::kStrSync),
                      6000);
  const json events = Events();
  ASSERT_EQ(events.size(), 5u);
  // The track is named (and sorted) once, before its first event.
  EXPECT_EQ(events[0], json::parse(R"({"ph":"M","name":"thread_name",
      "pid":10,"tid":1001000007,"args":{"name":"GPU 1 stream 7"}})"));
  EXPECT_EQ(events[1], json::parse(R"({"ph":"M","name":"thread_sort_index",
      "pid":10,"tid":1001000007,"args":{"sort_index":1001000007}})"));
  EXPECT_EQ(events[2]["tid"], 1001000007);
  EXPECT_EQ(events[2]["args"], json::parse(R"({"device":1,"stream":7})"));
  EXPECT_EQ(events[3]["tid"], 1001000007);
  EXPECT_EQ(events[3]["cat"], "cuda_sync");
  EXPECT_EQ(events[4]["tid"], 100);
  EXPECT_FALSE(events[4].contains("args"));
}

TEST_F(ChromeTraceMapperTest, DeviceOrStreamOutsideTheGridGetsAnOverflowTrack) {
  v1::Event kernel = Event(v1::EVENT_KIND_KERNEL, 0, testutil::kStrKernel);
  kernel.set_device(1000);
  mapper_->WriteEvent(process_, stream_, kernel, 0);
  kernel.set_device(0);
  kernel.set_stream(1000000);
  mapper_->WriteEvent(process_, stream_, kernel, 0);
  std::vector<json> names;
  for (const json& e : Events()) {
    if (e["name"] == "thread_name") names.push_back(e);
  }
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0]["tid"], 2000000000u);
  EXPECT_EQ(names[0]["args"]["name"], "GPU 1000 stream 0");
  EXPECT_EQ(names[1]["tid"], 2000000001u);
  EXPECT_EQ(names[1]["args"]["name"], "GPU 0 stream 1000000");
}

TEST_F(ChromeTraceMapperTest, CorrelationFlowIdsAreNamespacedByProcess) {
  TraceProcess second = process_;
  second.pid = 11;
  second.index = 1;
  v1::Event launch =
      Event(v1::EVENT_KIND_CUDA_RUNTIME, 100, testutil::kStrLaunch);
  launch.set_correlation_id(42);
  mapper_->WriteEvent(process_, stream_, launch, 0);
  mapper_->WriteEvent(second, stream_, launch, 0);
  std::vector<json> flows;
  for (const json& e : Events()) {
    if (e["ph"] == "s") flows.push_back(e);
  }
  ASSERT_EQ(flows.size(), 2u);
  EXPECT_EQ(flows[0]["cat"], "ac2g");
  EXPECT_EQ(flows[0]["id"], (uint64_t{1} << 41) | 42);
  EXPECT_EQ(flows[1]["id"], (uint64_t{2} << 41) | 42);
}

TEST_F(ChromeTraceMapperTest, NewStreamCountsWaitingGpuEventsAsUnmatched) {
  v1::Event kernel = Event(v1::EVENT_KIND_KERNEL, 0, testutil::kStrKernel);
  kernel.set_external_id(5);
  mapper_->WriteEvent(process_, stream_, kernel, 0);
  mapper_->WriteEvent(process_, stream_, kernel, 0);
  EXPECT_EQ(process_.tracks.unmatched_waiting(), 2u);
  process_.tracks.StartNewStream();
  EXPECT_EQ(process_.tracks.unmatched_waiting(), 0u);
  EXPECT_EQ(process_.tracks.op2g_unmatched_evicted, 2u);
  // An operator with that id on the new stream draws no flow.
  v1::Event op = Event(v1::EVENT_KIND_CPU_OP, 100, testutil::kStrLinear);
  op.set_external_id(5);
  mapper_->WriteEvent(process_, stream_, op, 0);
  for (const json& e : Events()) EXPECT_NE(e.value("cat", ""), "op2g") << e;
}

TEST_F(ChromeTraceMapperTest, ProcessMetadataNamesRankPodAndRealPid) {
  process_.pid = 10 + (int64_t{1} << 22);
  process_.hello.set_container_name("vllm");
  process_.hello.set_node_name("");
  mapper_->WriteProcessMetadata(process_);
  const json events = Events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]["args"]["name"],
            "VllmWorker-0 \xc2\xb7 rank 0 \xc2\xb7 pod vllm-0 \xc2\xb7 "
            "container vllm \xc2\xb7 pid 10");
  EXPECT_EQ(events[1]["name"], "process_sort_index");
  EXPECT_EQ(events[1]["args"]["sort_index"], 0);
  EXPECT_EQ(events[2]["name"], "process_labels");
  EXPECT_EQ(events[2]["args"]["labels"],
            "pod=vllm-0,namespace=default,host=node-a");
}

TEST_F(ChromeTraceMapperTest, ProcessWithoutRankSortsAfterRanksByJoinOrder) {
  process_.index = 3;
  process_.hello = v1::Hello();
  process_.hello.set_rank(-1);
  mapper_->WriteProcessMetadata(process_);
  const json events = Events();
  // No labels without pod, namespace, node or host.
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["args"]["name"], "pid 10");
  EXPECT_EQ(events[1]["args"]["sort_index"], 1000003);
}

}  // namespace
}  // namespace vllm_profiler::collector
