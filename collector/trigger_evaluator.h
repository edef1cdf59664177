// TriggerEvaluator: the flight recorder's trigger rules, evaluated over the
// step summaries of every process of the pod (pure logic, no I/O).
//
// Rules, in the order they are checked for one ended step:
//   * raised:  the step raised (its summary carries an error), when on;
//   * slow:    the step took longer than Options::slow_step_ms (0 = off);
//   * factor:  the step took longer than Options::factor times the median
//              of the process's previous Options::window steps (0 = off);
//              never before that window is full.
// An explicit trigger (vpctl trigger, TraceService.Trigger) is Manual().
//
// At most one trigger fires per Options::cooldown: a rule that matches
// within it is returned with fired = false (suppressed) and counted. An
// explicit trigger is a deliberate request: it fires regardless and starts
// a new cooldown.
//
// Time is passed in (tests use a fake clock). Memory: 2 x `window` doubles
// per process; a step costs O(log window) compares plus a move of at most
// `window` doubles (the window is also kept sorted, so the median is read,
// not computed). Thread safety: none; the owner (FlightRecorder) serialises.
#ifndef VLLM_PROFILER_COLLECTOR_TRIGGER_EVALUATOR_H_
#define VLLM_PROFILER_COLLECTOR_TRIGGER_EVALUATOR_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace vllm_profiler::collector {

enum class TriggerRule { kRaised, kSlowStep, kFactor, kManual };
const char* TriggerRuleName(TriggerRule rule);

// One ended step as the evaluator needs it.
struct StepSample {
  int64_t step = 0;
  int64_t start_ns = 0;  // Probe CLOCK_MONOTONIC (for the marker).
  double duration_ms = 0;
  std::string error;  // Non-empty: the step raised.
};

struct TriggerDecision {
  TriggerRule rule = TriggerRule::kManual;
  bool fired = false;  // False: suppressed by the cooldown.
  uint64_t process = 0;
  int64_t step = 0;
  int64_t start_ns = 0;
  double step_ms = 0;
  double median_ms = 0;  // 0 when the window is not full.
  // One line for the trace list and the marker, e.g.
  // "slow step: step 812 took 87.2 ms > 3 x median 20.1 ms (rule factor)".
  std::string reason;
};

class TriggerEvaluator {
 public:
  struct Options {
    double slow_step_ms = 0;  // --trigger_slow_step_ms; 0 = off.
    double factor = 0;        // --trigger_factor; 0 = off, else > 1.
    uint32_t window = 500;    // --trigger_window (steps, >= 1).
    bool on_error = true;     // --trigger_on_error.
    absl::Duration cooldown = absl::Minutes(10);  // --trigger_cooldown.
  };

  explicit TriggerEvaluator(Options options);
  TriggerEvaluator(const TriggerEvaluator&) = delete;
  TriggerEvaluator& operator=(const TriggerEvaluator&) = delete;

  // One ended step of process `process`. Returns a decision when a rule
  // matched (fired or suppressed); the step then joins the window.
  std::optional<TriggerDecision> OnStep(uint64_t process,
                                        const StepSample& step, absl::Time now);
  // An explicit trigger; always fires.
  TriggerDecision Manual(std::string reason, absl::Time now);
  // The process went away: its window is dropped.
  void Forget(uint64_t process);
  // Cancels the last firing's cooldown (its capture could not start).
  void ResetCooldown() { last_fired_.reset(); }

  uint64_t fired() const { return fired_; }
  uint64_t suppressed() const { return suppressed_; }
  const Options& options() const { return options_; }

 private:
  struct Window {
    std::vector<double> ms;      // Ring of the last `window` durations.
    std::vector<double> sorted;  // The same values, ascending.
    size_t next = 0;
    bool full = false;
  };
  static double Median(const Window& w);
  void Add(Window& w, double ms);

  const Options options_;
  absl::flat_hash_map<uint64_t, Window> windows_;
  std::optional<absl::Time> last_fired_;
  uint64_t fired_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_TRIGGER_EVALUATOR_H_
