#include "probe/core/step_ring.h"

#include <algorithm>
#include <cstring>

#include "probe/core/config.h"

namespace vllm_profiler::probe {
namespace {

static_assert(sizeof(FlightStep) <= kFlightStepBytes,
              "the config's ring bound assumes this slot size");

// Copies at most cap - 1 bytes of `s` and a NUL; returns the length.
size_t CopyBounded(char* dst, size_t cap, const char* s) {
  if (s == nullptr) {
    dst[0] = '\0';
    return 0;
  }
  const size_t n = strnlen(s, cap - 1);
  std::memcpy(dst, s, n);
  dst[n] = '\0';
  return n;
}

}  // namespace

StepRing::StepRing(uint32_t capacity)
    : capacity_(std::clamp<uint32_t>(capacity, 2, kMaxCapacity)),
      slots_(new FlightStep[capacity_]) {}

void StepRing::Begin(int64_t step, int64_t ts_ns, uint32_t tid) {
  FlightStep* s = &slots_[committed_ % capacity_];
  s->step = step;
  s->start_ns = ts_ns;
  s->end_ns = 0;
  for (int64_t& v : s->shape) v = -1;
  s->tid = tid;
  s->num_spans = 0;
  s->num_int_args = 0;
  s->error_len = 0;
  s->request_ids_len = 0;
  s->open_mark_span = 0;
  open_.store(s, std::memory_order_relaxed);
}

void StepRing::End(int64_t ts_ns) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr) return;
  s->end_ns = std::max(ts_ns, s->start_ns);
  if (s->open_mark_span > 0) {
    FlightStep::Span& sp = s->spans[s->open_mark_span - 1];
    sp.end_ns = std::max(s->end_ns, sp.start_ns);
  }
  open_.store(nullptr, std::memory_order_relaxed);
  ++committed_;
}

void StepRing::Shape(const int64_t shape[4]) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr) return;
  std::memcpy(s->shape, shape, sizeof(s->shape));
}

void StepRing::ArgInt(const char* key, int64_t value) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr || key == nullptr ||
      s->num_int_args >= FlightStep::kMaxIntArgs) {
    return;
  }
  FlightStep::IntArg& a = s->int_args[s->num_int_args++];
  CopyBounded(a.key, sizeof(a.key), key);
  a.value = value;
}

void StepRing::ArgStr(const char* key, const char* value) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr || key == nullptr || std::strcmp(key, "request_ids") != 0) {
    return;
  }
  // Request ids are comma-joined: cut at the last whole id that fits.
  size_t n = CopyBounded(s->request_ids, sizeof(s->request_ids), value);
  if (value != nullptr && value[n] != '\0') {
    while (n > 0 && s->request_ids[n - 1] != ',') --n;
    if (n > 0) --n;  // Drop the trailing comma.
  }
  s->request_ids_len = static_cast<uint16_t>(n);
}

void StepRing::Error(const char* error) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr) return;
  s->error_len = static_cast<uint8_t>(CopyBounded(
      s->error, sizeof(s->error), error == nullptr ? "error" : error));
}

int StepRing::SpanBegin(const char* name, int64_t ts_ns) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr || s->num_spans >= FlightStep::kMaxSpans) return 0;
  FlightStep::Span& sp = s->spans[s->num_spans++];
  sp.start_ns = ts_ns;
  sp.end_ns = 0;
  CopyBounded(sp.name, sizeof(sp.name), name == nullptr ? "span" : name);
  return s->num_spans;
}

void StepRing::SpanEnd(int index, int64_t ts_ns) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr || index < 1 || index > s->num_spans) return;
  FlightStep::Span& sp = s->spans[index - 1];
  sp.end_ns = std::max(ts_ns, sp.start_ns);
}

void StepRing::Mark(int mark, int64_t ts_ns) {
  FlightStep* s = open_.load(std::memory_order_relaxed);
  if (s == nullptr || s->num_spans >= FlightStep::kMaxSpans) return;
  FlightStep::Span& sp = s->spans[s->num_spans++];
  if (mark == 1) {
    sp.start_ns = s->start_ns;
    sp.end_ns = std::max(ts_ns, s->start_ns);
    CopyBounded(sp.name, sizeof(sp.name), "execute_model");
  } else {
    sp.start_ns = std::max(ts_ns, s->start_ns);
    sp.end_ns = 0;  // Closed by End.
    CopyBounded(sp.name, sizeof(sp.name), "sample_tokens");
    s->open_mark_span = s->num_spans;
  }
}

uint64_t StepRing::Readable() const {
  const bool open = open_.load(std::memory_order_relaxed) != nullptr;
  const uint64_t slots = open ? capacity_ - 1 : capacity_;
  return std::min<uint64_t>(committed_, slots);
}

void StepRing::CopyLast(size_t n, std::vector<FlightStep>* out) const {
  const uint64_t take = std::min<uint64_t>(n, Readable());
  out->reserve(out->size() + take);
  for (uint64_t s = committed_ - take; s < committed_; ++s) {
    out->push_back(At(s));
  }
}

void FillStepSummary(const FlightStep& s, v1::StepSummary* out) {
  out->set_step(s.step);
  out->set_start_ns(s.start_ns);
  out->set_duration_ns(s.end_ns > s.start_ns ? s.end_ns - s.start_ns : 0);
  out->set_num_requests(s.shape[0]);
  out->set_num_tokens(s.shape[1]);
  out->set_num_prefill(s.shape[2]);
  out->set_num_decode(s.shape[3]);
  if (s.error_len > 0) out->set_error(std::string(s.error, s.error_len));
}

}  // namespace vllm_profiler::probe
