#include "collector/capture_manager.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "collector/probe_messages_testing.h"
#include "common/filesystem_testing.h"
#include "common/gzip.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector {
namespace {

class CaptureManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TraceStore::Options o;
    o.dir = std::string(std::getenv("TEST_TMPDIR")) + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    store_ = std::make_unique<TraceStore>(o, &fs_);
    ASSERT_TRUE(store_->Init().ok());
    CaptureManager::Options mo;
    mo.window_linger = absl::Milliseconds(200);
    manager_ = std::make_unique<CaptureManager>(mo, store_.get());
  }

  // A connected probe with pid `pid`.
  std::unique_ptr<ProbeStream> Probe(int64_t pid, int rank = -1) {
    auto s = std::make_unique<ProbeStream>();
    v1::ProbeMessage m = testutil::Hello(pid, rank);
    EXPECT_TRUE(s->Accept(m, 0).ok());
    return s;
  }
  std::shared_ptr<Capture> Start(ProbeStream& s, const v1::ProbeMessage& m) {
    EXPECT_TRUE(s.Accept(m, 0).ok());
    return manager_->Join(s, m.capture_started());
  }
  void Batch(ProbeStream& s, Capture& c, const std::string& id) {
    v1::ProbeMessage m = testutil::FullBatch(id, s.batches(), s.batches() == 0);
    ASSERT_TRUE(s.Accept(m, 0).ok());
    c.WriteBatch(s, m.batch());
  }
  v1::TraceInfo WaitFor(const std::string& id) {
    auto info = manager_->Wait(id, absl::Now() + absl::Seconds(10));
    EXPECT_TRUE(info.has_value()) << id;
    return info.value_or(v1::TraceInfo());
  }

  FaultyFilesystem fs_;
  std::unique_ptr<TraceStore> store_;
  std::unique_ptr<CaptureManager> manager_;
};

TEST_F(CaptureManagerTest, ProbeCapturesCannotEvictYoungTraces) {
  TraceStore::Options o;
  o.dir = std::string(std::getenv("TEST_TMPDIR")) + "/young";
  o.max_traces = 2;
  store_ = std::make_unique<TraceStore>(o, &fs_);
  ASSERT_TRUE(store_->Init().ok());
  CaptureManager::Options mo;
  mo.window_linger = absl::ZeroDuration();
  manager_ = std::make_unique<CaptureManager>(mo, store_.get());
  for (int i = 0; i < 2; ++i) {
    auto s = Probe(10 + i);
    const std::string id = "w" + std::to_string(i);
    auto c = Start(*s, testutil::Started(id));
    ASSERT_NE(c, nullptr);
    Batch(*s, *c, id);
    manager_->Finish(c, 10 + i, testutil::Finished(id).capture_finished());
    WaitFor(id);
  }
  ASSERT_EQ(store_->List().size(), 2u);
  // Both traces are seconds old: a third probe capture is refused.
  auto s = Probe(30);
  EXPECT_EQ(Start(*s, testutil::Started("junk")), nullptr);
  EXPECT_EQ(manager_->captures_refused(), 1u);
  EXPECT_EQ(store_->List().size(), 2u);
  // A capture registered by StartCapture (the user's) still may evict.
  const std::string cmd = manager_->CreateCommandCapture({31}, {});
  auto u = Probe(31);
  auto c = Start(*u, testutil::Started(cmd, v1::CAPTURE_ORIGIN_COMMAND));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(manager_->captures_refused(), 1u);
}

TEST_F(CaptureManagerTest, WindowCapturesOfSeveralProcessesMakeOneTrace) {
  auto a = Probe(20, 1);
  auto b = Probe(10, 0);
  auto ca = Start(*a, testutil::Started("w-20"));
  auto cb = Start(*b, testutil::Started("w-10"));
  EXPECT_EQ(ca, cb);
  Batch(*a, *ca, "w-20");
  Batch(*b, *cb, "w-10");
  manager_->Finish(ca, 20, testutil::Finished("w-20").capture_finished());
  // Still open: pid 10 has not finished.
  EXPECT_FALSE(manager_->Wait("w-20", absl::Now() + absl::Milliseconds(300)));
  manager_->Finish(cb, 10, testutil::Finished("w-10").capture_finished());
  v1::TraceInfo info = WaitFor("w-20");
  EXPECT_EQ(info.id(), "trace10_20");
  EXPECT_TRUE(info.complete());
  EXPECT_EQ(info.error(), "");
  EXPECT_EQ(manager_->traces_written(), 1u);
  ASSERT_EQ(store_->List().size(), 1u);
  auto status = manager_->Status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_TRUE(status[0].finished());
  EXPECT_EQ(status[0].trace_id(), "trace10_20");
}

TEST_F(CaptureManagerTest, LateJoinerWithinLingerJoins) {
  auto a = Probe(1);
  auto ca = Start(*a, testutil::Started("w-1"));
  manager_->Finish(ca, 1, testutil::Finished("w-1").capture_finished());
  auto b = Probe(2);
  auto cb = Start(*b, testutil::Started("w-2"));
  EXPECT_EQ(ca, cb);
  manager_->Finish(cb, 2, testutil::Finished("w-2").capture_finished());
  EXPECT_EQ(WaitFor("w-1").id(), "trace1_2");
}

TEST_F(CaptureManagerTest, SecondWindowOfTheSameProcessIsANewTrace) {
  auto a = Probe(7);
  auto c1 = Start(*a, testutil::Started("w-1"));
  manager_->Finish(c1, 7, testutil::Finished("w-1").capture_finished());
  auto c2 = Start(*a, testutil::Started("w-2", v1::CAPTURE_ORIGIN_WINDOW,
                                        "/out/custom.json"));
  EXPECT_NE(c1, c2);
  manager_->Finish(c2, 7, testutil::Finished("w-2").capture_finished());
  EXPECT_EQ(WaitFor("w-1").id(), "trace7");
  EXPECT_EQ(WaitFor("w-2").id(), "custom");
}

TEST_F(CaptureManagerTest, CommandCaptureWaitsForSelectedProbes) {
  v1::CaptureConfig config;
  config.set_num_steps(5);
  std::string id = manager_->CreateCommandCapture({10, 20}, config);
  auto a = Probe(10);
  auto c = Start(*a, testutil::Started(id, v1::CAPTURE_ORIGIN_COMMAND));
  Batch(*a, *c, id);
  manager_->Finish(c, 10, testutil::Finished(id).capture_finished());
  EXPECT_FALSE(manager_->Wait(id, absl::Now() + absl::Milliseconds(300)));
  manager_->ProbeGone(20);  // It went away without starting.
  v1::TraceInfo info = WaitFor(id);
  EXPECT_EQ(info.id(), "trace10");
  EXPECT_EQ(info.capture_id(), id);
  // 10 events, 2 flows (4 events), 6 metadata events (process name, sort
  // index, labels; thread name; GPU track name and sort index).
  EXPECT_EQ(info.num_events(), 20u);
}

TEST_F(CaptureManagerTest, TriggeredCaptureSaysTriggerInItsTrace) {
  std::string id =
      manager_->CreateCommandCapture({10}, {}, "slow step: step 4 took 80 ms");
  auto a = Probe(10);
  // The probe runs it as a command capture.
  auto c = Start(*a, testutil::Started(id, v1::CAPTURE_ORIGIN_COMMAND));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(manager_->Status()[0].origin(), v1::CAPTURE_ORIGIN_TRIGGER);
  Batch(*a, *c, id);
  manager_->Finish(c, 10, testutil::Finished(id).capture_finished());
  v1::TraceInfo info = WaitFor(id);
  ASSERT_FALSE(info.id().empty()) << info.error();
  EXPECT_EQ(info.origin(), v1::CAPTURE_ORIGIN_TRIGGER);
  EXPECT_EQ(info.reason(), "slow step: step 4 took 80 ms");
  absl::StatusOr<std::string> bytes = fs_.ReadSmallFile(
      store_->options().dir + "/" + info.file_name(), 1 << 20);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  nlohmann::json trace = nlohmann::json::parse(*bytes);
  EXPECT_EQ(trace["metadata"]["origin"], "trigger");
  EXPECT_EQ(trace["metadata"]["capture_id"], id);
}

TEST_F(CaptureManagerTest, CommandCaptureNobodyStarted) {
  std::string id = manager_->CreateCommandCapture({10}, {});
  manager_->ProbeGone(10);
  v1::TraceInfo info = WaitFor(id);
  EXPECT_EQ(info.id(), "");
  EXPECT_EQ(info.error(),
            "no probe started the capture (the selected probes disconnected "
            "or did not reach a step in time)");
  EXPECT_EQ(store_->List().size(), 0u);
}

// Events of a process that started before the first joiner would get a
// negative ts; the finished trace moves its time base to the earliest event
// instead, keeping every distance, plain or gzip-stored.
void ExpectNoNegativeTs(const std::string& json, int64_t* base_ns) {
  nlohmann::json j = nlohmann::json::parse(json);
  double min_ts = 1e300;
  double a_step = -1, b_step = -1;
  for (const auto& e : j["traceEvents"]) {
    if (!e.contains("ts")) continue;
    min_ts = std::min(min_ts, e["ts"].get<double>());
    if (e.value("cat", "") == "step" || e.value("ph", "") == "X") {
      if (e["name"] == "execute_model" && e["pid"] == 20) a_step = e["ts"];
      if (e["name"] == "execute_model" && e["pid"] == 10) b_step = e["ts"];
    }
  }
  EXPECT_EQ(min_ts, 0.0);
  EXPECT_NEAR(a_step - b_step, 5000.0, 1e-6);  // 5 ms apart, as sent.
  *base_ns = j["metadata"]["base_time_unix_ns"].get<int64_t>();
}

TEST_F(CaptureManagerTest, EarlierLateJoinerMovesTheTimeBase) {
  for (bool gzip : {false, true}) {
    TraceStore::Options o;
    o.dir =
        std::string(std::getenv("TEST_TMPDIR")) + "/base" + (gzip ? "-gz" : "");
    o.gzip = gzip;
    store_ = std::make_unique<TraceStore>(o, &fs_);
    ASSERT_TRUE(store_->Init().ok());
    manager_ = std::make_unique<CaptureManager>(CaptureManager::Options(),
                                                store_.get());
    auto a = Probe(20);
    auto b = Probe(10);
    auto c = Start(*a, testutil::Started("w-a"));
    ASSERT_EQ(Start(*b, testutil::Started("w-b")), c);
    v1::ProbeMessage ma = testutil::FullBatch("w-a", 0);
    ASSERT_TRUE(a->Accept(ma, 0).ok());
    c->WriteBatch(*a, ma.batch());
    // pid 10's events begin 5 ms before the capture's time base.
    v1::ProbeMessage mb = testutil::FullBatch("w-b", 0, true, -5000000);
    ASSERT_TRUE(b->Accept(mb, 0).ok());
    c->WriteBatch(*b, mb.batch());
    manager_->Finish(c, 20, testutil::Finished("w-a").capture_finished());
    manager_->Finish(c, 10, testutil::Finished("w-b").capture_finished());
    v1::TraceInfo info = WaitFor("w-a");
    ASSERT_EQ(info.id(), "trace10_20") << gzip;
    EXPECT_TRUE(info.complete()) << info.error();
    std::string bytes =
        *fs_.ReadSmallFile(o.dir + "/" + info.file_name(), 1 << 20);
    if (gzip) {
      std::string plain;
      GzipDecompressor d;
      ASSERT_TRUE(d.Decompress(bytes, &plain).ok());
      bytes = plain;
    }
    int64_t base_ns = 0;
    ExpectNoNegativeTs(bytes, &base_ns);
    // The earliest event: pid 10's first, 5 ms minus 1 us before the join.
    EXPECT_EQ(base_ns, testutil::kRealBase + 1000 - 5000000);
    // Only the shifted file is left in the directory (and the sidecar).
    auto names = Filesystem::Default()->ListDir(o.dir);
    ASSERT_TRUE(names.ok());
    EXPECT_EQ(names->size(), 2u);
  }
}

TEST_F(CaptureManagerTest, DisconnectMidCaptureWritesIncompleteTrace) {
  auto a = Probe(5);
  auto c = Start(*a, testutil::Started("w"));
  Batch(*a, *c, "w");
  manager_->Disconnect(c, 5, "stream broken");
  v1::TraceInfo info = WaitFor("w");
  EXPECT_EQ(info.id(), "trace5");
  EXPECT_FALSE(info.complete());
  EXPECT_EQ(info.error(),
            "pid 5 disconnected before the capture finished: stream broken");
  EXPECT_EQ(store_->Find("trace5")->complete(), false);
}

TEST_F(CaptureManagerTest, DiskFullIsTheCapturesResult) {
  fs_.FailWritesAfter(100);
  auto a = Probe(5);
  auto c = Start(*a, testutil::Started("w"));
  for (int i = 0; i < 20; ++i) Batch(*a, *c, "w");
  manager_->Finish(c, 5, testutil::Finished("w").capture_finished());
  v1::TraceInfo info = WaitFor("w");
  EXPECT_EQ(info.id(), "");
  EXPECT_NE(info.error().find(": No space left on device"), std::string::npos)
      << info.error();
  EXPECT_EQ(store_->Disk().last_error(), info.error());
  EXPECT_EQ(manager_->Status()[0].error(), info.error());
  // The temp file is gone.
  auto names = Filesystem::Default()->ListDir(store_->options().dir);
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

TEST_F(CaptureManagerTest, ShutdownFinalizesOpenCapturesAsIncomplete) {
  auto a = Probe(5);
  auto c = Start(*a, testutil::Started("w"));
  Batch(*a, *c, "w");
  manager_->Shutdown("collector shutting down");
  ASSERT_EQ(store_->List().size(), 1u);
  v1::TraceInfo info = store_->List()[0];
  EXPECT_EQ(info.id(), "trace5");
  EXPECT_FALSE(info.complete());
  EXPECT_EQ(info.error(),
            "pid 5 disconnected before the capture finished: collector "
            "shutting down");
}

TEST_F(CaptureManagerTest, ConcurrentProcessesWriteOneTrace) {
  // Eight processes join one window and write concurrently while the
  // finalizer thread polls (run under --config=tsan too).
  constexpr int kProcs = 8;
  constexpr int kBatches = 50;
  std::vector<std::thread> threads;
  std::string first_id;
  for (int i = 0; i < kProcs; ++i) {
    threads.emplace_back([this, i] {
      auto s = Probe(100 + i, i);
      const std::string id = "w-" + std::to_string(i);
      auto c = Start(*s, testutil::Started(id));
      for (int b = 0; b < kBatches; ++b) Batch(*s, *c, id);
      v1::ProbeMessage f =
          testutil::Finished(id, 0, kBatches * testutil::kFullBatchEvents);
      ASSERT_TRUE(s->Accept(f, 0).ok());
      manager_->Finish(c, 100 + i, f.capture_finished());
    });
  }
  for (auto& th : threads) th.join();
  // All joined one capture (the first window opened): wait for any trace.
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (store_->List().empty() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::vector<v1::TraceInfo> list = store_->List();
  int pids = 0;
  for (const auto& info : list) pids += info.pids_size();
  // Late joiners may start a second window once the first finalized, but
  // every process is in exactly one trace, and every trace is complete.
  deadline = absl::Now() + absl::Seconds(10);
  while (pids < kProcs && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
    list = store_->List();
    pids = 0;
    for (const auto& info : list) pids += info.pids_size();
  }
  EXPECT_EQ(pids, kProcs);
  for (const auto& info : list) EXPECT_TRUE(info.complete()) << info.id();
}

}  // namespace
}  // namespace vllm_profiler::collector
