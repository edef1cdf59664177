#include "collector/vpctl/trace_doc.h"

#include <cmath>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/filesystem.h"
#include "common/gzip.h"

namespace vllm_profiler::collector::vpctl {
namespace {

using nlohmann::json;

// Bounds that keep the merge's time arithmetic in range: base times from
// 1970 to 2096, clock offsets within ±11 days, event times within ±31 years.
constexpr int64_t kMaxBaseNs = 4'000'000'000'000'000'000;
constexpr int64_t kMaxOffsetNs = 1'000'000'000'000'000;
constexpr double kMaxTsUs = 1e15;

absl::Status Invalid(absl::string_view why) {
  return absl::InvalidArgumentError(why);
}

bool IsPid(const json& v) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned()) {
    return v.get<uint64_t>() <=
           static_cast<uint64_t>(std::numeric_limits<int32_t>::max());
  }
  const int64_t p = v.get<int64_t>();
  return p >= std::numeric_limits<int32_t>::min() &&
         p <= std::numeric_limits<int32_t>::max();
}

bool IsSmallInt(const json& v) {
  return IsPid(v);  // Ranks and world sizes fit the same range.
}

std::string Str(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

absl::Status CheckEvent(const json& e, TraceDoc& d) {
  if (!e.is_object()) return Invalid("not an object");
  auto pid = e.find("pid");
  if (pid != e.end()) {
    if (!IsPid(*pid)) return Invalid("pid is not a 32-bit integer");
    d.event_pids.insert(pid->get<int64_t>());
  }
  auto id = e.find("id");
  if (id != e.end() && !id->is_number_unsigned() && !id->is_string()) {
    return Invalid("id is neither a non-negative integer nor a string");
  }
  auto ts = e.find("ts");
  if (ts == e.end()) return absl::OkStatus();
  if (!ts->is_number() || !(std::fabs(ts->get<double>()) < kMaxTsUs)) {
    return Invalid("ts is not a time in microseconds");
  }
  double end = ts->get<double>();
  auto dur = e.find("dur");
  if (dur != e.end() && dur->is_number() &&
      std::fabs(dur->get<double>()) < kMaxTsUs) {
    end += dur->get<double>();
  }
  d.min_ts_us = std::min(d.min_ts_us, ts->get<double>());
  d.max_end_us = std::max(d.max_end_us, end);
  return absl::OkStatus();
}

absl::Status ReadFleet(const json& f, TraceDoc& d) {
  if (!f.is_object()) return Invalid("metadata.fleet is not an object");
  for (auto [key, out] : {std::pair{"pod", &d.fleet.pod},
                          {"namespace", &d.fleet.ns},
                          {"node", &d.fleet.node},
                          {"instance", &d.fleet.instance}}) {
    if (!Str(f, key).empty()) *out = Str(f, key);
  }
  auto offset = f.find("clock_offset_ns");
  if (offset == f.end()) return absl::OkStatus();
  auto uncertainty = f.find("clock_uncertainty_ns");
  if (!offset->is_number_integer() || uncertainty == f.end() ||
      !uncertainty->is_number_integer() ||
      std::llabs(offset->get<int64_t>()) > kMaxOffsetNs ||
      std::llabs(uncertainty->get<int64_t>()) > kMaxOffsetNs) {
    return Invalid("metadata.fleet.clock_offset_ns is out of range");
  }
  d.fleet.clock_offset_ns = offset->get<int64_t>();
  d.fleet.clock_uncertainty_ns = uncertainty->get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadProcess(const json& p, TraceDoc& d) {
  if (!p.is_object()) return Invalid("a metadata.processes entry");
  auto pid = p.find("trace_pid");
  if (pid == p.end()) pid = p.find("pid");
  if (pid == p.end() || !IsPid(*pid)) {
    return Invalid("a process in metadata.processes without a pid");
  }
  TraceProcess tp;
  tp.pid = pid->get<int64_t>();
  auto real = p.find("pid");
  tp.real_pid = real != p.end() && IsPid(*real) ? real->get<int64_t>() : tp.pid;
  tp.name = Str(p, "process_name");
  for (auto [key, out] :
       {std::pair{"rank", &tp.rank}, {"world_size", &tp.world_size}}) {
    auto it = p.find(key);
    if (it != p.end() && IsSmallInt(*it)) *out = it->get<int64_t>();
  }
  for (auto [key, out] : {std::pair{"pod_name", &d.fleet.pod},
                          {"pod_namespace", &d.fleet.ns},
                          {"node_name", &d.fleet.node}}) {
    if (out->empty()) *out = Str(p, key);
  }
  d.processes.push_back(std::move(tp));
  return absl::OkStatus();
}

absl::Status ReadMetadata(TraceDoc& d) {
  const json& meta = d.doc["metadata"];
  d.capture_id = Str(meta, "capture_id");
  auto complete = meta.find("complete");
  d.complete =
      complete != meta.end() && complete->is_boolean() && complete->get<bool>();
  auto config = meta.find("config");
  if (config != meta.end() && config->is_object()) {
    d.group = Str(*config, "group_id");
  }
  auto fleet = meta.find("fleet");
  if (fleet != meta.end()) {
    if (absl::Status s = ReadFleet(*fleet, d); !s.ok()) return s;
  }
  auto procs = meta.find("processes");
  if (procs == meta.end()) return absl::OkStatus();
  if (!procs->is_array()) return Invalid("metadata.processes is not a list");
  for (const json& p : *procs) {
    if (absl::Status s = ReadProcess(p, d); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Validate(TraceDoc& d) {
  if (d.doc.is_discarded()) return Invalid("invalid JSON");
  if (!d.doc.is_object()) return Invalid("not a JSON object");
  auto events = d.doc.find("traceEvents");
  if (events == d.doc.end() || !events->is_array()) {
    return Invalid("no traceEvents list");
  }
  auto meta = d.doc.find("metadata");
  if (meta == d.doc.end() || !meta->is_object()) {
    return Invalid("no metadata");
  }
  auto base = meta->find("base_time_unix_ns");
  if (base == meta->end() || !base->is_number_integer() ||
      base->get<int64_t>() < 0 || base->get<int64_t>() > kMaxBaseNs) {
    return Invalid("no metadata.base_time_unix_ns");
  }
  d.base_ns = base->get<int64_t>();
  if (absl::Status s = ReadMetadata(d); !s.ok()) return s;
  size_t index = 0;
  for (const json& e : *events) {
    if (absl::Status s = CheckEvent(e, d); !s.ok()) {
      return Invalid(absl::StrCat("event ", index, ": ", s.message()));
    }
    ++index;
  }
  return absl::OkStatus();
}

std::string Stem(const std::string& path) {
  absl::string_view s = path;
  const size_t slash = s.rfind('/');
  if (slash != absl::string_view::npos) s.remove_prefix(slash + 1);
  absl::ConsumeSuffix(&s, ".gz");
  absl::ConsumeSuffix(&s, ".json");
  return std::string(s);
}

}  // namespace

int64_t TraceDoc::StartNs() const {
  const double us = std::isfinite(min_ts_us) ? min_ts_us : 0;
  return CorrectedBaseNs() + std::llround(us * 1000.0);
}

int64_t TraceDoc::EndNs() const {
  const double us = std::isfinite(max_end_us) ? max_end_us : 0;
  return CorrectedBaseNs() + std::llround(us * 1000.0);
}

absl::StatusOr<TraceDoc> ParseTraceDoc(const std::string& label,
                                       const std::string& json) {
  TraceDoc d;
  d.label = label;
  d.doc = json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (absl::Status s = Validate(d); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(label, ": not a vllm-profiler trace (", s.message(), ")"));
  }
  if (d.fleet.pod.empty()) d.fleet.pod = Stem(label);
  return d;
}

absl::StatusOr<std::string> ReadTraceBytes(const std::string& path,
                                           uint64_t max_bytes) {
  absl::StatusOr<std::string> raw =
      Filesystem::Default()->ReadSmallFile(path, max_bytes);
  if (!raw.ok()) return raw.status();
  if (!LooksGzipped(*raw)) return raw;
  absl::StatusOr<std::string> out = Gunzip(*raw, max_bytes);
  if (absl::IsResourceExhausted(out.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is larger than ", max_bytes, " bytes unpacked"));
  }
  if (!out.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", out.status().message()));
  }
  return out;
}

}  // namespace vllm_profiler::collector::vpctl
