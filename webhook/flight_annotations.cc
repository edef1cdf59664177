#include "webhook/flight_annotations.h"

#include <cmath>
#include <cstdint>
#include <utility>

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

using Annotations =
    std::function<std::optional<std::string>(const std::string&)>;
// The collector flag for an annotation value, or nullopt when it is bad.
using ToArg = std::function<std::optional<std::string>(const std::string&)>;

void Warn(const char* suffix, const std::string& value, const std::string& what,
          std::vector<std::string>* warnings) {
  warnings->push_back(absl::StrCat("vllm-profiler: annotation ", kPrefix,
                                   suffix, ": ", Shown(value), " is not ", what,
                                   "; the default is used"));
}

// A numeric trigger annotation: [min, max], integers only when `integer`.
struct Number {
  const char* suffix;
  const char* flag;
  double min, max;
  bool integer;
  bool zero_or_above_one;  // trigger-factor: 0 = off, else > 1.
};

constexpr Number kNumbers[] = {
    {"trigger-slow-step-ms", "trigger_slow_step_ms", 0, 1e7, false, false},
    {"trigger-factor", "trigger_factor", 0, 1000, false, true},
    {"trigger-window", "trigger_window", 1, 100000, true, false},
    {"trigger-pre-steps", "trigger_pre_steps", 0, 100000, true, false},
    {"trigger-post-steps", "trigger_post_steps", 1, 10000, true, false},
};

std::optional<std::string> NumberArg(const Number& n,
                                     const std::string& value) {
  const absl::string_view text = absl::StripAsciiWhitespace(value);
  double d = 0;
  int64_t i = 0;
  bool ok = n.integer ? absl::SimpleAtoi(text, &i)
                      : absl::SimpleAtod(text, &d) && std::isfinite(d);
  if (n.integer) d = static_cast<double>(i);
  ok = ok && d >= n.min && d <= n.max &&
       !(n.zero_or_above_one && d != 0 && d <= 1);
  if (!ok) return std::nullopt;
  return absl::StrCat("--", n.flag, "=",
                      n.integer ? absl::StrCat(i) : absl::StrCat(d));
}

std::string NumberExpected(const Number& n) {
  if (n.zero_or_above_one) return "0 or a number above 1 (at most 1000)";
  return absl::StrCat(n.integer ? "an integer" : "a number", " in [",
                      static_cast<int64_t>(n.min), ", ",
                      static_cast<int64_t>(n.max), "]");
}

// Whole seconds, or an absl duration ("10m"); from 0 to a year.
std::optional<std::string> CooldownArg(const std::string& value) {
  const absl::string_view text = absl::StripAsciiWhitespace(value);
  int64_t seconds = 0;
  absl::Duration d;
  bool ok = absl::SimpleAtoi(text, &seconds);
  if (ok) {
    d = absl::Seconds(seconds);
  } else {
    ok = absl::ParseDuration(text, &d);
  }
  if (!ok || d < absl::ZeroDuration() || d > absl::Hours(24 * 365)) {
    return std::nullopt;
  }
  return absl::StrCat("--trigger_cooldown=", absl::ToInt64Seconds(d), "s");
}

std::optional<std::string> OnErrorArg(const std::string& value) {
  const std::string l =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
  if (l != "true" && l != "false") return std::nullopt;
  return absl::StrCat("--trigger_on_error=", l);
}

// The annotation `suffix`, when present, becomes a collector flag in `out`,
// or a warning that it is not `expected`.
void AddCollectorArg(const Annotations& annotation, const char* suffix,
                     const ToArg& to_arg, const std::string& expected,
                     FlightSettings* out, std::vector<std::string>* warnings) {
  std::optional<std::string> v = annotation(suffix);
  if (!v.has_value()) return;
  std::optional<std::string> arg = to_arg(*v);
  if (arg.has_value()) {
    out->collector_args.push_back(*std::move(arg));
  } else {
    Warn(suffix, *v, expected, warnings);
  }
}

}  // namespace

FlightSettings ParseFlightAnnotations(const Annotations& annotation,
                                      std::vector<std::string>* warnings) {
  FlightSettings out;
  if (std::optional<std::string> v = annotation("flight")) {
    const std::string l = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    if (l == "steps" || l == "gpu" || l == "off") {
      out.flight_env = l;
    } else {
      Warn("flight", *v, "steps, gpu or off", warnings);
    }
  }
  for (const Number& n : kNumbers) {
    AddCollectorArg(
        annotation, n.suffix,
        [&n](const std::string& v) { return NumberArg(n, v); },
        NumberExpected(n), &out, warnings);
  }
  AddCollectorArg(annotation, "trigger-cooldown", CooldownArg,
                  "a duration from 0 to a year (seconds, or e.g. 10m)", &out,
                  warnings);
  AddCollectorArg(annotation, "trigger-on-error", OnErrorArg, "true or false",
                  &out, warnings);
  return out;
}

}  // namespace vllm_profiler::webhook
