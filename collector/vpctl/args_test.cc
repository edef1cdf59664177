#include "collector/vpctl/args.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::collector::vpctl {
namespace {

using ::testing::ElementsAre;

std::map<std::string, ArgSpec> Specs() {
  std::map<std::string, ArgSpec> s;
  s["fetch"].value_options = {"o"};
  s["capture"].value_options = {"steps", "start-after", "pids", "o"};
  s["capture"].bool_options = {"wait", "no-gpu"};
  s["run"].value_options = {"steps"};
  s["run"].allow_trailing = true;
  return s;
}

TEST(ArgsTest, CommandOptionsAndPositionals) {
  auto a =
      ParseArgs({"--addr", "h:1", "fetch", "trace7", "-o", "x.json"}, Specs());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->command, "fetch");
  EXPECT_EQ(a->Get("addr"), "h:1");
  EXPECT_EQ(a->Get("o"), "x.json");
  EXPECT_THAT(a->positional, ElementsAre("trace7"));
}

TEST(ArgsTest, DashesUnderscoresEqualsAndBools) {
  auto a = ParseArgs({"capture", "--start_after=5", "--steps", "3", "--wait",
                      "--no-gpu", "--output=t.json.gz", "--addr=a:2"},
                     Specs());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a->GetUint("start-after", 0), 5u);
  EXPECT_EQ(*a->GetUint("steps", 0), 3u);
  EXPECT_EQ(*a->GetUint("pids", 9), 9u);
  EXPECT_TRUE(a->Has("wait"));
  EXPECT_TRUE(a->Has("no-gpu"));
  EXPECT_EQ(a->Get("o"), "t.json.gz");
  EXPECT_EQ(a->Get("addr"), "a:2");
}

TEST(ArgsTest, TrailingCommandIsVerbatim) {
  auto a = ParseArgs(
      {"run", "--steps", "2", "--", "python3", "-c", "--steps", "x"}, Specs());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_THAT(a->trailing, ElementsAre("python3", "-c", "--steps", "x"));
  EXPECT_EQ(a->Get("steps"), "2");
}

TEST(ArgsTest, Errors) {
  EXPECT_EQ(ParseArgs({"nope"}, Specs()).status().message(),
            "unknown command 'nope' (commands: capture, fetch, run)");
  EXPECT_EQ(ParseArgs({"fetch", "--wait"}, Specs()).status().message(),
            "unknown option --wait for 'vpctl fetch'");
  EXPECT_EQ(ParseArgs({"fetch", "-o"}, Specs()).status().message(),
            "option -o needs a value");
  EXPECT_EQ(ParseArgs({"capture", "--wait=1"}, Specs()).status().message(),
            "option --wait takes no value");
  EXPECT_EQ(ParseArgs({"fetch", "--", "x"}, Specs()).status().message(),
            "'vpctl fetch' takes no '--' arguments");
  auto a = ParseArgs({"capture", "--steps", "-3"}, Specs());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->GetUint("steps", 0).status().message(),
            "--steps: expected a non-negative integer, got '-3'");
}

TEST(ArgsTest, PodSelectionIsGlobalAndPodRepeats) {
  auto a = ParseArgs({"--context", "prod", "-n", "llm", "--pod", "a", "--pod",
                      "b,c", "capture", "--steps", "3", "--selector=x=y"},
                     Specs());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->Get("context"), "prod");
  EXPECT_EQ(a->Get("n"), "llm");
  EXPECT_EQ(a->Get("pod"), "a,b,c");
  EXPECT_EQ(a->Get("l"), "x=y");
  a = ParseArgs({"--namespace", "ns", "-l", "app=vllm", "fetch"}, Specs());
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->Get("n"), "ns");
  EXPECT_EQ(a->Get("l"), "app=vllm");
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl
