// StepRing: the flight recorder of one process, an always-on, fixed-size
// record of its last steps (VLLM_PROFILER_FLIGHT=steps, the default).
//
// Each slot is one FlightStep, a plain struct with inline bounded storage:
// start and end, up to kMaxSpans child spans ("execute_model",
// "sample_tokens"), the batch shape, a few integer args, the error and the
// first kMaxRequestIdBytes of the request ids. All slots are allocated once
// at construction (capacity x sizeof(FlightStep) bytes, the memory bound);
// the step path never allocates, and the oldest step is overwritten.
//
// What it is for: the collector asks for the last N steps when a trigger
// fires (CopyLast, converted into trace events by AppendFlightEvents), and
// the sender thread streams compact summaries of the steps that ended
// (ForEachSince) so the collector sees step health without a capture.
//
// Threads and locking: Begin/End and the readers (CopyLast, ForEachSince,
// committed) must be called with the caller's step lock held
// (ProbeRuntime::control_mu_, which the step path takes anyway). The
// annotations of the open step (Shape, ArgInt, ArgStr, Error, SpanBegin,
// SpanEnd) take no lock: they only touch the open slot, which the readers
// never read, and the caller serialises them with Begin/End (the Python
// step model runs them in order, under the GIL).
//
// Failure: nothing here can fail; an annotation with no open step, or past
// a slot's bounds, is dropped.
#ifndef VLLM_PROFILER_PROBE_CORE_STEP_RING_H_
#define VLLM_PROFILER_PROBE_CORE_STEP_RING_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

struct FlightStep {
  static constexpr int kMaxSpans = 4;
  static constexpr int kMaxIntArgs = 6;
  static constexpr size_t kNameBytes = 24;
  static constexpr size_t kErrorBytes = 64;
  static constexpr size_t kMaxRequestIdBytes = 1024;

  struct Span {
    int64_t start_ns;
    int64_t end_ns;  // 0 while open.
    char name[kNameBytes];
  };
  struct IntArg {
    char key[kNameBytes];
    int64_t value;
  };

  int64_t step;
  int64_t start_ns;
  int64_t end_ns;
  int64_t shape[4];  // requests, tokens, prefill, decode; -1 = unknown.
  uint32_t tid;
  uint8_t num_spans;
  uint8_t num_int_args;
  uint8_t error_len;
  uint16_t request_ids_len;
  uint8_t open_mark_span;  // 1-based span that End closes (Mark 2), or 0.
  Span spans[kMaxSpans];
  IntArg int_args[kMaxIntArgs];
  char error[kErrorBytes];
  char request_ids[kMaxRequestIdBytes];
};

class StepRing {
 public:
  // Largest capacity accepted by the config (the bytes bound is checked
  // there against VLLM_PROFILER_MAX_BUFFER_MB).
  static constexpr uint32_t kMaxCapacity = 1u << 20;

  explicit StepRing(uint32_t capacity);
  StepRing(const StepRing&) = delete;
  StepRing& operator=(const StepRing&) = delete;

  uint32_t capacity() const { return capacity_; }
  static size_t BytesFor(uint32_t capacity) {
    return static_cast<size_t>(capacity) * sizeof(FlightStep);
  }

  // Step lock held. A Begin while a step is open abandons the open one.
  void Begin(int64_t step, int64_t ts_ns, uint32_t tid);
  // Step lock held. Commits the open step (no-op when none is open).
  void End(int64_t ts_ns);

  // Open-step annotations (no lock, see above).
  void Shape(const int64_t shape[4]);
  void ArgInt(const char* key, int64_t value);
  // Keeps "request_ids" (truncated); other string args are not kept.
  void ArgStr(const char* key, const char* value);
  void Error(const char* error);
  // Returns 1..kMaxSpans for SpanEnd, or 0 (no open step, or full).
  int SpanBegin(const char* name, int64_t ts_ns);
  void SpanEnd(int index, int64_t ts_ns);
  // The paired step's phases without span calls: 1 = execute_model
  // returned (span from the step's start), 2 = sample_tokens entered (span
  // until End).
  void Mark(int mark, int64_t ts_ns);

  // Readers, step lock held.
  // Steps committed so far (the next summary cursor).
  uint64_t committed() const { return committed_; }
  // Appends the last min(n, available) committed steps, oldest first.
  void CopyLast(size_t n, std::vector<FlightStep>* out) const;
  // Calls fn(const FlightStep&) for the steps committed after `*cursor`
  // that are still in the ring, oldest first, and moves the cursor to
  // committed(). Returns how many were overwritten before being seen.
  template <typename Fn>
  uint64_t ForEachSince(uint64_t* cursor, Fn fn) const;

 private:
  // Committed steps still readable (the open step's slot is excluded).
  uint64_t Readable() const;
  const FlightStep& At(uint64_t seq) const { return slots_[seq % capacity_]; }

  const uint32_t capacity_;
  std::unique_ptr<FlightStep[]> slots_;
  uint64_t committed_ = 0;  // Step lock.
  // The open slot, or null. Relaxed: set and read by the same caller
  // sequence (see the class comment); atomic only so that a misbehaving
  // caller is a stale pointer, never a torn one.
  std::atomic<FlightStep*> open_{nullptr};
};

template <typename Fn>
uint64_t StepRing::ForEachSince(uint64_t* cursor, Fn fn) const {
  const uint64_t readable = Readable();
  const uint64_t first_kept = committed_ - readable;
  uint64_t lost = 0;
  uint64_t from = *cursor;
  if (from < first_kept) {
    lost = first_kept - from;
    from = first_kept;
  }
  for (uint64_t s = from; s < committed_; ++s) fn(At(s));
  *cursor = committed_;
  return lost;
}

// Trace events for ring steps, as a capture would record them: one STEP
// event named `step_name` with its args, and PYTHON child spans. Strings
// are interned through `intern`. Returns the number of events added.
template <typename Intern>
size_t AppendFlightEvents(const std::vector<FlightStep>& steps,
                          std::string_view step_name, Intern intern,
                          v1::EventBatch* batch);

// A v1::StepSummary of `s`.
void FillStepSummary(const FlightStep& s, v1::StepSummary* out);

template <typename Intern>
size_t AppendFlightEvents(const std::vector<FlightStep>& steps,
                          std::string_view step_name, Intern intern,
                          v1::EventBatch* batch) {
  static constexpr const char* kShapeKeys[4] = {
      "num_scheduled_requests", "num_scheduled_tokens", "num_prefill_requests",
      "num_decode_requests"};
  size_t n = 0;
  for (const FlightStep& s : steps) {
    v1::Event* e = batch->add_events();
    e->set_kind(v1::EVENT_KIND_STEP);
    e->set_name_id(intern(step_name));
    e->set_start_ns(s.start_ns);
    e->set_duration_ns(s.end_ns > s.start_ns ? s.end_ns - s.start_ns : 0);
    e->set_tid(s.tid);
    e->set_step(s.step);
    for (int i = 0; i < 4; ++i) {
      if (s.shape[i] < 0) continue;
      v1::Arg* a = e->add_args();
      a->set_key_id(intern(kShapeKeys[i]));
      a->set_int_value(s.shape[i]);
    }
    for (int i = 0; i < s.num_int_args; ++i) {
      v1::Arg* a = e->add_args();
      a->set_key_id(intern(std::string_view(s.int_args[i].key)));
      a->set_int_value(s.int_args[i].value);
    }
    if (s.request_ids_len > 0) {
      v1::Arg* a = e->add_args();
      a->set_key_id(intern("request_ids"));
      a->set_string_id(
          intern(std::string_view(s.request_ids, s.request_ids_len)));
    }
    if (s.error_len > 0) {
      v1::Arg* a = e->add_args();
      a->set_key_id(intern("error"));
      a->set_string_id(intern(std::string_view(s.error, s.error_len)));
    }
    v1::Arg* a = e->add_args();
    a->set_key_id(intern("flight_recorder"));
    a->set_bool_value(true);
    ++n;
    for (int i = 0; i < s.num_spans; ++i) {
      const FlightStep::Span& sp = s.spans[i];
      if (sp.end_ns == 0) continue;  // Never ended (the step raised).
      v1::Event* c = batch->add_events();
      c->set_kind(v1::EVENT_KIND_PYTHON);
      c->set_name_id(intern(std::string_view(sp.name)));
      c->set_start_ns(sp.start_ns);
      c->set_duration_ns(sp.end_ns > sp.start_ns ? sp.end_ns - sp.start_ns : 0);
      c->set_tid(s.tid);
      ++n;
    }
  }
  return n;
}

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_STEP_RING_H_
