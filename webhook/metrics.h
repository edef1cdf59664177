// Prometheus metrics of the webhook, rendered in the text exposition format
// (version 0.0.4) for GET /metrics:
//
//   vllm_profiler_webhook_requests_total                counter
//   vllm_profiler_webhook_injected_total                counter
//   vllm_profiler_webhook_skipped_total{reason="..."}   counter
//   vllm_profiler_webhook_fail_open_total{reason="..."} counter
//   vllm_profiler_webhook_errors_total{reason="..."}    counter (HTTP 4xx)
//   vllm_profiler_webhook_request_duration_seconds      histogram
//
// Thread-safety: every method may be called from any thread; one mutex
// guards the maps (a few hundred ns per request, far below the handler).
#ifndef VLLM_PROFILER_WEBHOOK_METRICS_H_
#define VLLM_PROFILER_WEBHOOK_METRICS_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "common/mutex.h"
#include "webhook/admission.h"

namespace vllm_profiler::webhook {

class WebhookMetrics {
 public:
  // Upper bounds (seconds) of the latency histogram buckets; +Inf implied.
  static constexpr std::array<double, 12> kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,   0.01,   0.025,   0.05,   0.1,   0.5};

  WebhookMetrics() = default;
  WebhookMetrics(const WebhookMetrics&) = delete;
  WebhookMetrics& operator=(const WebhookMetrics&) = delete;

  // One /mutate request that reached the admission logic.
  void RecordReview(Outcome outcome, absl::string_view reason, double seconds);
  // A request rejected before the admission logic (wrong path, method,
  // content type, size): counted as a request and an error.
  void RecordHttpError(absl::string_view reason, double seconds);

  std::string Render() const;

 private:
  void Observe(double seconds) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  uint64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t injected_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, uint64_t> skipped_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> fail_open_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> errors_ ABSL_GUARDED_BY(mu_);
  std::array<uint64_t, kBuckets.size()> bucket_counts_
      ABSL_GUARDED_BY(mu_) = {};
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vllm_profiler::webhook

#endif  // VLLM_PROFILER_WEBHOOK_METRICS_H_
