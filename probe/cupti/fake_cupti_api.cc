#include "probe/cupti/fake_cupti_api.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace vllm_profiler::probe::cupti {
namespace {
constexpr size_t kHeader = 8;
size_t Padded(size_t n) { return (n + 7) / 8 * 8; }
}  // namespace

void FakeCuptiApi::QueueBytes(const void* data, size_t size) {
  MutexLock lock(&mu_);
  const auto* bytes = static_cast<const uint8_t*>(data);
  queued_.emplace_back(bytes, bytes + size);
}

bool FakeCuptiApi::DeliverQueued() {
  CUpti_BuffersCallbackRequestFunc requested;
  CUpti_BuffersCallbackCompleteFunc completed;
  {
    MutexLock lock(&mu_);
    requested = requested_;
    completed = completed_;
    if (requested == nullptr || completed == nullptr || queued_.empty()) {
      return true;
    }
  }
  uint8_t* buffer = nullptr;
  size_t size = 0;
  size_t max_records = 0;
  requested(&buffer, &size, &max_records);  // No lock: calls the tracer.
  size_t used = 0;
  {
    MutexLock lock(&mu_);
    if (buffer == nullptr || size == 0) {
      ++log_.buffers_refused;
      queued_.clear();  // CUPTI drops what it cannot store.
      return false;
    }
    size_t taken = 0;
    for (const std::vector<uint8_t>& record : queued_) {
      const size_t need = kHeader + Padded(record.size());
      if (used + need > size) break;
      const uint64_t n = record.size();
      std::memcpy(buffer + used, &n, sizeof(n));
      std::memcpy(buffer + used + kHeader, record.data(), record.size());
      used += need;
      ++taken;
    }
    queued_.erase(queued_.begin(), queued_.begin() + taken);
  }
  completed(nullptr, 0, buffer, size, used);  // No lock: calls the tracer.
  return true;
}

FakeCuptiApi::Log FakeCuptiApi::log() const {
  MutexLock lock(&mu_);
  return log_;
}

CUptiResult FakeCuptiApi::GetVersion(uint32_t* version) {
  *version = CUPTI_API_VERSION;
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::GetTimestamp(uint64_t* timestamp) {
  if (knobs_.timestamp != CUPTI_SUCCESS) return knobs_.timestamp;
  *timestamp = knobs_.gpu_clock();
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::Subscribe(CUpti_SubscriberHandle* subscriber,
                                    CUpti_CallbackFunc, void*) {
  MutexLock lock(&mu_);
  ++log_.subscribe_calls;
  if (knobs_.subscribe != CUPTI_SUCCESS) return knobs_.subscribe;
  *subscriber = reinterpret_cast<CUpti_SubscriberHandle>(this);
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::Unsubscribe(CUpti_SubscriberHandle) {
  MutexLock lock(&mu_);
  ++log_.unsubscribe_calls;
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityEnable(CUpti_ActivityKind kind) {
  MutexLock lock(&mu_);
  auto it = knobs_.enable.find(kind);
  if (it != knobs_.enable.end() && it->second != CUPTI_SUCCESS) {
    return it->second;
  }
  log_.enabled.push_back(kind);
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityDisable(CUpti_ActivityKind kind) {
  MutexLock lock(&mu_);
  auto it = std::find(log_.enabled.begin(), log_.enabled.end(), kind);
  if (it == log_.enabled.end()) return CUPTI_ERROR_INVALID_KIND;
  log_.enabled.erase(it);
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityRegisterCallbacks(
    CUpti_BuffersCallbackRequestFunc requested,
    CUpti_BuffersCallbackCompleteFunc completed) {
  MutexLock lock(&mu_);
  requested_ = requested;
  completed_ = completed;
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityFlushAll(uint32_t) {
  {
    MutexLock lock(&mu_);
    ++log_.flush_calls;
  }
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (queued_.empty()) break;
    }
    if (!DeliverQueued()) break;
  }
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityGetNextRecord(uint8_t* buffer,
                                                size_t valid_bytes,
                                                CUpti_Activity** record) {
  size_t offset = 0;
  if (*record != nullptr) {
    const uint8_t* current = reinterpret_cast<uint8_t*>(*record);
    uint64_t n = 0;
    std::memcpy(&n, current - kHeader, sizeof(n));
    offset = static_cast<size_t>(current - buffer) + Padded(n);
  }
  if (offset + kHeader > valid_bytes) return CUPTI_ERROR_MAX_LIMIT_REACHED;
  *record = reinterpret_cast<CUpti_Activity*>(buffer + offset + kHeader);
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityGetNumDroppedRecords(CUcontext, uint32_t,
                                                       size_t* dropped) {
  *dropped = knobs_.dropped_per_buffer;
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityPushExternalCorrelationId(
    CUpti_ExternalCorrelationKind, uint64_t id) {
  MutexLock lock(&mu_);
  log_.correlation_ops.push_back(static_cast<int64_t>(id));
  correlation_stack_.push_back(id);
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::ActivityPopExternalCorrelationId(
    CUpti_ExternalCorrelationKind, uint64_t* last_id) {
  MutexLock lock(&mu_);
  log_.correlation_ops.push_back(-1);
  if (correlation_stack_.empty()) return CUPTI_ERROR_QUEUE_EMPTY;
  *last_id = correlation_stack_.back();
  correlation_stack_.pop_back();
  return CUPTI_SUCCESS;
}

CUptiResult FakeCuptiApi::SetThreadIdType(CUpti_ActivityThreadIdType) {
  return CUPTI_SUCCESS;
}

const char* FakeCuptiApi::CallbackName(CUpti_CallbackDomain domain,
                                       uint32_t cbid) {
  const auto& names = domain == CUPTI_CB_DOMAIN_DRIVER_API
                          ? knobs_.driver_names
                          : knobs_.runtime_names;
  auto it = names.find(cbid);
  return it == names.end() ? nullptr : it->second.c_str();
}

std::string FakeCuptiApi::ResultString(CUptiResult result) {
  switch (result) {
    case CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED:
      return "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED";
    case CUPTI_ERROR_NOT_INITIALIZED:
      return "CUPTI_ERROR_NOT_INITIALIZED";
    default:
      return absl::StrCat("CUPTI error ", static_cast<int>(result));
  }
}

bool FakeCuptiApi::DriverLoaded() { return knobs_.driver_loaded; }

CUresult FakeCuptiApi::DeviceGetCount(int* count) {
  if (knobs_.device_count_result != CUDA_SUCCESS) {
    return knobs_.device_count_result;
  }
  *count = knobs_.device_count;
  return CUDA_SUCCESS;
}

FakeCuptiLoader MakeFakeCuptiLoader(FakeCuptiApi::Knobs knobs) {
  auto owned = std::make_unique<FakeCuptiApi>(std::move(knobs));
  FakeCuptiLoader out;
  out.fake = owned.get();
  auto holder = std::make_shared<std::unique_ptr<CuptiApi>>(std::move(owned));
  out.load = [holder]() -> absl::StatusOr<std::unique_ptr<CuptiApi>> {
    if (*holder == nullptr) return absl::InternalError("loaded twice");
    return std::move(*holder);
  };
  return out;
}

}  // namespace vllm_profiler::probe::cupti
