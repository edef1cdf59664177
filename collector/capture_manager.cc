#include "collector/capture_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/logging.h"

namespace vllm_profiler::collector {
namespace {

// The origin a probe states when it starts `origin`'s capture: it runs a
// trigger's capture as a command capture.
v1::CaptureOrigin ProbeOrigin(v1::CaptureOrigin origin) {
  return origin == v1::CAPTURE_ORIGIN_TRIGGER ? v1::CAPTURE_ORIGIN_COMMAND
                                              : origin;
}

}  // namespace

CaptureManager::CaptureManager(Options options, TraceStore* store)
    : options_(std::move(options)), store_(store) {
  thread_ = std::thread([this] { FinalizerLoop(); });
}

CaptureManager::~CaptureManager() { Shutdown("collector shutting down"); }

void CaptureManager::EnsureOutputLocked(Entry& e) {
  if (e.capture->has_output()) return;
  absl::StatusOr<TraceStore::TempFile> temp = store_->CreateTempFile();
  if (!temp.ok()) {
    VP_LOG(ERROR) << "capture " << e.capture->id()
                  << ": cannot create the trace file: "
                  << temp.status().message();
    e.capture->SetFile(temp.status());
    return;
  }
  e.temp_path = temp->path;
  e.capture->SetFile(std::move(temp->file));
}

std::shared_ptr<Capture> CaptureManager::Join(
    const ProbeStream& stream, const v1::CaptureStarted& started) {
  const int64_t pid = stream.pid();
  const v1::CaptureOrigin origin =
      started.origin() == v1::CAPTURE_ORIGIN_COMMAND
          ? v1::CAPTURE_ORIGIN_COMMAND
          : v1::CAPTURE_ORIGIN_WINDOW;
  MutexLock lock(&mu_);
  Entry* target = nullptr;
  // The newest matching capture this process is not already part of.
  for (auto it = active_.rbegin(); it != active_.rend(); ++it) {
    if (ProbeOrigin(it->capture->origin()) != origin) continue;
    if (origin == v1::CAPTURE_ORIGIN_COMMAND &&
        it->capture->id() != started.capture_id()) {
      continue;
    }
    if (it->capture->HasProcess(pid, stream.hello().process_uid())) continue;
    target = &*it;
    break;
  }
  if (target == nullptr) {
    if (!store_->RoomForNewTrace(active_.size(),
                                 options_.probe_eviction_min_age)) {
      captures_refused_.fetch_add(1);
      VP_LOG_EVERY_N(WARNING, 100)
          << "refused capture " << QuoteForMessage(started.capture_id())
          << " started by pid " << pid << ": keeping it would delete a trace "
          << "younger than "
          << absl::FormatDuration(options_.probe_eviction_min_age)
          << " (--probe_eviction_min_age_s)";
      return nullptr;
    }
    Entry e;
    e.capture = std::make_shared<Capture>(started.capture_id(), origin,
                                          started.config(), options_.capture);
    e.created = absl::Now();
    active_.push_back(std::move(e));
    target = &active_.back();
    VP_LOG(INFO) << "capture " << started.capture_id() << " ("
                 << (origin == v1::CAPTURE_ORIGIN_COMMAND ? "command"
                                                          : "window")
                 << ") started by pid " << pid;
  } else {
    VP_LOG(INFO) << "pid " << pid << " joined capture "
                 << target->capture->id();
  }
  EnsureOutputLocked(*target);
  target->capture->Join(stream, started, absl::Now());
  target->expected.erase(pid);
  wake_.Signal();
  return target->capture;
}

void CaptureManager::Finish(const std::shared_ptr<Capture>& capture,
                            int64_t pid, const v1::CaptureFinished& finished,
                            uint64_t uid) {
  capture->FinishProcess(pid, finished, uid);
  MutexLock lock(&mu_);
  wake_.Signal();
}

void CaptureManager::Disconnect(const std::shared_ptr<Capture>& capture,
                                int64_t pid, absl::string_view reason,
                                uint64_t uid) {
  VP_LOG(WARNING) << "pid " << pid << " left capture " << capture->id()
                  << " before finishing it" << (reason.empty() ? "" : ": ")
                  << reason;
  capture->DisconnectProcess(pid, reason, uid);
  MutexLock lock(&mu_);
  wake_.Signal();
}

void CaptureManager::ProbeGone(int64_t pid) {
  MutexLock lock(&mu_);
  for (Entry& e : active_) e.expected.erase(pid);
  wake_.Signal();
}

std::string CaptureManager::CreateCommandCapture(
    const std::vector<int64_t>& pids, const v1::CaptureConfig& config,
    const std::string& trigger_reason) {
  MutexLock lock(&mu_);
  std::string id =
      absl::StrCat(trigger_reason.empty() ? "cmd-" : "trigger-",
                   absl::ToUnixMillis(absl::Now()), "-", ++command_counter_);
  Entry e;
  e.capture = std::make_shared<Capture>(id,
                                        trigger_reason.empty()
                                            ? v1::CAPTURE_ORIGIN_COMMAND
                                            : v1::CAPTURE_ORIGIN_TRIGGER,
                                        config, options_.capture);
  e.created = absl::Now();
  e.expected.insert(pids.begin(), pids.end());
  e.trigger_reason = trigger_reason;
  active_.push_back(std::move(e));
  return id;
}

bool CaptureManager::ReadyLocked(const Entry& e, absl::Time now) const {
  const Capture& c = *e.capture;
  if (c.origin() == v1::CAPTURE_ORIGIN_WINDOW) {
    return c.AllProcessesDone() &&
           now - c.last_join() >= options_.window_linger;
  }
  const bool timed_out = now - e.created >= options_.command_start_timeout;
  if (c.num_processes() == 0) return e.expected.empty() || timed_out;
  return c.AllProcessesDone() && (e.expected.empty() || timed_out);
}

void CaptureManager::Finalize(Entry entry) {
  Capture& c = *entry.capture;
  CaptureResult r = c.Finish();
  v1::TraceInfo info;
  info.set_capture_id(r.capture_id);
  for (int64_t pid : r.pids) info.add_pids(pid);
  info.set_complete(r.complete);
  info.set_num_events(r.events_written);
  info.set_origin(r.origin);
  info.set_reason(entry.trigger_reason);
  // Every reason, so TraceInfo.error names each (the trace's metadata lists
  // them one by one).
  std::string error = absl::StrJoin(r.errors, "; ");
  if (r.pids.empty()) {
    error =
        "no probe started the capture (the selected probes disconnected "
        "or did not reach a step in time)";
  }
  if (r.has_file && r.status.ok() && r.ts_shift_ns != 0) {
    absl::Status shifted = store_->ShiftTimes(entry.temp_path, r.ts_shift_ns);
    if (!shifted.ok()) {
      error = absl::StrCat(error, error.empty() ? "" : "; ",
                           "events before the time base keep negative ts (",
                           shifted.message(), ")");
    }
  }
  if (r.has_file && r.status.ok()) {
    TraceStore::CommitRequest req;
    req.capture_id = r.capture_id;
    req.pids = r.pids;
    req.requested_name = r.requested_name;
    req.complete = r.complete;
    req.num_events = r.events_written;
    req.error = error;
    req.origin = r.origin;
    req.reason = entry.trigger_reason;
    absl::StatusOr<v1::TraceInfo> committed =
        store_->Commit(entry.temp_path, req);
    if (committed.ok()) {
      info = *committed;
      traces_written_.fetch_add(1);
      trace_bytes_written_.fetch_add(info.size_bytes());
      VP_LOG(INFO) << "trace " << info.id() << " written: " << info.file_name()
                   << ", " << info.num_events() << " events, "
                   << info.size_bytes() << " bytes"
                   << (info.complete() ? "" : " (incomplete)");
    } else {
      error = std::string(committed.status().message());
      c.AddError(error);
    }
  } else {
    if (!entry.temp_path.empty()) {
      store_->Abandon(entry.temp_path,
                      r.has_file ? r.status : absl::OkStatus());
    }
    if (!r.status.ok() && !r.pids.empty())
      error = std::string(r.status.message());
    VP_LOG(ERROR) << "capture " << r.capture_id
                  << ": no trace written: " << error;
  }
  info.set_error(error);
  if (info.id().empty()) captures_failed_.fetch_add(1);

  Recent recent;
  recent.status = c.Status();
  recent.status.set_finished(true);
  recent.status.set_trace_id(info.id());
  recent.status.set_error(error);
  recent.trace = info;
  MutexLock lock(&mu_);
  recent_.push_front(std::move(recent));
  while (recent_.size() > options_.max_recent) recent_.pop_back();
  --finalizing_;
  finished_.SignalAll();
}

void CaptureManager::FinalizerLoop() {
  MutexLock lock(&mu_);
  while (!stop_) {
    const absl::Time now = absl::Now();
    std::vector<Entry> ready;
    for (auto it = active_.begin(); it != active_.end();) {
      if (ReadyLocked(*it, now)) {
        ready.push_back(std::move(*it));
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    if (!ready.empty()) {
      finalizing_ += static_cast<int>(ready.size());
      mu_.Unlock();
      for (Entry& e : ready) Finalize(std::move(e));
      mu_.Lock();
      continue;
    }
    // Lingering windows need a timed re-check; 50 ms keeps the added
    // latency small.
    wake_.WaitWithTimeout(&mu_, absl::Milliseconds(50));
  }
}

std::optional<v1::TraceInfo> CaptureManager::Wait(const std::string& capture_id,
                                                  absl::Time deadline) {
  MutexLock lock(&mu_);
  while (true) {
    for (const Recent& r : recent_) {
      if (r.status.capture_id() == capture_id) return r.trace;
    }
    if (stop_ && active_.empty() && finalizing_ == 0) return std::nullopt;
    if (finished_.WaitWithDeadline(&mu_, deadline)) {
      // Timed out; one last look.
      for (const Recent& r : recent_) {
        if (r.status.capture_id() == capture_id) return r.trace;
      }
      return std::nullopt;
    }
  }
}

std::vector<v1::CaptureStatus> CaptureManager::Status() const {
  std::vector<std::shared_ptr<Capture>> active;
  std::vector<v1::CaptureStatus> out;
  {
    MutexLock lock(&mu_);
    for (const Entry& e : active_) active.push_back(e.capture);
    for (const Recent& r : recent_) out.push_back(r.status);
  }
  std::vector<v1::CaptureStatus> result;
  for (const auto& c : active) result.push_back(c->Status());
  result.insert(result.end(), out.begin(), out.end());
  return result;
}

void CaptureManager::Shutdown(absl::string_view reason) {
  std::vector<Entry> left;
  {
    MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
    wake_.Signal();
  }
  thread_.join();
  {
    MutexLock lock(&mu_);
    left = std::move(active_);
    active_.clear();
    finalizing_ += static_cast<int>(left.size());
  }
  for (Entry& e : left) {
    for (int64_t pid : e.capture->pids()) {
      e.capture->DisconnectProcess(pid, reason);
    }
    Finalize(std::move(e));
  }
}

}  // namespace vllm_profiler::collector
