// Moves every event of a finished Chrome trace later by a fixed amount.
//
// A capture's time base is fixed when its first process joins, and events
// are written to disk as they arrive; a process that joins later may have
// started earlier, and GPU records may predate a capture's start. Rather
// than hold events back, the writer notes the earliest "ts" it wrote and,
// when that is negative, the finished file is passed through this shifter
// once: base_time_unix_ns moves to the earliest event and every event's
// "ts" grows by the same amount, so no ts is negative.
//
// Only the "ts" keys of the objects directly inside the top-level
// "traceEvents" array change; "ts" inside args or metadata is left alone.
// The input is what TraceWriter writes (ts as "-?digits.ddd"); anything
// else (a ts with an exponent, more than three decimals, a truncated file)
// is an INVALID_ARGUMENT error and the caller keeps the unshifted trace.
//
// Thread safety: none; one object per file.
#ifndef VLLM_PROFILER_COLLECTOR_TRACE_TIME_SHIFT_H_
#define VLLM_PROFILER_COLLECTOR_TRACE_TIME_SHIFT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace vllm_profiler::collector {

class TraceTimeShifter {
 public:
  explicit TraceTimeShifter(int64_t shift_ns) : shift_ns_(shift_ns) {}
  TraceTimeShifter(const TraceTimeShifter&) = delete;
  TraceTimeShifter& operator=(const TraceTimeShifter&) = delete;

  // Appends the shifted form of `in` (any chunk of the file) to `out`.
  absl::Status Feed(absl::string_view in, std::string* out);
  // Checks the input ended where a file may end.
  absl::Status Finish(std::string* out);

  uint64_t shifted() const { return shifted_; }

 private:
  absl::Status EmitNumber(std::string* out);

  const int64_t shift_ns_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escape_ = false;
  bool in_number_ = false;
  bool in_events_ = false;  // Inside the top-level "traceEvents" array.
  // The last string seen (clipped), a key once ':' follows it.
  std::string last_string_;
  bool last_string_clipped_ = false;
  std::string top_key_;  // The current key of the top-level object.
  std::string number_;
  uint64_t shifted_ = 0;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_TRACE_TIME_SHIFT_H_
