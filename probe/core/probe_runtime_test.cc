#include "probe/core/probe_runtime.h"

#include <unistd.h>

#include <map>
#include <string>

#include "gtest/gtest.h"
#include "probe/core/fake_transport.h"
#include "probe/core/log.h"

namespace vllm_profiler::probe {
namespace {

// GpuTracer fake: on Stop it flushes one kernel event into the sink.
class FakeGpuTracer final : public GpuTracer {
 public:
  explicit FakeGpuTracer(absl::Status start_status)
      : start_status_(std::move(start_status)) {}
  absl::Status Start(GpuEventSink* sink) override {
    ++starts;
    if (start_status_.ok()) sink_ = sink;
    return start_status_;
  }
  void Stop() override {
    ++stops;
    if (sink_ == nullptr) return;
    v1::Event e;
    e.set_kind(v1::EVENT_KIND_KERNEL);
    e.set_name_id(sink_->InternString("my_kernel"));
    e.set_start_ns(1);
    e.set_duration_ns(2);
    sink_->AddEvent(e);
    sink_->AddTracerDrops(3, 1);
    sink_ = nullptr;
  }
  void PushExternalCorrelation(uint64_t) override {}
  void PopExternalCorrelation() override {}
  std::string Describe() const override { return "fake CUPTI 1.0"; }
  int starts = 0;
  int stops = 0;

 private:
  absl::Status start_status_;
  GpuEventSink* sink_ = nullptr;
};

struct Harness {
  std::shared_ptr<FakeTransport::State> state =
      std::make_shared<FakeTransport::State>();
  FakeClock clock;
  std::unique_ptr<ProbeRuntime> probe;

  explicit Harness(ProbeConfig config, bool available = true,
                   std::unique_ptr<GpuTracer> gpu = nullptr) {
    state->SetAvailable(available);
    ProbeRuntime::Options o;
    o.config = std::move(config);
    o.clock = &clock;
    o.transport = std::make_unique<FakeTransport>(state);
    o.initial_backoff = absl::Milliseconds(10);
    o.max_backoff = absl::Milliseconds(50);
    o.tick = absl::Milliseconds(5);
    o.process_name = "test-proc";
    o.gpu_tracer = std::move(gpu);
    probe = std::make_unique<ProbeRuntime>(std::move(o));
  }

  bool WaitConnected() {
    return state->WaitFor(
        [](const std::vector<v1::ProbeMessage>& w) { return !w.empty(); },
        absl::Seconds(10));
  }

  // One step with two nested operators.
  void Step() {
    probe->StepBegin();
    if (probe->recorder().capturing()) {
      probe->StepAnnotate(2, 10, 1, 1);
    }
    clock.AdvanceNs(100);
    uint64_t outer = probe->recorder().OpBegin("aten::linear", -1, nullptr, 0);
    clock.AdvanceNs(100);
    uint64_t inner = probe->recorder().OpBegin("aten::mm", -1, nullptr, 0);
    clock.AdvanceNs(100);
    probe->recorder().OpEnd(inner);
    clock.AdvanceNs(100);
    probe->recorder().OpEnd(outer);
    clock.AdvanceNs(100);
    probe->StepEnd();
  }
};

ProbeConfig WindowConfig(uint32_t start, uint32_t n) {
  ProbeConfig c;
  c.start_step = start;
  c.num_steps = n;
  c.gpu = false;
  c.requested_name = "/tmp/out/my_trace.json";
  return c;
}

struct Summary {
  std::vector<int64_t> steps;
  int ops = 0;
  int started = 0;
  int finished = 0;
  v1::CaptureStarted first_started;
  v1::CaptureFinished last_finished;
  std::map<uint32_t, std::string> strings;
  bool ops_nested = true;
};

Summary Summarize(const std::vector<v1::ProbeMessage>& msgs) {
  Summary s;
  std::vector<v1::Event> steps, ops;
  for (const auto& m : msgs) {
    if (m.has_capture_started()) {
      if (s.started++ == 0) s.first_started = m.capture_started();
    }
    if (m.has_capture_finished()) {
      s.finished++;
      s.last_finished = m.capture_finished();
    }
    if (m.has_batch()) {
      for (const auto& str : m.batch().strings())
        s.strings[str.id()] = str.value();
      for (const auto& e : m.batch().events()) {
        if (e.kind() == v1::EVENT_KIND_STEP) {
          s.steps.push_back(e.step());
          steps.push_back(e);
        }
        if (e.kind() == v1::EVENT_KIND_CPU_OP) {
          s.ops++;
          ops.push_back(e);
        }
      }
    }
  }
  for (const auto& op : ops) {
    bool inside = false;
    for (const auto& st : steps) {
      inside |=
          op.start_ns() >= st.start_ns() &&
          op.start_ns() + op.duration_ns() <= st.start_ns() + st.duration_ns();
    }
    s.ops_nested &= inside;
  }
  return s;
}

TEST(ProbeRuntimeTest, HelloFirstThenWindowWithExactSteps) {
  Harness h(WindowConfig(5, 3));
  ASSERT_TRUE(h.WaitConnected());
  for (int i = 0; i < 10; ++i) h.Step();
  h.probe->Shutdown(absl::Seconds(5));
  std::vector<v1::ProbeMessage> w = h.state->Written();
  ASSERT_FALSE(w.empty());
  ASSERT_TRUE(w[0].has_hello());
  const v1::Hello& hello = w[0].hello();
  EXPECT_EQ(hello.protocol_version(), 1u);
  EXPECT_EQ(hello.pid(), getpid());
  EXPECT_EQ(hello.process_name(), "test-proc");
  EXPECT_EQ(hello.probe_version(), kProbeVersion);
  EXPECT_EQ(hello.window().start_after_steps(), 4u);
  EXPECT_EQ(hello.window().num_steps(), 3u);
  EXPECT_GT(hello.clock().realtime_ns(), 0);

  Summary s = Summarize(w);
  EXPECT_EQ(s.started, 1);
  EXPECT_EQ(s.finished, 1);
  EXPECT_EQ(s.steps, (std::vector<int64_t>{5, 6, 7}));
  EXPECT_EQ(s.ops, 6);
  EXPECT_TRUE(s.ops_nested);
  EXPECT_EQ(s.first_started.origin(), v1::CAPTURE_ORIGIN_WINDOW);
  EXPECT_EQ(s.first_started.first_step(), 5);
  EXPECT_EQ(s.first_started.requested_name(), "/tmp/out/my_trace.json");
  EXPECT_EQ(s.last_finished.capture_id(), s.first_started.capture_id());
  EXPECT_EQ(s.last_finished.last_step(), 7);
  EXPECT_EQ(s.last_finished.events_recorded(), 9u);
  EXPECT_EQ(s.last_finished.drops().events_dropped_buffer_full(), 0u);
  EXPECT_EQ(s.last_finished.gpu_activity_note(), "");
  // Every batch belongs to the capture and sequences count from 0.
  uint64_t seq = 0;
  for (const auto& m : w) {
    if (!m.has_batch()) continue;
    EXPECT_EQ(m.batch().capture_id(), s.first_started.capture_id());
    EXPECT_EQ(m.batch().sequence(), seq++);
  }
  // Strings are sent before use.
  EXPECT_EQ(s.strings.size(), 8u);
}

TEST(ProbeRuntimeTest, GpuTracerEventsAndDropsReachTheCapture) {
  ProbeConfig c = WindowConfig(2, 2);
  c.gpu = true;
  auto tracer = std::make_unique<FakeGpuTracer>(absl::OkStatus());
  FakeGpuTracer* raw = tracer.get();
  Harness h(c, true, std::move(tracer));
  ASSERT_TRUE(h.WaitConnected());
  for (int i = 0; i < 5; ++i) h.Step();
  h.probe->Shutdown(absl::Seconds(5));
  EXPECT_EQ(raw->starts, 1);
  EXPECT_EQ(raw->stops, 1);
  std::vector<v1::ProbeMessage> w = h.state->Written();
  EXPECT_EQ(w[0].hello().cupti_version(), "fake CUPTI 1.0");
  Summary s = Summarize(w);
  int kernels = 0;
  for (const auto& m : w) {
    if (!m.has_batch()) continue;
    for (const auto& e : m.batch().events()) {
      if (e.kind() == v1::EVENT_KIND_KERNEL) {
        ++kernels;
        EXPECT_EQ(s.strings[e.name_id()], "my_kernel");
      }
    }
  }
  EXPECT_EQ(kernels, 1);
  EXPECT_EQ(s.last_finished.events_recorded(), 2u * 3u + 1u);  // + kernel
  EXPECT_EQ(s.last_finished.drops().cupti_records_dropped(), 3u);
  EXPECT_EQ(s.last_finished.drops().cupti_buffers_dropped(), 1u);
  EXPECT_EQ(s.last_finished.gpu_activity_note(), "");
}

TEST(ProbeRuntimeTest, GpuUnavailableIsNotedAndCaptureGoesOn) {
  ProbeConfig c = WindowConfig(2, 2);
  c.gpu = true;
  Harness h(c, true,
            std::make_unique<FakeGpuTracer>(
                absl::UnavailableError("no CUDA device")));
  ASSERT_TRUE(h.WaitConnected());
  for (int i = 0; i < 5; ++i) h.Step();
  h.probe->Shutdown(absl::Seconds(5));
  Summary s = Summarize(h.state->Written());
  EXPECT_EQ(s.steps, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(s.last_finished.gpu_activity_note(), "no CUDA device");
}

TEST(ProbeRuntimeTest, CollectorAbsentRunsOnAndLogsOnce) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  SetProbeLogFdForTesting(fds[1]);
  {
    Harness h(WindowConfig(2, 3), /*available=*/false);
    const absl::Time t0 = absl::Now();
    for (int i = 0; i < 50; ++i) {
      h.Step();
      absl::SleepFor(absl::Milliseconds(2));
    }
    EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
    ProbeRuntime::Stats st = h.probe->stats();
    EXPECT_FALSE(st.connected);
    EXPECT_EQ(st.captures_started, 1u);
    EXPECT_EQ(st.captures_finished, 1u);
    EXPECT_GT(st.events_dropped_send, 0u);
    h.probe->Shutdown(absl::Seconds(5));
    MutexLock l(&h.state->mu);
    EXPECT_GE(h.state->connects, 2);  // Retried.
  }
  SetProbeLogFdForTesting(-1);
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fds[0]);
  EXPECT_EQ(out,
            "vllm-profiler: collector not reachable at fake; the process runs "
            "on, captures are dropped until it is (retrying with backoff)\n");
}

TEST(ProbeRuntimeTest, CommandCapturesExactlyNSteps) {
  ProbeConfig c = WindowConfig(1000, 50);
  Harness h(c);
  ASSERT_TRUE(h.WaitConnected());
  for (int i = 0; i < 3; ++i) h.Step();
  v1::CollectorCommand welcome;
  welcome.mutable_welcome()->set_max_batch_bytes(1 << 20);
  h.state->Push(welcome);
  v1::CollectorCommand cmd;
  cmd.mutable_start_capture()->set_capture_id("cmd-7");
  cmd.mutable_start_capture()->mutable_config()->set_num_steps(5);
  cmd.mutable_start_capture()->mutable_config()->set_record_shapes(true);
  h.state->Push(cmd);
  // Wait until the reader thread consumed the command.
  for (int i = 0; i < 1000; ++i) {
    {
      MutexLock l(&h.state->mu);
      if (h.state->commands.empty()) break;
    }
    absl::SleepFor(absl::Milliseconds(2));
  }
  absl::SleepFor(absl::Milliseconds(20));
  for (int i = 0; i < 12; ++i) h.Step();
  h.probe->Shutdown(absl::Seconds(5));
  Summary s = Summarize(h.state->Written());
  EXPECT_EQ(s.started, 1);
  EXPECT_EQ(s.first_started.capture_id(), "cmd-7");
  EXPECT_EQ(s.first_started.origin(), v1::CAPTURE_ORIGIN_COMMAND);
  EXPECT_EQ(s.first_started.requested_name(), "");
  EXPECT_EQ(s.steps, (std::vector<int64_t>{4, 5, 6, 7, 8}));
  EXPECT_EQ(s.last_finished.capture_id(), "cmd-7");
}

TEST(ProbeRuntimeTest, BufferFullDropsAreReported) {
  ProbeConfig c = WindowConfig(1, 1);
  c.max_buffer_bytes = 1 << 20;
  Harness h(c);
  ASSERT_TRUE(h.WaitConnected());
  h.probe->StepBegin();
  for (int i = 0; i < 100000; ++i) {
    h.probe->recorder().OpEnd(
        h.probe->recorder().OpBegin("aten::add", -1, nullptr, 0));
  }
  h.probe->StepEnd();
  h.probe->Shutdown(absl::Seconds(10));
  Summary s = Summarize(h.state->Written());
  ASSERT_EQ(s.finished, 1);
  const uint64_t dropped = s.last_finished.drops().events_dropped_buffer_full();
  EXPECT_GT(dropped, 0u);
  EXPECT_LE(h.probe->stats().peak_buffer_bytes, c.max_buffer_bytes);
}

TEST(ProbeRuntimeTest, ReconnectsAfterTheStreamBreaks) {
  Harness h(WindowConfig(1000, 1));
  ASSERT_TRUE(h.WaitConnected());
  h.state->Break();
  ASSERT_TRUE(h.state->WaitFor(
      [](const std::vector<v1::ProbeMessage>& w) {
        int hellos = 0;
        for (const auto& m : w) hellos += m.has_hello();
        return hellos == 2;
      },
      absl::Seconds(10)));
  h.probe->Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace vllm_profiler::probe
