// Text rendering of TraceService answers for vpctl's terminal output.
// Pure functions of their inputs (tests compare exact text).
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_FORMAT_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "proto/profiler.pb.h"

namespace vllm_profiler::collector::vpctl {

// "512 B", "1.5 KiB", "3.2 MiB", "1.0 GiB".
std::string HumanBytes(uint64_t bytes);

// Left-aligned columns separated by two spaces; `rows[0]` is the header.
std::string Table(const std::vector<std::vector<std::string>>& rows);

// `vpctl list`: ID SIZE PROCESSES EVENTS COMPLETE CREATED (UTC), newest
// first as the collector orders them, plus an ERROR column when any trace
// has one. "No traces yet." when empty.
std::string FormatTraceList(const v1::ListTracesResponse& list);

// `vpctl status`: collector version, totals, disk, what the webhook
// injected (and skipped, and why), probes, captures.
std::string FormatStatus(const v1::GetStatusResponse& status);

// One trace's line for `vpctl capture` / `vpctl run` results.
std::string FormatTraceInfo(const v1::TraceInfo& info);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_FORMAT_H_
