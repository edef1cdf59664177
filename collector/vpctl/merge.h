// Merges the Chrome traces of several pods into one timeline: what
// `vpctl merge A.json B.json -o merged.json` and the fleet capture
// (`vpctl -n NS -l SEL capture -o out/`) write.
//
//   MergeOptions options;
//   absl::Status s = MergeTraceFiles({"out/a.json", "out/b.json"},
//                                    "out/merged.json", options);
//
// The merged trace:
//   * keeps every pod's processes distinct: a pid already taken by an
//     earlier pod is remapped to a free one (flow ids are renumbered too);
//   * names processes `POD · PROCESS · rank R` and orders them by pod, then
//     rank; the ranks of one multi-node instance (a LeaderWorkerSet group,
//     or pods whose ranks together make up one world) are one block in rank
//     order;
//   * puts every event on one clock: each input's times are microseconds
//     since its own base_time_unix_ns; the merge shifts them onto the
//     earliest base, minus the pod's estimated clock offset when the input
//     carries one (metadata.fleet, written by the fleet capture);
//   * states in `metadata.pods` each pod's node, capture, clock offset and
//     its uncertainty, and the pid map.
//
// Inputs are untrusted (any file a user names): anything that is not a
// vllm-profiler trace is INVALID_ARGUMENT naming the file and what is
// wrong, never a crash. Traces of different captures are refused
// (FAILED_PRECONDITION) unless `force`: one capture means the same capture
// group (CaptureConfig.group_id, set by the fleet capture), or, for traces
// without a group, time spans that overlap. On any error nothing is
// written. Thread-compatible; no global state.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_MERGE_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_MERGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/vpctl/trace_doc.h"

namespace vllm_profiler::collector::vpctl {

struct MergeOptions {
  // Merge traces of different captures anyway.
  bool force = false;
  // Fewer inputs are INVALID_ARGUMENT (`vpctl merge` wants two; the fleet
  // capture writes merged.json even when one pod answered).
  size_t min_inputs = 2;
  // Larger input files are refused (the merge holds every input in memory).
  uint64_t max_input_bytes = 1ull << 30;
};

struct MergeInput {
  std::string label;  // The file name, for messages.
  std::string json;   // The trace bytes.
};

// Merges traces already in memory; returns the merged trace's JSON.
absl::StatusOr<std::string> MergeTraceJson(const std::vector<MergeInput>& in,
                                           const MergeOptions& options);

// Reads `paths` (.json, or gzip), merges, writes `out` atomically. Returns
// the number of processes in the merged trace.
absl::StatusOr<int> MergeTraceFiles(const std::vector<std::string>& paths,
                                    const std::string& out,
                                    const MergeOptions& options);

// Sets `metadata.fleet` of the trace at `path` (rewritten atomically).
absl::Status AnnotateTraceFile(const std::string& path, const FleetInfo& info);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_MERGE_H_
