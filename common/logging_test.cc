#include "common/logging.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Captures log output through a pipe-backed temp file.
class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = std::string(getenv("TEST_TMPDIR")) + "/log.txt";
    fd_ = open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    ASSERT_GE(fd_, 0);
    SetLogFdForTesting(fd_);
    SetMinLogLevel(LogLevel::kInfo);
    SetLogPrefix("test");
  }
  void TearDown() override {
    SetLogFdForTesting(-1);
    close(fd_);
  }
  std::string Output() {
    std::string out;
    char buf[4096];
    lseek(fd_, 0, SEEK_SET);
    ssize_t n;
    while ((n = read(fd_, buf, sizeof(buf))) > 0) out.append(buf, n);
    return out;
  }
  std::string path_;
  int fd_ = -1;
};

TEST_F(LoggingTest, WritesLevelPrefixAndMessage) {
  VP_LOG(INFO) << "hello " << 42;
  VP_LOG(WARNING) << "careful";
  std::string out = Output();
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0][0], 'I');
  EXPECT_THAT(lines[0], HasSubstr(" test ] hello 42"));
  EXPECT_EQ(lines[1][0], 'W');
  EXPECT_THAT(lines[1], HasSubstr(" test logging_test.cc:"));
  EXPECT_THAT(lines[1], HasSubstr("] careful"));
}

TEST_F(LoggingTest, MinLevelFilters) {
  VP_LOG(DEBUG) << "invisible";
  SetMinLogLevel(LogLevel::kError);
  VP_LOG(WARNING) << "also invisible";
  VP_LOG(ERROR) << "visible";
  std::string out = Output();
  EXPECT_THAT(out, Not(HasSubstr("invisible")));
  EXPECT_THAT(out, HasSubstr("visible"));
}

TEST_F(LoggingTest, QuietSuppressesErrors) {
  SetMinLogLevel(LogLevel::kQuiet);
  VP_LOG(ERROR) << "hidden";
  EXPECT_EQ(Output(), "");
}

TEST_F(LoggingTest, DisabledStatementDoesNotEvaluateArguments) {
  int calls = 0;
  auto f = [&calls]() {
    ++calls;
    return 1;
  };
  VP_LOG(DEBUG) << f();
  EXPECT_EQ(calls, 0);
}

TEST_F(LoggingTest, EveryNAndFirstN) {
  for (int i = 0; i < 10; ++i) {
    VP_LOG_EVERY_N(INFO, 4) << "every " << i;
  }
  for (int i = 0; i < 10; ++i) {
    VP_LOG_ONCE(INFO) << "once " << i;
  }
  std::string out = Output();
  EXPECT_THAT(out, HasSubstr("every 0\n"));
  EXPECT_THAT(out, HasSubstr("every 4\n"));
  EXPECT_THAT(out, HasSubstr("every 8\n"));
  EXPECT_THAT(out, Not(HasSubstr("every 1\n")));
  EXPECT_THAT(out, HasSubstr("once 0\n"));
  EXPECT_THAT(out, Not(HasSubstr("once 1\n")));
}

TEST_F(LoggingTest, PrintfStyle) {
  VP_LOGF(INFO, "%d probes on %s", 3, "node");
  EXPECT_THAT(Output(), HasSubstr("] 3 probes on node\n"));
}

TEST_F(LoggingTest, DanglingElseIsSafe) {
  bool flag = false;
  if (flag)
    VP_LOG(INFO) << "then";
  else
    VP_LOG(INFO) << "else";
  EXPECT_THAT(Output(), HasSubstr("] else\n"));
}

TEST_F(LoggingTest, LinesFromThreadsDoNotInterleave) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        VP_LOG(INFO) << "thread" << t << "-line" << i << "-end";
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<std::string> lines =
      absl::StrSplit(Output(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 800u);
  for (const auto& line : lines) {
    EXPECT_THAT(line,
                ::testing::MatchesRegex(".*\\] thread[0-3]-line[0-9]+-end"));
  }
}

TEST(ParseLogLevelTest, KnownAndUnknown) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("DEBUG", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("quiet", &level));
  EXPECT_EQ(level, LogLevel::kQuiet);
  EXPECT_FALSE(ParseLogLevel("loud", &level));
  EXPECT_EQ(level, LogLevel::kQuiet);
}

TEST(LoggingDeathTest, FatalAborts) {
  EXPECT_DEATH({ VP_LOG(FATAL) << "boom"; }, "boom");
  EXPECT_DEATH({ VP_CHECK(1 == 2) << "math"; }, "Check failed: 1 == 2 math");
}

}  // namespace
}  // namespace vllm_profiler
