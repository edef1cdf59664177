#include "webhook/metrics.h"

#include <string>

#include "common/prometheus.h"

namespace vllm_profiler::webhook {

void WebhookMetrics::Observe(double seconds) {
  ++requests_;
  ++count_;
  sum_ += seconds;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) ++bucket_counts_[i];
  }
}

void WebhookMetrics::RecordReview(Outcome outcome, absl::string_view reason,
                                  double seconds) {
  MutexLock lock(&mu_);
  Observe(seconds);
  switch (outcome) {
    case Outcome::kInjected:
      ++injected_;
      break;
    case Outcome::kSkipped:
      ++skipped_[std::string(reason)];
      break;
    case Outcome::kFailOpen:
      ++fail_open_[std::string(reason)];
      break;
    case Outcome::kBadRequest:
      ++errors_[std::string(reason)];
      break;
  }
}

void WebhookMetrics::RecordHttpError(absl::string_view reason, double seconds) {
  MutexLock lock(&mu_);
  Observe(seconds);
  ++errors_[std::string(reason)];
}

std::string WebhookMetrics::Render() const {
  MutexLock lock(&mu_);
  PrometheusText m("vllm_profiler_webhook_");
  m.Counter("requests_total", "HTTP requests to /mutate.", requests_);
  m.Counter("injected_total", "Pods injected.", injected_);
  // Reasons are fixed identifiers from the code, never user text.
  m.LabeledCounter("skipped_total", "Pods not injected, by rule.", "reason",
                   skipped_);
  m.LabeledCounter(
      "fail_open_total",
      "Pods admitted unchanged because injection was not possible.", "reason",
      fail_open_);
  m.LabeledCounter("errors_total", "Requests rejected with HTTP 4xx.", "reason",
                   errors_);
  m.Histogram("request_duration_seconds", "Time to answer a /mutate request.",
              kBuckets, bucket_counts_, count_, sum_);
  return m.Take();
}

}  // namespace vllm_profiler::webhook
