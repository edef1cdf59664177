// Per-stream validation and decoding state of one probe connection.
//
// A ProbeStream sees every ProbeMessage of one ProbeService.Connect stream,
// in order, and checks it before anything is written to a trace: the first
// message must be a Hello, batches must stay under the size limit, refer to
// a capture opened on this stream, and use only string ids and input
// signatures defined earlier (in this batch or a previous one), events
// must have a known kind, a
// non-negative duration and timestamps in range. On success it keeps the
// stream's interning table, thread names, open captures and clock mapping,
// which the capture writer then reads through the accessors.
//
// Every error is an INVALID_ARGUMENT whose message names the problem (the
// batch sequence, event index, string id...), so a probe author can act on
// it; the caller ends the stream with it. A ProbeStream never crashes on any
// input (fuzzed by probe_stream_fuzz).
//
// Thread safety: none; the stream's reader thread owns it. Accessors may be
// used by that thread between Accept() calls.
#ifndef VLLM_PROFILER_COLLECTOR_PROBE_STREAM_H_
#define VLLM_PROFILER_COLLECTOR_PROBE_STREAM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

// Largest value a probe timestamp or duration may have (2^62 ns, ~146
// years): keeps every sum the collector computes free of overflow.
inline constexpr int64_t kMaxTimestampNs = int64_t{1} << 62;

class ProbeStream {
 public:
  struct Options {
    // Largest serialized ProbeMessage carrying a batch (Welcome tells the
    // probe). Default 4 MiB.
    uint32_t max_batch_bytes = 4 << 20;
    // Bound on the interning table of one stream (bytes of string values).
    // Default 64 MiB.
    uint64_t max_string_bytes = 64ull << 20;
    // Bound on open captures per stream. Default 16.
    size_t max_open_captures = 16;
    // Bound on distinct thread ids announced by ThreadInfo. Default 65536.
    size_t max_threads = 65536;
    // Bound on the input signatures of one stream (the memory they take).
    // Default 64 MiB.
    uint64_t max_signature_bytes = 64ull << 20;
  };

  explicit ProbeStream(Options options);
  ProbeStream() : ProbeStream(Options()) {}
  ProbeStream(const ProbeStream&) = delete;
  ProbeStream& operator=(const ProbeStream&) = delete;

  // Validates `message` (whose serialized size was `wire_bytes`) and updates
  // the stream state. On error the state is unchanged and the stream must
  // end.
  absl::Status Accept(const v1::ProbeMessage& message, size_t wire_bytes);

  bool has_hello() const { return has_hello_; }
  const v1::Hello& hello() const { return hello_; }
  // The latest ProbeState (empty until one arrived).
  const v1::ProbeState& state() const { return state_; }
  int64_t pid() const { return hello_.pid(); }

  // The interned string `id` ("" for 0 or unknown ids; Accept() guarantees
  // that ids used by accepted events are known).
  absl::string_view String(uint32_t id) const {
    if (id < dense_.size()) return dense_[id];
    auto it = sparse_.find(id);
    return it == sparse_.end() ? absl::string_view() : it->second;
  }
  bool HasString(uint32_t id) const;
  // Input signature `id` (nullptr when unknown; Accept() guarantees that
  // ids used by accepted events are known).
  const v1::InputSignature* Signature(uint32_t id) const {
    auto it = signatures_.find(id);
    return it == signatures_.end() ? nullptr : &it->second;
  }

  // Name of thread `tid` as last announced ("" when never announced).
  absl::string_view ThreadName(uint32_t tid) const;

  // Maps a probe CLOCK_MONOTONIC timestamp to Unix-epoch ns using the latest
  // clock pair (Hello, CaptureStarted or CaptureFinished).
  int64_t ToWallNs(int64_t monotonic_ns) const {
    return monotonic_ns + mono_to_wall_ns_;
  }

  bool IsCaptureOpen(absl::string_view capture_id) const {
    return open_captures_.contains(capture_id);
  }

  uint64_t batches() const { return batches_; }
  uint64_t events() const { return events_; }
  // Batches missing according to EventBatch.sequence.
  uint64_t sequence_gaps() const { return sequence_gaps_; }
  uint32_t max_batch_bytes() const { return options_.max_batch_bytes; }

 private:
  absl::Status AcceptHello(const v1::Hello& hello);
  // Validates a ProbeState and applies it: the latest counts, and its
  // identity fields replace the Hello's.
  absl::Status AcceptState(const v1::ProbeState& state);
  absl::Status AcceptCaptureStarted(const v1::CaptureStarted& started);
  absl::Status AcceptCaptureFinished(const v1::CaptureFinished& finished);
  absl::Status AcceptBatch(const v1::EventBatch& batch, size_t wire_bytes);
  // The batch's new strings (into `pending`): no id 0, no redefinition, the
  // table stays within max_string_bytes.
  absl::Status CheckBatchStrings(
      const v1::EventBatch& batch,
      absl::flat_hash_map<uint32_t, std::string>* pending) const;
  // The batch's new input signatures (into `pending`, by id): no id 0,
  // no redefinition with other inputs, known dtype ids, one dtype per shape
  // when dtypes are given, the table within max_signature_bytes.
  absl::Status CheckBatchSignatures(
      const v1::EventBatch& batch,
      const absl::flat_hash_map<uint32_t, std::string>& pending_strings,
      absl::flat_hash_map<uint32_t, const v1::InputSignature*>* pending) const;
  // The batch's ThreadInfo: known name ids, at most max_threads threads.
  absl::Status CheckBatchThreads(
      const v1::EventBatch& batch,
      const absl::flat_hash_map<uint32_t, std::string>& pending) const;
  absl::Status CheckEvent(
      const v1::EventBatch& batch, int index, const v1::Event& event,
      const absl::flat_hash_map<uint32_t, std::string>& pending,
      const absl::flat_hash_map<uint32_t, const v1::InputSignature*>&
          pending_signatures) const;
  absl::Status CheckClock(const v1::ClockPair& clock, absl::string_view where);
  void UseClock(const v1::ClockPair& clock);
  void Define(uint32_t id, const std::string& value);

  const Options options_;
  bool has_hello_ = false;
  v1::Hello hello_;
  v1::ProbeState state_;
  // Interned strings: ids below kDenseLimit in a vector, others in a map.
  static constexpr uint32_t kDenseLimit = 1 << 16;
  std::vector<std::string> dense_;
  std::vector<bool> dense_defined_;
  absl::flat_hash_map<uint32_t, std::string> sparse_;
  uint64_t string_bytes_ = 0;
  absl::flat_hash_map<uint32_t, v1::InputSignature> signatures_;
  uint64_t signature_bytes_ = 0;
  absl::flat_hash_map<uint32_t, uint32_t> thread_names_;  // tid -> name id
  absl::flat_hash_set<std::string> open_captures_;
  int64_t mono_to_wall_ns_ = 0;
  bool have_next_sequence_ = false;
  uint64_t next_sequence_ = 0;
  uint64_t batches_ = 0;
  uint64_t events_ = 0;
  uint64_t sequence_gaps_ = 0;
};

// Parses one serialized ProbeMessage; a malformed one is INVALID_ARGUMENT
// "malformed ProbeMessage of N bytes: not a valid protobuf encoding".
absl::Status ParseProbeMessage(absl::string_view bytes, v1::ProbeMessage* out);
absl::Status MalformedMessageError(size_t wire_bytes);

// The name of the payload of `message` ("hello", "batch", ...; "nothing"
// when no payload is set), for messages.
absl::string_view PayloadName(const v1::ProbeMessage& message);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_PROBE_STREAM_H_
