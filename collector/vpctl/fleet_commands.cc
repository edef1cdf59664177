#include "collector/vpctl/fleet_commands.h"

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "collector/vpctl/fleet.h"
#include "collector/vpctl/format.h"
#include "collector/vpctl/merge.h"
#include "common/mutex.h"

namespace vllm_profiler::collector::vpctl {
namespace {

using Rows = std::vector<std::vector<std::string>>;

void Say(const std::string& line) {
  std::fprintf(stderr, "vpctl: %s\n", line.c_str());
}

std::string Offset(const ClockEstimate& c) {
  if (!c.offset_ns.has_value()) return "-";
  return absl::StrFormat("%+.3f ms ±%.3f", *c.offset_ns / 1e6,
                         c.uncertainty_ns / 1e6);
}

std::string Created(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

// Runs `fn` on every member in parallel and collects the rows it returns
// per pod, in pod order; failures are printed. Returns the exit code.
int Tabulate(Fleet& fleet, std::vector<std::string> header,
             const std::function<absl::StatusOr<Rows>(FleetMember&)>& fn) {
  Mutex mu;
  std::map<std::string, Rows> rows;
  std::map<std::string, std::string> errors;
  fleet.ForEach([&](FleetMember& m) {
    absl::StatusOr<Rows> r = fn(m);
    MutexLock lock(&mu);
    if (r.ok()) {
      rows[m.pod().name] = std::move(*r);
    } else {
      errors[m.pod().name] = std::string(r.status().message());
    }
  });
  Rows table = {std::move(header)};
  for (auto& [pod, r] : rows) table.insert(table.end(), r.begin(), r.end());
  std::printf("%s", Table(table).c_str());
  for (const auto& [pod, e] : errors) Say(absl::StrCat("pod ", pod, ": ", e));
  return errors.empty() ? 0 : 1;
}

int FleetStatus(Fleet& fleet) {
  return Tabulate(
      fleet,
      {"POD", "NODE", "PROBES", "CAPTURING", "TRACES", "DISK", "CLOCK OFFSET",
       "COLLECTOR"},
      [](FleetMember& m) -> absl::StatusOr<Rows> {
        absl::StatusOr<v1::GetStatusResponse> s = m.Call<v1::GetStatusResponse>(
            [](TraceClient& c) { return c.Status(); });
        if (!s.ok()) return s.status();
        int capturing = 0;
        for (const v1::CaptureStatus& c : s->captures()) {
          if (!c.finished()) ++capturing;
        }
        return Rows{{m.pod().name, m.pod().node.empty() ? "-" : m.pod().node,
                     std::to_string(s->probes_size()),
                     std::to_string(capturing),
                     std::to_string(s->disk().trace_count()),
                     HumanBytes(s->disk().bytes_used()), Offset(m.clock()),
                     s->collector_version()}};
      });
}

int FleetList(Fleet& fleet) {
  return Tabulate(
      fleet,
      {"POD", "ID", "SIZE", "PROCESSES", "EVENTS", "COMPLETE", "CREATED (UTC)"},
      [](FleetMember& m) -> absl::StatusOr<Rows> {
        absl::StatusOr<v1::ListTracesResponse> l =
            m.Call<v1::ListTracesResponse>(
                [](TraceClient& c) { return c.List(); });
        if (!l.ok()) return l.status();
        Rows rows;
        for (const v1::TraceInfo& t : l->traces()) {
          rows.push_back(
              {m.pod().name, t.id(), HumanBytes(t.size_bytes()),
               std::to_string(t.pids_size()), std::to_string(t.num_events()),
               t.complete() ? "yes" : "no", Created(t.created_unix_ms())});
        }
        if (rows.empty())
          rows.push_back({m.pod().name, "-", "", "", "", "", ""});
        return rows;
      });
}

}  // namespace

int MergeCommand(const ParsedArgs& a) {
  if (a.positional.size() < 2 || !a.Has("o")) {
    Say("usage: vpctl merge A.json B.json ... -o merged.json [--force]");
    return 2;
  }
  MergeOptions options;
  options.force = a.Has("force");
  absl::StatusOr<int> n = MergeTraceFiles(a.positional, a.Get("o"), options);
  if (!n.ok()) {
    Say(std::string(n.status().message()));
    return 1;
  }
  std::printf("merged %zu traces (%d processes) into %s\n", a.positional.size(),
              *n, a.Get("o").c_str());
  return 0;
}

int FleetCommand(const ParsedArgs& a) {
  if (a.command != "status" && a.command != "list" && a.command != "capture") {
    Say(absl::StrCat("'vpctl ", a.command,
                     "' works on one collector (--addr), not on a pod "
                     "selection; fleet commands: status, list, capture"));
    return 2;
  }
  absl::StatusOr<FleetOptions> options = FleetOptionsFromArgs(a);
  if (!options.ok()) {
    Say(std::string(options.status().message()));
    return 2;
  }
  if (a.command == "capture") {
    if (absl::Status s = CheckFleetCaptureArgs(a); !s.ok()) {
      Say(std::string(s.message()));
      return 2;
    }
  }
  absl::StatusOr<std::unique_ptr<Fleet>> fleet = Fleet::Open(*options);
  if (!fleet.ok()) {
    Say(std::string(fleet.status().message()));
    return 1;
  }
  if (a.command == "status") return FleetStatus(**fleet);
  if (a.command == "list") return FleetList(**fleet);
  return FleetCapture(**fleet, a);
}

}  // namespace vllm_profiler::collector::vpctl
