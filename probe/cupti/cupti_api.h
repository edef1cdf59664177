// CuptiApi: the narrow vendor seam over the CUPTI (and two CUDA driver) calls
// the tracer uses, so the tracer can be tested without a GPU with a fake
// (fake_cupti_api.h), the way kineto's CuptiActivityApi is mocked.
//
// The production implementation (cupti_loader.h) resolves every symbol from
// a dlopen()ed libcupti with dlsym; nothing links libcupti.
//
// Methods mirror the C functions one to one and return the raw CUptiResult;
// the tracer turns failures into user-facing absl::Status. Threads: every
// method may be called from any thread (CUPTI's own rules apply).
#ifndef VLLM_PROFILER_PROBE_CUPTI_CUPTI_API_H_
#define VLLM_PROFILER_PROBE_CUPTI_CUPTI_API_H_

#include <cuda.h>
#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace vllm_profiler::probe::cupti {

class CuptiApi {
 public:
  virtual ~CuptiApi() = default;

  // cuptiGetVersion.
  virtual CUptiResult GetVersion(uint32_t* version) = 0;
  // cuptiGetTimestamp: the clock of activity record timestamps.
  virtual CUptiResult GetTimestamp(uint64_t* timestamp) = 0;
  virtual CUptiResult Subscribe(CUpti_SubscriberHandle* subscriber,
                                CUpti_CallbackFunc callback,
                                void* userdata) = 0;
  virtual CUptiResult Unsubscribe(CUpti_SubscriberHandle subscriber) = 0;
  virtual CUptiResult ActivityEnable(CUpti_ActivityKind kind) = 0;
  virtual CUptiResult ActivityDisable(CUpti_ActivityKind kind) = 0;
  virtual CUptiResult ActivityRegisterCallbacks(
      CUpti_BuffersCallbackRequestFunc requested,
      CUpti_BuffersCallbackCompleteFunc completed) = 0;
  virtual CUptiResult ActivityFlushAll(uint32_t flag) = 0;
  virtual CUptiResult ActivityGetNextRecord(uint8_t* buffer, size_t valid_bytes,
                                            CUpti_Activity** record) = 0;
  virtual CUptiResult ActivityGetNumDroppedRecords(CUcontext context,
                                                   uint32_t stream_id,
                                                   size_t* dropped) = 0;
  virtual CUptiResult ActivityPushExternalCorrelationId(
      CUpti_ExternalCorrelationKind kind, uint64_t id) = 0;
  virtual CUptiResult ActivityPopExternalCorrelationId(
      CUpti_ExternalCorrelationKind kind, uint64_t* last_id) = 0;
  virtual CUptiResult SetThreadIdType(CUpti_ActivityThreadIdType type) = 0;
  // cuptiGetCallbackName; nullptr when unknown. The string is CUPTI's
  // (static lifetime).
  virtual const char* CallbackName(CUpti_CallbackDomain domain,
                                   uint32_t cbid) = 0;
  // cuptiGetResultString, or "CUPTI error <n>".
  virtual std::string ResultString(CUptiResult result) = 0;

  // CUDA driver state, read without initializing CUDA: false when libcuda
  // is not loaded in this process (the application has not used CUDA).
  virtual bool DriverLoaded() = 0;
  // cuDeviceGetCount; CUDA_ERROR_NOT_INITIALIZED before the application
  // called cuInit (the tracer never calls cuInit itself: doing so before a
  // fork would break CUDA in the children).
  virtual CUresult DeviceGetCount(int* count) = 0;

  // "libcupti 130001 from /path/libcupti.so.13" (or the fake's name).
  virtual std::string Describe() const = 0;
};

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_CUPTI_API_H_
