// Hot paths of the CUPTI tracer (no GPU: the fake CUPTI stands in):
//   * converting one activity record into a v1::Event (CUPTI's buffer
//     thread does this for every kernel, copy and API call);
//   * the whole buffer-completed path for a 1000-record buffer;
//   * Push/PopExternalCorrelation on the application thread when no capture
//     runs (every torch operator pays it).
// Baseline in the same run: copying the record's bytes and building an
// empty v1::Event, the least any converter must do.
#include <cupti.h>

#include <cstring>
#include <memory>

#include "benchmark/benchmark.h"
#include "probe/cupti/activity_converter.h"
#include "probe/cupti/cupti_api.h"
#include "probe/cupti/cupti_tracer.h"
#include "probe/cupti/fake_cupti_api.h"

namespace vllm_profiler::probe::cupti {
namespace {

class CountingSink final : public GpuEventSink {
 public:
  uint32_t InternString(std::string_view) override { return 1; }
  void AddEvent(v1::Event event) override {
    benchmark::DoNotOptimize(event);
    ++events;
  }
  void AddTracerDrops(uint64_t, uint64_t) override {}
  uint64_t events = 0;
};

CUpti_ActivityKernel10 Kernel(uint32_t correlation) {
  CUpti_ActivityKernel10 k;
  std::memset(&k, 0, sizeof(k));
  k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
  k.name =
      "_ZN2at6native18elementwise_kernelILi128ELi2EZNS0_22gpu_kernel_"
      "implINS0_13AUnaryFunctorIfffNS0_15binary_internal10MulFunctorIfE"
      "EEEEEvRNS_18TensorIteratorBaseERKT_EUliE_EEviT1_";
  k.start = 1000;
  k.end = 2000;
  k.gridX = 128;
  k.blockX = 256;
  k.correlationId = correlation;
  return k;
}

void BM_Baseline_CopyRecordAndEmptyEvent(benchmark::State& state) {
  CUpti_ActivityKernel10 k = Kernel(1);
  CountingSink sink;
  for (auto _ : state) {
    CUpti_ActivityKernel10 copy;
    std::memcpy(&copy, &k, sizeof(copy));
    benchmark::DoNotOptimize(copy);
    v1::Event event;
    event.set_start_ns(static_cast<int64_t>(copy.start));
    sink.AddEvent(std::move(event));
  }
}
BENCHMARK(BM_Baseline_CopyRecordAndEmptyEvent);

void BM_ConvertKernelRecord(benchmark::State& state) {
  CountingSink sink;
  GpuClockMap clock;
  clock.Reset({0, 0});
  ActivityConverter converter({}, nullptr);
  converter.Begin(&sink, &clock);
  CUpti_ActivityExternalCorrelation ext;
  std::memset(&ext, 0, sizeof(ext));
  ext.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
  ext.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
  ext.correlationId = 7;
  ext.externalId = 99;
  converter.Process(reinterpret_cast<const CUpti_Activity&>(ext));
  CUpti_ActivityKernel10 k = Kernel(7);
  for (auto _ : state) {
    converter.Process(reinterpret_cast<const CUpti_Activity&>(k));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ConvertKernelRecord);

void BM_BufferCompletedPath1000Records(benchmark::State& state) {
  FakeCuptiApi::Knobs knobs;
  auto owned = std::make_unique<FakeCuptiApi>(knobs);
  FakeCuptiApi* fake = owned.get();
  auto holder = std::make_shared<std::unique_ptr<CuptiApi>>(std::move(owned));
  CuptiTracerOptions options;
  options.load_api = [holder]() -> absl::StatusOr<std::unique_ptr<CuptiApi>> {
    return std::move(*holder);
  };
  options.log = [](std::string_view) {};
  auto tracer = NewCuptiTracer(std::move(options));
  CountingSink sink;
  if (!tracer->Start(&sink).ok()) {
    state.SkipWithError("start failed");
    return;
  }
  const CUpti_ActivityKernel10 k = Kernel(0);
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < 1000; ++i) fake->QueueRecord(k);
    state.ResumeTiming();
    fake->DeliverQueued();
  }
  tracer->Stop();
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_BufferCompletedPath1000Records);

void BM_PushPopNotCapturing(benchmark::State& state) {
  CuptiTracerOptions options;
  options.load_api = []() -> absl::StatusOr<std::unique_ptr<CuptiApi>> {
    return absl::UnavailableError("not in this benchmark");
  };
  auto tracer = NewCuptiTracer(std::move(options));
  uint64_t id = 0;
  for (auto _ : state) {
    tracer->PushExternalCorrelation(++id);
    tracer->PopExternalCorrelation();
  }
}
BENCHMARK(BM_PushPopNotCapturing);

}  // namespace
}  // namespace vllm_profiler::probe::cupti

BENCHMARK_MAIN();
