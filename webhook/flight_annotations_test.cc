#include "webhook/flight_annotations.h"

#include <map>

#include "gtest/gtest.h"

namespace vllm_profiler::webhook {
namespace {

FlightSettings Parse(const std::map<std::string, std::string>& a,
                     std::vector<std::string>* warnings) {
  return ParseFlightAnnotations(
      [&](const std::string& suffix) -> std::optional<std::string> {
        auto it = a.find(suffix);
        if (it == a.end()) return std::nullopt;
        return it->second;
      },
      warnings);
}

TEST(FlightAnnotationsTest, NoneGivesNothing) {
  std::vector<std::string> w;
  FlightSettings s = Parse({}, &w);
  EXPECT_FALSE(s.flight_env.has_value());
  EXPECT_TRUE(s.collector_args.empty());
  EXPECT_TRUE(w.empty());
}

TEST(FlightAnnotationsTest, EveryAnnotationMapsToItsFlag) {
  std::vector<std::string> w;
  FlightSettings s = Parse({{"flight", " Off "},
                            {"trigger-slow-step-ms", "250.5"},
                            {"trigger-factor", "3"},
                            {"trigger-window", "1000"},
                            {"trigger-pre-steps", "0"},
                            {"trigger-post-steps", "10"},
                            {"trigger-cooldown", "5m"},
                            {"trigger-on-error", "FALSE"}},
                           &w);
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(s.flight_env, "off");
  EXPECT_EQ(s.collector_args,
            (std::vector<std::string>{
                "--trigger_slow_step_ms=250.5", "--trigger_factor=3",
                "--trigger_window=1000", "--trigger_pre_steps=0",
                "--trigger_post_steps=10", "--trigger_cooldown=300s",
                "--trigger_on_error=false"}));
}

TEST(FlightAnnotationsTest, BadValuesAreLeftOutWithAWarning) {
  std::vector<std::string> w;
  FlightSettings s = Parse({{"flight", "always"},
                            {"trigger-slow-step-ms", "-5"},
                            {"trigger-factor", "1"},
                            {"trigger-window", "0"},
                            {"trigger-post-steps", "2.5"},
                            {"trigger-cooldown", "-1"},
                            {"trigger-on-error", "maybe"}},
                           &w);
  EXPECT_FALSE(s.flight_env.has_value());
  EXPECT_TRUE(s.collector_args.empty());
  EXPECT_EQ(w, (std::vector<std::string>{
                   "vllm-profiler: annotation vllm-profiler.llm-d.ai/flight: "
                   "'always' is not steps, gpu or off; the default is used",
                   "vllm-profiler: annotation "
                   "vllm-profiler.llm-d.ai/trigger-slow-step-ms: '-5' is not "
                   "a number in [0, 10000000]; the default is used",
                   "vllm-profiler: annotation "
                   "vllm-profiler.llm-d.ai/trigger-factor: '1' is not 0 or a "
                   "number above 1 (at most 1000); the default is used",
                   "vllm-profiler: annotation "
                   "vllm-profiler.llm-d.ai/trigger-window: '0' is not an "
                   "integer in [1, 100000]; the default is used",
                   "vllm-profiler: annotation "
                   "vllm-profiler.llm-d.ai/trigger-post-steps: '2.5' is not "
                   "an integer in [1, 10000]; the default is used",
                   "vllm-profiler: annotation "
                   "vllm-profiler.llm-d.ai/trigger-cooldown: '-1' is not a "
                   "duration from 0 to a year (seconds, or e.g. 10m); the "
                   "default is used",
                   "vllm-profiler: annotation "
                   "vllm-profiler.llm-d.ai/trigger-on-error: 'maybe' is not "
                   "true or false; the default is used"}));
}

}  // namespace
}  // namespace vllm_profiler::webhook
