// Turns recorded chunks into wire events (v1::Event) for one stream.
//
// Begin/end records are paired here, off the hot path: an operator becomes
// one CPU_OP event with its duration when its end record arrives (chunks of
// one thread arrive in order); a step becomes one STEP event with its batch
// shape args, its child spans PYTHON events. What is still open when a capture
// ends is closed at the capture's end time by Flush().
//
// Cost: an open operator is a small POD (its input shapes in flat pools),
// not a protobuf message; the wire Event is built once, directly in the
// batch (which callers may allocate on an Arena), when the operator ends.
// With a collector that reads input signatures an operator's inputs are one
// id: the distinct inputs of a capture are few (a step repeats its
// operators), so each is converted and serialized once per stream instead
// of once per operator (188 -> 104 ns per operator with two inputs,
// event_converter_benchmark). The table is process-wide and bounded
// (kMaxSignatures, a few MiB); past it inputs go inline.
//
// Owned and called by the sender thread only (not thread-safe). New threads
// are reported once per stream (Reset() at each new stream).
#ifndef VLLM_PROFILER_PROBE_CORE_EVENT_CONVERTER_H_
#define VLLM_PROFILER_PROBE_CORE_EVENT_CONVERTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "probe/core/clock.h"
#include "probe/core/recorder.h"
#include "probe/core/string_table.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

class EventConverter {
 public:
  struct Options {
    std::string step_name = "execute_model";
    // Name of a thread the first time it is seen (default: /proc comm).
    std::function<std::string(uint32_t tid)> thread_name;
    // Turns record timestamps (ticks) into ns; nullptr: they are ns.
    TickConverter* ticks = nullptr;
  };
  EventConverter(Options options, StringTable* strings);
  EventConverter(const EventConverter&) = delete;
  EventConverter& operator=(const EventConverter&) = delete;

  // Appends the events completed by `chunk`'s records (and new threads) to
  // `batch`. Returns the number of events appended.
  size_t Convert(const Chunk& chunk, v1::EventBatch* batch);
  // Closes every open operator and step at `end_ns` (capture end).
  size_t Flush(int64_t end_ns, v1::EventBatch* batch);
  // Forgets open events and threads already reported (new stream/capture).
  void Reset();
  void ResetOpen();

  void set_step_name(std::string name) { options_.step_name = std::move(name); }
  // Operator inputs go out as InputSignatures (each defined once per stream)
  // when the collector's Welcome said it reads them; inline otherwise.
  void set_input_signatures(bool on) {
    if (on != signatures_on_) op_memo_.clear();  // It holds signature ids.
    signatures_on_ = on;
  }
  size_t signatures() const { return signatures_.size(); }

 private:
  // An operator whose begin was seen and whose end was not yet.
  struct OpenOp {
    int64_t start_ns = 0;
    int64_t sequence_nr = -1;
    uint32_t tid = 0;
    uint32_t name_id = 0;
    uint32_t inputs_begin = 0;  // Into open_inputs_.
    uint32_t num_inputs = 0;
    uint32_t signature_id = 0;  // Set: the inputs are this signature.
  };
  struct OpenInput {
    uint32_t dims_begin = 0;  // Into open_dims_.
    int32_t ndim = -1;
    uint32_t dtype_id = 0;
  };
  // A step by number: begin, args and end may arrive in any order.
  struct OpenStep {
    v1::Event event;
    bool begun = false;
    bool ended = false;
    int64_t end_ns = 0;
  };
  struct OpenSpan {
    int64_t start_ns = 0;
    uint32_t tid = 0;
    uint32_t name_id = 0;
  };
  // One record; returns the events emitted. Steps whose end came before
  // their begin are added to `ended_early`.
  size_t ConvertRecord(const RecordView& r, uint32_t tid, v1::EventBatch* batch,
                       std::vector<uint64_t>* ended_early);
  void OpenOperator(const RecordView& r, int64_t ts, uint32_t tid);
  // kStep* records.
  size_t StepRecord(const RecordView& r, int64_t ts, uint32_t tid,
                    v1::EventBatch* batch, std::vector<uint64_t>* ended_early);
  // An operator whose one record holds both ends (kOpLeaf; kOpComplete
  // from the fallback, whose times are ns already), its inputs read from the
  // record: no open-operator entry, no copy into the pools.
  void EmitWholeOp(const RecordView& r, int64_t start_ns, int64_t end_ns,
                   uint32_t tid, v1::EventBatch* batch);
  void EmitInstantOrCounter(const RecordView& r, int64_t ts, uint32_t tid,
                            v1::EventBatch* batch);
  void EmitOp(uint64_t id, const OpenOp& op, int64_t end_ns,
              v1::EventBatch* batch);
  // Emits and forgets open step `step`; returns the events emitted (0/1).
  size_t EmitStep(uint64_t step, int64_t end_ns, v1::EventBatch* batch);
  void EmitSpan(const OpenSpan& span, int64_t end_ns, v1::EventBatch* batch);
  // Drops the shape pools' dead entries (all of them when nothing is open).
  void CompactPools();
  // The signature id of r's inputs, created on first sight; 0 when they go
  // inline (signatures off, no inputs, or the table full).
  uint32_t SignatureOf(const RecordView& r);
  // Refers `e` to signature `id`, defining it in `batch` first when this
  // stream has not had it yet.
  void UseSignature(uint32_t id, v1::Event* e, v1::EventBatch* batch);
  // An operator record's interned name and signature id (0: inputs go
  // inline), through op_memo_.
  void ResolveOp(const RecordView& r, uint32_t* name_id, uint32_t* signature);
  // Appends `inputs` as wire shapes and interned dtype ids (an Event's
  // inline inputs or an InputSignature's).
  void AddInputs(const std::vector<InputMeta>& inputs,
                 google::protobuf::RepeatedPtrField<v1::Shape>* shapes,
                 google::protobuf::RepeatedField<uint32_t>* dtype_ids);
  // r's inputs, parsed from its inputs block into inputs_ (valid until the
  // next call).
  const std::vector<InputMeta>& Inputs(const RecordView& r);
  void NoteThread(uint32_t tid, v1::EventBatch* batch);
  // StringTable::Intern through a sender-local cache (no lock on a hit).
  uint32_t Intern(std::string_view value);
  int64_t ToNs(int64_t ticks) {
    return options_.ticks == nullptr ? ticks : options_.ticks->ToNs(ticks);
  }
  Options options_;
  StringTable* const strings_;
  absl::flat_hash_map<uint64_t, OpenOp> open_ops_;
  std::vector<OpenInput> open_inputs_;
  std::vector<int64_t> open_dims_;
  absl::flat_hash_map<uint64_t, OpenStep> open_steps_;  // By step number.
  absl::flat_hash_map<uint64_t, OpenSpan> open_spans_;  // By span id.
  absl::flat_hash_set<uint32_t> threads_reported_;
  absl::flat_hash_map<uint32_t, std::string> thread_names_;
  absl::flat_hash_map<std::string, uint32_t> intern_cache_;
  // Input signatures, keyed by the recorded inputs block (byte-equal blocks
  // are equal inputs); ids are index + 1 and never change. A definition is
  // sent once per stream.
  struct Signature {
    v1::InputSignature definition;
    uint64_t sent_on_stream = 0;  // The stream_epoch_ it last went out on.
  };
  static constexpr size_t kMaxSignatures = 32768;
  bool signatures_on_ = false;
  absl::flat_hash_map<std::string, uint32_t> signature_ids_;
  std::vector<Signature> signatures_;
  uint64_t stream_epoch_ = 1;  // Reset() starts a new stream.
  // The last resolution seen in each of a few slots, picked by a cheap
  // hash of a few of the key's words: a step repeats the same few hundred
  // operators, and a hit costs two short compares instead of hashing the
  // name and the whole inputs block into two maps (in-process, those
  // lookups were 29 % of the sender's CPU). Bounded: 256 keys of at most
  // a name and 32 inputs each, about 1 MiB at worst.
  struct OpMemo {
    std::string name, inputs;
    uint32_t name_id = 0, signature = 0;
  };
  static constexpr size_t kOpMemoSlots = 256;
  std::vector<OpMemo> op_memo_;    // kOpMemoSlots once used.
  std::vector<InputMeta> inputs_;  // Inputs()' scratch.
};

// Default thread namer: /proc/self/task/<tid>/comm, or "thread <tid>".
std::string ProcThreadName(uint32_t tid);

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_EVENT_CONVERTER_H_
