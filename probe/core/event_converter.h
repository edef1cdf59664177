// Turns recorded chunks into wire events (v1::Event) for one stream.
//
// Begin/end records are paired here, off the hot path: an operator becomes
// one CPU_OP event with its duration when its end record arrives (chunks of
// one thread arrive in order); a step becomes one STEP event with its batch
// shape args. What is still open when a capture ends is closed at the
// capture's end time by Flush().
//
// Owned and called by the sender thread only (not thread-safe). New threads
// are reported once per stream (Reset() at each new stream).
#ifndef VLLM_PROFILER_PROBE_CORE_EVENT_CONVERTER_H_
#define VLLM_PROFILER_PROBE_CORE_EVENT_CONVERTER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "probe/core/recorder.h"
#include "probe/core/string_table.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

class EventConverter {
 public:
  struct Options {
    std::string step_name = "execute_model";
    // Name of a thread the first time it is seen (default: /proc comm).
    std::function<std::string(uint32_t tid)> thread_name;
  };
  EventConverter(Options options, StringTable* strings);
  EventConverter(const EventConverter&) = delete;
  EventConverter& operator=(const EventConverter&) = delete;

  // Appends the events completed by `chunk`'s records (and new threads) to
  // `batch`. Returns the number of events appended.
  size_t Convert(const Chunk& chunk, v1::EventBatch* batch);
  // Closes every open operator and step at `end_ns` (capture end).
  size_t Flush(int64_t end_ns, v1::EventBatch* batch);
  // Forgets open events and threads already reported (new stream/capture).
  void Reset();
  void ResetOpen();

  void set_step_name(std::string name) { options_.step_name = std::move(name); }

 private:
  void NoteThread(uint32_t tid, v1::EventBatch* batch);
  // StringTable::Intern through a sender-local cache (no lock on a hit).
  uint32_t Intern(std::string_view value);
  Options options_;
  StringTable* const strings_;
  absl::flat_hash_map<uint64_t, v1::Event> open_ops_;
  absl::flat_hash_map<uint32_t, v1::Event> open_steps_;  // By tid.
  absl::flat_hash_set<uint32_t> threads_reported_;
  absl::flat_hash_map<uint32_t, std::string> thread_names_;
  absl::flat_hash_map<std::string, uint32_t> intern_cache_;
};

// Default thread namer: /proc/self/task/<tid>/comm, or "thread <tid>".
std::string ProcThreadName(uint32_t tid);

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_EVENT_CONVERTER_H_
