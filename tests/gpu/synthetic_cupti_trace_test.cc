// End to end without a GPU: synthetic CUPTI activity records (real
// CUpti_Activity* structs) go through CuptiTracer's buffer-completed path
// (FakeCuptiApi stands in for libcupti), the resulting events are streamed
// like a probe does to the real collector binary over ProbeService, and the
// Chrome trace it writes is checked: kernels and memcpys on GPU stream
// tracks, a flow (ac2g) from each launching API call to its GPU activity, a
// flow (op2g) from the torch operator to the kernel it launched, and GPU
// timestamps on the probe's timeline.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "probe/core/gpu_tracer.h"
#include "probe/cupti/cupti_api.h"
#include "probe/cupti/cupti_tracer.h"
#include "probe/cupti/fake_cupti_api.h"
#include "proto/profiler.grpc.pb.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {
namespace {

using cupti::CuptiApi;
using cupti::CuptiTracerOptions;
using cupti::FakeCuptiApi;
using cupti::FakeCuptiLoader;
using cupti::MakeFakeCuptiLoader;
using cupti::NewCuptiTracer;
using nlohmann::json;

constexpr int64_t kPid = 424242;
constexpr uint32_t kTid = 777;
constexpr uint64_t kGpuBase = 50'000'000'000;  // CUPTI clock at start.
constexpr int64_t kMonoBase = 9'000'000'000;   // CLOCK_MONOTONIC then.

// Collects what the tracer produces into one EventBatch, as the probe core
// would (interning table included).
class BatchSink final : public GpuEventSink {
 public:
  uint32_t InternString(std::string_view value) override {
    auto it = ids_.find(std::string(value));
    if (it != ids_.end()) return it->second;
    const uint32_t id = static_cast<uint32_t>(ids_.size() + 1);
    ids_.emplace(std::string(value), id);
    v1::InternedString* s = batch_.add_strings();
    s->set_id(id);
    s->set_value(std::string(value));
    return id;
  }
  void AddEvent(v1::Event event) override {
    *batch_.add_events() = std::move(event);
  }
  void AddTracerDrops(uint64_t records, uint64_t buffers) override {
    records_dropped_ += records;
    buffers_dropped_ += buffers;
  }
  v1::EventBatch& batch() { return batch_; }

 private:
  absl::flat_hash_map<std::string, uint32_t> ids_;
  v1::EventBatch batch_;
  uint64_t records_dropped_ = 0;
  uint64_t buffers_dropped_ = 0;
};

template <typename Record>
Record Zeroed(CUpti_ActivityKind kind) {
  Record record;
  std::memset(&record, 0, sizeof(record));
  record.kind = kind;
  return record;
}

std::string TmpDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr ? tmp : "/tmp";
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

class CollectorProcess {
 public:
  ~CollectorProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
    if (!socket_.empty()) unlink(socket_.c_str());
    if (!short_dir_.empty()) rmdir(short_dir_.c_str());
  }
  // Starts the collector; returns false if it did not come up in 20 s.
  bool Start(const std::string& dir) {
    // Unix socket paths are limited to 107 bytes; TEST_TMPDIR is deep.
    char short_dir[] = "/tmp/vpgpuXXXXXX";
    if (mkdtemp(short_dir) == nullptr) return false;
    short_dir_ = short_dir;
    socket_ = short_dir_ + "/c.sock";
    trace_dir_ = dir + "/traces";
    const std::string port_file = dir + "/ports.json";
    mkdir(trace_dir_.c_str(), 0755);
    std::vector<std::string> args = {
        "tests/gpu/../../collector/collector",
        "--probe_socket=" + socket_,
        "--grpc_address=127.0.0.1:0",
        "--http_address=127.0.0.1:0",
        "--trace_dir=" + trace_dir_,
        "--port_file=" + port_file,
        "--window_linger_ms=50",
    };
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv("collector/collector", argv.data());
      _exit(127);
    }
    for (int i = 0; i < 400; ++i) {
      std::string ports;
      if (ReadFile(port_file, &ports) && !ports.empty()) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  const std::string& socket() const { return socket_; }
  const std::string& trace_dir() const { return trace_dir_; }

 private:
  pid_t pid_ = -1;
  std::string short_dir_;
  std::string socket_;
  std::string trace_dir_;
};

TEST(SyntheticCuptiTraceTest, KernelsFlowsAndOperatorsInTheChromeTrace) {
  // 1. The GPU side: the tracer over a fake CUPTI with synthetic records.
  FakeCuptiApi::Knobs knobs;
  knobs.gpu_clock = [] { return kGpuBase; };
  knobs.runtime_names[211] = "cudaLaunchKernel_v7000";
  knobs.runtime_names[41] = "cudaMemcpyAsync_v3020";
  FakeCuptiLoader loader = MakeFakeCuptiLoader(knobs);
  FakeCuptiApi* fake = loader.fake;
  CuptiTracerOptions options;
  options.load_api = std::move(loader.load);
  options.monotonic_ns = [] { return kMonoBase; };
  options.log = [](std::string_view) {};
  std::unique_ptr<GpuTracer> tracer = NewCuptiTracer(std::move(options));

  BatchSink sink;
  // The torch operator (CPU side, as the probe core records it).
  {
    v1::Event op;
    op.set_kind(v1::EVENT_KIND_CPU_OP);
    op.set_name_id(sink.InternString("aten::mm"));
    op.set_start_ns(kMonoBase + 500);
    op.set_duration_ns(3'000);
    op.set_tid(kTid);
    op.set_external_id(9001);
    sink.AddEvent(op);
  }
  ASSERT_TRUE(tracer->Start(&sink).ok());
  tracer->PushExternalCorrelation(9001);
  auto ext = Zeroed<CUpti_ActivityExternalCorrelation>(
      CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
  ext.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
  ext.correlationId = 42;
  ext.externalId = 9001;
  auto launch = Zeroed<CUpti_ActivityAPI>(CUPTI_ACTIVITY_KIND_RUNTIME);
  launch.cbid = 211;
  launch.start = kGpuBase + 1'000;
  launch.end = kGpuBase + 1'800;
  launch.threadId = kTid;
  launch.correlationId = 42;
  auto kernel =
      Zeroed<CUpti_ActivityKernel10>(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  kernel.name = "_Z6matmulPKfS0_Pfi";
  kernel.start = kGpuBase + 4'000;
  kernel.end = kGpuBase + 24'000;
  kernel.deviceId = 0;
  kernel.streamId = 7;
  kernel.correlationId = 42;
  kernel.gridX = 64;
  kernel.blockX = 256;
  tracer->PopExternalCorrelation();
  auto copy_call = launch;
  copy_call.cbid = 41;
  copy_call.start = kGpuBase + 30'000;
  copy_call.end = kGpuBase + 31'000;
  copy_call.correlationId = 43;
  auto copy = Zeroed<CUpti_ActivityMemcpy6>(CUPTI_ACTIVITY_KIND_MEMCPY);
  copy.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH;
  copy.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  copy.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_PINNED;
  copy.bytes = 1 << 20;
  copy.start = kGpuBase + 32'000;
  copy.end = kGpuBase + 40'000;
  copy.streamId = 7;
  copy.correlationId = 43;
  fake->QueueRecord(ext);
  fake->QueueRecord(launch);
  fake->QueueRecord(kernel);
  fake->QueueRecord(copy_call);
  fake->QueueRecord(copy);
  tracer->Stop();
  ASSERT_EQ(sink.batch().events_size(), 5);

  // 2. Stream it to the collector like a probe.
  CollectorProcess collector;
  ASSERT_TRUE(collector.Start(TmpDir())) << "collector did not start";
  auto channel = grpc::CreateChannel("unix:" + collector.socket(),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::ProbeService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(20));
  auto stream = stub->Connect(&context);
  ASSERT_NE(stream, nullptr);
  timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  v1::ClockPair clock;
  clock.set_monotonic_ns(kMonoBase);
  clock.set_realtime_ns(int64_t{rt.tv_sec} * 1'000'000'000 + rt.tv_nsec);
  v1::ProbeMessage msg;
  v1::Hello* hello = msg.mutable_hello();
  hello->set_protocol_version(1);
  hello->set_pid(kPid);
  hello->set_process_name("synthetic-cupti");
  hello->set_rank(-1);
  hello->set_local_rank(-1);
  hello->set_world_size(-1);
  *hello->mutable_clock() = clock;
  ASSERT_TRUE(stream->Write(msg));
  msg.Clear();
  v1::CaptureStarted* started = msg.mutable_capture_started();
  started->set_capture_id("gpu-e2e");
  started->set_origin(v1::CAPTURE_ORIGIN_COMMAND);
  started->set_first_step(1);
  started->set_start_ns(kMonoBase);
  *started->mutable_clock() = clock;
  ASSERT_TRUE(stream->Write(msg));
  msg.Clear();
  *msg.mutable_batch() = sink.batch();
  msg.mutable_batch()->set_capture_id("gpu-e2e");
  msg.mutable_batch()->set_sequence(0);
  v1::ThreadInfo* thread = msg.mutable_batch()->add_threads();
  thread->set_tid(kTid);
  ASSERT_TRUE(stream->Write(msg));
  msg.Clear();
  v1::CaptureFinished* finished = msg.mutable_capture_finished();
  finished->set_capture_id("gpu-e2e");
  finished->set_last_step(1);
  finished->set_end_ns(kMonoBase + 100'000);
  finished->set_events_recorded(5);
  ASSERT_TRUE(stream->Write(msg));
  stream->WritesDone();
  v1::CollectorCommand command;
  while (stream->Read(&command)) {
  }
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();

  // 3. The trace.
  const std::string path =
      collector.trace_dir() + "/trace" + std::to_string(kPid) + ".json";
  std::string text;
  for (int i = 0; i < 200 && !ReadFile(path, &text); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(text.empty()) << "no trace at " << path;
  json trace = json::parse(text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(trace.is_discarded()) << text;

  std::map<std::string, json> by_name;  // "X" events.
  std::map<uint64_t, std::string> thread_names;
  std::vector<json> flows;
  for (const json& e : trace["traceEvents"]) {
    const std::string ph = e.value("ph", "");
    if (ph == "X") by_name[e.value("name", "")] = e;
    if (ph == "M" && e.value("name", "") == "thread_name") {
      thread_names[e["tid"].get<uint64_t>()] = e["args"]["name"];
    }
    if (ph == "s" || ph == "f") flows.push_back(e);
  }
  ASSERT_TRUE(by_name.count("matmul(float const*, float const*, float*, int)"))
      << text;
  const json k = by_name["matmul(float const*, float const*, float*, int)"];
  const json l = by_name["cudaLaunchKernel"];
  const json op = by_name["aten::mm"];
  const json m = by_name["Memcpy DtoH (Device -> Pinned)"];
  ASSERT_FALSE(l.is_null()) << text;
  ASSERT_FALSE(op.is_null()) << text;
  ASSERT_FALSE(m.is_null()) << text;
  // GPU work on the stream's track, API calls on the CPU thread.
  EXPECT_EQ(thread_names[k["tid"].get<uint64_t>()], "GPU 0 stream 7");
  EXPECT_EQ(m["tid"], k["tid"]);
  EXPECT_EQ(l["tid"].get<uint64_t>(), kTid);
  // Kernel attributed to the operator; correlation shown.
  EXPECT_EQ(k["args"]["op"], "aten::mm") << k.dump();
  EXPECT_EQ(k["args"]["correlation"], 42) << k.dump();
  EXPECT_EQ(k["args"]["External id"], 9001) << k.dump();
  // Timeline: GPU ts converted onto the probe clock (launch 1 us after the
  // capture start, kernel 4 us, 20 us long).
  const double t0 = op["ts"].get<double>() - 0.5;  // op at +0.5 us.
  EXPECT_NEAR(l["ts"].get<double>() - t0, 1.0, 1e-6);
  EXPECT_NEAR(k["ts"].get<double>() - t0, 4.0, 1e-6);
  EXPECT_NEAR(k["dur"].get<double>(), 20.0, 1e-6);
  EXPECT_NEAR(m["ts"].get<double>() - t0, 32.0, 1e-6);
  // Flows: launch -> kernel (ac2g) and operator -> kernel (op2g).
  auto find_flow = [&](const std::string& cat, const std::string& ph,
                       const json& at) -> const json* {
    for (const json& f : flows) {
      if (f["cat"] == cat && f["ph"] == ph && f["tid"] == at["tid"] &&
          f["ts"] == at["ts"]) {
        return &f;
      }
    }
    return nullptr;
  };
  const json* ac_s = find_flow("ac2g", "s", l);
  const json* ac_f = find_flow("ac2g", "f", k);
  ASSERT_NE(ac_s, nullptr) << text;
  ASSERT_NE(ac_f, nullptr) << text;
  EXPECT_EQ((*ac_s)["id"], (*ac_f)["id"]);
  const json* op_s = find_flow("op2g", "s", op);
  const json* op_f = find_flow("op2g", "f", k);
  ASSERT_NE(op_s, nullptr) << text;
  ASSERT_NE(op_f, nullptr) << text;
  EXPECT_EQ((*op_s)["id"], (*op_f)["id"]);
  // The copy's launch flows to the copy too.
  const json* copy_s = find_flow("ac2g", "s", by_name["cudaMemcpyAsync"]);
  const json* copy_f = find_flow("ac2g", "f", m);
  ASSERT_NE(copy_s, nullptr);
  ASSERT_NE(copy_f, nullptr);
  EXPECT_EQ((*copy_s)["id"], (*copy_f)["id"]);
}

}  // namespace
}  // namespace vllm_profiler::probe
