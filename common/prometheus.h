// Prometheus text exposition format (version 0.0.4), the body of a
// GET /metrics answer. The one writer of it in the tree: the webhook and the
// collector both render through it.
//
//   PrometheusText m("vllm_profiler_");
//   m.Counter("events_received_total", "Events received.", n);
//   m.Gauge("probes_connected", "Connected probes.", k);
//   m.LabeledCounter("steps_total", "Steps ended.",
//                    {{{{"pid", "42"}, {"rank", "0"}}, 17}});
//   std::string body = m.Take();
//
// Each call writes one metric family: "# HELP", "# TYPE", then its samples
// (a labeled family has one sample, or one histogram, per label set, in the
// order given). Names, label names and help texts come from the code (never
// user input) and are written as they are; label values are escaped as the
// format requires (\\, \", \n).
// Thread safety: none; one object per rendering.
#ifndef VLLM_PROFILER_COMMON_PROMETHEUS_H_
#define VLLM_PROFILER_COMMON_PROMETHEUS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vllm_profiler {

// The labels of one sample, in order: (name, value).
using PrometheusLabels = std::vector<std::pair<std::string, std::string>>;

// One sample of a labeled counter or gauge.
struct PrometheusSample {
  PrometheusLabels labels;
  uint64_t value = 0;
};

// One histogram of a labeled histogram family: `cumulative[i]` observations
// were <= the family's `bounds[i]`; +Inf is `count`.
struct PrometheusHistogramSample {
  PrometheusLabels labels;
  std::vector<uint64_t> cumulative;
  uint64_t count = 0;
  double sum = 0;
};

class PrometheusText {
 public:
  // `prefix` is put in front of every metric name.
  explicit PrometheusText(absl::string_view prefix = "") : prefix_(prefix) {}

  void Counter(absl::string_view name, absl::string_view help, uint64_t value);
  void Gauge(absl::string_view name, absl::string_view help, uint64_t value);
  // A counter family with one label: one sample per entry of `values`
  // (label value -> count), in the map's order.
  void LabeledCounter(absl::string_view name, absl::string_view help,
                      absl::string_view label,
                      const std::map<std::string, uint64_t>& values);
  // A counter family, one sample per label set.
  void LabeledCounter(absl::string_view name, absl::string_view help,
                      absl::Span<const PrometheusSample> samples);
  // A histogram: `cumulative[i]` observations were <= `bounds[i]` (seconds
  // or whatever the unit is); +Inf is `count`.
  void Histogram(absl::string_view name, absl::string_view help,
                 absl::Span<const double> bounds,
                 absl::Span<const uint64_t> cumulative, uint64_t count,
                 double sum);
  // A histogram family, one histogram per label set; each sample's buckets
  // carry its labels, then "le".
  void LabeledHistogram(absl::string_view name, absl::string_view help,
                        absl::Span<const double> bounds,
                        absl::Span<const PrometheusHistogramSample> samples);

  // The text written so far; the object is empty afterwards.
  std::string Take();

 private:
  void Family(absl::string_view name, absl::string_view help,
              absl::string_view type);
  void HistogramSamples(absl::string_view name, absl::Span<const double> bounds,
                        const PrometheusLabels& labels,
                        absl::Span<const uint64_t> cumulative, uint64_t count,
                        double sum);

  std::string prefix_;
  std::string out_;
};

// Escapes a label value: backslash, double quote and newline.
std::string PrometheusLabelValue(absl::string_view v);

}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COMMON_PROMETHEUS_H_
