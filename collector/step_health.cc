#include "collector/step_health.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/prometheus.h"

namespace vllm_profiler::collector {
namespace {

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

}  // namespace

const std::vector<double>& StepHealth::DurationBucketsSeconds() {
  static const auto* b = new std::vector<double>{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return *b;
}
const std::vector<double>& StepHealth::TokenBuckets() {
  static const auto* b =
      new std::vector<double>{1, 8, 32, 128, 512, 2048, 8192, 32768};
  return *b;
}
const std::vector<double>& StepHealth::RequestBuckets() {
  static const auto* b =
      new std::vector<double>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
  return *b;
}

StepHealth::StepHealth(Options options) : options_(std::move(options)) {}

void StepHealth::Observe(Histogram& h, const std::vector<double>& bounds,
                         double value) {
  if (h.counts.empty()) h.counts.assign(bounds.size() + 1, 0);
  const size_t i =
      std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  ++h.counts[i];
  h.sum += value;
  ++h.count;
}

void StepHealth::OnSteps(uint64_t key, const Process& process,
                         const std::vector<Sample>& steps,
                         uint64_t not_summarized) {
  MutexLock lock(&mu_);
  auto [it, added] = entries_.try_emplace(key);
  Entry& e = it->second;
  e.process = process;
  if (added && !steps.empty()) e.first_seen = steps.front().end;
  e.not_summarized += not_summarized;
  for (const Sample& s : steps) {
    ++e.steps;
    Observe(e.duration, DurationBucketsSeconds(), s.duration_ms / 1000.0);
    if (s.tokens >= 0) {
      Observe(e.tokens, TokenBuckets(), static_cast<double>(s.tokens));
    }
    if (s.requests >= 0) {
      Observe(e.requests, RequestBuckets(), static_cast<double>(s.requests));
    }
    e.recent.push_back(s);
  }
  if (!e.recent.empty()) {
    const absl::Time horizon = e.recent.back().end - options_.top_window;
    while (!e.recent.empty() &&
           (e.recent.front().end < horizon ||
            e.recent.size() > options_.max_window_samples)) {
      e.recent.pop_front();
    }
  }
}

void StepHealth::OnSlowStep(uint64_t key, int64_t step, double ms,
                            std::string reason) {
  MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  ++it->second.slow;
  it->second.last_slow_step = step;
  it->second.last_slow_ms = ms;
  it->second.last_slow_reason = std::move(reason);
}

void StepHealth::OnTrigger(bool fired) {
  MutexLock lock(&mu_);
  ++(fired ? fired_ : suppressed_);
}

void StepHealth::Forget(uint64_t key) {
  MutexLock lock(&mu_);
  entries_.erase(key);
}

uint64_t StepHealth::triggers_fired() const {
  MutexLock lock(&mu_);
  return fired_;
}

uint64_t StepHealth::triggers_suppressed() const {
  MutexLock lock(&mu_);
  return suppressed_;
}

void StepHealth::AppendMetrics(std::string* out) const {
  MutexLock lock(&mu_);
  // Read through a pointer taken under the lock: clang's analysis does
  // not follow the lock into the lambdas below, which run under it.
  const std::map<uint64_t, Entry>* entries = &entries_;
  auto labels = [](const Entry& e) {
    return PrometheusLabels{{"pid", absl::StrCat(e.process.pid)},
                            {"rank", absl::StrCat(e.process.rank)},
                            {"process", e.process.name}};
  };
  PrometheusText m("vllm_profiler_");
  auto histogram = [&](const char* name, const char* help,
                       const std::vector<double>& bounds,
                       Histogram Entry::*member) {
    std::vector<PrometheusHistogramSample> samples;
    for (const auto& [key, e] : *entries) {
      const Histogram& h = e.*member;
      PrometheusHistogramSample& s = samples.emplace_back();
      s.labels = labels(e);
      uint64_t cumulative = 0;
      for (size_t i = 0; i < bounds.size(); ++i) {
        cumulative += h.counts.empty() ? 0 : h.counts[i];
        s.cumulative.push_back(cumulative);
      }
      s.count = h.count;
      s.sum = h.sum;
    }
    m.LabeledHistogram(name, help, bounds, samples);
  };
  auto counter = [&](const char* name, const char* help,
                     uint64_t Entry::*member) {
    std::vector<PrometheusSample> samples;
    for (const auto& [key, e] : *entries) {
      samples.push_back({labels(e), e.*member});
    }
    m.LabeledCounter(name, help, samples);
  };
  histogram("step_duration_seconds",
            "Duration of the engine steps of a process.",
            DurationBucketsSeconds(), &Entry::duration);
  histogram("step_scheduled_tokens", "Tokens scheduled per step.",
            TokenBuckets(), &Entry::tokens);
  histogram("step_scheduled_requests", "Requests scheduled per step.",
            RequestBuckets(), &Entry::requests);
  counter("steps_total", "Steps the process ended.", &Entry::steps);
  counter("slow_steps_total",
          "Steps that matched a trigger rule (fired or suppressed).",
          &Entry::slow);
  counter("steps_not_summarized_total",
          "Steps that left the probe's ring before a summary carried them.",
          &Entry::not_summarized);
  m.Counter("triggers_fired_total",
            "Flight recorder triggers that produced a trace capture.", fired_);
  m.Counter("triggers_suppressed_total",
            "Flight recorder triggers suppressed (cooldown, capture running).",
            suppressed_);
  out->append(m.Take());
}

std::vector<v1::StepHealth> StepHealth::Snapshot(absl::Time now) const {
  MutexLock lock(&mu_);
  std::vector<v1::StepHealth> out;
  for (const auto& [key, e] : entries_) {
    v1::StepHealth h;
    h.set_pid(e.process.pid);
    h.set_rank(e.process.rank);
    h.set_process_name(e.process.name);
    h.set_steps(e.steps);
    h.set_slow_steps(e.slow);
    h.set_last_slow_step(e.last_slow_step);
    h.set_last_slow_ms(e.last_slow_ms);
    h.set_last_slow_reason(e.last_slow_reason);
    const absl::Time from = now - options_.top_window;
    std::vector<double> ms;
    double tokens = 0;
    for (const Sample& s : e.recent) {
      if (s.end < from || s.end > now) continue;
      ms.push_back(s.duration_ms);
      tokens += std::max<int64_t>(0, s.tokens);
    }
    // Rates over the window, or over the time since the first step when the
    // process is younger than the window.
    const double seconds = absl::ToDoubleSeconds(
        std::min(options_.top_window, now - e.first_seen));
    if (seconds > 0) {
      h.set_steps_per_s(ms.size() / seconds);
      h.set_tokens_per_s(tokens / seconds);
    }
    h.set_step_p50_ms(Percentile(ms, 0.5));
    h.set_step_p99_ms(Percentile(ms, 0.99));
    out.push_back(std::move(h));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.rank(), a.pid()) <
           std::make_pair(b.rank(), b.pid());
  });
  return out;
}

}  // namespace vllm_profiler::collector
