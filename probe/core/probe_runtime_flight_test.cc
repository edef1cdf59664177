// The flight recorder inside ProbeRuntime: summaries of every step with or
// without a capture, and the ring's steps at the start of a capture that a
// trigger's command asked for them.
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "probe/core/fake_transport.h"
#include "probe/core/probe_runtime.h"

namespace vllm_profiler::probe {
namespace {

using Written = std::vector<v1::ProbeMessage>;

struct Flight {
  std::shared_ptr<FakeTransport::State> state =
      std::make_shared<FakeTransport::State>();
  FakeClock clock;
  std::unique_ptr<ProbeRuntime> probe;

  explicit Flight(ProbeConfig config) {
    config.num_steps = 0;  // No window capture.
    ProbeRuntime::Options o;
    o.config = std::move(config);
    o.clock = &clock;
    o.transport = std::make_unique<FakeTransport>(state);
    o.initial_backoff = absl::Milliseconds(10);
    o.tick = absl::Milliseconds(5);
    o.summary_interval = absl::ZeroDuration();
    probe = std::make_unique<ProbeRuntime>(std::move(o));
  }

  // One paired step of `ms` milliseconds with its two child spans.
  void Step(int64_t ms, const char* error = nullptr) {
    probe->StepBegin();
    probe->StepAnnotate(3, 40, 1, 2);
    probe->StepArgStr("request_ids", "a,b,c");
    const uint64_t exec = probe->SpanBegin("execute_model");
    clock.AdvanceNs(ms * 500000);
    probe->SpanEnd(exec);
    const uint64_t sample = probe->SpanBegin("sample_tokens");
    clock.AdvanceNs(ms * 500000);
    probe->SpanEnd(sample);
    if (error != nullptr) {
      probe->StepEndError(error);
    } else {
      probe->StepEnd();
    }
  }

  // The same step as Python's flight path makes it: the batch with the
  // begin, the phase times kept by the caller and given with the end.
  void MarkedStep(int64_t ms) {
    const int64_t batch[7] = {3, 40, 1, 2, 1, 0, 0};
    probe->StepBegin();
    probe->StepBatch(batch, "a,b,c", 3);
    clock.AdvanceNs(ms * 400000);
    const int64_t execute_end = clock.MonotonicNs();
    clock.AdvanceNs(ms * 200000);
    const int64_t sample_begin = clock.MonotonicNs();
    clock.AdvanceNs(ms * 400000);
    probe->StepEndMarked(execute_end, sample_begin);
  }

  std::vector<v1::StepSummary> Summaries() {
    std::vector<v1::StepSummary> out;
    for (const v1::ProbeMessage& m : state->Written()) {
      for (const v1::StepSummary& s : m.step_summaries().steps()) {
        out.push_back(s);
      }
    }
    return out;
  }

  bool WaitSummaries(size_t n) {
    return state->WaitFor(
        [n](const Written& w) {
          size_t k = 0;
          for (const auto& m : w) k += m.step_summaries().steps_size();
          return k >= n;
        },
        absl::Seconds(10));
  }
};

TEST(ProbeRuntimeFlightTest, SummarizesEveryStepWithoutACapture) {
  Flight f{ProbeConfig{}};
  ASSERT_TRUE(f.state->WaitFor([](const Written& w) { return !w.empty(); },
                               absl::Seconds(10)));
  f.Step(10);
  f.Step(30, "RuntimeError");
  ASSERT_TRUE(f.WaitSummaries(2));
  std::vector<v1::StepSummary> s = f.Summaries();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].step(), 1);
  EXPECT_EQ(s[0].duration_ns(), 10000000);
  EXPECT_EQ(s[0].num_tokens(), 40);
  EXPECT_EQ(s[0].num_requests(), 3);
  EXPECT_EQ(s[1].step(), 2);
  EXPECT_EQ(s[1].duration_ns(), 30000000);
  EXPECT_EQ(s[1].error(), "RuntimeError");
  EXPECT_EQ(f.probe->stats().captures_started, 0u);
}

TEST(ProbeRuntimeFlightTest, AMarkedStepEndIsOneStepWithItsPhases) {
  ProbeConfig c;
  c.flight_steps = 8;
  Flight f{c};
  ASSERT_TRUE(f.state->WaitFor([](const Written& w) { return !w.empty(); },
                               absl::Seconds(10)));
  f.MarkedStep(10);
  ASSERT_TRUE(f.WaitSummaries(1));
  std::vector<v1::StepSummary> s = f.Summaries();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].duration_ns(), 10000000);
  EXPECT_EQ(s[0].num_requests(), 3);
  EXPECT_EQ(s[0].num_tokens(), 40);
  std::vector<FlightStep> ring = f.probe->FlightStepsForTest();
  ASSERT_EQ(ring.size(), 1u);
  ASSERT_EQ(ring[0].num_spans, 2);
  EXPECT_STREQ(ring[0].spans[0].name, "execute_model");
  EXPECT_EQ(ring[0].spans[0].end_ns - ring[0].spans[0].start_ns, 4000000);
  EXPECT_STREQ(ring[0].spans[1].name, "sample_tokens");
  EXPECT_EQ(ring[0].spans[1].start_ns - ring[0].start_ns, 6000000);
  EXPECT_EQ(ring[0].spans[1].end_ns, ring[0].end_ns);
}

TEST(ProbeRuntimeFlightTest, OffSendsNothingAndSpansAreNotRecorded) {
  ProbeConfig c;
  c.flight = FlightLevel::kOff;
  Flight f{c};
  ASSERT_TRUE(f.state->WaitFor([](const Written& w) { return !w.empty(); },
                               absl::Seconds(10)));
  EXPECT_FALSE(f.probe->flight_on());
  EXPECT_EQ(f.probe->SpanBegin("execute_model"), 0u);
  f.Step(10);
  // The sender runs every 5 ms: a capture's start proves it ran since.
  ASSERT_TRUE(f.probe->RequestCapture(1, 0, false));
  f.Step(1);
  ASSERT_TRUE(f.state->WaitFor(
      [](const Written& w) {
        for (const auto& m : w)
          if (m.has_capture_finished()) return true;
        return false;
      },
      absl::Seconds(10)));
  EXPECT_TRUE(f.Summaries().empty());
}

TEST(ProbeRuntimeFlightTest, ATriggeredCaptureCarriesTheRingAndTheMarker) {
  ProbeConfig c;
  c.flight_steps = 8;
  Flight f{c};
  ASSERT_TRUE(f.state->WaitFor([](const Written& w) { return !w.empty(); },
                               absl::Seconds(10)));
  for (int i = 1; i <= 12; ++i) f.Step(i);
  v1::CollectorCommand cmd;
  v1::StartCaptureCommand* sc = cmd.mutable_start_capture();
  sc->set_capture_id("trig-1");
  sc->mutable_config()->set_num_steps(2);
  sc->mutable_config()->set_cpu_ops(true);
  sc->mutable_flight()->set_pre_steps(5);
  sc->mutable_flight()->set_marker_name("flight trigger: slow step 11");
  sc->mutable_flight()->set_marker_step(11);
  sc->mutable_flight()->set_marker_ns(4242);
  f.state->Push(cmd);
  // The command is read by the reader thread; steps go on until the
  // capture starts, as vLLM's would.
  int steps = 12;
  while (f.probe->stats().captures_started == 0 && steps < 10000) {
    f.Step(1);
    ++steps;
    absl::SleepFor(absl::Milliseconds(1));
  }
  f.Step(1);
  f.Step(1);
  ASSERT_TRUE(f.state->WaitFor(
      [](const Written& w) {
        for (const auto& m : w)
          if (m.has_capture_finished()) return true;
        return false;
      },
      absl::Seconds(10)));
  std::map<uint32_t, std::string> strings;
  std::vector<int64_t> ring_steps, captured_steps;
  int markers = 0;
  int64_t first_step = 0;
  for (const v1::ProbeMessage& m : f.state->Written()) {
    if (m.has_capture_started()) first_step = m.capture_started().first_step();
    for (const auto& s : m.batch().strings()) strings[s.id()] = s.value();
    for (const v1::Event& e : m.batch().events()) {
      if (e.kind() == v1::EVENT_KIND_INSTANT) {
        ++markers;
        EXPECT_EQ(strings[e.name_id()], "flight trigger: slow step 11");
        EXPECT_EQ(e.start_ns(), 4242);
      }
      if (e.kind() != v1::EVENT_KIND_STEP) continue;
      bool ringed = false;
      for (const v1::Arg& a : e.args()) {
        if (strings[a.key_id()] == "flight_recorder") ringed = true;
      }
      (ringed ? ring_steps : captured_steps).push_back(e.step());
    }
  }
  ASSERT_GT(first_step, 12);
  EXPECT_EQ(ring_steps, (std::vector<int64_t>{first_step - 5, first_step - 4,
                                              first_step - 3, first_step - 2,
                                              first_step - 1}));
  EXPECT_EQ(captured_steps, (std::vector<int64_t>{first_step, first_step + 1}));
  EXPECT_EQ(markers, 1);
}

}  // namespace
}  // namespace vllm_profiler::probe
