// A stand-in libcupti.so for the full-stack test (probe_fake_cupti_test):
// the real probe dlopen()s it through VLLM_PROFILER_CUPTI_LIB. It exports
// the CUPTI functions the tracer resolves and makes up GPU activity from
// what the probe does: every external correlation id the probe pushes (one
// per torch operator) becomes, at the next flush, an EXTERNAL_CORRELATION
// record, a cudaLaunchKernel RUNTIME record on the pushing thread and a
// CONCURRENT_KERNEL record on stream 7 of device 0 with the same
// correlation id, all timed on CLOCK_MONOTONIC (cuptiGetTimestamp's clock
// here). The flight recorder's mode (VLLM_PROFILER_FLIGHT=gpu) pushes no
// correlation: while kernels are enabled without EXTERNAL_CORRELATION, the
// "GPU" runs a kernel "flight_kernel()" on stream 9 every millisecond,
// delivered at the next flush. Records are laid out with the real CUDA 13
// structs; the buffer format is this library's own (each record after its
// 8-byte size), which its cuptiActivityGetNextRecord walks.
#include <cupti.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace {

struct Launch {
  uint64_t external_id;
  uint32_t tid;
  uint64_t start_ns;
  bool kernels_enabled;  // At launch time: a later disable keeps the record.
};

std::mutex g_mu;
CUpti_BuffersCallbackRequestFunc g_requested = nullptr;
CUpti_BuffersCallbackCompleteFunc g_completed = nullptr;
std::vector<Launch> g_launches;  // Since the last flush.
uint32_t g_next_correlation = 1;
bool g_kernels_enabled = false;
// The flight recorder's kernels: from, until (0: still enabled) in ns.
uint64_t g_flight_from = 0;
uint64_t g_flight_until = 0;
// What the process holds of CUPTI: written at exit to $FAKE_CUPTI_REPORT,
// so a test can check the probe released everything after its captures.
int g_subscribed = 0;
int g_subscribes_total = 0;
std::vector<int> g_enabled_kinds;

__attribute__((destructor)) void WriteReport() {
  const char* path = std::getenv("FAKE_CUPTI_REPORT");
  if (path == nullptr) return;
  FILE* f = std::fopen(path, "w");
  if (f == nullptr) return;
  std::fprintf(f,
               "{\"subscribed\": %d, \"subscribes_total\": %d, "
               "\"enabled_kinds\": %zu}\n",
               g_subscribed, g_subscribes_total, g_enabled_kinds.size());
  std::fclose(f);
}

uint64_t Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
}

template <typename Record>
void Append(std::vector<uint8_t>* out, const Record& r) {
  const uint64_t n = sizeof(r);
  const size_t at = out->size();
  out->resize(at + 8 + (n + 7) / 8 * 8);
  std::memcpy(out->data() + at, &n, 8);
  std::memcpy(out->data() + at + 8, &r, n);
}

}  // namespace

extern "C" {

CUptiResult cuptiGetVersion(uint32_t* version) {
  *version = CUPTI_API_VERSION;
  return CUPTI_SUCCESS;
}
CUptiResult cuptiGetTimestamp(uint64_t* timestamp) {
  *timestamp = Now();
  return CUPTI_SUCCESS;
}
CUptiResult cuptiSubscribe(CUpti_SubscriberHandle* s, CUpti_CallbackFunc,
                           void*) {
  *s = reinterpret_cast<CUpti_SubscriberHandle>(&g_mu);
  std::lock_guard<std::mutex> lock(g_mu);
  ++g_subscribed;
  ++g_subscribes_total;
  return CUPTI_SUCCESS;
}
CUptiResult cuptiUnsubscribe(CUpti_SubscriberHandle) {
  std::lock_guard<std::mutex> lock(g_mu);
  --g_subscribed;
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityEnable(CUpti_ActivityKind kind) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
    g_kernels_enabled = true;
    bool correlated = false;
    for (int k : g_enabled_kinds) {
      correlated |= k == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
    }
    if (!correlated) {
      g_flight_from = Now();
      g_flight_until = 0;
    }
  }
  g_enabled_kinds.push_back(kind);
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityDisable(CUpti_ActivityKind kind) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
    g_kernels_enabled = false;
    if (g_flight_from != 0) g_flight_until = Now();
  }
  for (size_t i = 0; i < g_enabled_kinds.size(); ++i) {
    if (g_enabled_kinds[i] == kind) {
      g_enabled_kinds.erase(g_enabled_kinds.begin() + i);
      break;
    }
  }
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityRegisterCallbacks(
    CUpti_BuffersCallbackRequestFunc requested,
    CUpti_BuffersCallbackCompleteFunc completed) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_requested = requested;
  g_completed = completed;
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityPushExternalCorrelationId(
    CUpti_ExternalCorrelationKind, uint64_t id) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_launches.size() < 100000) {
    g_launches.push_back({id, static_cast<uint32_t>(syscall(SYS_gettid)), Now(),
                          g_kernels_enabled});
  }
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind,
                                                  uint64_t* last) {
  *last = 0;
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityFlushAll(uint32_t) {
  std::vector<uint8_t> records;
  CUpti_BuffersCallbackRequestFunc requested;
  CUpti_BuffersCallbackCompleteFunc completed;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    requested = g_requested;
    completed = g_completed;
    for (const Launch& l : g_launches) {
      const uint32_t correlation = g_next_correlation++;
      CUpti_ActivityExternalCorrelation ext;
      std::memset(&ext, 0, sizeof(ext));
      ext.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
      ext.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
      ext.externalId = l.external_id;
      ext.correlationId = correlation;
      Append(&records, ext);
      CUpti_ActivityAPI api;
      std::memset(&api, 0, sizeof(api));
      api.kind = CUPTI_ACTIVITY_KIND_RUNTIME;
      api.cbid = CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000;
      api.start = l.start_ns + 100;
      api.end = l.start_ns + 600;
      api.threadId = l.tid;
      api.correlationId = correlation;
      Append(&records, api);
      CUpti_ActivityKernel10 k;
      std::memset(&k, 0, sizeof(k));
      k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
      k.name = "_Z11fake_kernelPfi";
      k.start = l.start_ns + 1000;
      k.end = l.start_ns + 3000;
      k.deviceId = 0;
      k.streamId = 7;
      k.correlationId = correlation;
      k.gridX = 1;
      k.blockX = 128;
      if (l.kernels_enabled) Append(&records, k);
    }
    if (g_flight_from != 0) {
      const uint64_t until = g_flight_until != 0 ? g_flight_until : Now();
      uint64_t t = g_flight_from;
      for (int n = 0; t + 1000000 <= until && n < 100000; ++n) {
        CUpti_ActivityKernel10 k;
        std::memset(&k, 0, sizeof(k));
        k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
        k.name = "_Z13flight_kernelv";
        k.start = t;
        k.end = t + 200000;
        k.streamId = 9;
        k.correlationId = g_next_correlation++;
        k.gridX = 1;
        k.blockX = 32;
        Append(&records, k);
        t += 1000000;
      }
      g_flight_from = g_flight_until != 0 ? 0 : t;
    }
    if (std::getenv("FAKE_CUPTI_DEBUG") != nullptr) {
      std::fprintf(stderr, "fake_libcupti: flush: %zu launches\n",
                   g_launches.size());
    }
    g_launches.clear();
  }
  if (requested == nullptr || completed == nullptr || records.empty()) {
    return CUPTI_SUCCESS;
  }
  size_t at = 0;
  while (at < records.size()) {
    uint8_t* buffer = nullptr;
    size_t size = 0, max_records = 0;
    requested(&buffer, &size, &max_records);
    if (buffer == nullptr) return CUPTI_SUCCESS;  // Dropped.
    size_t used = 0;
    while (at < records.size()) {
      uint64_t n;
      std::memcpy(&n, records.data() + at, 8);
      const size_t need = 8 + (n + 7) / 8 * 8;
      if (used + need > size) break;
      std::memcpy(buffer + used, records.data() + at, need);
      used += need;
      at += need;
    }
    completed(nullptr, 0, buffer, size, used);
    if (used == 0) return CUPTI_SUCCESS;
  }
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityGetNextRecord(uint8_t* buffer, size_t valid,
                                       CUpti_Activity** record) {
  size_t offset = 0;
  if (*record != nullptr) {
    const uint8_t* current = reinterpret_cast<uint8_t*>(*record);
    uint64_t n;
    std::memcpy(&n, current - 8, 8);
    offset = static_cast<size_t>(current - buffer) + (n + 7) / 8 * 8;
  }
  if (offset + 8 > valid) return CUPTI_ERROR_MAX_LIMIT_REACHED;
  *record = reinterpret_cast<CUpti_Activity*>(buffer + offset + 8);
  return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityGetNumDroppedRecords(CUcontext, uint32_t,
                                              size_t* dropped) {
  *dropped = 0;
  return CUPTI_SUCCESS;
}
CUptiResult cuptiSetThreadIdType(CUpti_ActivityThreadIdType) {
  return CUPTI_SUCCESS;
}
CUptiResult cuptiGetCallbackName(CUpti_CallbackDomain, uint32_t cbid,
                                 const char** name) {
  *name = cbid == CUPTI_RUNTIME_TRACE_CBID_cudaLaunchKernel_v7000
              ? "cudaLaunchKernel_v7000"
              : nullptr;
  return *name != nullptr ? CUPTI_SUCCESS : CUPTI_ERROR_INVALID_PARAMETER;
}
CUptiResult cuptiGetResultString(CUptiResult, const char** str) {
  *str = "fake CUPTI error";
  return CUPTI_SUCCESS;
}

}  // extern "C"
