#include "probe/cupti/cupti_tracer.h"

#include <time.h>

#include <atomic>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/mutex.h"
#include "probe/cupti/activity_buffer_pool.h"
#include "probe/cupti/activity_converter.h"
#include "probe/cupti/cupti_api.h"
#include "probe/cupti/cupti_loader.h"
#include "probe/cupti/gpu_clock_map.h"

namespace vllm_profiler::probe::cupti {
namespace {

int64_t MonotonicNow() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

const char* KindName(CUpti_ActivityKind kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      return "CONCURRENT_KERNEL";
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      return "MEMCPY";
    case CUPTI_ACTIVITY_KIND_MEMCPY2:
      return "MEMCPY2";
    case CUPTI_ACTIVITY_KIND_MEMSET:
      return "MEMSET";
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
      return "EXTERNAL_CORRELATION";
    case CUPTI_ACTIVITY_KIND_RUNTIME:
      return "RUNTIME";
    case CUPTI_ACTIVITY_KIND_DRIVER:
      return "DRIVER";
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
      return "SYNCHRONIZATION";
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
      return "OVERHEAD";
    case CUPTI_ACTIVITY_KIND_GRAPH_TRACE:
      return "GRAPH_TRACE";
    case CUPTI_ACTIVITY_KIND_MARKER:
      return "MARKER";
    default:
      return "?";
  }
}

// Number of external correlation ids this thread pushed and has not popped
// yet, so Pop only ever pops what Push pushed even when a capture starts or
// stops between the two. (A thread_local in a dlopen()ed library is
// allocated by glibc on a thread's first access, once; no lock after.)
thread_local uint32_t t_pushed = 0;

// The tracer CUPTI's process-global buffer callbacks go to.
std::atomic<class CuptiTracer*> g_callback_target{nullptr};
// The started tracer, if any (one at a time per process).
std::atomic<class CuptiTracer*> g_started{nullptr};

class CuptiTracer final : public GpuTracer {
 public:
  explicit CuptiTracer(CuptiTracerOptions options)
      : options_(std::move(options)),
        pool_({options_.buffer_bytes, options_.max_buffer_bytes}),
        converter_({options_.max_pending_events},
                   [this](CUpti_CallbackDomain domain, uint32_t cbid) {
                     // Set before any record can arrive; never reset.
                     CuptiApi* api = api_raw_.load(std::memory_order_acquire);
                     return api != nullptr ? api->CallbackName(domain, cbid)
                                           : nullptr;
                   }) {
    if (!options_.monotonic_ns) options_.monotonic_ns = MonotonicNow;
    if (!options_.graph_trace.has_value()) {
      const char* env = std::getenv("VLLM_PROFILER_CUPTI_GRAPH_TRACE");
      options_.graph_trace = env != nullptr && std::string_view(env) == "1";
    }
    if (!options_.log) {
      options_.log = [](std::string_view line) { VP_LOG(WARNING) << line; };
    }
    if (!options_.load_api) {
      options_.load_api = [] {
        return LoadCuptiApi(CuptiSearchInput::FromProcess());
      };
    }
  }

  ~CuptiTracer() override {
    Stop();
    CuptiTracer* self = this;
    g_callback_target.compare_exchange_strong(self, nullptr);
  }

  CuptiTracer(const CuptiTracer&) = delete;
  CuptiTracer& operator=(const CuptiTracer&) = delete;

  absl::Status Start(GpuEventSink* sink) override {
    return StartMode(sink, /*flight=*/false);
  }

  absl::Status StartFlight(GpuEventSink* sink) override {
    return StartMode(sink, /*flight=*/true);
  }

  void Stop() override { StopImpl(/*yield=*/false); }
  void Yield() override { StopImpl(/*yield=*/true); }

  void StopImpl(bool yield) {
    MutexLock lock(&control_mu_);
    if (!started_) return;
    // Relaxed is enough: Push/Pop tolerate a late or early observation
    // (pops stay balanced through t_pushed).
    capturing_.store(false, std::memory_order_relaxed);
    CuptiApi* api = api_.get();
    CUptiResult flush = CUPTI_SUCCESS;
    if (yield) {
      // The kinds are the other profiler's too now, and so are the
      // buffers: nothing more arrives for this sink.
      MutexLock data_lock(&mu_);
      converter_.Begin(nullptr, nullptr);  // Drops what is held.
      sink_ = nullptr;
    } else {
      for (CUpti_ActivityKind kind : enabled_kinds_) {
        api->ActivityDisable(kind);
      }
      // Can't hold mu_ during this call: CUPTI delivers the remaining
      // buffers to BufferCompleted (which takes mu_) before it returns. Lock
      // order is control_mu_ -> mu_.
      flush = api->ActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    }
    enabled_kinds_.clear();
    {
      MutexLock data_lock(&mu_);
      // The sink is the core's; whatever it throws must not leave the
      // tracer half stopped (started_ set, CUPTI subscribed).
      try {
        if (sink_ != nullptr) {
          clock_.AddPair(MeasurePair());
          if (!broken_.load(std::memory_order_relaxed)) converter_.Finish();
          const uint64_t refused = pool_.TakeRefused();
          if (records_dropped_ != 0 || refused != 0) {
            sink_->AddTracerDrops(records_dropped_, refused);
          }
        }
      } catch (...) {
        broken_.store(true, std::memory_order_relaxed);
      }
      if (broken_.load(std::memory_order_relaxed)) {
        converter_.Begin(nullptr, nullptr);  // Drops what is held.
      }
      sink_ = nullptr;
      records_dropped_ = 0;
    }
    const char* what = flight_ ? "GPU records of the flight recorder"
                               : "GPU events of this capture";
    if (broken_.load(std::memory_order_relaxed)) {
      LogLineOnceLocked(absl::StrCat(
          what, " are incomplete: an exception in their conversion"));
    }
    if (flush != CUPTI_SUCCESS) {
      LogLineOnceLocked(absl::StrCat(what,
                                     " may be incomplete: "
                                     "cuptiActivityFlushAll failed: ",
                                     api->ResultString(flush)));
    }
    if (subscribed_) {
      api->Unsubscribe(subscriber_);
      subscribed_ = false;
    }
    pool_.Trim();
    started_ = false;
    flight_ = false;
    CuptiTracer* self = this;
    g_started.compare_exchange_strong(self, nullptr);
  }

  void PushExternalCorrelation(uint64_t operator_id) override {
    // Acquire pairs with Start's release so api_raw_ is visible.
    if (!capturing_.load(std::memory_order_acquire)) return;
    CuptiApi* api = api_raw_.load(std::memory_order_relaxed);
    if (api->ActivityPushExternalCorrelationId(
            CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, operator_id) ==
        CUPTI_SUCCESS) {
      ++t_pushed;
    }
  }

  void PopExternalCorrelation() override {
    if (t_pushed == 0) return;
    --t_pushed;
    // api_raw_ was published before the push this pop matches.
    CuptiApi* api = api_raw_.load(std::memory_order_acquire);
    uint64_t last = 0;
    api->ActivityPopExternalCorrelationId(
        CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
  }

  std::string Describe() const override {
    MutexLock lock(&control_mu_);
    if (api_ != nullptr) {
      std::string out = api_->Describe();
      if (!optional_missing_.empty()) {
        absl::StrAppend(&out, " (not available: ", optional_missing_, ")");
      }
      return out;
    }
    if (load_attempted_) {
      return absl::StrCat("CUPTI unavailable: ", load_status_.message());
    }
    // Not loaded yet (it loads at the first capture): nothing known, and
    // Hello.cupti_version wants "" then.
    return "";
  }

  // CUPTI callbacks (process-global C functions). Nothing may escape.
  static void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size,
                                       size_t* max_num_records) {
    *buffer = nullptr;
    *size = 0;
    *max_num_records = 0;  // Fill the buffer.
    try {
      CuptiTracer* tracer = g_callback_target.load(std::memory_order_acquire);
      if (tracer == nullptr) return;
      *buffer = tracer->pool_.Acquire();
      if (*buffer != nullptr) *size = tracer->pool_.buffer_bytes();
    } catch (...) {
      *buffer = nullptr;
      *size = 0;
    }
  }

  static void CUPTIAPI BufferCompleted(CUcontext context, uint32_t stream_id,
                                       uint8_t* buffer, size_t size,
                                       size_t valid_size) {
    CuptiTracer* tracer = g_callback_target.load(std::memory_order_acquire);
    if (tracer == nullptr) {
      std::free(buffer);  // The pool is gone; its buffers came from malloc.
      return;
    }
    try {
      tracer->OnBufferCompleted(context, stream_id, buffer, valid_size);
    } catch (...) {
      tracer->broken_.store(true, std::memory_order_relaxed);
    }
    tracer->pool_.Release(buffer);
  }

  static void CUPTIAPI SubscriberCallback(void*, CUpti_CallbackDomain,
                                          CUpti_CallbackId, const void*) {
    // No callback domain is enabled: the subscription only claims CUPTI.
  }

 private:
  absl::Status StartMode(GpuEventSink* sink, bool flight) {
    MutexLock lock(&control_mu_);
    if (started_) {
      return absl::FailedPreconditionError(
          flight_ ? "GPU activity already recording for the flight recorder"
                  : "GPU activity already recording");
    }
    absl::Status status = StartLocked(sink, flight);
    if (!status.ok()) {
      LogLineOnceLocked(
          absl::StrCat(flight ? "flight recorder keeps no GPU records: "
                              : "GPU activity off for this capture: ",
                       status.message()));
    }
    return status;
  }

  absl::Status StartLocked(GpuEventSink* sink, bool flight)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    if (!load_attempted_) {
      load_attempted_ = true;
      absl::StatusOr<std::unique_ptr<CuptiApi>> api = options_.load_api();
      if (api.ok()) {
        api_ = std::move(*api);
        api_raw_.store(api_.get(), std::memory_order_release);
      } else {
        load_status_ = absl::UnavailableError(api.status().message());
      }
    }
    if (api_ == nullptr) return load_status_;
    CuptiApi* api = api_.get();
    if (!api->DriverLoaded()) {
      return absl::UnavailableError(
          "no CUDA in this process (libcuda is not loaded)");
    }
    int devices = 0;
    const CUresult cu = api->DeviceGetCount(&devices);
    if (cu != CUDA_SUCCESS) {
      return absl::UnavailableError(absl::StrCat(
          "no CUDA device (cuDeviceGetCount: CUDA error ", static_cast<int>(cu),
          cu == CUDA_ERROR_NOT_INITIALIZED ? ", CUDA not initialized" : "",
          ")"));
    }
    if (devices <= 0) return absl::UnavailableError("no CUDA device");

    CuptiTracer* none = nullptr;
    if (!g_started.compare_exchange_strong(none, this)) {
      return absl::FailedPreconditionError(
          "CUPTI is in use by another tracer of this process");
    }
    absl::Status status = ClaimAndEnable(sink, flight);
    if (!status.ok()) {
      for (CUpti_ActivityKind kind : enabled_kinds_) api->ActivityDisable(kind);
      enabled_kinds_.clear();
      if (subscribed_) {
        api->Unsubscribe(subscriber_);
        subscribed_ = false;
      }
      {
        MutexLock data_lock(&mu_);
        converter_.Finish();
        sink_ = nullptr;
      }
      CuptiTracer* self = this;
      g_started.compare_exchange_strong(self, nullptr);
      return status;
    }
    started_ = true;
    flight_ = flight;
    broken_.store(false, std::memory_order_relaxed);
    // Release publishes api_raw_ to Push on application threads. The
    // flight recorder records no operators: no correlation to push.
    if (!flight) capturing_.store(true, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::Status ClaimAndEnable(GpuEventSink* sink, bool flight)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    CuptiApi* api = api_.get();
    CUptiResult r = api->Subscribe(&subscriber_, &SubscriberCallback, this);
    if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) {
      return absl::FailedPreconditionError(
          absl::StrCat("CUPTI is in use by another profiler (cuptiSubscribe: ",
                       api->ResultString(r),
                       "; torch.profiler with CUDA activity or nsys?)"));
    }
    if (r != CUPTI_SUCCESS) {
      return absl::UnavailableError(
          absl::StrCat("cuptiSubscribe failed: ", api->ResultString(r)));
    }
    subscribed_ = true;
    // OS thread ids (gettid) on API records, as the probe's CPU events.
    api->SetThreadIdType(CUPTI_ACTIVITY_THREAD_ID_TYPE_SYSTEM);
    g_callback_target.store(this, std::memory_order_release);
    r = api->ActivityRegisterCallbacks(&BufferRequested, &BufferCompleted);
    if (r != CUPTI_SUCCESS) {
      return absl::UnavailableError(absl::StrCat(
          "cuptiActivityRegisterCallbacks failed: ", api->ResultString(r)));
    }
    {
      MutexLock data_lock(&mu_);
      clock_.Reset(MeasurePair());
      converter_.Begin(sink, &clock_, /*correlate=*/!flight);
      sink_ = sink;
      records_dropped_ = 0;
    }
    // Records the capture cannot do without: failure ends the start. The
    // flight recorder keeps GPU operations only (each further kind costs
    // on every CUDA call, all the time).
    std::vector<CUpti_ActivityKind> required = {
        CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
        CUPTI_ACTIVITY_KIND_MEMSET};
    if (!flight) {
      required.insert(required.begin(),
                      CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
    }
    for (CUpti_ActivityKind kind : required) {
      r = api->ActivityEnable(kind);
      if (r == CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED ||
          r == CUPTI_ERROR_NOT_COMPATIBLE) {
        return absl::FailedPreconditionError(absl::StrCat(
            "CUPTI is in use by another profiler (cuptiActivityEnable(",
            KindName(kind), "): ", api->ResultString(r), ")"));
      }
      if (r != CUPTI_SUCCESS) {
        return absl::UnavailableError(
            absl::StrCat("cuptiActivityEnable(", KindName(kind),
                         ") failed: ", api->ResultString(r)));
      }
      enabled_kinds_.push_back(kind);
    }
    // Nice to have: a failure is noted in Describe() and otherwise ignored.
    std::vector<CUpti_ActivityKind> optional = {CUPTI_ACTIVITY_KIND_MEMCPY2};
    if (!flight) {
      if (options_.runtime_api) optional.push_back(CUPTI_ACTIVITY_KIND_RUNTIME);
      if (options_.driver_api) optional.push_back(CUPTI_ACTIVITY_KIND_DRIVER);
      if (options_.synchronization) {
        optional.push_back(CUPTI_ACTIVITY_KIND_SYNCHRONIZATION);
      }
      if (options_.overhead) optional.push_back(CUPTI_ACTIVITY_KIND_OVERHEAD);
      if (*options_.graph_trace) {
        optional.push_back(CUPTI_ACTIVITY_KIND_GRAPH_TRACE);
      }
      if (options_.nvtx) optional.push_back(CUPTI_ACTIVITY_KIND_MARKER);
    }
    optional_missing_.clear();
    for (CUpti_ActivityKind kind : optional) {
      if (api->ActivityEnable(kind) == CUPTI_SUCCESS) {
        enabled_kinds_.push_back(kind);
      } else {
        absl::StrAppend(&optional_missing_,
                        optional_missing_.empty() ? "" : ", ", KindName(kind));
      }
    }
    return absl::OkStatus();
  }

  void OnBufferCompleted(CUcontext context, uint32_t stream_id, uint8_t* buffer,
                         size_t valid_size) {
    CuptiApi* api = api_raw_.load(std::memory_order_acquire);
    if (api == nullptr) return;
    size_t dropped = 0;
    if (api->ActivityGetNumDroppedRecords(context, stream_id, &dropped) !=
        CUPTI_SUCCESS) {
      dropped = 0;
    }
    MutexLock lock(&mu_);
    records_dropped_ += dropped;
    if (sink_ == nullptr || valid_size == 0 ||
        broken_.load(std::memory_order_relaxed)) {
      return;
    }
    // cuptiGetTimestamp and cuptiActivityGetNextRecord never call back into
    // the tracer, so holding mu_ across them is safe.
    clock_.AddPair(MeasurePair());
    CUpti_Activity* record = nullptr;
    while (api->ActivityGetNextRecord(buffer, valid_size, &record) ==
               CUPTI_SUCCESS &&
           record != nullptr) {
      converter_.Process(*record);
    }
    converter_.EndBuffer();
  }

  GpuClockPair MeasurePair() {
    CuptiApi* api = api_raw_.load(std::memory_order_acquire);
    return MeasureGpuClockPair(
        [api](uint64_t* ts) {
          return api != nullptr && api->GetTimestamp(ts) == CUPTI_SUCCESS;
        },
        options_.monotonic_ns);
  }

  void LogLineOnceLocked(std::string line)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_) {
    if (logged_.insert(line).second) options_.log(line);
  }

  CuptiTracerOptions options_;
  ActivityBufferPool pool_;  // Thread-safe.
  // Written once under control_mu_ before capturing_ is first set; read
  // without a lock by Push/Pop and the buffer callbacks.
  std::atomic<CuptiApi*> api_raw_{nullptr};
  std::atomic<bool> capturing_{false};
  std::atomic<bool> broken_{false};  // An exception escaped the conversion.

  mutable Mutex control_mu_;  // Start/Stop/Describe. Before mu_.
  std::unique_ptr<CuptiApi> api_ ABSL_GUARDED_BY(control_mu_);
  bool load_attempted_ ABSL_GUARDED_BY(control_mu_) = false;
  absl::Status load_status_ ABSL_GUARDED_BY(control_mu_);
  bool started_ ABSL_GUARDED_BY(control_mu_) = false;
  bool flight_ ABSL_GUARDED_BY(control_mu_) = false;  // StartFlight's.
  bool subscribed_ ABSL_GUARDED_BY(control_mu_) = false;
  CUpti_SubscriberHandle subscriber_ ABSL_GUARDED_BY(control_mu_) = nullptr;
  std::vector<CUpti_ActivityKind> enabled_kinds_ ABSL_GUARDED_BY(control_mu_);
  std::string optional_missing_ ABSL_GUARDED_BY(control_mu_);
  absl::flat_hash_set<std::string> logged_ ABSL_GUARDED_BY(control_mu_);

  Mutex mu_;  // Record conversion state.
  GpuEventSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  GpuClockMap clock_ ABSL_GUARDED_BY(mu_);
  ActivityConverter converter_ ABSL_GUARDED_BY(mu_);
  uint64_t records_dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

std::unique_ptr<GpuTracer> NewCuptiTracer() {
  return NewCuptiTracer(CuptiTracerOptions());
}

std::unique_ptr<GpuTracer> NewCuptiTracer(CuptiTracerOptions options) {
  return std::make_unique<CuptiTracer>(std::move(options));
}

}  // namespace vllm_profiler::probe::cupti
