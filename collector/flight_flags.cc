#include "collector/flight_flags.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace vllm_profiler::collector {
namespace {

absl::Status Bad(absl::string_view flag, absl::string_view value,
                 absl::string_view why) {
  std::string shown(value.substr(0, 64));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "='", shown, "': ", why));
}

absl::StatusOr<double> NonNegative(absl::string_view flag,
                                   absl::string_view value) {
  double v = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(value), &v) ||
      !std::isfinite(v)) {
    return Bad(flag, value, "not a number");
  }
  if (v < 0) return Bad(flag, value, "must not be negative");
  return v;
}

absl::StatusOr<uint32_t> Count(absl::string_view flag, absl::string_view value,
                               uint32_t min, uint32_t max) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &v) || v < min ||
      v > max) {
    return Bad(flag, value,
               absl::StrCat("must be a whole number from ", min, " to ", max));
  }
  return static_cast<uint32_t>(v);
}

}  // namespace

absl::StatusOr<FlightRecorder::Options> ParseFlightFlags(
    const FlightFlagValues& values) {
  FlightRecorder::Options o;
  absl::StatusOr<double> ms =
      NonNegative("trigger_slow_step_ms", values.slow_step_ms);
  if (!ms.ok()) return ms.status();
  o.trigger.slow_step_ms = *ms;
  absl::StatusOr<double> factor = NonNegative("trigger_factor", values.factor);
  if (!factor.ok()) return factor.status();
  if (*factor != 0 && *factor <= 1) {
    return Bad("trigger_factor", values.factor,
               "must be greater than 1 (a step slower than factor x the "
               "median), or 0 to turn the rule off");
  }
  o.trigger.factor = *factor;
  absl::StatusOr<uint32_t> window =
      Count("trigger_window", values.window, 1, 100000);
  if (!window.ok()) return window.status();
  o.trigger.window = *window;
  const std::string on_error =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(values.on_error));
  if (on_error == "true" || on_error == "1") {
    o.trigger.on_error = true;
  } else if (on_error == "false" || on_error == "0") {
    o.trigger.on_error = false;
  } else {
    return Bad("trigger_on_error", values.on_error, "must be true or false");
  }
  absl::StatusOr<uint32_t> pre =
      Count("trigger_pre_steps", values.pre_steps, 0, 100000);
  if (!pre.ok()) return pre.status();
  o.pre_steps = *pre;
  absl::StatusOr<uint32_t> post =
      Count("trigger_post_steps", values.post_steps, 1, 10000);
  if (!post.ok()) return post.status();
  o.post_steps = *post;
  const absl::string_view cd = absl::StripAsciiWhitespace(values.cooldown);
  absl::Duration cooldown;
  double seconds = 0;
  if (absl::SimpleAtod(cd, &seconds) && std::isfinite(seconds)) {
    cooldown = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(cd, &cooldown)) {
    return Bad("trigger_cooldown", values.cooldown,
               "not a duration (e.g. 10m, 90s, or seconds)");
  }
  if (cooldown < absl::ZeroDuration() || cooldown > absl::Hours(24 * 365)) {
    return Bad("trigger_cooldown", values.cooldown, "must be from 0 to a year");
  }
  o.trigger.cooldown = cooldown;
  return o;
}

}  // namespace vllm_profiler::collector
