// The flight recorder's pod annotations (prefix vllm-profiler.llm-d.ai/):
//
//   flight                 steps|gpu|off -> VLLM_PROFILER_FLIGHT on the
//                          profiled containers
//   trigger-slow-step-ms   -> collector --trigger_slow_step_ms (>= 0)
//   trigger-factor         -> --trigger_factor (0, or > 1 and <= 1000)
//   trigger-window         -> --trigger_window (1..100000)
//   trigger-pre-steps      -> --trigger_pre_steps (0..100000)
//   trigger-post-steps     -> --trigger_post_steps (1..10000)
//   trigger-cooldown       -> --trigger_cooldown (seconds, or a duration
//                             such as 10m; up to a year)
//   trigger-on-error       -> --trigger_on_error (true/false)
//
// Annotations are untrusted: a bad value is left out with one warning
// naming it (the webhook fails open), so the collector, which refuses bad
// flags at start, is never handed one.
#ifndef VLLM_PROFILER_WEBHOOK_FLIGHT_ANNOTATIONS_H_
#define VLLM_PROFILER_WEBHOOK_FLIGHT_ANNOTATIONS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace vllm_profiler::webhook {

struct FlightSettings {
  std::optional<std::string> flight_env;    // VLLM_PROFILER_FLIGHT value.
  std::vector<std::string> collector_args;  // "--trigger_factor=3", ...
};

// `annotation(suffix)` returns the pod's annotation prefix+suffix, if any.
// Each bad value adds one warning to `warnings`.
FlightSettings ParseFlightAnnotations(
    const std::function<std::optional<std::string>(const std::string&)>&
        annotation,
    std::vector<std::string>* warnings);

}  // namespace vllm_profiler::webhook

#endif  // VLLM_PROFILER_WEBHOOK_FLIGHT_ANNOTATIONS_H_
