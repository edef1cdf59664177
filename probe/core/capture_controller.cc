#include "probe/core/capture_controller.h"

#include "absl/strings/str_cat.h"

namespace vllm_profiler::probe {

CaptureController::CaptureController(Options options) : options_(options) {
  if (!options_.window ||
      (options_.num_steps == 0 && options_.duration_ms == 0)) {
    window_done_ = true;
  }
}

CaptureController::Decision CaptureController::OnStepBegin(int64_t step,
                                                           int64_t now_ns) {
  Decision d;
  if (active_) return d;
  if (pending_ && step >= pending_->first_step &&
      now_ns >= pending_->not_before_ns) {
    active_ = Active{std::move(pending_->spec), step, now_ns, false};
    pending_.reset();
    d.action = Action::kStart;
    d.spec = active_->spec;
    return d;
  }
  if (!window_done_ && step >= options_.start_step) {
    window_done_ = true;
    if (step > static_cast<int64_t>(options_.start_step)) {
      // A command capture covered the window's first step: skip the window
      // rather than record a shifted one.
      d.note = absl::StrCat("step window at step ", options_.start_step,
                            " skipped: another capture was running");
      return d;
    }
    CaptureSpec spec;
    spec.capture_id =
        absl::StrCat("window-", options_.pid, "-", ++window_count_);
    spec.origin = v1::CAPTURE_ORIGIN_WINDOW;
    spec.config.set_start_after_steps(options_.start_step - 1);
    spec.config.set_num_steps(options_.num_steps);
    spec.config.set_duration_ms(options_.duration_ms);
    spec.config.set_record_shapes(options_.record_shapes);
    spec.config.set_gpu_activity(options_.gpu);
    spec.config.set_cpu_ops(true);
    active_ = Active{spec, step, now_ns, false};
    d.action = Action::kStart;
    d.spec = std::move(spec);
  }
  return d;
}

bool CaptureController::Expired(int64_t step, int64_t now_ns,
                                bool at_step_end) const {
  if (active_->stop_requested) return true;
  const v1::CaptureConfig& c = active_->spec.config;
  if (at_step_end && c.num_steps() > 0 &&
      step - active_->first_step + 1 >= static_cast<int64_t>(c.num_steps())) {
    return true;
  }
  if (c.duration_ms() > 0 &&
      now_ns - active_->start_ns >=
          static_cast<int64_t>(c.duration_ms()) * 1000000) {
    return true;
  }
  return false;
}

CaptureController::Decision CaptureController::Stop() {
  Decision d;
  d.action = Action::kStop;
  d.spec = std::move(active_->spec);
  active_.reset();
  return d;
}

CaptureController::Decision CaptureController::OnStepEnd(int64_t step,
                                                         int64_t now_ns) {
  if (!active_ || !Expired(step, now_ns, /*at_step_end=*/true)) {
    return Decision();
  }
  return Stop();
}

CaptureController::Decision CaptureController::OnTick(int64_t now_ns) {
  if (!active_ || !Expired(0, now_ns, /*at_step_end=*/false)) {
    return Decision();
  }
  return Stop();
}

bool CaptureController::OnStartCommand(const v1::StartCaptureCommand& command,
                                       int64_t last_step,
                                       int64_t not_before_ns) {
  if (command.capture_id().empty()) return false;
  Pending p;
  p.spec.capture_id = command.capture_id();
  p.spec.origin = v1::CAPTURE_ORIGIN_COMMAND;
  p.spec.config = command.config();
  if (p.spec.config.num_steps() == 0 && p.spec.config.duration_ms() == 0) {
    p.spec.config.set_num_steps(kDefaultCommandSteps);
  }
  if (!p.spec.config.cpu_ops() && !p.spec.config.gpu_activity()) {
    // An all-default config means "the usual": operators on.
    p.spec.config.set_cpu_ops(true);
  }
  p.first_step = last_step + 1 +
                 static_cast<int64_t>(command.config().start_after_steps());
  p.not_before_ns = not_before_ns;
  pending_ = std::move(p);
  return true;
}

void CaptureController::OnStopCommand(const std::string& capture_id) {
  if (active_ && active_->spec.capture_id == capture_id) {
    active_->stop_requested = true;
  }
  if (pending_ && pending_->spec.capture_id == capture_id) pending_.reset();
}

}  // namespace vllm_profiler::probe
