#include "probe/cupti/activity_converter.h"

#include <cupti.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "probe/cupti/recording_gpu_event_sink.h"

namespace vllm_profiler::probe::cupti {
namespace {

// GPU ts -> monotonic: +1000 ns.
constexpr int64_t kOffset = 1000;

class ActivityConverterTest : public ::testing::Test {
 protected:
  ActivityConverterTest()
      : converter_(
            ActivityConverter::Options(),
            [](CUpti_CallbackDomain domain, uint32_t cbid) -> const char* {
              if (domain == CUPTI_CB_DOMAIN_RUNTIME_API && cbid == 211) {
                return "cudaLaunchKernel_v7000";
              }
              if (domain == CUPTI_CB_DOMAIN_DRIVER_API && cbid == 307) {
                return "cuLaunchKernel";
              }
              return nullptr;
            }) {
    clock_.Reset({/*gpu_ns=*/0, /*monotonic_ns=*/kOffset});
    converter_.Begin(&sink_, &clock_);
  }

  template <typename Record>
  static Record Zeroed() {
    Record record;
    std::memset(&record, 0, sizeof(record));
    return record;
  }
  template <typename Record>
  void Feed(const Record& record) {
    converter_.Process(reinterpret_cast<const CUpti_Activity&>(record));
  }

  static CUpti_ActivityKernel10 Kernel(const char* name, uint32_t correlation,
                                       uint64_t start, uint64_t end) {
    auto k = Zeroed<CUpti_ActivityKernel10>();
    k.kind = CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
    k.name = name;
    k.correlationId = correlation;
    k.start = start;
    k.end = end;
    return k;
  }
  static CUpti_ActivityExternalCorrelation External(uint32_t correlation,
                                                    uint64_t id) {
    auto e = Zeroed<CUpti_ActivityExternalCorrelation>();
    e.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
    e.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
    e.correlationId = correlation;
    e.externalId = id;
    return e;
  }

  RecordingGpuEventSink sink_;
  GpuClockMap clock_;
  ActivityConverter converter_;
};

TEST_F(ActivityConverterTest, KernelWithEverything) {
  auto k = Kernel("_Z10softmax_fwPfi", 42, 10'000, 12'500);
  k.gridX = 4;
  k.gridY = 2;
  k.gridZ = 1;
  k.blockX = 128;
  k.blockY = 1;
  k.blockZ = 1;
  k.registersPerThread = 32;
  k.staticSharedMemory = 1024;
  k.dynamicSharedMemory = 2048;
  k.deviceId = 1;
  k.contextId = 3;
  k.streamId = 7;
  k.graphId = 5;
  Feed(External(42, 9001));
  Feed(k);
  ASSERT_EQ(sink_.events().size(), 1u);
  const v1::Event e = sink_.events()[0];
  EXPECT_EQ(e.kind(), v1::EVENT_KIND_KERNEL);
  EXPECT_EQ(sink_.Name(e.name_id()), "softmax_fw(float*, int)");
  EXPECT_EQ(e.start_ns(), 10'000 + kOffset);
  EXPECT_EQ(e.duration_ns(), 2'500);
  EXPECT_EQ(e.device(), 1u);
  EXPECT_EQ(e.context(), 3u);
  EXPECT_EQ(e.stream(), 7u);
  EXPECT_EQ(e.correlation_id(), 42u);
  EXPECT_EQ(e.external_id(), 9001u);
  EXPECT_EQ(e.kernel_info().grid_x(), 4u);
  EXPECT_EQ(e.kernel_info().grid_y(), 2u);
  EXPECT_EQ(e.kernel_info().grid_z(), 1u);
  EXPECT_EQ(e.kernel_info().block_x(), 128u);
  EXPECT_EQ(e.kernel_info().block_y(), 1u);
  EXPECT_EQ(e.kernel_info().block_z(), 1u);
  EXPECT_EQ(e.kernel_info().registers_per_thread(), 32u);
  EXPECT_EQ(e.kernel_info().static_shared_bytes(), 1024u);
  EXPECT_EQ(e.kernel_info().dynamic_shared_bytes(), 2048u);
  EXPECT_EQ(e.kernel_info().graph_id(), 5u);
}

TEST_F(ActivityConverterTest, UnmangledAndUnnamedKernels) {
  Feed(Kernel("plain_c_kernel", 0, 1, 2));
  Feed(Kernel(nullptr, 0, 1, 2));
  ASSERT_EQ(sink_.events().size(), 2u);
  EXPECT_EQ(sink_.Name(sink_.events()[0].name_id()), "plain_c_kernel");
  EXPECT_EQ(sink_.Name(sink_.events()[1].name_id()), "(unnamed kernel)");
}

TEST_F(ActivityConverterTest, GpuEventWaitsForItsExternalCorrelation) {
  // Kernel records arrive in a device buffer that can complete before the
  // thread buffer holding the external correlation record (kineto's case).
  Feed(Kernel("k", 7, 100, 200));
  converter_.EndBuffer();
  EXPECT_TRUE(sink_.events().empty());
  Feed(External(7, 55));
  converter_.EndBuffer();
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.events()[0].external_id(), 55u);
  // One correlation id, several GPU activities (a graph launch).
  Feed(Kernel("k2", 7, 300, 400));
  ASSERT_EQ(sink_.events().size(), 2u);
  EXPECT_EQ(sink_.events()[1].external_id(), 55u);
}

TEST_F(ActivityConverterTest, FinishSendsUnmatchedEventsWithoutExternalId) {
  Feed(Kernel("k", 8, 100, 200));
  EXPECT_TRUE(sink_.events().empty());
  converter_.Finish();
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.events()[0].external_id(), 0u);
  EXPECT_EQ(sink_.events()[0].correlation_id(), 8u);
  EXPECT_FALSE(converter_.active());
}

TEST_F(ActivityConverterTest, PendingIsBounded) {
  ActivityConverter::Options options;
  options.max_pending_events = 2;
  ActivityConverter converter(options, nullptr);
  converter.Begin(&sink_, &clock_);
  for (uint32_t c = 1; c <= 3; ++c) {
    auto k = Kernel("k", c, 100, 200);
    converter.Process(reinterpret_cast<const CUpti_Activity&>(k));
  }
  EXPECT_EQ(sink_.events().size(), 1u);  // The third went out at once.
  EXPECT_EQ(converter.stats().pending_overflow, 1u);
  converter.Finish();
  EXPECT_EQ(sink_.events().size(), 3u);
}

TEST_F(ActivityConverterTest, MemcpyMemsetAndPeerCopy) {
  auto m = Zeroed<CUpti_ActivityMemcpy6>();
  m.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  m.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_HTOD;
  m.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_PINNED;
  m.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  m.bytes = 4096;
  m.start = 50;
  m.end = 80;
  m.deviceId = 0;
  m.streamId = 13;
  m.correlationId = 77;
  Feed(External(77, 3));
  Feed(m);
  auto s = Zeroed<CUpti_ActivityMemset4>();
  s.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  s.bytes = 256;
  s.value = 0;
  s.memoryKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  s.start = 90;
  s.end = 95;
  s.streamId = 13;
  Feed(s);
  auto p = Zeroed<CUpti_ActivityMemcpyPtoP4>();
  p.kind = CUPTI_ACTIVITY_KIND_MEMCPY2;
  p.copyKind = CUPTI_ACTIVITY_MEMCPY_KIND_PTOP;
  p.srcKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  p.dstKind = CUPTI_ACTIVITY_MEMORY_KIND_DEVICE;
  p.bytes = 1 << 20;
  p.srcDeviceId = 0;
  p.dstDeviceId = 1;
  p.start = 100;
  p.end = 200;
  Feed(p);
  const auto events = sink_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind(), v1::EVENT_KIND_MEMCPY);
  EXPECT_EQ(sink_.Name(events[0].name_id()), "Memcpy HtoD (Pinned -> Device)");
  EXPECT_EQ(events[0].memcpy_info().copy_kind(), v1::COPY_KIND_HTOD);
  EXPECT_EQ(events[0].memcpy_info().bytes(), 4096u);
  EXPECT_EQ(events[0].memcpy_info().src_kind(), v1::MEMORY_KIND_PINNED);
  EXPECT_EQ(events[0].memcpy_info().dst_kind(), v1::MEMORY_KIND_DEVICE);
  EXPECT_EQ(events[0].stream(), 13u);
  EXPECT_EQ(events[0].start_ns(), 50 + kOffset);
  EXPECT_EQ(events[0].duration_ns(), 30);
  EXPECT_EQ(events[0].external_id(), 3u);
  EXPECT_EQ(events[1].kind(), v1::EVENT_KIND_MEMSET);
  EXPECT_EQ(sink_.Name(events[1].name_id()), "Memset (Device)");
  EXPECT_EQ(events[1].memset_info().bytes(), 256u);
  EXPECT_EQ(events[1].memset_info().memory_kind(), v1::MEMORY_KIND_DEVICE);
  EXPECT_EQ(sink_.Name(events[2].name_id()), "Memcpy PtoP (Device -> Device)");
  EXPECT_EQ(events[2].memcpy_info().copy_kind(), v1::COPY_KIND_PTOP);
  EXPECT_EQ(events[2].memcpy_info().src_device(), 0u);
  EXPECT_EQ(events[2].memcpy_info().dst_device(), 1u);
}

TEST_F(ActivityConverterTest, RuntimeAndDriverApi) {
  auto r = Zeroed<CUpti_ActivityAPI>();
  r.kind = CUPTI_ACTIVITY_KIND_RUNTIME;
  r.cbid = 211;
  r.start = 1'000;
  r.end = 1'400;
  r.threadId = 4321;
  r.correlationId = 42;
  auto d = r;
  d.kind = CUPTI_ACTIVITY_KIND_DRIVER;
  d.cbid = 307;
  d.correlationId = 43;
  auto unknown = r;
  unknown.kind = CUPTI_ACTIVITY_KIND_DRIVER;
  unknown.cbid = 999;
  unknown.correlationId = 0;
  Feed(External(42, 9001));
  Feed(r);
  Feed(d);
  Feed(unknown);
  // API calls are never held.
  const auto events = sink_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind(), v1::EVENT_KIND_CUDA_RUNTIME);
  EXPECT_EQ(sink_.Name(events[0].name_id()), "cudaLaunchKernel");
  EXPECT_EQ(events[0].tid(), 4321u);
  EXPECT_EQ(events[0].correlation_id(), 42u);
  EXPECT_EQ(events[0].external_id(), 9001u);
  EXPECT_EQ(events[0].start_ns(), 1'000 + kOffset);
  EXPECT_EQ(events[0].duration_ns(), 400);
  EXPECT_EQ(events[1].kind(), v1::EVENT_KIND_CUDA_DRIVER);
  EXPECT_EQ(sink_.Name(events[1].name_id()), "cuLaunchKernel");
  EXPECT_EQ(events[1].external_id(), 0u);
  EXPECT_EQ(sink_.Name(events[2].name_id()), "cuda driver cbid 999");
}

TEST_F(ActivityConverterTest, KernelLaunchedOutsideAnyOperatorIsNotHeldLong) {
  // Device buffer first: the kernel waits.
  Feed(Kernel("k", 50, 100, 200));
  converter_.EndBuffer();
  EXPECT_TRUE(sink_.events().empty());
  // The thread buffer: the launch, with no external correlation before it.
  auto launch = Zeroed<CUpti_ActivityAPI>();
  launch.kind = CUPTI_ACTIVITY_KIND_RUNTIME;
  launch.cbid = 211;
  launch.start = 50;
  launch.end = 60;
  launch.correlationId = 50;
  Feed(launch);
  EXPECT_EQ(sink_.events().size(), 1u);  // The launch.
  converter_.EndBuffer();  // Its buffer is read: no operator will come.
  ASSERT_EQ(sink_.events().size(), 2u);
  EXPECT_EQ(sink_.events()[1].kind(), v1::EVENT_KIND_KERNEL);
  EXPECT_EQ(sink_.events()[1].external_id(), 0u);
  // Later GPU work of the same launch (a graph) goes out at once.
  Feed(Kernel("k2", 50, 300, 400));
  EXPECT_EQ(sink_.events().size(), 3u);
}

TEST_F(ActivityConverterTest, SyncOverheadGraph) {
  auto s = Zeroed<CUpti_ActivitySynchronization2>();
  s.kind = CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
  s.type = CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
  s.start = 10;
  s.end = 20;
  s.contextId = 1;
  s.streamId = 7;
  Feed(s);
  auto o = Zeroed<CUpti_ActivityOverhead3>();
  o.kind = CUPTI_ACTIVITY_KIND_OVERHEAD;
  o.overheadKind = CUPTI_ACTIVITY_OVERHEAD_CUPTI_BUFFER_FLUSH;
  o.objectKind = CUPTI_ACTIVITY_OBJECT_THREAD;
  o.objectId.pt.threadId = 99;
  o.start = 30;
  o.end = 40;
  Feed(o);
  CUpti_ActivityGraphTrace2 g;
  std::memset(&g, 0, sizeof(g));
  g.kind = CUPTI_ACTIVITY_KIND_GRAPH_TRACE;
  g.graphId = 12;
  g.start = 50;
  g.end = 90;
  g.streamId = 7;
  Feed(g);
  const auto events = sink_.events();
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind(), v1::EVENT_KIND_SYNC);
  EXPECT_EQ(sink_.Name(events[0].name_id()), "Stream Sync");
  EXPECT_EQ(events[0].stream(), 7u);
  EXPECT_EQ(events[1].kind(), v1::EVENT_KIND_OVERHEAD);
  EXPECT_EQ(sink_.Name(events[1].name_id()), "CUPTI overhead: buffer flush");
  EXPECT_EQ(events[1].tid(), 99u);
  EXPECT_EQ(events[2].kind(), v1::EVENT_KIND_CUDA_GRAPH);
  EXPECT_EQ(sink_.Name(events[2].name_id()), "CUDA graph 12");
  ASSERT_EQ(events[2].args_size(), 1);
  EXPECT_EQ(sink_.Name(events[2].args(0).key_id()), "graph_id");
  EXPECT_EQ(events[2].args(0).int_value(), 12);
  EXPECT_EQ(events[2].duration_ns(), 40);
}

TEST_F(ActivityConverterTest, NvtxRangesBecomeUserSpans) {
  auto start = Zeroed<CUpti_ActivityMarker2>();
  start.kind = CUPTI_ACTIVITY_KIND_MARKER;
  start.flags = CUPTI_ACTIVITY_FLAG_MARKER_START;
  start.id = 5;
  start.timestamp = 1'000;
  start.name = "prepare_inputs";
  start.domain = nullptr;
  start.objectKind = CUPTI_ACTIVITY_OBJECT_THREAD;
  start.objectId.pt.threadId = 321;
  auto end = Zeroed<CUpti_ActivityMarker2>();
  end.kind = CUPTI_ACTIVITY_KIND_MARKER;
  end.flags = CUPTI_ACTIVITY_FLAG_MARKER_END;
  end.id = 5;
  end.timestamp = 3'000;
  auto mark = start;
  mark.flags = CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS;
  mark.name = "sampled";
  mark.domain = "vllm";
  auto orphan_end = end;
  orphan_end.id = 6;  // Its start was before the capture.
  Feed(start);
  Feed(mark);
  Feed(end);
  Feed(orphan_end);
  const auto events = sink_.events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind(), v1::EVENT_KIND_INSTANT);
  EXPECT_EQ(sink_.Name(events[0].name_id()), "sampled");
  EXPECT_EQ(sink_.Name(events[0].category_id()), "vllm");
  EXPECT_EQ(events[1].kind(), v1::EVENT_KIND_USER_SPAN);
  EXPECT_EQ(sink_.Name(events[1].name_id()), "prepare_inputs");
  EXPECT_EQ(sink_.Name(events[1].category_id()), "nvtx");
  EXPECT_EQ(events[1].start_ns(), 1'000 + kOffset);
  EXPECT_EQ(events[1].duration_ns(), 2'000);
  EXPECT_EQ(events[1].tid(), 321u);
  EXPECT_EQ(converter_.stats().ignored, 1u);
}

TEST_F(ActivityConverterTest,
       IgnoresUnknownKindsUntimedRecordsOtherCorrelationKinds) {
  auto k = Kernel("k", 0, 0, 0);  // CUPTI could not time it.
  Feed(k);
  auto other = External(9, 1);
  other.externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_OPENACC;
  Feed(other);
  auto device = Zeroed<CUpti_ActivityKernel10>();
  device.kind = CUPTI_ACTIVITY_KIND_DEVICE;
  Feed(device);
  Feed(Kernel("k", 9, 1, 2));
  converter_.Finish();
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.events()[0].external_id(), 0u);
  EXPECT_EQ(converter_.stats().ignored, 3u);
  EXPECT_EQ(converter_.stats().records, 4u);
}

TEST_F(ActivityConverterTest, TimestampsGoThroughTheClockMap) {
  GpuClockMap drifting;
  drifting.Reset({1'000'000'000, 0});
  drifting.AddPair({3'000'000'000, 2'000'002'000});  // +1 ppm.
  converter_.Begin(&sink_, &drifting);
  Feed(Kernel("k", 0, 2'000'000'000, 2'000'001'000));
  ASSERT_EQ(sink_.events().size(), 1u);
  EXPECT_EQ(sink_.events()[0].start_ns(), 1'000'001'000);
  EXPECT_EQ(sink_.events()[0].duration_ns(), 1'000);
}

// The converter reads CUDA 13 record layouts. CUPTI 12.x (the CUDA 12
// wheels torch ships with) delivers the previous record versions; every
// field the converter reads must sit at the same offset there.
#define EXPECT_SAME_OFFSET(New, Old, field) \
  EXPECT_EQ(offsetof(New, field), offsetof(Old, field)) << #field

TEST(ActivityRecordLayoutTest, FieldsReadMatchPreviousVersions) {
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9,
                     registersPerThread);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, start);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, end);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, deviceId);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, contextId);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, streamId);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, gridX);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, blockZ);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9,
                     staticSharedMemory);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9,
                     dynamicSharedMemory);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9,
                     correlationId);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, name);
  EXPECT_SAME_OFFSET(CUpti_ActivityKernel10, CUpti_ActivityKernel9, graphId);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, copyKind);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, srcKind);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, dstKind);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, bytes);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, start);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, end);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5, streamId);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpy6, CUpti_ActivityMemcpy5,
                     correlationId);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemset4, CUpti_ActivityMemset3, bytes);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemset4, CUpti_ActivityMemset3, start);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemset4, CUpti_ActivityMemset3, streamId);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemset4, CUpti_ActivityMemset3,
                     correlationId);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemset4, CUpti_ActivityMemset3, memoryKind);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpyPtoP4, CUpti_ActivityMemcpyPtoP3,
                     srcDeviceId);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpyPtoP4, CUpti_ActivityMemcpyPtoP3,
                     dstDeviceId);
  EXPECT_SAME_OFFSET(CUpti_ActivityMemcpyPtoP4, CUpti_ActivityMemcpyPtoP3,
                     correlationId);
  EXPECT_SAME_OFFSET(CUpti_ActivitySynchronization2,
                     CUpti_ActivitySynchronization, type);
  EXPECT_SAME_OFFSET(CUpti_ActivitySynchronization2,
                     CUpti_ActivitySynchronization, start);
  EXPECT_SAME_OFFSET(CUpti_ActivitySynchronization2,
                     CUpti_ActivitySynchronization, streamId);
  EXPECT_SAME_OFFSET(CUpti_ActivitySynchronization2,
                     CUpti_ActivitySynchronization, correlationId);
  EXPECT_SAME_OFFSET(CUpti_ActivityOverhead3, CUpti_ActivityOverhead2,
                     overheadKind);
  EXPECT_SAME_OFFSET(CUpti_ActivityOverhead3, CUpti_ActivityOverhead2,
                     objectId);
  EXPECT_SAME_OFFSET(CUpti_ActivityOverhead3, CUpti_ActivityOverhead2, start);
  EXPECT_SAME_OFFSET(CUpti_ActivityOverhead3, CUpti_ActivityOverhead2, end);
  EXPECT_SAME_OFFSET(CUpti_ActivityGraphTrace2, CUpti_ActivityGraphTrace,
                     graphId);
  EXPECT_SAME_OFFSET(CUpti_ActivityGraphTrace2, CUpti_ActivityGraphTrace,
                     start);
  EXPECT_SAME_OFFSET(CUpti_ActivityGraphTrace2, CUpti_ActivityGraphTrace,
                     streamId);
  EXPECT_SAME_OFFSET(CUpti_ActivityGraphTrace2, CUpti_ActivityGraphTrace,
                     correlationId);
}

}  // namespace
}  // namespace vllm_profiler::probe::cupti
