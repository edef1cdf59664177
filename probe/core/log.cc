#include "probe/core/log.h"

#include <strings.h>
#include <unistd.h>

#include <string>

namespace vllm_profiler::probe {
namespace {

std::atomic<int> g_level{static_cast<int>(ProbeLogLevel::kInfo)};
std::atomic<int> g_fd{-1};

}  // namespace

ProbeLogLevel ParseProbeLogLevel(const char* value) {
  if (value == nullptr) return ProbeLogLevel::kInfo;
  if (strcasecmp(value, "debug") == 0) return ProbeLogLevel::kDebug;
  if (strcasecmp(value, "quiet") == 0 || strcasecmp(value, "off") == 0) {
    return ProbeLogLevel::kQuiet;
  }
  return ProbeLogLevel::kInfo;
}

void SetProbeLogLevel(ProbeLogLevel level) {
  // Relaxed: a log level orders no other memory.
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

bool ProbeLogEnabled(ProbeLogLevel level) {
  // Relaxed: see SetProbeLogLevel.
  const int min = g_level.load(std::memory_order_relaxed);
  return min != static_cast<int>(ProbeLogLevel::kQuiet) &&
         static_cast<int>(level) >= min;
}

void ProbeLog(ProbeLogLevel level, absl::string_view message) {
  if (!ProbeLogEnabled(level)) return;
  std::string line = "vllm-profiler: ";
  line.append(message.data(), message.size());
  line.push_back('\n');
  // Relaxed: the fd is set once by tests before logging starts.
  int fd = g_fd.load(std::memory_order_relaxed);
  if (fd < 0) fd = STDERR_FILENO;
  ssize_t unused = write(fd, line.data(), line.size());
  (void)unused;
}

void SetProbeLogFdForTesting(int fd) {
  g_fd.store(fd, std::memory_order_relaxed);
}

}  // namespace vllm_profiler::probe
