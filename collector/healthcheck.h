// `collector --healthcheck`: the collector sidecar's exec readiness probe.
//
// The collector listens on loopback only, which kubelet's httpGet and grpc
// probes (they connect to the pod IP) cannot reach, so the webhook injects
//   exec: ["/usr/local/bin/collector", "--healthcheck",
//          "--port_file=<dir>/collector-ports.json"]
// CheckCollectorHealth reads the running collector's --port_file
// ({"grpc_port":N,"http_port":M}, written once all listeners are up) and
// calls grpc.health.v1.Health/Check for the TraceService on
// 127.0.0.1:<grpc_port>. OK when it answers SERVING within `timeout`.
//
// Errors (the message is what the probe prints, one line):
//   UNAVAILABLE          no port file yet, or the call failed
//                        ("<path>: ... (collector not listening yet)",
//                        "Check 127.0.0.1:N: <gRPC status>")
//   FAILED_PRECONDITION  the service answered, but not SERVING
//   INVALID_ARGUMENT     the port file is not what the collector writes
#ifndef VLLM_PROFILER_COLLECTOR_HEALTHCHECK_H_
#define VLLM_PROFILER_COLLECTOR_HEALTHCHECK_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vllm_profiler::collector {

// The service the collector marks SERVING once it has started.
inline constexpr char kHealthService[] = "vllm_profiler.v1.TraceService";

absl::Status CheckCollectorHealth(const std::string& port_file,
                                  absl::Duration timeout);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_HEALTHCHECK_H_
