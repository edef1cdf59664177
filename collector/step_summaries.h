// Validation of a probe's StepSummaries message (untrusted input: any
// process in the pod can reach the probe socket). ProbeStream calls it; the
// FlightRecorder only sees summaries that passed.
#ifndef VLLM_PROFILER_COLLECTOR_STEP_SUMMARIES_H_
#define VLLM_PROFILER_COLLECTOR_STEP_SUMMARIES_H_

#include "absl/status/status.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

// Most steps in one message: a ring of 2^20 steps at most, one interval.
inline constexpr int kMaxStepSummaries = 1 << 20;
inline constexpr size_t kMaxStepErrorBytes = 256;

// INVALID_ARGUMENT naming the first bad step ("step summary 3: negative
// duration_ns -5") or the count.
absl::Status ValidateStepSummaries(const v1::StepSummaries& summaries);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_STEP_SUMMARIES_H_
