// FakeCuptiApi: a CuptiApi for tests, with no GPU and no libcupti.
//
// Tests queue real CUpti_Activity* structs (QueueRecord); Flush (the
// tracer's cuptiActivityFlushAll) or DeliverQueued() hands them to the
// registered buffer callbacks exactly as CUPTI would: request a buffer, fill
// it, complete it. The fake's buffer format is its own (each record preceded
// by its 8-byte size); ActivityGetNextRecord walks it. Every result, the
// device state and the timestamp clock are knobs.
//
// Thread-safe (one //common:mutex, which TSan sees: Debian's absl::Mutex is
// not instrumented), though tests mostly drive it from one thread.
#ifndef VLLM_PROFILER_PROBE_CUPTI_FAKE_CUPTI_API_H_
#define VLLM_PROFILER_PROBE_CUPTI_FAKE_CUPTI_API_H_

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "probe/cupti/cupti_api.h"

namespace vllm_profiler::probe::cupti {

class FakeCuptiApi final : public CuptiApi {
 public:
  // Knobs (set before the tracer uses the fake).
  struct Knobs {
    CUptiResult subscribe = CUPTI_SUCCESS;
    std::map<CUpti_ActivityKind, CUptiResult> enable;  // Default SUCCESS.
    CUptiResult timestamp = CUPTI_SUCCESS;
    bool driver_loaded = true;
    CUresult device_count_result = CUDA_SUCCESS;
    int device_count = 1;
    size_t dropped_per_buffer = 0;  // Reported for every completed buffer.
    std::function<uint64_t()> gpu_clock = [] { return uint64_t{0}; };
    std::map<uint32_t, std::string> runtime_names;  // cbid -> name.
    std::map<uint32_t, std::string> driver_names;
  };

  struct Log {
    int subscribe_calls = 0;
    int unsubscribe_calls = 0;
    int flush_calls = 0;
    std::vector<CUpti_ActivityKind> enabled;  // Currently enabled.
    std::vector<int64_t> correlation_ops;     // id pushed, -1 per pop.
    int buffers_refused = 0;  // Requests answered with no buffer.
  };

  FakeCuptiApi() = default;
  explicit FakeCuptiApi(Knobs knobs) : knobs_(std::move(knobs)) {}

  // Queues a record to deliver at the next flush / DeliverQueued().
  template <typename Record>
  void QueueRecord(const Record& record) {
    QueueBytes(&record, sizeof(record));
  }
  void QueueBytes(const void* data, size_t size);
  // Delivers the queued records in one buffer (what fits; the rest stays
  // queued). Returns false when the tracer gave no buffer (records lost).
  bool DeliverQueued();

  Log log() const;

  // CuptiApi.
  CUptiResult GetVersion(uint32_t* version) override;
  CUptiResult GetTimestamp(uint64_t* timestamp) override;
  CUptiResult Subscribe(CUpti_SubscriberHandle* subscriber,
                        CUpti_CallbackFunc callback, void* userdata) override;
  CUptiResult Unsubscribe(CUpti_SubscriberHandle subscriber) override;
  CUptiResult ActivityEnable(CUpti_ActivityKind kind) override;
  CUptiResult ActivityDisable(CUpti_ActivityKind kind) override;
  CUptiResult ActivityRegisterCallbacks(
      CUpti_BuffersCallbackRequestFunc requested,
      CUpti_BuffersCallbackCompleteFunc completed) override;
  CUptiResult ActivityFlushAll(uint32_t flag) override;
  CUptiResult ActivityGetNextRecord(uint8_t* buffer, size_t valid_bytes,
                                    CUpti_Activity** record) override;
  CUptiResult ActivityGetNumDroppedRecords(CUcontext context,
                                           uint32_t stream_id,
                                           size_t* dropped) override;
  CUptiResult ActivityPushExternalCorrelationId(
      CUpti_ExternalCorrelationKind kind, uint64_t id) override;
  CUptiResult ActivityPopExternalCorrelationId(
      CUpti_ExternalCorrelationKind kind, uint64_t* last_id) override;
  CUptiResult SetThreadIdType(CUpti_ActivityThreadIdType type) override;
  const char* CallbackName(CUpti_CallbackDomain domain, uint32_t cbid) override;
  std::string ResultString(CUptiResult result) override;
  bool DriverLoaded() override;
  CUresult DeviceGetCount(int* count) override;
  std::string Describe() const override { return "fake CUPTI"; }

 private:
  mutable Mutex mu_;
  Knobs knobs_;
  Log log_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<uint8_t>> queued_ ABSL_GUARDED_BY(mu_);
  CUpti_BuffersCallbackRequestFunc requested_ ABSL_GUARDED_BY(mu_) = nullptr;
  CUpti_BuffersCallbackCompleteFunc completed_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<uint64_t> correlation_stack_ ABSL_GUARDED_BY(mu_);
};

// A fake for a tracer under test: `fake` stays valid while the tracer that
// was given `load` lives (CuptiTracerOptions::load_api). The first load
// hands the fake over; a second fails (the tracer loads once).
struct FakeCuptiLoader {
  FakeCuptiApi* fake = nullptr;
  std::function<absl::StatusOr<std::unique_ptr<CuptiApi>>()> load;
};
FakeCuptiLoader MakeFakeCuptiLoader(FakeCuptiApi::Knobs knobs = {});

}  // namespace vllm_profiler::probe::cupti

#endif  // VLLM_PROFILER_PROBE_CUPTI_FAKE_CUPTI_API_H_
