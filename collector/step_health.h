// StepHealth: live step health per probe process, from the flight
// recorder's step summaries: Prometheus series for /metrics and the
// per-process rows of `vpctl top` (GetStatus.step_health).
//
// Per process (labels pid, rank, process): histograms of step duration,
// scheduled tokens and scheduled requests per step; counters of steps,
// slow steps (a trigger rule matched, fired or not) and steps that left the
// probe's ring unsummarized. Pod-wide: triggers fired and suppressed.
// `vpctl top` rows: steps/s, tokens/s and step p50/p99 over the last
// Options::top_window, the last slow step and its reason.
//
// Memory: per process the histograms and the samples of the last
// top_window, at most Options::max_window_samples (oldest dropped). A
// process that disconnects is removed (its series disappear).
//
// Thread safety: every method may be called from any thread (one mutex).
#ifndef VLLM_PROFILER_COLLECTOR_STEP_HEALTH_H_
#define VLLM_PROFILER_COLLECTOR_STEP_HEALTH_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

class StepHealth {
 public:
  struct Options {
    absl::Duration top_window = absl::Minutes(1);
    size_t max_window_samples = 120000;
  };
  struct Process {
    int64_t pid = 0;
    int32_t rank = -1;
    std::string name;
  };
  // One ended step; `end` is its wall-clock end.
  struct Sample {
    int64_t step = 0;
    double duration_ms = 0;
    int64_t tokens = -1;    // -1 = unknown.
    int64_t requests = -1;  // -1 = unknown.
    absl::Time end;
  };

  explicit StepHealth(Options options);
  StepHealth() : StepHealth(Options()) {}
  StepHealth(const StepHealth&) = delete;
  StepHealth& operator=(const StepHealth&) = delete;

  // `key` names a process for as long as it is connected.
  void OnSteps(uint64_t key, const Process& process,
               const std::vector<Sample>& steps, uint64_t not_summarized);
  void OnSlowStep(uint64_t key, int64_t step, double ms, std::string reason);
  void OnTrigger(bool fired);
  void Forget(uint64_t key);

  // Appends the Prometheus text of every series.
  void AppendMetrics(std::string* out) const;
  // One row per process, ordered by rank then pid; rates over the samples
  // of the last top_window before `now`.
  std::vector<v1::StepHealth> Snapshot(absl::Time now) const;
  uint64_t triggers_fired() const;
  uint64_t triggers_suppressed() const;

  // Histogram bounds (upper, inclusive), exposed for tests.
  static const std::vector<double>& DurationBucketsSeconds();
  static const std::vector<double>& TokenBuckets();
  static const std::vector<double>& RequestBuckets();

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // Per bucket, not cumulative; +Inf last.
    double sum = 0;
    uint64_t count = 0;
  };
  struct Entry {
    Process process;
    Histogram duration, tokens, requests;
    uint64_t steps = 0, slow = 0, not_summarized = 0;
    int64_t last_slow_step = 0;
    double last_slow_ms = 0;
    std::string last_slow_reason;
    std::deque<Sample> recent;
    absl::Time first_seen;
  };
  static void Observe(Histogram& h, const std::vector<double>& bounds,
                      double value);

  const Options options_;
  mutable Mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t fired_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_STEP_HEALTH_H_
