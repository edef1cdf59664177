#include "collector/vpctl/format.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::collector::vpctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(FormatTest, HumanBytes) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(5ull << 20), "5.0 MiB");
  EXPECT_EQ(HumanBytes(3ull << 30), "3.0 GiB");
}

TEST(FormatTest, TraceListTable) {
  v1::ListTracesResponse list;
  EXPECT_EQ(FormatTraceList(list), "No traces yet.\n");
  v1::TraceInfo* t = list.add_traces();
  t->set_id("trace1234");
  t->set_size_bytes(2048);
  t->add_pids(1234);
  t->set_num_events(77);
  t->set_complete(true);
  t->set_created_unix_ms(1700000000000);
  t = list.add_traces();
  t->set_id("trace1_2");
  t->set_size_bytes(10);
  t->set_gzip(true);
  t->add_pids(1);
  t->add_pids(2);
  t->set_num_events(5);
  t->set_error("No space left on device");
  EXPECT_EQ(FormatTraceList(list),
            "ID         SIZE     PROCESSES  EVENTS  COMPLETE  CREATED (UTC)    "
            "    ERROR\n"
            "trace1234  2.0 KiB  1234       77      yes       2023-11-14 "
            "22:13:20  -\n"
            "trace1_2   10 B gz  1,2        5       no        -               "
            "     No space left on device\n");
}

TEST(FormatTest, TriggeredTracesShowOriginAndReason) {
  v1::ListTracesResponse list;
  v1::TraceInfo* t = list.add_traces();
  t->set_id("trace7");
  t->add_pids(7);
  t->set_complete(true);
  t->set_origin(v1::CAPTURE_ORIGIN_TRIGGER);
  t->set_reason("slow step: step 9 took 80.0 ms > 50 ms");
  t = list.add_traces();
  t->set_id("trace8");
  t->add_pids(8);
  t->set_origin(v1::CAPTURE_ORIGIN_WINDOW);
  EXPECT_EQ(
      FormatTraceList(list),
      "ID      SIZE  PROCESSES  EVENTS  COMPLETE  CREATED (UTC)  ORIGIN   "
      "REASON\n"
      "trace7  0 B   7          0       yes       -              trigger  "
      "slow step: step 9 took 80.0 ms > 50 ms\n"
      "trace8  0 B   8          0       no        -              window   "
      "-\n");
}

TEST(FormatTest, StatusMentionsEverything) {
  v1::GetStatusResponse s;
  s.set_collector_version("0.1.0");
  s.set_events_received(100);
  s.mutable_disk()->set_trace_dir("/traces");
  s.mutable_disk()->set_last_error("disk full");
  v1::ProbeStatus* p = s.add_probes();
  p->mutable_hello()->set_pid(42);
  p->mutable_hello()->set_process_name("VllmWorker-0");
  p->mutable_hello()->set_rank(0);
  p->mutable_hello()->set_pod_name("vllm-0");
  p->mutable_hello()->set_pod_namespace("ml");
  p->set_capture_id("cap-1");
  v1::CaptureStatus* c = s.add_captures();
  c->set_capture_id("cap-1");
  c->set_origin(v1::CAPTURE_ORIGIN_COMMAND);
  c->mutable_config()->set_num_steps(5);
  c->mutable_config()->set_record_shapes(true);
  c->add_pids(42);
  v1::CaptureStatus* triggered = s.add_captures();
  triggered->set_capture_id("cap-2");
  triggered->set_origin(v1::CAPTURE_ORIGIN_TRIGGER);
  triggered->set_finished(true);
  std::string out = FormatStatus(s);
  EXPECT_THAT(out, HasSubstr("collector 0.1.0\n"));
  EXPECT_THAT(out, HasSubstr("disk error: disk full\n"));
  EXPECT_THAT(out, HasSubstr("probes (1):"));
  EXPECT_THAT(out, HasSubstr("  42   VllmWorker-0  0     ml/vllm-0"));
  EXPECT_THAT(
      out,
      HasSubstr(
          "  cap-1    command  5 steps, no gpu    42    0       running   -\n"
          "  cap-2    trigger  no shapes, no gpu  -     0       finished  "
          "-\n"));
  EXPECT_THAT(out, Not(HasSubstr("webhook:")));
}

TEST(FormatTest, StatusShowsWhatTheWebhookInjectedAndSkipped) {
  v1::GetStatusResponse s;
  s.set_collector_version("0.1.0");
  s.set_injection(
      R"({"containers":["vllm"],"pythonHook":{"vllm":"usercustomize"},)"
      R"("skipped":{"sidecar":"its image, command and args do not name )"
      R"(vLLM"},"version":"0.1.0"})");
  std::string out = FormatStatus(s);
  EXPECT_THAT(out, HasSubstr("webhook: injected vllm (usercustomize)\n"
                             "  skipped sidecar: its image, command and args "
                             "do not name vLLM\n\nprobes (0):\n"
                             "  none connected\n  (a Python process"));
  s.set_injection("not json");
  EXPECT_THAT(FormatStatus(s), HasSubstr("webhook: not json\n"));
}

TEST(FormatTest, StatusShowsIdleProbesWithTheirReasonAndRankOfWorld) {
  v1::GetStatusResponse s;
  v1::ProbeStatus* idle = s.add_probes();
  idle->mutable_hello()->set_pid(7);
  idle->mutable_hello()->set_rank(-1);
  idle->mutable_hello()->set_process_name("python");
  idle->mutable_state()->set_idle_reason("vLLM's V0 engine runs here");
  v1::ProbeStatus* w = s.add_probes();
  w->mutable_hello()->set_pid(8);
  w->mutable_hello()->set_process_name("VllmWorker-1");
  w->mutable_hello()->set_rank(1);
  w->mutable_hello()->set_world_size(2);
  w->mutable_state()->set_op_source("torch profiler");
  w->mutable_state()->set_op_source_detail("no C++ compiler");
  std::string out = FormatStatus(s);
  EXPECT_THAT(out, HasSubstr("  7    python        -     -    idle"));
  EXPECT_THAT(out, HasSubstr("  8    VllmWorker-1  1/2   -    active  torch "
                             "profiler"));
  EXPECT_THAT(out, HasSubstr("  pid 7 idle: vLLM's V0 engine runs here\n"));
  EXPECT_THAT(out, HasSubstr("  pid 8 operators: torch profiler (no C++ "
                             "compiler)\n"));
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl
