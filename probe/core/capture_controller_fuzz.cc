// Collector commands are untrusted: feeds parsed CollectorCommand bytes to
// the controller between steps and checks its invariants.
#include <cstddef>
#include <cstdint>

#include "probe/core/capture_controller.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vllm_profiler::probe::CaptureController;
  vllm_profiler::v1::CollectorCommand cmd;
  if (!cmd.ParseFromArray(data, static_cast<int>(size))) return 0;
  CaptureController::Options o;
  o.start_step = 3;
  o.num_steps = 2;
  CaptureController c(o);
  int64_t now = 0;
  int starts = 0, stops = 0;
  for (int64_t step = 1; step <= 40; ++step) {
    if (step == 2 && cmd.has_start_capture()) {
      c.OnStartCommand(cmd.start_capture(), 1);
    }
    if (step == 6 && cmd.has_stop_capture()) {
      c.OnStopCommand(cmd.stop_capture().capture_id());
    }
    auto d = c.OnStepBegin(step, now);
    starts += d.action == CaptureController::Action::kStart;
    now += 1000000;
    d = c.OnStepEnd(step, now);
    stops += d.action == CaptureController::Action::kStop;
    d = c.OnTick(now);
    stops += d.action == CaptureController::Action::kStop;
    if (stops > starts || starts > stops + 1) __builtin_trap();
  }
  return 0;
}
