#include "probe/core/log.h"

#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

std::string Capture(void (*fn)()) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  SetProbeLogFdForTesting(fds[1]);
  fn();
  SetProbeLogFdForTesting(-1);
  close(fds[1]);
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fds[0]);
  return out;
}

TEST(LogTest, PrefixAndLevels) {
  EXPECT_EQ(ParseProbeLogLevel("debug"), ProbeLogLevel::kDebug);
  EXPECT_EQ(ParseProbeLogLevel("QUIET"), ProbeLogLevel::kQuiet);
  EXPECT_EQ(ParseProbeLogLevel("bogus"), ProbeLogLevel::kInfo);
  EXPECT_EQ(ParseProbeLogLevel(nullptr), ProbeLogLevel::kInfo);
  EXPECT_EQ(Capture([] {
              SetProbeLogLevel(ProbeLogLevel::kInfo);
              ProbeLog(ProbeLogLevel::kInfo, "hello");
              ProbeLog(ProbeLogLevel::kDebug, "hidden");
            }),
            "vllm-profiler: hello\n");
  EXPECT_EQ(Capture([] {
              SetProbeLogLevel(ProbeLogLevel::kQuiet);
              ProbeLog(ProbeLogLevel::kInfo, "hidden");
              SetProbeLogLevel(ProbeLogLevel::kInfo);
            }),
            "");
}

TEST(LogTest, OnceLogsOnce) {
  EXPECT_EQ(Capture([] {
              for (int i = 0; i < 3; ++i) {
                VP_PROBE_LOG_ONCE(ProbeLogLevel::kInfo, "once");
              }
            }),
            "vllm-profiler: once\n");
}

}  // namespace
}  // namespace vllm_profiler::probe
