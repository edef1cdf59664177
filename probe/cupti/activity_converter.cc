#include "probe/cupti/activity_converter.h"

#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vllm_profiler::probe::cupti {
namespace {

const char* CopyKindName(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOA:
      return "HtoA";
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOH:
      return "AtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOA:
      return "AtoA";
    case CUPTI_ACTIVITY_MEMCPY_KIND_ATOD:
      return "AtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOA:
      return "DtoA";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH:
      return "HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
      return "PtoP";
    default:
      return "Unknown";
  }
}

v1::CopyKind ToCopyKind(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return v1::COPY_KIND_HTOD;
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return v1::COPY_KIND_DTOH;
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return v1::COPY_KIND_DTOD;
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH:
      return v1::COPY_KIND_HTOH;
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
      return v1::COPY_KIND_PTOP;
    default:
      return v1::COPY_KIND_UNKNOWN;
  }
}

const char* MemoryKindName(uint32_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE:
      return "Pageable";
    case CUPTI_ACTIVITY_MEMORY_KIND_PINNED:
      return "Pinned";
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE:
      return "Device";
    case CUPTI_ACTIVITY_MEMORY_KIND_ARRAY:
      return "Array";
    case CUPTI_ACTIVITY_MEMORY_KIND_MANAGED:
      return "Managed";
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC:
      return "Device Static";
    case CUPTI_ACTIVITY_MEMORY_KIND_MANAGED_STATIC:
      return "Managed Static";
    default:
      return "Unknown";
  }
}

v1::MemoryKind ToMemoryKind(uint32_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMORY_KIND_PAGEABLE:
      return v1::MEMORY_KIND_PAGEABLE;
    case CUPTI_ACTIVITY_MEMORY_KIND_PINNED:
      return v1::MEMORY_KIND_PINNED;
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE:
    case CUPTI_ACTIVITY_MEMORY_KIND_DEVICE_STATIC:
      return v1::MEMORY_KIND_DEVICE;
    case CUPTI_ACTIVITY_MEMORY_KIND_ARRAY:
      return v1::MEMORY_KIND_ARRAY;
    case CUPTI_ACTIVITY_MEMORY_KIND_MANAGED:
    case CUPTI_ACTIVITY_MEMORY_KIND_MANAGED_STATIC:
      return v1::MEMORY_KIND_MANAGED;
    default:
      return v1::MEMORY_KIND_UNKNOWN;
  }
}

const char* SyncName(uint32_t type) {
  switch (type) {
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE:
      return "Event Sync";
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_WAIT_EVENT:
      return "Stream Wait Event";
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE:
      return "Stream Sync";
    case CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE:
      return "Context Sync";
    default:
      return "Unknown Sync";
  }
}

const char* OverheadName(uint32_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_OVERHEAD_DRIVER_COMPILER:
      return "CUPTI overhead: driver compiler";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_BUFFER_FLUSH:
      return "CUPTI overhead: buffer flush";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_INSTRUMENTATION:
      return "CUPTI overhead: instrumentation";
    case CUPTI_ACTIVITY_OVERHEAD_CUPTI_RESOURCE:
      return "CUPTI overhead: resource";
    case CUPTI_ACTIVITY_OVERHEAD_RUNTIME_TRIGGERED_MODULE_LOADING:
      return "CUPTI overhead: module loading";
    case CUPTI_ACTIVITY_OVERHEAD_LAZY_FUNCTION_LOADING:
      return "CUPTI overhead: lazy function loading";
    case CUPTI_ACTIVITY_OVERHEAD_COMMAND_BUFFER_FULL:
      return "CUPTI overhead: command buffer full";
    case CUPTI_ACTIVITY_OVERHEAD_ACTIVITY_BUFFER_REQUEST:
      return "CUPTI overhead: activity buffer request";
    default:
      return "CUPTI overhead";
  }
}

// An enum field of a record as its raw 32-bit value. A CUPTI newer than our
// headers may deliver values outside the enum's range, and loading such a
// value through the enum type is undefined behaviour.
template <typename Enum>
uint32_t RawEnum(const Enum* field) {
  static_assert(sizeof(Enum) == sizeof(uint32_t), "CUPTI enums are 32-bit");
  uint32_t value;
  std::memcpy(&value, field, sizeof(value));
  return value;
}

// "cudaLaunchKernel_v7000" -> "cudaLaunchKernel" (kineto shows it so too).
std::string StripVersionSuffix(const char* name) {
  std::string out(name);
  const size_t pos = out.rfind("_v");
  if (pos != std::string::npos && pos + 2 < out.size() &&
      out.find_first_not_of("0123456789", pos + 2) == std::string::npos) {
    out.resize(pos);
  }
  return out;
}

}  // namespace

ActivityConverter::ActivityConverter(Options options,
                                     CallbackNameFn callback_name)
    : options_(options), callback_name_(std::move(callback_name)) {}

void ActivityConverter::Begin(GpuEventSink* sink, const GpuClockMap* clock,
                              bool correlate) {
  sink_ = sink;
  clock_ = clock;
  correlate_ = correlate;
  stats_ = Stats();
  external_ids_.clear();
  api_done_.clear();
  api_seen_in_buffer_.clear();
  pending_.clear();
  open_markers_.clear();
  kernel_names_.clear();
  api_names_.clear();
  names_.clear();
}

void ActivityConverter::Finish() {
  if (sink_ != nullptr) {
    EndBuffer();
    for (v1::Event& event : pending_) Emit(std::move(event));
  }
  pending_.clear();
  pending_.shrink_to_fit();
  external_ids_.clear();
  api_done_.clear();
  api_seen_in_buffer_.clear();
  open_markers_.clear();
  sink_ = nullptr;
  clock_ = nullptr;
}

void ActivityConverter::Emit(v1::Event event) {
  ++stats_.events;
  sink_->AddEvent(std::move(event));
}

void ActivityConverter::EmitApiSide(v1::Event event, bool is_api_call) {
  const auto correlation = static_cast<uint32_t>(event.correlation_id());
  if (correlation != 0) {
    auto it = external_ids_.find(correlation);
    if (it != external_ids_.end()) event.set_external_id(it->second);
    if (is_api_call) api_seen_in_buffer_.push_back(correlation);
  }
  Emit(std::move(event));
}

void ActivityConverter::EmitCorrelated(v1::Event event) {
  const auto correlation = static_cast<uint32_t>(event.correlation_id());
  if (correlation != 0 && correlate_) {
    auto it = external_ids_.find(correlation);
    if (it != external_ids_.end()) {
      event.set_external_id(it->second);
    } else if (api_done_.contains(correlation)) {
      // Its launch was outside any operator: nothing will come.
    } else if (pending_.size() < options_.max_pending_events) {
      pending_.push_back(std::move(event));
      return;
    } else {
      ++stats_.pending_overflow;
    }
  }
  Emit(std::move(event));
}

void ActivityConverter::EndBuffer() {
  if (sink_ == nullptr) return;
  // CUPTI writes a launch's external correlation record before its API
  // record (at API entry vs exit, same thread buffer), so once the buffer
  // holding the API record has been read, a correlation still unknown has
  // none.
  for (uint32_t correlation : api_seen_in_buffer_) {
    if (api_done_.size() >= options_.max_correlations) {
      ++stats_.correlations_dropped;
      continue;
    }
    api_done_.insert(correlation);
  }
  api_seen_in_buffer_.clear();
  if (pending_.empty()) return;
  size_t kept = 0;
  for (size_t i = 0; i < pending_.size(); ++i) {
    const auto correlation =
        static_cast<uint32_t>(pending_[i].correlation_id());
    auto it = external_ids_.find(correlation);
    if (it != external_ids_.end() || api_done_.contains(correlation)) {
      if (it != external_ids_.end()) pending_[i].set_external_id(it->second);
      Emit(std::move(pending_[i]));
    } else {
      if (kept != i) pending_[kept] = std::move(pending_[i]);
      ++kept;
    }
  }
  pending_.resize(kept);
}

uint32_t ActivityConverter::Intern(const std::string& value) {
  auto it = names_.find(value);
  if (it != names_.end()) return it->second;
  const uint32_t id = sink_->InternString(value);
  names_.emplace(value, id);
  return id;
}

uint32_t ActivityConverter::KernelName(const char* mangled) {
  if (mangled == nullptr) return Intern("(unnamed kernel)");
  // CUPTI owns the name strings and keeps them for the process lifetime, so
  // the pointer is a stable key.
  auto it = kernel_names_.find(mangled);
  if (it != kernel_names_.end()) return it->second;
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  const uint32_t id =
      Intern(status == 0 && demangled != nullptr ? demangled : mangled);
  std::free(demangled);
  kernel_names_.emplace(mangled, id);
  return id;
}

uint32_t ActivityConverter::ApiName(CUpti_CallbackDomain domain,
                                    uint32_t cbid) {
  const uint64_t key = (static_cast<uint64_t>(domain) << 32) | cbid;
  auto it = api_names_.find(key);
  if (it != api_names_.end()) return it->second;
  const char* name = callback_name_ ? callback_name_(domain, cbid) : nullptr;
  std::string text;
  if (name != nullptr && name[0] != '\0') {
    text = StripVersionSuffix(name);
  } else {
    text = absl::StrCat(
        domain == CUPTI_CB_DOMAIN_DRIVER_API ? "cuda driver" : "cuda runtime",
        " cbid ", cbid);
  }
  const uint32_t id = Intern(text);
  api_names_.emplace(key, id);
  return id;
}

void ActivityConverter::SetTimes(uint64_t start, uint64_t end,
                                 v1::Event* event) const {
  const int64_t start_ns = clock_->ToMonotonic(start);
  const int64_t end_ns = end > start ? clock_->ToMonotonic(end) : start_ns;
  event->set_start_ns(start_ns);
  event->set_duration_ns(end_ns > start_ns ? end_ns - start_ns : 0);
}

void ActivityConverter::Process(const CUpti_Activity& record) {
  ++stats_.records;
  switch (RawEnum(&record.kind)) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      ProcessKernel(reinterpret_cast<const CUpti_ActivityKernel10&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      ProcessMemcpy(reinterpret_cast<const CUpti_ActivityMemcpy6&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_MEMCPY2:
      ProcessPeerMemcpy(
          reinterpret_cast<const CUpti_ActivityMemcpyPtoP4&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_MEMSET:
      ProcessMemset(reinterpret_cast<const CUpti_ActivityMemset4&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_RUNTIME:
    case CUPTI_ACTIVITY_KIND_DRIVER:
      ProcessApi(reinterpret_cast<const CUpti_ActivityAPI&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_SYNCHRONIZATION:
      ProcessSync(
          reinterpret_cast<const CUpti_ActivitySynchronization2&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
      ProcessOverhead(reinterpret_cast<const CUpti_ActivityOverhead3&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_GRAPH_TRACE:
      ProcessGraph(reinterpret_cast<const CUpti_ActivityGraphTrace2&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_MARKER:
      ProcessMarker(reinterpret_cast<const CUpti_ActivityMarker2&>(record));
      break;
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
      ProcessExternalCorrelation(
          reinterpret_cast<const CUpti_ActivityExternalCorrelation&>(record));
      break;
    default:
      ++stats_.ignored;
      break;
  }
}

// The fields every GPU operation record shares (kernel, memcpy, memset).
template <class Record>
bool ActivityConverter::StartGpuEvent(const Record& r, v1::EventKind kind,
                                      v1::Event* event) {
  if (r.start == 0 || r.end < r.start) {
    ++stats_.ignored;  // CUPTI could not time it.
    return false;
  }
  event->set_kind(kind);
  SetTimes(r.start, r.end, event);
  event->set_device(r.deviceId);
  event->set_stream(r.streamId);
  event->set_context(r.contextId);
  event->set_correlation_id(r.correlationId);
  return true;
}

void ActivityConverter::ProcessKernel(const CUpti_ActivityKernel10& r) {
  v1::Event event;
  if (!StartGpuEvent(r, v1::EVENT_KIND_KERNEL, &event)) return;
  event.set_name_id(KernelName(r.name));
  v1::KernelInfo* info = event.mutable_kernel_info();
  info->set_grid_x(static_cast<uint32_t>(r.gridX));
  info->set_grid_y(static_cast<uint32_t>(r.gridY));
  info->set_grid_z(static_cast<uint32_t>(r.gridZ));
  info->set_block_x(static_cast<uint32_t>(r.blockX));
  info->set_block_y(static_cast<uint32_t>(r.blockY));
  info->set_block_z(static_cast<uint32_t>(r.blockZ));
  info->set_registers_per_thread(r.registersPerThread);
  info->set_static_shared_bytes(static_cast<uint32_t>(r.staticSharedMemory));
  info->set_dynamic_shared_bytes(static_cast<uint32_t>(r.dynamicSharedMemory));
  info->set_graph_id(r.graphId);
  EmitCorrelated(std::move(event));
}

void ActivityConverter::ProcessMemcpy(const CUpti_ActivityMemcpy6& r) {
  v1::Event event;
  if (!StartGpuEvent(r, v1::EVENT_KIND_MEMCPY, &event)) return;
  event.set_name_id(Intern(absl::StrCat("Memcpy ", CopyKindName(r.copyKind),
                                        " (", MemoryKindName(r.srcKind), " -> ",
                                        MemoryKindName(r.dstKind), ")")));
  v1::MemcpyInfo* info = event.mutable_memcpy_info();
  info->set_copy_kind(ToCopyKind(r.copyKind));
  info->set_bytes(r.bytes);
  info->set_src_kind(ToMemoryKind(r.srcKind));
  info->set_dst_kind(ToMemoryKind(r.dstKind));
  info->set_src_device(r.deviceId);
  info->set_dst_device(r.deviceId);
  EmitCorrelated(std::move(event));
}

void ActivityConverter::ProcessPeerMemcpy(const CUpti_ActivityMemcpyPtoP4& r) {
  v1::Event event;
  if (!StartGpuEvent(r, v1::EVENT_KIND_MEMCPY, &event)) return;
  event.set_name_id(
      Intern(absl::StrCat("Memcpy PtoP (", MemoryKindName(r.srcKind), " -> ",
                          MemoryKindName(r.dstKind), ")")));
  v1::MemcpyInfo* info = event.mutable_memcpy_info();
  info->set_copy_kind(v1::COPY_KIND_PTOP);
  info->set_bytes(r.bytes);
  info->set_src_kind(ToMemoryKind(r.srcKind));
  info->set_dst_kind(ToMemoryKind(r.dstKind));
  info->set_src_device(r.srcDeviceId);
  info->set_dst_device(r.dstDeviceId);
  EmitCorrelated(std::move(event));
}

void ActivityConverter::ProcessMemset(const CUpti_ActivityMemset4& r) {
  v1::Event event;
  if (!StartGpuEvent(r, v1::EVENT_KIND_MEMSET, &event)) return;
  event.set_name_id(
      Intern(absl::StrCat("Memset (", MemoryKindName(r.memoryKind), ")")));
  v1::MemsetInfo* info = event.mutable_memset_info();
  info->set_bytes(r.bytes);
  info->set_value(r.value);
  info->set_memory_kind(ToMemoryKind(r.memoryKind));
  EmitCorrelated(std::move(event));
}

void ActivityConverter::ProcessApi(const CUpti_ActivityAPI& r) {
  const bool driver = RawEnum(&r.kind) == CUPTI_ACTIVITY_KIND_DRIVER;
  v1::Event event;
  event.set_kind(driver ? v1::EVENT_KIND_CUDA_DRIVER
                        : v1::EVENT_KIND_CUDA_RUNTIME);
  event.set_name_id(
      ApiName(driver ? CUPTI_CB_DOMAIN_DRIVER_API : CUPTI_CB_DOMAIN_RUNTIME_API,
              r.cbid));
  SetTimes(r.start, r.end, &event);
  event.set_tid(r.threadId);
  event.set_correlation_id(r.correlationId);
  EmitApiSide(std::move(event), /*is_api_call=*/true);
}

void ActivityConverter::ProcessSync(const CUpti_ActivitySynchronization2& r) {
  v1::Event event;
  event.set_kind(v1::EVENT_KIND_SYNC);
  event.set_name_id(Intern(SyncName(RawEnum(&r.type))));
  SetTimes(r.start, r.end, &event);
  event.set_context(r.contextId);
  // CUPTI uses all ones for "no stream" (context synchronize).
  if (r.streamId != UINT32_MAX) event.set_stream(r.streamId);
  event.set_correlation_id(r.correlationId);
  EmitApiSide(std::move(event), /*is_api_call=*/false);
}

void ActivityConverter::ProcessOverhead(const CUpti_ActivityOverhead3& r) {
  v1::Event event;
  event.set_kind(v1::EVENT_KIND_OVERHEAD);
  event.set_name_id(Intern(OverheadName(RawEnum(&r.overheadKind))));
  SetTimes(r.start, r.end, &event);
  if (RawEnum(&r.objectKind) == CUPTI_ACTIVITY_OBJECT_THREAD ||
      RawEnum(&r.objectKind) == CUPTI_ACTIVITY_OBJECT_PROCESS) {
    event.set_tid(r.objectId.pt.threadId);
  } else {
    event.set_device(r.objectId.dcs.deviceId);
  }
  Emit(std::move(event));
}

void ActivityConverter::ProcessGraph(const CUpti_ActivityGraphTrace2& r) {
  v1::Event event;
  event.set_kind(v1::EVENT_KIND_CUDA_GRAPH);
  event.set_name_id(Intern(absl::StrCat("CUDA graph ", r.graphId)));
  SetTimes(r.start, r.end, &event);
  event.set_device(r.deviceId);
  event.set_stream(r.streamId);
  event.set_context(r.contextId);
  event.set_correlation_id(r.correlationId);
  v1::Arg* arg = event.add_args();
  arg->set_key_id(Intern("graph_id"));
  arg->set_int_value(r.graphId);
  EmitCorrelated(std::move(event));
}

void ActivityConverter::ProcessMarker(const CUpti_ActivityMarker2& r) {
  const uint32_t tid =
      RawEnum(&r.objectKind) == CUPTI_ACTIVITY_OBJECT_THREAD ||
              RawEnum(&r.objectKind) == CUPTI_ACTIVITY_OBJECT_PROCESS
          ? r.objectId.pt.threadId
          : 0;
  if (RawEnum(&r.flags) & CUPTI_ACTIVITY_FLAG_MARKER_START) {
    if (open_markers_.size() >= options_.max_open_markers) {
      ++stats_.ignored;
      return;
    }
    OpenMarker marker;
    marker.start_ns = clock_->ToMonotonic(r.timestamp);
    marker.name_id = Intern(r.name != nullptr ? r.name : "(unnamed range)");
    marker.category_id = Intern(r.domain != nullptr ? r.domain : "nvtx");
    marker.tid = tid;
    open_markers_[r.id] = marker;
    return;
  }
  if (RawEnum(&r.flags) & CUPTI_ACTIVITY_FLAG_MARKER_END) {
    auto it = open_markers_.find(r.id);
    if (it == open_markers_.end()) {
      ++stats_.ignored;  // Started before the capture.
      return;
    }
    const OpenMarker marker = it->second;
    open_markers_.erase(it);
    const int64_t end_ns = clock_->ToMonotonic(r.timestamp);
    v1::Event event;
    event.set_kind(v1::EVENT_KIND_USER_SPAN);
    event.set_name_id(marker.name_id);
    event.set_category_id(marker.category_id);
    event.set_start_ns(marker.start_ns);
    event.set_duration_ns(end_ns > marker.start_ns ? end_ns - marker.start_ns
                                                   : 0);
    event.set_tid(marker.tid);
    Emit(std::move(event));
    return;
  }
  if (RawEnum(&r.flags) & CUPTI_ACTIVITY_FLAG_MARKER_INSTANTANEOUS) {
    v1::Event event;
    event.set_kind(v1::EVENT_KIND_INSTANT);
    event.set_name_id(Intern(r.name != nullptr ? r.name : "(unnamed mark)"));
    event.set_category_id(Intern(r.domain != nullptr ? r.domain : "nvtx"));
    event.set_start_ns(clock_->ToMonotonic(r.timestamp));
    event.set_tid(tid);
    Emit(std::move(event));
    return;
  }
  ++stats_.ignored;
}

void ActivityConverter::ProcessExternalCorrelation(
    const CUpti_ActivityExternalCorrelation& r) {
  // Only our kind: another library (e.g. an OpenACC runtime) may push its
  // own.
  if (RawEnum(&r.externalKind) != CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) {
    ++stats_.ignored;
    return;
  }
  if (external_ids_.size() >= options_.max_correlations &&
      !external_ids_.contains(r.correlationId)) {
    ++stats_.correlations_dropped;
    return;
  }
  external_ids_[r.correlationId] = r.externalId;
}

}  // namespace vllm_profiler::probe::cupti
