#include "common/prometheus.h"

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "gtest/gtest.h"

namespace vllm_profiler {
namespace {

TEST(PrometheusTextTest, CounterAndGaugeFamilies) {
  PrometheusText m("vp_");
  m.Counter("events_total", "Events received.", 42);
  m.Gauge("probes", "Connected probes.", 3);
  EXPECT_EQ(m.Take(),
            "# HELP vp_events_total Events received.\n"
            "# TYPE vp_events_total counter\n"
            "vp_events_total 42\n"
            "# HELP vp_probes Connected probes.\n"
            "# TYPE vp_probes gauge\n"
            "vp_probes 3\n");
  EXPECT_EQ(m.Take(), "");
}

TEST(PrometheusTextTest, LabeledCounterEscapesLabelValues) {
  PrometheusText m;
  m.LabeledCounter("skipped_total", "Skipped.", "reason",
                   {{"a\"b\\c\nd", 1}, {"no_label", 2}});
  EXPECT_EQ(m.Take(),
            "# HELP skipped_total Skipped.\n"
            "# TYPE skipped_total counter\n"
            "skipped_total{reason=\"a\\\"b\\\\c\\nd\"} 1\n"
            "skipped_total{reason=\"no_label\"} 2\n");
}

TEST(PrometheusTextTest, EmptyLabeledCounterHasOnlyTheHeader) {
  PrometheusText m;
  m.LabeledCounter("errors_total", "Errors.", "reason", {});
  EXPECT_EQ(m.Take(),
            "# HELP errors_total Errors.\n# TYPE errors_total counter\n");
}

TEST(PrometheusTextTest, Histogram) {
  PrometheusText m("w_");
  const std::array<double, 2> bounds = {0.0005, 0.1};
  const std::array<uint64_t, 2> cumulative = {1, 3};
  m.Histogram("seconds", "Latency.", bounds, cumulative, 4, 1.25);
  EXPECT_EQ(m.Take(),
            "# HELP w_seconds Latency.\n"
            "# TYPE w_seconds histogram\n"
            "w_seconds_bucket{le=\"0.0005\"} 1\n"
            "w_seconds_bucket{le=\"0.1\"} 3\n"
            "w_seconds_bucket{le=\"+Inf\"} 4\n"
            "w_seconds_sum 1.250000000\n"
            "w_seconds_count 4\n");
}

}  // namespace
}  // namespace vllm_profiler
