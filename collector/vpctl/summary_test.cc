#include "collector/vpctl/summary.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::collector::vpctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Two steps; aten::linear (50 us) contains aten::mm (30 us) which contains a
// 5 us launch: linear self = 20, mm self = 25.
constexpr char kTrace[] = R"({"traceEvents":[
 {"ph":"M","name":"process_name","pid":1,"args":{"name":"p"}},
 {"ph":"X","cat":"step","name":"execute_model","pid":1,"tid":1,"ts":0,"dur":100},
 {"ph":"X","cat":"cpu_op","name":"aten::linear","pid":1,"tid":1,"ts":10,"dur":50},
 {"ph":"X","cat":"cpu_op","name":"aten::mm","pid":1,"tid":1,"ts":15,"dur":30},
 {"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":20,"dur":5},
 {"ph":"X","cat":"kernel","name":"gemm","pid":1,"tid":1000000007,"ts":30,"dur":40},
 {"ph":"X","cat":"step","name":"execute_model","pid":1,"tid":1,"ts":200,"dur":300},
 {"ph":"X","cat":"cpu_op","name":"aten::mm","pid":1,"tid":1,"ts":210,"dur":10},
 {"ph":"i","cat":"instant","name":"x","pid":1,"tid":1,"ts":5,"s":"t"}
]})";

TEST(SummaryTest, StepsSelfTimesAndKernels) {
  absl::StatusOr<std::string> s = SummarizeTraceJson(kTrace, {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, HasSubstr("9 events\n"));
  EXPECT_THAT(*s, HasSubstr("Steps (execute_model): 2  mean 0.200 ms  median "
                            "0.300 ms  min 0.100 ms  max 0.300 ms\n"));
  EXPECT_THAT(*s, HasSubstr("Top CPU operators by self time:\n"
                            "  SELF ms  TOTAL ms  CALLS  NAME\n"
                            "  0.035    0.040     2      aten::mm\n"
                            "  0.020    0.050     1      aten::linear\n"));
  EXPECT_THAT(*s, HasSubstr("Top GPU kernels by time:\n"
                            "  TOTAL ms  CALLS  NAME\n"
                            "  0.040     1      gemm\n"));
}

// vLLM >= 0.11.1: a step is execute_model + sample_tokens with an engine gap.
constexpr char kPairTrace[] = R"({"traceEvents":[
 {"ph":"X","cat":"step","name":"W.execute_model+sample_tokens","pid":1,"tid":1,"ts":0,"dur":100},
 {"ph":"X","cat":"python_function","name":"execute_model","pid":1,"tid":1,"ts":0,"dur":60},
 {"ph":"X","cat":"python_function","name":"sample_tokens","pid":1,"tid":1,"ts":80,"dur":20},
 {"ph":"X","cat":"step","name":"W.execute_model+sample_tokens","pid":1,"tid":1,"ts":200,"dur":200},
 {"ph":"X","cat":"python_function","name":"execute_model","pid":1,"tid":1,"ts":200,"dur":100},
 {"ph":"X","cat":"python_function","name":"sample_tokens","pid":1,"tid":1,"ts":340,"dur":60},
 {"ph":"X","cat":"python_function","name":"sample_tokens","pid":1,"tid":1,"ts":500,"dur":9}
],"metadata":{"processes":[{"pid":1,"process_name":"VllmWorker-0","op_source":"torch profiler"},
 {"pid":2,"process_name":"x","op_source":""}, 7]}})";

TEST(SummaryTest, StepSplitIntoItsCallsAndTheGapAndOperatorSource) {
  absl::StatusOr<std::string> s = SummarizeTraceJson(kPairTrace, {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, HasSubstr("Steps (W.execute_model+sample_tokens): 2  mean "
                            "0.150 ms"));
  // Per step: exec 60/100, sample 20/60, gap 20/40 (the orphan
  // sample_tokens outside any step counts nowhere).
  EXPECT_THAT(
      *s, HasSubstr("  STEP PART      MEAN ms  MEDIAN ms  MAX ms  SHARE\n"
                    "  execute_model  0.080    0.100      0.100   53.3%\n"
                    "  sample_tokens  0.040    0.060      0.060   26.7%\n"
                    "  gap (engine)   0.030    0.040      0.040   20.0%\n"));
  EXPECT_THAT(*s, HasSubstr("Operators of VllmWorker-0 (pid 1): torch "
                            "profiler\n"));
  EXPECT_THAT(*s, Not(HasSubstr("Operators of x")));
}

TEST(SummaryTest, BadInput) {
  EXPECT_EQ(SummarizeTraceJson("{not json", {}).status().message(),
            "not a Chrome trace: invalid JSON");
  EXPECT_EQ(SummarizeTraceJson("{\"a\":1}", {}).status().message(),
            "not a Chrome trace: no traceEvents array");
  // Wrong types inside events are skipped, not fatal.
  absl::StatusOr<std::string> s = SummarizeTraceJson(
      R"([{"ph":"X","ts":"a","dur":1},{"ph":5},7,{"ph":"X","ts":1,"dur":2,"pid":"x"}])",
      {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(*s, HasSubstr("Steps: none recorded"));
}

TEST(SummaryTest, MissingAndTooLargeFiles) {
  EXPECT_EQ(SummarizeTraceFile("/nonexistent.json", {}).status().code(),
            absl::StatusCode::kNotFound);
  SummaryOptions tiny;
  tiny.max_bytes = 1;
  EXPECT_EQ(SummarizeTraceFile("/proc/self/exe", tiny).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl
