// The probe's log: one line per message on stderr, prefixed "vllm-profiler:",
// so a user grepping the vLLM pod log finds every probe message.
//
// The probe is loaded into processes it does not own, so it keeps quiet by
// default: INFO for what a user must know (collector unreachable, capture
// written, configuration ignored), DEBUG for the rest. VLLM_PROFILER_LOG
// selects info (default), debug or quiet.
//
// Thread-safe; each line is written with a single write(2).
#ifndef VLLM_PROFILER_PROBE_CORE_LOG_H_
#define VLLM_PROFILER_PROBE_CORE_LOG_H_

#include <atomic>
#include <string>

#include "absl/strings/string_view.h"

namespace vllm_profiler::probe {

enum class ProbeLogLevel : int { kDebug = 0, kInfo = 1, kQuiet = 2 };

// Parses VLLM_PROFILER_LOG ("debug", "info", "quiet"; anything else: info).
ProbeLogLevel ParseProbeLogLevel(const char* value);
void SetProbeLogLevel(ProbeLogLevel level);
bool ProbeLogEnabled(ProbeLogLevel level);

// Writes "vllm-profiler: <message>\n" when `level` is enabled.
void ProbeLog(ProbeLogLevel level, absl::string_view message);

// Redirects output to `fd` (tests); -1 restores stderr.
void SetProbeLogFdForTesting(int fd);

// Logs at most once per flag: `flag` is a static at the call site.
inline bool FirstTime(std::atomic<bool>* flag) {
  // Relaxed: the flag only suppresses duplicate log lines.
  return !flag->exchange(true, std::memory_order_relaxed);
}

}  // namespace vllm_profiler::probe

#define VP_PROBE_LOG_ONCE(level, message)                     \
  do {                                                        \
    static std::atomic<bool> vp_logged_once{false};           \
    if (::vllm_profiler::probe::FirstTime(&vp_logged_once)) { \
      ::vllm_profiler::probe::ProbeLog((level), (message));   \
    }                                                         \
  } while (0)

#endif  // VLLM_PROFILER_PROBE_CORE_LOG_H_
