// Decides the merged trace's processes: which pid each input process gets,
// its name, labels and position. Pure function of the parsed inputs (the
// events themselves are not touched here), so the order rules are tested
// without files.
//
// Order: units sorted by their first pod's name; a unit is one pod, or the
// pods of one multi-node instance. Inside a unit: ranked processes by rank
// (so an instance's ranks are one block in rank order across its pods),
// then the unranked ones (engine core, API server) by pod and pid.
//
// Instances: a pod's FleetInfo.instance (LeaderWorkerSet labels) when set;
// otherwise pods whose ranked processes have a world size larger than the
// pod's own ranks, taken in pod order, are grouped while their ranks are
// disjoint and the world is not yet complete.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_MERGE_PLAN_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_MERGE_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "collector/vpctl/trace_doc.h"

namespace vllm_profiler::collector::vpctl {

struct PlannedProcess {
  size_t trace = 0;     // Index of the input.
  int64_t old_pid = 0;  // In that input's events.
  int64_t new_pid = 0;  // Unique in the merged trace.
  std::string name;     // "POD · VllmWorker-1 · rank 1".
  int64_t rank = -1;
  int64_t sort_index = 0;
  std::string labels;  // "pod=P,namespace=N,node=X,instance=I".
};

struct MergePlan {
  std::vector<PlannedProcess> processes;  // In display order.
  std::vector<std::string> instance_of;   // Per input; empty: none.
};

MergePlan PlanMerge(const std::vector<TraceDoc>& docs);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_MERGE_PLAN_H_
