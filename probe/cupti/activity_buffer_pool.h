// ActivityBufferPool: the bounded set of activity buffers handed to CUPTI.
//
// Buffers are `buffer_bytes` each, 8-byte aligned (CUPTI's requirement), and
// at most `max_bytes` of them exist at once (kineto: 4 MiB buffers, 128 MiB
// cap). When the cap is reached Acquire() returns nullptr and counts a
// refused buffer: CUPTI then drops records (and counts them) instead of the
// probe growing without bound or blocking the application.
//
// Thread-safe: CUPTI requests and completes buffers on its own threads.
// Released buffers are kept for reuse until Trim().
#ifndef VLLM_PROFILER_PROBE_CUPTI_ACTIVITY_BUFFER_POOL_H_
#define VLLM_PROFILER_PROBE_CUPTI_ACTIVITY_BUFFER_POOL_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace vllm_profiler::probe::cupti {

class ActivityBufferPool {
 public:
  struct Options {
    size_t buffer_bytes = 4 << 20;  // One CUPTI activity buffer.
    size_t max_bytes = 128 << 20;   // All buffers alive at once.
  };

  explicit ActivityBufferPool(Options options);
  ~ActivityBufferPool();
  ActivityBufferPool(const ActivityBufferPool&) = delete;
  ActivityBufferPool& operator=(const ActivityBufferPool&) = delete;

  // A free buffer of buffer_bytes(), or nullptr when the cap is reached.
  uint8_t* Acquire();
  // Gives back a buffer returned by Acquire(). nullptr is ignored.
  void Release(uint8_t* buffer);
  // Frees the buffers not in use (between captures).
  void Trim();
  // Buffers refused since the last call (resets the count).
  uint64_t TakeRefused();

  size_t buffer_bytes() const { return options_.buffer_bytes; }
  size_t allocated_bytes() const;

 private:
  const Options options_;
  mutable Mutex mu_;
  std::vector<uint8_t*> free_ ABSL_GUARDED_BY(mu_);
  size_t allocated_ ABSL_GUARDED_BY(mu_) = 0;  // Buffers alive (used+free).
  uint64_t refused_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_ACTIVITY_BUFFER_POOL_H_
