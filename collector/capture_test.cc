#include "collector/capture.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "collector/probe_messages_testing.h"
#include "common/filesystem.h"
#include "common/filesystem_testing.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector {
namespace {

using nlohmann::json;

std::string TmpPath(const std::string& name) {
  return std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Feeds `m` to the stream (must be accepted).
void Accept(ProbeStream& s, const v1::ProbeMessage& m) {
  absl::Status st = s.Accept(m, m.ByteSizeLong());
  ASSERT_TRUE(st.ok()) << st;
}

// Two ranks: pid 20 (rank 1, its monotonic clock 5 us ahead) and pid 10
// (rank 0), both recording the full batch; pid 10 finishes, pid 20
// finishes or disconnects. With `signatures`, pid 20 sends its operators'
// inputs as input signatures (the trace must not change).
std::string WriteTwoRankTrace(const std::string& name, bool disconnect,
                              CaptureResult* result, bool signatures = false) {
  std::string path = TmpPath(name);
  Capture capture("window-1", v1::CAPTURE_ORIGIN_WINDOW,
                  testutil::Started("x").capture_started().config(), {});
  capture.SetFile(Filesystem::Default()->NewWritableFile(path));
  ProbeStream a, b;
  Accept(a, testutil::Hello(10, 0));
  Accept(b, testutil::Hello(20, 1, /*clock_skew_ns=*/5000));
  v1::ProbeMessage sa = testutil::Started("w10");
  v1::ProbeMessage sb = testutil::Started("w20");
  sb.mutable_capture_started()->set_start_ns(testutil::kMonoBase + 5000);
  Accept(a, sa);
  Accept(b, sb);
  capture.Join(a, sa.capture_started(), absl::UnixEpoch());
  capture.Join(b, sb.capture_started(), absl::UnixEpoch());
  v1::ProbeMessage ba = testutil::FullBatch("w10", 0);
  v1::ProbeMessage bb = testutil::FullBatch("w20", 0, true, 5000);
  if (signatures) bb = testutil::WithSignatures(bb);
  Accept(a, ba);
  Accept(b, bb);
  capture.WriteBatch(a, ba.batch());
  capture.WriteBatch(b, bb.batch());
  EXPECT_FALSE(capture.AllProcessesDone());
  capture.FinishProcess(10, testutil::Finished("w10").capture_finished());
  if (disconnect) {
    capture.DisconnectProcess(20, "stream cancelled");
  } else {
    capture.FinishProcess(20, testutil::Finished("w20").capture_finished());
  }
  EXPECT_TRUE(capture.AllProcessesDone());
  *result = capture.Finish();
  return ReadAll(path);
}

TEST(Capture, MatchesGoldenFile) {
  CaptureResult r;
  std::string out = WriteTwoRankTrace("golden.json", false, &r);
  ASSERT_TRUE(r.status.ok()) << r.status;
  // Nothing in the output depends on the run (pids, clocks and names come
  // from the fake probes); the collector version is the only unstable field.
  const char* update = std::getenv("VP_UPDATE_GOLDEN");
  if (update != nullptr) {
    std::ofstream(update, std::ios::binary) << out;
  }
  std::string golden = ReadAll("collector/testdata/capture_golden.json");
  EXPECT_EQ(out, golden)
      << "regenerate with VP_UPDATE_GOLDEN=$PWD/collector/testdata/"
         "capture_golden.json bazel test --test_env=VP_UPDATE_GOLDEN ...";
}

TEST(Capture, InputSignaturesWriteTheSameTraceAsInlineInputs) {
  CaptureResult r;
  std::string out = WriteTwoRankTrace("signatures.json", false, &r,
                                      /*signatures=*/true);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(out, ReadAll("collector/testdata/capture_golden.json"));
}

TEST(Capture, StructureAsAUserSeesIt) {
  CaptureResult r;
  json j = json::parse(WriteTwoRankTrace("structure.json", false, &r));
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.pids, (std::vector<int64_t>{10, 20}));
  const json& events = j["traceEvents"];
  EXPECT_EQ(j["displayTimeUnit"], "ns");

  std::map<std::string, json> process_names, thread_names;
  std::vector<json> flows;
  std::map<std::pair<int64_t, std::string>, json> spans;  // (pid, name)
  for (const json& e : events) {
    if (e["ph"] == "M" && e["name"] == "process_name") {
      process_names[std::to_string(e["pid"].get<int64_t>())] =
          e["args"]["name"];
    } else if (e["ph"] == "M" && e["name"] == "thread_name") {
      thread_names[std::to_string(e["pid"].get<int64_t>()) + "/" +
                   std::to_string(e["tid"].get<int64_t>())] = e["args"]["name"];
    } else if (e["ph"] == "s" || e["ph"] == "f") {
      flows.push_back(e);
    } else {
      spans[{e["pid"].get<int64_t>(), e["name"].get<std::string>()}] = e;
    }
  }
  EXPECT_EQ(process_names["10"],
            "VllmWorker-0 \xc2\xb7 rank 0 \xc2\xb7 pod vllm-0");
  EXPECT_EQ(process_names["20"],
            "VllmWorker-1 \xc2\xb7 rank 1 \xc2\xb7 pod vllm-0");
  EXPECT_EQ(thread_names["10/100"], "MainThread");
  EXPECT_EQ(thread_names["10/1000000007"], "GPU 0 stream 7");

  // Both processes on one timeline: each started its capture at the same
  // wall time, so their events line up despite different monotonic clocks.
  json step10 = spans[{10, "execute_model"}];
  json step20 = spans[{20, "execute_model"}];
  EXPECT_EQ(step10["ts"], step20["ts"]);
  EXPECT_DOUBLE_EQ(step10["ts"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(step10["dur"].get<double>(), 100.0);
  EXPECT_EQ(step10["cat"], "step");
  EXPECT_EQ(step10["ph"], "X");

  // Nesting on the CPU thread: step > aten::linear > cudaLaunchKernel.
  json op = spans[{10, "aten::linear"}];
  json launch = spans[{10, "cudaLaunchKernel"}];
  auto inside = [](const json& inner, const json& outer) {
    double s = inner["ts"], d = inner["dur"], os = outer["ts"],
           od = outer["dur"];
    return inner["tid"] == outer["tid"] && s >= os && s + d <= os + od;
  };
  EXPECT_TRUE(inside(op, step10));
  EXPECT_TRUE(inside(launch, op));
  EXPECT_EQ(op["args"]["Input Dims"], json::parse("[[8,4096],[]]"));
  EXPECT_EQ(op["args"]["Input type"], json::parse("[\"float\",\"float\"]"));
  EXPECT_EQ(op["args"]["note"], "hello\n");

  // The kernel on the GPU track names its operator; a launch->kernel flow
  // and an operator->kernel flow connect them.
  json kernel = spans[{10, "ampere_sgemm_128x64_tn"}];
  EXPECT_EQ(kernel["tid"], 1000000007);
  EXPECT_EQ(kernel["cat"], "kernel");
  EXPECT_EQ(kernel["args"]["op"], "aten::linear");
  EXPECT_EQ(kernel["args"]["correlation"], 42);
  EXPECT_EQ(kernel["args"]["grid"], json::parse("[128,1,1]"));
  EXPECT_EQ(kernel["args"]["block"], json::parse("[256,1,1]"));
  std::map<std::string, std::vector<json>> by_id;
  for (const json& f : flows) {
    if (f["pid"] == 10)
      by_id[f["cat"].get<std::string>() + f["id"].dump()].push_back(f);
  }
  ASSERT_EQ(by_id.size(), 2u);
  for (auto& [id, pair] : by_id) {
    ASSERT_EQ(pair.size(), 2u) << id;
    const json& s = pair[0]["ph"] == "s" ? pair[0] : pair[1];
    const json& f = pair[0]["ph"] == "s" ? pair[1] : pair[0];
    EXPECT_EQ(f["bp"], "e");
    EXPECT_EQ(f["tid"], kernel["tid"]);
    EXPECT_EQ(f["ts"], kernel["ts"]);
    if (s["cat"] == "ac2g") {
      EXPECT_EQ(s["tid"], launch["tid"]);
      EXPECT_EQ(s["ts"], launch["ts"]);
    } else {
      EXPECT_EQ(s["cat"], "op2g");
      EXPECT_EQ(s["ts"], op["ts"]);
    }
    EXPECT_LT(s["id"].get<uint64_t>(), uint64_t{1} << 53);
  }
  // Instants, counters, memcpy.
  json marker = spans[{10, "marker \"quoted\""}];
  EXPECT_EQ(marker["ph"], "i");
  json counter = spans[{10, "gpu_memory_allocated"}];
  EXPECT_EQ(counter["ph"], "C");
  EXPECT_DOUBLE_EQ(counter["args"]["value"].get<double>(), 1.5e9);
  json copy = spans[{10, "Memcpy HtoD (Pageable -> Device)"}];
  EXPECT_EQ(copy["args"]["copy kind"], "HtoD");
  EXPECT_EQ(copy["args"]["bytes"], 4096);

  const json& meta = j["metadata"];
  EXPECT_EQ(meta["capture_id"], "window-1");
  EXPECT_EQ(meta["origin"], "window");
  EXPECT_EQ(meta["complete"], true);
  EXPECT_EQ(meta["base_time_unix_ns"], testutil::kRealBase);
  EXPECT_EQ(meta["events_received"], 20);
  EXPECT_EQ(meta["events_written"], r.events_written);
  ASSERT_EQ(meta["processes"].size(), 2u);
  EXPECT_EQ(meta["processes"][1]["pid"], 20);
  EXPECT_EQ(meta["processes"][1]["rank"], 1);
  EXPECT_EQ(meta["processes"][1]["torch_version"], "2.5.1");
  EXPECT_EQ(meta["config"]["num_steps"], 50);
}

// The probe sends CUPTI buffers and CPU chunks in no fixed order: a kernel
// that reaches the collector before its operator still gets its op2g flow
// (drawn when the operator arrives) and names the operator's external id.
// Writes one process's FullBatch with the kernel moved first; returns the
// parsed trace.
json WriteKernelFirstTrace(const std::string& name, Capture::Options options) {
  std::string path = TmpPath(name);
  Capture capture("c", v1::CAPTURE_ORIGIN_COMMAND, {}, options);
  capture.SetFile(Filesystem::Default()->NewWritableFile(path));
  ProbeStream a;
  Accept(a, testutil::Hello(10));
  v1::ProbeMessage s = testutil::Started("c", v1::CAPTURE_ORIGIN_COMMAND);
  Accept(a, s);
  capture.Join(a, s.capture_started(), absl::UnixEpoch());
  v1::ProbeMessage b = testutil::FullBatch("c", 0);
  auto* events = b.mutable_batch()->mutable_events();
  int k = 0;
  while (events->Get(k).kind() != v1::EVENT_KIND_KERNEL) ++k;
  for (; k > 0; --k) events->SwapElements(k, k - 1);
  EXPECT_EQ(events->Get(0).kind(), v1::EVENT_KIND_KERNEL);
  Accept(a, b);
  capture.WriteBatch(a, b.batch());
  capture.FinishProcess(10, testutil::Finished("c").capture_finished());
  CaptureResult r = capture.Finish();
  EXPECT_TRUE(r.status.ok()) << r.status;
  return json::parse(ReadAll(path));
}

TEST(Capture, KernelBeforeItsOperatorGetsTheOpFlow) {
  json j = WriteKernelFirstTrace("kernel_first.json", {});
  json kernel, op;
  std::vector<json> op2g;
  for (const json& e : j["traceEvents"]) {
    const std::string cat = e.value("cat", "");
    if (e["ph"] == "X" && cat == "kernel") kernel = e;
    if (e["ph"] == "X" && e["name"] == "aten::linear") op = e;
    if (cat == "op2g") op2g.push_back(e);
  }
  ASSERT_FALSE(kernel.is_null());
  ASSERT_FALSE(op.is_null());
  // Written before the operator was known: the id links it, not the name.
  EXPECT_EQ(kernel["args"]["External id"], 5);
  EXPECT_EQ(op["args"]["External id"], 5);
  EXPECT_FALSE(kernel["args"].contains("op"));
  ASSERT_EQ(op2g.size(), 2u);
  const json& s = op2g[0]["ph"] == "s" ? op2g[0] : op2g[1];
  const json& f = op2g[0]["ph"] == "s" ? op2g[1] : op2g[0];
  EXPECT_EQ(s["ph"], "s");
  EXPECT_EQ(f["ph"], "f");
  EXPECT_EQ(s["id"], f["id"]);
  EXPECT_EQ(s["tid"], op["tid"]);
  EXPECT_EQ(s["ts"], op["ts"]);
  EXPECT_EQ(f["tid"], kernel["tid"]);
  EXPECT_EQ(f["ts"], kernel["ts"]);
  EXPECT_EQ(f["bp"], "e");
  const json& p = j["metadata"]["processes"][0];
  EXPECT_EQ(p["op2g_unmatched_evicted"], 0);
  EXPECT_EQ(p["op2g_unmatched_at_end"], 0);
}

TEST(Capture, WaitingGpuEventsAreBoundedAndCounted) {
  Capture::Options options;
  options.max_pending_gpu_events = 0;
  json j = WriteKernelFirstTrace("kernel_first_capped.json", options);
  for (const json& e : j["traceEvents"]) {
    EXPECT_NE(e.value("cat", ""), "op2g") << e;
  }
  const json& p = j["metadata"]["processes"][0];
  EXPECT_EQ(p["op2g_unmatched_evicted"], 1);
  EXPECT_EQ(p["op2g_unmatched_at_end"], 0);
}

TEST(Capture, GpuEventWhoseOperatorNeverCameIsCounted) {
  std::string path = TmpPath("no_op.json");
  Capture capture("c", v1::CAPTURE_ORIGIN_COMMAND, {}, {});
  capture.SetFile(Filesystem::Default()->NewWritableFile(path));
  ProbeStream a;
  Accept(a, testutil::Hello(10));
  v1::ProbeMessage s = testutil::Started("c", v1::CAPTURE_ORIGIN_COMMAND);
  Accept(a, s);
  capture.Join(a, s.capture_started(), absl::UnixEpoch());
  v1::ProbeMessage b = testutil::FullBatch("c", 0);
  auto* events = b.mutable_batch()->mutable_events();
  for (int i = events->size() - 1; i >= 0; --i) {
    if (events->Get(i).kind() == v1::EVENT_KIND_CPU_OP) {
      events->DeleteSubrange(i, 1);
    }
  }
  Accept(a, b);
  capture.WriteBatch(a, b.batch());
  capture.FinishProcess(10, testutil::Finished("c").capture_finished());
  capture.Finish();
  json j = json::parse(ReadAll(path));
  EXPECT_EQ(j["metadata"]["processes"][0]["op2g_unmatched_at_end"], 1);
}

TEST(Capture, DisconnectMarksIncomplete) {
  CaptureResult r;
  json j = json::parse(WriteTwoRankTrace("disconnect.json", true, &r));
  EXPECT_TRUE(r.status.ok());
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(j["metadata"]["complete"], false);
  EXPECT_EQ(j["metadata"]["errors"][0],
            "pid 20 disconnected before the capture finished: stream "
            "cancelled");
  EXPECT_EQ(j["metadata"]["processes"][1]["disconnected"], true);
  // What arrived from pid 20 is in the trace.
  int from20 = 0;
  for (const json& e : j["traceEvents"])
    from20 += e["pid"] == 20 && e["ph"] == "X";
  EXPECT_EQ(from20, 8);
}

TEST(Capture, DropsMarkIncomplete) {
  std::string path = TmpPath("drops.json");
  Capture capture("c", v1::CAPTURE_ORIGIN_COMMAND, {}, {});
  capture.SetFile(Filesystem::Default()->NewWritableFile(path));
  ProbeStream a;
  Accept(a, testutil::Hello(10));
  v1::ProbeMessage s = testutil::Started("c", v1::CAPTURE_ORIGIN_COMMAND);
  Accept(a, s);
  capture.Join(a, s.capture_started(), absl::Now());
  capture.FinishProcess(
      10, testutil::Finished("c", /*dropped=*/7, /*events_recorded=*/0)
              .capture_finished());
  CaptureResult r = capture.Finish();
  EXPECT_FALSE(r.complete);
  json j = json::parse(ReadAll(path));
  EXPECT_EQ(
      j["metadata"]["processes"][0]["drops"]["events_dropped_buffer_full"], 7);
  // The reason is named, not only counted.
  const std::vector<std::string> reasons = {
      "pid 10: the probe dropped events (buffer full 7, send 0, CUPTI records "
      "0, CUPTI buffers 0)"};
  EXPECT_EQ(j["metadata"]["errors"], json(reasons));
  EXPECT_EQ(r.errors, reasons);
  EXPECT_EQ(capture.Status().error(), reasons[0]);
}

// Runs one process through a capture with batches of these sequence numbers
// and the given claim; returns the trace's metadata.
json RunClaims(const std::string& name, const std::vector<uint64_t>& seqs,
               uint64_t events_recorded, CaptureResult* r) {
  std::string path = TmpPath(name);
  Capture capture("c", v1::CAPTURE_ORIGIN_COMMAND, {}, {});
  capture.SetFile(Filesystem::Default()->NewWritableFile(path));
  ProbeStream a;
  Accept(a, testutil::Hello(10));
  v1::ProbeMessage s = testutil::Started("c", v1::CAPTURE_ORIGIN_COMMAND);
  Accept(a, s);
  capture.Join(a, s.capture_started(), absl::Now());
  for (size_t i = 0; i < seqs.size(); ++i) {
    v1::ProbeMessage b = testutil::FullBatch("c", seqs[i], i == 0);
    Accept(a, b);
    capture.WriteBatch(a, b.batch());
  }
  capture.FinishProcess(
      10, testutil::Finished("c", 0, events_recorded).capture_finished());
  *r = capture.Finish();
  return json::parse(ReadAll(path))["metadata"];
}

TEST(Capture, SequenceGapMarksIncomplete) {
  CaptureResult r;
  json meta =
      RunClaims("gap.json", {0, 1000000}, 2 * testutil::kFullBatchEvents, &r);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(meta["complete"], false);
  EXPECT_EQ(meta["errors"],
            json({"pid 10: 999999 batches missing (sequence gaps)"}));
}

TEST(Capture, ClaimThatDisagreesWithWhatArrivedMarksIncomplete) {
  CaptureResult r;
  json meta = RunClaims("claim.json", {}, ~uint64_t{0}, &r);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(meta["errors"],
            json({"pid 10: the probe sent 18446744073709551615 events, 0 "
                  "arrived"}));
  // Fewer claimed than arrived is a disagreement too.
  meta = RunClaims("claim2.json", {0, 1}, 5, &r);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(meta["errors"], json({"pid 10: the probe sent 5 events, 20 "
                                  "arrived"}));
  // What agrees is complete.
  meta = RunClaims("claim3.json", {0, 1}, 20, &r);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(meta["errors"], json::array());
}

TEST(Capture, DiskFullIsReportedAndEventsCounted) {
  FaultyFilesystem fs;
  fs.FailWritesAfter(1000);
  std::string path = TmpPath("full.json");
  Capture capture("c", v1::CAPTURE_ORIGIN_COMMAND, {}, {});
  capture.SetFile(fs.NewWritableFile(path));
  ProbeStream a;
  Accept(a, testutil::Hello(10));
  v1::ProbeMessage s = testutil::Started("c", v1::CAPTURE_ORIGIN_COMMAND);
  Accept(a, s);
  capture.Join(a, s.capture_started(), absl::Now());
  for (int i = 0; i < 2000; ++i) {
    v1::ProbeMessage b = testutil::FullBatch("c", i, i == 0);
    Accept(a, b);
    capture.WriteBatch(a, b.batch());
  }
  capture.FinishProcess(
      10, testutil::Finished("c", 0, 2000 * testutil::kFullBatchEvents)
              .capture_finished());
  CaptureResult r = capture.Finish();
  EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(std::string(r.status.message()),
            "write " + path + ": No space left on device");
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(capture.Status().error(),
            "write " + path + ": No space left on device");
}

TEST(Capture, UnwritableFileIsTheCapturesError) {
  FaultyFilesystem fs;
  fs.FailCreate(true);
  Capture capture("c", v1::CAPTURE_ORIGIN_COMMAND, {}, {});
  capture.SetFile(fs.NewWritableFile("/nowhere/x.json"));
  ProbeStream a;
  Accept(a, testutil::Hello(10));
  v1::ProbeMessage s = testutil::Started("c", v1::CAPTURE_ORIGIN_COMMAND);
  Accept(a, s);
  capture.Join(a, s.capture_started(), absl::Now());
  v1::ProbeMessage b = testutil::FullBatch("c", 0);
  Accept(a, b);
  capture.WriteBatch(a, b.batch());
  CaptureResult r = capture.Finish();
  EXPECT_FALSE(r.has_file);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(capture.Status().error(),
            "create /nowhere/x.json: Permission denied");
}

}  // namespace
}  // namespace vllm_profiler::collector
