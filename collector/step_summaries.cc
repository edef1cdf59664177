#include "collector/step_summaries.h"

#include "absl/strings/str_cat.h"
#include "collector/probe_stream.h"

namespace vllm_profiler::collector {

absl::Status ValidateStepSummaries(const v1::StepSummaries& summaries) {
  if (summaries.steps_size() > kMaxStepSummaries) {
    return absl::InvalidArgumentError(
        absl::StrCat("StepSummaries with ", summaries.steps_size(),
                     " steps; at most ", kMaxStepSummaries, " are accepted"));
  }
  for (int i = 0; i < summaries.steps_size(); ++i) {
    const v1::StepSummary& s = summaries.steps(i);
    auto bad = [i](absl::string_view what, int64_t value) {
      return absl::InvalidArgumentError(
          absl::StrCat("step summary ", i, ": ", what, " ", value));
    };
    if (s.step() < 1) return bad("step number below 1:", s.step());
    if (s.start_ns() < 0 || s.start_ns() > kMaxTimestampNs) {
      return bad("start_ns out of range:", s.start_ns());
    }
    if (s.duration_ns() < 0 || s.duration_ns() > kMaxTimestampNs) {
      return bad("duration_ns out of range:", s.duration_ns());
    }
    for (int64_t v :
         {s.num_requests(), s.num_tokens(), s.num_prefill(), s.num_decode()}) {
      if (v < -1) return bad("batch count below -1:", v);
    }
    if (s.error().size() > kMaxStepErrorBytes) {
      return bad("error text longer than 256 bytes:",
                 static_cast<int64_t>(s.error().size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace vllm_profiler::collector
