#include "collector/chrome_trace_mapper.h"

#include <algorithm>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/capture_origin.h"

namespace vllm_profiler::collector {
namespace {

constexpr uint32_t kGpuTidBase = 1000000000;
constexpr uint32_t kGpuOverflowTidBase = 2000000000;
// Flow ids: (process index + 1) << 41 | kind bit << 40 | 40-bit id; below
// 2^53 for up to 4095 processes, so JavaScript viewers keep them exact.
constexpr uint64_t kFlowIdMask = (uint64_t{1} << 40) - 1;

uint64_t FlowNamespace(const TraceProcess& p) {
  return static_cast<uint64_t>(p.index + 1) << 41;
}

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

bool IsApiKind(v1::EventKind kind) {
  return kind == v1::EVENT_KIND_CUDA_RUNTIME ||
         kind == v1::EVENT_KIND_CUDA_DRIVER;
}

// GPU activity, and synchronisation or overhead that no CPU thread owns, go
// on the device+stream track.
bool OnGpuTrack(const v1::Event& e) {
  const v1::EventKind kind = e.kind();
  return IsGpuKind(kind) ||
         ((kind == v1::EVENT_KIND_SYNC || kind == v1::EVENT_KIND_OVERHEAD) &&
          e.tid() == 0);
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

void WriteCpuOpArgs(ArgsScope& args, const ProbeStream& stream,
                    const v1::Event& e) {
  if (e.external_id() != 0) args.Key("External id")->Uint(e.external_id());
  if (e.sequence_number() != 0) {
    args.Key("Sequence number")->Uint(e.sequence_number());
  }
  // The inputs inline, or the stream's signature they refer to.
  const v1::InputSignature* sig = e.input_signature_id() != 0
                                      ? stream.Signature(e.input_signature_id())
                                      : nullptr;
  const auto& shapes = sig != nullptr ? sig->shapes() : e.input_shapes();
  const auto& dtype_ids =
      sig != nullptr ? sig->dtype_ids() : e.input_dtype_ids();
  if (!shapes.empty()) {
    TraceWriter* w = args.Key("Input Dims");
    w->BeginArray();
    for (const v1::Shape& s : shapes) {
      w->BeginArray();
      for (int64_t d : s.dims()) w->Int(d);
      w->EndArray();
    }
    w->EndArray();
  }
  if (!dtype_ids.empty()) {
    TraceWriter* w = args.Key("Input type");
    w->BeginArray();
    for (uint32_t id : dtype_ids) w->String(stream.String(id));
    w->EndArray();
  }
}

// The args that depend on the event's kind (step, operator, CUDA call).
void WriteKindArgs(ArgsScope& args, const ProbeStream& stream,
                   const v1::Event& e) {
  switch (e.kind()) {
    case v1::EVENT_KIND_STEP:
      args.Key("step")->Int(e.step());
      break;
    case v1::EVENT_KIND_CPU_OP:
      WriteCpuOpArgs(args, stream, e);
      break;
    case v1::EVENT_KIND_CUDA_RUNTIME:
    case v1::EVENT_KIND_CUDA_DRIVER:
      if (e.correlation_id() != 0) {
        args.Key("correlation")->Uint(e.correlation_id());
      }
      if (e.external_id() != 0) args.Key("External id")->Uint(e.external_id());
      break;
    default:
      break;
  }
}

// The args of an event on a GPU track; returns the operator it links to
// when that operator arrived first (nullptr otherwise).
const ProcessTracks::OpRef* WriteGpuArgs(ArgsScope& args,
                                         const ProcessTracks& tracks,
                                         const ProbeStream& stream,
                                         const v1::Event& e) {
  args.Key("device")->Uint(e.device());
  args.Key("stream")->Uint(e.stream());
  if (e.context() != 0) args.Key("context")->Uint(e.context());
  if (e.correlation_id() != 0) {
    args.Key("correlation")->Uint(e.correlation_id());
  }
  if (e.external_id() == 0) return nullptr;
  args.Key("External id")->Uint(e.external_id());
  auto it = tracks.ops.find(e.external_id());
  if (it == tracks.ops.end() || it->second.stream != &stream) return nullptr;
  const ProcessTracks::OpRef* op = &it->second;
  args.Key("op")->String(stream.String(op->name_id));
  args.Key("op id")->Uint(e.external_id());
  return op;
}

void WriteKernelArgs(ArgsScope& args, const v1::KernelInfo& k) {
  TraceWriter* w = args.Key("grid");
  w->BeginArray();
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
}

void WriteMemcpyArgs(ArgsScope& args, const v1::MemcpyInfo& m) {
  args.Key("bytes")->Uint(m.bytes());
  args.Key("copy kind")->SafeString(CopyKindName(m.copy_kind()));
  args.Key("src kind")->SafeString(MemoryKindName(m.src_kind()));
  args.Key("dst kind")->SafeString(MemoryKindName(m.dst_kind()));
  args.Key("src device")->Uint(m.src_device());
  args.Key("dst device")->Uint(m.dst_device());
}

void WriteMemsetArgs(ArgsScope& args, const v1::MemsetInfo& m) {
  args.Key("bytes")->Uint(m.bytes());
  args.Key("value")->Uint(m.value());
  args.Key("memory kind")->SafeString(MemoryKindName(m.memory_kind()));
}

// The details of a GPU activity (kernel launch shape, copy, memset).
void WriteActivityArgs(ArgsScope& args, const v1::Event& e) {
  switch (e.gpu_case()) {
    case v1::Event::kKernelInfo:
      WriteKernelArgs(args, e.kernel_info());
      break;
    case v1::Event::kMemcpyInfo:
      WriteMemcpyArgs(args, e.memcpy_info());
      break;
    case v1::Event::kMemsetInfo:
      WriteMemsetArgs(args, e.memset_info());
      break;
    case v1::Event::GPU_NOT_SET:
      break;
  }
}

// The free-form args the probe attached.
void WriteUserArgs(ArgsScope& args, const ProbeStream& stream,
                   const v1::Event& e) {
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

// A metadata ("M") event of the process: {"ph":"M","name":name,"pid":pid,
// "args":{arg_key:arg_value}}.
template <typename Value>
void WriteProcessMetaEvent(TraceWriter* w, const char* name, int64_t pid,
                           const char* arg_key, const Value& arg_value) {
  w->BeginEvent();
  w->Key("ph");
  w->String("M");
  w->Key("name");
  w->SafeString(name);
  w->Key("pid");
  w->Int(pid);
  w->Key("args");
  w->BeginObject();
  w->Key(absl::string_view(arg_key));
  if constexpr (std::is_integral_v<Value>) {
    w->Int(arg_value);
  } else {
    w->String(arg_value);
  }
  w->EndObject();
  w->EndEvent();
}

// "VllmWorker-0 · rank 0 · pod x · container y" (· pid N when the trace pid
// differs from the real one).
std::string ProcessName(const TraceProcess& p) {
  const v1::Hello& h = p.hello;
  std::string name =
      h.process_name().empty() ? absl::StrCat("pid ", p.pid) : h.process_name();
  if (h.rank() >= 0) absl::StrAppend(&name, " \xc2\xb7 rank ", h.rank());
  if (!h.pod_name().empty())
    absl::StrAppend(&name, " \xc2\xb7 pod ", h.pod_name());
  if (!h.container_name().empty())
    absl::StrAppend(&name, " \xc2\xb7 container ", h.container_name());
  if (p.pid != p.real_pid) absl::StrAppend(&name, " \xc2\xb7 pid ", p.real_pid);
  return name;
}

// "pod=x,namespace=y,node=z,host=h", leaving out empty values.
std::string ProcessLabels(const v1::Hello& h) {
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
  return labels;
}

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
  if (c.start_at_unix_ns() != 0) {
    w->Key("start_at_unix_ns");
    w->Int(c.start_at_unix_ns());
  }
  if (!c.group_id().empty()) {
    w->Key("group_id");
    w->String(c.group_id());
  }
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

// The process's identity as its Hello states it (keys of a process entry
// in the metadata, after the pids).
void WriteHelloFields(TraceWriter* w, const v1::Hello& h) {
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
}

}  // namespace

void ProcessTracks::StartNewStream() {
  ops.clear();
  op_order.clear();
  op2g_unmatched_evicted += unmatched_waiting();
  pending_gpu.clear();
  pending_order.clear();
}

uint64_t ProcessTracks::unmatched_waiting() const {
  uint64_t waiting = 0;
  for (const auto& [id, v] : pending_gpu) waiting += v.size();
  return waiting;
}

ChromeTraceMapper::ChromeTraceMapper(TraceWriter* writer, Options options)
    : writer_(writer), options_(std::move(options)) {}

void ChromeTraceMapper::WriteProcessMetadata(const TraceProcess& p) {
  const v1::Hello& h = p.hello;
  WriteProcessMetaEvent(writer_, "process_name", p.pid, "name", ProcessName(p));
  WriteProcessMetaEvent(writer_, "process_sort_index", p.pid, "sort_index",
                        int64_t{h.rank() >= 0 ? h.rank() : 1000000 + p.index});
  const std::string labels = ProcessLabels(h);
  if (!labels.empty()) {
    WriteProcessMetaEvent(writer_, "process_labels", p.pid, "labels", labels);
  }
}

void ChromeTraceMapper::WriteThreadNames(
    TraceProcess& p, const ProbeStream& stream,
    const google::protobuf::RepeatedPtrField<v1::ThreadInfo>& threads) {
  for (const v1::ThreadInfo& t : threads) {
    absl::string_view name = stream.String(t.name_id());
    auto it = p.tracks.thread_names.find(t.tid());
    if (it != p.tracks.thread_names.end() && it->second == name) continue;
    p.tracks.thread_names[t.tid()] = std::string(name);
    WriteThreadName(p.pid, t.tid(), name, -1);
  }
}

void ChromeTraceMapper::WriteThreadName(int64_t pid, uint32_t tid,
                                        absl::string_view name,
                                        int64_t sort_index) {
  TraceWriter* w = writer_;
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

uint32_t ChromeTraceMapper::GpuTrack(TraceProcess& p, uint32_t device,
                                     uint32_t stream) {
  ProcessTracks& t = p.tracks;
  const uint64_t key = (static_cast<uint64_t>(device) << 32) | stream;
  auto it = t.gpu_tracks.find(key);
  if (it != t.gpu_tracks.end()) return it->second;
  // Bounded: a stream of made-up device/stream ids must not grow the map
  // (and the trace's track list) without limit.
  constexpr size_t kMaxGpuTracks = 4096;
  if (t.gpu_tracks.size() >= kMaxGpuTracks) {
    return kGpuOverflowTidBase + kMaxGpuTracks;  // One shared "other" track.
  }
  uint32_t tid;
  if (device < 1000 && stream < 1000000) {
    tid = kGpuTidBase + device * 1000000 + stream;
  } else {
    tid = kGpuOverflowTidBase + t.next_overflow_track++;
  }
  t.gpu_tracks.emplace(key, tid);
  WriteThreadName(p.pid, tid, absl::StrCat("GPU ", device, " stream ", stream),
                  tid);
  return tid;
}

void ChromeTraceMapper::WriteTs(int64_t ts_ns) {
  min_ts_ns_ = std::min(min_ts_ns_, ts_ns);
  writer_->Key("ts");
  writer_->Micros(ts_ns);
}

void ChromeTraceMapper::WriteEventHead(const TraceProcess& p,
                                       const ProbeStream& stream,
                                       const v1::Event& e, uint32_t tid,
                                       int64_t ts_ns) {
  TraceWriter* w = writer_;
  const v1::EventKind kind = e.kind();
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
  absl::string_view name = stream.String(e.name_id());
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
  WriteTs(ts_ns);
}

void ChromeTraceMapper::WriteEvent(TraceProcess& p, const ProbeStream& stream,
                                   const v1::Event& e, int64_t ts) {
  TraceWriter* w = writer_;
  const v1::EventKind kind = e.kind();
  const bool gpu_track = OnGpuTrack(e);
  const uint32_t tid =
      gpu_track ? GpuTrack(p, e.device(), e.stream()) : e.tid();
  WriteEventHead(p, stream, e, tid, ts);
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
  const ProcessTracks::OpRef* op = nullptr;
  {
    ArgsScope args(w);
    WriteKindArgs(args, stream, e);
    if (gpu_track) op = WriteGpuArgs(args, p.tracks, stream, e);
    WriteActivityArgs(args, e);
    WriteUserArgs(args, stream, e);
  }
  w->EndEvent();

  // Flows, each drawn once both of its ends are known.
  if (kind == v1::EVENT_KIND_CPU_OP && e.external_id() != 0) {
    LinkOperator(p, stream, e, ts);
  }
  const uint64_t flow_id =
      FlowNamespace(p) | (e.correlation_id() & kFlowIdMask);
  if (IsApiKind(kind) && e.correlation_id() != 0) {
    WriteFlow('s', flow_id, "ac2g", p.pid, tid, ts);
  }
  if (gpu_track && e.correlation_id() != 0) {
    WriteFlow('f', flow_id, "ac2g", p.pid, tid, ts);
  }
  if (op != nullptr) {
    WriteOpFlow(p, op->tid, op->ts_ns, tid, ts);
  } else if (gpu_track && e.external_id() != 0) {
    // The operator has not arrived (yet): remember where the flow ends.
    AddPendingGpu(p, e.external_id(), tid, ts);
  }
}

void ChromeTraceMapper::LinkOperator(TraceProcess& p, const ProbeStream& stream,
                                     const v1::Event& e, int64_t ts_ns) {
  ProcessTracks& t = p.tracks;
  auto [it, inserted] = t.ops.insert_or_assign(
      e.external_id(),
      ProcessTracks::OpRef{&stream, e.tid(), e.name_id(), ts_ns});
  if (inserted) {
    t.op_order.push_back(e.external_id());
    if (t.op_order.size() > options_.max_remembered_ops) {
      t.ops.erase(t.op_order.front());
      t.op_order.pop_front();
    }
  }
  // GPU events that arrived before this operator: draw their flows now
  // (their args carry the external id but not the operator's name).
  auto pending = t.pending_gpu.find(e.external_id());
  if (pending == t.pending_gpu.end()) return;
  std::vector<ProcessTracks::PendingGpu> waiting = std::move(pending->second);
  t.pending_gpu.erase(pending);
  for (const ProcessTracks::PendingGpu& g : waiting) {
    WriteOpFlow(p, e.tid(), ts_ns, g.tid, g.ts_ns);
  }
  // Their pending_order entries are skipped when they reach the front.
}

void ChromeTraceMapper::WriteFlow(char phase, uint64_t id, const char* cat,
                                  int64_t pid, uint32_t tid, int64_t ts_ns) {
  TraceWriter* w = writer_;
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
  WriteTs(ts_ns);
  if (phase == 'f') {
    w->Key("bp");
    w->String("e");
  }
  w->EndEvent();
}

void ChromeTraceMapper::WriteOpFlow(const TraceProcess& p, uint32_t op_tid,
                                    int64_t op_ts, uint32_t gpu_tid,
                                    int64_t gpu_ts) {
  const uint64_t id = FlowNamespace(p) | (uint64_t{1} << 40) |
                      (++op_flow_counter_ & kFlowIdMask);
  WriteFlow('s', id, "op2g", p.pid, op_tid, op_ts);
  WriteFlow('f', id, "op2g", p.pid, gpu_tid, gpu_ts);
}

void ChromeTraceMapper::AddPendingGpu(TraceProcess& p, uint64_t external_id,
                                      uint32_t tid, int64_t ts_ns) {
  ProcessTracks& t = p.tracks;
  const uint64_t seq = t.next_pending_seq++;
  t.pending_gpu[external_id].push_back(
      ProcessTracks::PendingGpu{seq, tid, ts_ns});
  t.pending_order.emplace_back(external_id, seq);
  while (t.pending_order.size() > options_.max_pending_gpu_events) {
    const auto [id, old_seq] = t.pending_order.front();
    t.pending_order.pop_front();
    // Entries already matched by their operator are gone from the map;
    // per id they are kept in seq order, so the oldest is at the front.
    auto it = t.pending_gpu.find(id);
    if (it == t.pending_gpu.end() || it->second.front().seq != old_seq) {
      continue;
    }
    ++t.op2g_unmatched_evicted;
    it->second.erase(it->second.begin());
    if (it->second.empty()) t.pending_gpu.erase(it);
  }
}

void ChromeTraceMapper::WriteMetadata(
    const TraceMetadata& m, const std::vector<const TraceProcess*>& processes) {
  TraceWriter* w = writer_;
  w->BeginObject();
  w->Key("producer");
  w->String(absl::StrCat("vllm-profiler collector ", m.collector_version));
  w->Key("capture_id");
  w->String(m.capture_id);
  w->Key("origin");
  w->String(OriginName(m.origin));
  w->Key("config");
  WriteConfig(w, m.config);
  w->Key("base_time_unix_ns");
  w->Int(m.base_time_unix_ns);
  w->Key("time_unit");
  w->String("ts and dur are microseconds since base_time_unix_ns");
  w->Key("complete");
  w->Bool(m.complete);
  w->Key("events_received");
  w->Uint(m.events_received);
  w->Key("events_written");
  // The metadata is not an event; this is the number of trace events.
  w->Uint(w->events_written());
  w->Key("errors");
  w->BeginArray();
  for (const std::string& e : m.errors) w->String(e);
  w->EndArray();
  w->Key("processes");
  w->BeginArray();
  for (const TraceProcess* p : processes) WriteProcessSummary(*p);
  w->EndArray();
  w->EndObject();
}

void ChromeTraceMapper::WriteProcessSummary(const TraceProcess& p) {
  TraceWriter* w = writer_;
  w->BeginObject();
  w->Key("pid");
  w->Int(p.real_pid);
  if (p.pid != p.real_pid) {
    w->Key("trace_pid");
    w->Int(p.pid);
  }
  if (p.uid != 0) {
    w->Key("process_uid");
    w->Uint(p.uid);
  }
  WriteHelloFields(w, p.hello);
  w->Key("op_source");
  w->String(p.state.op_source());
  w->Key("op_source_detail");
  w->String(p.state.op_source_detail());
  w->Key("wrapped_targets");
  w->BeginArray();
  for (const std::string& t : p.state.wrapped_targets()) w->String(t);
  w->EndArray();
  w->Key("capture_config");
  WriteConfig(w, p.started.config());
  w->Key("requested_name");
  w->String(p.started.requested_name());
  w->Key("first_step");
  w->Int(p.started.first_step());
  w->Key("last_step");
  w->Int(p.finished_msg.last_step());
  w->Key("events_received");
  w->Uint(p.events);
  w->Key("events_recorded_by_probe");
  w->Uint(p.finished_msg.events_recorded());
  w->Key("clock_offset_ns");
  w->Int(p.clock_offset_ns);
  w->Key("finished");
  w->Bool(p.finished);
  w->Key("disconnected");
  w->Bool(p.disconnected);
  w->Key("drops");
  WriteDrops(w, p.finished_msg.drops());
  // GPU events with an external id whose operator never reached the
  // collector (evicted at the cap, or still waiting at the end).
  w->Key("op2g_unmatched_evicted");
  w->Uint(p.tracks.op2g_unmatched_evicted);
  w->Key("op2g_unmatched_at_end");
  w->Uint(p.tracks.unmatched_waiting());
  w->Key("gpu_activity_note");
  w->String(p.finished_msg.gpu_activity_note());
  w->Key("error");
  w->String(p.finished_msg.error());
  w->EndObject();
}

}  // namespace vllm_profiler::collector
