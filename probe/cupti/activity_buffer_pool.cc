#include "probe/cupti/activity_buffer_pool.h"

#include <cstdlib>

namespace vllm_profiler::probe::cupti {
namespace {
constexpr size_t kAlign = 8;
}  // namespace

ActivityBufferPool::ActivityBufferPool(Options options) : options_(options) {}

ActivityBufferPool::~ActivityBufferPool() {
  MutexLock lock(&mu_);
  for (uint8_t* buffer : free_) std::free(buffer);
  // Buffers still held by CUPTI are leaked on purpose: CUPTI may write to
  // them until it hands them back, and the process is exiting anyway.
}

uint8_t* ActivityBufferPool::Acquire() {
  MutexLock lock(&mu_);
  if (!free_.empty()) {
    uint8_t* buffer = free_.back();
    free_.pop_back();
    return buffer;
  }
  if ((allocated_ + 1) * options_.buffer_bytes > options_.max_bytes) {
    ++refused_;
    return nullptr;
  }
  const size_t size = (options_.buffer_bytes + kAlign - 1) / kAlign * kAlign;
  auto* buffer = static_cast<uint8_t*>(std::aligned_alloc(kAlign, size));
  if (buffer == nullptr) {
    ++refused_;
    return nullptr;
  }
  ++allocated_;
  return buffer;
}

void ActivityBufferPool::Release(uint8_t* buffer) {
  if (buffer == nullptr) return;
  MutexLock lock(&mu_);
  free_.push_back(buffer);
}

void ActivityBufferPool::Trim() {
  MutexLock lock(&mu_);
  for (uint8_t* buffer : free_) std::free(buffer);
  allocated_ -= free_.size();
  free_.clear();
}

uint64_t ActivityBufferPool::TakeRefused() {
  MutexLock lock(&mu_);
  const uint64_t refused = refused_;
  refused_ = 0;
  return refused;
}

size_t ActivityBufferPool::allocated_bytes() const {
  MutexLock lock(&mu_);
  return allocated_ * options_.buffer_bytes;
}

}  // namespace vllm_profiler::probe::cupti
