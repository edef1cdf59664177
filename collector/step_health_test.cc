#include "collector/step_health.h"

#include <string>

#include "gtest/gtest.h"

namespace vllm_profiler::collector {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

StepHealth::Sample S(int64_t step, double ms, int64_t tokens, int64_t requests,
                     absl::Duration at) {
  StepHealth::Sample s;
  s.step = step;
  s.duration_ms = ms;
  s.tokens = tokens;
  s.requests = requests;
  s.end = kT0 + at;
  return s;
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(StepHealthTest, MetricsAreExact) {
  StepHealth h;
  h.OnSteps(
      1, {42, 0, "VllmWorker-0"},
      {S(1, 4, 100, 3, absl::Seconds(1)), S(2, 20, 7, 2, absl::Seconds(2)),
       S(3, 2000, -1, -1, absl::Seconds(3))},
      5);
  h.OnSlowStep(1, 3, 2000, "slow step: step 3 took 2000.0 ms > 100 ms");
  h.OnTrigger(true);
  h.OnTrigger(false);
  h.OnTrigger(false);
  std::string m;
  h.AppendMetrics(&m);
  const std::string l = "pid=\"42\",rank=\"0\",process=\"VllmWorker-0\"";
  EXPECT_TRUE(Has(m, "# TYPE vllm_profiler_step_duration_seconds histogram"));
  EXPECT_TRUE(Has(m, "vllm_profiler_step_duration_seconds_bucket{" + l +
                         ",le=\"0.001\"} 0"));
  EXPECT_TRUE(Has(m, "vllm_profiler_step_duration_seconds_bucket{" + l +
                         ",le=\"0.005\"} 1"));
  EXPECT_TRUE(Has(m, "vllm_profiler_step_duration_seconds_bucket{" + l +
                         ",le=\"0.025\"} 2"));
  EXPECT_TRUE(Has(
      m, "vllm_profiler_step_duration_seconds_bucket{" + l + ",le=\"1\"} 2"));
  EXPECT_TRUE(Has(
      m, "vllm_profiler_step_duration_seconds_bucket{" + l + ",le=\"2.5\"} 3"));
  EXPECT_TRUE(Has(m, "vllm_profiler_step_duration_seconds_bucket{" + l +
                         ",le=\"+Inf\"} 3"));
  EXPECT_TRUE(
      Has(m, "vllm_profiler_step_duration_seconds_sum{" + l + "} 2.024000000"));
  EXPECT_TRUE(Has(m, "vllm_profiler_step_duration_seconds_count{" + l + "} 3"));
  EXPECT_TRUE(Has(
      m, "vllm_profiler_step_scheduled_tokens_bucket{" + l + ",le=\"8\"} 1"));
  EXPECT_TRUE(Has(
      m, "vllm_profiler_step_scheduled_tokens_bucket{" + l + ",le=\"128\"} 2"));
  EXPECT_TRUE(Has(m, "vllm_profiler_step_scheduled_tokens_count{" + l + "} 2"));
  EXPECT_TRUE(Has(
      m, "vllm_profiler_step_scheduled_tokens_sum{" + l + "} 107.000000000"));
  EXPECT_TRUE(Has(
      m, "vllm_profiler_step_scheduled_requests_bucket{" + l + ",le=\"2\"} 1"));
  EXPECT_TRUE(Has(m, "vllm_profiler_steps_total{" + l + "} 3"));
  EXPECT_TRUE(Has(m, "vllm_profiler_slow_steps_total{" + l + "} 1"));
  EXPECT_TRUE(Has(m, "vllm_profiler_steps_not_summarized_total{" + l + "} 5"));
  EXPECT_TRUE(Has(m, "vllm_profiler_triggers_fired_total 1"));
  EXPECT_TRUE(Has(m, "vllm_profiler_triggers_suppressed_total 2"));
}

TEST(StepHealthTest, TopRowsOverTheLastMinute) {
  StepHealth h;
  std::vector<StepHealth::Sample> steps;
  // 120 steps over 2 minutes, one a second: 10 ms, 100 tokens; the last
  // minute holds steps 61..120, with step 100 at 50 ms.
  for (int i = 1; i <= 120; ++i) {
    steps.push_back(S(i, i == 100 ? 50 : 10, 100, 4, absl::Seconds(i)));
  }
  h.OnSteps(9, {7, 1, "w1"}, steps, 0);
  h.OnSteps(8, {5, 0, "w0\"x"}, {S(1, 3, 1, 1, absl::Seconds(119))}, 0);
  h.OnSlowStep(9, 100, 50, "slow step: step 100 took 50.0 ms > 20 ms");
  std::vector<v1::StepHealth> rows = h.Snapshot(kT0 + absl::Seconds(120));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].pid(), 5);                   // Rank 0 first.
  EXPECT_DOUBLE_EQ(rows[0].steps_per_s(), 1.0);  // 1 step in its 1 s.
  const v1::StepHealth& r = rows[1];
  EXPECT_EQ(r.pid(), 7);
  EXPECT_EQ(r.rank(), 1);
  EXPECT_EQ(r.steps(), 120u);
  EXPECT_EQ(r.slow_steps(), 1u);
  EXPECT_DOUBLE_EQ(r.steps_per_s(), 61.0 / 60);  // Steps at 60..120 s.
  EXPECT_DOUBLE_EQ(r.tokens_per_s(), 6100.0 / 60);
  EXPECT_DOUBLE_EQ(r.step_p50_ms(), 10);
  EXPECT_DOUBLE_EQ(r.step_p99_ms(), 50);
  EXPECT_EQ(r.last_slow_step(), 100);
  EXPECT_EQ(r.last_slow_reason(), "slow step: step 100 took 50.0 ms > 20 ms");
  std::string m;
  h.AppendMetrics(&m);
  EXPECT_TRUE(Has(m,
                  "vllm_profiler_steps_total{pid=\"5\",rank=\"0\","
                  "process=\"w0\\\"x\"} 1"));
  h.Forget(9);
  EXPECT_EQ(h.Snapshot(kT0 + absl::Seconds(120)).size(), 1u);
}

}  // namespace
}  // namespace vllm_profiler::collector
