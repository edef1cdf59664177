// The real gRPC client against an in-process ProbeService on a Unix socket.
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "probe/core/probe_runtime.h"
#include "probe/core/transport.h"
#include "proto/profiler.grpc.pb.h"

namespace vllm_profiler::probe {
namespace {

class FakeCollector final : public v1::ProbeService::Service {
 public:
  grpc::Status Connect(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CollectorCommand, v1::ProbeMessage>* stream)
      override {
    v1::ProbeMessage m;
    bool first = true;
    while (stream->Read(&m)) {
      if (first) {
        if (!m.has_hello()) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no hello");
        }
        v1::CollectorCommand welcome;
        welcome.mutable_welcome()->set_collector_version("fake");
        stream->Write(welcome);
        v1::CollectorCommand cmd;
        cmd.mutable_start_capture()->set_capture_id("grpc-cmd");
        cmd.mutable_start_capture()->mutable_config()->set_num_steps(2);
        stream->Write(cmd);
        first = false;
      }
      absl::MutexLock l(&mu_);
      got_.push_back(m);
    }
    return grpc::Status::OK;
  }
  std::vector<v1::ProbeMessage> Got() {
    absl::MutexLock l(&mu_);
    return got_;
  }

 private:
  absl::Mutex mu_;
  std::vector<v1::ProbeMessage> got_ ABSL_GUARDED_BY(mu_);
};

TEST(GrpcTransportTest, UnreachableSocketIsUnavailable) {
  std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/none.sock";
  auto t = NewGrpcTransport("unix:" + path);
  auto s = t->Connect(absl::Milliseconds(200));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.status().message(), "collector not reachable at unix:" + path);
}

// A socket path in TEST_TMPDIR, or in a fresh /tmp folder when TEST_TMPDIR
// is longer than sun_path allows (108 bytes).
std::string SocketPath() {
  std::string dir = std::getenv("TEST_TMPDIR");
  if (dir.size() > 80) {
    char tmpl[] = "/tmp/vp-probe-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  return dir + "/collector.sock";
}

TEST(GrpcTransportTest, StreamsACommandedCaptureOverUnixSocket) {
  const std::string target = "unix:" + SocketPath();
  FakeCollector service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(target, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  ProbeRuntime::Options o;
  o.config.start_step = 1000;
  o.config.gpu = false;
  o.transport = NewGrpcTransport(target);
  ProbeRuntime probe(std::move(o));
  // Wait until the command arrived (it is sent right after Hello).
  for (int i = 0; i < 500 && !probe.recorder().capturing(); ++i) {
    probe.StepBegin();
    probe.recorder().OpEnd(
        probe.recorder().OpBegin("aten::add", -1, nullptr, 0));
    probe.StepEnd();
    absl::SleepFor(absl::Milliseconds(10));
  }
  for (int i = 0; i < 3; ++i) {
    probe.StepBegin();
    probe.recorder().OpEnd(
        probe.recorder().OpBegin("aten::add", -1, nullptr, 0));
    probe.StepEnd();
  }
  probe.Shutdown(absl::Seconds(5));
  server->Shutdown();

  std::vector<v1::ProbeMessage> got = service.Got();
  ASSERT_FALSE(got.empty());
  EXPECT_TRUE(got[0].has_hello());
  int started = 0, finished = 0;
  std::vector<int64_t> steps;
  for (const auto& m : got) {
    started += m.has_capture_started();
    finished += m.has_capture_finished();
    if (m.has_batch()) {
      EXPECT_EQ(m.batch().capture_id(), "grpc-cmd");
      for (const auto& e : m.batch().events()) {
        if (e.kind() == v1::EVENT_KIND_STEP) steps.push_back(e.step());
      }
    }
  }
  EXPECT_EQ(started, 1);
  EXPECT_EQ(finished, 1);
  EXPECT_EQ(steps.size(), 2u);
}

}  // namespace
}  // namespace vllm_profiler::probe
