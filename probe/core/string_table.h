// Interned strings of a probe process (operator names, dtypes, arg keys).
//
// Ids are process-wide, start at 1 and are never reused, so they are also
// valid "unique per stream" ids for every stream the process opens: a stream
// keeps a watermark and sends the strings above it before it uses them
// (a new stream starts at watermark 0 and re-sends the table).
//
// Bounded: after Options::max_strings distinct strings every new string maps
// to the id of "<names table full>".
//
// Thread-safe (the sender thread and the GPU tracer's sink call it).
#ifndef VLLM_PROFILER_PROBE_CORE_STRING_TABLE_H_
#define VLLM_PROFILER_PROBE_CORE_STRING_TABLE_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

class StringTable {
 public:
  struct Options {
    size_t max_strings = 200000;
  };
  StringTable() : StringTable(Options()) {}
  explicit StringTable(Options options);
  StringTable(const StringTable&) = delete;
  StringTable& operator=(const StringTable&) = delete;

  // Never returns 0.
  uint32_t Intern(std::string_view value);

  // Appends every string with id > *watermark to `batch` and raises the
  // watermark.
  void AppendNew(uint32_t* watermark, v1::EventBatch* batch);

  size_t size() const;

 private:
  const Options options_;
  mutable Mutex mu_;
  // Keys view into by_id_ (a deque: its elements never move).
  absl::flat_hash_map<std::string_view, uint32_t> ids_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> by_id_ ABSL_GUARDED_BY(mu_);  // [id - 1]
  uint32_t overflow_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_STRING_TABLE_H_
