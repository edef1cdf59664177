// Decides when captures start and stop: the env step window (seed defaults:
// call 100, 50 calls), on-demand StartCaptureCommands from the collector
// (start at the next step boundary plus start_after_steps, for N steps), and
// the time bound (duration_ms).
//
// Pure logic, no threads, no clock of its own (times are passed in), so it is
// tested exhaustively with plain numbers. Not thread-safe: the Probe calls it
// under its control mutex.
#ifndef VLLM_PROFILER_PROBE_CORE_CAPTURE_CONTROLLER_H_
#define VLLM_PROFILER_PROBE_CORE_CAPTURE_CONTROLLER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

struct CaptureSpec {
  std::string capture_id;
  v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_UNSPECIFIED;
  v1::CaptureConfig config;
};

class CaptureController {
 public:
  struct Options {
    bool window = true;         // Run the env window once.
    uint32_t start_step = 100;  // First captured step (1-based).
    uint32_t num_steps = 50;    // 0: bounded by duration only.
    uint32_t duration_ms = 0;   // 0: bounded by steps only.
    bool record_shapes = true;
    bool gpu = true;
    int64_t pid = 0;  // For window capture ids.
  };
  // A command with neither steps nor duration records this many steps
  // (TraceService.StartCapture's documented default).
  static constexpr uint32_t kDefaultCommandSteps = 5;

  enum class Action { kNone, kStart, kStop };
  struct Decision {
    Action action = Action::kNone;
    CaptureSpec spec;  // The capture started or stopped.
    std::string note;  // Something to log once (e.g. window skipped).
  };

  explicit CaptureController(Options options);

  // At the start of step `step` (1-based, increasing) at `now_ns`.
  Decision OnStepBegin(int64_t step, int64_t now_ns);
  // At the end of step `step`.
  Decision OnStepEnd(int64_t step, int64_t now_ns);
  // Periodically from the sender thread: applies the time bound and stop
  // commands when no step boundary comes.
  Decision OnTick(int64_t now_ns);

  // A command from the collector; `last_step` is the last step begun.
  // Replaces a pending (not yet started) command. Returns false (and
  // ignores it) when the command is malformed (empty id). `not_before_ns`
  // (the monotonic time of config.start_at_unix_ns, 0 = none): the capture
  // starts at the first step that begins at or after it.
  bool OnStartCommand(const v1::StartCaptureCommand& command, int64_t last_step,
                      int64_t not_before_ns = 0);
  void OnStopCommand(const std::string& capture_id);

  bool active() const { return active_.has_value(); }
  const CaptureSpec* active_spec() const {
    return active_ ? &active_->spec : nullptr;
  }
  int64_t active_first_step() const {
    return active_ ? active_->first_step : 0;
  }
  bool pending() const { return pending_.has_value(); }

 private:
  struct Active {
    CaptureSpec spec;
    int64_t first_step = 0;
    int64_t start_ns = 0;
    bool stop_requested = false;
  };
  struct Pending {
    CaptureSpec spec;
    int64_t first_step = 0;
    int64_t not_before_ns = 0;
  };
  bool Expired(int64_t step, int64_t now_ns, bool at_step_end) const;
  Decision Stop();

  Options options_;
  bool window_done_ = false;
  uint64_t window_count_ = 0;
  std::optional<Active> active_;
  std::optional<Pending> pending_;
};

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_CAPTURE_CONTROLLER_H_
