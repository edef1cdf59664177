// The flight recorder through the whole collector, in-process: probes speak
// ProbeService over the Unix socket, users TraceService and HTTP. Checks
// what a user sees: which probes get the trigger's command (and which one
// the marker), the trace's origin and reason, the cooldown, /metrics, the
// Trigger rpc, and a probe that leaves mid-capture.
#include <grpc/grpc.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "collector/collector_server.h"
#include "collector/probe_messages_testing.h"
#include "common/http/test_util.h"
#include "gtest/gtest.h"
#include "proto/profiler.grpc.pb.h"

namespace vllm_profiler::collector {
namespace {

const bool kGrpcInitialized = [] {
  grpc_init();
  return true;
}();

class Probe {
 public:
  Probe(const std::shared_ptr<grpc::Channel>& channel, int64_t pid, int rank)
      : stub_(v1::ProbeService::NewStub(channel)) {
    stream_ = stub_->Connect(&context_);
    EXPECT_TRUE(stream_->Write(testutil::Hello(pid, rank)));
    v1::CollectorCommand c;
    EXPECT_TRUE(stream_->Read(&c));
    EXPECT_TRUE(c.has_welcome());
  }
  ~Probe() {
    context_.TryCancel();
    v1::CollectorCommand c;
    while (stream_->Read(&c)) {
    }
    stream_->Finish().IgnoreError();
  }
  // Steps first..last of 10 ms each, `slow` of 80 ms; 1 s apart.
  bool Steps(int64_t first, int64_t last, int64_t slow = 0) {
    v1::ProbeMessage m;
    for (int64_t i = first; i <= last; ++i) {
      v1::StepSummary* s = m.mutable_step_summaries()->add_steps();
      s->set_step(i);
      s->set_start_ns(testutil::kMonoBase + i * 1000000000);
      s->set_duration_ns(i == slow ? 80000000 : 10000000);
      s->set_num_requests(4);
      s->set_num_tokens(64);
    }
    return stream_->Write(m);
  }
  bool Read(v1::CollectorCommand* c) { return stream_->Read(c); }
  // Answers a start command like a probe: started, one batch, finished.
  void RunCapture(const std::string& id, bool finish = true) {
    ASSERT_TRUE(
        stream_->Write(testutil::Started(id, v1::CAPTURE_ORIGIN_COMMAND)));
    ASSERT_TRUE(stream_->Write(testutil::FullBatch(id, seq_++, true)));
    if (finish) ASSERT_TRUE(stream_->Write(testutil::Finished(id)));
  }
  void Cancel() { context_.TryCancel(); }

 private:
  uint64_t seq_ = 0;
  std::unique_ptr<v1::ProbeService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ProbeMessage, v1::CollectorCommand>>
      stream_;
};

class FlightRecorderTest : public ::testing::Test {
 protected:
  void Start(FlightRecorder::Options flight) {
    CollectorServer::Options o;
    char dir[] = "/tmp/vpflight-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    socket_dir_ = dir;
    o.probe_socket = socket_dir_ + "/collector.sock";
    o.grpc_address = "127.0.0.1:0";
    o.http_address = "127.0.0.1:0";
    o.store.dir =
        std::string(std::getenv("TEST_TMPDIR")) + "/" +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() +
        "/traces";
    o.window_linger = absl::ZeroDuration();
    o.flight = std::move(flight);
    auto server = CollectorServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    probes_ = grpc::CreateChannel("unix:" + o.probe_socket,
                                  grpc::InsecureChannelCredentials());
    traces_ = v1::TraceService::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    ::unlink((socket_dir_ + "/collector.sock").c_str());
    ::rmdir(socket_dir_.c_str());
  }

  static FlightRecorder::Options SlowMs() {
    FlightRecorder::Options f;
    f.trigger.slow_step_ms = 50;
    f.pre_steps = 3;
    f.post_steps = 2;
    return f;
  }

  std::vector<v1::TraceInfo> WaitForTraces(size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      grpc::ClientContext ctx;
      v1::ListTracesResponse resp;
      EXPECT_TRUE(traces_->ListTraces(&ctx, {}, &resp).ok());
      if (resp.traces_size() >= static_cast<int>(n)) {
        return {resp.traces().begin(), resp.traces().end()};
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "timed out waiting for " << n << " traces";
    return {};
  }

  std::string Metrics() {
    auto c = http::testutil::TestClient::Connect(server_->http_port(), false);
    EXPECT_TRUE(c.ok());
    auto r = (*c)->Get("/metrics");
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->body : "";
  }

  // Waits until /metrics holds `line`.
  bool WaitMetric(const std::string& line) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      if (Metrics().find(line + "\n") != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "no metric line " << line << " in\n" << Metrics();
    return false;
  }

  std::string socket_dir_;
  std::unique_ptr<CollectorServer> server_;
  std::shared_ptr<grpc::Channel> probes_;
  std::unique_ptr<v1::TraceService::Stub> traces_;
};

TEST_F(FlightRecorderTest, ASlowStepTriggersOneTraceOverEveryProbe) {
  Start(SlowMs());
  Probe a(probes_, 21, 0), b(probes_, 22, 1);
  ASSERT_TRUE(b.Steps(1, 3));
  ASSERT_TRUE(a.Steps(1, 5, /*slow=*/4));
  v1::CollectorCommand ca, cb;
  ASSERT_TRUE(a.Read(&ca));
  ASSERT_TRUE(b.Read(&cb));
  ASSERT_TRUE(ca.has_start_capture());
  const v1::StartCaptureCommand& sa = ca.start_capture();
  EXPECT_EQ(sa.config().num_steps(), 2u);
  EXPECT_TRUE(sa.config().cpu_ops());
  EXPECT_TRUE(sa.config().gpu_activity());
  EXPECT_EQ(sa.flight().pre_steps(), 3u);
  EXPECT_EQ(sa.flight().marker_step(), 4);
  EXPECT_EQ(sa.flight().marker_ns(),
            testutil::kMonoBase + int64_t{4} * 1000000000);
  EXPECT_EQ(sa.flight().marker_name(),
            "flight trigger (slow_step_ms): slow step: step 4 took 80.0 ms > "
            "50 ms");
  // The other probe dumps its ring too, without the marker.
  EXPECT_EQ(cb.start_capture().capture_id(), sa.capture_id());
  EXPECT_EQ(cb.start_capture().flight().pre_steps(), 3u);
  EXPECT_EQ(cb.start_capture().flight().marker_name(), "");
  a.RunCapture(sa.capture_id());
  b.RunCapture(sa.capture_id());
  std::vector<v1::TraceInfo> traces = WaitForTraces(1);
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(traces[0].origin(), v1::CAPTURE_ORIGIN_TRIGGER);
  EXPECT_EQ(traces[0].reason(), "slow step: step 4 took 80.0 ms > 50 ms");
  EXPECT_TRUE(traces[0].complete());
  EXPECT_EQ(traces[0].pids_size(), 2);

  // Within the cooldown: counted, nothing sent.
  ASSERT_TRUE(b.Steps(4, 6, /*slow=*/6));
  ASSERT_TRUE(WaitMetric("vllm_profiler_triggers_suppressed_total 1"));
  const std::string m = Metrics();
  EXPECT_NE(m.find("vllm_profiler_triggers_fired_total 1\n"),
            std::string::npos);
  EXPECT_NE(m.find("vllm_profiler_steps_total{pid=\"21\",rank=\"0\","
                   "process=\"VllmWorker-0\"} 5\n"),
            std::string::npos);
  EXPECT_NE(m.find("vllm_profiler_slow_steps_total{pid=\"22\",rank=\"1\","
                   "process=\"VllmWorker-1\"} 1\n"),
            std::string::npos);
  EXPECT_NE(m.find("vllm_profiler_step_duration_seconds_bucket{pid=\"21\","
                   "rank=\"0\",process=\"VllmWorker-0\",le=\"0.05\"} 4\n"),
            std::string::npos);
  // GetStatus: the same counters and a row per process for `vpctl top`.
  grpc::ClientContext ctx;
  v1::GetStatusResponse status;
  ASSERT_TRUE(traces_->GetStatus(&ctx, {}, &status).ok());
  EXPECT_EQ(status.triggers_fired(), 1u);
  EXPECT_EQ(status.triggers_suppressed(), 1u);
  ASSERT_EQ(status.step_health_size(), 2);
  EXPECT_EQ(status.step_health(1).pid(), 22);
  EXPECT_EQ(status.step_health(1).last_slow_step(), 6);
  EXPECT_EQ(WaitForTraces(1).size(), 1u);
}

TEST_F(FlightRecorderTest, NoTriggerBeforeTheMedianWindowIsFull) {
  FlightRecorder::Options f;
  f.trigger.factor = 3;
  f.trigger.window = 5;
  Start(f);
  Probe a(probes_, 31, 0);
  ASSERT_TRUE(a.Steps(1, 5, /*slow=*/5));  // Step 5: window holds 4.
  ASSERT_TRUE(
      WaitMetric("vllm_profiler_steps_total{pid=\"31\",rank=\"0\","
                 "process=\"VllmWorker-0\"} 5"));
  EXPECT_NE(Metrics().find("vllm_profiler_triggers_fired_total 0\n"),
            std::string::npos);
  ASSERT_TRUE(a.Steps(6, 7, /*slow=*/7));  // Median of 5: 10 ms.
  v1::CollectorCommand c;
  ASSERT_TRUE(a.Read(&c));
  EXPECT_EQ(c.start_capture().flight().marker_step(), 7);
  EXPECT_EQ(c.start_capture().flight().marker_name(),
            "flight trigger (factor): slow step: step 7 took 80.0 ms > 3 x "
            "median 10.0 ms of the last 5 steps");
}

TEST_F(FlightRecorderTest, TriggerRpcAndAProbeLeavingMidCapture) {
  Start(SlowMs());
  {
    grpc::ClientContext ctx;
    v1::TriggerResponse resp;
    grpc::Status s = traces_->Trigger(&ctx, {}, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(s.error_message(), "no probes are connected");
  }
  auto a = std::make_unique<Probe>(probes_, 41, 0);
  Probe b(probes_, 42, 1);
  std::thread user([&] {
    grpc::ClientContext ctx;
    v1::TriggerRequest req;
    req.set_reason("looks stuck");
    req.set_wait(true);
    req.set_timeout_ms(20000);
    v1::TriggerResponse resp;
    ASSERT_TRUE(traces_->Trigger(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.pids_size(), 2);
    EXPECT_EQ(resp.trace().reason(), "manual: looks stuck");
    EXPECT_FALSE(resp.trace().complete());
  });
  v1::CollectorCommand ca, cb;
  ASSERT_TRUE(a->Read(&ca));
  ASSERT_TRUE(b.Read(&cb));
  EXPECT_EQ(ca.start_capture().flight().marker_name(), "");
  b.RunCapture(cb.start_capture().capture_id());
  a->RunCapture(ca.start_capture().capture_id(), /*finish=*/false);
  a.reset();  // Gone mid-capture.
  user.join();
  std::vector<v1::TraceInfo> traces = WaitForTraces(1);
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(traces[0].origin(), v1::CAPTURE_ORIGIN_TRIGGER);
  EXPECT_FALSE(traces[0].complete());
  EXPECT_NE(traces[0].error().find("pid 41"), std::string::npos)
      << traces[0].error();
}

}  // namespace
}  // namespace vllm_profiler::collector
