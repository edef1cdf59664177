// vpctl: command-line client of the vllm-profiler collector (TraceService
// over gRPC), and `vpctl run` to profile a command locally.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "collector/vpctl/args.h"
#include "collector/vpctl/fleet_commands.h"
#include "collector/vpctl/format.h"
#include "collector/vpctl/local_run.h"
#include "collector/vpctl/top.h"
#include "collector/vpctl/trace_client.h"

namespace vllm_profiler::collector::vpctl {
namespace {

constexpr char kUsage[] = R"(usage: vpctl [--addr HOST:PORT] COMMAND [options]
       vpctl [--context C] -n NS (-l SELECTOR | --pod P ...) [--max-pods 16]
             (status | list | capture ... -o DIR)

Talks to a vllm-profiler collector's gRPC TraceService (default
127.0.0.1:9470; in a cluster: kubectl port-forward pod/POD 9470), or with
a pod selection to the collectors of every selected pod at once, through
one kubectl port-forward each (kubectl from PATH, --kubectl or
$VPCTL_KUBECTL). A fleet capture starts on every pod at the first step
after one instant (--lead-ms 2000 ahead) and writes DIR/<pod>.json and
DIR/merged.json (one timeline).

commands:
  list                         traces on the collector
  fetch ID [-o FILE]           download a trace (FILE ending in .gz: gzip;
                               "-": stdout; default ID.json)
  capture --steps N [--start-after N] [--duration-ms N] [--pids A,B]
          [--no-shapes] [--no-gpu] [--wait] [--timeout-ms N] [-o FILE]
                               start a capture on connected probes; --wait
                               (implied by -o) waits for the trace
  status                       probes, captures in progress, disk use
  top                          live step health per process (flight
                               recorder): steps/s, tokens/s, p50/p99,
                               slow steps; refreshes until Ctrl-C
  trigger [--reason TEXT] [--wait] [--timeout-ms N] [-o FILE]
                               a flight-recorder trace now: the last steps
                               of every process and the next ones in full
  delete ID                    delete a trace
  merge A.json B.json ... -o FILE [--force]
                               one timeline from several pods' traces
  run [--start-step N] [--steps N] [--duration-ms N] [--no-shapes] [--no-gpu]
      [--flight steps|gpu|off] [--trigger-slow-step-ms MS]
      [--trigger-factor F] [--trigger-window N] [--trigger-pre-steps N]
      [--trigger-post-steps N] [--trigger-cooldown D] [--trigger-on-error B]
      [--collector PATH] [--probe-dir DIR] [-o FILE] -- COMMAND [ARGS...]
                               profile COMMAND locally with a private
                               collector, then fetch and summarize the trace
)";

void PrintError(const absl::Status& s) {
  if (absl::IsUnavailable(s)) {
    std::fprintf(stderr, "vpctl: %s\n", std::string(s.message()).c_str());
  } else {
    std::fprintf(stderr, "vpctl: %s: %s\n",
                 absl::StatusCodeToString(s.code()).c_str(),
                 std::string(s.message()).c_str());
  }
}

std::map<std::string, ArgSpec> Specs() {
  std::map<std::string, ArgSpec> s;
  s["list"];
  s["status"];
  s["top"].value_options = {"interval-ms"};
  s["trigger"].value_options = {"reason", "timeout-ms", "o"};
  s["trigger"].bool_options = {"wait"};
  s["delete"];
  s["help"];
  s["fetch"].value_options = {"o"};
  s["capture"].value_options = {"steps", "start-after", "duration-ms",
                                "pids",  "timeout-ms",  "lead-ms",
                                "o"};
  s["capture"].bool_options = {"no-shapes", "no-gpu", "wait"};
  s["run"].value_options = {"start-step",
                            "steps",
                            "duration-ms",
                            "collector",
                            "probe-dir",
                            "o",
                            "flight",
                            "trigger-slow-step-ms",
                            "trigger-factor",
                            "trigger-window",
                            "trigger-pre-steps",
                            "trigger-post-steps",
                            "trigger-cooldown",
                            "trigger-on-error"};
  s["run"].bool_options = {"no-shapes", "no-gpu", "no-summary"};
  s["run"].allow_trailing = true;
  s["merge"].value_options = {"o"};
  s["merge"].bool_options = {"force"};
  return s;
}

absl::Status NeedPositional(const ParsedArgs& a, size_t n, const char* what) {
  if (a.positional.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("'vpctl ", a.command, "' needs ", what));
  }
  return absl::OkStatus();
}

int Fetch(TraceClient& client, const std::string& id, const std::string& out) {
  absl::StatusOr<uint64_t> bytes = client.Fetch(id, out);
  if (!bytes.ok()) {
    PrintError(bytes.status());
    return 1;
  }
  if (out != "-") {
    std::fprintf(stderr, "vpctl: wrote %s (%s)\n", out.c_str(),
                 HumanBytes(*bytes).c_str());
  }
  return 0;
}

// After a started capture or trigger: where the trace is, or (with --wait
// or -o) the trace itself, fetched to -o.
int ReportTrace(TraceClient& client, const ParsedArgs& a, bool wait,
                uint64_t timeout_ms, bool has_trace,
                const v1::TraceInfo& trace) {
  if (!wait) {
    std::printf("see `vpctl list` for the trace once it is written\n");
    return 0;
  }
  if (!has_trace || trace.id().empty()) {
    std::fprintf(stderr, "vpctl: the trace was not ready within %llu ms\n",
                 static_cast<unsigned long long>(timeout_ms));
    return 1;
  }
  std::printf("trace %s\n", FormatTraceInfo(trace).c_str());
  if (a.Has("o")) return Fetch(client, trace.id(), a.Get("o"));
  return 0;
}

// The RPC's deadline: a waiting call lasts as long as the collector may
// wait for the trace, plus slack for the answer.
absl::Duration RpcDeadline(bool wait, uint64_t timeout_ms) {
  return wait ? absl::Milliseconds(timeout_ms) + absl::Seconds(10)
              : absl::Seconds(10);
}

int Capture(TraceClient& client, const ParsedArgs& a) {
  v1::StartCaptureRequest req;
  v1::CaptureConfig* c = req.mutable_config();
  absl::StatusOr<uint64_t> steps = a.GetUint("steps", 0);
  absl::StatusOr<uint64_t> after = a.GetUint("start-after", 0);
  absl::StatusOr<uint64_t> duration = a.GetUint("duration-ms", 0);
  absl::StatusOr<uint64_t> timeout = a.GetUint("timeout-ms", 120000);
  for (const auto* s : {&steps, &after, &duration, &timeout}) {
    if (!s->ok()) {
      PrintError(s->status());
      return 2;
    }
  }
  if (*steps == 0 && *duration == 0) {
    std::fprintf(stderr, "vpctl: capture needs --steps N or --duration-ms N\n");
    return 2;
  }
  c->set_num_steps(static_cast<uint32_t>(*steps));
  c->set_start_after_steps(static_cast<uint32_t>(*after));
  c->set_duration_ms(static_cast<uint32_t>(*duration));
  c->set_record_shapes(!a.Has("no-shapes"));
  c->set_gpu_activity(!a.Has("no-gpu"));
  c->set_cpu_ops(true);
  if (a.Has("pids")) {
    for (absl::string_view p :
         absl::StrSplit(a.Get("pids"), ',', absl::SkipEmpty())) {
      int64_t pid;
      if (!absl::SimpleAtoi(p, &pid) || pid <= 0) {
        std::fprintf(stderr, "vpctl: --pids: '%s' is not a pid\n",
                     std::string(p).c_str());
        return 2;
      }
      req.add_pids(pid);
    }
  }
  const bool wait = a.Has("wait") || a.Has("o");
  req.set_wait(wait);
  req.set_timeout_ms(static_cast<uint32_t>(*timeout));
  absl::StatusOr<v1::StartCaptureResponse> r =
      client.StartCapture(req, RpcDeadline(wait, *timeout));
  if (!r.ok()) {
    PrintError(r.status());
    return 1;
  }
  std::printf("capture %s started on pids %s\n", r->capture_id().c_str(),
              absl::StrJoin(r->pids(), ",").c_str());
  return ReportTrace(client, a, wait, *timeout, r->has_trace(), r->trace());
}

int Trigger(TraceClient& client, const ParsedArgs& a) {
  absl::StatusOr<uint64_t> timeout = a.GetUint("timeout-ms", 120000);
  if (!timeout.ok()) {
    PrintError(timeout.status());
    return 2;
  }
  v1::TriggerRequest req;
  req.set_reason(a.Get("reason"));
  const bool wait = a.Has("wait") || a.Has("o");
  req.set_wait(wait);
  req.set_timeout_ms(static_cast<uint32_t>(*timeout));
  absl::StatusOr<v1::TriggerResponse> r =
      client.Trigger(req, RpcDeadline(wait, *timeout));
  if (!r.ok()) {
    PrintError(r.status());
    return 1;
  }
  std::printf("triggered capture %s on pids %s\n", r->capture_id().c_str(),
              absl::StrJoin(r->pids(), ",").c_str());
  return ReportTrace(client, a, wait, *timeout, r->has_trace(), r->trace());
}

int Run(const ParsedArgs& a) {
  LocalRunOptions o;
  o.command = a.trailing;
  o.collector = a.Get("collector");
  o.probe_dir = a.Get("probe-dir");
  o.output = a.Get("o");
  o.print_summary = !a.Has("no-summary");
  for (const auto& [flag, env] :
       std::vector<std::pair<std::string, std::string>>{
           {"start-step", "VLLM_PROFILER_START_STEP"},
           {"steps", "VLLM_PROFILER_NUM_STEPS"},
           {"duration-ms", "VLLM_PROFILER_DURATION_MS"}}) {
    absl::StatusOr<uint64_t> v = a.GetUint(flag, 0);
    if (!v.ok()) {
      PrintError(v.status());
      return 2;
    }
    if (a.Has(flag)) o.env.emplace_back(env, std::to_string(*v));
  }
  if (a.Has("no-shapes"))
    o.env.emplace_back("VLLM_PROFILER_RECORD_SHAPES", "0");
  if (a.Has("no-gpu")) o.env.emplace_back("VLLM_PROFILER_GPU", "0");
  if (a.Has("flight"))
    o.env.emplace_back("VLLM_PROFILER_FLIGHT", a.Get("flight"));
  // Passed through: the collector checks them and says what is wrong.
  for (const char* flag :
       {"trigger-slow-step-ms", "trigger-factor", "trigger-window",
        "trigger-pre-steps", "trigger-post-steps", "trigger-cooldown",
        "trigger-on-error"}) {
    if (!a.Has(flag)) continue;
    std::string name = flag;
    std::replace(name.begin(), name.end(), '-', '_');
    o.collector_args.push_back(absl::StrCat("--", name, "=", a.Get(flag)));
  }
  return RunLocal(o);
}

// Prints `format(*r)`, or the error.
template <typename Response>
int PrintResponse(const absl::StatusOr<Response>& r,
                  std::string (*format)(const Response&)) {
  if (!r.ok()) {
    PrintError(r.status());
    return 1;
  }
  std::printf("%s", format(*r).c_str());
  return 0;
}

int Top(TraceClient& client, const ParsedArgs& a) {
  absl::StatusOr<uint64_t> interval = a.GetUint("interval-ms", 1000);
  if (!interval.ok()) {
    PrintError(interval.status());
    return 2;
  }
  TopOptions o;
  o.terminal = ::isatty(STDOUT_FILENO) == 1;
  o.interval = absl::Milliseconds(std::max<uint64_t>(100, *interval));
  return RunTop([&client] { return client.Status(); }, o,
                [](const std::string& f) {
                  std::fwrite(f.data(), 1, f.size(), stdout);
                  std::fflush(stdout);
                });
}

int FetchCommand(TraceClient& client, const ParsedArgs& a) {
  if (absl::Status s = NeedPositional(a, 1, "a trace ID"); !s.ok()) {
    PrintError(s);
    return 2;
  }
  const std::string& id = a.positional[0];
  return Fetch(client, id, a.Get("o", id + ".json"));
}

int Delete(TraceClient& client, const ParsedArgs& a) {
  if (absl::Status s = NeedPositional(a, 1, "a trace ID"); !s.ok()) {
    PrintError(s);
    return 2;
  }
  absl::Status s = client.Delete(a.positional[0]);
  if (!s.ok()) {
    PrintError(s);
    return 1;
  }
  std::printf("deleted %s\n", a.positional[0].c_str());
  return 0;
}

// The commands that talk to one collector (--addr).
int CollectorCommand(const ParsedArgs& a) {
  TraceClient client(
      TraceClient::Options{a.Get("addr", "127.0.0.1:9470"), absl::Seconds(10)});
  if (a.command == "list") return PrintResponse(client.List(), FormatTraceList);
  if (a.command == "status") {
    return PrintResponse(client.Status(), FormatStatus);
  }
  if (a.command == "top") return Top(client, a);
  if (a.command == "trigger") return Trigger(client, a);
  if (a.command == "fetch") return FetchCommand(client, a);
  if (a.command == "delete") return Delete(client, a);
  if (a.command == "capture") {
    if (absl::Status s = NeedPositional(a, 0, "no positional arguments");
        !s.ok()) {
      PrintError(s);
      return 2;
    }
    return Capture(client, a);
  }
  std::fprintf(stderr, "%s", kUsage);
  return 2;
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, Specs());
  if (!parsed.ok()) {
    std::fprintf(stderr, "vpctl: %s\n\n%s",
                 std::string(parsed.status().message()).c_str(), kUsage);
    return 2;
  }
  const ParsedArgs& a = *parsed;
  if (a.command.empty() || a.command == "help" || a.Has("help")) {
    std::printf("%s", kUsage);
    return a.command.empty() && !a.Has("help") ? 2 : 0;
  }
  if (a.command == "run") return Run(a);
  if (a.command == "merge") return MergeCommand(a);
  // A pod selection sends the command to every selected pod's collector.
  if (a.Has("n") || a.Has("l") || a.Has("pod") || a.Has("context")) {
    return FleetCommand(a);
  }
  return CollectorCommand(a);
}

}  // namespace
}  // namespace vllm_profiler::collector::vpctl

int main(int argc, char** argv) {
  return vllm_profiler::collector::vpctl::Main(argc, argv);
}
