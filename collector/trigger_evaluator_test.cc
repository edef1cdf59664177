#include "collector/trigger_evaluator.h"

#include <algorithm>
#include <deque>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler::collector {
namespace {

StepSample Step(int64_t n, double ms, std::string error = "") {
  StepSample s;
  s.step = n;
  s.start_ns = n * 1000;
  s.duration_ms = ms;
  s.error = std::move(error);
  return s;
}

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(TriggerEvaluatorTest, FactorNeedsAFullWindow) {
  TriggerEvaluator::Options o;
  o.factor = 3;
  o.window = 4;
  TriggerEvaluator e(o);
  // Steps 1..3 do not fill the window: a huge step 4 matches nothing.
  for (int i = 1; i <= 3; ++i) EXPECT_FALSE(e.OnStep(1, Step(i, 10), kT0));
  EXPECT_FALSE(e.OnStep(1, Step(4, 1000), kT0));
  // Window now {10, 10, 10, 1000}: median 10; 30 is not > 3 x 10.
  EXPECT_FALSE(e.OnStep(1, Step(5, 30), kT0));
  // Window {10, 10, 1000, 30}: median (10 + 30) / 2 = 20.
  std::optional<TriggerDecision> d = e.OnStep(1, Step(6, 61), kT0);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->fired);
  EXPECT_EQ(d->rule, TriggerRule::kFactor);
  EXPECT_EQ(d->step, 6);
  EXPECT_EQ(d->start_ns, 6000);
  EXPECT_DOUBLE_EQ(d->median_ms, 20);
  EXPECT_EQ(d->reason,
            "slow step: step 6 took 61.0 ms > 3 x median 20.0 ms of the last "
            "4 steps");
  EXPECT_EQ(e.fired(), 1u);
}

TEST(TriggerEvaluatorTest, RollingMedianMatchesARecomputedOne) {
  // The window is kept sorted as steps come and go: its median must equal
  // one recomputed from scratch, with repeats, odd and even windows.
  for (uint32_t window : {1u, 2u, 7u, 64u}) {
    TriggerEvaluator::Options o;
    o.factor = 1.5;
    o.window = window;
    o.cooldown = absl::ZeroDuration();
    TriggerEvaluator e(o);
    std::mt19937 rng(window);
    std::uniform_int_distribution<int> ms(1, 40);  // Many equal values.
    std::deque<double> last;
    for (int i = 1; i <= 2000; ++i) {
      const double d = ms(rng);
      std::optional<TriggerDecision> got = e.OnStep(1, Step(i, d), kT0);
      double median = 0;
      if (last.size() == window) {
        std::vector<double> v(last.begin(), last.end());
        std::sort(v.begin(), v.end());
        median = v.size() % 2 ? v[v.size() / 2]
                              : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
      }
      const bool slow = median > 0 && d > 1.5 * median;
      ASSERT_EQ(got.has_value(), slow) << "window " << window << " step " << i;
      if (slow) {
        ASSERT_DOUBLE_EQ(got->median_ms, median) << "window " << window;
      }
      last.push_back(d);
      if (last.size() > window) last.pop_front();
    }
  }
}

TEST(TriggerEvaluatorTest, WindowsArePerProcess) {
  TriggerEvaluator::Options o;
  o.factor = 2;
  o.window = 3;
  TriggerEvaluator e(o);
  for (int i = 1; i <= 3; ++i) e.OnStep(1, Step(i, 10), kT0);
  EXPECT_FALSE(e.OnStep(2, Step(1, 100), kT0));  // Process 2: empty window.
  EXPECT_TRUE(e.OnStep(1, Step(4, 100), kT0));
  e.Forget(1);
  EXPECT_FALSE(e.OnStep(1, Step(5, 1000), kT0));  // Window dropped.
}

TEST(TriggerEvaluatorTest, SlowStepMsFiresWithoutAWindow) {
  TriggerEvaluator::Options o;
  o.slow_step_ms = 50;
  TriggerEvaluator e(o);
  EXPECT_FALSE(e.OnStep(7, Step(1, 50), kT0));  // Not slower than 50.
  std::optional<TriggerDecision> d = e.OnStep(7, Step(2, 50.5), kT0);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->rule, TriggerRule::kSlowStep);
  EXPECT_EQ(d->process, 7u);
  EXPECT_EQ(d->reason, "slow step: step 2 took 50.5 ms > 50 ms");
}

TEST(TriggerEvaluatorTest, RaisedWinsAndCanBeTurnedOff) {
  TriggerEvaluator::Options o;
  o.slow_step_ms = 1;
  TriggerEvaluator e(o);
  std::optional<TriggerDecision> d =
      e.OnStep(1, Step(3, 5, "RuntimeError"), kT0);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->rule, TriggerRule::kRaised);
  EXPECT_EQ(d->reason, "step 3 raised RuntimeError (5.0 ms)");
  TriggerEvaluator::Options off;
  off.on_error = false;
  TriggerEvaluator quiet(off);
  EXPECT_FALSE(quiet.OnStep(1, Step(3, 5, "RuntimeError"), kT0));
}

TEST(TriggerEvaluatorTest, CooldownSuppressesAndCounts) {
  TriggerEvaluator::Options o;
  o.slow_step_ms = 10;
  o.cooldown = absl::Minutes(10);
  TriggerEvaluator e(o);
  ASSERT_TRUE(e.OnStep(1, Step(1, 20), kT0)->fired);
  std::optional<TriggerDecision> d =
      e.OnStep(2, Step(1, 20), kT0 + absl::Minutes(9));
  ASSERT_TRUE(d.has_value());
  EXPECT_FALSE(d->fired);
  EXPECT_EQ(e.suppressed(), 1u);
  // Suppressed triggers do not extend the cooldown.
  EXPECT_TRUE(e.OnStep(1, Step(2, 20), kT0 + absl::Minutes(10))->fired);
  EXPECT_EQ(e.fired(), 2u);
}

TEST(TriggerEvaluatorTest, ManualAlwaysFiresAndRestartsTheCooldown) {
  TriggerEvaluator::Options o;
  o.slow_step_ms = 10;
  TriggerEvaluator e(o);
  TriggerDecision m = e.Manual("", kT0);
  EXPECT_TRUE(m.fired);
  EXPECT_EQ(m.reason, "manual");
  EXPECT_EQ(e.Manual("oom suspected", kT0).reason, "manual: oom suspected");
  EXPECT_FALSE(e.OnStep(1, Step(1, 20), kT0 + absl::Minutes(1))->fired);
  e.ResetCooldown();
  EXPECT_TRUE(e.OnStep(1, Step(2, 20), kT0 + absl::Minutes(1))->fired);
}

TEST(TriggerEvaluatorTest, AllRulesOffNeverMatch) {
  TriggerEvaluator::Options o;
  o.on_error = false;
  TriggerEvaluator e(o);
  for (int i = 1; i < 2000; ++i) {
    EXPECT_FALSE(e.OnStep(1, Step(i, i * 10.0, "E"), kT0));
  }
}

}  // namespace
}  // namespace vllm_profiler::collector
