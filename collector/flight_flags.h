// The collector's --trigger_* flags, parsed from their text so that a bad
// value stops the collector at start with a message naming the flag, the
// value and what is accepted (the webhook passes pod annotations here
// unchanged, so the text is untrusted).
//
//   --trigger_slow_step_ms  a step slower than this fires; 0 = off (default).
//   --trigger_factor        a step slower than this x the process's rolling
//                           median fires; > 1, or 0 = off (default).
//   --trigger_window        steps in that median; 1..100000, default 500.
//   --trigger_on_error      a step that raised fires; default true.
//   --trigger_pre_steps     ring steps before the trigger in its trace;
//                           0..100000, default 200.
//   --trigger_post_steps    steps captured fully after it; 1..10000,
//                           default 20.
//   --trigger_cooldown      at most one trigger per this long: a duration
//                           ("10m", "90s") or seconds; default 10m.
#ifndef VLLM_PROFILER_COLLECTOR_FLIGHT_FLAGS_H_
#define VLLM_PROFILER_COLLECTOR_FLIGHT_FLAGS_H_

#include <string>

#include "absl/status/statusor.h"
#include "collector/flight_recorder.h"

namespace vllm_profiler::collector {

struct FlightFlagValues {
  std::string slow_step_ms = "0";
  std::string factor = "0";
  std::string window = "500";
  std::string on_error = "true";
  std::string pre_steps = "200";
  std::string post_steps = "20";
  std::string cooldown = "10m";
};

// INVALID_ARGUMENT, e.g. "--trigger_factor=0.5: must be greater than 1 (a
// step slower than factor x the median), or 0 to turn the rule off".
absl::StatusOr<FlightRecorder::Options> ParseFlightFlags(
    const FlightFlagValues& values);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_FLIGHT_FLAGS_H_
