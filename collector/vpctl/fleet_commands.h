// vpctl's commands over several traces or pods: `vpctl merge`, and the
// fleet mode's `status`, `list` and `capture` (see fleet.h). Each returns
// vpctl's exit code: 0 when every pod answered, 1 when some did not (their
// lines say why; the others' results are still printed or written), 2 for
// usage errors.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_FLEET_COMMANDS_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_FLEET_COMMANDS_H_

#include "absl/status/status.h"
#include "collector/vpctl/args.h"

namespace vllm_profiler::collector::vpctl {

// `vpctl merge A.json B.json ... -o merged.json [--force]`.
int MergeCommand(const ParsedArgs& args);

// Any command with a pod selection (-n NS with -l or --pod).
int FleetCommand(const ParsedArgs& args);

// `vpctl -n NS ... capture` (fleet_capture.cc). CheckFleetCaptureArgs
// finds usage errors before any pod is contacted.
class Fleet;
absl::Status CheckFleetCaptureArgs(const ParsedArgs& args);
int FleetCapture(Fleet& fleet, const ParsedArgs& args);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_FLEET_COMMANDS_H_
