#include "collector/vpctl/top.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "collector/vpctl/format.h"

namespace vllm_profiler::collector::vpctl {

std::string FormatTop(const v1::GetStatusResponse& s) {
  std::string out =
      absl::StrCat("step health (last minute), ", s.step_health_size(),
                   " process(es); triggers fired ", s.triggers_fired(),
                   ", suppressed ", s.triggers_suppressed(), "\n");
  if (s.step_health().empty()) {
    out +=
        "no step summaries yet (no probe connected, no step ran, or the "
        "flight recorder is off: VLLM_PROFILER_FLIGHT=off)\n";
    return out;
  }
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"PID", "RANK", "PROCESS", "STEPS/S", "TOKENS/S", "P50 MS",
                  "P99 MS", "STEPS", "SLOW", "LAST SLOW"});
  for (const v1::StepHealth& h : s.step_health()) {
    std::string last = "-";
    if (h.last_slow_step() > 0) {
      last = absl::StrFormat("step %d, %.1f ms: %s", h.last_slow_step(),
                             h.last_slow_ms(), h.last_slow_reason());
    }
    rows.push_back(
        {absl::StrCat(h.pid()), h.rank() >= 0 ? absl::StrCat(h.rank()) : "-",
         h.process_name().empty() ? "-" : h.process_name(),
         absl::StrFormat("%.1f", h.steps_per_s()),
         absl::StrFormat("%.0f", h.tokens_per_s()),
         absl::StrFormat("%.1f", h.step_p50_ms()),
         absl::StrFormat("%.1f", h.step_p99_ms()), absl::StrCat(h.steps()),
         absl::StrCat(h.slow_steps()), last});
  }
  return out + Table(rows);
}

int RunTop(const std::function<absl::StatusOr<v1::GetStatusResponse>()>& fetch,
           const TopOptions& options,
           const std::function<void(const std::string&)>& out) {
  for (int frame = 1;; ++frame) {
    absl::StatusOr<v1::GetStatusResponse> s = fetch();
    if (!s.ok()) {
      std::fprintf(stderr, "vpctl: %s\n",
                   std::string(s.status().message()).c_str());
      return 1;
    }
    if (!options.terminal) {
      out(FormatTop(*s));
      return 0;
    }
    // Home and clear, then the frame: no flicker of a scrolled screen.
    out(absl::StrCat("\x1b[H\x1b[2J", FormatTop(*s), "\n(Ctrl-C to quit)\n"));
    if (options.max_frames > 0 && frame >= options.max_frames) return 0;
    absl::SleepFor(options.interval);
  }
}

}  // namespace vllm_profiler::collector::vpctl
