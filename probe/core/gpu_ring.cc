#include "probe/core/gpu_ring.h"

#include <algorithm>
#include <cstring>

namespace vllm_profiler::probe {

GpuRing::GpuRing(size_t capacity_bytes)
    : capacity_(std::max(capacity_bytes, kHeaderBytes)),
      data_(new char[capacity_]) {}

void GpuRing::Write(size_t pos, const void* data, size_t n) {
  const size_t first = std::min(n, capacity_ - pos);
  std::memcpy(data_.get() + pos, data, first);
  if (first < n) {
    std::memcpy(data_.get(), static_cast<const char*>(data) + first, n - first);
  }
}

void GpuRing::Read(size_t pos, void* data, size_t n) const {
  const size_t first = std::min(n, capacity_ - pos);
  std::memcpy(data, data_.get() + pos, first);
  if (first < n) {
    std::memcpy(static_cast<char*>(data) + first, data_.get(), n - first);
  }
}

void GpuRing::DropOldest() {
  uint64_t size = 0;
  Read(head_, &size, sizeof(size));
  const size_t bytes = kHeaderBytes + size;
  head_ = (head_ + bytes) % capacity_;
  used_ -= bytes;
  --stats_.records;
  ++stats_.overwritten;
}

void GpuRing::Add(const v1::Event& event) {
  const size_t payload = event.ByteSizeLong();
  const size_t bytes = kHeaderBytes + payload;
  MutexLock lock(&mu_);
  if (bytes > capacity_) {
    ++stats_.too_large;
    return;
  }
  while (used_ + bytes > capacity_) DropOldest();
  if (scratch_.size() < payload) scratch_.resize(payload);
  event.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(scratch_.data()));
  int64_t header[3];
  const uint64_t size = payload;
  std::memcpy(&header[0], &size, sizeof(size));
  header[1] = event.start_ns();
  header[2] = event.start_ns() + event.duration_ns();
  const size_t tail = (head_ + used_) % capacity_;
  Write(tail, header, kHeaderBytes);
  Write((tail + kHeaderBytes) % capacity_, scratch_.data(), payload);
  used_ += bytes;
  ++stats_.records;
  ++stats_.added;
}

size_t GpuRing::CopyRange(int64_t from_ns, int64_t to_ns,
                          std::vector<v1::Event>* out) const {
  MutexLock lock(&mu_);
  size_t n = 0;
  std::string buf;
  size_t pos = head_;
  for (size_t done = 0; done < used_;) {
    int64_t header[3];
    Read(pos, header, kHeaderBytes);
    uint64_t size = 0;
    std::memcpy(&size, &header[0], sizeof(size));
    const int64_t start = header[1];
    const int64_t end = header[2];
    if (start <= to_ns && end >= from_ns) {
      buf.resize(size);
      Read((pos + kHeaderBytes) % capacity_, buf.data(), size);
      v1::Event e;
      if (e.ParseFromString(buf)) {
        out->push_back(std::move(e));
        ++n;
      }
    }
    const size_t bytes = kHeaderBytes + size;
    pos = (pos + bytes) % capacity_;
    done += bytes;
  }
  return n;
}

void GpuRing::Clear() {
  MutexLock lock(&mu_);
  head_ = 0;
  used_ = 0;
  stats_.records = 0;
}

GpuRing::Stats GpuRing::stats() const {
  MutexLock lock(&mu_);
  Stats s = stats_;
  s.used_bytes = used_;
  return s;
}

}  // namespace vllm_profiler::probe
