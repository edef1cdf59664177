// End-to-end tests of the collector in-process: real gRPC over a real Unix
// socket (the probes' path), real gRPC over TCP (TraceService), real HTTP.
#include "collector/collector_server.h"

#include <fcntl.h>
#include <grpc/grpc.h>
#include <grpcpp/generic/generic_stub.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/probe_messages_testing.h"
#include "common/filesystem_testing.h"
#include "common/gzip.h"
#include "common/gzip_file.h"
#include "common/http/test_util.h"
#include "common/logging.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/profiler.grpc.pb.h"

namespace vllm_profiler::collector {
namespace {

using nlohmann::json;

// Keeps gRPC initialized for the whole binary: otherwise the last server or
// channel of each test runs grpc_shutdown, which now and then waits ~10 s
// for gRPC's background threads.
const bool kGrpcInitialized = [] {
  grpc_init();
  return true;
}();

std::string TestDir(const std::string& leaf) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" +
         ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/" +
         leaf;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A probe speaking ProbeService over the Unix socket.
class FakeProbe {
 public:
  FakeProbe(const std::shared_ptr<grpc::Channel>& channel, int64_t pid)
      : pid_(pid), stub_(v1::ProbeService::NewStub(channel)) {
    stream_ = stub_->Connect(&context_);
  }
  ~FakeProbe() {
    if (!finished_) {
      context_.TryCancel();
      v1::CollectorCommand c;
      while (stream_->Read(&c)) {
      }
      stream_->Finish().IgnoreError();
    }
  }

  bool Send(const v1::ProbeMessage& m) { return stream_->Write(m); }
  bool Read(v1::CollectorCommand* c) { return stream_->Read(c); }

  // Hello + the Welcome answer.
  v1::Welcome Connect(int rank = -1) {
    EXPECT_TRUE(Send(testutil::Hello(pid_, rank)));
    v1::CollectorCommand c;
    EXPECT_TRUE(Read(&c));
    EXPECT_TRUE(c.has_welcome());
    return c.welcome();
  }
  // A whole capture: started, `batches` full batches, finished.
  void Capture(const std::string& id, int batches,
               v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_WINDOW,
               bool finish = true) {
    ASSERT_TRUE(Send(testutil::Started(id, origin)));
    for (int i = 0; i < batches; ++i) {
      ASSERT_TRUE(Send(testutil::FullBatch(id, seq_, seq_ == 0, i * 200000)));
      ++seq_;
    }
    if (finish) {
      ASSERT_TRUE(Send(
          testutil::Finished(id, 0, batches * testutil::kFullBatchEvents)));
    }
  }
  grpc::Status Finish() {
    finished_ = true;
    stream_->WritesDone();
    v1::CollectorCommand c;
    while (stream_->Read(&c)) {
    }
    return stream_->Finish();
  }
  void Cancel() { context_.TryCancel(); }

 private:
  const int64_t pid_;
  uint64_t seq_ = 0;
  std::unique_ptr<v1::ProbeService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ProbeMessage, v1::CollectorCommand>>
      stream_;
  bool finished_ = false;
};

class CollectorServerTest : public ::testing::Test {
 protected:
  void StartServer(Filesystem* fs = nullptr, uint32_t max_batch = 4 << 20) {
    CollectorServer::Options o = options_;
    // Unix socket paths are limited to 107 bytes; TEST_TMPDIR can be long.
    char dir[] = "/tmp/vpcollector-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    socket_dir_ = dir;
    o.probe_socket = socket_dir_ + "/run/collector.sock";
    o.grpc_address = "127.0.0.1:0";
    o.http_address = "127.0.0.1:0";
    o.store.dir = TestDir("traces");
    o.window_linger = absl::ZeroDuration();
    o.stream.max_batch_bytes = max_batch;
    o.port_file = TestDir("ports.json");
    o.injection = R"({"containers":["vllm"]})";
    o.fs = fs;
    auto server = CollectorServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    json ports = json::parse(ReadAll(o.port_file));
    ASSERT_EQ(ports["grpc_port"], server_->grpc_port());
    ASSERT_EQ(ports["http_port"], server_->http_port());
    probe_channel_ = grpc::CreateChannel("unix:" + o.probe_socket,
                                         grpc::InsecureChannelCredentials());
    user_channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->grpc_port()),
                            grpc::InsecureChannelCredentials());
    traces_ = v1::TraceService::NewStub(user_channel_);
  }

  // Waits until `n` traces are listed.
  std::vector<v1::TraceInfo> WaitForTraces(size_t n) {
    absl::Time deadline = absl::Now() + absl::Seconds(20);
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

  grpc::Status GetTrace(const std::string& id, bool gzip, std::string* out,
                        uint32_t chunk = 0) {
    grpc::ClientContext ctx;
    v1::GetTraceRequest req;
    req.set_id(id);
    req.set_chunk_bytes(chunk);
    if (gzip) req.set_encoding(v1::GetTraceRequest::ENCODING_GZIP);
    auto reader = traces_->GetTrace(&ctx, req);
    v1::TraceChunk c;
    bool saw_last = false;
    while (reader->Read(&c)) {
      EXPECT_EQ(c.offset(), out->size());
      EXPECT_FALSE(saw_last);
      out->append(c.data());
      saw_last = c.last();
    }
    grpc::Status s = reader->Finish();
    if (s.ok()) EXPECT_TRUE(saw_last);
    return s;
  }

  std::unique_ptr<http::testutil::TestClient> Http() {
    auto c = http::testutil::TestClient::Connect(server_->http_port(), false);
    EXPECT_TRUE(c.ok()) << c.status();
    return std::move(*c);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    if (!socket_dir_.empty()) {
      ::unlink((socket_dir_ + "/run/collector.sock").c_str());
      ::rmdir((socket_dir_ + "/run").c_str());
      ::rmdir(socket_dir_.c_str());
    }
  }

  CollectorServer::Options options_;  // The defaults StartServer() starts from.
  std::string socket_dir_;
  std::unique_ptr<CollectorServer> server_;
  std::shared_ptr<grpc::Channel> probe_channel_;
  std::shared_ptr<grpc::Channel> user_channel_;
  std::unique_ptr<v1::TraceService::Stub> traces_;
};

TEST_F(CollectorServerTest, ProbeCaptureIsServedOverGrpcAndHttp) {
  StartServer();
  {
    FakeProbe probe(probe_channel_, 4242);
    v1::Welcome welcome = probe.Connect(0);
    EXPECT_EQ(welcome.max_batch_bytes(), 4u << 20);
    EXPECT_EQ(welcome.collector_version(), kCollectorVersion);
    probe.Capture("w-1", 3);
    EXPECT_TRUE(probe.Finish().ok());
  }
  std::vector<v1::TraceInfo> list = WaitForTraces(1);
  ASSERT_EQ(list.size(), 1u);
  const v1::TraceInfo& info = list[0];
  EXPECT_EQ(info.id(), "trace4242");
  EXPECT_EQ(info.file_name(), "trace4242.json");
  EXPECT_TRUE(info.complete());
  EXPECT_EQ(info.capture_id(), "w-1");
  const std::string on_disk = ReadAll(TestDir("traces/trace4242.json"));
  EXPECT_EQ(info.size_bytes(), on_disk.size());
  json j = json::parse(on_disk);
  EXPECT_EQ(j["metadata"]["events_received"], 30);

  // gRPC, plain in small chunks and gzip.
  std::string plain, gz;
  ASSERT_TRUE(GetTrace("trace4242", false, &plain, 4096).ok());
  EXPECT_EQ(plain, on_disk);
  ASSERT_TRUE(GetTrace("trace4242", true, &gz).ok());
  EXPECT_EQ(*Gunzip(gz), on_disk);

  // HTTP: list, plain, gzip by Accept-Encoding, .json.gz file, index.
  auto client = Http();
  auto r = client->Get("/traces");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  json lj = json::parse(r->body);
  EXPECT_EQ(lj["traces"][0]["id"], "trace4242");
  EXPECT_EQ(lj["traces"][0]["complete"], true);
  r = client->Get("/traces/trace4242");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, on_disk);
  EXPECT_EQ(r->headers["content-disposition"],
            "attachment; filename=\"trace4242.json\"");
  r = client->Send("GET", "/traces/trace4242.json", "",
                   {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->headers["content-encoding"], "gzip");
  EXPECT_EQ(*Gunzip(r->body), on_disk);
  r = client->Get("/traces/trace4242.json.gz");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->headers["content-type"], "application/gzip");
  EXPECT_EQ(r->headers.count("content-encoding"), 0u);
  EXPECT_EQ(r->headers["content-disposition"],
            "attachment; filename=\"trace4242.json.gz\"");
  EXPECT_EQ(*Gunzip(r->body), on_disk);
  r = client->Get("/");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("<a href=\"/traces/trace4242.json\">json</a>"),
            std::string::npos);
  r = client->Get("/healthz");
  EXPECT_EQ(r->body, "ok\n");
  r = client->Get("/metrics");
  EXPECT_NE(r->body.find("\nvllm_profiler_events_received_total 30\n"),
            std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("\nvllm_profiler_traces_written_total 1\n"),
            std::string::npos);

  // Status and delete.
  grpc::ClientContext sctx;
  v1::GetStatusResponse status;
  ASSERT_TRUE(traces_->GetStatus(&sctx, {}, &status).ok());
  EXPECT_EQ(status.events_received(), 30u);
  EXPECT_EQ(status.traces_written(), 1u);
  EXPECT_EQ(status.disk().trace_count(), 1u);
  EXPECT_EQ(status.disk().last_error(), "");
  EXPECT_EQ(status.injection(), R"({"containers":["vllm"]})");
  grpc::ClientContext dctx;
  v1::DeleteTraceRequest del;
  del.set_id("trace4242");
  v1::DeleteTraceResponse dresp;
  EXPECT_TRUE(traces_->DeleteTrace(&dctx, del, &dresp).ok());
  r = client->Get("/traces/trace4242");
  EXPECT_EQ(r->status, 404);
}

TEST_F(CollectorServerTest, UnknownIdAndTraversalAreNotFound) {
  StartServer();
  // A real file next to the trace dir that must never be served.
  ASSERT_TRUE(Filesystem::Default()
                  ->WriteFileAtomically(TestDir("secret.json"), "{}")
                  .ok());
  std::string out;
  grpc::Status s = GetTrace("nope", false, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no trace with id \"nope\"");
  s = GetTrace("../secret", false, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext dctx;
  v1::DeleteTraceRequest del;
  del.set_id("../secret");
  v1::DeleteTraceResponse dresp;
  EXPECT_EQ(traces_->DeleteTrace(&dctx, del, &dresp).error_code(),
            grpc::StatusCode::NOT_FOUND);

  auto client = Http();
  for (const char* target :
       {"/traces/nope", "/traces/../secret.json", "/traces/..%2fsecret.json",
        "/traces/%2e%2e/secret", "/traces/.nope.meta", "/nothing"}) {
    auto r = client->Get(target);
    ASSERT_TRUE(r.ok()) << target;
    EXPECT_EQ(r->status, 404) << target;
  }
  // The raw request line, exactly as an attacker would send it.
  auto raw = http::testutil::RawExchange(
      server_->http_port(),
      "GET /traces/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: "
      "close\r\n\r\n");
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE(absl::StartsWith(*raw, "HTTP/1.1 404")) << *raw;
  EXPECT_EQ(raw->find("root:"), std::string::npos);
}

// Runs `bad` on a fresh probe stream while a good probe keeps capturing;
// returns the bad stream's status.
grpc::Status RunBadProbeBesideGoodOne(
    CollectorServerTest* test, const std::shared_ptr<grpc::Channel>& channel,
    const std::function<void(FakeProbe&)>& bad) {
  FakeProbe good(channel, 100);
  good.Connect();
  good.Capture("good", 1, v1::CAPTURE_ORIGIN_WINDOW, /*finish=*/false);
  grpc::Status status;
  {
    FakeProbe probe(channel, 200);
    bad(probe);
    status = probe.Finish();
  }
  // The good probe is unaffected: it finishes its capture normally.
  EXPECT_TRUE(good.Send(testutil::FullBatch("good", 1, false, 400000)));
  EXPECT_TRUE(
      good.Send(testutil::Finished("good", 0, 2 * testutil::kFullBatchEvents)));
  EXPECT_TRUE(good.Finish().ok());
  return status;
}

TEST_F(CollectorServerTest, StreamWithoutHelloIsRejected) {
  StartServer();
  grpc::Status s = RunBadProbeBesideGoodOne(
      this, probe_channel_,
      [](FakeProbe& p) { p.Send(testutil::FullBatch("x", 0)); });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "first message must be Hello, got batch");
  auto list = WaitForTraces(1);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id(), "trace100");
  EXPECT_TRUE(list[0].complete());
}

// Threads and resident memory of this process, from /proc/self/status.
int64_t ProcStatus(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, key + ":")) {
      return std::atoll(line.c_str() + key.size() + 1);
    }
  }
  return -1;
}

TEST_F(CollectorServerTest, StreamsBeyondTheCapAreRefused) {
  options_.max_probe_streams = 4;
  StartServer();
  std::vector<std::unique_ptr<FakeProbe>> probes;
  for (int i = 0; i < 4; ++i) {
    probes.push_back(std::make_unique<FakeProbe>(probe_channel_, 100 + i));
    probes.back()->Connect();
  }
  FakeProbe fifth(probe_channel_, 200);
  fifth.Send(testutil::Hello(200, -1));
  grpc::Status s = fifth.Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(s.error_message(),
            "collector is serving its limit of 4 probe streams "
            "(--max_probe_streams); retry later");
  EXPECT_EQ(server_->probes()->streams_refused(), 1u);
  EXPECT_EQ(server_->probes()->probes_connected(), 4u);
  // A slot that frees up is usable again.
  EXPECT_TRUE(probes[0]->Finish().ok());
  probes.erase(probes.begin());
  for (int i = 0; i < 200 && server_->probes()->active_streams() > 3; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  FakeProbe again(probe_channel_, 300);
  again.Connect();
  EXPECT_EQ(server_->probes()->probes_connected(), 4u);
  auto metrics = Http()->Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_TRUE(absl::StrContains(
      metrics->body, "vllm_profiler_probe_streams_refused_total 1\n"))
      << metrics->body;
}

TEST_F(CollectorServerTest, StreamWithoutHelloIsCancelledAtTheDeadline) {
  options_.hello_timeout = absl::Milliseconds(300);
  StartServer();
  FakeProbe silent(probe_channel_, 100);
  const absl::Time start = absl::Now();
  v1::CollectorCommand c;
  EXPECT_FALSE(silent.Read(&c));  // Ends when the server cancels it.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  for (int i = 0; i < 200 && server_->probes()->hello_timeouts() < 1; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(server_->probes()->hello_timeouts(), 1u);
  // A probe that says Hello in time is unaffected.
  FakeProbe good(probe_channel_, 101);
  good.Connect();
  absl::SleepFor(absl::Milliseconds(500));
  good.Capture("after", 1);
  EXPECT_TRUE(good.Finish().ok());
}

// A flood of streams that never say Hello: threads stay near the cap, and
// threads and memory come back when the streams are gone.
TEST_F(CollectorServerTest, StreamFloodKeepsThreadsAndMemoryBounded) {
  const int flood = std::getenv("VP_FLOOD_STREAMS")
                        ? std::atoi(std::getenv("VP_FLOOD_STREAMS"))
                        : 400;
  options_.max_probe_streams = 16;
  options_.hello_timeout = absl::Milliseconds(500);
  if (const char* cap = std::getenv("VP_FLOOD_CAP")) {
    options_.max_probe_streams = std::atoi(cap);
  }
  StartServer();
  {
    // Warm the channel and the server's pollers.
    FakeProbe warm(probe_channel_, 1);
    warm.Connect();
    EXPECT_TRUE(warm.Finish().ok());
  }
  const int64_t threads0 = ProcStatus("Threads");
  const int64_t rss0 = ProcStatus("VmRSS");
  int64_t max_threads = threads0, max_rss = rss0;
  std::vector<std::unique_ptr<FakeProbe>> streams;
  const absl::Time start = absl::Now();
  for (int i = 0; i < flood; ++i) {
    streams.push_back(std::make_unique<FakeProbe>(probe_channel_, 1000 + i));
    if (i % 50 == 0) {
      max_threads = std::max(max_threads, ProcStatus("Threads"));
      max_rss = std::max(max_rss, ProcStatus("VmRSS"));
    }
  }
  max_threads = std::max(max_threads, ProcStatus("Threads"));
  max_rss = std::max(max_rss, ProcStatus("VmRSS"));
  // Every stream ends: refused at once or cancelled at the Hello deadline.
  std::map<std::string, int> statuses;
  for (auto& s : streams) {
    v1::CollectorCommand c;
    EXPECT_FALSE(s->Read(&c));
    grpc::Status st = s->Finish();
    ++statuses[absl::StrCat(st.error_code(), " ", st.error_message())];
  }
  for (const auto& [text, n] : statuses) {
    std::printf("%d x %s\n", n, text.c_str());
  }
  const absl::Duration took = absl::Now() - start;
  streams.clear();
  for (int i = 0; i < 500 && server_->probes()->active_streams() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const uint64_t refused = server_->probes()->streams_refused();
  const uint64_t timed_out = server_->probes()->hello_timeouts();
  // Let the sync server's surplus threads exit.
  int64_t threads1 = ProcStatus("Threads");
  for (int i = 0; i < 300 && threads1 > threads0 + 8; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    threads1 = ProcStatus("Threads");
  }
  const int64_t rss1 = ProcStatus("VmRSS");
  std::printf(
      "flood of %d streams (cap %d): %s; threads %lld -> max %lld -> %lld; "
      "RSS %lld kB -> max %lld kB -> %lld kB; refused %llu, Hello "
      "timeouts %llu, gRPC refusals %llu\n",
      flood, options_.max_probe_streams, absl::FormatDuration(took).c_str(),
      (long long)threads0, (long long)max_threads, (long long)threads1,
      (long long)rss0, (long long)max_rss, (long long)rss1,
      (unsigned long long)refused, (unsigned long long)timed_out,
      (unsigned long long)(flood - refused - timed_out));
  // The thread quota: twice the cap (served + being refused) and pollers.
  EXPECT_LE(max_threads, threads0 + 2 * options_.max_probe_streams + 64);
  EXPECT_LE(threads1, threads0 + 8);
  // Each stream was refused by us, refused by gRPC's thread quota (a burst
  // faster than refusals free their threads), or cancelled at the Hello
  // deadline.
  const std::string ours = absl::StrCat(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      " collector is serving its limit of ", options_.max_probe_streams,
      " probe streams (--max_probe_streams); retry later");
  const std::string quota = absl::StrCat(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                         " Server Threadpool Exhausted");
  const std::string cancelled = absl::StrCat(grpc::StatusCode::CANCELLED,
                                             " Cancelled on the server side");
  EXPECT_EQ(statuses[ours], static_cast<int>(refused));
  EXPECT_EQ(statuses[cancelled], static_cast<int>(timed_out));
  EXPECT_EQ(statuses[ours] + statuses[quota] + statuses[cancelled], flood);
  EXPECT_LE(rss1, rss0 + 64 * 1024);
}

TEST_F(CollectorServerTest, DropCountersSaturateInsteadOfWrapping) {
  StartServer();
  FakeProbe p(probe_channel_, 100);
  p.Connect();
  p.Capture("sat", 1, v1::CAPTURE_ORIGIN_WINDOW, /*finish=*/false);
  v1::ProbeMessage f = testutil::Finished("sat", 0, testutil::kFullBatchEvents);
  v1::DropCounters* d = f.mutable_capture_finished()->mutable_drops();
  d->set_events_dropped_buffer_full(~uint64_t{0});
  d->set_events_dropped_send(~uint64_t{0});
  d->set_cupti_records_dropped(~uint64_t{0});
  ASSERT_TRUE(p.Send(f));
  auto list = WaitForTraces(1);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_FALSE(list[0].complete());
  // Was 3 * (2^64 - 1) mod 2^64 = 18446744073709551613.
  EXPECT_EQ(server_->probes()->events_dropped(), ~uint64_t{0});
  EXPECT_TRUE(p.Finish().ok());
}

TEST_F(CollectorServerTest, UnknownStringIdIsRejected) {
  StartServer();
  grpc::Status s =
      RunBadProbeBesideGoodOne(this, probe_channel_, [](FakeProbe& p) {
        p.Connect();
        // A command capture, so it is not grouped with the good probe's window.
        p.Send(testutil::Started("bad", v1::CAPTURE_ORIGIN_COMMAND));
        p.Send(testutil::FullBatch("bad", 5, /*define_strings=*/false));
      });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "batch 5 event 0 refers to unknown string id 2 (name_id)");
  // The bad probe's capture was finalized incomplete; the good one is fine.
  auto list = WaitForTraces(2);
  ASSERT_EQ(list.size(), 2u);
  for (const auto& info : list) {
    if (info.id() == "trace100") {
      EXPECT_TRUE(info.complete());
    } else {
      EXPECT_EQ(info.id(), "trace200");
      EXPECT_FALSE(info.complete());
      EXPECT_EQ(info.error(),
                "pid 200 disconnected before the capture finished: batch 5 "
                "event 0 refers to unknown string id 2 (name_id)");
    }
  }
}

TEST_F(CollectorServerTest, OversizedBatchIsRejected) {
  StartServer(nullptr, /*max_batch=*/2000);
  size_t size = 0;
  grpc::Status s =
      RunBadProbeBesideGoodOne(this, probe_channel_, [&](FakeProbe& p) {
        EXPECT_EQ(p.Connect().max_batch_bytes(), 2000u);
        p.Send(testutil::Started("big"));
        v1::ProbeMessage m = testutil::FullBatch("big", 0);
        v1::Event op = m.batch().events(1);
        for (int i = 0; i < 100; ++i) *m.mutable_batch()->add_events() = op;
        size = m.ByteSizeLong();
        p.Send(m);
      });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            absl::StrCat("batch 0 is ", size,
                         " bytes, over the limit of 2000 bytes "
                         "(Welcome.max_batch_bytes)"));
}

TEST_F(CollectorServerTest, MalformedMessageIsRejected) {
  StartServer();
  FakeProbe good(probe_channel_, 100);
  good.Connect();
  // Raw bytes on the Connect method: a truncated protobuf.
  grpc::GenericStub generic(probe_channel_);
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  auto call =
      generic.PrepareCall(&ctx, "/vllm_profiler.v1.ProbeService/Connect", &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice slice(std::string("\x12\xff\xff\x07garbage", 11));
  grpc::ByteBuffer bb(&slice, 1);
  call->Write(bb, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  call->WritesDone(reinterpret_cast<void*>(3));
  cq.Next(&tag, &ok);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "malformed ProbeMessage of 11 bytes: not a valid protobuf "
            "encoding");
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  // The other probe still works.
  good.Capture("g", 1);
  EXPECT_TRUE(good.Finish().ok());
  EXPECT_EQ(WaitForTraces(1)[0].id(), "trace100");
}

TEST_F(CollectorServerTest, DisconnectMidCaptureWritesIncompleteTrace) {
  StartServer();
  {
    FakeProbe probe(probe_channel_, 77);
    probe.Connect();
    probe.Capture("w", 2, v1::CAPTURE_ORIGIN_WINDOW, /*finish=*/false);
    // Make sure the batches arrived before vanishing.
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (server_->probes()->events_received() < 20 &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    probe.Cancel();
  }
  auto list = WaitForTraces(1);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id(), "trace77");
  EXPECT_FALSE(list[0].complete());
  json j = json::parse(ReadAll(TestDir("traces/trace77.json")));
  EXPECT_EQ(j["metadata"]["complete"], false);
  EXPECT_EQ(j["metadata"]["events_received"], 20);
  EXPECT_EQ(j["metadata"]["processes"][0]["disconnected"], true);
}

// A probe thread that answers StartCaptureCommands like the real probe.
void AnswerCommands(FakeProbe* probe, int batches) {
  v1::CollectorCommand c;
  uint64_t seq = 0;
  while (probe->Read(&c)) {
    if (!c.has_start_capture()) continue;
    const std::string& id = c.start_capture().capture_id();
    if (!probe->Send(testutil::Started(id, v1::CAPTURE_ORIGIN_COMMAND))) return;
    for (int i = 0; i < batches; ++i, ++seq) {
      probe->Send(testutil::FullBatch(id, seq, seq == 0, i * 200000));
    }
    probe->Send(
        testutil::Finished(id, 0, batches * testutil::kFullBatchEvents));
  }
}

TEST_F(CollectorServerTest, StartCaptureCommandWaitsForTheTrace) {
  StartServer();
  FakeProbe a(probe_channel_, 11), b(probe_channel_, 12);
  a.Connect(0);
  b.Connect(1);
  std::thread ta(AnswerCommands, &a, 2), tb(AnswerCommands, &b, 3);
  grpc::ClientContext ctx;
  v1::StartCaptureRequest req;
  req.set_wait(true);
  req.set_timeout_ms(20000);
  v1::StartCaptureResponse resp;
  ASSERT_TRUE(traces_->StartCapture(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.pids_size(), 2);
  EXPECT_EQ(resp.trace().id(), "trace11_12");
  EXPECT_TRUE(resp.trace().complete());
  EXPECT_EQ(resp.trace().capture_id(), resp.capture_id());
  // Unknown pid, then no probes.
  grpc::ClientContext ctx2;
  req.add_pids(999);
  grpc::Status s = traces_->StartCapture(&ctx2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "no connected probe with pid 999");
  a.Cancel();
  b.Cancel();
  ta.join();
  tb.join();
}

TEST_F(CollectorServerTest, DiskFullIsReportedAndOldTracesStillServed) {
  FaultyFilesystem fs;
  StartServer(&fs);
  int log_fd = ::open(TestDir("collector.log").c_str(),
                      O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(log_fd, 0);
  SetLogFdForTesting(log_fd);
  FakeProbe probe(probe_channel_, 31);
  probe.Connect();
  std::thread answer(AnswerCommands, &probe, 50);
  grpc::ClientContext ctx;
  v1::StartCaptureRequest req;
  req.set_wait(true);
  v1::StartCaptureResponse resp;
  ASSERT_TRUE(traces_->StartCapture(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.trace().id(), "trace31");
  std::string first;
  ASSERT_TRUE(GetTrace("trace31", false, &first).ok());

  fs.FailWritesAfter(2000);  // The disk fills up.
  grpc::ClientContext ctx2;
  ASSERT_TRUE(traces_->StartCapture(&ctx2, req, &resp).ok());
  EXPECT_EQ(resp.trace().id(), "");
  const std::string& error = resp.trace().error();
  EXPECT_TRUE(
      absl::StartsWith(error, "write " + TestDir("traces/.inprogress-")))
      << error;
  EXPECT_TRUE(absl::EndsWith(error, ".tmp: No space left on device")) << error;

  grpc::ClientContext sctx;
  v1::GetStatusResponse status;
  ASSERT_TRUE(traces_->GetStatus(&sctx, {}, &status).ok());
  EXPECT_EQ(status.disk().last_error(), error);
  ASSERT_GE(status.captures_size(), 1);
  EXPECT_EQ(status.captures(0).error(), error);
  EXPECT_TRUE(status.captures(0).finished());

  // The earlier trace is still listed and downloadable.
  std::string again;
  ASSERT_TRUE(GetTrace("trace31", false, &again).ok());
  EXPECT_EQ(again, first);
  auto r = Http()->Get("/traces/trace31");
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(Http()->Get("/")->body.find("No space left on device"),
            std::string::npos);
  SetLogFdForTesting(-1);
  ::close(log_fd);
  std::string log = ReadAll(TestDir("collector.log"));
  EXPECT_NE(log.find("no trace written: " + error), std::string::npos) << log;

  // Unwritable directory: creating the file fails.
  fs.FailWritesAfter(-1);
  fs.FailCreate(true);
  grpc::ClientContext ctx3;
  ASSERT_TRUE(traces_->StartCapture(&ctx3, req, &resp).ok());
  EXPECT_TRUE(absl::EndsWith(resp.trace().error(), ".tmp: Permission denied"))
      << resp.trace().error();
  probe.Cancel();
  answer.join();
}

TEST_F(CollectorServerTest, SixteenProbesAndSixteenDownloads) {
  StartServer();
  constexpr int kN = 16;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] {
      FakeProbe p(probe_channel_, 1000 + i);
      p.Connect(i);
      // Distinct capture per process: the first joins, all group by window.
      p.Capture(absl::StrCat("w", i), 20);
      if (!p.Finish().ok()) failures++;
    });
  }
  for (auto& th : threads) th.join();
  threads.clear();
  EXPECT_EQ(failures.load(), 0);
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::vector<v1::TraceInfo> list;
  uint64_t pids = 0;
  while (absl::Now() < deadline) {
    list = WaitForTraces(1);
    pids = 0;
    for (const auto& t : list) pids += t.pids_size();
    if (pids == kN) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(pids, static_cast<uint64_t>(kN));
  EXPECT_EQ(server_->probes()->events_received(), kN * 20 * 10u);
  const std::string id = list[0].id();
  const std::string expected =
      ReadAll(TestDir("traces/" + list[0].file_name()));
  for (int i = 0; i < kN; ++i) {
    threads.emplace_back([&, i] {
      if (i % 2 == 0) {
        std::string out;
        if (!GetTrace(id, i % 4 == 0, &out).ok()) failures++;
        if (i % 4 == 0) out = *Gunzip(out);
        if (out != expected) failures++;
      } else {
        auto c =
            http::testutil::TestClient::Connect(server_->http_port(), false);
        if (!c.ok()) {
          failures++;
          return;
        }
        auto r = (*c)->Get("/traces/" + id);
        if (!r.ok() || r->status != 200 || r->body != expected) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(CollectorServerTest, HealthAndReflectionAreOn) {
  StartServer();
  grpc::GenericStub generic(user_channel_);
  // grpc.health.v1.Health/Check with an empty request: SERVING is "\x08\x01".
  grpc::ClientContext ctx;
  grpc::ByteBuffer request;  // Empty message.
  grpc::ByteBuffer response;
  grpc::Status status;
  std::atomic<bool> done{false};
  grpc::Slice empty("", 0);
  grpc::ByteBuffer req(&empty, 1);
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                    &req, &response, [&](grpc::Status s) {
                      status = s;
                      done = true;
                    });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!done && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(done) << "no answer to Health/Check within 30 s";
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));

  // Reflection: list_services (field 7) lists TraceService.
  grpc::ClientContext rctx;
  grpc::CompletionQueue cq;
  auto call = generic.PrepareCall(
      &rctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &cq);
  void* tag;
  bool ok;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::Slice list(std::string("\x3a\x00", 2));
  grpc::ByteBuffer lbb(&list, 1);
  call->Write(lbb, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  grpc::ByteBuffer out;
  call->Read(&out, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
  slices.clear();
  ASSERT_TRUE(out.Dump(&slices).ok());
  bytes.clear();
  for (auto& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_NE(bytes.find("vllm_profiler.v1.TraceService"), std::string::npos);
  rctx.TryCancel();
  grpc::Status st;
  call->Finish(&st, reinterpret_cast<void*>(4));
  while (cq.Next(&tag, &ok) && tag != reinterpret_cast<void*>(4)) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(CollectorServerTest, ShutdownFinalizesOpenCapturesAsIncomplete) {
  StartServer();
  FakeProbe probe(probe_channel_, 55);
  probe.Connect();
  probe.Capture("w", 1, v1::CAPTURE_ORIGIN_WINDOW, /*finish=*/false);
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->probes()->events_received() < 10 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  TraceStore* store = server_->store();
  server_->Shutdown();
  auto list = store->List();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id(), "trace55");
  EXPECT_FALSE(list[0].complete());
  EXPECT_EQ(list[0].error(),
            "pid 55 disconnected before the capture finished: collector "
            "shutting down");
}

}  // namespace
}  // namespace vllm_profiler::collector
