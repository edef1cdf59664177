#include "probe/cupti/cupti_tracer.h"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "probe/cupti/cupti_api.h"
#include "probe/cupti/fake_cupti_api.h"
#include "probe/cupti/recording_gpu_event_sink.h"

namespace vllm_profiler::probe::cupti {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr uint64_t kGpuNow = 1'000'000'000;
constexpr int64_t kMonotonicNow = 5'000;
// Both fake clocks stand still, so GPU ts t maps to t - kGpuNow + 5000.
int64_t Mono(uint64_t gpu) {
  return static_cast<int64_t>(gpu - kGpuNow) + kMonotonicNow;
}

template <typename Record>
Record Zeroed(CUpti_ActivityKind kind) {
  Record record;
  std::memset(&record, 0, sizeof(record));
  record.kind = kind;
  return record;
}

class CuptiTracerTest : public ::testing::Test {
 protected:
  // A tracer over a fake; `fake_` stays valid while the tracer lives.
  std::unique_ptr<GpuTracer> MakeTracer(FakeCuptiApi::Knobs knobs,
                                        CuptiTracerOptions options = {}) {
    knobs.gpu_clock = [] { return kGpuNow; };
    knobs.runtime_names[211] = "cudaLaunchKernel_v7000";
    FakeCuptiLoader loader = MakeFakeCuptiLoader(std::move(knobs));
    fake_ = loader.fake;
    options.load_api = std::move(loader.load);
    options.monotonic_ns = [] { return kMonotonicNow; };
    options.log = [this](std::string_view line) {
      log_lines_.emplace_back(line);
    };
    return NewCuptiTracer(std::move(options));
  }

  void QueueLaunch(uint32_t correlation, uint64_t op, uint64_t start) {
    auto ext = Zeroed<CUpti_ActivityExternalCorrelation>(
        CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
    ext.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
    ext.correlationId = correlation;
    ext.externalId = op;
    auto api = Zeroed<CUpti_ActivityAPI>(CUPTI_ACTIVITY_KIND_RUNTIME);
    api.cbid = 211;
    api.start = start;
    api.end = start + 500;
    api.threadId = 777;
    api.correlationId = correlation;
    fake_->QueueRecord(ext);
    fake_->QueueRecord(api);
  }
  void QueueKernel(uint32_t correlation, uint64_t start, uint64_t end) {
    auto k =
        Zeroed<CUpti_ActivityKernel10>(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    k.name = "_Z6matmulPKfS0_Pfi";
    k.correlationId = correlation;
    k.start = start;
    k.end = end;
    k.streamId = 7;
    k.gridX = 64;
    k.blockX = 256;
    fake_->QueueRecord(k);
  }

  FakeCuptiApi* fake_ = nullptr;
  std::vector<std::string> log_lines_;
  RecordingGpuEventSink sink_;
};

TEST_F(CuptiTracerTest, CaptureTurnsRecordsIntoCorrelatedEvents) {
  auto tracer = MakeTracer({});
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  EXPECT_THAT(
      fake_->log().enabled,
      ElementsAre(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
                  CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                  CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET,
                  CUPTI_ACTIVITY_KIND_MEMCPY2, CUPTI_ACTIVITY_KIND_RUNTIME,
                  CUPTI_ACTIVITY_KIND_DRIVER,
                  CUPTI_ACTIVITY_KIND_SYNCHRONIZATION,
                  CUPTI_ACTIVITY_KIND_OVERHEAD, CUPTI_ACTIVITY_KIND_MARKER));
  EXPECT_EQ(fake_->log().subscribe_calls, 1);
  tracer->PushExternalCorrelation(9001);
  tracer->PopExternalCorrelation();
  EXPECT_THAT(fake_->log().correlation_ops, ElementsAre(9001, -1));

  // The device buffer (kernel) completes before the thread buffer that has
  // the external correlation and the launch.
  QueueKernel(42, kGpuNow + 2'000, kGpuNow + 9'000);
  ASSERT_TRUE(fake_->DeliverQueued());
  EXPECT_THAT(sink_.events(), IsEmpty());  // Held for its operator.
  QueueLaunch(42, 9001, kGpuNow + 1'000);
  auto copy = Zeroed<CUpti_ActivityMemcpy6>(CUPTI_ACTIVITY_KIND_MEMCPY);
  copy.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_DTOH;
  copy.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  copy.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE;
  copy.bytes = 1 << 20;
  copy.start = kGpuNow + 10'000;
  copy.end = kGpuNow + 30'000;
  copy.correlationId = 43;  // Launched outside any operator.
  fake_->QueueRecord(copy);
  tracer->Stop();  // Flush delivers the rest.
  EXPECT_EQ(fake_->log().flush_calls, 1);
  EXPECT_THAT(fake_->log().enabled, IsEmpty());
  EXPECT_EQ(fake_->log().unsubscribe_calls, 1);

  const std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 3u);
  // The launch goes out as soon as its buffer is read; the held kernel at
  // the end of that buffer.
  const v1::Event& kernel = events[1];
  EXPECT_EQ(kernel.kind(), v1::EVENT_KIND_KERNEL);
  EXPECT_EQ(sink_.Name(kernel.name_id()),
            "matmul(float const*, float const*, float*, int)");
  EXPECT_EQ(kernel.start_ns(), Mono(kGpuNow + 2'000));
  EXPECT_EQ(kernel.duration_ns(), 7'000);
  EXPECT_EQ(kernel.correlation_id(), 42u);
  EXPECT_EQ(kernel.external_id(), 9001u);
  EXPECT_EQ(kernel.stream(), 7u);
  EXPECT_EQ(kernel.kernel_info().grid_x(), 64u);
  EXPECT_EQ(kernel.kernel_info().block_x(), 256u);
  const v1::Event& launch = events[0];
  EXPECT_EQ(launch.kind(), v1::EVENT_KIND_CUDA_RUNTIME);
  EXPECT_EQ(sink_.Name(launch.name_id()), "cudaLaunchKernel");
  EXPECT_EQ(launch.correlation_id(), 42u);
  EXPECT_EQ(launch.external_id(), 9001u);
  EXPECT_EQ(launch.tid(), 777u);
  EXPECT_EQ(launch.start_ns(), Mono(kGpuNow + 1'000));
  const v1::Event& memcpy = events[2];  // Sent at Finish, no operator.
  EXPECT_EQ(memcpy.kind(), v1::EVENT_KIND_MEMCPY);
  EXPECT_EQ(sink_.Name(memcpy.name_id()), "Memcpy DtoH (Device -> Pageable)");
  EXPECT_EQ(memcpy.external_id(), 0u);
  EXPECT_EQ(memcpy.memcpy_info().bytes(), 1u << 20);
  EXPECT_EQ(sink_.records_dropped(), 0u);
  EXPECT_EQ(sink_.buffers_dropped(), 0u);
  EXPECT_THAT(log_lines_, IsEmpty());
  EXPECT_EQ(tracer->Describe(), "fake CUPTI");
}

TEST_F(CuptiTracerTest, SecondCaptureUsesItsOwnSink) {
  auto tracer = MakeTracer({});
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  QueueKernel(0, kGpuNow + 1, kGpuNow + 2);
  tracer->Stop();
  RecordingGpuEventSink second;
  second.InternString("something else first");
  ASSERT_TRUE(tracer->Start(&second).ok());
  QueueKernel(0, kGpuNow + 1, kGpuNow + 2);
  tracer->Stop();
  ASSERT_EQ(second.events().size(), 1u);
  EXPECT_EQ(second.Name(second.events()[0].name_id()),
            "matmul(float const*, float const*, float*, int)");
  EXPECT_EQ(sink_.events().size(), 1u);
}

// VLLM_PROFILER_FLIGHT=gpu: GPU operations only, sent as they are read.
TEST_F(CuptiTracerTest, FlightRecordsGpuOperationsWithoutCorrelation) {
  auto tracer = MakeTracer({});
  ASSERT_TRUE(tracer->StartFlight(&sink_).ok());
  EXPECT_THAT(
      fake_->log().enabled,
      ElementsAre(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                  CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_MEMSET,
                  CUPTI_ACTIVITY_KIND_MEMCPY2));
  // No operators are recorded: nothing is pushed.
  tracer->PushExternalCorrelation(9001);
  tracer->PopExternalCorrelation();
  EXPECT_THAT(fake_->log().correlation_ops, IsEmpty());
  QueueKernel(42, kGpuNow + 2'000, kGpuNow + 9'000);
  ASSERT_TRUE(fake_->DeliverQueued());
  // Not held for an external correlation that will never come.
  std::vector<v1::Event> events = sink_.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), v1::EVENT_KIND_KERNEL);
  EXPECT_EQ(events[0].start_ns(), Mono(kGpuNow + 2'000));
  EXPECT_EQ(events[0].correlation_id(), 42u);
  EXPECT_EQ(events[0].external_id(), 0u);
  EXPECT_EQ(sink_.Name(events[0].name_id()),
            "matmul(float const*, float const*, float*, int)");
  // A capture waits for the flight recording to stop.
  RecordingGpuEventSink capture;
  absl::Status busy = tracer->Start(&capture);
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(busy.message()), HasSubstr("flight recorder"));
  QueueKernel(43, kGpuNow + 10'000, kGpuNow + 11'000);
  tracer->Stop();  // Flushes into the flight sink.
  EXPECT_EQ(sink_.events().size(), 2u);
  EXPECT_THAT(fake_->log().enabled, IsEmpty());
  EXPECT_EQ(fake_->log().unsubscribe_calls, 1);
  // Then the capture gets everything, correlation included.
  ASSERT_TRUE(tracer->Start(&capture).ok());
  EXPECT_THAT(fake_->log().enabled,
              Contains(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION));
  tracer->PushExternalCorrelation(7);
  tracer->PopExternalCorrelation();
  EXPECT_THAT(fake_->log().correlation_ops, ElementsAre(7, -1));
  tracer->Stop();
  EXPECT_THAT(log_lines_, IsEmpty());
}

// Another profiler took CUPTI while the flight recorder held it: the probe
// lets go without disabling the kinds the other one uses, or flushing.
TEST_F(CuptiTracerTest, YieldLeavesTheKindsToTheOtherProfiler) {
  auto tracer = MakeTracer({});
  ASSERT_TRUE(tracer->StartFlight(&sink_).ok());
  QueueKernel(42, kGpuNow + 2'000, kGpuNow + 9'000);
  tracer->Yield();
  EXPECT_EQ(fake_->log().flush_calls, 0);
  EXPECT_EQ(fake_->log().enabled.size(), 4u);  // Untouched.
  EXPECT_EQ(fake_->log().unsubscribe_calls, 1);
  fake_->DeliverQueued();  // Not ours any more.
  EXPECT_THAT(sink_.events(), IsEmpty());
  // And the flight recorder can take it again later.
  ASSERT_TRUE(tracer->StartFlight(&sink_).ok());
  QueueKernel(44, kGpuNow + 20'000, kGpuNow + 29'000);
  tracer->Stop();
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.events()[0].correlation_id(), 44u);
}

TEST_F(CuptiTracerTest, FlightStartFailureIsLoggedAsTheFlightRecorders) {
  FakeCuptiApi::Knobs knobs;
  knobs.subscribe = CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  auto tracer = MakeTracer(knobs);
  EXPECT_EQ(tracer->StartFlight(&sink_).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(log_lines_,
              ElementsAre(HasSubstr("flight recorder keeps no GPU records: "
                                    "CUPTI is in use by another profiler")));
}

TEST_F(CuptiTracerTest, PoolExhaustionAndCuptiDropsAreReported) {
  FakeCuptiApi::Knobs knobs;
  knobs.dropped_per_buffer = 3;
  CuptiTracerOptions options;
  options.buffer_bytes = 4096;
  options.max_buffer_bytes = 4096;
  auto tracer = MakeTracer(knobs, options);
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  QueueKernel(0, kGpuNow + 1, kGpuNow + 2);
  ASSERT_TRUE(fake_->DeliverQueued());  // One buffer: 3 records dropped.
  tracer->Stop();
  EXPECT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.records_dropped(), 3u);
  EXPECT_EQ(sink_.buffers_dropped(), 0u);

  // A pool too small for even one buffer: CUPTI gets none.
  CuptiTracerOptions tiny;
  tiny.buffer_bytes = 4096;
  tiny.max_buffer_bytes = 1024;
  RecordingGpuEventSink sink2;
  auto starved = MakeTracer({}, tiny);
  ASSERT_TRUE(starved->Start(&sink2).ok());
  QueueKernel(0, kGpuNow + 1, kGpuNow + 2);
  EXPECT_FALSE(fake_->DeliverQueued());
  QueueKernel(0, kGpuNow + 3, kGpuNow + 4);
  starved->Stop();  // The flush is refused a buffer too.
  EXPECT_THAT(sink2.events(), IsEmpty());
  EXPECT_EQ(sink2.buffers_dropped(), 2u);
  EXPECT_EQ(fake_->log().buffers_refused, 2);
}

TEST_F(CuptiTracerTest, AnotherProfilerHoldsCupti) {
  FakeCuptiApi::Knobs knobs;
  knobs.subscribe = CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  auto tracer = MakeTracer(knobs);
  const absl::Status expected = absl::FailedPreconditionError(
      "CUPTI is in use by another profiler (cuptiSubscribe: "
      "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED; torch.profiler with "
      "CUDA activity or nsys?)");
  EXPECT_EQ(tracer->Start(&sink_), expected);
  EXPECT_EQ(tracer->Start(&sink_), expected);
  EXPECT_THAT(log_lines_, ElementsAre("GPU activity off for this capture: " +
                                      std::string(expected.message())));
  EXPECT_THAT(fake_->log().enabled, IsEmpty());
  tracer->PushExternalCorrelation(1);  // Not capturing: no CUPTI call.
  tracer->PopExternalCorrelation();
  EXPECT_THAT(fake_->log().correlation_ops, IsEmpty());
  tracer->Stop();  // Safe after a failed Start.
  EXPECT_EQ(fake_->log().flush_calls, 0);
}

TEST_F(CuptiTracerTest, ActivityEnableRefusedUndoesEverything) {
  FakeCuptiApi::Knobs knobs;
  knobs.enable[CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL] =
      CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
  auto tracer = MakeTracer(knobs);
  EXPECT_EQ(tracer->Start(&sink_),
            absl::FailedPreconditionError(
                "CUPTI is in use by another profiler "
                "(cuptiActivityEnable(CONCURRENT_KERNEL): "
                "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED)"));
  EXPECT_THAT(fake_->log().enabled, IsEmpty());
  EXPECT_EQ(fake_->log().unsubscribe_calls, 1);
}

TEST_F(CuptiTracerTest, GraphTraceFromOptionOrEnvironment) {
  setenv("VLLM_PROFILER_CUPTI_GRAPH_TRACE", "1", 1);
  auto tracer = MakeTracer({});
  unsetenv("VLLM_PROFILER_CUPTI_GRAPH_TRACE");
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  EXPECT_THAT(fake_->log().enabled, Contains(CUPTI_ACTIVITY_KIND_GRAPH_TRACE));
  tracer->Stop();
  CuptiTracerOptions off;
  off.graph_trace = false;
  setenv("VLLM_PROFILER_CUPTI_GRAPH_TRACE", "1", 1);
  tracer = MakeTracer({}, off);  // The option wins over the environment.
  unsetenv("VLLM_PROFILER_CUPTI_GRAPH_TRACE");
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  EXPECT_THAT(fake_->log().enabled,
              Not(Contains(CUPTI_ACTIVITY_KIND_GRAPH_TRACE)));
  tracer->Stop();
}

TEST_F(CuptiTracerTest, OptionalKindsMayBeMissing) {
  FakeCuptiApi::Knobs knobs;
  knobs.enable[CUPTI_ACTIVITY_KIND_MARKER] = CUPTI_ERROR_NOT_SUPPORTED;
  auto tracer = MakeTracer(knobs);
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  EXPECT_THAT(fake_->log().enabled, Not(Contains(CUPTI_ACTIVITY_KIND_MARKER)));
  EXPECT_EQ(tracer->Describe(), "fake CUPTI (not available: MARKER)");
  tracer->Stop();
}

TEST_F(CuptiTracerTest, NoDriverNoDevice) {
  FakeCuptiApi::Knobs knobs;
  knobs.driver_loaded = false;
  auto tracer = MakeTracer(knobs);
  EXPECT_EQ(tracer->Start(&sink_),
            absl::UnavailableError(
                "no CUDA in this process (libcuda is not loaded)"));

  FakeCuptiApi::Knobs no_init;
  no_init.device_count_result = CUDA_ERROR_NOT_INITIALIZED;
  tracer = MakeTracer(no_init);
  EXPECT_EQ(tracer->Start(&sink_),
            absl::UnavailableError("no CUDA device (cuDeviceGetCount: CUDA "
                                   "error 3, CUDA not initialized)"));
  FakeCuptiApi::Knobs zero;
  zero.device_count = 0;
  tracer = MakeTracer(zero);
  EXPECT_EQ(tracer->Start(&sink_), absl::UnavailableError("no CUDA device"));
  EXPECT_EQ(fake_->log().subscribe_calls, 0);
  EXPECT_EQ(log_lines_.size(), 3u);
}

TEST_F(CuptiTracerTest, LibraryNotFoundIsLoggedOnce) {
  CuptiTracerOptions options;
  int loads = 0;
  options.load_api = [&loads]() -> absl::StatusOr<std::unique_ptr<CuptiApi>> {
    ++loads;
    return absl::UnavailableError("libcupti not found (searched x)");
  };
  options.log = [this](std::string_view line) {
    log_lines_.emplace_back(line);
  };
  auto tracer = NewCuptiTracer(std::move(options));
  EXPECT_EQ(tracer->Describe(), "");  // Not loaded before the first capture.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(tracer->Start(&sink_),
              absl::UnavailableError("libcupti not found (searched x)"));
    tracer->Stop();
  }
  EXPECT_EQ(loads, 1);
  EXPECT_THAT(log_lines_, ElementsAre("GPU activity off for this capture: "
                                      "libcupti not found (searched x)"));
  EXPECT_EQ(tracer->Describe(),
            "CUPTI unavailable: libcupti not found (searched x)");
  tracer->PushExternalCorrelation(5);
  tracer->PopExternalCorrelation();
}

TEST_F(CuptiTracerTest, PopsBalancePushesAcrossStop) {
  auto tracer = MakeTracer({});
  tracer->PushExternalCorrelation(1);  // Before the capture: skipped.
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  tracer->PopExternalCorrelation();  // Matches the skipped push: skipped.
  tracer->PushExternalCorrelation(2);
  tracer->PushExternalCorrelation(3);
  tracer->Stop();
  tracer->PopExternalCorrelation();  // Still popped: CUPTI's stack balances.
  tracer->PopExternalCorrelation();
  tracer->PopExternalCorrelation();  // Nothing left of ours.
  EXPECT_THAT(fake_->log().correlation_ops, ElementsAre(2, 3, -1, -1));
}

TEST_F(CuptiTracerTest, OneStartedTracerPerProcess) {
  auto first = MakeTracer({});
  FakeCuptiApi* first_fake = fake_;
  ASSERT_TRUE(first->Start(&sink_).ok());
  auto second = MakeTracer({});
  EXPECT_EQ(second->Start(&sink_),
            absl::FailedPreconditionError(
                "CUPTI is in use by another tracer of this process"));
  first->Stop();
  EXPECT_TRUE(second->Start(&sink_).ok());
  second->Stop();
  EXPECT_EQ(first_fake->log().subscribe_calls, 1);
}

// A sink that throws: nothing may escape into CUPTI (and the host).
class ThrowingSink final : public GpuEventSink {
 public:
  uint32_t InternString(std::string_view) override { return 1; }
  void AddEvent(v1::Event) override { throw std::runtime_error("boom"); }
  void AddTracerDrops(uint64_t, uint64_t) override {}
};

TEST_F(CuptiTracerTest, ExceptionsInTheBufferPathAreContained) {
  auto tracer = MakeTracer({});
  ThrowingSink sink;
  ASSERT_TRUE(tracer->Start(&sink).ok());
  QueueKernel(0, kGpuNow + 1, kGpuNow + 2);
  EXPECT_TRUE(fake_->DeliverQueued());
  QueueKernel(0, kGpuNow + 3, kGpuNow + 4);
  QueueKernel(99, kGpuNow + 5, kGpuNow + 6);  // Held until Finish.
  tracer->Stop();                             // Must not throw.
  EXPECT_THAT(log_lines_,
              ElementsAre("GPU events of this capture are incomplete: an "
                          "exception in their conversion"));
  // The tracer is usable again for the next capture.
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  QueueKernel(0, kGpuNow + 5, kGpuNow + 6);
  tracer->Stop();
  EXPECT_EQ(sink_.events().size(), 1u);
}

TEST_F(CuptiTracerTest, ExceptionAtStopIsContained) {
  auto tracer = MakeTracer({});
  ThrowingSink sink;
  ASSERT_TRUE(tracer->Start(&sink).ok());
  QueueKernel(99, kGpuNow + 5, kGpuNow + 6);  // Held: sent (throws) at Stop.
  tracer->Stop();
  EXPECT_THAT(log_lines_,
              ElementsAre("GPU events of this capture are incomplete: an "
                          "exception in their conversion"));
  EXPECT_THAT(fake_->log().enabled, IsEmpty());
  EXPECT_EQ(fake_->log().unsubscribe_calls, 1);
  ASSERT_TRUE(tracer->Start(&sink_).ok());
  tracer->Stop();
}

// The real thing on this machine: libcupti from the CUDA 13 toolkit loads,
// there is no driver, so GPU activity is off with one log line, no crash.
TEST(CuptiTracerRealLibraryTest, NoDriverMeansUnavailableAndOneLogLine) {
  unsetenv("VLLM_PROFILER_CUPTI_LIB");
  std::vector<std::string> lines;
  CuptiTracerOptions options;
  options.log = [&lines](std::string_view line) { lines.emplace_back(line); };
  auto tracer = NewCuptiTracer(std::move(options));
  RecordingGpuEventSink sink;
  const absl::Status first = tracer->Start(&sink);
  EXPECT_EQ(first.code(), absl::StatusCode::kUnavailable);
  tracer->Stop();
  EXPECT_EQ(tracer->Start(&sink), first);
  tracer->Stop();
  ASSERT_EQ(lines.size(), 1u);
  if (tracer->Describe().rfind("CUPTI unavailable: libcupti not found", 0) ==
      0) {
    GTEST_SKIP() << "no libcupti on this machine: " << tracer->Describe();
  }
  EXPECT_EQ(first, absl::UnavailableError(
                       "no CUDA in this process (libcuda is not loaded)"));
  EXPECT_EQ(lines[0],
            "GPU activity off for this capture: no CUDA in this process "
            "(libcuda is not loaded)");
  EXPECT_THAT(tracer->Describe(), HasSubstr("libcupti "));
  EXPECT_TRUE(sink.events().empty());
}

TEST(CuptiTracerRealLibraryTest, BrokenOverrideIsTheReason) {
  setenv("VLLM_PROFILER_CUPTI_LIB", "/nonexistent/libcupti.so", 1);
  std::vector<std::string> lines;
  CuptiTracerOptions options;
  options.log = [&lines](std::string_view line) { lines.emplace_back(line); };
  auto tracer = NewCuptiTracer(std::move(options));
  RecordingGpuEventSink sink;
  EXPECT_EQ(tracer->Start(&sink),
            absl::UnavailableError("VLLM_PROFILER_CUPTI_LIB=/nonexistent/"
                                   "libcupti.so: no such file or folder"));
  unsetenv("VLLM_PROFILER_CUPTI_LIB");
  EXPECT_EQ(lines.size(), 1u);
}

}  // namespace
}  // namespace vllm_profiler::probe::cupti

namespace vllm_profiler::probe::cupti {
namespace {

// Application threads push/pop while CUPTI completes buffers on its own
// thread and the control thread starts and stops captures (run under
// --config=tsan too).
TEST(CuptiTracerConcurrencyTest, PushPopBuffersAndStopRace) {
  FakeCuptiApi::Knobs knobs;
  knobs.gpu_clock = [] { return kGpuNow; };
  FakeCuptiLoader loader = MakeFakeCuptiLoader(knobs);
  FakeCuptiApi* fake = loader.fake;
  CuptiTracerOptions options;
  options.load_api = std::move(loader.load);
  options.log = [](std::string_view) {};
  options.buffer_bytes = 4096;
  options.max_buffer_bytes = 4 * 4096;
  auto tracer = NewCuptiTracer(std::move(options));
  std::atomic<bool> done{false};
  std::atomic<int64_t> deliveries{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      uint64_t id = static_cast<uint64_t>(t) << 32;
      while (!done.load()) {
        tracer->PushExternalCorrelation(++id);
        tracer->PushExternalCorrelation(++id);
        tracer->PopExternalCorrelation();
        tracer->PopExternalCorrelation();
      }
    });
  }
  threads.emplace_back([&] {
    auto k =
        Zeroed<CUpti_ActivityKernel10>(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    k.name = "k";
    k.start = kGpuNow + 1;
    k.end = kGpuNow + 2;
    while (!done.load()) {
      for (int i = 0; i < 10; ++i) fake->QueueRecord(k);
      fake->DeliverQueued();
      deliveries.fetch_add(1);
    }
  });
  // Waits until the delivering thread has completed two more rounds (so at
  // least one full round ran entirely after this call).
  auto wait_deliveries = [&] {
    const int64_t from = deliveries.load();
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (deliveries.load() < from + 2 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return deliveries.load() >= from + 2;
  };
  for (int round = 0; round < 50; ++round) {
    RecordingGpuEventSink sink;
    ASSERT_TRUE(tracer->Start(&sink).ok());
    ASSERT_TRUE(wait_deliveries());
    tracer->Stop();
    // Nothing reaches a sink after its capture stopped, though records
    // keep being delivered.
    const size_t after_stop = sink.events().size();
    ASSERT_TRUE(wait_deliveries());
    EXPECT_EQ(sink.events().size(), after_stop);
  }
  done.store(true);
  for (std::thread& t : threads) t.join();
  // Every pop matched a push of ours: CUPTI's stack is balanced.
  int64_t depth = 0;
  for (int64_t op : fake->log().correlation_ops) {
    depth += op == -1 ? -1 : 1;
    ASSERT_GE(depth, 0);
  }
  EXPECT_EQ(depth, 0);
}

}  // namespace
}  // namespace vllm_profiler::probe::cupti
