#include "collector/capture.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/saturating.h"

namespace vllm_profiler::collector {
namespace {

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
  ChromeTraceMapper::Options mapping;
  mapping.max_remembered_ops = options_.max_remembered_ops;
  mapping.max_pending_gpu_events = options_.max_pending_gpu_events;
  mapper_ = std::make_unique<ChromeTraceMapper>(writer_.get(), mapping);
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
    p->tracks.StartNewStream();
    p->finished = false;
    p->disconnected = false;
  }
  p->hello = stream.hello();
  p->state = stream.state();
  p->started = started;
  p->gaps_at_join = stream.sequence_gaps();
  p->clock_offset_ns = stream.ToWallNs(0);
  if (mapper_ != nullptr) mapper_->WriteProcessMetadata(*p);
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
  mapper_->WriteThreadNames(*p, stream, batch.threads());
  for (const v1::Event& e : batch.events()) {
    mapper_->WriteEvent(*p, stream, e,
                        stream.ToWallNs(e.start_ns()) - base_wall_ns_);
  }
  if (!writer_->status().ok()) {
    // Count what may not have reached the disk as not written.
    events_not_written_ = SaturatingAdd(events_not_written_, n);
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
  TraceMetadata m;
  m.collector_version = options_.collector_version;
  m.capture_id = id_;
  m.origin = origin_;
  m.config = config_;
  m.base_time_unix_ns = base_wall_ns_;
  m.complete = CompleteLocked();
  m.events_received = events_received_;
  m.errors = errors_;
  std::vector<const TraceProcess*> processes;
  processes.reserve(processes_.size());
  for (const auto& p : processes_) processes.push_back(p.get());
  writer_->Key("metadata");
  mapper_->WriteMetadata(m, processes);
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
  if (mapper_->min_ts_ns() < 0) {
    // See trace_time_shift.h: the metadata names the shifted base and the
    // caller moves every event by the same amount.
    r.ts_shift_ns = -mapper_->min_ts_ns();
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
  mapper_.reset();
  writer_.reset();
  return r;
}

}  // namespace vllm_profiler::collector
