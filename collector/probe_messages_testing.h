// Builders of ProbeMessages for collector tests: a Hello, capture markers
// and a batch with one event of every kind (strings, threads, flows).
#ifndef VLLM_PROFILER_COLLECTOR_PROBE_MESSAGES_TESTING_H_
#define VLLM_PROFILER_COLLECTOR_PROBE_MESSAGES_TESTING_H_

#include <cstdint>
#include <string>

#include "proto/profiler.pb.h"

namespace vllm_profiler::collector::testutil {

// Monotonic base of the fake probe clocks; realtime = monotonic + offset.
inline constexpr int64_t kMonoBase = 1000000000000;        // 1000 s
inline constexpr int64_t kRealBase = 1700000000000000000;  // 2023-11-14

inline v1::ProbeMessage Hello(int64_t pid, int32_t rank = -1,
                              int64_t clock_skew_ns = 0) {
  v1::ProbeMessage m;
  v1::Hello* h = m.mutable_hello();
  h->set_protocol_version(1);
  h->set_pid(pid);
  h->set_ppid(1);
  h->set_process_name(rank >= 0 ? "VllmWorker-" + std::to_string(rank)
                                : "python3");
  h->set_rank(rank);
  h->set_local_rank(rank);
  h->set_world_size(rank >= 0 ? 2 : -1);
  h->set_hostname("node-a");
  h->set_pod_name("vllm-0");
  h->set_pod_namespace("default");
  h->set_probe_version("0.1.0");
  h->set_torch_version("2.5.1");
  h->set_cuda_version("12.4");
  h->mutable_clock()->set_monotonic_ns(kMonoBase + clock_skew_ns);
  h->mutable_clock()->set_realtime_ns(kRealBase);
  return m;
}

inline v1::ProbeMessage Started(
    const std::string& id, v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_WINDOW,
    const std::string& requested_name = "") {
  v1::ProbeMessage m;
  v1::CaptureStarted* s = m.mutable_capture_started();
  s->set_capture_id(id);
  s->set_origin(origin);
  s->mutable_config()->set_start_after_steps(99);
  s->mutable_config()->set_num_steps(50);
  s->mutable_config()->set_record_shapes(true);
  s->mutable_config()->set_gpu_activity(true);
  s->mutable_config()->set_cpu_ops(true);
  s->set_first_step(100);
  s->set_start_ns(kMonoBase);
  s->set_requested_name(requested_name);
  return m;
}

// Events in one FullBatch.
inline constexpr uint64_t kFullBatchEvents = 10;

// `events_recorded`: what the probe claims it sent (one FullBatch by
// default).
inline v1::ProbeMessage Finished(const std::string& id, uint64_t dropped = 0,
                                 uint64_t events_recorded = kFullBatchEvents) {
  v1::ProbeMessage m;
  v1::CaptureFinished* f = m.mutable_capture_finished();
  f->set_capture_id(id);
  f->set_last_step(149);
  f->set_end_ns(kMonoBase + 50000000);
  f->set_events_recorded(events_recorded);
  f->mutable_drops()->set_events_dropped_buffer_full(dropped);
  return m;
}

// String ids used by FullBatch (defined in it when `define_strings`).
enum : uint32_t {
  kStrThread = 1,
  kStrStep,
  kStrLinear,
  kStrLaunch,
  kStrKernel,
  kStrMemcpy,
  kStrMemset,
  kStrSync,
  kStrMarker,
  kStrMemory,
  kStrFloat,
  kStrKey,
  kStrValue,
  kStrNvtx,
};

// One event of each kind on thread 100 and GPU 0 stream 7: a step span
// containing aten::linear (external id 5), which contains a
// cudaLaunchKernel (correlation 42) whose kernel runs later on the GPU.
inline v1::ProbeMessage FullBatch(const std::string& capture_id,
                                  uint64_t sequence, bool define_strings = true,
                                  int64_t offset_ns = 0) {
  v1::ProbeMessage m;
  v1::EventBatch* b = m.mutable_batch();
  b->set_capture_id(capture_id);
  b->set_sequence(sequence);
  if (define_strings) {
    const char* strings[] = {"",
                             "MainThread",
                             "execute_model",
                             "aten::linear",
                             "cudaLaunchKernel",
                             "ampere_sgemm_128x64_tn",
                             "Memcpy HtoD (Pageable -> Device)",
                             "Memset (Device)",
                             "cudaStreamSynchronize",
                             "marker \"quoted\"",
                             "gpu_memory_allocated",
                             "float",
                             "note",
                             "hello\n",
                             "nvtx range"};
    for (uint32_t id = 1; id <= kStrNvtx; ++id) {
      v1::InternedString* s = b->add_strings();
      s->set_id(id);
      s->set_value(strings[id]);
    }
    v1::ThreadInfo* t = b->add_threads();
    t->set_tid(100);
    t->set_name_id(kStrThread);
  }
  const int64_t t0 = kMonoBase + 1000 + offset_ns;
  auto add = [&](v1::EventKind kind, uint32_t name, int64_t start,
                 int64_t dur) {
    v1::Event* e = b->add_events();
    e->set_kind(kind);
    e->set_name_id(name);
    e->set_start_ns(t0 + start);
    e->set_duration_ns(dur);
    return e;
  };
  v1::Event* step = add(v1::EVENT_KIND_STEP, kStrStep, 0, 100000);
  step->set_tid(100);
  step->set_step(100);
  v1::Event* op = add(v1::EVENT_KIND_CPU_OP, kStrLinear, 1000, 50000);
  op->set_tid(100);
  op->set_external_id(5);
  op->set_sequence_number(77);
  v1::Shape* shape = op->add_input_shapes();
  shape->add_dims(8);
  shape->add_dims(4096);
  op->add_input_shapes();  // A scalar.
  op->add_input_dtype_ids(kStrFloat);
  op->add_input_dtype_ids(kStrFloat);
  v1::Arg* arg = op->add_args();
  arg->set_key_id(kStrKey);
  arg->set_string_id(kStrValue);
  v1::Event* launch = add(v1::EVENT_KIND_CUDA_RUNTIME, kStrLaunch, 2000, 3000);
  launch->set_tid(100);
  launch->set_correlation_id(42);
  launch->set_external_id(5);
  v1::Event* kernel = add(v1::EVENT_KIND_KERNEL, kStrKernel, 10000, 20000);
  kernel->set_device(0);
  kernel->set_stream(7);
  kernel->set_correlation_id(42);
  kernel->set_external_id(5);
  kernel->set_context(1);
  v1::KernelInfo* ki = kernel->mutable_kernel_info();
  ki->set_grid_x(128);
  ki->set_grid_y(1);
  ki->set_grid_z(1);
  ki->set_block_x(256);
  ki->set_block_y(1);
  ki->set_block_z(1);
  ki->set_registers_per_thread(64);
  ki->set_static_shared_bytes(1024);
  v1::Event* copy = add(v1::EVENT_KIND_MEMCPY, kStrMemcpy, 31000, 2000);
  copy->set_device(0);
  copy->set_stream(7);
  v1::MemcpyInfo* mi = copy->mutable_memcpy_info();
  mi->set_copy_kind(v1::COPY_KIND_HTOD);
  mi->set_bytes(4096);
  mi->set_src_kind(v1::MEMORY_KIND_PAGEABLE);
  mi->set_dst_kind(v1::MEMORY_KIND_DEVICE);
  v1::Event* set = add(v1::EVENT_KIND_MEMSET, kStrMemset, 34000, 1000);
  set->set_device(0);
  set->set_stream(7);
  set->mutable_memset_info()->set_bytes(512);
  v1::Event* sync = add(v1::EVENT_KIND_SYNC, kStrSync, 60000, 30000);
  sync->set_tid(100);
  v1::Event* instant = add(v1::EVENT_KIND_INSTANT, kStrMarker, 95000, 0);
  instant->set_tid(100);
  v1::Event* counter = add(v1::EVENT_KIND_COUNTER, kStrMemory, 96000, 0);
  counter->set_tid(100);
  counter->set_value(1.5e9);
  v1::Event* user = add(v1::EVENT_KIND_USER_SPAN, kStrNvtx, 97000, 1000);
  user->set_tid(100);
  return m;
}

// `m`'s batch with each event's inline inputs moved into an input
// signature defined in the batch (ids from `first_id`), as a probe sends
// them to a collector that reads signatures.
inline v1::ProbeMessage WithSignatures(v1::ProbeMessage m,
                                       uint32_t first_id = 7) {
  v1::EventBatch* b = m.mutable_batch();
  uint32_t id = first_id;
  for (v1::Event& e : *b->mutable_events()) {
    if (e.input_shapes_size() == 0 && e.input_dtype_ids_size() == 0) continue;
    v1::InputSignature* sig = b->add_input_signatures();
    sig->set_id(id);
    *sig->mutable_shapes() = e.input_shapes();
    *sig->mutable_dtype_ids() = e.input_dtype_ids();
    e.clear_input_shapes();
    e.clear_input_dtype_ids();
    e.set_input_signature_id(id++);
  }
  return m;
}

}  // namespace vllm_profiler::collector::testutil

#endif  // VLLM_PROFILER_COLLECTOR_PROBE_MESSAGES_TESTING_H_
