#include "tests/synthetic_probe/synthetic_events.h"

#include <algorithm>
#include <utility>

namespace vllm_profiler::synthetic_probe {
namespace {

constexpr int64_t kUs = 1000;
constexpr int64_t kGroupNs = 25 * kUs;
constexpr int64_t kExtraNs = 80 * kUs;
constexpr int64_t kStepGapNs = 5 * kUs;

constexpr const char* kStrings[] = {
    "",  // 0: no string.
    "MainThread",
    "VllmWorkerPool",
    "execute_model",
    "aten::mm",
    "aten::add",
    "aten::softmax",
    "cudaLaunchKernel",
    "cuLaunchKernel",
    "cudaMemcpyAsync",
    "cudaMemsetAsync",
    "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn",
    "void at::native::vectorized_elementwise_kernel<4, "
    "at::native::CUDAFunctor_add<c10::Half>>",
    "void at::native::cunn_SoftMaxForward<8, c10::Half, float>",
    "Memcpy HtoD (Pinned -> Device)",
    "Memset (Device)",
    "cudaStreamSynchronize",
    "kv_cache_swap",
    "allocated_bytes",
    "nvtx: attention",
    "CUPTI overhead",
    "cudaGraphLaunch",
    "vllm/worker/model_runner.py(1523): execute_model",
    "c10::Half",
    "float",
    "alpha",
    "name",
    "layer.0.attn",
    "non_blocking",
    "synthetic",
};
static_assert(sizeof(kStrings) / sizeof(kStrings[0]) ==
                  SyntheticEvents::kNumStrings,
              "one string per id");

// The capture window the synthetic process runs: 50 steps from its first
// step, with shapes, GPU activity and CPU operators.
void SetWindow(const SyntheticEvents::Options& o, v1::CaptureConfig* c) {
  c->set_start_after_steps(static_cast<uint32_t>(o.first_step - 1));
  c->set_num_steps(50);
  c->set_record_shapes(true);
  c->set_gpu_activity(true);
  c->set_cpu_ops(true);
}

// The clock pair `elapsed_ns` after the synthetic start.
void SetClock(const SyntheticEvents::Options& o, int64_t elapsed_ns,
              v1::ClockPair* clock) {
  clock->set_monotonic_ns(o.start_ns + elapsed_ns);
  clock->set_realtime_ns(o.realtime_ns + elapsed_ns);
}

// A GPU activity: device 0, context 1, on `stream`.
void OnDevice(v1::Event* e, uint32_t stream) {
  e->set_device(0);
  e->set_stream(stream);
  e->set_context(1);
}

// A one-dimensional launch: grid_x blocks of block_x threads.
void SetLaunchShape(v1::KernelInfo* k, uint32_t grid_x, uint32_t block_x) {
  k->set_grid_x(grid_x);
  k->set_grid_y(1);
  k->set_grid_z(1);
  k->set_block_x(block_x);
  k->set_block_y(1);
  k->set_block_z(1);
}

}  // namespace

SyntheticEvents::SyntheticEvents(Options options)
    : options_(std::move(options)), next_step_start_ns_(options_.start_ns) {}

v1::ProbeMessage SyntheticEvents::Hello() const {
  v1::ProbeMessage m;
  v1::Hello* h = m.mutable_hello();
  h->set_protocol_version(1);
  h->set_pid(options_.pid);
  h->set_process_uid(options_.process_uid);
  h->set_ppid(1);
  h->set_process_name(options_.rank >= 0
                          ? "VllmWorker-" + std::to_string(options_.rank)
                          : "synthetic_probe");
  h->add_cmdline("python3");
  h->add_cmdline("-m");
  h->add_cmdline("vllm.entrypoints.openai.api_server");
  h->set_rank(options_.rank);
  h->set_local_rank(options_.rank);
  h->set_world_size(options_.world_size);
  h->set_hostname("synthetic-host");
  h->set_pod_name("vllm-synthetic-0");
  h->set_pod_namespace("default");
  h->set_node_name("node-0");
  h->set_container_name("vllm");
  h->set_probe_version("synthetic");
  h->set_python_version("3.11.2");
  h->set_torch_version("2.5.1");
  h->set_cuda_version("12.4");
  h->set_cupti_version("24");
  SetClock(options_, 0, h->mutable_clock());
  SetWindow(options_, h->mutable_window());
  return m;
}

v1::ProbeMessage SyntheticEvents::CaptureStarted() const {
  v1::ProbeMessage m;
  v1::CaptureStarted* s = m.mutable_capture_started();
  s->set_capture_id(options_.capture_id);
  s->set_origin(options_.origin);
  SetWindow(options_, s->mutable_config());
  s->set_first_step(options_.first_step);
  s->set_start_ns(options_.start_ns);
  s->set_requested_name(options_.requested_name);
  SetClock(options_, 0, s->mutable_clock());
  return m;
}

v1::ProbeMessage SyntheticEvents::CaptureFinished(uint64_t dropped) const {
  v1::ProbeMessage m;
  v1::CaptureFinished* f = m.mutable_capture_finished();
  f->set_capture_id(options_.capture_id);
  f->set_last_step(options_.first_step + std::max<int64_t>(step_index_, 1) - 1);
  f->set_end_ns(next_step_start_ns_);
  f->set_events_recorded(generated_);
  v1::DropCounters* d = f->mutable_drops();
  d->set_events_dropped_buffer_full(dropped);
  if (dropped > 0) {
    d->set_events_dropped_send(1);
    d->set_cupti_records_dropped(2);
    d->set_cupti_buffers_dropped(3);
  }
  SetClock(options_, next_step_start_ns_ - options_.start_ns,
           f->mutable_clock());
  return m;
}

bool SyntheticEvents::NextBatch(v1::EventBatch* batch) {
  batch->Clear();
  if (generated_ >= options_.total_events) return false;
  batch->set_capture_id(options_.capture_id);
  batch->set_sequence(sequence_);
  if (sequence_ == 0) {
    for (uint32_t id = 1; id < kNumStrings; ++id) {
      v1::InternedString* s = batch->add_strings();
      s->set_id(id);
      s->set_value(kStrings[id]);
    }
    v1::ThreadInfo* t = batch->add_threads();
    t->set_tid(kMainTid);
    t->set_name_id(kStrMainThread);
    t = batch->add_threads();
    t->set_tid(kWorkerTid);
    t->set_name_id(kStrWorkerThread);
  }
  ++sequence_;
  uint32_t room = static_cast<uint32_t>(
      std::min<uint64_t>(std::max<uint32_t>(options_.batch_events, 1),
                         options_.total_events - generated_));
  batch->mutable_events()->Reserve(static_cast<int>(room));
  while (room > 0) {
    if (step_events_done_ == step_events_total_) {
      // Start the next step.
      const uint64_t per_step =
          1 + kExtraEventsPerStep + 3ull * options_.groups_per_step;
      step_events_total_ =
          std::min<uint64_t>(per_step, options_.total_events - generated_);
      step_events_done_ = 0;
      step_start_ns_ = next_step_start_ns_;
      next_step_start_ns_ = step_start_ns_ + kExtraNs +
                            kGroupNs * options_.groups_per_step + kStepGapNs;
      ++step_index_;
    }
    uint32_t n = EmitStepEvents(batch, room);
    room -= n;
    generated_ += n;
  }
  return true;
}

v1::Event* SyntheticEvents::NewEvent(v1::EventBatch* batch, v1::EventKind kind,
                                     uint32_t name, int64_t start,
                                     int64_t duration) {
  v1::Event* e = batch->add_events();
  e->set_kind(kind);
  e->set_name_id(name);
  e->set_start_ns(start);
  e->set_duration_ns(duration);
  return e;
}

uint32_t SyntheticEvents::EmitStepEvents(v1::EventBatch* batch, uint32_t room) {
  uint32_t emitted = 0;
  while (emitted < room && step_events_done_ < step_events_total_) {
    const uint64_t i = step_events_done_;
    if (i == 0) {
      v1::Event* e =
          NewEvent(batch, v1::EVENT_KIND_STEP, kStrStep, step_start_ns_,
                   next_step_start_ns_ - kStepGapNs - step_start_ns_);
      e->set_tid(kMainTid);
      e->set_step(options_.first_step + step_index_ - 1);
      ++step_events_done_;
      ++emitted;
      continue;
    }
    if (i <= kExtraEventsPerStep) {
      AddExtra(batch, static_cast<uint32_t>(i - 1));
      ++step_events_done_;
      ++emitted;
      continue;
    }
    // Groups: three events each; a group may straddle batches, so emit its
    // parts one at a time.
    const uint64_t g = (i - 1 - kExtraEventsPerStep) / 3;
    const uint32_t part =
        static_cast<uint32_t>((i - 1 - kExtraEventsPerStep) % 3);
    const int64_t t0 = step_start_ns_ + kExtraNs + kGroupNs * g;
    const uint32_t flavor = static_cast<uint32_t>(g % 3);
    if (part == 0) {
      const uint32_t name = kStrMatmul + flavor;
      v1::Event* e = NewEvent(batch, v1::EVENT_KIND_CPU_OP, name, t0, 20 * kUs);
      e->set_tid(kMainTid);
      e->set_external_id(next_external_);
      e->set_sequence_number(next_external_);
      v1::Shape* s = e->add_input_shapes();
      s->add_dims(16);
      s->add_dims(4096);
      s = e->add_input_shapes();
      s->add_dims(4096);
      s->add_dims(flavor == 0 ? 4096 : 1);
      e->add_input_dtype_ids(kStrDtypeHalf);
      e->add_input_dtype_ids(kStrDtypeHalf);
      if (flavor == 1) {
        v1::Arg* a = e->add_args();
        a->set_key_id(kStrArgAlpha);
        a->set_double_value(1.0);
      }
    } else if (part == 1) {
      v1::Event* e = NewEvent(batch, v1::EVENT_KIND_CUDA_RUNTIME,
                              kStrLaunchKernel, t0 + 5 * kUs, 4 * kUs);
      e->set_tid(kMainTid);
      e->set_correlation_id(next_correlation_);
      e->set_external_id(next_external_);
    } else {
      v1::Event* e = NewEvent(batch, v1::EVENT_KIND_KERNEL,
                              kStrGemmKernel + flavor, t0 + 12 * kUs, 15 * kUs);
      OnDevice(e, kGpuStream);
      e->set_correlation_id(next_correlation_);
      e->set_external_id(next_external_);
      v1::KernelInfo* k = e->mutable_kernel_info();
      SetLaunchShape(k, flavor == 0 ? 128 : 4096, flavor == 0 ? 256 : 128);
      k->set_registers_per_thread(64);
      k->set_static_shared_bytes(flavor == 0 ? 49152 : 0);
      ++next_correlation_;
      ++next_external_;
    }
    ++step_events_done_;
    ++emitted;
  }
  return emitted;
}

void SyntheticEvents::AddExtra(v1::EventBatch* batch, uint32_t index) {
  if (index < 6) {
    AddCallAndActivity(batch, index);
  } else if (index < 13) {
    AddMarker(batch, index);
  } else if (index < 15) {
    AddWorkerOp(batch, index);
  } else {
    // The rest: a memory counter at the end of the step.
    v1::Event* e = NewEvent(batch, v1::EVENT_KIND_COUNTER, kStrMemoryCounter,
                            step_start_ns_ + 70 * kUs, 0);
    e->set_tid(kMainTid);
    e->set_device(0);
    e->set_value(static_cast<double>(1ll << 30));
  }
}

void SyntheticEvents::AddCallAndActivity(v1::EventBatch* batch,
                                         uint32_t index) {
  const int64_t s = step_start_ns_;
  // The call and its activity share one correlation id, taken once the
  // activity is emitted.
  const uint64_t c = next_correlation_;
  static constexpr struct {
    v1::EventKind kind;
    uint32_t name;
    int64_t at_us, duration_us;
  } kCalls[] = {
      {v1::EVENT_KIND_CUDA_DRIVER, kStrCuLaunchKernel, 1, 3},
      {v1::EVENT_KIND_CUDA_RUNTIME, kStrMemcpyAsync, 17, 3},
      {v1::EVENT_KIND_CUDA_RUNTIME, kStrMemsetAsync, 30, 2},
  };
  if (index % 2 == 0) {
    const auto& call = kCalls[index / 2];
    v1::Event* e = NewEvent(batch, call.kind, call.name, s + call.at_us * kUs,
                            call.duration_us * kUs);
    e->set_tid(kMainTid);
    e->set_correlation_id(c);
    return;
  }
  v1::Event* e = nullptr;
  if (index == 1) {
    e = NewEvent(batch, v1::EVENT_KIND_KERNEL, kStrElementwiseKernel,
                 s + 6 * kUs, 10 * kUs);
    OnDevice(e, kGpuStream);
    v1::KernelInfo* k = e->mutable_kernel_info();
    SetLaunchShape(k, /*grid_x=*/64, /*block_x=*/512);
    k->set_dynamic_shared_bytes(1024);
  } else if (index == 3) {
    e = NewEvent(batch, v1::EVENT_KIND_MEMCPY, kStrMemcpyHtoD, s + 21 * kUs,
                 8 * kUs);
    OnDevice(e, kCopyStream);
    v1::MemcpyInfo* m = e->mutable_memcpy_info();
    m->set_copy_kind(v1::COPY_KIND_HTOD);
    m->set_bytes(1 << 20);
    m->set_src_kind(v1::MEMORY_KIND_PINNED);
    m->set_dst_kind(v1::MEMORY_KIND_DEVICE);
    m->set_src_device(0);
    m->set_dst_device(0);
  } else {
    e = NewEvent(batch, v1::EVENT_KIND_MEMSET, kStrMemset, s + 33 * kUs,
                 3 * kUs);
    OnDevice(e, kCopyStream);
    v1::MemsetInfo* m = e->mutable_memset_info();
    m->set_bytes(4096);
    m->set_value(0);
    m->set_memory_kind(v1::MEMORY_KIND_DEVICE);
  }
  e->set_correlation_id(c);
  ++next_correlation_;
}

void SyntheticEvents::AddMarker(v1::EventBatch* batch, uint32_t index) {
  const int64_t s = step_start_ns_;
  v1::Event* e = nullptr;
  switch (index) {
    case 6:
      e = NewEvent(batch, v1::EVENT_KIND_SYNC, kStrStreamSync, s + 37 * kUs,
                   4 * kUs);
      e->set_tid(kMainTid);
      e->set_device(0);
      e->set_stream(kCopyStream);
      break;
    case 7: {
      e = NewEvent(batch, v1::EVENT_KIND_INSTANT, kStrInstant, s + 42 * kUs, 0);
      e->set_tid(kMainTid);
      v1::Arg* a = e->add_args();
      a->set_key_id(kStrArgName);
      a->set_string_id(kStrArgValue);
      break;
    }
    case 8:
      e = NewEvent(batch, v1::EVENT_KIND_COUNTER, kStrMemoryCounter,
                   s + 43 * kUs, 0);
      e->set_tid(kMainTid);
      e->set_device(0);
      e->set_value(static_cast<double>((1ll << 30) + step_index_ * 4096));
      break;
    case 9:
      e = NewEvent(batch, v1::EVENT_KIND_USER_SPAN, kStrUserSpan, s + 44 * kUs,
                   10 * kUs);
      e->set_tid(kMainTid);
      break;
    case 10:
      e = NewEvent(batch, v1::EVENT_KIND_OVERHEAD, kStrOverhead, s + 45 * kUs,
                   2 * kUs);
      e->set_tid(kMainTid);
      break;
    case 11:
      e = NewEvent(batch, v1::EVENT_KIND_CUDA_GRAPH, kStrGraph, s + 20 * kUs,
                   30 * kUs);
      OnDevice(e, kGpuStream);
      e->mutable_kernel_info()->set_graph_id(5);
      break;
    default:
      e = NewEvent(batch, v1::EVENT_KIND_PYTHON, kStrPython, s + 55 * kUs,
                   15 * kUs);
      e->set_tid(kMainTid);
      break;
  }
}

void SyntheticEvents::AddWorkerOp(v1::EventBatch* batch, uint32_t index) {
  const int64_t s = step_start_ns_;
  if (index == 14) {
    v1::Event* e = NewEvent(batch, v1::EVENT_KIND_CPU_OP, kStrSoftmax,
                            s + 10 * kUs, 20 * kUs);
    e->set_tid(kWorkerTid);
    return;
  }
  // An operator with a category, typed args, dtypes and a shape.
  v1::Event* e =
      NewEvent(batch, v1::EVENT_KIND_CPU_OP, kStrAdd, s + 2 * kUs, 50 * kUs);
  e->set_tid(kWorkerTid);
  e->set_category_id(kStrCategory);
  v1::Arg* a = e->add_args();
  a->set_key_id(kStrArgFlag);
  a->set_bool_value(true);
  a = e->add_args();
  a->set_key_id(kStrArgAlpha);
  a->set_int_value(2);
  e->add_input_dtype_ids(kStrDtypeFloat);
  e->add_input_shapes()->add_dims(8);
}

}  // namespace vllm_profiler::synthetic_probe
