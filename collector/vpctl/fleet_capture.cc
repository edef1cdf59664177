// `vpctl -n NS -l SEL capture --steps N -o DIR`: one synchronized capture
// on every selected pod, one trace per pod, and the merged timeline.
//
// Every collector is asked to start at the first step boundary after one
// wall-clock instant T (now + --lead-ms, default 2 s), given on each pod's
// clock (T + the pod's estimated offset), with one capture group id. Each
// pod's trace is then awaited (GetStatus polls, which survive a restarted
// port-forward), fetched to DIR/<pod>.json, annotated with the pod's node
// and clock estimate, and all are merged into DIR/merged.json.
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collector/vpctl/fleet.h"
#include "collector/vpctl/fleet_commands.h"
#include "collector/vpctl/format.h"
#include "collector/vpctl/merge.h"
#include "common/mutex.h"

namespace vllm_profiler::collector::vpctl {
namespace {

void Say(const std::string& line) {
  std::fprintf(stderr, "vpctl: %s\n", line.c_str());
}

struct Plan {
  v1::CaptureConfig config;  // Without start_at_unix_ns.
  int64_t start_at_ns = 0;   // T on vpctl's clock.
  absl::Duration timeout;
  std::string out_dir;
};

struct PodResult {
  std::string file;
  v1::TraceInfo trace;
  std::string error;
};

absl::StatusOr<Plan> PlanFromArgs(const ParsedArgs& a) {
  Plan p;
  absl::StatusOr<uint64_t> steps = a.GetUint("steps", 0);
  absl::StatusOr<uint64_t> after = a.GetUint("start-after", 0);
  absl::StatusOr<uint64_t> duration = a.GetUint("duration-ms", 0);
  absl::StatusOr<uint64_t> timeout = a.GetUint("timeout-ms", 120000);
  absl::StatusOr<uint64_t> lead = a.GetUint("lead-ms", 2000);
  for (const auto* s : {&steps, &after, &duration, &timeout, &lead}) {
    if (!s->ok()) return s->status();
  }
  if (*steps == 0 && *duration == 0) {
    return absl::InvalidArgumentError(
        "capture needs --steps N or --duration-ms N");
  }
  if (a.Has("pids")) {
    return absl::InvalidArgumentError(
        "--pids selects processes of one collector; with a pod selection "
        "every probe of every selected pod captures");
  }
  if (!a.Has("o")) {
    return absl::InvalidArgumentError(
        "a capture on several pods needs -o DIR (one trace per pod, and "
        "merged.json)");
  }
  p.config.set_num_steps(static_cast<uint32_t>(*steps));
  p.config.set_start_after_steps(static_cast<uint32_t>(*after));
  p.config.set_duration_ms(static_cast<uint32_t>(*duration));
  p.config.set_record_shapes(!a.Has("no-shapes"));
  p.config.set_gpu_activity(!a.Has("no-gpu"));
  p.config.set_cpu_ops(true);
  absl::BitGen gen;
  p.config.set_group_id(
      absl::StrFormat("fleet-%d-%06x", absl::ToUnixMillis(absl::Now()),
                      absl::Uniform<uint32_t>(gen, 0, 1 << 24)));
  p.start_at_ns = absl::GetCurrentTimeNanos() +
                  absl::ToInt64Nanoseconds(absl::Milliseconds(*lead));
  p.timeout = absl::Milliseconds(*timeout);
  p.out_dir = a.Get("o");
  return p;
}

// Polls the collector until capture `id` is finalized; returns its trace id.
absl::StatusOr<std::string> AwaitTrace(FleetMember& m, const std::string& id,
                                       absl::Time deadline) {
  while (true) {
    absl::StatusOr<v1::GetStatusResponse> s = m.Call<v1::GetStatusResponse>(
        [](TraceClient& c) { return c.Status(); });
    if (!s.ok()) return s.status();
    for (const v1::CaptureStatus& c : s->captures()) {
      if (c.capture_id() != id || !c.finished()) continue;
      if (c.trace_id().empty()) {
        return absl::InternalError(
            absl::StrCat("capture ", id, " wrote no trace: ",
                         c.error().empty() ? "no reason given" : c.error()));
      }
      return c.trace_id();
    }
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "capture ", id, " did not finish in time (--timeout-ms)"));
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

absl::Status CaptureOne(FleetMember& m, const Plan& plan, PodResult* out) {
  v1::StartCaptureRequest req;
  *req.mutable_config() = plan.config;
  req.mutable_config()->set_start_at_unix_ns(plan.start_at_ns +
                                             m.clock().offset_ns.value_or(0));
  absl::StatusOr<v1::StartCaptureResponse> r = m.Call<v1::StartCaptureResponse>(
      [&](TraceClient& c) { return c.StartCapture(req, absl::Seconds(10)); });
  if (!r.ok()) {
    return absl::Status(r.status().code(),
                        absl::StrCat("the collector refused the capture: ",
                                     r.status().message()));
  }
  absl::StatusOr<std::string> id =
      AwaitTrace(m, r->capture_id(), absl::Now() + plan.timeout);
  if (!id.ok()) return id.status();
  out->file =
      (std::filesystem::path(plan.out_dir) / (m.pod().name + ".json")).string();
  absl::StatusOr<uint64_t> bytes =
      m.Call<uint64_t>([&](TraceClient& c) { return c.Fetch(*id, out->file); });
  if (!bytes.ok()) return bytes.status();
  out->trace.set_id(*id);
  out->trace.set_size_bytes(*bytes);
  FleetInfo info;
  info.pod = m.pod().name;
  info.ns = m.pod().ns;
  info.node = m.pod().node;
  info.instance = m.pod().instance;
  info.clock_offset_ns = m.clock().offset_ns;
  info.clock_uncertainty_ns = m.clock().uncertainty_ns;
  return AnnotateTraceFile(out->file, info);
}

int Report(const Plan& plan, const std::map<std::string, PodResult>& results) {
  std::vector<std::string> files;
  int failed = 0;
  for (const auto& [pod, r] : results) {
    if (!r.error.empty()) {
      Say(absl::StrCat("pod ", pod, ": ", r.error));
      ++failed;
      continue;
    }
    std::printf("%s: trace %s (%s) -> %s\n", pod.c_str(), r.trace.id().c_str(),
                HumanBytes(r.trace.size_bytes()).c_str(), r.file.c_str());
    files.push_back(r.file);
  }
  if (files.empty()) {
    Say("no pod produced a trace");
    return 1;
  }
  MergeOptions options;
  options.min_inputs = 1;
  const std::string merged =
      (std::filesystem::path(plan.out_dir) / "merged.json").string();
  absl::StatusOr<int> n = MergeTraceFiles(files, merged, options);
  if (!n.ok()) {
    Say(absl::StrCat("merge: ", n.status().message()));
    return 1;
  }
  std::printf("merged %zu pod(s), %d processes -> %s\n", files.size(), *n,
              merged.c_str());
  return failed == 0 ? 0 : 1;
}

}  // namespace

absl::Status CheckFleetCaptureArgs(const ParsedArgs& a) {
  return PlanFromArgs(a).status();
}

int FleetCapture(Fleet& fleet, const ParsedArgs& a) {
  absl::StatusOr<Plan> plan = PlanFromArgs(a);
  if (!plan.ok()) {
    Say(std::string(plan.status().message()));
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(plan->out_dir, ec);
  if (ec) {
    Say(absl::StrCat("cannot create ", plan->out_dir, ": ", ec.message()));
    return 1;
  }
  std::printf(
      "capture group %s: %zu pod(s) start at %s UTC\n",
      plan->config.group_id().c_str(), fleet.members().size(),
      absl::FormatTime("%H:%M:%E3S", absl::FromUnixNanos(plan->start_at_ns),
                       absl::UTCTimeZone())
          .c_str());
  std::fflush(stdout);
  Mutex mu;
  std::map<std::string, PodResult> results;
  fleet.ForEach([&](FleetMember& m) {
    PodResult r;
    if (absl::Status s = CaptureOne(m, *plan, &r); !s.ok()) {
      r.error = std::string(s.message());
    }
    MutexLock lock(&mu);
    results[m.pod().name] = std::move(r);
  });
  return Report(*plan, results);
}

}  // namespace vllm_profiler::collector::vpctl
