#include "tests/synthetic_probe/synthetic_client.h"

#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/time/clock.h"
#include "common/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/profiler.grpc.pb.h"

namespace vllm_profiler::synthetic_probe {
namespace {

// What one stream delivered to the fake collector.
struct Seen {
  int64_t pid = 0;
  bool hello_first = false;
  std::string started_id;
  v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_UNSPECIFIED;
  uint64_t events = 0;
  uint64_t batches = 0;
  bool finished = false;
  uint64_t finished_events = 0;
};

// A fake ProbeService: records streams; optionally sends a start command or
// rejects streams.
class FakeProbeService final : public v1::ProbeService::Service {
 public:
  std::string command_id;  // Non-empty: send StartCaptureCommand after Hello.
  bool reject = false;

  grpc::Status Connect(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::CollectorCommand, v1::ProbeMessage>* stream)
      override {
    Seen seen;
    v1::ProbeMessage m;
    bool first = true;
    while (stream->Read(&m)) {
      if (first) {
        seen.hello_first = m.has_hello();
        seen.pid = m.hello().pid();
        if (reject) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "rejected for the test");
        }
        v1::CollectorCommand welcome;
        welcome.mutable_welcome()->set_max_batch_bytes(64 << 20);
        stream->Write(welcome);
        if (!command_id.empty()) {
          v1::CollectorCommand c;
          c.mutable_start_capture()->set_capture_id(command_id);
          stream->Write(c);
        }
        first = false;
        continue;
      }
      if (m.has_capture_started()) {
        seen.started_id = m.capture_started().capture_id();
        seen.origin = m.capture_started().origin();
      } else if (m.has_batch()) {
        seen.events += m.batch().events_size();
        ++seen.batches;
      } else if (m.has_capture_finished()) {
        seen.finished = true;
        seen.finished_events = m.capture_finished().events_recorded();
      }
    }
    MutexLock lock(&mu);
    streams.push_back(seen);
    return grpc::Status::OK;
  }

  Mutex mu;
  std::vector<Seen> streams ABSL_GUARDED_BY(mu);
};

class SyntheticClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // TEST_TMPDIR is too long for a Unix socket path (108 bytes).
    char dir[] = "/tmp/vpsynth.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/probe.sock";
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.socket = socket_;
    options_.connect_timeout = absl::Seconds(5);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    std::system(("rm -rf " + dir_).c_str());
  }

  std::vector<Seen> Streams() {
    MutexLock lock(&service_.mu);
    return service_.streams;
  }

  std::string dir_;
  std::string socket_;
  FakeProbeService service_;
  std::unique_ptr<grpc::Server> server_;
  ClientOptions options_;
};

TEST_F(SyntheticClientTest, StreamsEveryProcessToTheEnd) {
  options_.processes = 3;
  options_.pid_base = 5000;
  options_.events = 10000;
  options_.batch_events = 999;
  RunResult r = RunSyntheticProbe(options_);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events_sent, 30000u);
  ASSERT_EQ(r.processes.size(), 3u);
  EXPECT_EQ(r.processes[0].max_batch_bytes, 64u << 20);
  std::vector<Seen> streams = Streams();
  ASSERT_EQ(streams.size(), 3u);
  std::set<int64_t> pids;
  for (const Seen& s : streams) {
    pids.insert(s.pid);
    EXPECT_TRUE(s.hello_first);
    EXPECT_EQ(s.started_id, "synthetic-" + std::to_string(s.pid));
    EXPECT_EQ(s.origin, v1::CAPTURE_ORIGIN_WINDOW);
    EXPECT_EQ(s.events, 10000u);
    EXPECT_EQ(s.batches, 11u);
    EXPECT_TRUE(s.finished);
    EXPECT_EQ(s.finished_events, 10000u);
  }
  EXPECT_EQ(pids, (std::set<int64_t>{5000, 5001, 5002}));
}

TEST_F(SyntheticClientTest, DisconnectMidCaptureSendsNoFinish) {
  options_.events = 10000;
  options_.batch_events = 1000;
  options_.disconnect_after_events = 2500;
  RunResult r = RunSyntheticProbe(options_);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events_sent, 2500u);
  std::vector<Seen> streams;
  for (int i = 0; i < 100 && streams.empty(); ++i) {
    streams = Streams();
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].events, 2500u);
  EXPECT_FALSE(streams[0].finished);
}

TEST_F(SyntheticClientTest, AnswersStartCaptureCommand) {
  service_.command_id = "cmd-42";
  options_.wait_for_command = true;
  options_.events = 500;
  RunResult r = RunSyntheticProbe(options_);
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.processes[0].capture_id, "cmd-42");
  std::vector<Seen> streams = Streams();
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].started_id, "cmd-42");
  EXPECT_EQ(streams[0].origin, v1::CAPTURE_ORIGIN_COMMAND);
  EXPECT_EQ(streams[0].events, 500u);
}

TEST_F(SyntheticClientTest, CommandTimeout) {
  options_.wait_for_command = true;
  options_.command_timeout = absl::Milliseconds(100);
  RunResult r = RunSyntheticProbe(options_);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(r.status.message()),
              ::testing::HasSubstr("no StartCaptureCommand"));
}

TEST_F(SyntheticClientTest, ReportsTheCollectorsError) {
  service_.reject = true;
  RunResult r = RunSyntheticProbe(options_);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status.message()),
              ::testing::HasSubstr("rejected for the test"));
}

TEST(SyntheticClientNoServerTest, UnreachableCollector) {
  ClientOptions o;
  o.socket = std::string(std::getenv("TEST_TMPDIR")) + "/nobody.sock";
  o.connect_timeout = absl::Milliseconds(200);
  RunResult r = RunSyntheticProbe(o);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status.message()),
              ::testing::HasSubstr("cannot connect to the collector at unix:"));
}

}  // namespace
}  // namespace vllm_profiler::synthetic_probe
