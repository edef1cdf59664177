// A short text summary of a Chrome trace written by the collector: step
// durations and the top CPU operators by self time (time not spent in a
// nested event on the same thread), plus the top GPU kernels by total time.
// What `vpctl run` prints after a local profile.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_SUMMARY_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_SUMMARY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace vllm_profiler::collector::vpctl {

struct SummaryOptions {
  int top_n = 10;
  // Larger traces are not parsed (the summary is a convenience; open the
  // file in Perfetto instead).
  uint64_t max_bytes = 512ull << 20;
};

// Reads `path` (.json, or .json.gz) and summarizes it. INVALID_ARGUMENT when
// it is not a Chrome trace JSON, FAILED_PRECONDITION when too large.
absl::StatusOr<std::string> SummarizeTraceFile(const std::string& path,
                                               const SummaryOptions& options);

// The same for trace JSON already in memory.
absl::StatusOr<std::string> SummarizeTraceJson(const std::string& json,
                                               const SummaryOptions& options);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_SUMMARY_H_
