#include "probe/core/step_ring.h"

#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace vllm_profiler::probe {
namespace {

void RunStep(StepRing& ring, int64_t step, int64_t start, int64_t end) {
  ring.Begin(step, start, 7);
  const int exec = ring.SpanBegin("execute_model", start);
  ring.SpanEnd(exec, start + (end - start) / 2);
  const int sample = ring.SpanBegin("sample_tokens", start + (end - start) / 2);
  ring.SpanEnd(sample, end);
  ring.End(end);
}

std::vector<int64_t> Steps(const std::vector<FlightStep>& v) {
  std::vector<int64_t> out;
  for (const FlightStep& s : v) out.push_back(s.step);
  return out;
}

TEST(StepRingTest, KeepsTheLastStepsOldestFirst) {
  StepRing ring(4);
  for (int i = 1; i <= 6; ++i) RunStep(ring, i, i * 100, i * 100 + 50);
  std::vector<FlightStep> out;
  ring.CopyLast(10, &out);
  EXPECT_EQ(Steps(out), (std::vector<int64_t>{3, 4, 5, 6}));
  out.clear();
  ring.CopyLast(2, &out);
  EXPECT_EQ(Steps(out), (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(out[1].start_ns, 600);
  EXPECT_EQ(out[1].end_ns, 650);
  ASSERT_EQ(out[1].num_spans, 2);
  EXPECT_STREQ(out[1].spans[0].name, "execute_model");
  EXPECT_EQ(out[1].spans[1].end_ns, 650);
}

TEST(StepRingTest, TheOpenStepIsNeverRead) {
  StepRing ring(3);
  for (int i = 1; i <= 3; ++i) RunStep(ring, i, i * 10, i * 10 + 5);
  ring.Begin(4, 40, 7);  // Reuses the slot of step 1.
  std::vector<FlightStep> out;
  ring.CopyLast(10, &out);
  EXPECT_EQ(Steps(out), (std::vector<int64_t>{2, 3}));
  ring.End(45);
  out.clear();
  ring.CopyLast(10, &out);
  EXPECT_EQ(Steps(out), (std::vector<int64_t>{2, 3, 4}));
}

TEST(StepRingTest, AnnotationsOfTheOpenStep) {
  StepRing ring(8);
  ring.Shape(nullptr);  // No open step: dropped (never dereferenced).
  ring.Begin(1, 0, 3);
  const int64_t shape[4] = {4, 130, 1, 3};
  ring.Shape(shape);
  for (int i = 0; i < 10; ++i) ring.ArgInt("num_new_requests", i);
  ring.ArgStr("other", "x");
  ring.ArgStr("request_ids", "a,b,c");
  ring.Error("RuntimeError");
  ring.End(9);
  std::vector<FlightStep> out;
  ring.CopyLast(1, &out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape[1], 130);
  EXPECT_EQ(out[0].num_int_args, FlightStep::kMaxIntArgs);
  EXPECT_EQ(std::string(out[0].request_ids, out[0].request_ids_len), "a,b,c");
  EXPECT_EQ(std::string(out[0].error, out[0].error_len), "RuntimeError");
  v1::StepSummary sum;
  FillStepSummary(out[0], &sum);
  EXPECT_EQ(sum.duration_ns(), 9);
  EXPECT_EQ(sum.num_tokens(), 130);
  EXPECT_EQ(sum.error(), "RuntimeError");
}

TEST(StepRingTest, LongRequestIdsAreCutAtAWholeId) {
  StepRing ring(2);
  ring.Begin(1, 0, 3);
  std::string ids;
  for (int i = 0; ids.size() < 3000; ++i) {
    if (!ids.empty()) ids += ",";
    ids += "req-" + std::to_string(i);
  }
  ring.ArgStr("request_ids", ids.c_str());
  ring.End(1);
  std::vector<FlightStep> out;
  ring.CopyLast(1, &out);
  const std::string kept(out[0].request_ids, out[0].request_ids_len);
  ASSERT_LE(kept.size(), FlightStep::kMaxRequestIdBytes - 1);
  EXPECT_EQ(ids.compare(0, kept.size() + 1, kept + ","), 0) << kept;
}

TEST(StepRingTest, SpansBoundedAndEndWithoutOpenStepIgnored) {
  StepRing ring(2);
  EXPECT_EQ(ring.SpanBegin("x", 0), 0);
  ring.End(5);  // Nothing open.
  EXPECT_EQ(ring.committed(), 0u);
  ring.Begin(1, 0, 3);
  for (int i = 1; i <= FlightStep::kMaxSpans; ++i) {
    EXPECT_EQ(ring.SpanBegin("s", i), i);
  }
  EXPECT_EQ(ring.SpanBegin("s", 9), 0);
  ring.SpanEnd(99, 10);  // Out of range: ignored.
  ring.End(10);
  EXPECT_EQ(ring.committed(), 1u);
}

TEST(StepRingTest, SummariesSinceACursorCountWhatWasLost) {
  StepRing ring(4);
  uint64_t cursor = 0;
  for (int i = 1; i <= 3; ++i) RunStep(ring, i, i, i + 1);
  std::vector<int64_t> seen;
  auto collect = [&](const FlightStep& s) { seen.push_back(s.step); };
  EXPECT_EQ(ring.ForEachSince(&cursor, collect), 0u);
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3}));
  for (int i = 4; i <= 10; ++i) RunStep(ring, i, i, i + 1);
  seen.clear();
  EXPECT_EQ(ring.ForEachSince(&cursor, collect), 3u);  // 4, 5, 6 overwritten.
  EXPECT_EQ(seen, (std::vector<int64_t>{7, 8, 9, 10}));
  seen.clear();
  EXPECT_EQ(ring.ForEachSince(&cursor, collect), 0u);
  EXPECT_TRUE(seen.empty());
}

TEST(StepRingTest, EventsMirrorACapturedStep) {
  StepRing ring(4);
  RunStep(ring, 5, 1000, 3000);
  ring.Begin(6, 3000, 7);
  const int64_t shape[4] = {2, -1, -1, -1};
  ring.Shape(shape);
  ring.SpanBegin("execute_model", 3000);  // Raised: the span never ended.
  ring.Error("ValueError");
  ring.End(3500);
  std::vector<FlightStep> steps;
  ring.CopyLast(2, &steps);
  std::map<std::string, uint32_t> ids;
  auto intern = [&](std::string_view v) {
    auto [it, added] = ids.emplace(std::string(v), ids.size() + 1);
    return it->second;
  };
  v1::EventBatch batch;
  EXPECT_EQ(AppendFlightEvents(steps, "Worker.step", intern, &batch), 4u);
  ASSERT_EQ(batch.events_size(), 4);
  EXPECT_EQ(batch.events(0).kind(), v1::EVENT_KIND_STEP);
  EXPECT_EQ(batch.events(0).step(), 5);
  EXPECT_EQ(batch.events(0).duration_ns(), 2000);
  EXPECT_EQ(batch.events(1).kind(), v1::EVENT_KIND_PYTHON);
  EXPECT_EQ(batch.events(1).name_id(), ids["execute_model"]);
  EXPECT_EQ(batch.events(1).duration_ns(), 1000);
  const v1::Event& raised = batch.events(3);
  EXPECT_EQ(raised.step(), 6);
  std::map<uint32_t, const v1::Arg*> args;
  for (const v1::Arg& a : raised.args()) args[a.key_id()] = &a;
  EXPECT_EQ(args.at(ids["num_scheduled_requests"])->int_value(), 2);
  EXPECT_EQ(args.at(ids["error"])->string_id(), ids["ValueError"]);
  EXPECT_TRUE(args.at(ids["flight_recorder"])->bool_value());
  EXPECT_EQ(args.count(ids["num_scheduled_tokens"]), 0u);
}

TEST(StepRingTest, MarksMakeTheChildSpansOfAPairedStep) {
  StepRing ring(4);
  ring.Begin(1, 100, 7);
  ring.Mark(1, 140);  // execute_model returned.
  ring.Mark(2, 170);  // sample_tokens entered (after the engine's gap).
  ring.End(200);
  ring.Begin(2, 300, 7);
  ring.Mark(1, 350);  // Single-call shape or no sample_tokens: one span.
  ring.End(360);
  std::vector<FlightStep> out;
  ring.CopyLast(2, &out);
  ASSERT_EQ(out[0].num_spans, 2);
  EXPECT_STREQ(out[0].spans[0].name, "execute_model");
  EXPECT_EQ(out[0].spans[0].start_ns, 100);
  EXPECT_EQ(out[0].spans[0].end_ns, 140);
  EXPECT_STREQ(out[0].spans[1].name, "sample_tokens");
  EXPECT_EQ(out[0].spans[1].start_ns, 170);
  EXPECT_EQ(out[0].spans[1].end_ns, 200);
  ASSERT_EQ(out[1].num_spans, 1);
  EXPECT_EQ(out[1].spans[0].end_ns, 350);
}

TEST(StepRingTest, MarksOutsideTheStepAreClampedIntoIt) {
  // Marks given by the caller (vp_step_end_marked) on a clock that may read
  // a little off: a span never starts before its step or ends after it.
  StepRing ring(4);
  ring.Begin(1, 100, 7);
  ring.Mark(1, 90);
  ring.Mark(2, 80);
  ring.End(200);
  std::vector<FlightStep> out;
  ring.CopyLast(1, &out);
  ASSERT_EQ(out[0].num_spans, 2);
  EXPECT_EQ(out[0].spans[0].start_ns, 100);
  EXPECT_EQ(out[0].spans[0].end_ns, 100);
  EXPECT_EQ(out[0].spans[1].start_ns, 100);
  EXPECT_EQ(out[0].spans[1].end_ns, 200);
}

}  // namespace
}  // namespace vllm_profiler::probe
