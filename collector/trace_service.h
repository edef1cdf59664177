// TraceService: what users (vpctl, grpcurl) call: list, download, delete
// traces, start captures, see the collector's status.
//
// Errors: an unknown or invalid trace id is NOT_FOUND; StartCapture with no
// connected probe is FAILED_PRECONDITION, with a pid that is not connected
// NOT_FOUND. A capture that could not be written (disk full, directory not
// writable) is reported in StartCaptureResponse.trace.error (wait=true) and
// in GetStatus (captures[].error, disk.last_error).
//
// Threading: gRPC's sync server threads; the service itself is stateless
// beyond the objects it points to.
#ifndef VLLM_PROFILER_COLLECTOR_TRACE_SERVICE_H_
#define VLLM_PROFILER_COLLECTOR_TRACE_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "absl/status/status.h"
#include "collector/capture_manager.h"
#include "collector/probe_service.h"
#include "collector/trace_store.h"
#include "proto/profiler.grpc.pb.h"

namespace vllm_profiler::collector {

// absl::Status -> grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);

class TraceServiceImpl : public v1::TraceService::Service {
 public:
  struct Options {
    std::string collector_version = "0.1.0";
    // GetStatusResponse.injection (the webhook's status annotation).
    std::string injection;
    // StartCapture(wait) without timeout_ms waits this long. Default 120 s.
    absl::Duration default_wait = absl::Seconds(120);
  };

  // The pointees must outlive the service.
  TraceServiceImpl(Options options, TraceStore* store, CaptureManager* manager,
                   ProbeServiceImpl* probes);

  grpc::Status ListTraces(grpc::ServerContext* context,
                          const v1::ListTracesRequest* request,
                          v1::ListTracesResponse* response) override;
  grpc::Status GetTrace(grpc::ServerContext* context,
                        const v1::GetTraceRequest* request,
                        grpc::ServerWriter<v1::TraceChunk>* writer) override;
  grpc::Status StartCapture(grpc::ServerContext* context,
                            const v1::StartCaptureRequest* request,
                            v1::StartCaptureResponse* response) override;
  grpc::Status GetStatus(grpc::ServerContext* context,
                         const v1::GetStatusRequest* request,
                         v1::GetStatusResponse* response) override;
  grpc::Status DeleteTrace(grpc::ServerContext* context,
                           const v1::DeleteTraceRequest* request,
                           v1::DeleteTraceResponse* response) override;

 private:
  const Options options_;
  TraceStore* const store_;
  CaptureManager* const manager_;
  ProbeServiceImpl* const probes_;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_TRACE_SERVICE_H_
