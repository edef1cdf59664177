// vpctl's use of kubectl: the user's kubeconfig and context, nothing else.
//
//   kubectl [--context C] -n NS get pods -o json [-l SELECTOR]
//   kubectl [--context C] -n NS port-forward --address 127.0.0.1 pod/P :PORT
//
// kubectl is a program on PATH (or --kubectl / $VPCTL_KUBECTL): the seam
// tests replace with a strict stand-in (tests/fleet/kubectl). Scratch files
// (its output, the port-forward logs) live in `work_dir`, which the caller
// owns.
//
// PortForward runs one `kubectl port-forward` for one pod on a local port
// kubectl chooses (`:PORT`), read from its "Forwarding from 127.0.0.1:N"
// line. EnsureAlive() restarts a forward that died, once; a second death
// is final. Thread safety: one PortForward per thread at a time.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_KUBECTL_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_KUBECTL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/vpctl/subprocess.h"

namespace vllm_profiler::collector::vpctl {

struct KubectlOptions {
  std::string binary = "kubectl";
  std::string context;  // Empty: the kubeconfig's current context.
  std::string ns;       // Required.
  std::string work_dir;
};

// Runs `kubectl [--context C] -n NS ARGS...` to completion and returns its
// stdout. UNAVAILABLE "kubectl get pods: <its last stderr line>" when it
// fails or does not finish within `timeout`.
absl::StatusOr<std::string> RunKubectl(const KubectlOptions& options,
                                       const std::vector<std::string>& args,
                                       absl::Duration timeout);

class PortForward {
 public:
  struct Options {
    std::string pod;
    int remote_port = 9470;
    // How long kubectl may take to say it is forwarding.
    absl::Duration start_timeout = absl::Seconds(20);
  };
  PortForward(KubectlOptions kubectl, Options options);
  PortForward(const PortForward&) = delete;
  PortForward& operator=(const PortForward&) = delete;

  // Starts kubectl and waits for its "Forwarding from" line. UNAVAILABLE
  // with kubectl's last line when it exits or stays silent.
  absl::Status Start();
  // OK while it runs. A forward that died is restarted once (restarted()
  // turns true, addr() changes); after that a death is final.
  absl::Status EnsureAlive();
  // True when kubectl has exited, or exits within `grace`.
  bool DiedWithin(absl::Duration grace);
  void Stop();

  const std::string& addr() const { return addr_; }  // "127.0.0.1:N".
  bool restarted() const { return starts_ > 1; }

 private:
  std::string LogPath() const;

  const KubectlOptions kubectl_;
  const Options options_;
  std::unique_ptr<Subprocess> process_;
  std::string addr_;
  int starts_ = 0;
};

// The local port of a kubectl port-forward log's "Forwarding from
// 127.0.0.1:N -> PORT" line; 0 when there is none yet.
int ForwardedPort(const std::string& log);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_KUBECTL_H_
