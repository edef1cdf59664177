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
  Family(name, help, "counter");
  for (const auto& [v, n] : values) {
    absl::StrAppend(&out_, prefix_, name, "{", label, "=\"",
                    PrometheusLabelValue(v), "\"} ", n, "\n");
  }
}

void PrometheusText::Histogram(absl::string_view name, absl::string_view help,
                               absl::Span<const double> bounds,
                               absl::Span<const uint64_t> cumulative,
                               uint64_t count, double sum) {
  Family(name, help, "histogram");
  for (size_t i = 0; i < bounds.size() && i < cumulative.size(); ++i) {
    absl::StrAppend(&out_, prefix_, name, "_bucket{le=\"",
                    absl::StrFormat("%g", bounds[i]), "\"} ", cumulative[i],
                    "\n");
  }
  absl::StrAppend(&out_, prefix_, name, "_bucket{le=\"+Inf\"} ", count, "\n",
                  prefix_, name, "_sum ", absl::StrFormat("%.9f", sum), "\n",
                  prefix_, name, "_count ", count, "\n");
}

std::string PrometheusText::Take() { return std::exchange(out_, {}); }

}  // namespace vllm_profiler
