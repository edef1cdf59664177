// ProbeRuntime's flight recorder part: child spans into the ring, the
// ring's snapshot at a triggered capture's start, the step summaries, and
// at level gpu the tracer's flight recording into the GPU ring. See
// step_ring.h and gpu_ring.h for the rings and probe_runtime.h for the
// threads.
#include <algorithm>
#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "probe/core/log.h"
#include "probe/core/probe_runtime.h"

namespace vllm_profiler::probe {
namespace {

// A span id carries the ring's span index (1..7) in its top three bits and
// the Recorder's id below: Recorder span ids are tid << 32 | counter, and a
// tid is below 2^22 (pid_max), so those bits are free.
constexpr int kRingShift = 61;
constexpr uint64_t kRecorderMask = (uint64_t{1} << kRingShift) - 1;
// Steps per batch of a ring dump (a step is at most ~6 events and ~1 KiB of
// request ids): keeps batches well under Welcome.max_batch_bytes.
constexpr size_t kDumpStepsPerBatch = 256;

// Batches of a ring dump's GPU events (as DrainGpuEvents).
constexpr int kDumpGpuEventsPerBatch = 8192;
// A flight recording that could not start is tried again this much later.
constexpr int64_t kFlightGpuRetryNs = 10'000'000'000;

}  // namespace

void ProbeRuntime::FlightGpuLocked(int64_t now_ns) {
  // A capture with GPU activity holds the tracer; it resumes after.
  if (gpu_active_.load(std::memory_order_relaxed)) return;
  // Waiting to try again (no CUDA yet): not even the gate is asked.
  if (!flight_gpu_on_ && now_ns < flight_gpu_retry_ns_) return;
  if (gpu_gate_ != nullptr) {
    char reason[512] = {0};
    if (gpu_gate_(reason, static_cast<int32_t>(sizeof(reason) - 1)) == 0) {
      // Another profiler (torch.profiler) runs: it has CUPTI to itself.
      if (flight_gpu_on_) {
        gpu_tracer_->Yield();
        flight_gpu_on_ = false;
      }
      if (!flight_gpu_yielded_) {
        flight_gpu_yielded_ = true;
        reason[sizeof(reason) - 1] = '\0';
        std::string why(reason);
        why = why.substr(0, why.find(';'));
        ProbeLog(ProbeLogLevel::kInfo,
                 absl::StrCat("flight recorder: GPU records paused while "
                              "another profiler uses CUPTI (",
                              why.empty() ? "the GPU gate said so" : why,
                              "); steps are still kept"));
      }
      return;
    }
  }
  if (flight_gpu_on_) return;
  absl::Status s = gpu_tracer_->StartFlight(flight_sink_.get());
  if (s.ok()) {
    flight_gpu_on_ = true;
    if (flight_gpu_yielded_) {
      flight_gpu_yielded_ = false;
      ProbeLog(ProbeLogLevel::kInfo, "flight recorder: GPU records resumed");
    }
  } else {
    // The tracer logs the reason once.
    flight_gpu_retry_ns_ = now_ns + kFlightGpuRetryNs;
  }
}

void ProbeRuntime::StopFlightGpuLocked() {
  if (!flight_gpu_on_) return;
  flight_gpu_on_ = false;
  gpu_tracer_->Stop();  // Flushes into the GPU ring.
}

uint64_t ProbeRuntime::SpanBegin(const char* name) {
  const uint64_t rec = recorder_.SpanBegin(name);
  if (ring_ == nullptr) return rec;
  const int idx = ring_->SpanBegin(name, clock_->MonotonicNs());
  return (rec & kRecorderMask) | (static_cast<uint64_t>(idx) << kRingShift);
}

void ProbeRuntime::SpanEnd(uint64_t span_id) {
  const uint64_t rec = span_id & kRecorderMask;
  if (rec != 0) recorder_.SpanEnd(rec);
  const int idx = static_cast<int>(span_id >> kRingShift);
  if (idx != 0 && ring_ != nullptr) ring_->SpanEnd(idx, clock_->MonotonicNs());
}

void ProbeRuntime::StepBatch(const int64_t batch[7], const char* request_ids,
                             int64_t request_ids_total) {
  if (recorder_.capturing()) {
    StepAnnotate(batch[0], batch[1], batch[2], batch[3]);
    static constexpr const char* kKeys[3] = {
        "num_new_requests", "num_resumed_requests", "num_finished_requests"};
    for (int i = 0; i < 3; ++i) {
      if (batch[4 + i] >= 0) StepArgInt(kKeys[i], batch[4 + i]);
    }
    if (request_ids != nullptr) {
      StepArgStr("request_ids", request_ids);
      StepArgInt("request_ids_total", request_ids_total);
    }
    return;
  }
  if (ring_ == nullptr) return;
  ring_->Shape(batch);
  static constexpr const char* kKeys[3] = {
      "num_new_requests", "num_resumed_requests", "num_finished_requests"};
  for (int i = 0; i < 3; ++i) {
    if (batch[4 + i] >= 0) ring_->ArgInt(kKeys[i], batch[4 + i]);
  }
  if (request_ids != nullptr) {
    ring_->ArgStr("request_ids", request_ids);
    ring_->ArgInt("request_ids_total", request_ids_total);
  }
}

void ProbeRuntime::StepMark(int32_t mark) {
  if (ring_ == nullptr) return;
  ring_->Mark(mark, clock_->MonotonicNs());
}

void ProbeRuntime::StepEndMarked(int64_t execute_end_ns,
                                 int64_t sample_begin_ns, const char* error) {
  if (ring_ != nullptr) {
    if (execute_end_ns > 0) ring_->Mark(1, execute_end_ns);
    if (sample_begin_ns > 0) ring_->Mark(2, sample_begin_ns);
  }
  if (error != nullptr) {
    StepEndError(error);
  } else {
    StepEnd();
  }
}

std::vector<FlightStep> ProbeRuntime::FlightStepsForTest() const {
  std::vector<FlightStep> out;
  MutexLock lock(&control_mu_);
  if (ring_ != nullptr) ring_->CopyLast(ring_->capacity(), &out);
  return out;
}

void ProbeRuntime::NoteFlightDumpLocked(const v1::StartCaptureCommand& cmd) {
  if (!cmd.has_flight() || ring_ == nullptr) return;
  dump_capture_id_ = cmd.capture_id();
  pending_dump_ = cmd.flight();
}

void ProbeRuntime::SnapshotRingLocked(const CaptureSpec& spec,
                                      uint64_t generation) {
  if (ring_ == nullptr || dump_capture_id_.empty() ||
      dump_capture_id_ != spec.capture_id) {
    return;
  }
  // One allocation per triggered capture, on the step that starts it.
  ring_dump_ = RingDump{generation, std::move(pending_dump_), {}};
  ring_->CopyLast(ring_dump_.dump.pre_steps(), &ring_dump_.steps);
  dump_capture_id_.clear();
  pending_dump_.Clear();
}

void ProbeRuntime::SendRingDump(uint64_t generation) {
  RingDump dump;
  {
    MutexLock lock(&control_mu_);
    if (ring_dump_.generation != generation) return;
    dump = std::move(ring_dump_);
    ring_dump_ = RingDump{};
  }
  std::string step_name;
  {
    MutexLock lock(&names_mu_);
    step_name = step_name_;
  }
  auto intern = [this](std::string_view v) { return strings_.Intern(v); };
  v1::ProbeMessage msg;
  for (size_t i = 0; i < dump.steps.size(); i += kDumpStepsPerBatch) {
    const size_t end = std::min(dump.steps.size(), i + kDumpStepsPerBatch);
    std::vector<FlightStep> part(dump.steps.begin() + i,
                                 dump.steps.begin() + end);
    send_.events_sent +=
        AppendFlightEvents(part, step_name, intern, msg.mutable_batch());
    SendBatch(&msg);
  }
  size_t gpu_events = 0;
  if (gpu_ring_ != nullptr && !dump.steps.empty()) {
    // The GPU records that fall in the dumped steps' time range, as the
    // tracer converted them (a capture's events: stream tracks, names).
    std::vector<v1::Event> gpu;
    gpu_ring_->CopyRange(dump.steps.front().start_ns, dump.steps.back().end_ns,
                         &gpu);
    gpu_events = gpu.size();
    v1::EventBatch* batch = msg.mutable_batch();
    for (v1::Event& e : gpu) {
      *batch->add_events() = std::move(e);
      ++send_.events_sent;
      if (batch->events_size() >= kDumpGpuEventsPerBatch) SendBatch(&msg);
    }
    SendBatch(&msg);
  }
  const v1::FlightDump& d = dump.dump;
  if (!d.marker_name().empty()) {
    uint32_t tid = dump.steps.empty() ? 0 : dump.steps.back().tid;
    for (const FlightStep& s : dump.steps) {
      if (s.step == d.marker_step()) tid = s.tid;
    }
    v1::Event* e = msg.mutable_batch()->add_events();
    e->set_kind(v1::EVENT_KIND_INSTANT);
    e->set_name_id(intern(d.marker_name()));
    e->set_start_ns(std::max<int64_t>(0, d.marker_ns()));
    e->set_tid(tid);
    e->set_step(d.marker_step());
    ++send_.events_sent;
    SendBatch(&msg);
  }
  std::string gpu_note;
  if (gpu_ring_ != nullptr) {
    const GpuRing::Stats g = gpu_ring_->stats();
    gpu_note = absl::StrCat(
        " and ", gpu_events, " GPU events (ring: ", g.records, " events, ",
        g.used_bytes, " of ", gpu_ring_->capacity_bytes(), " bytes, ",
        g.overwritten, " overwritten, ", flight_sink_->records_dropped(),
        " dropped by CUPTI)");
  }
  ProbeLog(ProbeLogLevel::kDebug,
           absl::StrCat("flight recorder: sent ", dump.steps.size(), " steps",
                        gpu_note, " before capture ", send_.capture_id));
}

void ProbeRuntime::MaybeSendStepSummaries() {
  if (ring_ == nullptr || stream_ == nullptr) return;
  const int64_t now = clock_->MonotonicNs();
  if (now < next_summary_ns_) return;
  next_summary_ns_ = now + absl::ToInt64Nanoseconds(options_.summary_interval);
  v1::ProbeMessage m;
  v1::StepSummaries* out = m.mutable_step_summaries();
  {
    // A few hundred small messages at most (one interval of steps): the
    // step path waits at most that long for control_mu_, once per interval.
    MutexLock lock(&control_mu_);
    out->set_steps_not_summarized(ring_->ForEachSince(
        &summary_cursor_,
        [out](const FlightStep& s) { FillStepSummary(s, out->add_steps()); }));
  }
  if (out->steps_size() == 0 && out->steps_not_summarized() == 0) return;
  Send(m);
}

}  // namespace vllm_profiler::probe
