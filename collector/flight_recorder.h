// FlightRecorder: the collector's side of the flight recorder. It receives
// every probe's step summaries (ProbeServiceImpl calls OnStepSummaries),
// keeps the live step health (StepHealth), evaluates the trigger rules
// (TriggerEvaluator) and, when one fires or TraceService.Trigger asks,
// starts one capture over every connected probe that carries:
//   * the last Options::pre_steps steps of each probe's ring (FlightDump),
//   * the next Options::post_steps steps captured fully (operators, GPU),
//   * on the probe whose step triggered, an instant event at that step
//     naming the rule, the step's time and the median.
// The trace is listed with origin TRIGGER and the reason.
//
// The probes are reached through Probes (ProbeServiceImpl in the collector,
// a fake in tests), set once before any stream is served.
//
// Thread safety: every method may be called from any thread. mu_ guards the
// evaluator; commands are sent outside it (a write can block on flow
// control). Lock order: mu_ before StepHealth's and CaptureManager's.
#ifndef VLLM_PROFILER_COLLECTOR_FLIGHT_RECORDER_H_
#define VLLM_PROFILER_COLLECTOR_FLIGHT_RECORDER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/capture_manager.h"
#include "collector/step_health.h"
#include "collector/trigger_evaluator.h"
#include "common/mutex.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

class FlightRecorder {
 public:
  struct Options {
    TriggerEvaluator::Options trigger;
    uint32_t pre_steps = 200;  // --trigger_pre_steps
    uint32_t post_steps = 20;  // --trigger_post_steps
    StepHealth::Options health;
    // The clock (tests inject a fake one).
    std::function<absl::Time()> now = [] { return absl::Now(); };
  };
  class Probes {
   public:
    virtual ~Probes() = default;
    virtual std::vector<int64_t> ConnectedPids() const = 0;
    // Returns the pids the command reached.
    virtual std::vector<int64_t> SendCommand(
        const std::vector<int64_t>& pids,
        const v1::CollectorCommand& command) = 0;
  };
  // Who sent a summary: one connected process.
  struct Source {
    uint64_t key = 0;  // Unique per connection.
    int64_t pid = 0;
    int32_t rank = -1;
    std::string name;
    // Probe CLOCK_MONOTONIC ns -> Unix-epoch ns.
    int64_t mono_to_wall_ns = 0;
  };
  // What a trigger started.
  struct Fired {
    std::string capture_id;
    std::vector<int64_t> pids;
    std::string reason;
  };

  // `manager` must outlive the recorder.
  FlightRecorder(Options options, CaptureManager* manager);
  FlightRecorder(const FlightRecorder&) = delete;
  FlightRecorder& operator=(const FlightRecorder&) = delete;

  void set_probes(Probes* probes) { probes_ = probes; }

  // A probe's StepSummaries (validated). Returns the capture a trigger
  // started, if one did.
  std::optional<Fired> OnStepSummaries(const Source& source,
                                       const v1::StepSummaries& summaries);
  void OnProbeGone(uint64_t key);
  // TraceService.Trigger. FAILED_PRECONDITION without probes.
  absl::StatusOr<Fired> Trigger(const std::string& reason);

  StepHealth& health() { return health_; }
  const Options& options() const { return options_; }

 private:
  absl::StatusOr<Fired> Fire(const TriggerDecision& d, int64_t marker_pid);

  const Options options_;
  CaptureManager* const manager_;
  Probes* probes_ = nullptr;
  StepHealth health_;
  Mutex mu_;
  TriggerEvaluator evaluator_ ABSL_GUARDED_BY(mu_);
};

// The marker's name for `d`, e.g. "flight trigger (factor): slow step: ...".
std::string FlightMarkerName(const TriggerDecision& d);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_FLIGHT_RECORDER_H_
