#include "collector/capture.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/saturating.h"

namespace vllm_profiler::collector {
namespace {

constexpr uint32_t kGpuTidBase = 1000000000;
constexpr uint32_t kGpuOverflowTidBase = 2000000000;
// Flow ids: (process index + 1) << 41 | kind bit << 40 | 40-bit id; below
// 2^53 for up to 4095 processes, so JavaScript viewers keep them exact.
constexpr uint64_t kFlowIdMask = (uint64_t{1} << 40) - 1;

const char* Category(v1::EventKind kind) {
  switch (kind) {
    case v1::EVENT_KIND_STEP:
      return "step";
    case v1::EVENT_KIND_CPU_OP:
      return "cpu_op";
    case v1::EVENT_KIND_CUDA_RUNTIME:
      return "cuda_runtime";
    case v1::EVENT_KIND_CUDA_DRIVER:
      return "cuda_driver";
    case v1::EVENT_KIND_KERNEL:
      return "kernel";
    case v1::EVENT_KIND_MEMCPY:
      return "gpu_memcpy";
    case v1::EVENT_KIND_MEMSET:
      return "gpu_memset";
    case v1::EVENT_KIND_SYNC:
      return "cuda_sync";
    case v1::EVENT_KIND_INSTANT:
      return "instant";
    case v1::EVENT_KIND_COUNTER:
      return "counter";
    case v1::EVENT_KIND_USER_SPAN:
      return "user_annotation";
    case v1::EVENT_KIND_OVERHEAD:
      return "overhead";
    case v1::EVENT_KIND_CUDA_GRAPH:
      return "cuda_graph";
    case v1::EVENT_KIND_PYTHON:
      return "python_function";
    default:
      return "unknown";
  }
}

bool IsGpuKind(v1::EventKind kind) {
  return kind == v1::EVENT_KIND_KERNEL || kind == v1::EVENT_KIND_MEMCPY ||
         kind == v1::EVENT_KIND_MEMSET || kind == v1::EVENT_KIND_CUDA_GRAPH;
}

const char* CopyKindName(v1::CopyKind kind) {
  switch (kind) {
    case v1::COPY_KIND_HTOD:
      return "HtoD";
    case v1::COPY_KIND_DTOH:
      return "DtoH";
    case v1::COPY_KIND_DTOD:
      return "DtoD";
    case v1::COPY_KIND_HTOH:
      return "HtoH";
    case v1::COPY_KIND_PTOP:
      return "PtoP";
    default:
      return "Unknown";
  }
}

const char* MemoryKindName(v1::MemoryKind kind) {
  switch (kind) {
    case v1::MEMORY_KIND_PAGEABLE:
      return "Pageable";
    case v1::MEMORY_KIND_PINNED:
      return "Pinned";
    case v1::MEMORY_KIND_DEVICE:
      return "Device";
    case v1::MEMORY_KIND_ARRAY:
      return "Array";
    case v1::MEMORY_KIND_MANAGED:
      return "Managed";
    default:
      return "Unknown";
  }
}

const char* OriginName(v1::CaptureOrigin origin) {
  switch (origin) {
    case v1::CAPTURE_ORIGIN_WINDOW:
      return "window";
    case v1::CAPTURE_ORIGIN_COMMAND:
      return "command";
    default:
      return "unspecified";
  }
}

// Opens the "args" object on first use.
class ArgsScope {
 public:
  explicit ArgsScope(TraceWriter* w) : w_(w) {}
  ~ArgsScope() {
    if (open_) w_->EndObject();
  }
  TraceWriter* Key(absl::string_view key) {
    Open();
    w_->Key(key);
    return w_;
  }
  template <size_t N>
  TraceWriter* Key(const char (&key)[N]) {
    Open();
    w_->Key(key);
    return w_;
  }

 private:
  void Open() {
    if (!open_) {
      w_->Key("args");
      w_->BeginObject();
      open_ = true;
    }
  }

 private:
  TraceWriter* w_;
  bool open_ = false;
};

void WriteConfig(TraceWriter* w, const v1::CaptureConfig& c) {
  w->BeginObject();
  w->Key("start_after_steps");
  w->Uint(c.start_after_steps());
  w->Key("num_steps");
  w->Uint(c.num_steps());
  w->Key("duration_ms");
  w->Uint(c.duration_ms());
  w->Key("record_shapes");
  w->Bool(c.record_shapes());
  w->Key("gpu_activity");
  w->Bool(c.gpu_activity());
  w->Key("cpu_ops");
  w->Bool(c.cpu_ops());
  w->EndObject();
}

void WriteDrops(TraceWriter* w, const v1::DropCounters& d) {
  w->BeginObject();
  w->Key("events_dropped_buffer_full");
  w->Uint(d.events_dropped_buffer_full());
  w->Key("events_dropped_send");
  w->Uint(d.events_dropped_send());
  w->Key("cupti_records_dropped");
  w->Uint(d.cupti_records_dropped());
  w->Key("cupti_buffers_dropped");
  w->Uint(d.cupti_buffers_dropped());
  w->EndObject();
}

bool HasDrops(const v1::DropCounters& d) {
  return d.events_dropped_buffer_full() != 0 || d.events_dropped_send() != 0 ||
         d.cupti_records_dropped() != 0 || d.cupti_buffers_dropped() != 0;
}

}  // namespace

Capture::Capture(std::string capture_id, v1::CaptureOrigin origin,
                 v1::CaptureConfig config, Options options)
    : id_(std::move(capture_id)),
      origin_(origin),
      config_(std::move(config)),
      options_(std::move(options)) {}

Capture::~Capture() = default;

void Capture::SetFile(absl::StatusOr<std::unique_ptr<WritableFile>> file) {
  MutexLock lock(&mu_);
  if (file_set_) return;
  file_set_ = true;
  if (!file.ok()) {
    file_status_ = file.status();
    errors_.push_back(std::string(file.status().message()));
    return;
  }
  writer_ = std::make_unique<TraceWriter>(std::move(*file));
}

bool Capture::has_output() const {
  MutexLock lock(&mu_);
  return file_set_;
}

Capture::Process* Capture::FindLocked(int64_t pid, uint64_t uid) {
  for (auto& p : processes_) {
    if (p->real_pid == pid && p->uid == uid) return p.get();
  }
  return nullptr;
}

const Capture::Process* Capture::FindLocked(int64_t pid, uint64_t uid) const {
  for (const auto& p : processes_) {
    if (p->real_pid == pid && p->uid == uid) return p.get();
  }
  return nullptr;
}

int64_t Capture::TracePidLocked(int64_t pid) const {
  constexpr int64_t kStride = int64_t{1} << 22;  // Linux's pid_max limit.
  for (int64_t k = 0;; ++k) {
    const int64_t candidate = pid + k * kStride;
    bool taken = false;
    for (const auto& p : processes_) taken = taken || p->pid == candidate;
    if (!taken) return candidate;
  }
}

bool Capture::HasProcess(int64_t pid, uint64_t uid) const {
  MutexLock lock(&mu_);
  return FindLocked(pid, uid) != nullptr;
}

void Capture::Join(const ProbeStream& stream, const v1::CaptureStarted& started,
                   absl::Time now) {
  MutexLock lock(&mu_);
  last_join_ = now;
  const int64_t start_wall = stream.ToWallNs(started.start_ns());
  if (!have_base_) {
    have_base_ = true;
    base_wall_ns_ = start_wall;
  }
  if (requested_name_.empty()) requested_name_ = started.requested_name();
  const uint64_t uid = stream.hello().process_uid();
  Process* p = FindLocked(stream.pid(), uid);
  if (p == nullptr) {
    const int64_t trace_pid = TracePidLocked(stream.pid());
    processes_.push_back(std::make_unique<Process>());
    p = processes_.back().get();
    p->pid = trace_pid;
    p->real_pid = stream.pid();
    p->uid = uid;
    p->index = static_cast<int>(processes_.size()) - 1;
  } else {
    // The same process again (it reconnected): fresh per-stream state.
    p->ops.clear();
    p->op_order.clear();
    // GPU events of the previous stream whose operator never came.
    for (const auto& [id, v] : p->pending_gpu) {
      p->op2g_unmatched_evicted += v.size();
    }
    p->pending_gpu.clear();
    p->pending_order.clear();
    p->finished = false;
    p->disconnected = false;
  }
  p->hello = stream.hello();
  p->state = stream.state();
  p->started = started;
  p->gaps_at_join = stream.sequence_gaps();
  p->clock_offset_ns = stream.ToWallNs(0);
  WriteProcessMetadataLocked(*p);
}

void Capture::WriteProcessMetadataLocked(const Process& p) {
  if (writer_ == nullptr) return;
  TraceWriter* w = writer_.get();
  const v1::Hello& h = p.hello;
  std::string name =
      h.process_name().empty() ? absl::StrCat("pid ", p.pid) : h.process_name();
  if (h.rank() >= 0) absl::StrAppend(&name, " \xc2\xb7 rank ", h.rank());
  if (!h.pod_name().empty())
    absl::StrAppend(&name, " \xc2\xb7 pod ", h.pod_name());
  if (!h.container_name().empty())
    absl::StrAppend(&name, " \xc2\xb7 container ", h.container_name());
  if (p.pid != p.real_pid) absl::StrAppend(&name, " \xc2\xb7 pid ", p.real_pid);
  w->BeginEvent();
  w->Key("ph");
  w->String("M");
  w->Key("name");
  w->String("process_name");
  w->Key("pid");
  w->Int(p.pid);
  w->Key("args");
  w->BeginObject();
  w->Key("name");
  w->String(name);
  w->EndObject();
  w->EndEvent();

  w->BeginEvent();
  w->Key("ph");
  w->String("M");
  w->Key("name");
  w->String("process_sort_index");
  w->Key("pid");
  w->Int(p.pid);
  w->Key("args");
  w->BeginObject();
  w->Key("sort_index");
  w->Int(h.rank() >= 0 ? h.rank() : 1000000 + p.index);
  w->EndObject();
  w->EndEvent();

  std::string labels;
  auto label = [&](absl::string_view key, absl::string_view value) {
    if (value.empty()) return;
    if (!labels.empty()) labels += ",";
    absl::StrAppend(&labels, key, "=", value);
  };
  label("pod", h.pod_name());
  label("namespace", h.pod_namespace());
  label("node", h.node_name());
  label("host", h.hostname());
  if (!labels.empty()) {
    w->BeginEvent();
    w->Key("ph");
    w->String("M");
    w->Key("name");
    w->String("process_labels");
    w->Key("pid");
    w->Int(p.pid);
    w->Key("args");
    w->BeginObject();
    w->Key("labels");
    w->String(labels);
    w->EndObject();
    w->EndEvent();
  }
}

void Capture::WriteThreadNameLocked(int64_t pid, uint32_t tid,
                                    absl::string_view name,
                                    int64_t sort_index) {
  TraceWriter* w = writer_.get();
  w->BeginEvent();
  w->Key("ph");
  w->String("M");
  w->Key("name");
  w->String("thread_name");
  w->Key("pid");
  w->Int(pid);
  w->Key("tid");
  w->Uint(tid);
  w->Key("args");
  w->BeginObject();
  w->Key("name");
  w->String(name);
  w->EndObject();
  w->EndEvent();
  if (sort_index < 0) return;
  w->BeginEvent();
  w->Key("ph");
  w->String("M");
  w->Key("name");
  w->String("thread_sort_index");
  w->Key("pid");
  w->Int(pid);
  w->Key("tid");
  w->Uint(tid);
  w->Key("args");
  w->BeginObject();
  w->Key("sort_index");
  w->Int(sort_index);
  w->EndObject();
  w->EndEvent();
}

uint32_t Capture::GpuTrackLocked(Process& p, uint32_t device, uint32_t stream) {
  const uint64_t key = (static_cast<uint64_t>(device) << 32) | stream;
  auto it = p.gpu_tracks.find(key);
  if (it != p.gpu_tracks.end()) return it->second;
  // Bounded: a stream of made-up device/stream ids must not grow the map
  // (and the trace's track list) without limit.
  constexpr size_t kMaxGpuTracks = 4096;
  if (p.gpu_tracks.size() >= kMaxGpuTracks) {
    return kGpuOverflowTidBase + kMaxGpuTracks;  // One shared "other" track.
  }
  uint32_t tid;
  if (device < 1000 && stream < 1000000) {
    tid = kGpuTidBase + device * 1000000 + stream;
  } else {
    tid = kGpuOverflowTidBase + p.next_overflow_track++;
  }
  p.gpu_tracks.emplace(key, tid);
  WriteThreadNameLocked(p.pid, tid,
                        absl::StrCat("GPU ", device, " stream ", stream), tid);
  return tid;
}

void Capture::WriteTsLocked(int64_t ts_ns) {
  min_ts_ns_ = std::min(min_ts_ns_, ts_ns);
  writer_->Key("ts");
  writer_->Micros(ts_ns);
}

void Capture::WriteFlowLocked(char phase, uint64_t id, const char* cat,
                              int64_t pid, uint32_t tid, int64_t ts_ns) {
  TraceWriter* w = writer_.get();
  w->BeginEvent();
  w->Key("ph");
  w->SafeString(absl::string_view(&phase, 1));
  w->Key("id");
  w->Uint(id);
  w->Key("cat");
  w->SafeString(cat);
  w->Key("name");
  w->SafeString(cat);
  w->Key("pid");
  w->Int(pid);
  w->Key("tid");
  w->Uint(tid);
  WriteTsLocked(ts_ns);
  if (phase == 'f') {
    w->Key("bp");
    w->String("e");
  }
  w->EndEvent();
}

void Capture::WriteOpFlowLocked(const Process& p, uint32_t op_tid,
                                int64_t op_ts, uint32_t gpu_tid,
                                int64_t gpu_ts) {
  const uint64_t flow_ns = static_cast<uint64_t>(p.index + 1) << 41;
  const uint64_t id =
      flow_ns | (uint64_t{1} << 40) | (++op_flow_counter_ & kFlowIdMask);
  WriteFlowLocked('s', id, "op2g", p.pid, op_tid, op_ts);
  WriteFlowLocked('f', id, "op2g", p.pid, gpu_tid, gpu_ts);
}

void Capture::AddPendingGpuLocked(Process& p, uint64_t external_id,
                                  uint32_t tid, int64_t ts_ns) {
  const uint64_t seq = p.next_pending_seq++;
  p.pending_gpu[external_id].push_back(PendingGpu{seq, tid, ts_ns});
  p.pending_order.emplace_back(external_id, seq);
  while (p.pending_order.size() > options_.max_pending_gpu_events) {
    const auto [id, old_seq] = p.pending_order.front();
    p.pending_order.pop_front();
    // Entries already matched by their operator are gone from the map;
    // per id they are kept in seq order, so the oldest is at the front.
    auto it = p.pending_gpu.find(id);
    if (it == p.pending_gpu.end() || it->second.front().seq != old_seq) {
      continue;
    }
    ++p.op2g_unmatched_evicted;
    it->second.erase(it->second.begin());
    if (it->second.empty()) p.pending_gpu.erase(it);
  }
}

void Capture::WriteBatch(const ProbeStream& stream,
                         const v1::EventBatch& batch) {
  MutexLock lock(&mu_);
  const uint64_t n = static_cast<uint64_t>(batch.events_size());
  events_received_ = SaturatingAdd(events_received_, n);
  Process* p = FindLocked(stream.pid(), stream.hello().process_uid());
  if (p == nullptr || finished_) {
    events_not_written_ = SaturatingAdd(events_not_written_, n);
    return;
  }
  p->events = SaturatingAdd(p->events, n);
  p->gaps = stream.sequence_gaps() - p->gaps_at_join;
  if (writer_ == nullptr || !writer_->status().ok()) {
    events_not_written_ = SaturatingAdd(events_not_written_, n);
    return;
  }
  for (const v1::ThreadInfo& t : batch.threads()) {
    absl::string_view name = stream.String(t.name_id());
    auto it = p->thread_names.find(t.tid());
    if (it != p->thread_names.end() && it->second == name) continue;
    p->thread_names[t.tid()] = std::string(name);
    WriteThreadNameLocked(p->pid, t.tid(), name, -1);
  }
  for (const v1::Event& e : batch.events()) WriteEventLocked(*p, stream, e);
  if (!writer_->status().ok()) {
    // Count what may not have reached the disk as not written.
    events_not_written_ = SaturatingAdd(events_not_written_, n);
  }
}

void Capture::WriteEventLocked(Process& p, const ProbeStream& stream,
                               const v1::Event& e) {
  TraceWriter* w = writer_.get();
  const v1::EventKind kind = e.kind();
  const int64_t ts = stream.ToWallNs(e.start_ns()) - base_wall_ns_;
  const bool gpu_track =
      IsGpuKind(kind) ||
      ((kind == v1::EVENT_KIND_SYNC || kind == v1::EVENT_KIND_OVERHEAD) &&
       e.tid() == 0);
  const uint32_t tid =
      gpu_track ? GpuTrackLocked(p, e.device(), e.stream()) : e.tid();
  absl::string_view name = stream.String(e.name_id());
  const uint64_t flow_ns = static_cast<uint64_t>(p.index + 1) << 41;

  w->BeginEvent();
  w->Key("ph");
  switch (kind) {
    case v1::EVENT_KIND_INSTANT:
      w->String("i");
      w->Key("s");
      w->String("t");
      break;
    case v1::EVENT_KIND_COUNTER:
      w->String("C");
      break;
    default:
      w->String("X");
  }
  w->Key("cat");
  if (e.category_id() != 0) {
    w->String(stream.String(e.category_id()));
  } else {
    w->SafeString(Category(kind));
  }
  w->Key("name");
  if (!name.empty()) {
    w->String(name);
  } else if (kind == v1::EVENT_KIND_STEP) {
    w->String(absl::StrCat("ProfilerStep#", e.step()));
  } else {
    w->SafeString(Category(kind));
  }
  w->Key("pid");
  w->Int(p.pid);
  w->Key("tid");
  w->Uint(tid);
  WriteTsLocked(ts);
  if (kind == v1::EVENT_KIND_COUNTER) {
    w->Key("args");
    w->BeginObject();
    w->Key("value");
    w->Double(e.value());
    w->EndObject();
    w->EndEvent();
    return;
  }
  if (kind != v1::EVENT_KIND_INSTANT) {
    w->Key("dur");
    w->Micros(e.duration_ns());
  }

  const OpRef* op = nullptr;
  {
    ArgsScope args(w);
    switch (kind) {
      case v1::EVENT_KIND_STEP:
        args.Key("step")->Int(e.step());
        break;
      case v1::EVENT_KIND_CPU_OP: {
        if (e.external_id() != 0)
          args.Key("External id")->Uint(e.external_id());
        if (e.sequence_number() != 0) {
          args.Key("Sequence number")->Uint(e.sequence_number());
        }
        if (e.input_shapes_size() > 0) {
          args.Key("Input Dims")->BeginArray();
          for (const v1::Shape& s : e.input_shapes()) {
            w->BeginArray();
            for (int64_t d : s.dims()) w->Int(d);
            w->EndArray();
          }
          w->EndArray();
        }
        if (e.input_dtype_ids_size() > 0) {
          args.Key("Input type")->BeginArray();
          for (uint32_t id : e.input_dtype_ids()) w->String(stream.String(id));
          w->EndArray();
        }
        break;
      }
      case v1::EVENT_KIND_CUDA_RUNTIME:
      case v1::EVENT_KIND_CUDA_DRIVER:
        if (e.correlation_id() != 0) {
          args.Key("correlation")->Uint(e.correlation_id());
        }
        if (e.external_id() != 0)
          args.Key("External id")->Uint(e.external_id());
        break;
      default:
        break;
    }
    if (gpu_track) {
      args.Key("device")->Uint(e.device());
      args.Key("stream")->Uint(e.stream());
      if (e.context() != 0) args.Key("context")->Uint(e.context());
      if (e.correlation_id() != 0) {
        args.Key("correlation")->Uint(e.correlation_id());
      }
      if (e.external_id() != 0) {
        args.Key("External id")->Uint(e.external_id());
        auto it = p.ops.find(e.external_id());
        if (it != p.ops.end() && it->second.stream == &stream) {
          op = &it->second;
          args.Key("op")->String(stream.String(op->name_id));
          args.Key("op id")->Uint(e.external_id());
        }
      }
    }
    switch (e.gpu_case()) {
      case v1::Event::kKernelInfo: {
        const v1::KernelInfo& k = e.kernel_info();
        args.Key("grid")->BeginArray();
        w->Uint(k.grid_x());
        w->Uint(k.grid_y());
        w->Uint(k.grid_z());
        w->EndArray();
        args.Key("block")->BeginArray();
        w->Uint(k.block_x());
        w->Uint(k.block_y());
        w->Uint(k.block_z());
        w->EndArray();
        args.Key("registers per thread")->Uint(k.registers_per_thread());
        args.Key("shared memory")->Uint(k.static_shared_bytes());
        args.Key("dynamic shared memory")->Uint(k.dynamic_shared_bytes());
        if (k.graph_id() != 0) args.Key("graph id")->Uint(k.graph_id());
        break;
      }
      case v1::Event::kMemcpyInfo: {
        const v1::MemcpyInfo& m = e.memcpy_info();
        args.Key("bytes")->Uint(m.bytes());
        args.Key("copy kind")->SafeString(CopyKindName(m.copy_kind()));
        args.Key("src kind")->SafeString(MemoryKindName(m.src_kind()));
        args.Key("dst kind")->SafeString(MemoryKindName(m.dst_kind()));
        args.Key("src device")->Uint(m.src_device());
        args.Key("dst device")->Uint(m.dst_device());
        break;
      }
      case v1::Event::kMemsetInfo: {
        const v1::MemsetInfo& m = e.memset_info();
        args.Key("bytes")->Uint(m.bytes());
        args.Key("value")->Uint(m.value());
        args.Key("memory kind")->SafeString(MemoryKindName(m.memory_kind()));
        break;
      }
      case v1::Event::GPU_NOT_SET:
        break;
    }
    for (const v1::Arg& a : e.args()) {
      TraceWriter* v = args.Key(stream.String(a.key_id()));
      switch (a.value_case()) {
        case v1::Arg::kIntValue:
          v->Int(a.int_value());
          break;
        case v1::Arg::kDoubleValue:
          v->Double(a.double_value());
          break;
        case v1::Arg::kStringId:
          v->String(stream.String(a.string_id()));
          break;
        case v1::Arg::kBoolValue:
          v->Bool(a.bool_value());
          break;
        case v1::Arg::VALUE_NOT_SET:
          v->Null();
          break;
      }
    }
  }
  w->EndEvent();

  // Flows and operator bookkeeping.
  if (kind == v1::EVENT_KIND_CPU_OP && e.external_id() != 0) {
    auto [it, inserted] = p.ops.insert_or_assign(
        e.external_id(), OpRef{&stream, e.tid(), e.name_id(), ts});
    if (inserted) {
      p.op_order.push_back(e.external_id());
      if (p.op_order.size() > options_.max_remembered_ops) {
        p.ops.erase(p.op_order.front());
        p.op_order.pop_front();
      }
    }
    // GPU events that arrived before this operator: draw their flows now
    // (their args carry the external id but not the operator's name).
    auto pending = p.pending_gpu.find(e.external_id());
    if (pending != p.pending_gpu.end()) {
      std::vector<PendingGpu> waiting = std::move(pending->second);
      p.pending_gpu.erase(pending);
      for (const PendingGpu& g : waiting) {
        WriteOpFlowLocked(p, e.tid(), ts, g.tid, g.ts_ns);
      }
      // Their pending_order entries are skipped when they reach the front.
    }
  }
  if ((kind == v1::EVENT_KIND_CUDA_RUNTIME ||
       kind == v1::EVENT_KIND_CUDA_DRIVER) &&
      e.correlation_id() != 0) {
    WriteFlowLocked('s', flow_ns | (e.correlation_id() & kFlowIdMask), "ac2g",
                    p.pid, tid, ts);
  }
  if (gpu_track && e.correlation_id() != 0) {
    WriteFlowLocked('f', flow_ns | (e.correlation_id() & kFlowIdMask), "ac2g",
                    p.pid, tid, ts);
  }
  if (op != nullptr) {
    WriteOpFlowLocked(p, op->tid, op->ts_ns, tid, ts);
  } else if (gpu_track && e.external_id() != 0) {
    // The operator has not arrived (yet): remember where the flow ends.
    AddPendingGpuLocked(p, e.external_id(), tid, ts);
  }
}

void Capture::FinishProcess(int64_t pid, const v1::CaptureFinished& finished,
                            uint64_t uid) {
  MutexLock lock(&mu_);
  Process* p = FindLocked(pid, uid);
  if (p == nullptr) return;
  p->finished = true;
  p->finished_msg = finished;
  if (!finished.error().empty()) {
    errors_.push_back(absl::StrCat("pid ", p->pid, ": ", finished.error()));
  }
}

void Capture::DisconnectProcess(int64_t pid, absl::string_view reason,
                                uint64_t uid) {
  MutexLock lock(&mu_);
  Process* p = FindLocked(pid, uid);
  if (p == nullptr || p->finished) return;
  p->disconnected = true;
  p->disconnect_reason = std::string(reason);
  errors_.push_back(absl::StrCat("pid ", p->pid,
                                 " disconnected before the capture finished",
                                 reason.empty() ? "" : ": ", reason));
}

void Capture::AddError(absl::string_view error) {
  MutexLock lock(&mu_);
  errors_.push_back(std::string(error));
}

bool Capture::AllProcessesDone() const {
  MutexLock lock(&mu_);
  if (processes_.empty()) return false;
  for (const auto& p : processes_) {
    if (!p->finished && !p->disconnected) return false;
  }
  return true;
}

int Capture::num_processes() const {
  MutexLock lock(&mu_);
  return static_cast<int>(processes_.size());
}

absl::Time Capture::last_join() const {
  MutexLock lock(&mu_);
  return last_join_;
}

uint64_t Capture::events_written() const {
  MutexLock lock(&mu_);
  return writer_ == nullptr ? final_events_ : writer_->events_written();
}

std::vector<int64_t> Capture::pids() const {
  MutexLock lock(&mu_);
  std::vector<int64_t> out;
  for (const auto& p : processes_) out.push_back(p->real_pid);
  std::sort(out.begin(), out.end());
  return out;
}

bool Capture::CompleteLocked() const {
  if (!file_status_.ok()) return false;
  if (writer_ == nullptr || !writer_->status().ok()) return false;
  if (events_not_written_ != 0 || processes_.empty()) return false;
  for (const auto& p : processes_) {
    if (p->disconnected || !p->finished) return false;
    if (HasDrops(p->finished_msg.drops())) return false;
    if (!p->finished_msg.error().empty()) return false;
    if (p->gaps != 0) return false;
    if (p->finished_msg.events_recorded() != p->events) return false;
  }
  return true;
}

void Capture::AddCompletenessErrorsLocked() {
  for (const auto& p : processes_) {
    if (p->gaps != 0) {
      errors_.push_back(absl::StrCat("pid ", p->pid, ": ", p->gaps,
                                     " batches missing (sequence gaps)"));
    }
    if (!p->finished) continue;
    const v1::CaptureFinished& f = p->finished_msg;
    if (f.events_recorded() != p->events) {
      errors_.push_back(absl::StrCat("pid ", p->pid, ": the probe sent ",
                                     f.events_recorded(), " events, ",
                                     p->events, " arrived"));
    }
    if (HasDrops(f.drops())) {
      const v1::DropCounters& d = f.drops();
      errors_.push_back(absl::StrCat(
          "pid ", p->pid, ": the probe dropped events (buffer full ",
          d.events_dropped_buffer_full(), ", send ", d.events_dropped_send(),
          ", CUPTI records ", d.cupti_records_dropped(), ", CUPTI buffers ",
          d.cupti_buffers_dropped(), ")"));
    }
  }
  // A failed writer names its own error; the count is in the metadata.
  if (events_not_written_ != 0 && writer_ != nullptr &&
      writer_->status().ok() && file_status_.ok()) {
    errors_.push_back(absl::StrCat(events_not_written_,
                                   " events arrived but were not written"));
  }
}

v1::CaptureStatus Capture::Status() const {
  MutexLock lock(&mu_);
  v1::CaptureStatus s;
  s.set_capture_id(id_);
  s.set_origin(origin_);
  *s.mutable_config() = config_;
  for (const auto& p : processes_) s.add_pids(p->real_pid);
  s.set_events_written(writer_ != nullptr ? writer_->events_written()
                                          : final_events_);
  s.set_finished(finished_);
  if (!errors_.empty()) s.set_error(errors_.front());
  return s;
}

void Capture::WriteMetadataLocked() {
  TraceWriter* w = writer_.get();
  w->Key("metadata");
  w->BeginObject();
  w->Key("producer");
  w->String(
      absl::StrCat("vllm-profiler collector ", options_.collector_version));
  w->Key("capture_id");
  w->String(id_);
  w->Key("origin");
  w->SafeString(OriginName(origin_));
  w->Key("config");
  WriteConfig(w, config_);
  w->Key("base_time_unix_ns");
  w->Int(base_wall_ns_);
  w->Key("time_unit");
  w->String("ts and dur are microseconds since base_time_unix_ns");
  w->Key("complete");
  w->Bool(CompleteLocked());
  w->Key("events_received");
  w->Uint(events_received_);
  w->Key("events_written");
  // The metadata is not an event; this is the number of trace events.
  w->Uint(w->events_written());
  w->Key("errors");
  w->BeginArray();
  for (const std::string& e : errors_) w->String(e);
  w->EndArray();
  w->Key("processes");
  w->BeginArray();
  for (const auto& p : processes_) {
    const v1::Hello& h = p->hello;
    w->BeginObject();
    w->Key("pid");
    w->Int(p->real_pid);
    if (p->pid != p->real_pid) {
      w->Key("trace_pid");
      w->Int(p->pid);
    }
    if (p->uid != 0) {
      w->Key("process_uid");
      w->Uint(p->uid);
    }
    w->Key("ppid");
    w->Int(h.ppid());
    w->Key("process_name");
    w->String(h.process_name());
    w->Key("rank");
    w->Int(h.rank());
    w->Key("local_rank");
    w->Int(h.local_rank());
    w->Key("world_size");
    w->Int(h.world_size());
    w->Key("hostname");
    w->String(h.hostname());
    w->Key("pod_name");
    w->String(h.pod_name());
    w->Key("pod_namespace");
    w->String(h.pod_namespace());
    w->Key("node_name");
    w->String(h.node_name());
    w->Key("container_name");
    w->String(h.container_name());
    w->Key("probe_version");
    w->String(h.probe_version());
    w->Key("python_version");
    w->String(h.python_version());
    w->Key("torch_version");
    w->String(h.torch_version());
    w->Key("cuda_version");
    w->String(h.cuda_version());
    w->Key("cupti_version");
    w->String(h.cupti_version());
    w->Key("op_source");
    w->String(p->state.op_source());
    w->Key("op_source_detail");
    w->String(p->state.op_source_detail());
    w->Key("wrapped_targets");
    w->BeginArray();
    for (const std::string& t : p->state.wrapped_targets()) w->String(t);
    w->EndArray();
    w->Key("capture_config");
    WriteConfig(w, p->started.config());
    w->Key("requested_name");
    w->String(p->started.requested_name());
    w->Key("first_step");
    w->Int(p->started.first_step());
    w->Key("last_step");
    w->Int(p->finished_msg.last_step());
    w->Key("events_received");
    w->Uint(p->events);
    w->Key("events_recorded_by_probe");
    w->Uint(p->finished_msg.events_recorded());
    w->Key("clock_offset_ns");
    w->Int(p->clock_offset_ns);
    w->Key("finished");
    w->Bool(p->finished);
    w->Key("disconnected");
    w->Bool(p->disconnected);
    w->Key("drops");
    WriteDrops(w, p->finished_msg.drops());
    // GPU events with an external id whose operator never reached the
    // collector (evicted at the cap, or still waiting at the end).
    w->Key("op2g_unmatched_evicted");
    w->Uint(p->op2g_unmatched_evicted);
    uint64_t waiting = 0;
    for (const auto& [id, v] : p->pending_gpu) waiting += v.size();
    w->Key("op2g_unmatched_at_end");
    w->Uint(waiting);
    w->Key("gpu_activity_note");
    w->String(p->finished_msg.gpu_activity_note());
    w->Key("error");
    w->String(p->finished_msg.error());
    w->EndObject();
  }
  w->EndArray();
  w->EndObject();
}

CaptureResult Capture::Finish() {
  MutexLock lock(&mu_);
  CaptureResult r;
  r.capture_id = id_;
  r.origin = origin_;
  for (const auto& p : processes_) r.pids.push_back(p->real_pid);
  std::sort(r.pids.begin(), r.pids.end());
  r.requested_name = requested_name_;
  if (finished_) {
    r.status = absl::FailedPreconditionError("capture already finished");
    return r;
  }
  finished_ = true;
  AddCompletenessErrorsLocked();
  r.complete = CompleteLocked();
  if (writer_ == nullptr) {
    r.status = file_status_.ok()
                   ? absl::FailedPreconditionError("no process joined")
                   : file_status_;
    r.errors = errors_;
    return r;
  }
  r.events_written = writer_->events_written();
  final_events_ = r.events_written;
  if (min_ts_ns_ < 0) {
    // See trace_time_shift.h: the metadata names the shifted base and the
    // caller moves every event by the same amount.
    r.ts_shift_ns = -min_ts_ns_;
    base_wall_ns_ -= r.ts_shift_ns;
  }
  writer_->EndEvents();
  WriteMetadataLocked();
  r.status = writer_->Finish();
  r.bytes_written = writer_->bytes_written();
  r.has_file = true;
  if (!r.status.ok()) {
    r.complete = false;
    errors_.push_back(std::string(r.status.message()));
  }
  r.errors = errors_;
  writer_.reset();
  return r;
}

}  // namespace vllm_profiler::collector
