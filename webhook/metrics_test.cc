#include "webhook/metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vllm_profiler::webhook {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RendersCountersAndHistogram) {
  WebhookMetrics m;
  m.RecordReview(Outcome::kInjected, "injected", 0.0002);
  m.RecordReview(Outcome::kSkipped, "label_not_matched", 0.00003);
  m.RecordReview(Outcome::kSkipped, "label_not_matched", 0.003);
  m.RecordReview(Outcome::kFailOpen, "name_conflict", 0.0001);
  m.RecordReview(Outcome::kBadRequest, "invalid_json", 0.0001);
  m.RecordHttpError("unsupported_media_type", 1.0);
  const std::string text = m.Render();
  EXPECT_THAT(text, HasSubstr("\nvllm_profiler_webhook_requests_total 6\n"));
  EXPECT_THAT(text, HasSubstr("\nvllm_profiler_webhook_injected_total 1\n"));
  EXPECT_THAT(text, HasSubstr("\nvllm_profiler_webhook_skipped_total{reason="
                              "\"label_not_matched\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("\nvllm_profiler_webhook_fail_open_total{reason="
                              "\"name_conflict\"} 1\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "\nvllm_profiler_webhook_errors_total{reason=\"invalid_json\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("\nvllm_profiler_webhook_errors_total{reason="
                              "\"unsupported_media_type\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("request_duration_seconds_bucket{le=\"5e-05\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("request_duration_seconds_bucket{le=\"0.0001\"} 3\n"));
  EXPECT_THAT(text,
              HasSubstr("request_duration_seconds_bucket{le=\"0.5\"} 5\n"));
  EXPECT_THAT(text,
              HasSubstr("request_duration_seconds_bucket{le=\"+Inf\"} 6\n"));
  EXPECT_THAT(text, HasSubstr("request_duration_seconds_count 6\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "# TYPE vllm_profiler_webhook_request_duration_seconds histogram\n"));
}

}  // namespace
}  // namespace vllm_profiler::webhook
