// One trace file as the merge reads it: the parsed JSON plus what the merge
// needs from its metadata (pod, node, capture, processes, time span).
//
// The bytes are untrusted: ParseTraceDoc checks every field it will later
// use (types, ranges) so that the merge itself never meets a value it
// cannot handle. Errors are INVALID_ARGUMENT "FILE: not a vllm-profiler
// trace (WHY)".
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_TRACE_DOC_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_TRACE_DOC_H_

#include <cstdint>
#include <limits>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace vllm_profiler::collector::vpctl {

// What the fleet capture knows about a pod's trace beyond the trace itself;
// stored as the trace's `metadata.fleet` (AnnotateTraceFile).
struct FleetInfo {
  std::string pod;
  std::string ns;
  std::string node;
  // A multi-node instance the pod belongs to (LeaderWorkerSet name and
  // group index, "NAME/INDEX"); empty when none is known.
  std::string instance;
  // The pod's node clock minus vpctl's clock, and the bound on the error of
  // that estimate (half the round trip it was measured over).
  std::optional<int64_t> clock_offset_ns;
  int64_t clock_uncertainty_ns = 0;
};

// A process listed in the trace's metadata.
struct TraceProcess {
  int64_t pid = 0;       // As in the trace's events.
  int64_t real_pid = 0;  // The OS pid (differs when the collector remapped).
  std::string name;      // vLLM's process name, e.g. "VllmWorker-1".
  int64_t rank = -1;
  int64_t world_size = -1;
};

struct TraceDoc {
  std::string label;  // File name, for messages.
  nlohmann::json doc;
  FleetInfo fleet;  // metadata.fleet, else from metadata.processes.
  std::string capture_id;
  std::string group;  // metadata.config.group_id.
  bool complete = false;
  int64_t base_ns = 0;
  double min_ts_us = std::numeric_limits<double>::infinity();
  double max_end_us = -std::numeric_limits<double>::infinity();
  std::set<int64_t> event_pids;
  std::vector<TraceProcess> processes;

  // base_ns on vpctl's clock (the pod's clock offset removed).
  int64_t CorrectedBaseNs() const {
    return base_ns - fleet.clock_offset_ns.value_or(0);
  }
  // The span of the events, in ns since the Unix epoch (corrected).
  int64_t StartNs() const;
  int64_t EndNs() const;
};

// Parses and checks `json`. The pod name falls back on the file's stem.
absl::StatusOr<TraceDoc> ParseTraceDoc(const std::string& label,
                                       const std::string& json);

// The bytes of `path`, gunzipped when they are gzip; FAILED_PRECONDITION
// beyond `max_bytes` (packed or unpacked).
absl::StatusOr<std::string> ReadTraceBytes(const std::string& path,
                                           uint64_t max_bytes);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_TRACE_DOC_H_
