// Which pods a fleet command uses: `kubectl get pods -o json` parsed into
// one PodInfo per pod, each usable or skipped with the reason a user reads.
//
// A pod is usable when the vllm-profiler webhook injected it (its status
// annotation is present), it is running and not terminating, and its
// collector container (a native sidecar or a plain container) is ready.
// The answer is untrusted (kubectl's output, or anything on PATH called
// kubectl): malformed JSON is INVALID_ARGUMENT, odd fields make a pod
// skipped, never a crash.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_PODS_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_PODS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vllm_profiler::collector::vpctl {

// The webhook's names (webhook/admission.h).
inline constexpr char kStatusAnnotation[] = "vllm-profiler.llm-d.ai/status";
inline constexpr char kCollectorContainer[] = "vllm-profiler-collector";
// LeaderWorkerSet's labels: a multi-node instance is one (name, group).
inline constexpr char kLwsNameLabel[] = "leaderworkerset.sigs.k8s.io/name";
inline constexpr char kLwsGroupLabel[] =
    "leaderworkerset.sigs.k8s.io/group-index";

struct PodInfo {
  std::string name;
  std::string ns;
  std::string node;
  std::string instance;     // "LWS-NAME/GROUP-INDEX"; empty when none.
  std::string skip_reason;  // Empty: usable.
};

// Parses a Pod List (or a single Pod). `wanted`: the pod names asked for
// (--pod); empty = every pod in the answer. A wanted pod not in the answer
// is skipped with "not found". Sorted by name.
absl::StatusOr<std::vector<PodInfo>> ParsePods(
    const std::string& json, const std::vector<std::string>& wanted);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_PODS_H_
