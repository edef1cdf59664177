// RecordingGpuEventSink: a GpuEventSink for tests that keeps everything.
// Thread-safe.
#ifndef VLLM_PROFILER_PROBE_CUPTI_RECORDING_GPU_EVENT_SINK_H_
#define VLLM_PROFILER_PROBE_CUPTI_RECORDING_GPU_EVENT_SINK_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"
#include "probe/core/gpu_tracer.h"

namespace vllm_profiler::probe::cupti {

class RecordingGpuEventSink final : public GpuEventSink {
 public:
  uint32_t InternString(std::string_view value) override {
    MutexLock lock(&mu_);
    auto it = ids_.find(std::string(value));
    if (it != ids_.end()) return it->second;
    strings_.emplace_back(value);
    const uint32_t id = static_cast<uint32_t>(strings_.size());
    ids_.emplace(std::string(value), id);
    return id;
  }
  void AddEvent(v1::Event event) override {
    MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  void AddTracerDrops(uint64_t records, uint64_t buffers) override {
    MutexLock lock(&mu_);
    records_dropped_ += records;
    buffers_dropped_ += buffers;
  }

  std::vector<v1::Event> events() const {
    MutexLock lock(&mu_);
    return events_;
  }
  // The string behind an interned id ("" for 0 or unknown).
  std::string Name(uint32_t id) const {
    MutexLock lock(&mu_);
    return id == 0 || id > strings_.size() ? "" : strings_[id - 1];
  }
  uint64_t records_dropped() const {
    MutexLock lock(&mu_);
    return records_dropped_;
  }
  uint64_t buffers_dropped() const {
    MutexLock lock(&mu_);
    return buffers_dropped_;
  }

 private:
  mutable Mutex mu_;
  std::vector<std::string> strings_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> ids_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::Event> events_ ABSL_GUARDED_BY(mu_);
  uint64_t records_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t buffers_dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_RECORDING_GPU_EVENT_SINK_H_
