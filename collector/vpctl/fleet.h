// Fleet mode: `vpctl [--context C] -n NS (-l SELECTOR | --pod P ...) CMD`
// runs CMD against the collectors of many pods at once, through one
// `kubectl port-forward` per pod. No in-cluster service: kubectl and the
// user's kubeconfig are the only way in.
//
//   absl::StatusOr<std::unique_ptr<Fleet>> f = Fleet::Open(options);
//   (*f)->ForEach([](FleetMember& m) { m.Call<...>(...); });
//
// Open() lists the pods (ParsePods), says on stderr which were skipped and
// why, caps them at max_pods (saying how many there were), then starts and
// health-checks the port-forwards in parallel (a GetStatus through each,
// which also estimates the pod's clock offset). A pod whose forward or
// collector fails is reported and left out; the others go on.
//
// Thread safety: ForEach runs one thread per member; a member is used by
// one thread at a time. Destroying the Fleet stops every port-forward and
// removes its scratch folder.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_FLEET_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_FLEET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/vpctl/args.h"
#include "collector/vpctl/kubectl.h"
#include "collector/vpctl/pods.h"
#include "collector/vpctl/trace_client.h"

namespace vllm_profiler::collector::vpctl {

struct FleetOptions {
  KubectlOptions kubectl;         // work_dir is chosen by Open().
  std::string selector;           // -l; empty with `pods`.
  std::vector<std::string> pods;  // --pod.
  size_t max_pods = 16;           // --max-pods.
  int remote_port = 9470;         // The collector's gRPC port in the pod.
};

// The pod's node clock minus vpctl's, from the GetStatus round trip with
// the smallest delay (NTP's rule); the true offset is within uncertainty.
struct ClockEstimate {
  std::optional<int64_t> offset_ns;
  int64_t uncertainty_ns = 0;
};

class FleetMember {
 public:
  FleetMember(PodInfo pod, const KubectlOptions& kubectl, int remote_port);
  FleetMember(const FleetMember&) = delete;
  FleetMember& operator=(const FleetMember&) = delete;

  // Starts the port-forward, checks the collector answers, estimates the
  // clock offset.
  absl::Status Connect();

  // Runs `call` on a client through the forward. When the forward died
  // (before, or during a call that failed UNAVAILABLE), it is restarted
  // once and the call retried; errors name the pod's forward.
  template <typename R>
  absl::StatusOr<R> Call(
      const std::function<absl::StatusOr<R>(TraceClient&)>& call) {
    if (absl::Status s = Revive(); !s.ok()) return s;
    absl::StatusOr<R> r = call(*client_);
    if (r.ok() || !absl::IsUnavailable(r.status()) || !ForwardDied()) {
      return r;
    }
    if (absl::Status s = Revive(); !s.ok()) return s;
    return call(*client_);
  }

  const PodInfo& pod() const { return pod_; }
  const ClockEstimate& clock() const { return clock_; }
  bool forward_restarted() const { return forward_.restarted(); }
  void Stop() { forward_.Stop(); }

 private:
  absl::Status Revive();
  bool ForwardDied();

  const PodInfo pod_;
  PortForward forward_;
  std::unique_ptr<TraceClient> client_;
  ClockEstimate clock_;
};

class Fleet {
 public:
  // FAILED_PRECONDITION when no pod is usable (the reasons were printed).
  static absl::StatusOr<std::unique_ptr<Fleet>> Open(FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  const std::vector<std::unique_ptr<FleetMember>>& members() const {
    return members_;
  }
  // Runs `fn` for every member, each on its own thread; returns when all
  // are done.
  void ForEach(const std::function<void(FleetMember&)>& fn);

 private:
  explicit Fleet(FleetOptions options) : options_(std::move(options)) {}
  absl::Status Select();
  void Connect();

  FleetOptions options_;
  std::vector<PodInfo> usable_;
  std::vector<std::unique_ptr<FleetMember>> members_;
};

// The options from the command line's pod selection; `work_dir` left
// empty. INVALID_ARGUMENT when -n, or both/neither of -l and --pod.
absl::StatusOr<FleetOptions> FleetOptionsFromArgs(const ParsedArgs& args);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_FLEET_H_
