// TraceClient: vpctl's typed access to the collector's TraceService over
// gRPC, with errors phrased for a person at a terminal.
//
// Every call returns UNAVAILABLE "cannot reach collector at ADDR: ..." when
// nothing answers at the address, and otherwise the collector's own status
// (e.g. NOT_FOUND for an unknown trace id). Thread-compatible: one caller at
// a time.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_TRACE_CLIENT_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_TRACE_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/profiler.grpc.pb.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector::vpctl {

class TraceClient {
 public:
  struct Options {
    // host:port of the collector's gRPC listener.
    std::string addr = "127.0.0.1:9470";
    // Deadline of a unary call (StartCapture with wait uses its own).
    absl::Duration timeout = absl::Seconds(10);
  };

  explicit TraceClient(Options options);
  TraceClient(const TraceClient&) = delete;
  TraceClient& operator=(const TraceClient&) = delete;

  absl::StatusOr<v1::ListTracesResponse> List();
  absl::StatusOr<v1::GetStatusResponse> Status();
  // `deadline`: how long the call may take (long when request.wait()).
  absl::StatusOr<v1::StartCaptureResponse> StartCapture(
      const v1::StartCaptureRequest& request, absl::Duration deadline);
  absl::Status Delete(const std::string& id);
  // Flight recorder: a triggered trace now (TraceService.Trigger).
  absl::StatusOr<v1::TriggerResponse> Trigger(const v1::TriggerRequest& request,
                                              absl::Duration deadline);

  // Downloads trace `id` to `path`, gzip-encoded when `path` ends in ".gz",
  // streaming chunk by chunk into a temporary file next to `path` that is
  // renamed over it at the end (so `path` is never half-written). `path`
  // "-" writes to stdout. Returns the bytes written.
  absl::StatusOr<uint64_t> Fetch(const std::string& id,
                                 const std::string& path);

  const std::string& addr() const { return options_.addr; }

 private:
  absl::Status FromGrpc(const grpc::Status& status) const;
  // One unary call of `method` that may take `deadline`: the response, or
  // the call's error.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      grpc::Status (v1::TraceService::Stub::*method)(grpc::ClientContext*,
                                                     const Request&, Response*),
      const Request& request, absl::Duration deadline);

  const Options options_;
  std::unique_ptr<v1::TraceService::Stub> stub_;
};

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_TRACE_CLIENT_H_
