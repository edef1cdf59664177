// Streaming writer of Chrome Trace Event Format JSON.
//
// Produces
//   {"traceEvents":[ {event}, {event}, ... ],
//    "displayTimeUnit":"ns", <top-level keys written after the events>}
// incrementally into a WritableFile (plain or gzip), through a fixed-size
// buffer: nothing but that buffer is held in memory, so a trace of any size
// costs the same RAM. There is no DOM; values are formatted in place
// (std::to_chars) and strings are escaped with an ASCII fast path. Arbitrary
// bytes are safe: control characters become \uXXXX, invalid UTF-8 becomes
// U+FFFD, so the output is always valid JSON.
//
// Usage:
//   TraceWriter w(std::move(file));
//   w.BeginEvent(); w.Key("ph"); w.String("X"); ...; w.EndEvent();
//   w.EndEvents();
//   w.Key("metadata"); w.BeginObject(); ...; w.EndObject();
//   absl::Status s = w.Finish();
//
// The JSON structure calls (Begin/End/Key/values) must be well nested; that
// is the caller's invariant, not checked. Errors from the file are sticky:
// after the first failure every call is a cheap no-op and status()/Finish()
// return that error.
//
// Thread safety: none; the owner (a Capture) serialises calls.
#ifndef VLLM_PROFILER_COLLECTOR_TRACE_WRITER_H_
#define VLLM_PROFILER_COLLECTOR_TRACE_WRITER_H_

#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/filesystem.h"

namespace vllm_profiler::collector {

// Writes `ns` as microseconds with three decimals ("-12.345") at `p` (at
// most 25 bytes) and returns the end. TraceWriter::Micros's format.
char* AppendMicros(char* p, int64_t ns);

class TraceWriter {
 public:
  struct Options {
    // Bytes buffered before a write to the file. At least 64 KiB.
    size_t buffer_bytes = 1 << 20;
  };

  TraceWriter(std::unique_ptr<WritableFile> file, Options options);
  explicit TraceWriter(std::unique_ptr<WritableFile> file)
      : TraceWriter(std::move(file), Options()) {}
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // One element of "traceEvents": BeginEvent() opens the object.
  void BeginEvent();
  void EndEvent();

  // Closes the traceEvents array and writes "displayTimeUnit"; top-level
  // keys may follow.
  void EndEvents();

  // Object keys and values. Keys and strings are escaped; the literal
  // overloads (a string constant of the program) skip escaping and must only
  // be given printable ASCII without '"' or '\\'.
  void Key(absl::string_view key);
  template <size_t N>
  void Key(const char (&key)[N]) {
    KeyLiteral(key, N - 1);
  }
  void String(absl::string_view value);
  template <size_t N>
  void String(const char (&value)[N]) {
    SafeString(absl::string_view(value, N - 1));
  }
  // A string known to need no escaping (same rule as the literals).
  void SafeString(absl::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  // Non-finite values are written as null (JSON has no NaN).
  void Double(double value);
  void Bool(bool value);
  void Null();
  // Nanoseconds as microseconds with three decimals ("12.345").
  void Micros(int64_t ns);
  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();

  // Writes the closing brace, flushes and closes the file.
  absl::Status Finish();

  const absl::Status& status() const { return status_; }
  // Bytes produced so far (before compression).
  uint64_t bytes_written() const { return flushed_ + pos_; }
  uint64_t events_written() const { return events_; }

  // Appends `value` JSON-escaped (without quotes) to `out`; for tests and
  // for the few other places that write JSON by hand.
  static void EscapeTo(absl::string_view value, std::string* out);

 private:
  static constexpr int kMaxDepth = 64;

  void BeforeValue() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (need_comma_[depth_]) Put(',');
    need_comma_[depth_] = true;
  }
  void KeyLiteral(const char* key, size_t n);
  void Open(char c);
  void Close(char c);
  void Ensure(size_t n) {
    if (pos_ + n > cap_) Flush();
  }
  void Put(char c) {
    Ensure(1);
    buf_[pos_++] = c;
  }
  void PutRaw(const char* p, size_t n);
  void PutEscaped(absl::string_view s);
  void Flush();

  std::unique_ptr<WritableFile> file_;
  std::unique_ptr<char[]> buf_;
  size_t cap_;
  size_t pos_ = 0;
  uint64_t flushed_ = 0;
  uint64_t events_ = 0;
  int depth_ = 0;
  bool need_comma_[kMaxDepth + 1] = {};
  bool after_key_ = false;
  bool finished_ = false;
  absl::Status status_;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_TRACE_WRITER_H_
