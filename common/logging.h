// Tiny leveled logger for every vllm-profiler component.
//
// Writes one line per message to stderr:
//   I1127 18:45:01.123456 1234 collector] listening on ...
// (level letter, UTC date and time, thread id, component prefix).
//
// Usage:
//   vllm_profiler::SetLogPrefix("collector");
//   VP_LOG(INFO) << "listening on " << addr;
//   VP_LOG_EVERY_N(WARNING, 1000) << "dropped batch";   // 1st, N+1th, ...
//   VP_LOG_FIRST_N(ERROR, 1) << "CUPTI unavailable";     // log once
//   VP_LOGF(INFO, "%d probes", n);                         // printf style
//
// Thread safety: every function may be called from any thread. A message is
// formatted into a thread-local buffer and written with one write(2), so
// lines from different threads never interleave.
//
// The minimum level defaults to INFO, or to the level named by the
// environment variable VP_LOG_LEVEL (debug|info|warning|error|quiet) when
// set; SetMinLogLevel() overrides both. FATAL messages abort after writing.
#ifndef VLLM_PROFILER_COMMON_LOGGING_H_
#define VLLM_PROFILER_COMMON_LOGGING_H_

#include <atomic>
#include <cstdint>
#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace vllm_profiler {

enum class LogLevel : int {
  kDebug = 0,
  kInfo = 1,
  kWarning = 2,
  kError = 3,
  kFatal = 4,
  kQuiet = 5,  // Only as a minimum level: suppresses everything but FATAL.
};

// Sets the component name printed on every line ("collector", "probe", ...).
// Empty by default. Safe to call at any time; typically once in main().
void SetLogPrefix(absl::string_view prefix);

// Messages below `level` are dropped (FATAL is always written).
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();

// Parses "debug", "info", "warning"/"warn", "error", "quiet"/"off"
// (case-insensitive). Returns false and leaves `out` alone otherwise.
bool ParseLogLevel(absl::string_view text, LogLevel* out);

// True when a message at `level` would be written.
bool LogEnabled(LogLevel level);

// Redirects output to `fd` instead of stderr (tests). -1 restores stderr.
void SetLogFdForTesting(int fd);

// An untrusted string (an id, a name) for an error message or log line:
// quoted, C-escaped, and cut at 64 bytes ("..." after the cut), so a 100 KB
// id cannot make an answer too large for gRPC metadata.
std::string QuoteForMessage(absl::string_view s);

namespace logging_internal {

// One log statement: collects the text, writes it in the destructor.
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;

  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Swallows the stream expression when the statement is disabled.
struct Voidify {
  void operator&(std::ostream&) {}
};

// Returns true on the 1st, (N+1)th, (2N+1)th ... call for this site.
inline bool ShouldLogEveryN(std::atomic<uint64_t>* counter, uint64_t n) {
  // Relaxed: only the count matters, it orders no other memory.
  const uint64_t c = counter->fetch_add(1, std::memory_order_relaxed);
  return n <= 1 || c % n == 0;
}

// Returns true for the first `n` calls for this site.
inline bool ShouldLogFirstN(std::atomic<uint64_t>* counter, uint64_t n) {
  // Relaxed: only the count matters, it orders no other memory.
  return counter->fetch_add(1, std::memory_order_relaxed) < n;
}

std::string FormatPrintf(const char* format, ...)
    __attribute__((format(printf, 1, 2)));

}  // namespace logging_internal
}  // namespace vllm_profiler

#define VP_LOG_LEVEL_DEBUG ::vllm_profiler::LogLevel::kDebug
#define VP_LOG_LEVEL_INFO ::vllm_profiler::LogLevel::kInfo
#define VP_LOG_LEVEL_WARNING ::vllm_profiler::LogLevel::kWarning
#define VP_LOG_LEVEL_ERROR ::vllm_profiler::LogLevel::kError
#define VP_LOG_LEVEL_FATAL ::vllm_profiler::LogLevel::kFatal

#define VP_LOG_IF_IMPL(level, cond)                                        \
  !(::vllm_profiler::LogEnabled(level) && (cond))                          \
      ? (void)0                                                            \
      : ::vllm_profiler::logging_internal::Voidify() &                     \
            ::vllm_profiler::logging_internal::LogMessage(level, __FILE__, \
                                                          __LINE__)        \
                .stream()

// VP_LOG(INFO) << ...;  Levels: DEBUG, INFO, WARNING, ERROR, FATAL.
#define VP_LOG(severity) VP_LOG_IF_IMPL(VP_LOG_LEVEL_##severity, true)

// VP_LOG_IF(WARNING, x > 3) << ...;
#define VP_LOG_IF(severity, cond) VP_LOG_IF_IMPL(VP_LOG_LEVEL_##severity, cond)

// Per-statement counter for the macros below (a lambda's static is unique
// to the statement, and keeps the macro a single expression).
#define VP_LOG_SITE_COUNTER()                              \
  ([]() -> ::std::atomic<uint64_t>* {                      \
    static ::std::atomic<uint64_t> vp_log_site_counter{0}; \
    return &vp_log_site_counter;                           \
  }())

// Logs the 1st, (N+1)th, ... time this statement runs (counted only while the
// level is enabled).
#define VP_LOG_EVERY_N(severity, n)                                       \
  VP_LOG_IF(severity, ::vllm_profiler::logging_internal::ShouldLogEveryN( \
                          VP_LOG_SITE_COUNTER(), (n)))

// Logs only the first N times this statement runs; VP_LOG_FIRST_N(X, 1) is
// "log once".
#define VP_LOG_FIRST_N(severity, n)                                       \
  VP_LOG_IF(severity, ::vllm_profiler::logging_internal::ShouldLogFirstN( \
                          VP_LOG_SITE_COUNTER(), (n)))

#define VP_LOG_ONCE(severity) VP_LOG_FIRST_N(severity, 1)

// printf style: VP_LOGF(INFO, "%d probes", n);
#define VP_LOGF(severity, ...)                                         \
  VP_LOG(severity) << ::vllm_profiler::logging_internal::FormatPrintf( \
      __VA_ARGS__)

// Checks an internal invariant (never untrusted input): FATAL when false.
#define VP_CHECK(cond) VP_LOG_IF(FATAL, !(cond)) << "Check failed: " #cond " "

#endif  // VLLM_PROFILER_COMMON_LOGGING_H_
