// Fuzzes ActivityConverter with arbitrary records: each chunk of the input
// picks a record kind, fills the record's bytes and a name string (fed to
// the demangler), then converts it. Pointer fields are always set to valid
// strings or null (CUPTI's are valid; the bytes around them are not
// trusted).
#include <cupti.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "probe/cupti/activity_converter.h"
#include "probe/cupti/gpu_clock_map.h"
#include "probe/cupti/recording_gpu_event_sink.h"

namespace {

using vllm_profiler::probe::cupti::ActivityConverter;
using vllm_profiler::probe::cupti::GpuClockMap;
using vllm_profiler::probe::cupti::RecordingGpuEventSink;

constexpr CUpti_ActivityKind kKinds[] = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
    CUPTI_ACTIVITY_KIND_KERNEL,
    CUPTI_ACTIVITY_KIND_MEMCPY,
    CUPTI_ACTIVITY_KIND_MEMCPY2,
    CUPTI_ACTIVITY_KIND_MEMSET,
    CUPTI_ACTIVITY_KIND_RUNTIME,
    CUPTI_ACTIVITY_KIND_DRIVER,
    CUPTI_ACTIVITY_KIND_SYNCHRONIZATION,
    CUPTI_ACTIVITY_KIND_OVERHEAD,
    CUPTI_ACTIVITY_KIND_GRAPH_TRACE,
    CUPTI_ACTIVITY_KIND_MARKER,
    CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
    CUPTI_ACTIVITY_KIND_DEVICE,
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RecordingGpuEventSink sink;
  GpuClockMap clock;
  clock.Reset({1000, 5});
  ActivityConverter::Options options;
  options.max_pending_events = 16;
  options.max_correlations = 16;
  options.max_open_markers = 4;
  ActivityConverter converter(
      options, [](CUpti_CallbackDomain, uint32_t cbid) -> const char* {
        return cbid % 3 == 0   ? "cudaLaunchKernel_v7000"
               : cbid % 3 == 1 ? "_v"
                               : nullptr;
      });
  converter.Begin(&sink, &clock);
  size_t pos = 0;
  while (pos + 2 <= size) {
    const uint8_t selector = data[pos++];
    const uint8_t name_len = data[pos++] % 64;
    std::string name(reinterpret_cast<const char*>(data + pos),
                     std::min<size_t>(name_len, size - pos));
    pos += name.size();
    alignas(8) uint8_t storage[512] = {};
    const size_t record_len = std::min<size_t>(sizeof(storage), size - pos);
    const size_t take = std::min<size_t>(record_len, 160);
    std::memcpy(storage, data + pos, take);
    pos += take;
    const CUpti_ActivityKind kind =
        kKinds[selector % (sizeof(kKinds) / sizeof(kKinds[0]))];
    std::memcpy(storage, &kind, sizeof(kind));
    switch (kind) {
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      case CUPTI_ACTIVITY_KIND_KERNEL: {
        auto* k = reinterpret_cast<CUpti_ActivityKernel10*>(storage);
        k->name = (selector & 0x80) ? nullptr : name.c_str();
        k->reserved0 = nullptr;
        k->pAccessPolicyWindow = nullptr;
        break;
      }
      case CUPTI_ACTIVITY_KIND_MARKER: {
        auto* m = reinterpret_cast<CUpti_ActivityMarker2*>(storage);
        m->name = (selector & 0x80) ? nullptr : name.c_str();
        m->domain = (selector & 0x40) ? nullptr : "domain";
        break;
      }
      case CUPTI_ACTIVITY_KIND_OVERHEAD:
        reinterpret_cast<CUpti_ActivityOverhead3*>(storage)->overheadData =
            nullptr;
        break;
      default:
        break;
    }
    converter.Process(*reinterpret_cast<const CUpti_Activity*>(storage));
    if (selector & 0x20) converter.EndBuffer();
    if (selector == 0xff) clock.AddPair({2000000000, 2000000000});
  }
  converter.Finish();
  return 0;
}
