#include "probe/core/config.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

ProbeConfig Parse(const std::map<std::string, std::string>& env,
                  std::vector<std::string>* problems) {
  return ParseProbeConfig(
      [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      problems);
}

TEST(ConfigTest, DefaultsAreTheSeedWindow) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_TRUE(c.enabled);
  EXPECT_EQ(c.start_step, 100u);
  EXPECT_EQ(c.num_steps, 50u);
  EXPECT_EQ(c.duration_ms, 0u);
  EXPECT_TRUE(c.record_shapes);
  EXPECT_TRUE(c.gpu);
  EXPECT_EQ(c.Target(), "unix:/home/vllm/profiler/collector.sock");
  EXPECT_EQ(c.max_buffer_bytes, 64ull << 20);
  EXPECT_EQ(c.rank, -1);
}

TEST(ConfigTest, ReadsEveryVariable) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_START_STEP", "7"},
                         {"VLLM_PROFILER_NUM_STEPS", " 3 "},
                         {"VLLM_PROFILER_DURATION_MS", "250"},
                         {"VLLM_PROFILER_RECORD_SHAPES", "0"},
                         {"VLLM_PROFILER_GPU", "false"},
                         {"VLLM_PROFILER_ADDRESS", "127.0.0.1:9"},
                         {"VLLM_PROFILER_MAX_BUFFER_MB", "2"},
                         {"VLLM_TORCH_PROFILE", "/tmp/x.json"},
                         {"POD_NAME", "p"},
                         {"RANK", "3"},
                         {"WORLD_SIZE", "8"}},
                        &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(c.start_step, 7u);
  EXPECT_EQ(c.num_steps, 3u);
  EXPECT_EQ(c.duration_ms, 250u);
  EXPECT_FALSE(c.record_shapes);
  EXPECT_FALSE(c.gpu);
  EXPECT_EQ(c.Target(), "127.0.0.1:9");
  EXPECT_EQ(c.max_buffer_bytes, 2ull << 20);
  EXPECT_EQ(c.requested_name, "/tmp/x.json");
  EXPECT_EQ(c.pod_name, "p");
  EXPECT_EQ(c.rank, 3);
  EXPECT_EQ(c.world_size, 8);
}

TEST(ConfigTest, BadValuesKeepDefaultsWithExactMessages) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_START_STEP", "abc"},
                         {"VLLM_PROFILER_NUM_STEPS", "-5"},
                         {"VLLM_PROFILER_GPU", "maybe"},
                         {"VLLM_PROFILER_MAX_BUFFER_MB", "0"},
                         {"VLLM_PROFILER_DURATION_MS", "99999999999"},
                         {"RANK", "x\n"}},
                        &problems);
  EXPECT_EQ(c.start_step, 100u);
  EXPECT_EQ(c.num_steps, 50u);
  EXPECT_TRUE(c.gpu);
  EXPECT_EQ(c.max_buffer_bytes, 1ull << 20);
  EXPECT_EQ(c.duration_ms, 0u);
  EXPECT_EQ(c.rank, -1);
  std::vector<std::string> want = {
      "VLLM_PROFILER_START_STEP='abc' is not a non-negative integer; using 100",
      "VLLM_PROFILER_NUM_STEPS='-5' is not a non-negative integer; using 50",
      "VLLM_PROFILER_DURATION_MS='99999999999' is larger than 4294967295; "
      "using 0",
      "VLLM_PROFILER_GPU='maybe' is not a boolean (1 or 0); using 1",
      "VLLM_PROFILER_MAX_BUFFER_MB='0' must be at least 1; using 1",
      "RANK='x?' is not a non-negative integer; rank left unknown",
  };
  EXPECT_EQ(problems, want);
}

TEST(ConfigTest, StartStepZeroBecomesOne) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_START_STEP", "0"}}, &problems);
  EXPECT_EQ(c.start_step, 1u);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0],
            "VLLM_PROFILER_START_STEP='0' must be at least 1 (steps are "
            "1-based); using 1");
}

TEST(ConfigTest, DisabledAndLongValuesAreQuotedShort) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_ENABLED", "0"},
                         {"VLLM_PROFILER_NUM_STEPS", std::string(100, '9')}},
                        &problems);
  EXPECT_FALSE(c.enabled);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "VLLM_PROFILER_NUM_STEPS='" + std::string(64, '9') +
                             "...' is not a non-negative integer; using 50");
}

TEST(ConfigTest, FlightRecorderIsOnByDefault) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({}, &problems);
  EXPECT_EQ(c.flight, FlightLevel::kSteps);
  EXPECT_EQ(c.flight_steps, 1024u);
  c = Parse({{"VLLM_PROFILER_FLIGHT", " OFF "},
             {"VLLM_PROFILER_FLIGHT_STEPS", "4096"}},
            &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(c.flight, FlightLevel::kOff);
  EXPECT_EQ(c.flight_steps, 4096u);
}

TEST(ConfigTest, BadFlightSettingsKeepTheDefaultsWithOneLineEach) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_FLIGHT", "always"},
                         {"VLLM_PROFILER_FLIGHT_STEPS", "-5"}},
                        &problems);
  EXPECT_EQ(c.flight, FlightLevel::kSteps);
  EXPECT_EQ(c.flight_steps, 1024u);
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "VLLM_PROFILER_FLIGHT='always' is not steps, gpu or "
                          "off; using steps",
                          "VLLM_PROFILER_FLIGHT_STEPS='-5' is not a "
                          "non-negative integer; using 1024"}));
  problems.clear();
  c = Parse({{"VLLM_PROFILER_MAX_BUFFER_MB", "1"},
             {"VLLM_PROFILER_FLIGHT_STEPS", "100000"}},
            &problems);
  EXPECT_EQ(c.flight_steps, 1024u);
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "VLLM_PROFILER_FLIGHT_STEPS=100000 needs 158 MiB, "
                          "more than the probe's memory bound "
                          "(VLLM_PROFILER_MAX_BUFFER_MB=1); using 1024"}));
}

TEST(ConfigTest, FlightGpuLevelAndItsRingBytes) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_FLIGHT", "gpu"}}, &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(c.flight, FlightLevel::kGpu);
  EXPECT_EQ(c.flight_gpu_bytes, 16u << 20);
  c = Parse({{"VLLM_PROFILER_FLIGHT", "GPU"},
             {"VLLM_PROFILER_FLIGHT_GPU_BYTES", " 1048576 "}},
            &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_EQ(c.flight_gpu_bytes, 1u << 20);
}

TEST(ConfigTest, BadFlightGpuSettingsAreRejectedWithOneLineEach) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_FLIGHT", "gpu"},
                         {"VLLM_PROFILER_FLIGHT_GPU_BYTES", "16MiB"}},
                        &problems);
  EXPECT_EQ(c.flight, FlightLevel::kGpu);
  EXPECT_EQ(c.flight_gpu_bytes, 16u << 20);
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "VLLM_PROFILER_FLIGHT_GPU_BYTES='16MiB' is not a "
                          "non-negative integer; using 16777216"}));
  problems.clear();
  c = Parse({{"VLLM_PROFILER_FLIGHT_GPU_BYTES", "-1"}}, &problems);
  EXPECT_EQ(c.flight_gpu_bytes, 16u << 20);
  EXPECT_EQ(problems.size(), 1u);
  problems.clear();
  c = Parse({{"VLLM_PROFILER_FLIGHT_GPU_BYTES", "4096"}}, &problems);
  EXPECT_EQ(c.flight_gpu_bytes, 16u << 20);
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "VLLM_PROFILER_FLIGHT_GPU_BYTES='4096' must be at "
                          "least 65536 (64 KiB); using 16777216"}));
  // Bigger than the memory bound (with the step ring): the largest that
  // fits.
  problems.clear();
  c = Parse({{"VLLM_PROFILER_FLIGHT", "gpu"},
             {"VLLM_PROFILER_MAX_BUFFER_MB", "8"},
             {"VLLM_PROFILER_FLIGHT_GPU_BYTES", "8388608"}},
            &problems);
  EXPECT_EQ(c.flight, FlightLevel::kGpu);
  EXPECT_EQ(c.flight_gpu_bytes, (8u << 20) - 1024 * kFlightStepBytes);
  EXPECT_EQ(problems,
            (std::vector<std::string>{
                "VLLM_PROFILER_FLIGHT_GPU_BYTES=8388608 with the step ring's "
                "1664 KiB is more than the probe's memory bound "
                "(VLLM_PROFILER_MAX_BUFFER_MB=8); using 6684672"}));
  // Level gpu without GPU activity: steps, said once.
  problems.clear();
  c = Parse({{"VLLM_PROFILER_FLIGHT", "gpu"}, {"VLLM_PROFILER_GPU", "0"}},
            &problems);
  EXPECT_EQ(c.flight, FlightLevel::kSteps);
  EXPECT_EQ(problems,
            (std::vector<std::string>{
                "VLLM_PROFILER_FLIGHT=gpu needs GPU activity, which "
                "VLLM_PROFILER_GPU turns off; recording steps only"}));
  // Room, but under 64 KiB: steps only, said once more.
  problems.clear();
  c = Parse({{"VLLM_PROFILER_FLIGHT", "gpu"},
             {"VLLM_PROFILER_MAX_BUFFER_MB", "2"},
             {"VLLM_PROFILER_FLIGHT_STEPS", "1250"},
             {"VLLM_PROFILER_FLIGHT_GPU_BYTES", "1048576"}},
            &problems);
  EXPECT_EQ(c.flight, FlightLevel::kSteps);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("using 17152"), std::string::npos) << problems[0];
  EXPECT_NE(problems[1].find("no room for a GPU ring"), std::string::npos);
  // No room at all beside the step ring.
  problems.clear();
  c = Parse(
      {{"VLLM_PROFILER_FLIGHT", "gpu"}, {"VLLM_PROFILER_MAX_BUFFER_MB", "1"}},
      &problems);
  EXPECT_EQ(c.flight, FlightLevel::kSteps);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("no room for a GPU ring"), std::string::npos);
}

TEST(ConfigTest, UnknownLogLevelAndTooLongSocketAreSaid) {
  std::vector<std::string> problems;
  ProbeConfig c = Parse({{"VLLM_PROFILER_LOG", "loudest"},
                         {"VLLM_PROFILER_SOCKET", "/" + std::string(120, 's')}},
                        &problems);
  EXPECT_EQ(problems,
            (std::vector<std::string>{
                "VLLM_PROFILER_SOCKET is 121 bytes long; a Unix socket path "
                "holds at most 107, so the collector cannot be reached there",
                "VLLM_PROFILER_LOG='loudest' is not info, debug, quiet or off; "
                "using info"}));
  problems.clear();
  Parse({{"VLLM_PROFILER_LOG", "DEBUG"}}, &problems);
  EXPECT_TRUE(problems.empty());
  (void)c;
}

}  // namespace

TEST(ConfigTest, ClockChoice) {
  std::vector<std::string> problems;
  EXPECT_TRUE(Parse({}, &problems).tsc_clock);
  EXPECT_TRUE(Parse({{"VLLM_PROFILER_CLOCK", "auto"}}, &problems).tsc_clock);
  EXPECT_FALSE(
      Parse({{"VLLM_PROFILER_CLOCK", "Monotonic"}}, &problems).tsc_clock);
  EXPECT_TRUE(problems.empty());
  EXPECT_TRUE(Parse({{"VLLM_PROFILER_CLOCK", "rdtsc"}}, &problems).tsc_clock);
  EXPECT_EQ(problems, (std::vector<std::string>{
                          "VLLM_PROFILER_CLOCK='rdtsc' is not auto or "
                          "monotonic; using auto"}));
}

}  // namespace vllm_profiler::probe
