// Hot paths of the CUPTI tracer (no GPU: the fake CUPTI stands in):
//   * converting one activity record into a v1::Event (CUPTI's buffer
//     thread does this for every kernel, copy and API call);
//   * the whole buffer-completed path for a 1000-record buffer;
//   * Push/PopExternalCorrelation on the application thread when no capture
//     runs (every torch operator pays it);
//   * the flight recorder at level gpu: the same buffer path in flight mode
//     into the GPU ring, and one kernel event into a full ring (serialize,
//     evict the oldest).
// Baseline in the same run: copying the record's bytes and building an
// empty v1::Event, the least any converter must do.
#include <cupti.h>

#include <cstring>
#include <memory>

#include "benchmark/benchmark.h"
#include "probe/core/gpu_ring.h"
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
  FakeCuptiLoader loader = MakeFakeCuptiLoader(knobs);
  FakeCuptiApi* fake = loader.fake;
  CuptiTracerOptions options;
  options.load_api = std::move(loader.load);
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

// The tracer's sink at level gpu, minus the string table.
class RingSink final : public GpuEventSink {
 public:
  explicit RingSink(size_t bytes) : ring(bytes) {}
  uint32_t InternString(std::string_view) override { return 1; }
  void AddEvent(v1::Event event) override { ring.Add(event); }
  void AddTracerDrops(uint64_t, uint64_t) override {}
  GpuRing ring;
};

void BM_FlightBufferCompletedPath1000RecordsIntoRing(benchmark::State& state) {
  FakeCuptiLoader loader = MakeFakeCuptiLoader();
  FakeCuptiApi* fake = loader.fake;
  CuptiTracerOptions options;
  options.load_api = std::move(loader.load);
  options.log = [](std::string_view) {};
  auto tracer = NewCuptiTracer(std::move(options));
  RingSink sink(16 << 20);  // The default VLLM_PROFILER_FLIGHT_GPU_BYTES.
  if (!tracer->StartFlight(&sink).ok()) {
    state.SkipWithError("start failed");
    return;
  }
  uint32_t correlation = 0;
  for (auto _ : state) {
    state.PauseTiming();
    for (int i = 0; i < 1000; ++i) fake->QueueRecord(Kernel(++correlation));
    state.ResumeTiming();
    fake->DeliverQueued();
  }
  tracer->Stop();
  const GpuRing::Stats s = sink.ring.stats();
  state.counters["ring_events"] = static_cast<double>(s.records);
  state.counters["bytes_per_event"] =
      s.records > 0 ? static_cast<double>(s.used_bytes) / s.records : 0;
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_FlightBufferCompletedPath1000RecordsIntoRing);

// One kernel event as the converter makes it, into a full 16 MiB ring.
void BM_GpuRingAddKernelEvent(benchmark::State& state) {
  v1::Event e;
  e.set_kind(v1::EVENT_KIND_KERNEL);
  e.set_name_id(1234);
  e.set_start_ns(1'700'000'000'000'000'000);
  e.set_duration_ns(25'000);
  e.set_device(0);
  e.set_stream(7);
  e.set_context(1);
  e.set_correlation_id(123456);
  v1::KernelInfo* k = e.mutable_kernel_info();
  k->set_grid_x(128);
  k->set_grid_y(1);
  k->set_grid_z(1);
  k->set_block_x(256);
  k->set_block_y(1);
  k->set_block_z(1);
  k->set_registers_per_thread(32);
  k->set_static_shared_bytes(1024);
  k->set_dynamic_shared_bytes(4096);
  GpuRing ring(16 << 20);
  while (ring.stats().overwritten == 0) ring.Add(e);  // Full.
  for (auto _ : state) {
    e.set_start_ns(e.start_ns() + 1);
    ring.Add(e);
  }
  state.counters["bytes_per_event"] =
      static_cast<double>(GpuRing::RecordBytes(e));
  state.counters["events_in_16MiB"] = static_cast<double>(ring.stats().records);
}
BENCHMARK(BM_GpuRingAddKernelEvent);

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
