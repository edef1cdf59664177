#include "collector/flight_recorder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace vllm_profiler::collector {

std::string FlightMarkerName(const TriggerDecision& d) {
  return absl::StrCat("flight trigger (", TriggerRuleName(d.rule),
                      "): ", d.reason);
}

FlightRecorder::FlightRecorder(Options options, CaptureManager* manager)
    : options_(std::move(options)),
      manager_(manager),
      health_(options_.health),
      evaluator_(options_.trigger) {}

std::optional<FlightRecorder::Fired> FlightRecorder::OnStepSummaries(
    const Source& source, const v1::StepSummaries& summaries) {
  std::vector<StepHealth::Sample> samples;
  samples.reserve(summaries.steps_size());
  std::optional<TriggerDecision> to_fire;
  std::vector<TriggerDecision> slow;
  {
    MutexLock lock(&mu_);
    const absl::Time now = options_.now();
    for (const v1::StepSummary& s : summaries.steps()) {
      StepHealth::Sample h;
      h.step = s.step();
      h.duration_ms = s.duration_ns() / 1e6;
      h.tokens = s.num_tokens();
      h.requests = s.num_requests();
      h.end = absl::FromUnixNanos(s.start_ns() + s.duration_ns() +
                                  source.mono_to_wall_ns);
      samples.push_back(h);
      StepSample t;
      t.step = s.step();
      t.start_ns = s.start_ns();
      t.duration_ms = h.duration_ms;
      t.error = s.error();
      std::optional<TriggerDecision> d = evaluator_.OnStep(source.key, t, now);
      if (!d.has_value()) continue;
      slow.push_back(*d);
      if (d->fired && !to_fire.has_value()) to_fire = std::move(*d);
    }
  }
  health_.OnSteps(source.key, {source.pid, source.rank, source.name}, samples,
                  summaries.steps_not_summarized());
  for (const TriggerDecision& d : slow) {
    health_.OnSlowStep(source.key, d.step, d.step_ms, d.reason);
    health_.OnTrigger(d.fired);
  }
  if (!to_fire.has_value()) return std::nullopt;
  absl::StatusOr<Fired> fired = Fire(*to_fire, source.pid);
  if (!fired.ok()) {
    VP_LOG(WARNING) << "flight recorder: trigger not taken: "
                    << fired.status().message();
    return std::nullopt;
  }
  return *fired;
}

void FlightRecorder::OnProbeGone(uint64_t key) {
  {
    MutexLock lock(&mu_);
    evaluator_.Forget(key);
  }
  health_.Forget(key);
}

absl::StatusOr<FlightRecorder::Fired> FlightRecorder::Trigger(
    const std::string& reason) {
  TriggerDecision d;
  {
    MutexLock lock(&mu_);
    d = evaluator_.Manual(reason, options_.now());
  }
  health_.OnTrigger(true);
  return Fire(d, 0);
}

absl::StatusOr<FlightRecorder::Fired> FlightRecorder::Fire(
    const TriggerDecision& d, int64_t marker_pid) {
  std::vector<int64_t> pids =
      probes_ != nullptr ? probes_->ConnectedPids() : std::vector<int64_t>();
  if (pids.empty()) {
    MutexLock lock(&mu_);
    evaluator_.ResetCooldown();
    return absl::FailedPreconditionError("no probes are connected");
  }
  v1::CaptureConfig config;
  config.set_num_steps(std::max<uint32_t>(1, options_.post_steps));
  config.set_cpu_ops(true);
  config.set_gpu_activity(true);
  config.set_record_shapes(true);
  Fired out;
  out.reason = d.reason;
  out.capture_id = manager_->CreateCommandCapture(pids, config, d.reason);
  v1::CollectorCommand command;
  v1::StartCaptureCommand* start = command.mutable_start_capture();
  start->set_capture_id(out.capture_id);
  *start->mutable_config() = config;
  start->mutable_flight()->set_pre_steps(options_.pre_steps);
  std::vector<int64_t> others;
  for (int64_t pid : pids) {
    if (pid != marker_pid) others.push_back(pid);
  }
  std::vector<int64_t> reached = probes_->SendCommand(others, command);
  if (marker_pid != 0 && others.size() != pids.size()) {
    v1::FlightDump* f = start->mutable_flight();
    f->set_marker_name(FlightMarkerName(d));
    f->set_marker_ns(d.start_ns);
    f->set_marker_step(d.step);
    for (int64_t pid : probes_->SendCommand({marker_pid}, command)) {
      reached.push_back(pid);
    }
  }
  for (int64_t pid : pids) {
    if (std::find(reached.begin(), reached.end(), pid) == reached.end()) {
      manager_->ProbeGone(pid);
    }
  }
  std::sort(reached.begin(), reached.end());
  out.pids = reached;
  VP_LOG(INFO) << "flight recorder: " << d.reason << " -> capture "
               << out.capture_id << " over " << reached.size() << " probe(s), "
               << options_.pre_steps << " steps before and "
               << config.num_steps() << " after";
  return out;
}

}  // namespace vllm_profiler::collector
