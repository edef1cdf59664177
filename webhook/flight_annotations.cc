#include "webhook/flight_annotations.h"

#include <cmath>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace vllm_profiler::webhook {
namespace {

constexpr char kPrefix[] = "vllm-profiler.llm-d.ai/";

std::string Shown(const std::string& v) {
  std::string out = v.substr(0, 64);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  return absl::StrCat("'", out, v.size() > 64 ? "...'" : "'");
}

}  // namespace

FlightSettings ParseFlightAnnotations(
    const std::function<std::optional<std::string>(const std::string&)>&
        annotation,
    std::vector<std::string>* warnings) {
  FlightSettings out;
  auto warn = [&](const char* suffix, const std::string& value,
                  const std::string& what) {
    warnings->push_back(absl::StrCat("vllm-profiler: annotation ", kPrefix,
                                     suffix, ": ", Shown(value), " is not ",
                                     what, "; the default is used"));
  };
  if (std::optional<std::string> v = annotation("flight")) {
    const std::string l = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    if (l == "steps" || l == "gpu" || l == "off") {
      out.flight_env = l;
    } else {
      warn("flight", *v, "steps, gpu or off");
    }
  }
  // Numbers: [min, max], integers only when `integer`.
  struct Number {
    const char* suffix;
    const char* flag;
    double min, max;
    bool integer;
    bool zero_or_above_one;  // trigger-factor: 0 = off, else > 1.
  };
  static constexpr Number kNumbers[] = {
      {"trigger-slow-step-ms", "trigger_slow_step_ms", 0, 1e7, false, false},
      {"trigger-factor", "trigger_factor", 0, 1000, false, true},
      {"trigger-window", "trigger_window", 1, 100000, true, false},
      {"trigger-pre-steps", "trigger_pre_steps", 0, 100000, true, false},
      {"trigger-post-steps", "trigger_post_steps", 1, 10000, true, false},
  };
  for (const Number& n : kNumbers) {
    std::optional<std::string> v = annotation(n.suffix);
    if (!v.has_value()) continue;
    const absl::string_view text = absl::StripAsciiWhitespace(*v);
    double d = 0;
    int64_t i = 0;
    bool ok = n.integer ? absl::SimpleAtoi(text, &i)
                        : absl::SimpleAtod(text, &d) && std::isfinite(d);
    if (n.integer) d = static_cast<double>(i);
    ok = ok && d >= n.min && d <= n.max &&
         !(n.zero_or_above_one && d != 0 && d <= 1);
    if (!ok) {
      warn(n.suffix, *v,
           n.zero_or_above_one
               ? "0 or a number above 1 (at most 1000)"
               : absl::StrCat(n.integer ? "an integer" : "a number", " in [",
                              static_cast<int64_t>(n.min), ", ",
                              static_cast<int64_t>(n.max), "]"));
      continue;
    }
    out.collector_args.push_back(absl::StrCat(
        "--", n.flag, "=", n.integer ? absl::StrCat(i) : absl::StrCat(d)));
  }
  if (std::optional<std::string> v = annotation("trigger-cooldown")) {
    const absl::string_view text = absl::StripAsciiWhitespace(*v);
    int64_t seconds = 0;
    absl::Duration d;
    bool ok = absl::SimpleAtoi(text, &seconds);
    if (ok) {
      d = absl::Seconds(seconds);
    } else {
      ok = absl::ParseDuration(text, &d);
    }
    if (!ok || d < absl::ZeroDuration() || d > absl::Hours(24 * 365)) {
      warn("trigger-cooldown", *v,
           "a duration from 0 to a year (seconds, or e.g. 10m)");
    } else {
      out.collector_args.push_back(
          absl::StrCat("--trigger_cooldown=", absl::ToInt64Seconds(d), "s"));
    }
  }
  if (std::optional<std::string> v = annotation("trigger-on-error")) {
    const std::string l = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    if (l == "true" || l == "false") {
      out.collector_args.push_back(absl::StrCat("--trigger_on_error=", l));
    } else {
      warn("trigger-on-error", *v, "true or false");
    }
  }
  return out;
}

}  // namespace vllm_profiler::webhook
