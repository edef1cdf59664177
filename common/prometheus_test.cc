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

TEST(PrometheusTextTest, LabeledCounterWithSeveralLabelsKeepsTheirOrder) {
  PrometheusText m("vp_");
  m.LabeledCounter("steps_total", "Steps ended.",
                   {{{{"pid", "42"}, {"rank", "0"}}, 17},
                    {{{"pid", "7"}, {"rank", "-1"}}, 0}});
  EXPECT_EQ(m.Take(),
            "# HELP vp_steps_total Steps ended.\n"
            "# TYPE vp_steps_total counter\n"
            "vp_steps_total{pid=\"42\",rank=\"0\"} 17\n"
            "vp_steps_total{pid=\"7\",rank=\"-1\"} 0\n");
}

TEST(PrometheusTextTest, LabelValuesAreEscapedAndNothingElse) {
  PrometheusText m;
  m.LabeledCounter("c_total", "C.",
                   {{{{"process", "a\\b\"c\nd"}, {"tab", "x\ty{}=,"}}, 1}});
  // Backslash, double quote and line feed only; the rest is as given.
  EXPECT_EQ(m.Take(),
            "# HELP c_total C.\n# TYPE c_total counter\n"
            "c_total{process=\"a\\\\b\\\"c\\nd\",tab=\"x\ty{}=,\"} 1\n");
  EXPECT_EQ(PrometheusLabelValue("\\\"\n"), "\\\\\\\"\\n");
}

TEST(PrometheusTextTest, LabeledHistogramPutsLeAfterTheLabels) {
  PrometheusText m("w_");
  const std::array<double, 2> bounds = {0.0025, 10};
  m.LabeledHistogram("seconds", "Latency.", bounds,
                     {{{{"pid", "1"}, {"process", "w\"0"}}, {1, 3}, 4, 2.024},
                      {{{"pid", "2"}, {"process", "w1"}}, {0, 0}, 0, 0}});
  EXPECT_EQ(m.Take(),
            "# HELP w_seconds Latency.\n"
            "# TYPE w_seconds histogram\n"
            "w_seconds_bucket{pid=\"1\",process=\"w\\\"0\",le=\"0.0025\"} 1\n"
            "w_seconds_bucket{pid=\"1\",process=\"w\\\"0\",le=\"10\"} 3\n"
            "w_seconds_bucket{pid=\"1\",process=\"w\\\"0\",le=\"+Inf\"} 4\n"
            "w_seconds_sum{pid=\"1\",process=\"w\\\"0\"} 2.024000000\n"
            "w_seconds_count{pid=\"1\",process=\"w\\\"0\"} 4\n"
            "w_seconds_bucket{pid=\"2\",process=\"w1\",le=\"0.0025\"} 0\n"
            "w_seconds_bucket{pid=\"2\",process=\"w1\",le=\"10\"} 0\n"
            "w_seconds_bucket{pid=\"2\",process=\"w1\",le=\"+Inf\"} 0\n"
            "w_seconds_sum{pid=\"2\",process=\"w1\"} 0.000000000\n"
            "w_seconds_count{pid=\"2\",process=\"w1\"} 0\n");
}

TEST(PrometheusTextTest, HistogramWithoutLabelsIsTheUnlabeledOne) {
  const std::array<double, 1> bounds = {0.5};
  const std::array<uint64_t, 1> cumulative = {2};
  PrometheusText a, b;
  a.Histogram("h", "H.", bounds, cumulative, 3, 1.5);
  b.LabeledHistogram("h", "H.", bounds, {{{}, {2}, 3, 1.5}});
  EXPECT_EQ(a.Take(), b.Take());
}

}  // namespace
}  // namespace vllm_profiler
