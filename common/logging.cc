#include "common/logging.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/mutex.h"

namespace vllm_profiler {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("VP_LOG_LEVEL");
  LogLevel level = LogLevel::kInfo;
  if (env != nullptr) ParseLogLevel(env, &level);
  return level;
}

std::atomic<int>& MinLevel() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

std::atomic<int> g_log_fd{-1};

Mutex& PrefixMu() {
  static Mutex* mu = new Mutex();
  return *mu;
}

std::string& Prefix() ABSL_EXCLUSIVE_LOCKS_REQUIRED(PrefixMu()) {
  static std::string* prefix = new std::string();
  return *prefix;
}

char LevelLetter(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return 'D';
    case LogLevel::kInfo:
      return 'I';
    case LogLevel::kWarning:
      return 'W';
    case LogLevel::kError:
      return 'E';
    case LogLevel::kFatal:
    case LogLevel::kQuiet:
      return 'F';
  }
  return '?';
}

void WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere left to report a logging failure.
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

void SetLogPrefix(absl::string_view prefix) {
  MutexLock lock(&PrefixMu());
  Prefix() = std::string(prefix);
}

void SetMinLogLevel(LogLevel level) {
  // Relaxed: a level change need not be ordered with other memory.
  MinLevel().store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel MinLogLevel() {
  return static_cast<LogLevel>(MinLevel().load(std::memory_order_relaxed));
}

bool ParseLogLevel(absl::string_view text, LogLevel* out) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "debug") {
    *out = LogLevel::kDebug;
  } else if (lower == "info") {
    *out = LogLevel::kInfo;
  } else if (lower == "warning" || lower == "warn") {
    *out = LogLevel::kWarning;
  } else if (lower == "error") {
    *out = LogLevel::kError;
  } else if (lower == "quiet" || lower == "off" || lower == "none") {
    *out = LogLevel::kQuiet;
  } else {
    return false;
  }
  return true;
}

bool LogEnabled(LogLevel level) {
  return level >= LogLevel::kFatal || level >= MinLogLevel();
}

void SetLogFdForTesting(int fd) {
  g_log_fd.store(fd, std::memory_order_relaxed);
}

std::string QuoteForMessage(absl::string_view s) {
  constexpr size_t kMax = 64;
  if (s.size() > kMax) {
    return absl::StrCat("\"", absl::CHexEscape(s.substr(0, kMax)), "...\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(s), "\"");
}

namespace logging_internal {

LogMessage::LogMessage(LogLevel level, const char* file, int line)
    : level_(level) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  char head[64];
  std::snprintf(head, sizeof(head), "%c%02d%02d %02d:%02d:%02d.%06ld %ld ",
                LevelLetter(level), tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000,
                static_cast<long>(::syscall(SYS_gettid)));
  stream_ << head;
  {
    MutexLock lock(&PrefixMu());
    if (!Prefix().empty()) stream_ << Prefix() << ' ';
  }
  if (level >= LogLevel::kWarning || MinLogLevel() == LogLevel::kDebug) {
    const char* base = file;
    for (const char* p = file; *p != '\0'; ++p) {
      if (*p == '/') base = p + 1;
    }
    stream_ << base << ':' << line << "] ";
  } else {
    stream_ << "] ";
  }
}

LogMessage::~LogMessage() {
  stream_ << '\n';
  const std::string text = stream_.str();
  int fd = g_log_fd.load(std::memory_order_relaxed);
  WriteAll(fd >= 0 ? fd : STDERR_FILENO, text.data(), text.size());
  if (level_ >= LogLevel::kFatal) std::abort();
}

std::string FormatPrintf(const char* format, ...) {
  va_list args;
  va_start(args, format);
  va_list copy;
  va_copy(copy, args);
  char small[256];
  int n = std::vsnprintf(small, sizeof(small), format, args);
  va_end(args);
  std::string out;
  if (n < 0) {
    out = format;
  } else if (static_cast<size_t>(n) < sizeof(small)) {
    out.assign(small, static_cast<size_t>(n));
  } else {
    out.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(&out[0], out.size(), format, copy);
    out.resize(static_cast<size_t>(n));
  }
  va_end(copy);
  return out;
}

}  // namespace logging_internal
}  // namespace vllm_profiler
