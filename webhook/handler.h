// The webhook's HTTP routes, independent of the socket layer so tests call
// them directly:
//
//   POST /mutate   AdmissionReview in, AdmissionReview out (Admitter)
//   GET  /healthz  200 "ok" while the process serves
//   GET  /readyz   200 "ok" (the TLS pair loaded at start, or it would not
//                  serve)
//   GET  /metrics  Prometheus text (WebhookMetrics)
//
// HTTP-level rejections, each with a one-line text/plain message:
//   404 unknown path, 405 wrong method (with Allow), 415 a Content-Type
//   other than application/json, 413 a body over the limit (the HTTP server
//   enforces it before the body is read; checked again here), 400 a body
//   that is not a valid AdmissionReview (message from Admitter).
//
// Thread-safety: Handle() may run on many threads at once; the Admitter is
// immutable and the metrics synchronise themselves. Both are borrowed and
// must outlive the handler.
#ifndef VLLM_PROFILER_WEBHOOK_HANDLER_H_
#define VLLM_PROFILER_WEBHOOK_HANDLER_H_

#include <cstdint>

#include "common/http/http_server.h"
#include "webhook/admission.h"
#include "webhook/metrics.h"

namespace vllm_profiler::webhook {

class WebhookHandler {
 public:
  struct Options {
    // Bodies above this get 413 (default 3 MiB: a Pod is at most ~1.5 MB in
    // etcd, and the review also carries request metadata).
    int64_t max_body_bytes = 3 * 1024 * 1024;
  };

  WebhookHandler(const Admitter* admitter, WebhookMetrics* metrics,
                 Options options);
  WebhookHandler(const WebhookHandler&) = delete;
  WebhookHandler& operator=(const WebhookHandler&) = delete;

  http::Response Handle(const http::Request& request) const;

 private:
  http::Response Mutate(const http::Request& request) const;

  const Admitter* const admitter_;
  WebhookMetrics* const metrics_;
  const Options options_;
};

}  // namespace vllm_profiler::webhook

#endif  // VLLM_PROFILER_WEBHOOK_HANDLER_H_
