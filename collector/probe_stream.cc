#include "collector/probe_stream.h"

#include <time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collector/step_summaries.h"
#include "common/logging.h"
#include "google/protobuf/util/message_differencer.h"

namespace vllm_profiler::collector {
namespace {

constexpr uint32_t kProtocolVersion = 1;
constexpr size_t kMaxCaptureIdBytes = 128;

std::string Quote(absl::string_view s) { return QuoteForMessage(s); }

int64_t NowNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

absl::Status MalformedMessageError(size_t wire_bytes) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed ProbeMessage of ", wire_bytes,
                   " bytes: not a valid protobuf encoding"));
}

absl::Status ParseProbeMessage(absl::string_view bytes, v1::ProbeMessage* out) {
  if (bytes.size() > INT32_MAX ||
      !out->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return MalformedMessageError(bytes.size());
  }
  return absl::OkStatus();
}

absl::string_view PayloadName(const v1::ProbeMessage& message) {
  switch (message.payload_case()) {
    case v1::ProbeMessage::kHello:
      return "hello";
    case v1::ProbeMessage::kBatch:
      return "batch";
    case v1::ProbeMessage::kCaptureStarted:
      return "capture_started";
    case v1::ProbeMessage::kCaptureFinished:
      return "capture_finished";
    case v1::ProbeMessage::kState:
      return "state";
    case v1::ProbeMessage::kStepSummaries:
      return "step_summaries";
    case v1::ProbeMessage::PAYLOAD_NOT_SET:
      break;
  }
  return "a message with no payload";
}

ProbeStream::ProbeStream(Options options) : options_(options) {
  // Until a clock pair arrives, assume the probe shares our host's clocks.
  mono_to_wall_ns_ = NowNs(CLOCK_REALTIME) - NowNs(CLOCK_MONOTONIC);
}

bool ProbeStream::HasString(uint32_t id) const {
  if (id < dense_defined_.size()) return dense_defined_[id];
  return sparse_.contains(id);
}

absl::string_view ProbeStream::ThreadName(uint32_t tid) const {
  auto it = thread_names_.find(tid);
  if (it == thread_names_.end()) return {};
  return String(it->second);
}

absl::Status ProbeStream::Accept(const v1::ProbeMessage& message,
                                 size_t wire_bytes) {
  if (!has_hello_) {
    if (message.payload_case() != v1::ProbeMessage::kHello) {
      return absl::InvalidArgumentError(absl::StrCat(
          "first message must be Hello, got ", PayloadName(message)));
    }
    return AcceptHello(message.hello());
  }
  switch (message.payload_case()) {
    case v1::ProbeMessage::kHello:
      return absl::InvalidArgumentError("Hello sent twice on one stream");
    case v1::ProbeMessage::kBatch:
      return AcceptBatch(message.batch(), wire_bytes);
    case v1::ProbeMessage::kCaptureStarted:
      return AcceptCaptureStarted(message.capture_started());
    case v1::ProbeMessage::kCaptureFinished:
      return AcceptCaptureFinished(message.capture_finished());
    case v1::ProbeMessage::kState:
      return AcceptState(message.state());
    case v1::ProbeMessage::kStepSummaries:
      if (wire_bytes > options_.max_batch_bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "StepSummaries of ", wire_bytes, " bytes exceeds the limit of ",
            options_.max_batch_bytes));
      }
      return ValidateStepSummaries(message.step_summaries());
    case v1::ProbeMessage::PAYLOAD_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "message with no payload (unknown field or newer protocol?)");
}

absl::Status ProbeStream::AcceptCaptureStarted(
    const v1::CaptureStarted& started) {
  const std::string& id = started.capture_id();
  if (id.empty()) {
    return absl::InvalidArgumentError("capture_started has no capture_id");
  }
  if (id.size() > kMaxCaptureIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("capture_started.capture_id is ", id.size(),
                     " bytes, over the limit of ", kMaxCaptureIdBytes));
  }
  if (open_captures_.contains(id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("capture_started for ", Quote(id),
                     ", which is already open on this stream"));
  }
  if (open_captures_.size() >= options_.max_open_captures) {
    return absl::InvalidArgumentError(
        absl::StrCat("capture_started for ", Quote(id), ": already ",
                     open_captures_.size(), " captures open"));
  }
  if (started.start_ns() < 0 || started.start_ns() >= kMaxTimestampNs) {
    return absl::InvalidArgumentError(
        absl::StrCat("capture_started for ", Quote(id),
                     " has start_ns out of range: ", started.start_ns()));
  }
  if (started.has_clock()) {
    absl::Status s = CheckClock(started.clock(), "capture_started.clock");
    if (!s.ok()) return s;
    UseClock(started.clock());
  }
  open_captures_.insert(id);
  return absl::OkStatus();
}

absl::Status ProbeStream::AcceptCaptureFinished(
    const v1::CaptureFinished& finished) {
  if (!open_captures_.contains(finished.capture_id())) {
    return absl::InvalidArgumentError(
        absl::StrCat("capture_finished for ", Quote(finished.capture_id()),
                     ", which is not open on this stream"));
  }
  if (finished.end_ns() < 0 || finished.end_ns() >= kMaxTimestampNs) {
    return absl::InvalidArgumentError(
        absl::StrCat("capture_finished for ", Quote(finished.capture_id()),
                     " has end_ns out of range: ", finished.end_ns()));
  }
  if (finished.has_clock()) {
    absl::Status s = CheckClock(finished.clock(), "capture_finished.clock");
    if (!s.ok()) return s;
    UseClock(finished.clock());
  }
  open_captures_.erase(finished.capture_id());
  return absl::OkStatus();
}

absl::Status ProbeStream::AcceptState(const v1::ProbeState& state) {
  constexpr size_t kMaxText = 1024, kMaxName = 256, kMaxTargets = 16;
  const struct {
    const std::string& value;
    size_t max;
    const char* name;
  } texts[] = {{state.idle_reason(), kMaxText, "idle_reason"},
               {state.process_name(), kMaxName, "process_name"},
               {state.op_source(), kMaxName, "op_source"},
               {state.op_source_detail(), kMaxText, "op_source_detail"}};
  for (const auto& t : texts) {
    if (t.value.size() > t.max) {
      return absl::InvalidArgumentError(
          absl::StrCat("state.", t.name, " is ", t.value.size(),
                       " bytes, over the limit of ", t.max));
    }
  }
  if (static_cast<size_t>(state.wrapped_targets_size()) > kMaxTargets) {
    return absl::InvalidArgumentError(
        absl::StrCat("state.wrapped_targets has ", state.wrapped_targets_size(),
                     " entries, over the limit of ", kMaxTargets));
  }
  for (const std::string& t : state.wrapped_targets()) {
    if (t.size() > kMaxName) {
      return absl::InvalidArgumentError(
          absl::StrCat("state.wrapped_targets entry is ", t.size(),
                       " bytes, over the limit of ", kMaxName));
    }
  }
  for (int32_t v : {state.rank(), state.local_rank(), state.world_size()}) {
    if (v < -1 || v > (1 << 24)) {
      return absl::InvalidArgumentError(
          absl::StrCat("state rank/local_rank/world_size out of range: ", v));
    }
  }
  state_ = state;
  if (!state.process_name().empty()) {
    hello_.set_process_name(state.process_name());
  }
  // 0 is "not set" on the wire for the proto3 ints: only >0 ranks of an
  // older probe would be lost, and rank 0 comes with world_size > 0.
  if (state.world_size() > 0 || state.rank() > 0) {
    hello_.set_rank(state.rank());
    hello_.set_local_rank(state.local_rank());
    hello_.set_world_size(state.world_size());
  }
  return absl::OkStatus();
}

absl::Status ProbeStream::CheckClock(const v1::ClockPair& clock,
                                     absl::string_view where) {
  if (clock.realtime_ns() < 0 || clock.realtime_ns() >= kMaxTimestampNs ||
      clock.monotonic_ns() < 0 || clock.monotonic_ns() >= kMaxTimestampNs) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, " out of range: realtime_ns ", clock.realtime_ns(),
                     ", monotonic_ns ", clock.monotonic_ns()));
  }
  return absl::OkStatus();
}

void ProbeStream::UseClock(const v1::ClockPair& clock) {
  // An all-zero pair means "not set": keep the current mapping.
  if (clock.realtime_ns() == 0 && clock.monotonic_ns() == 0) return;
  mono_to_wall_ns_ = clock.realtime_ns() - clock.monotonic_ns();
}

absl::Status ProbeStream::AcceptHello(const v1::Hello& hello) {
  if (hello.protocol_version() != kProtocolVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported protocol_version ", hello.protocol_version(),
                     "; this collector speaks ", kProtocolVersion));
  }
  if (hello.pid() <= 0 || hello.pid() > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Hello.pid must be a positive process id, got ", hello.pid()));
  }
  if (hello.has_clock()) {
    absl::Status s = CheckClock(hello.clock(), "Hello.clock");
    if (!s.ok()) return s;
    UseClock(hello.clock());
  }
  hello_ = hello;
  has_hello_ = true;
  return absl::OkStatus();
}

void ProbeStream::Define(uint32_t id, const std::string& value) {
  if (id < kDenseLimit) {
    if (id >= dense_.size()) {
      size_t n = std::max<size_t>(id + 1, dense_.size() * 2);
      n = std::min<size_t>(n, kDenseLimit);
      dense_.resize(n);
      dense_defined_.resize(n, false);
    }
    if (!dense_defined_[id]) {
      dense_[id] = value;
      dense_defined_[id] = true;
      string_bytes_ += value.size();
    }
    return;
  }
  auto [it, inserted] = sparse_.try_emplace(id, value);
  if (inserted) string_bytes_ += value.size();
}

absl::Status ProbeStream::AcceptBatch(const v1::EventBatch& batch,
                                      size_t wire_bytes) {
  const uint64_t seq = batch.sequence();
  if (wire_bytes > options_.max_batch_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch ", seq, " is ", wire_bytes, " bytes, over the limit of ",
        options_.max_batch_bytes, " bytes (Welcome.max_batch_bytes)"));
  }
  if (!open_captures_.contains(batch.capture_id())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch ", seq, " is for capture ", Quote(batch.capture_id()),
        ", which is not open on this stream"));
  }
  // New strings: checked against the table and each other, applied only
  // once the whole batch is valid.
  absl::flat_hash_map<uint32_t, std::string> pending;
  absl::flat_hash_map<uint32_t, const v1::InputSignature*> pending_signatures;
  absl::Status s = CheckBatchStrings(batch, &pending);
  if (s.ok()) s = CheckBatchSignatures(batch, pending, &pending_signatures);
  if (s.ok()) s = CheckBatchThreads(batch, pending);
  for (int i = 0; s.ok() && i < batch.events_size(); ++i) {
    s = CheckEvent(batch, i, batch.events(i), pending, pending_signatures);
  }
  if (!s.ok()) return s;

  // Valid: apply.
  for (auto& [id, value] : pending) Define(id, value);
  for (const v1::InputSignature& sig : batch.input_signatures()) {
    auto [it, inserted] = signatures_.try_emplace(sig.id(), sig);
    if (inserted) signature_bytes_ += it->second.SpaceUsedLong();
  }
  for (const v1::ThreadInfo& t : batch.threads()) {
    thread_names_[t.tid()] = t.name_id();
  }
  if (have_next_sequence_ && seq > next_sequence_) {
    sequence_gaps_ += seq - next_sequence_;
  }
  have_next_sequence_ = true;
  next_sequence_ = seq + 1;
  ++batches_;
  events_ += static_cast<uint64_t>(batch.events_size());
  return absl::OkStatus();
}

namespace {

// A batch that would grow one of the stream's tables past its bound.
absl::Status OverLimit(uint64_t seq, absl::string_view table, uint64_t bytes,
                       uint64_t limit) {
  return absl::InvalidArgumentError(
      absl::StrCat("batch ", seq, " grows ", table, " of this stream to ",
                   bytes, " bytes, over the limit of ", limit));
}

}  // namespace

absl::Status ProbeStream::CheckBatchStrings(
    const v1::EventBatch& batch,
    absl::flat_hash_map<uint32_t, std::string>* pending) const {
  const uint64_t seq = batch.sequence();
  uint64_t new_bytes = 0;
  for (const v1::InternedString& s : batch.strings()) {
    if (s.id() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch ", seq, " defines string id 0, which is reserved"));
    }
    absl::string_view old;
    bool known = false;
    if (HasString(s.id())) {
      old = String(s.id());
      known = true;
    } else if (auto it = pending->find(s.id()); it != pending->end()) {
      old = it->second;
      known = true;
    }
    if (known) {
      if (old != s.value()) {
        return absl::InvalidArgumentError(
            absl::StrCat("batch ", seq, " redefines string id ", s.id(),
                         " from ", Quote(old), " to ", Quote(s.value())));
      }
      continue;
    }
    new_bytes += s.value().size();
    pending->emplace(s.id(), s.value());
  }
  if (string_bytes_ + new_bytes > options_.max_string_bytes) {
    return OverLimit(seq, "the string table", string_bytes_ + new_bytes,
                     options_.max_string_bytes);
  }
  return absl::OkStatus();
}

absl::Status ProbeStream::CheckBatchSignatures(
    const v1::EventBatch& batch,
    const absl::flat_hash_map<uint32_t, std::string>& pending_strings,
    absl::flat_hash_map<uint32_t, const v1::InputSignature*>* pending) const {
  const uint64_t seq = batch.sequence();
  uint64_t new_bytes = 0;
  for (const v1::InputSignature& sig : batch.input_signatures()) {
    if (sig.id() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch ", seq, " defines input signature id 0, which is reserved"));
    }
    if (sig.dtype_ids_size() != 0 &&
        sig.dtype_ids_size() != sig.shapes_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch ", seq, " input signature ", sig.id(), " has ",
          sig.shapes_size(), " shapes but ", sig.dtype_ids_size(), " dtypes"));
    }
    for (uint32_t id : sig.dtype_ids()) {
      if (id != 0 && !HasString(id) && !pending_strings.contains(id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("batch ", seq, " input signature ", sig.id(),
                         " refers to unknown string id ", id));
      }
    }
    const v1::InputSignature* old = Signature(sig.id());
    if (old == nullptr) {
      if (auto it = pending->find(sig.id()); it != pending->end()) {
        old = it->second;
      }
    }
    if (old != nullptr) {
      if (!google::protobuf::util::MessageDifferencer::Equals(*old, sig)) {
        return absl::InvalidArgumentError(
            absl::StrCat("batch ", seq, " redefines input signature ", sig.id(),
                         " with other inputs"));
      }
      continue;
    }
    pending->emplace(sig.id(), &sig);
    // Memory, not wire bytes: an empty shape is 2 bytes on the wire and a
    // whole message in memory.
    new_bytes += sig.SpaceUsedLong();
  }
  if (signature_bytes_ + new_bytes > options_.max_signature_bytes) {
    return OverLimit(seq, "the input signatures", signature_bytes_ + new_bytes,
                     options_.max_signature_bytes);
  }
  return absl::OkStatus();
}

absl::Status ProbeStream::CheckBatchThreads(
    const v1::EventBatch& batch,
    const absl::flat_hash_map<uint32_t, std::string>& pending) const {
  const uint64_t seq = batch.sequence();
  size_t new_threads = 0;
  for (const v1::ThreadInfo& t : batch.threads()) {
    const uint32_t id = t.name_id();
    if (id != 0 && !HasString(id) && !pending.contains(id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch ", seq, " thread ", t.tid(),
                       " refers to unknown string id ", t.name_id()));
    }
    if (!thread_names_.contains(t.tid())) ++new_threads;
  }
  if (thread_names_.size() + new_threads > options_.max_threads) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch ", seq, " announces more than ",
                     options_.max_threads, " threads on this stream"));
  }
  return absl::OkStatus();
}

absl::Status ProbeStream::CheckEvent(
    const v1::EventBatch& batch, int index, const v1::Event& event,
    const absl::flat_hash_map<uint32_t, std::string>& pending,
    const absl::flat_hash_map<uint32_t, const v1::InputSignature*>&
        pending_signatures) const {
  auto where = [&]() {
    return absl::StrCat("batch ", batch.sequence(), " event ", index);
  };
  auto known = [&](uint32_t id) {
    return id == 0 || HasString(id) || pending.contains(id);
  };
  auto unknown = [&](uint32_t id, absl::string_view field) {
    return absl::InvalidArgumentError(absl::StrCat(
        where(), " refers to unknown string id ", id, " (", field, ")"));
  };
  const int kind = event.kind();
  if (kind == v1::EVENT_KIND_UNSPECIFIED || !v1::EventKind_IsValid(kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where(), " has unknown kind ", kind));
  }
  if (event.start_ns() < 0 || event.start_ns() >= kMaxTimestampNs) {
    return absl::InvalidArgumentError(absl::StrCat(
        where(), " has start_ns out of range: ", event.start_ns()));
  }
  if (event.duration_ns() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        where(), " has negative duration_ns ", event.duration_ns()));
  }
  if (event.duration_ns() >= kMaxTimestampNs) {
    return absl::InvalidArgumentError(absl::StrCat(
        where(), " has duration_ns out of range: ", event.duration_ns()));
  }
  if (!known(event.name_id())) return unknown(event.name_id(), "name_id");
  if (!known(event.category_id())) {
    return unknown(event.category_id(), "category_id");
  }
  for (uint32_t id : event.input_dtype_ids()) {
    if (!known(id)) return unknown(id, "input_dtype_ids");
  }
  if (const uint32_t sig = event.input_signature_id(); sig != 0) {
    if (Signature(sig) == nullptr && !pending_signatures.contains(sig)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), " refers to unknown input signature ", sig));
    }
    if (event.input_shapes_size() > 0 || event.input_dtype_ids_size() > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), " has both input_signature_id and inline inputs"));
    }
  }
  for (const v1::Arg& arg : event.args()) {
    if (arg.key_id() == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), " has an arg without key_id"));
    }
    if (!known(arg.key_id())) return unknown(arg.key_id(), "args.key_id");
    if (arg.value_case() == v1::Arg::kStringId && !known(arg.string_id())) {
      return unknown(arg.string_id(), "args.string_id");
    }
  }
  return absl::OkStatus();
}

}  // namespace vllm_profiler::collector
