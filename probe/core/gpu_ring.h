// GpuRing: the GPU half of the flight recorder (VLLM_PROFILER_FLIGHT=gpu),
// a byte-bounded ring of GPU events (kernels, memcpy, memset) that drops
// the oldest.
//
// Events arrive already converted (v1::Event on the probe's CLOCK_MONOTONIC
// timeline, names interned in the process's StringTable) from the GPU
// tracer in flight mode: the same ActivityConverter that converts a
// capture's records, so a dumped event is exactly what a capture would have
// sent. Each is kept serialized, after a 24-byte header (its size, start
// and end), in one buffer of `capacity_bytes` allocated at construction:
// the ring never allocates after that, and its memory is exactly that
// buffer (plus one reusable scratch string as large as the largest event).
//
// What it is for: when a trigger dumps the step ring, the sender thread
// asks for the events that overlap the dumped steps' time range
// (CopyRange) and sends them with the steps.
//
// Thread-safe: the tracer's buffer-completed thread adds, the sender reads.
// Failure: an event larger than the whole ring is dropped and counted.
#ifndef VLLM_PROFILER_PROBE_CORE_GPU_RING_H_
#define VLLM_PROFILER_PROBE_CORE_GPU_RING_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

class GpuRing {
 public:
  // Bytes of one record's header: payload size (u64), start_ns, end_ns.
  static constexpr size_t kHeaderBytes = 24;

  struct Stats {
    uint64_t added = 0;        // Events kept (possibly overwritten since).
    uint64_t overwritten = 0;  // Oldest events dropped to make room.
    uint64_t too_large = 0;    // Events larger than the ring: not kept.
    uint64_t records = 0;      // Events in the ring now.
    size_t used_bytes = 0;     // Header + payload bytes in the ring now.
  };

  explicit GpuRing(size_t capacity_bytes);
  GpuRing(const GpuRing&) = delete;
  GpuRing& operator=(const GpuRing&) = delete;

  size_t capacity_bytes() const { return capacity_; }
  // Bytes `event` takes in the ring.
  static size_t RecordBytes(const v1::Event& event) {
    return kHeaderBytes + event.ByteSizeLong();
  }

  // Keeps `event`, dropping the oldest events until it fits.
  void Add(const v1::Event& event);
  // Appends the events overlapping [from_ns, to_ns] (an event of zero
  // duration counts when from_ns <= start <= to_ns), oldest first. Returns
  // how many were appended.
  size_t CopyRange(int64_t from_ns, int64_t to_ns,
                   std::vector<v1::Event>* out) const;
  // Forgets every event (counters stay).
  void Clear();

  Stats stats() const;

 private:
  void Write(size_t pos, const void* data, size_t n)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Read(size_t pos, void* data, size_t n) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void DropOldest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t capacity_;
  mutable Mutex mu_;
  std::unique_ptr<char[]> data_ ABSL_GUARDED_BY(mu_);
  size_t head_ ABSL_GUARDED_BY(mu_) = 0;  // Oldest record's offset.
  size_t used_ ABSL_GUARDED_BY(mu_) = 0;  // Bytes from head_ (wrapping).
  std::string scratch_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_GPU_RING_H_
