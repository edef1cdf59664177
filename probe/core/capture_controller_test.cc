#include "probe/core/capture_controller.h"

#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

using Action = CaptureController::Action;

// Runs steps 1..n (1 ms each) and returns the steps that were captured.
std::vector<int64_t> RunSteps(CaptureController& c, int64_t from, int64_t to,
                              int64_t* now) {
  std::vector<int64_t> captured;
  for (int64_t s = from; s <= to; ++s) {
    c.OnStepBegin(s, *now);
    if (c.active()) captured.push_back(s);
    *now += 1000000;
    c.OnStepEnd(s, *now);
  }
  return captured;
}

TEST(CaptureControllerTest, WindowCapturesSteps100To149) {
  CaptureController c(CaptureController::Options{});
  int64_t now = 0;
  std::vector<int64_t> captured = RunSteps(c, 1, 200, &now);
  ASSERT_EQ(captured.size(), 50u);
  EXPECT_EQ(captured.front(), 100);
  EXPECT_EQ(captured.back(), 149);
}

TEST(CaptureControllerTest, WindowDecisionsCarryIdAndConfig) {
  CaptureController::Options o;
  o.start_step = 2;
  o.num_steps = 1;
  o.pid = 42;
  CaptureController c(o);
  EXPECT_EQ(c.OnStepBegin(1, 0).action, Action::kNone);
  EXPECT_EQ(c.OnStepEnd(1, 0).action, Action::kNone);
  CaptureController::Decision d = c.OnStepBegin(2, 0);
  ASSERT_EQ(d.action, Action::kStart);
  EXPECT_EQ(d.spec.capture_id, "window-42-1");
  EXPECT_EQ(d.spec.origin, v1::CAPTURE_ORIGIN_WINDOW);
  EXPECT_EQ(d.spec.config.start_after_steps(), 1u);
  EXPECT_EQ(d.spec.config.num_steps(), 1u);
  EXPECT_EQ(c.OnStepEnd(2, 0).action, Action::kStop);
  // The window runs once.
  int64_t now = 0;
  EXPECT_TRUE(RunSteps(c, 3, 50, &now).empty());
}

TEST(CaptureControllerTest, DurationBoundWindow) {
  CaptureController::Options o;
  o.start_step = 1;
  o.num_steps = 0;
  o.duration_ms = 5;
  CaptureController c(o);
  int64_t now = 0;
  std::vector<int64_t> captured = RunSteps(c, 1, 20, &now);
  EXPECT_EQ(captured.size(), 5u);  // 1 ms steps, 5 ms bound.
}

TEST(CaptureControllerTest, DurationStopsOnTickWithoutSteps) {
  CaptureController::Options o;
  o.start_step = 1;
  o.num_steps = 100;
  o.duration_ms = 10;
  CaptureController c(o);
  ASSERT_EQ(c.OnStepBegin(1, 0).action, Action::kStart);
  EXPECT_EQ(c.OnTick(9000000).action, Action::kNone);
  EXPECT_EQ(c.OnTick(10000000).action, Action::kStop);
  EXPECT_FALSE(c.active());
}

TEST(CaptureControllerTest, CommandStartsAtNextStepForNSteps) {
  CaptureController::Options o;
  o.window = false;
  CaptureController c(o);
  int64_t now = 0;
  RunSteps(c, 1, 10, &now);
  v1::StartCaptureCommand cmd;
  cmd.set_capture_id("cmd-1");
  cmd.mutable_config()->set_num_steps(5);
  ASSERT_TRUE(c.OnStartCommand(cmd, 10));
  CaptureController::Decision d = c.OnStepBegin(11, now);
  ASSERT_EQ(d.action, Action::kStart);
  EXPECT_EQ(d.spec.capture_id, "cmd-1");
  EXPECT_EQ(d.spec.origin, v1::CAPTURE_ORIGIN_COMMAND);
  c.OnStepEnd(11, now);
  std::vector<int64_t> captured = RunSteps(c, 12, 30, &now);
  EXPECT_EQ(captured, (std::vector<int64_t>{12, 13, 14, 15}));
}

TEST(CaptureControllerTest, CommandDefaultsToFiveStepsAndHonoursDelay) {
  CaptureController::Options o;
  o.window = false;
  CaptureController c(o);
  v1::StartCaptureCommand cmd;
  cmd.set_capture_id("c");
  cmd.mutable_config()->set_start_after_steps(3);
  ASSERT_TRUE(c.OnStartCommand(cmd, 0));
  int64_t now = 0;
  EXPECT_EQ(RunSteps(c, 1, 20, &now), (std::vector<int64_t>{4, 5, 6, 7, 8}));
}

TEST(CaptureControllerTest, CommandWithoutIdIsRejected) {
  CaptureController c(CaptureController::Options{});
  EXPECT_FALSE(c.OnStartCommand(v1::StartCaptureCommand(), 0));
  EXPECT_FALSE(c.pending());
}

TEST(CaptureControllerTest, StopCommandStopsAtNextBoundary) {
  CaptureController::Options o;
  o.window = false;
  CaptureController c(o);
  v1::StartCaptureCommand cmd;
  cmd.set_capture_id("c");
  cmd.mutable_config()->set_num_steps(100);
  c.OnStartCommand(cmd, 0);
  ASSERT_EQ(c.OnStepBegin(1, 0).action, Action::kStart);
  c.OnStopCommand("other");
  EXPECT_EQ(c.OnStepEnd(1, 0).action, Action::kNone);
  c.OnStopCommand("c");
  EXPECT_EQ(c.OnTick(0).action, Action::kStop);
}

TEST(CaptureControllerTest, WindowSkippedWhileCommandRuns) {
  CaptureController::Options o;
  o.start_step = 3;
  o.num_steps = 2;
  CaptureController c(o);
  v1::StartCaptureCommand cmd;
  cmd.set_capture_id("c");
  cmd.mutable_config()->set_num_steps(4);
  c.OnStartCommand(cmd, 0);
  int64_t now = 0;
  EXPECT_EQ(RunSteps(c, 1, 4, &now), (std::vector<int64_t>{1, 2, 3, 4}));
  CaptureController::Decision d = c.OnStepBegin(5, now);
  EXPECT_EQ(d.action, Action::kNone);
  EXPECT_EQ(d.note,
            "step window at step 3 skipped: another capture was running");
}

TEST(CaptureControllerTest, CommandWithStartTimeBeginsAtFirstStepAfterIt) {
  CaptureController::Options o;
  o.window = false;
  CaptureController c(o);
  v1::StartCaptureCommand cmd;
  cmd.set_capture_id("sync");
  cmd.mutable_config()->set_num_steps(3);
  // Steps last 1 ms from t=0; the start instant is 4.5 ms: steps 1..5
  // begin before it, step 6 at 5 ms is the first at or after it.
  ASSERT_TRUE(c.OnStartCommand(cmd, /*last_step=*/0,
                               /*not_before_ns=*/4500000));
  int64_t now = 0;
  EXPECT_EQ(RunSteps(c, 1, 20, &now), (std::vector<int64_t>{6, 7, 8}));
}

TEST(CaptureControllerTest, StartTimeInThePastStartsAtTheNextStep) {
  CaptureController::Options o;
  o.window = false;
  CaptureController c(o);
  v1::StartCaptureCommand cmd;
  cmd.set_capture_id("late");
  cmd.mutable_config()->set_num_steps(2);
  int64_t now = 10000000;
  ASSERT_TRUE(c.OnStartCommand(cmd, /*last_step=*/4,
                               /*not_before_ns=*/now - 1000000));
  EXPECT_EQ(RunSteps(c, 5, 10, &now), (std::vector<int64_t>{5, 6}));
}

}  // namespace
}  // namespace vllm_profiler::probe
