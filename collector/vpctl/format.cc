#include "collector/vpctl/format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "collector/capture_origin.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector::vpctl {
namespace {

std::string UnixMs(int64_t ms) {
  if (ms <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms),
                          absl::UTCTimeZone());
}

// The webhook's status annotation (GetStatusResponse.injection), e.g.
//   webhook: injected vllm (usercustomize)
//     skipped sidecar: its image, command and args do not name vLLM
// Anything that is not the expected JSON is shown as it is.
std::string Injection(const std::string& text) {
  using json = nlohmann::json;
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto str = [](const json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  if (!j.is_object() || !j.contains("containers") ||
      !j["containers"].is_array()) {
    return absl::StrCat("webhook: ", text, "\n");
  }
  const json hooks = j.value("pythonHook", json::object());
  std::vector<std::string> injected;
  for (const json& c : j["containers"]) {
    std::string name = str(c);
    auto hook = hooks.is_object() ? hooks.find(name) : hooks.end();
    injected.push_back(
        hook != hooks.end() ? absl::StrCat(name, " (", str(*hook), ")") : name);
  }
  std::string out =
      absl::StrCat("webhook: injected ", absl::StrJoin(injected, ", "), "\n");
  const json skipped = j.value("skipped", json::object());
  if (skipped.is_object()) {
    for (auto it = skipped.begin(); it != skipped.end(); ++it) {
      absl::StrAppend(&out, "  skipped ", it.key(), ": ", str(it.value()),
                      "\n");
    }
  }
  return out;
}

std::string Pids(const google::protobuf::RepeatedField<int64_t>& pids) {
  if (pids.empty()) return "-";
  return absl::StrJoin(pids, ",");
}

// The origin column of `vpctl list` (shown once a trace was triggered) and
// of the captures in `vpctl status`.
std::string OriginText(v1::CaptureOrigin origin) {
  std::string name = OriginName(origin);
  return name.empty() ? "-" : name;
}

std::string Config(const v1::CaptureConfig& c) {
  std::vector<std::string> parts;
  if (c.start_after_steps() > 0) {
    parts.push_back(absl::StrCat("after ", c.start_after_steps()));
  }
  if (c.num_steps() > 0) parts.push_back(absl::StrCat(c.num_steps(), " steps"));
  if (c.duration_ms() > 0)
    parts.push_back(absl::StrCat(c.duration_ms(), " ms"));
  if (!c.record_shapes()) parts.push_back("no shapes");
  if (!c.gpu_activity()) parts.push_back("no gpu");
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

// Version, event counts, disk use and the webhook's injection note.
std::string CollectorSection(const v1::GetStatusResponse& s) {
  std::string out;
  absl::StrAppend(&out, "collector ",
                  s.collector_version().empty() ? "(unknown version)"
                                                : s.collector_version(),
                  "\n");
  absl::StrAppend(&out, "events received: ", s.events_received(),
                  "  dropped by probes: ", s.events_dropped(),
                  "  traces written: ", s.traces_written(), "\n");
  const v1::DiskStatus& d = s.disk();
  absl::StrAppend(&out, "disk: ", d.trace_dir(), "  ", d.trace_count(), "/",
                  d.max_traces(), " traces, ", HumanBytes(d.bytes_used()),
                  " of ", HumanBytes(d.max_bytes()), "\n");
  if (!d.last_error().empty()) {
    absl::StrAppend(&out, "disk error: ", d.last_error(), "\n");
  }
  if (!s.injection().empty()) out += Injection(s.injection());
  return out;
}

// "namespace/pod", the pod name alone, or the host name outside Kubernetes.
std::string PodText(const v1::Hello& h) {
  if (h.pod_name().empty()) return h.hostname();
  if (h.pod_namespace().empty()) return h.pod_name();
  return h.pod_namespace() + "/" + h.pod_name();
}

// "rank/world_size", the rank alone, or "-" when the process has none.
std::string RankText(const v1::Hello& h) {
  if (h.rank() >= 0 && h.world_size() > 0) {
    return absl::StrCat(h.rank(), "/", h.world_size());
  }
  if (h.rank() >= 0) return absl::StrCat(h.rank());
  return "-";
}

// One probe's table row; why it is idle and where its operators come from
// go to `notes` (too long for a column).
std::vector<std::string> ProbeRow(const v1::ProbeStatus& p,
                                  std::vector<std::string>* notes) {
  const v1::Hello& h = p.hello();
  const uint64_t dropped = p.drops().events_dropped_buffer_full() +
                           p.drops().events_dropped_send() +
                           p.drops().cupti_records_dropped();
  const std::string pod = PodText(h);
  const v1::ProbeState& st = p.state();
  if (!st.idle_reason().empty()) {
    notes->push_back(
        absl::StrCat("  pid ", h.pid(), " idle: ", st.idle_reason()));
  }
  if (!st.op_source_detail().empty()) {
    notes->push_back(absl::StrCat("  pid ", h.pid(),
                                  " operators: ", st.op_source(), " (",
                                  st.op_source_detail(), ")"));
  }
  return {absl::StrCat("  ", h.pid()),
          h.process_name(),
          RankText(h),
          pod.empty() ? "-" : pod,
          st.idle_reason().empty() ? "active" : "idle",
          st.op_source().empty() ? "-" : st.op_source(),
          absl::StrCat(p.events_received()),
          absl::StrCat(dropped),
          p.capture_id().empty() ? "-" : p.capture_id(),
          UnixMs(p.connected_unix_ms())};
}

std::string ProbeSection(const v1::GetStatusResponse& s) {
  std::string out = absl::StrCat("\nprobes (", s.probes_size(), "):\n");
  if (s.probes().empty()) {
    out += "  none connected\n";
    // Injected but nobody connected: say where to look.
    if (!s.injection().empty()) {
      out +=
          "  (a Python process that runs the step target connects at its "
          "first step;\n   if the server is serving, the Python hook did not "
          "load: see webhook/README.md)\n";
    }
    return out;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"  PID", "PROCESS", "RANK", "POD", "STATE", "OPERATORS",
                  "EVENTS", "DROPPED", "CAPTURE", "CONNECTED (UTC)"});
  std::vector<std::string> notes;
  for (const auto& p : s.probes()) rows.push_back(ProbeRow(p, &notes));
  out += Table(rows);
  for (const std::string& n : notes) absl::StrAppend(&out, n, "\n");
  return out;
}

std::string CaptureSection(const v1::GetStatusResponse& s) {
  std::string out = absl::StrCat("\ncaptures (", s.captures_size(), "):\n");
  if (s.captures().empty()) return out + "  none\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
      {"  CAPTURE", "ORIGIN", "CONFIG", "PIDS", "EVENTS", "STATE", "TRACE"});
  for (const auto& c : s.captures()) {
    rows.push_back({"  " + c.capture_id(), OriginText(c.origin()),
                    Config(c.config()), Pids(c.pids()),
                    absl::StrCat(c.events_written()),
                    !c.error().empty() ? "error: " + c.error()
                    : c.finished()     ? "finished"
                                       : "running",
                    c.trace_id().empty() ? "-" : c.trace_id()});
  }
  return out + Table(rows);
}

}  // namespace

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return absl::StrFormat("%.1f %s", v, units[u]);
}

std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (row.size() > width.size()) width.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string FormatTraceList(const v1::ListTracesResponse& list) {
  if (list.traces().empty()) return "No traces yet.\n";
  bool any_error = false, any_trigger = false;
  for (const auto& t : list.traces()) {
    any_error |= !t.error().empty();
    any_trigger |= t.origin() == v1::CAPTURE_ORIGIN_TRIGGER;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back(
      {"ID", "SIZE", "PROCESSES", "EVENTS", "COMPLETE", "CREATED (UTC)"});
  if (any_trigger) rows[0].push_back("ORIGIN");
  if (any_error) rows[0].push_back("ERROR");
  if (any_trigger) rows[0].push_back("REASON");
  for (const auto& t : list.traces()) {
    rows.push_back({t.id(),
                    HumanBytes(t.size_bytes()) + (t.gzip() ? " gz" : ""),
                    Pids(t.pids()), absl::StrCat(t.num_events()),
                    t.complete() ? "yes" : "no", UnixMs(t.created_unix_ms())});
    if (any_trigger) rows.back().push_back(OriginText(t.origin()));
    if (any_error) rows.back().push_back(t.error().empty() ? "-" : t.error());
    if (any_trigger)
      rows.back().push_back(t.reason().empty() ? "-" : t.reason());
  }
  return Table(rows);
}

std::string FormatTraceInfo(const v1::TraceInfo& t) {
  return absl::StrCat(t.id(), " (", t.file_name(), ", ",
                      HumanBytes(t.size_bytes()), ", ", t.num_events(),
                      " events, processes ", Pids(t.pids()),
                      t.complete() ? "" : ", INCOMPLETE",
                      t.error().empty() ? "" : ", error: " + t.error(), ")");
}

std::string FormatStatus(const v1::GetStatusResponse& s) {
  return absl::StrCat(CollectorSection(s), ProbeSection(s), CaptureSection(s));
}

}  // namespace vllm_profiler::collector::vpctl
