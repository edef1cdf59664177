#include "collector/trace_time_shift.h"

#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector {
namespace {

constexpr char kTrace[] =
    R"({"traceEvents":[)"
    R"({"ph":"X","name":"a\"ts\":-5.000","ts":-12.345,"dur":1.000,)"
    R"("args":{"ts":-7}},)"
    R"({"ph":"i","s":"t","ts": 0.000},)"
    R"({"ph":"f","id":1,"ts":3.5,"bp":"e"}],)"
    R"("displayTimeUnit":"ns","metadata":{"ts":-1,"processes":[{"ts":-2}]}})";

absl::Status ShiftInChunks(absl::string_view in, size_t chunk, int64_t shift,
                           std::string* out) {
  TraceTimeShifter shifter(shift);
  for (size_t i = 0; i < in.size(); i += chunk) {
    absl::Status s = shifter.Feed(in.substr(i, chunk), out);
    if (!s.ok()) return s;
  }
  return shifter.Finish(out);
}

TEST(TraceTimeShifterTest, MovesEveryEventTsAndNothingElse) {
  std::string out;
  ASSERT_TRUE(ShiftInChunks(kTrace, sizeof(kTrace), 12345, &out).ok());
  nlohmann::json j = nlohmann::json::parse(out);
  EXPECT_EQ(j["traceEvents"][0]["ts"].get<double>(), 0.0);
  EXPECT_EQ(j["traceEvents"][1]["ts"].get<double>(), 12.345);
  EXPECT_EQ(j["traceEvents"][2]["ts"].get<double>(), 15.845);
  // Strings, args and metadata are untouched.
  EXPECT_EQ(j["traceEvents"][0]["name"], "a\"ts\":-5.000");
  EXPECT_EQ(j["traceEvents"][0]["args"]["ts"], -7);
  EXPECT_EQ(j["metadata"]["ts"], -1);
  EXPECT_EQ(j["metadata"]["processes"][0]["ts"], -2);
  EXPECT_EQ(j["traceEvents"][0]["dur"].get<double>(), 1.0);
}

TEST(TraceTimeShifterTest, OutputDoesNotDependOnChunking) {
  std::string whole;
  ASSERT_TRUE(ShiftInChunks(kTrace, sizeof(kTrace), 1000, &whole).ok());
  for (size_t chunk : {1, 2, 3, 7, 16}) {
    std::string split;
    ASSERT_TRUE(ShiftInChunks(kTrace, chunk, 1000, &split).ok()) << chunk;
    EXPECT_EQ(split, whole) << chunk;
  }
  // Only the number changed, in TraceWriter's format.
  EXPECT_NE(whole.find(R"("ts":-11.345,)"), std::string::npos) << whole;
  EXPECT_NE(whole.find(R"("ts": 1.000})"), std::string::npos) << whole;
}

TEST(TraceTimeShifterTest, ForeignNumberFormatIsAnError) {
  std::string out;
  absl::Status s =
      ShiftInChunks(R"({"traceEvents":[{"ts":1e5}]})", 64, 1, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "unexpected ts value \"1e5\"");
  out.clear();
  s = ShiftInChunks(R"({"traceEvents":[{"ts":1.23456}]})", 64, 1, &out);
  EXPECT_EQ(s.message(), "unexpected ts value \"1.23456\"");
  out.clear();
  s = ShiftInChunks(R"({"traceEvents":[{"ts":"1.000"}]})", 64, 1, &out);
  EXPECT_EQ(s.message(), "unexpected ts value \"\"\"");
}

TEST(TraceTimeShifterTest, TruncatedFileIsAnError) {
  std::string out;
  absl::Status s = ShiftInChunks(R"({"traceEvents":[{"ts":-12.3)", 5, 1, &out);
  EXPECT_EQ(s.message(), "trace ends inside a JSON value");
  out.clear();
  s = ShiftInChunks(R"({"traceEvents":[{"name":"x)", 5, 1, &out);
  EXPECT_EQ(s.message(), "trace ends inside a JSON value");
}

}  // namespace
}  // namespace vllm_profiler::collector
