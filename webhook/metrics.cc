#include "webhook/metrics.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vllm_profiler::webhook {
namespace {

constexpr char kPrefix[] = "vllm_profiler_webhook_";

void RenderLabeled(std::string* out, absl::string_view name,
                   absl::string_view help,
                   const std::map<std::string, uint64_t>& values) {
  absl::StrAppend(out, "# HELP ", kPrefix, name, " ", help, "\n# TYPE ",
                  kPrefix, name, " counter\n");
  for (const auto& [reason, n] : values) {
    // Reasons are fixed identifiers from the code, never user text, so
    // they need no label-value escaping.
    absl::StrAppend(out, kPrefix, name, "{reason=\"", reason, "\"} ", n, "\n");
  }
}

}  // namespace

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
  absl::MutexLock lock(&mu_);
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
  absl::MutexLock lock(&mu_);
  Observe(seconds);
  ++errors_[std::string(reason)];
}

std::string WebhookMetrics::Render() const {
  absl::MutexLock lock(&mu_);
  std::string out;
  absl::StrAppend(&out, "# HELP ", kPrefix,
                  "requests_total HTTP requests to /mutate.\n# TYPE ", kPrefix,
                  "requests_total counter\n", kPrefix, "requests_total ",
                  requests_, "\n");
  absl::StrAppend(&out, "# HELP ", kPrefix,
                  "injected_total Pods injected.\n# TYPE ", kPrefix,
                  "injected_total counter\n", kPrefix, "injected_total ",
                  injected_, "\n");
  RenderLabeled(&out, "skipped_total", "Pods not injected, by rule.", skipped_);
  RenderLabeled(&out, "fail_open_total",
                "Pods admitted unchanged because injection was not possible.",
                fail_open_);
  RenderLabeled(&out, "errors_total", "Requests rejected with HTTP 4xx.",
                errors_);
  const std::string h = absl::StrCat(kPrefix, "request_duration_seconds");
  absl::StrAppend(&out, "# HELP ", h,
                  " Time to answer a /mutate request.\n# TYPE ", h,
                  " histogram\n");
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    absl::StrAppend(&out, h, "_bucket{le=\"",
                    absl::StrFormat("%g", kBuckets[i]), "\"} ",
                    bucket_counts_[i], "\n");
  }
  absl::StrAppend(&out, h, "_bucket{le=\"+Inf\"} ", count_, "\n", h, "_sum ",
                  absl::StrFormat("%.9f", sum_), "\n", h, "_count ", count_,
                  "\n");
  return out;
}

}  // namespace vllm_profiler::webhook
