// The flight recorder inside ProbeRuntime: summaries of every step with or
// without a capture, and the ring's steps at the start of a capture that a
// trigger's command asked for them.
#include <atomic>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "probe/core/fake_transport.h"
#include "probe/core/probe_runtime.h"

namespace vllm_profiler::probe {
namespace {

using Written = std::vector<v1::ProbeMessage>;

// A GpuTracer whose flight recording delivers the kernels a test queued
// when it stops (as CUPTI's flush would). Driven from the test's thread.
class FakeFlightTracer final : public GpuTracer {
 public:
  struct Kernel {
    std::string name;
    int64_t start_ns, duration_ns;
  };
  absl::Status Start(GpuEventSink*) override {
    ++capture_starts;
    return absl::UnavailableError("not in this test");
  }
  absl::Status StartFlight(GpuEventSink* sink) override {
    ++flight_starts;
    if (!flight_status.ok()) return flight_status;
    flight_sink_ = sink;
    return absl::OkStatus();
  }
  void Stop() override {
    ++stops;
    if (flight_sink_ == nullptr) return;
    for (const Kernel& k : queued_) {
      v1::Event e;
      e.set_kind(v1::EVENT_KIND_KERNEL);
      e.set_name_id(flight_sink_->InternString(k.name));
      e.set_start_ns(k.start_ns);
      e.set_duration_ns(k.duration_ns);
      e.set_stream(7);
      flight_sink_->AddEvent(e);
    }
    queued_.clear();
    flight_sink_ = nullptr;
  }
  void Yield() override {
    ++yields;
    queued_.clear();
    flight_sink_ = nullptr;
  }
  void PushExternalCorrelation(uint64_t) override {}
  void PopExternalCorrelation() override {}
  std::string Describe() const override { return "fake"; }

  // A kernel recorded while flight recording (lost otherwise).
  void Queue(Kernel k) {
    if (flight_sink_ != nullptr) queued_.push_back(std::move(k));
  }
  bool flight_on() const { return flight_sink_ != nullptr; }

  int capture_starts = 0, flight_starts = 0, stops = 0, yields = 0;
  absl::Status flight_status;  // StartFlight's result.

 private:
  GpuEventSink* flight_sink_ = nullptr;
  std::vector<Kernel> queued_;
};

// The GPU gate of probe.h: 0 while "another profiler" runs.
std::atomic<bool> g_other_profiler{false};
int32_t Gate(char* reason, int32_t len) {
  if (!g_other_profiler.load()) return 1;
  std::snprintf(reason, static_cast<size_t>(len),
                "torch.profiler is running in this process; this capture "
                "records no GPU activity");
  return 0;
}

struct Flight {
  std::shared_ptr<FakeTransport::State> state =
      std::make_shared<FakeTransport::State>();
  FakeClock clock;
  std::unique_ptr<ProbeRuntime> probe;

  explicit Flight(ProbeConfig config,
                  std::unique_ptr<GpuTracer> tracer = nullptr) {
    config.num_steps = 0;  // No window capture.
    ProbeRuntime::Options o;
    o.config = std::move(config);
    o.gpu_tracer = std::move(tracer);
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

// Level gpu: the trigger's pre-steps come with the GPU records that fell in
// their time range, the kernels of steps that already happened.
TEST(ProbeRuntimeFlightTest, LevelGpuDumpsTheKernelsOfThePreTriggerSteps) {
  ProbeConfig c;
  c.flight = FlightLevel::kGpu;
  c.flight_steps = 8;
  c.flight_gpu_bytes = 1 << 20;
  auto owned = std::make_unique<FakeFlightTracer>();
  FakeFlightTracer* tracer = owned.get();
  Flight f{c, std::move(owned)};
  ASSERT_NE(f.probe->gpu_ring(), nullptr);
  ASSERT_TRUE(f.state->WaitFor([](const Written& w) { return !w.empty(); },
                               absl::Seconds(10)));
  // Each step launches one kernel named after it, 100 us into the step;
  // between steps, a kernel outside every step.
  auto step = [&](int64_t n) {
    f.probe->StepBegin();
    tracer->Queue({"kernel of step " + std::to_string(n),
                   f.clock.MonotonicNs() + 100000, 200000});
    f.clock.AdvanceNs(1000000);
    f.probe->StepEnd();
    tracer->Queue({"between steps", f.clock.MonotonicNs() + 1000, 1000});
    f.clock.AdvanceNs(10000);
  };
  for (int i = 1; i <= 12; ++i) step(i);
  EXPECT_EQ(tracer->flight_starts, 1);
  EXPECT_EQ(f.probe->gpu_ring()->stats().records, 0u);  // Not flushed yet.
  v1::CollectorCommand cmd;
  v1::StartCaptureCommand* sc = cmd.mutable_start_capture();
  sc->set_capture_id("trig-gpu");
  sc->mutable_config()->set_num_steps(1);
  sc->mutable_config()->set_cpu_ops(true);
  sc->mutable_flight()->set_pre_steps(3);
  f.state->Push(cmd);
  int64_t n = 12;
  while (f.probe->stats().captures_started == 0 && n < 10000) {
    step(++n);
    absl::SleepFor(absl::Milliseconds(1));
  }
  step(++n);
  step(++n);
  ASSERT_TRUE(f.state->WaitFor(
      [](const Written& w) {
        for (const auto& m : w)
          if (m.has_capture_finished()) return true;
        return false;
      },
      absl::Seconds(10)));
  // The capture's start flushed the tracer into the ring and stopped it;
  // the next step resumed the flight recording.
  EXPECT_GE(tracer->stops, 1);
  EXPECT_EQ(tracer->flight_starts, 2);
  EXPECT_TRUE(tracer->flight_on());
  std::map<uint32_t, std::string> strings;
  std::vector<std::string> kernels;
  int64_t first_step = 0;
  for (const v1::ProbeMessage& m : f.state->Written()) {
    if (m.has_capture_started()) first_step = m.capture_started().first_step();
    for (const auto& s : m.batch().strings()) strings[s.id()] = s.value();
    for (const v1::Event& e : m.batch().events()) {
      if (e.kind() == v1::EVENT_KIND_KERNEL) {
        EXPECT_EQ(e.stream(), 7u);
        kernels.push_back(strings[e.name_id()]);
      }
    }
  }
  ASSERT_GT(first_step, 3);
  auto name = [](int64_t s) { return "kernel of step " + std::to_string(s); };
  // Exactly what ran from the first dumped step's start to the last one's
  // end: their kernels and the two launched between them; nothing of
  // earlier steps, of the capture's own steps, or after the last one.
  std::vector<std::string> want = {name(first_step - 3), "between steps",
                                   name(first_step - 2), "between steps",
                                   name(first_step - 1)};
  EXPECT_EQ(kernels, want);
}

TEST(ProbeRuntimeFlightTest, LevelGpuYieldsToAnotherProfiler) {
  ProbeConfig c;
  c.flight = FlightLevel::kGpu;
  auto owned = std::make_unique<FakeFlightTracer>();
  FakeFlightTracer* tracer = owned.get();
  Flight f{c, std::move(owned)};
  f.probe->SetGpuGate(&Gate);
  g_other_profiler.store(false);
  f.Step(1);
  EXPECT_TRUE(tracer->flight_on());
  g_other_profiler.store(true);  // torch.profiler started.
  f.Step(1);
  EXPECT_FALSE(tracer->flight_on());
  EXPECT_EQ(tracer->yields, 1);
  f.Step(1);
  EXPECT_EQ(tracer->flight_starts, 1);  // Not while it runs.
  g_other_profiler.store(false);
  f.Step(1);
  EXPECT_TRUE(tracer->flight_on());
  EXPECT_EQ(tracer->flight_starts, 2);
  f.probe->Shutdown(absl::Seconds(5));
  EXPECT_FALSE(tracer->flight_on());  // Released at shutdown.
}

// No CUDA yet (or CUPTI held elsewhere): tried again 10 s later, and the
// gate is not asked in between (it runs Python on the step thread).
std::atomic<int> g_gate_calls{0};
int32_t CountingGate(char*, int32_t) {
  ++g_gate_calls;
  return 1;
}

TEST(ProbeRuntimeFlightTest, LevelGpuRetriesAFailedStartEveryTenSeconds) {
  ProbeConfig c;
  c.flight = FlightLevel::kGpu;
  auto owned = std::make_unique<FakeFlightTracer>();
  FakeFlightTracer* tracer = owned.get();
  tracer->flight_status = absl::UnavailableError("no CUDA device");
  Flight f{c, std::move(owned)};
  f.probe->SetGpuGate(&CountingGate);
  g_gate_calls.store(0);
  f.Step(1);
  EXPECT_EQ(tracer->flight_starts, 1);
  EXPECT_EQ(g_gate_calls.load(), 1);
  for (int i = 0; i < 20; ++i) f.Step(100);  // 2 s.
  EXPECT_EQ(tracer->flight_starts, 1);
  EXPECT_EQ(g_gate_calls.load(), 1);
  tracer->flight_status = absl::OkStatus();  // CUDA is up now.
  f.clock.AdvanceNs(int64_t{8} * 1000000000);
  f.Step(1);
  EXPECT_EQ(tracer->flight_starts, 2);
  EXPECT_TRUE(tracer->flight_on());
  f.Step(1);
  EXPECT_EQ(tracer->flight_starts, 2);  // Running: asked the gate only.
  EXPECT_EQ(g_gate_calls.load(), 3);
}

TEST(ProbeRuntimeFlightTest, LevelStepsHasNoGpuRing) {
  Flight f{ProbeConfig{}, std::make_unique<FakeFlightTracer>()};
  EXPECT_EQ(f.probe->gpu_ring(), nullptr);
}

}  // namespace
}  // namespace vllm_profiler::probe
