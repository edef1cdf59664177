#include "collector/flight_flags.h"

#include "gtest/gtest.h"

namespace vllm_profiler::collector {
namespace {

std::string Error(const FlightFlagValues& v) {
  absl::StatusOr<FlightRecorder::Options> o = ParseFlightFlags(v);
  EXPECT_FALSE(o.ok());
  return o.ok() ? "" : std::string(o.status().message());
}

TEST(FlightFlagsTest, Defaults) {
  absl::StatusOr<FlightRecorder::Options> o = ParseFlightFlags({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->trigger.slow_step_ms, 0);
  EXPECT_EQ(o->trigger.factor, 0);
  EXPECT_EQ(o->trigger.window, 500u);
  EXPECT_TRUE(o->trigger.on_error);
  EXPECT_EQ(o->trigger.cooldown, absl::Minutes(10));
  EXPECT_EQ(o->pre_steps, 200u);
  EXPECT_EQ(o->post_steps, 20u);
}

TEST(FlightFlagsTest, Values) {
  FlightFlagValues v;
  v.slow_step_ms = "250.5";
  v.factor = " 3 ";
  v.window = "1000";
  v.on_error = "False";
  v.pre_steps = "0";
  v.post_steps = "5";
  v.cooldown = "90";
  absl::StatusOr<FlightRecorder::Options> o = ParseFlightFlags(v);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->trigger.slow_step_ms, 250.5);
  EXPECT_EQ(o->trigger.factor, 3);
  EXPECT_EQ(o->trigger.window, 1000u);
  EXPECT_FALSE(o->trigger.on_error);
  EXPECT_EQ(o->pre_steps, 0u);
  EXPECT_EQ(o->post_steps, 5u);
  EXPECT_EQ(o->trigger.cooldown, absl::Seconds(90));
  v.cooldown = "1h30m";
  EXPECT_EQ(ParseFlightFlags(v)->trigger.cooldown, absl::Minutes(90));
}

TEST(FlightFlagsTest, BadValuesNameTheFlag) {
  FlightFlagValues v;
  v.factor = "1";
  EXPECT_EQ(Error(v),
            "--trigger_factor='1': must be greater than 1 (a step slower "
            "than factor x the median), or 0 to turn the rule off");
  v.factor = "0.5";
  EXPECT_NE(Error(v).find("must be greater than 1"), std::string::npos);
  v = {};
  v.slow_step_ms = "-5";
  EXPECT_EQ(Error(v), "--trigger_slow_step_ms='-5': must not be negative");
  v.slow_step_ms = "fast";
  EXPECT_EQ(Error(v), "--trigger_slow_step_ms='fast': not a number");
  v.slow_step_ms = "nan";
  EXPECT_EQ(Error(v), "--trigger_slow_step_ms='nan': not a number");
  v = {};
  v.window = "0";
  EXPECT_EQ(Error(v),
            "--trigger_window='0': must be a whole number from 1 to 100000");
  v = {};
  v.post_steps = "0";
  EXPECT_EQ(Error(v),
            "--trigger_post_steps='0': must be a whole number from 1 to 10000");
  v = {};
  v.pre_steps = "1e9";
  EXPECT_EQ(
      Error(v),
      "--trigger_pre_steps='1e9': must be a whole number from 0 to 100000");
  v = {};
  v.cooldown = "soon";
  EXPECT_EQ(Error(v),
            "--trigger_cooldown='soon': not a duration (e.g. 10m, 90s, or "
            "seconds)");
  v.cooldown = "-1";
  EXPECT_EQ(Error(v), "--trigger_cooldown='-1': must be from 0 to a year");
  v = {};
  v.on_error = "maybe";
  EXPECT_EQ(Error(v), "--trigger_on_error='maybe': must be true or false");
}

}  // namespace
}  // namespace vllm_profiler::collector
