#include "collector/trigger_evaluator.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vllm_profiler::collector {

const char* TriggerRuleName(TriggerRule rule) {
  switch (rule) {
    case TriggerRule::kRaised:
      return "raised";
    case TriggerRule::kSlowStep:
      return "slow_step_ms";
    case TriggerRule::kFactor:
      return "factor";
    case TriggerRule::kManual:
      return "manual";
  }
  return "unknown";
}

TriggerEvaluator::TriggerEvaluator(Options options)
    : options_(std::move(options)) {}

double TriggerEvaluator::Median(const Window& w) {
  const std::vector<double>& v = w.sorted;
  const size_t mid = v.size() / 2;
  return v.size() % 2 == 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

void TriggerEvaluator::Add(Window& w, double ms) {
  const size_t cap = std::max<uint32_t>(1, options_.window);
  std::vector<double>& sorted = w.sorted;
  if (w.ms.size() < cap) {
    w.ms.push_back(ms);
    w.full = w.ms.size() == cap;
  } else {
    // The oldest value leaves the sorted copy (any equal value will do).
    const double old = w.ms[w.next];
    sorted.erase(std::lower_bound(sorted.begin(), sorted.end(), old));
    w.ms[w.next] = ms;
    w.next = (w.next + 1) % cap;
  }
  sorted.insert(std::upper_bound(sorted.begin(), sorted.end(), ms), ms);
}

std::optional<TriggerDecision> TriggerEvaluator::OnStep(uint64_t process,
                                                        const StepSample& step,
                                                        absl::Time now) {
  Window& w = windows_[process];
  const double median = w.full ? Median(w) : 0;
  std::optional<TriggerDecision> d;
  auto match = [&](TriggerRule rule, std::string why) {
    d.emplace();
    d->rule = rule;
    d->process = process;
    d->step = step.step;
    d->start_ns = step.start_ns;
    d->step_ms = step.duration_ms;
    d->median_ms = median;
    d->reason = std::move(why);
  };
  if (options_.on_error && !step.error.empty()) {
    match(TriggerRule::kRaised,
          absl::StrFormat("step %d raised %s (%.1f ms)", step.step, step.error,
                          step.duration_ms));
  } else if (options_.slow_step_ms > 0 &&
             step.duration_ms > options_.slow_step_ms) {
    match(TriggerRule::kSlowStep,
          absl::StrFormat("slow step: step %d took %.1f ms > %g ms", step.step,
                          step.duration_ms, options_.slow_step_ms));
  } else if (options_.factor > 0 && w.full &&
             step.duration_ms > options_.factor * median) {
    match(TriggerRule::kFactor,
          absl::StrFormat("slow step: step %d took %.1f ms > %g x median "
                          "%.1f ms of the last %u steps",
                          step.step, step.duration_ms, options_.factor, median,
                          options_.window));
  }
  Add(w, step.duration_ms);
  if (!d.has_value()) return d;
  if (last_fired_.has_value() && now - *last_fired_ < options_.cooldown) {
    ++suppressed_;
    d->fired = false;
  } else {
    ++fired_;
    d->fired = true;
    last_fired_ = now;
  }
  return d;
}

TriggerDecision TriggerEvaluator::Manual(std::string reason, absl::Time now) {
  TriggerDecision d;
  d.rule = TriggerRule::kManual;
  d.fired = true;
  d.reason = reason.empty() ? "manual" : absl::StrCat("manual: ", reason);
  ++fired_;
  last_fired_ = now;
  return d;
}

void TriggerEvaluator::Forget(uint64_t process) { windows_.erase(process); }

}  // namespace vllm_profiler::collector
