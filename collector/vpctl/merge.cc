#include "collector/vpctl/merge.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "collector/vpctl/merge_plan.h"
#include "common/filesystem.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector::vpctl {
namespace {

using nlohmann::json;

constexpr char kTimeUnit[] =
    "ts and dur are microseconds since base_time_unix_ns";
constexpr char kClockNote[] =
    "each pod's events are moved by -clock_offset_ns (its node's clock "
    "minus vpctl's, from the round trip of a status call; the true offset "
    "is within clock_uncertainty_ns of it). A pod without clock_offset_ns "
    "is on its own node's clock.";

std::string UtcTime(int64_t ns) {
  return absl::FormatTime("%H:%M:%E3S", absl::FromUnixNanos(ns),
                          absl::UTCTimeZone());
}

bool StrIs(const json& e, const char* key, const char* value) {
  auto it = e.find(key);
  return it != e.end() && it->is_string() && it->get<std::string>() == value;
}

// Process names, order and labels are written anew for the merged trace.
bool IsDropped(const json& e) {
  return StrIs(e, "ph", "M") && (StrIs(e, "name", "process_name") ||
                                 StrIs(e, "name", "process_sort_index") ||
                                 StrIs(e, "name", "process_labels"));
}

// One input's events moved onto the merged clock, its pids and flow ids
// onto merged ones. Flow ids are per input: two pods' ids may collide.
struct Rewrite {
  int64_t shift_ns = 0;
  std::map<int64_t, int64_t> pids;
  std::map<uint64_t, uint64_t> flow_ids;
  std::map<std::string, uint64_t> flow_names;
  uint64_t* next_flow_id = nullptr;

  void Apply(json& e) {
    auto pid = e.find("pid");
    if (pid != e.end()) {
      auto it = pids.find(pid->get<int64_t>());
      if (it != pids.end()) *pid = it->second;
    }
    auto ts = e.find("ts");
    if (ts != e.end()) {
      const int64_t ns = std::llround(ts->get<double>() * 1000.0) + shift_ns;
      *ts = static_cast<double>(ns) / 1000.0;
    }
    auto id = e.find("id");
    if (id == e.end()) return;
    uint64_t merged = 0;
    if (id->is_number_unsigned()) {
      merged = FlowId(flow_ids, id->get<uint64_t>());
    } else {
      merged = FlowId(flow_names, id->get<std::string>());
    }
    *id = merged;
  }

  template <typename K>
  uint64_t FlowId(std::map<K, uint64_t>& m, const K& key) {
    auto [it, inserted] = m.emplace(key, *next_flow_id);
    if (inserted) ++*next_flow_id;
    return it->second;
  }
};

json MetadataEvent(const char* name, int64_t pid, const char* key, json v) {
  return json{{"ph", "M"},
              {"name", name},
              {"pid", pid},
              {"args", json{{key, std::move(v)}}}};
}

void AppendProcessEvents(const PlannedProcess& p, json& out) {
  out.push_back(MetadataEvent("process_name", p.new_pid, "name", p.name));
  out.push_back(MetadataEvent("process_sort_index", p.new_pid, "sort_index",
                              p.sort_index));
  if (p.labels.empty()) return;
  out.push_back(MetadataEvent("process_labels", p.new_pid, "labels", p.labels));
}

json PodMetadata(const TraceDoc& d, const MergePlan& plan, size_t index) {
  json pod = {{"pod", d.fleet.pod},
              {"namespace", d.fleet.ns},
              {"node", d.fleet.node},
              {"file", d.label},
              {"capture_id", d.capture_id},
              {"complete", d.complete},
              {"instance", plan.instance_of[index]}};
  if (d.fleet.clock_offset_ns.has_value()) {
    pod["clock_offset_ns"] = *d.fleet.clock_offset_ns;
    pod["clock_uncertainty_ns"] = d.fleet.clock_uncertainty_ns;
  }
  json pids = json::object();
  for (const PlannedProcess& p : plan.processes) {
    if (p.trace == index) pids[std::to_string(p.old_pid)] = p.new_pid;
  }
  pod["pids"] = std::move(pids);
  pod["metadata"] = d.doc["metadata"];
  return pod;
}

json MergedMetadata(const std::vector<TraceDoc>& docs, const MergePlan& plan,
                    int64_t base_ns, const MergeOptions& options) {
  bool complete = true;
  json pods = json::array();
  for (size_t i = 0; i < docs.size(); ++i) {
    complete = complete && docs[i].complete;
    pods.push_back(PodMetadata(docs[i], plan, i));
  }
  json processes = json::array();
  for (const PlannedProcess& p : plan.processes) {
    processes.push_back({{"pid", p.new_pid},
                         {"pod", docs[p.trace].fleet.pod},
                         {"pid_in_pod_trace", p.old_pid},
                         {"name", p.name},
                         {"rank", p.rank},
                         {"instance", plan.instance_of[p.trace]},
                         {"sort_index", p.sort_index}});
  }
  return json{
      {"producer", "vpctl merge"},        {"base_time_unix_ns", base_ns},
      {"time_unit", kTimeUnit},           {"capture_group", docs.front().group},
      {"forced", options.force},          {"complete", complete},
      {"clock_note", kClockNote},         {"pods", std::move(pods)},
      {"processes", std::move(processes)}};
}

int64_t MergedBase(const std::vector<TraceDoc>& docs) {
  int64_t base = std::numeric_limits<int64_t>::max();
  for (const TraceDoc& d : docs) base = std::min(base, d.CorrectedBaseNs());
  return base;
}

// One capture: one capture group, or (without groups) overlapping spans.
absl::Status SameCapture(const std::vector<TraceDoc>& docs) {
  const TraceDoc& a = docs.front();
  for (const TraceDoc& b : docs) {
    if (a.group != b.group) {
      return absl::FailedPreconditionError(absl::StrCat(
          a.label, " and ", b.label, " are not from one capture (group '",
          a.group, "' vs '", b.group, "'); --force merges them anyway"));
    }
  }
  if (!a.group.empty()) return absl::OkStatus();
  const TraceDoc* late = &a;
  const TraceDoc* early = &a;
  for (const TraceDoc& d : docs) {
    if (d.StartNs() > late->StartNs()) late = &d;
    if (d.EndNs() < early->EndNs()) early = &d;
  }
  if (late->StartNs() <= early->EndNs()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      early->label, " (", UtcTime(early->StartNs()), " to ",
      UtcTime(early->EndNs()), " UTC) and ", late->label, " (",
      UtcTime(late->StartNs()), " to ", UtcTime(late->EndNs()),
      " UTC) do not overlap in time: not one capture; --force merges them "
      "anyway"));
}

struct Merged {
  std::string json;
  int processes = 0;
};

absl::StatusOr<std::vector<TraceDoc>> ParseAll(
    const std::vector<MergeInput>& in, const MergeOptions& options) {
  if (in.empty() || in.size() < options.min_inputs) {
    return absl::InvalidArgumentError("merge needs at least two traces");
  }
  std::vector<TraceDoc> docs;
  for (const MergeInput& i : in) {
    absl::StatusOr<TraceDoc> d = ParseTraceDoc(i.label, i.json);
    if (!d.ok()) return d.status();
    docs.push_back(std::move(*d));
  }
  return docs;
}

absl::StatusOr<Merged> Merge(const std::vector<MergeInput>& in,
                             const MergeOptions& options) {
  absl::StatusOr<std::vector<TraceDoc>> docs = ParseAll(in, options);
  if (!docs.ok()) return docs.status();
  if (!options.force) {
    if (absl::Status s = SameCapture(*docs); !s.ok()) return s;
  }
  const MergePlan plan = PlanMerge(*docs);
  const int64_t base = MergedBase(*docs);
  json events = json::array();
  for (const PlannedProcess& p : plan.processes) AppendProcessEvents(p, events);
  uint64_t next_flow_id = 1;
  for (size_t i = 0; i < docs->size(); ++i) {
    TraceDoc& d = (*docs)[i];
    Rewrite r;
    r.shift_ns = d.CorrectedBaseNs() - base;
    r.next_flow_id = &next_flow_id;
    for (const PlannedProcess& p : plan.processes) {
      if (p.trace == i) r.pids[p.old_pid] = p.new_pid;
    }
    for (json& e : d.doc["traceEvents"]) {
      if (IsDropped(e)) continue;
      r.Apply(e);
      events.push_back(std::move(e));
    }
  }
  json out = {{"traceEvents", std::move(events)},
              {"displayTimeUnit", "ns"},
              {"metadata", MergedMetadata(*docs, plan, base, options)}};
  return Merged{out.dump(-1, ' ', false, json::error_handler_t::replace),
                static_cast<int>(plan.processes.size())};
}

}  // namespace

absl::StatusOr<std::string> MergeTraceJson(const std::vector<MergeInput>& in,
                                           const MergeOptions& options) {
  absl::StatusOr<Merged> m = Merge(in, options);
  if (!m.ok()) return m.status();
  return std::move(m->json);
}

absl::StatusOr<int> MergeTraceFiles(const std::vector<std::string>& paths,
                                    const std::string& out,
                                    const MergeOptions& options) {
  std::vector<MergeInput> in;
  for (const std::string& p : paths) {
    absl::StatusOr<std::string> bytes =
        ReadTraceBytes(p, options.max_input_bytes);
    if (!bytes.ok()) return bytes.status();
    in.push_back({p, std::move(*bytes)});
  }
  absl::StatusOr<Merged> m = Merge(in, options);
  if (!m.ok()) return m.status();
  if (absl::Status s = Filesystem::Default()->WriteFileAtomically(out, m->json);
      !s.ok()) {
    return s;
  }
  return m->processes;
}

absl::Status AnnotateTraceFile(const std::string& path, const FleetInfo& f) {
  absl::StatusOr<std::string> bytes = ReadTraceBytes(path, 1ull << 30);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<TraceDoc> d = ParseTraceDoc(path, *bytes);
  if (!d.ok()) return d.status();
  json fleet = {{"pod", f.pod},
                {"namespace", f.ns},
                {"node", f.node},
                {"instance", f.instance}};
  if (f.clock_offset_ns.has_value()) {
    fleet["clock_offset_ns"] = *f.clock_offset_ns;
    fleet["clock_uncertainty_ns"] = f.clock_uncertainty_ns;
  }
  d->doc["metadata"]["fleet"] = std::move(fleet);
  return Filesystem::Default()->WriteFileAtomically(
      path, d->doc.dump(-1, ' ', false, json::error_handler_t::replace));
}

}  // namespace vllm_profiler::collector::vpctl
