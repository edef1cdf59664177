#include "common/prometheus.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vllm_profiler {

std::string PrometheusLabelValue(absl::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

// "{a=\"x\",b=\"y\"}", with le="<le>" last when `le` is not empty; "" when
// there is no label at all.
std::string LabelSet(const PrometheusLabels& labels,
                     absl::string_view le = "") {
  std::string out;
  for (const auto& [name, value] : labels) {
    absl::StrAppend(&out, out.empty() ? "{" : ",", name, "=\"",
                    PrometheusLabelValue(value), "\"");
  }
  if (!le.empty())
    absl::StrAppend(&out, out.empty() ? "{" : ",", "le=\"", le, "\"");
  if (!out.empty()) out += "}";
  return out;
}

}  // namespace

void PrometheusText::Family(absl::string_view name, absl::string_view help,
                            absl::string_view type) {
  absl::StrAppend(&out_, "# HELP ", prefix_, name, " ", help, "\n# TYPE ",
                  prefix_, name, " ", type, "\n");
}

void PrometheusText::Counter(absl::string_view name, absl::string_view help,
                             uint64_t value) {
  Family(name, help, "counter");
  absl::StrAppend(&out_, prefix_, name, " ", value, "\n");
}

void PrometheusText::Gauge(absl::string_view name, absl::string_view help,
                           uint64_t value) {
  Family(name, help, "gauge");
  absl::StrAppend(&out_, prefix_, name, " ", value, "\n");
}

void PrometheusText::LabeledCounter(
    absl::string_view name, absl::string_view help, absl::string_view label,
    const std::map<std::string, uint64_t>& values) {
  std::vector<PrometheusSample> samples;
  samples.reserve(values.size());
  for (const auto& [v, n] : values) {
    samples.push_back({{{std::string(label), v}}, n});
  }
  LabeledCounter(name, help, samples);
}

void PrometheusText::LabeledCounter(
    absl::string_view name, absl::string_view help,
    absl::Span<const PrometheusSample> samples) {
  Family(name, help, "counter");
  for (const PrometheusSample& s : samples) {
    absl::StrAppend(&out_, prefix_, name, LabelSet(s.labels), " ", s.value,
                    "\n");
  }
}

void PrometheusText::Histogram(absl::string_view name, absl::string_view help,
                               absl::Span<const double> bounds,
                               absl::Span<const uint64_t> cumulative,
                               uint64_t count, double sum) {
  Family(name, help, "histogram");
  HistogramSamples(name, bounds, {}, cumulative, count, sum);
}

void PrometheusText::LabeledHistogram(
    absl::string_view name, absl::string_view help,
    absl::Span<const double> bounds,
    absl::Span<const PrometheusHistogramSample> samples) {
  Family(name, help, "histogram");
  for (const PrometheusHistogramSample& s : samples) {
    HistogramSamples(name, bounds, s.labels, s.cumulative, s.count, s.sum);
  }
}

void PrometheusText::HistogramSamples(absl::string_view name,
                                      absl::Span<const double> bounds,
                                      const PrometheusLabels& labels,
                                      absl::Span<const uint64_t> cumulative,
                                      uint64_t count, double sum) {
  for (size_t i = 0; i < bounds.size() && i < cumulative.size(); ++i) {
    absl::StrAppend(&out_, prefix_, name, "_bucket",
                    LabelSet(labels, absl::StrFormat("%g", bounds[i])), " ",
                    cumulative[i], "\n");
  }
  const std::string l = LabelSet(labels);
  absl::StrAppend(&out_, prefix_, name, "_bucket", LabelSet(labels, "+Inf"),
                  " ", count, "\n", prefix_, name, "_sum", l, " ",
                  absl::StrFormat("%.9f", sum), "\n", prefix_, name, "_count",
                  l, " ", count, "\n");
}

std::string PrometheusText::Take() { return std::exchange(out_, {}); }

}  // namespace vllm_profiler
