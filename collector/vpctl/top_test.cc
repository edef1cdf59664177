#include "collector/vpctl/top.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler::collector::vpctl {
namespace {

v1::GetStatusResponse Scripted() {
  v1::GetStatusResponse s;
  s.set_triggers_fired(1);
  s.set_triggers_suppressed(2);
  v1::StepHealth* a = s.add_step_health();
  a->set_pid(101);
  a->set_rank(0);
  a->set_process_name("VllmWorker-0");
  a->set_steps(1200);
  a->set_slow_steps(1);
  a->set_steps_per_s(20);
  a->set_tokens_per_s(2560);
  a->set_step_p50_ms(48.04);
  a->set_step_p99_ms(130.26);
  a->set_last_slow_step(812);
  a->set_last_slow_ms(130.25);
  a->set_last_slow_reason("slow step: step 812 took 130.2 ms > 100 ms");
  v1::StepHealth* b = s.add_step_health();
  b->set_pid(102);
  b->set_rank(-1);
  b->set_steps(3);
  return s;
}

TEST(TopTest, OneSnapshotWhenNotATerminal) {
  std::vector<std::string> frames;
  int calls = 0;
  int rc = RunTop(
      [&]() -> absl::StatusOr<v1::GetStatusResponse> {
        ++calls;
        return Scripted();
      },
      TopOptions{}, [&](const std::string& f) { frames.push_back(f); });
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(calls, 1);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(
      frames[0],
      "step health (last minute), 2 process(es); triggers fired 1, "
      "suppressed 2\n"
      "PID  RANK  PROCESS       STEPS/S  TOKENS/S  P50 MS  P99 MS  STEPS  "
      "SLOW  LAST SLOW\n"
      "101  0     VllmWorker-0  20.0     2560      48.0    130.3   1200   "
      "1     step 812, 130.2 ms: slow step: step 812 took 130.2 ms > 100 ms\n"
      "102  -     -             0.0      0         0.0     0.0     3      "
      "0     -\n");
}

TEST(TopTest, RedrawsOnATerminalAndStopsOnAFailedFetch) {
  std::vector<std::string> frames;
  int calls = 0;
  TopOptions o;
  o.terminal = true;
  o.interval = absl::ZeroDuration();
  int rc = RunTop(
      [&]() -> absl::StatusOr<v1::GetStatusResponse> {
        if (++calls == 3) return absl::UnavailableError("collector gone");
        return Scripted();
      },
      o, [&](const std::string& f) { frames.push_back(f); });
  EXPECT_EQ(rc, 1);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].rfind("\x1b[H\x1b[2J", 0), 0u);
  EXPECT_NE(frames[1].find("(Ctrl-C to quit)"), std::string::npos);
}

TEST(TopTest, SaysWhyThereIsNothing) {
  EXPECT_EQ(FormatTop(v1::GetStatusResponse()),
            "step health (last minute), 0 process(es); triggers fired 0, "
            "suppressed 0\n"
            "no step summaries yet (no probe connected, no step ran, or the "
            "flight recorder is off: VLLM_PROFILER_FLIGHT=off)\n");
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl
