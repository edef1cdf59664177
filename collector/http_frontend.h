// The collector's plain-HTTP front end (on //common/http):
//   GET /                 HTML index of the traces with download links
//   GET /traces           JSON list {"traces":[TraceInfo...]}, newest first
//   GET /traces/<id>      the trace (also /traces/<id>.json); gzip
//                         Content-Encoding when the client accepts gzip
//   GET /traces/<id>.json.gz  the trace as a .json.gz file
//   GET /healthz          "ok"
//   GET /metrics          Prometheus text format
// Downloads carry Content-Disposition with the file name. Unknown or invalid
// ids (anything with "/", "..", a hidden name) are 404: only ids in the
// TraceStore's index are served, nothing outside the trace directory.
//
// Thread safety: Handle() is called concurrently by the HTTP server
// threads; it only reads thread-safe objects.
#ifndef VLLM_PROFILER_COLLECTOR_HTTP_FRONTEND_H_
#define VLLM_PROFILER_COLLECTOR_HTTP_FRONTEND_H_

#include <string>

#include "collector/capture_manager.h"
#include "collector/probe_service.h"
#include "collector/trace_store.h"
#include "common/http/http_server.h"

namespace vllm_profiler::collector {

class HttpFrontend {
 public:
  // The pointees must outlive the frontend; `probes` and `manager` may be
  // null (their metrics are then 0).
  HttpFrontend(TraceStore* store, CaptureManager* manager,
               ProbeServiceImpl* probes, std::string version);
  HttpFrontend(const HttpFrontend&) = delete;
  HttpFrontend& operator=(const HttpFrontend&) = delete;

  http::Response Handle(const http::Request& request) const;

  // The /metrics body.
  std::string Metrics() const;

 private:
  http::Response Index() const;
  http::Response TraceList() const;
  http::Response Download(const http::Request& request,
                          const std::string& name) const;

  TraceStore* const store_;
  CaptureManager* const manager_;
  ProbeServiceImpl* const probes_;
  const std::string version_;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_HTTP_FRONTEND_H_
