// `vpctl top`: live step health of every probe process (the flight
// recorder's summaries, via GetStatus): steps/s, tokens/s, step p50/p99
// over the last minute, slow steps and the last one's reason.
//
// On a terminal it redraws every `interval` until Ctrl-C (SIGINT ends
// vpctl); otherwise it prints one snapshot and returns.
#ifndef VLLM_PROFILER_COLLECTOR_VPCTL_TOP_H_
#define VLLM_PROFILER_COLLECTOR_VPCTL_TOP_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector::vpctl {

// The screen for one GetStatus answer (pure; tests compare the text).
std::string FormatTop(const v1::GetStatusResponse& status);

struct TopOptions {
  bool terminal = false;  // Redraw until interrupted.
  absl::Duration interval = absl::Seconds(1);
  // Snapshots to draw on a terminal before returning; 0 = until Ctrl-C.
  int max_frames = 0;
};

// Draws frames from `fetch` to `out`; returns vpctl's exit code (1 when a
// fetch failed, after printing why to stderr).
int RunTop(const std::function<absl::StatusOr<v1::GetStatusResponse>()>& fetch,
           const TopOptions& options,
           const std::function<void(const std::string&)>& out);

}  // namespace vllm_profiler::collector::vpctl

#endif  // VLLM_PROFILER_COLLECTOR_VPCTL_TOP_H_
