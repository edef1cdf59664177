#include "probe/core/event_converter.h"

#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace vllm_profiler::probe {

std::string ProcThreadName(uint32_t tid) {
  std::ifstream in(absl::StrCat("/proc/self/task/", tid, "/comm"));
  std::string name;
  if (in && std::getline(in, name) && !name.empty()) {
    return std::string(absl::StripAsciiWhitespace(name));
  }
  return absl::StrCat("thread ", tid);
}

EventConverter::EventConverter(Options options, StringTable* strings)
    : options_(std::move(options)), strings_(strings) {
  if (!options_.thread_name) options_.thread_name = ProcThreadName;
}

uint32_t EventConverter::Intern(std::string_view value) {
  auto it = intern_cache_.find(absl::string_view(value.data(), value.size()));
  if (it != intern_cache_.end()) return it->second;
  const uint32_t id = strings_->Intern(value);
  // Ids are process-wide and never change, so the cache stays valid across
  // streams; it is bounded like the table it mirrors.
  if (intern_cache_.size() < 100000) {
    intern_cache_.emplace(std::string(value), id);
  }
  return id;
}

void EventConverter::NoteThread(uint32_t tid, v1::EventBatch* batch) {
  if (!threads_reported_.insert(tid).second) return;
  auto it = thread_names_.find(tid);
  const std::string name =
      it != thread_names_.end() ? it->second : options_.thread_name(tid);
  v1::ThreadInfo* t = batch->add_threads();
  t->set_tid(tid);
  t->set_name_id(Intern(name));
}

size_t EventConverter::Convert(const Chunk& chunk, v1::EventBatch* batch) {
  size_t emitted = 0;
  std::vector<uint64_t> ended_early;
  ForEachRecord(
      chunk,
      [&](const RecordView& r) {
        emitted += ConvertRecord(r, chunk.tid, batch, &ended_early);
      },
      /*with_inputs=*/false);
  for (uint64_t step : ended_early) {
    auto it = open_steps_.find(step);
    if (it != open_steps_.end())
      emitted += EmitStep(step, it->second.end_ns, batch);
  }
  CompactPools();
  return emitted;
}

size_t EventConverter::ConvertRecord(const RecordView& r, uint32_t tid,
                                     v1::EventBatch* batch,
                                     std::vector<uint64_t>* ended_early) {
  // Fallback operators (kOpComplete) carry ns already.
  const int64_t ts =
      r.type == RecordType::kOpComplete ? r.ts_ns : ToNs(r.ts_ns);
  switch (r.type) {
    case RecordType::kThreadName:
      thread_names_[tid] = std::string(r.name);
      if (threads_reported_.erase(tid) > 0) NoteThread(tid, batch);
      return 0;
    case RecordType::kOpBegin:
      OpenOperator(r, ts, tid);
      return 0;
    case RecordType::kOpLeaf:
      EmitWholeOp(r, ts, ToNs(r.end_ns), tid, batch);
      return 1;
    case RecordType::kOpEnd: {
      auto it = open_ops_.find(r.id);
      if (it == open_ops_.end()) return 0;  // Begin dropped or stale.
      NoteThread(tid, batch);
      EmitOp(r.id, it->second, ts, batch);
      open_ops_.erase(it);
      return 1;
    }
    case RecordType::kStepBegin:
    case RecordType::kStepArgs:
    case RecordType::kStepArgInt:
    case RecordType::kStepArgStr:
    case RecordType::kStepError:
    case RecordType::kStepEnd:
      return StepRecord(r, ts, tid, batch, ended_early);
    case RecordType::kOpComplete:
      EmitWholeOp(r, ts, r.end_ns, r.op_tid, batch);
      return 1;
    case RecordType::kSpanBegin:
      open_spans_[r.id] = OpenSpan{ts, tid, Intern(r.name)};
      return 0;
    case RecordType::kSpanEnd: {
      auto it = open_spans_.find(r.id);
      if (it == open_spans_.end()) return 0;
      NoteThread(tid, batch);
      EmitSpan(it->second, ts, batch);
      open_spans_.erase(it);
      return 1;
    }
    case RecordType::kInstant:
    case RecordType::kCounter:
      EmitInstantOrCounter(r, ts, tid, batch);
      return 1;
  }
  return 0;
}

namespace {

// Up to 8 bytes of p[0, n) as a word (n may be less than 8).
uint64_t LoadWord(const char* p, size_t n) {
  uint64_t w = 0;
  std::memcpy(&w, p, n < 8 ? n : 8);
  return w;
}

// A few words of the key, not all of it: names differ in their first or
// last bytes, inputs blocks in their length or last dims; a collision only
// costs the maps' lookup.
size_t OpMemoSlot(std::string_view name, std::string_view inputs,
                  size_t slots) {
  uint64_t h = (uint64_t{name.size()} << 32) ^ inputs.size();
  h ^= LoadWord(name.data(), name.size()) * 0x9e3779b97f4a7c15u;
  if (name.size() > 8) {
    h ^= LoadWord(name.data() + name.size() - 8, 8) * 0xc2b2ae3d27d4eb4fu;
  }
  if (inputs.size() >= 16) {
    h ^= LoadWord(inputs.data() + inputs.size() / 2, 8) * 0x165667b19e3779f9u;
    h ^= LoadWord(inputs.data() + inputs.size() - 8, 8) * 0x27d4eb2f165667c5u;
  }
  h ^= h >> 29;
  return static_cast<size_t>((h * 0xbf58476d1ce4e5b9u) >> 40) % slots;
}

}  // namespace

void EventConverter::AddInputs(
    const std::vector<InputMeta>& inputs,
    google::protobuf::RepeatedPtrField<v1::Shape>* shapes,
    google::protobuf::RepeatedField<uint32_t>* dtype_ids) {
  for (const InputMeta& in : inputs) {
    v1::Shape* shape = shapes->Add();
    if (in.ndim > 0) shape->mutable_dims()->Add(in.dims, in.dims + in.ndim);
    dtype_ids->Add(in.dtype.empty() ? 0 : Intern(in.dtype));
  }
}

const std::vector<InputMeta>& EventConverter::Inputs(const RecordView& r) {
  // Malformed (cannot happen for the recorder's records): no inputs.
  DecodeInputs(r.inputs_block, &inputs_);
  return inputs_;
}

void EventConverter::ResolveOp(const RecordView& r, uint32_t* name_id,
                               uint32_t* signature) {
  if (op_memo_.empty()) op_memo_.resize(kOpMemoSlots);
  // Inline inputs (no signatures) need the name's id only.
  const std::string_view inputs =
      signatures_on_ ? r.inputs_block : std::string_view();
  // Two ways per set, the most recent first: two keys of a step that pick
  // the same set do not evict each other on every operator.
  OpMemo* set = &op_memo_[2 * OpMemoSlot(r.name, inputs, kOpMemoSlots / 2)];
  for (int way = 0; way < 2; ++way) {
    OpMemo& m = set[way];
    if (m.name_id != 0 && m.name == r.name && m.inputs == inputs) {
      *name_id = m.name_id;
      *signature = m.signature;
      if (way == 1) std::swap(set[0], set[1]);
      return;
    }
  }
  *name_id = Intern(r.name);
  *signature = SignatureOf(r);
  std::swap(set[0], set[1]);  // The older one is replaced.
  OpMemo& m = set[0];
  m.name.assign(r.name);
  m.inputs.assign(inputs);
  m.name_id = *name_id;
  m.signature = *signature;
}

void EventConverter::OpenOperator(const RecordView& r, int64_t ts,
                                  uint32_t tid) {
  OpenOp op;
  op.start_ns = ts;
  op.sequence_nr = r.arg;
  op.tid = tid;
  ResolveOp(r, &op.name_id, &op.signature_id);
  if (op.signature_id != 0) {
    open_ops_[r.id] = op;
    return;
  }
  const std::vector<InputMeta>& inputs = Inputs(r);
  op.inputs_begin = static_cast<uint32_t>(open_inputs_.size());
  op.num_inputs = static_cast<uint32_t>(inputs.size());
  for (const InputMeta& in : inputs) {
    OpenInput oi;
    oi.dims_begin = static_cast<uint32_t>(open_dims_.size());
    oi.ndim = in.ndim;
    oi.dtype_id = in.dtype.empty() ? 0 : Intern(in.dtype);
    if (in.ndim > 0) {
      open_dims_.insert(open_dims_.end(), in.dims, in.dims + in.ndim);
    }
    open_inputs_.push_back(oi);
  }
  open_ops_[r.id] = op;
}

size_t EventConverter::StepRecord(const RecordView& r, int64_t ts, uint32_t tid,
                                  v1::EventBatch* batch,
                                  std::vector<uint64_t>* ended_early) {
  // A step's records may come from several threads, whose chunks arrive in
  // any order: everything is keyed by step number.
  OpenStep& st = open_steps_[r.id];
  switch (r.type) {
    case RecordType::kStepBegin:
      st.begun = true;
      st.event.set_kind(v1::EVENT_KIND_STEP);
      st.event.set_name_id(Intern(options_.step_name));
      st.event.set_start_ns(ts);
      st.event.set_tid(tid);
      st.event.set_step(static_cast<int64_t>(r.id));
      // Its end came first (other thread): emit after this chunk, whose
      // later records may still carry the step's args.
      if (st.ended) ended_early->push_back(r.id);
      return 0;
    case RecordType::kStepArgs: {
      static constexpr const char* kKeys[4] = {
          "num_scheduled_requests", "num_scheduled_tokens",
          "num_prefill_requests", "num_decode_requests"};
      for (int i = 0; i < 4; ++i) {
        if (r.step_args[i] < 0) continue;
        v1::Arg* a = st.event.add_args();
        a->set_key_id(Intern(kKeys[i]));
        a->set_int_value(r.step_args[i]);
      }
      return 0;
    }
    case RecordType::kStepArgInt: {
      v1::Arg* a = st.event.add_args();
      a->set_key_id(Intern(r.name));
      a->set_int_value(r.arg);
      return 0;
    }
    case RecordType::kStepArgStr:
    case RecordType::kStepError: {
      std::string_view key = "error", value = r.name;
      if (r.type == RecordType::kStepArgStr) {
        const size_t nul = r.name.find('\0');
        if (nul == std::string_view::npos) return 0;
        key = r.name.substr(0, nul);
        value = r.name.substr(nul + 1);
      }
      v1::Arg* a = st.event.add_args();
      a->set_key_id(Intern(key));
      a->set_string_id(Intern(value));
      return 0;
    }
    case RecordType::kStepEnd:
      // An end seen before its begin waits for it.
      st.ended = true;
      st.end_ns = ts;
      return st.begun ? EmitStep(r.id, ts, batch) : 0;
    default:
      return 0;
  }
}

void EventConverter::EmitWholeOp(const RecordView& r, int64_t start_ns,
                                 int64_t end_ns, uint32_t tid,
                                 v1::EventBatch* batch) {
  NoteThread(tid, batch);
  uint32_t name_id, sig;
  ResolveOp(r, &name_id, &sig);
  v1::Event* e = batch->add_events();
  e->set_kind(v1::EVENT_KIND_CPU_OP);
  e->set_name_id(name_id);
  e->set_start_ns(start_ns);
  e->set_duration_ns(std::max<int64_t>(0, end_ns - start_ns));
  e->set_tid(tid);
  e->set_external_id(r.id);
  if (r.arg >= 0) e->set_sequence_number(static_cast<uint64_t>(r.arg));
  if (sig != 0) {
    UseSignature(sig, e, batch);
    return;
  }
  AddInputs(Inputs(r), e->mutable_input_shapes(), e->mutable_input_dtype_ids());
}

void EventConverter::EmitInstantOrCounter(const RecordView& r, int64_t ts,
                                          uint32_t tid, v1::EventBatch* batch) {
  NoteThread(tid, batch);
  v1::Event* e = batch->add_events();
  e->set_kind(r.type == RecordType::kInstant ? v1::EVENT_KIND_INSTANT
                                             : v1::EVENT_KIND_COUNTER);
  e->set_name_id(Intern(r.name));
  e->set_start_ns(ts);
  e->set_tid(tid);
  if (r.type == RecordType::kCounter) {
    double v;
    std::memcpy(&v, &r.arg, sizeof(v));
    e->set_value(v);
  }
}

void EventConverter::EmitOp(uint64_t id, const OpenOp& op, int64_t end_ns,
                            v1::EventBatch* batch) {
  v1::Event* e = batch->add_events();
  e->set_kind(v1::EVENT_KIND_CPU_OP);
  e->set_name_id(op.name_id);
  e->set_start_ns(op.start_ns);
  e->set_duration_ns(std::max<int64_t>(0, end_ns - op.start_ns));
  e->set_tid(op.tid);
  e->set_external_id(id);  // The GPU correlation id (c_api.cc).
  if (op.sequence_nr >= 0) {
    e->set_sequence_number(static_cast<uint64_t>(op.sequence_nr));
  }
  if (op.signature_id != 0) {
    UseSignature(op.signature_id, e, batch);
    return;
  }
  if (op.num_inputs == 0) return;
  e->mutable_input_shapes()->Reserve(static_cast<int>(op.num_inputs));
  e->mutable_input_dtype_ids()->Reserve(static_cast<int>(op.num_inputs));
  for (uint32_t i = 0; i < op.num_inputs; ++i) {
    const OpenInput& in = open_inputs_[op.inputs_begin + i];
    v1::Shape* shape = e->add_input_shapes();
    if (in.ndim > 0) {
      shape->mutable_dims()->Add(open_dims_.data() + in.dims_begin,
                                 open_dims_.data() + in.dims_begin + in.ndim);
    }
    e->add_input_dtype_ids(in.dtype_id);
  }
}

uint32_t EventConverter::SignatureOf(const RecordView& r) {
  if (!signatures_on_ || r.inputs_block.empty()) return 0;
  const absl::string_view key(r.inputs_block.data(), r.inputs_block.size());
  if (auto it = signature_ids_.find(key); it != signature_ids_.end()) {
    return it->second;
  }
  if (signatures_.size() >= kMaxSignatures) return 0;
  const uint32_t id = static_cast<uint32_t>(signatures_.size() + 1);
  v1::InputSignature& sig = signatures_.emplace_back().definition;
  sig.set_id(id);
  AddInputs(Inputs(r), sig.mutable_shapes(), sig.mutable_dtype_ids());
  signature_ids_.emplace(std::string(key), id);
  return id;
}

void EventConverter::UseSignature(uint32_t id, v1::Event* e,
                                  v1::EventBatch* batch) {
  Signature& sig = signatures_[id - 1];
  if (sig.sent_on_stream != stream_epoch_) {
    *batch->add_input_signatures() = sig.definition;
    sig.sent_on_stream = stream_epoch_;
  }
  e->set_input_signature_id(id);
}

void EventConverter::CompactPools() {
  if (open_ops_.empty()) {
    open_inputs_.clear();
    open_dims_.clear();
    return;
  }
  // Long-open operators (user scopes around many steps) would otherwise
  // keep the pools growing: rebuild them from the live entries when they
  // are mostly dead.
  // (An op has at most Recorder::kMaxInputs inputs, so above 64 per open op
  // at least half of the entries are dead.)
  if (open_inputs_.size() < 4096 ||
      open_inputs_.size() < 64 * open_ops_.size()) {
    return;
  }
  std::vector<OpenInput> inputs;
  std::vector<int64_t> dims;
  for (auto& [id, op] : open_ops_) {
    const uint32_t begin = static_cast<uint32_t>(inputs.size());
    for (uint32_t i = 0; i < op.num_inputs; ++i) {
      OpenInput in = open_inputs_[op.inputs_begin + i];
      const uint32_t d = static_cast<uint32_t>(dims.size());
      if (in.ndim > 0) {
        dims.insert(dims.end(), open_dims_.begin() + in.dims_begin,
                    open_dims_.begin() + in.dims_begin + in.ndim);
      }
      in.dims_begin = d;
      inputs.push_back(in);
    }
    op.inputs_begin = begin;
  }
  open_inputs_.swap(inputs);
  open_dims_.swap(dims);
}

size_t EventConverter::EmitStep(uint64_t step, int64_t end_ns,
                                v1::EventBatch* batch) {
  auto it = open_steps_.find(step);
  if (it == open_steps_.end()) return 0;
  v1::Event& e = it->second.event;
  NoteThread(e.tid(), batch);
  v1::Event* out = batch->add_events();
  *out = std::move(e);
  out->set_duration_ns(std::max<int64_t>(0, end_ns - out->start_ns()));
  open_steps_.erase(it);
  return 1;
}

void EventConverter::EmitSpan(const OpenSpan& span, int64_t end_ns,
                              v1::EventBatch* batch) {
  v1::Event* e = batch->add_events();
  e->set_kind(v1::EVENT_KIND_PYTHON);
  e->set_name_id(span.name_id);
  e->set_start_ns(span.start_ns);
  e->set_duration_ns(std::max<int64_t>(0, end_ns - span.start_ns));
  e->set_tid(span.tid);
}

size_t EventConverter::Flush(int64_t end_ns, v1::EventBatch* batch) {
  size_t emitted = 0;
  // Steps still open close at the capture's end; an end whose begin never
  // arrived (dropped) is forgotten.
  for (auto& [step, st] : open_steps_) {
    if (!st.begun) continue;
    NoteThread(st.event.tid(), batch);
    v1::Event* out = batch->add_events();
    *out = std::move(st.event);
    out->set_duration_ns(std::max<int64_t>(0, end_ns - out->start_ns()));
    ++emitted;
  }
  for (auto& [id, span] : open_spans_) {
    NoteThread(span.tid, batch);
    EmitSpan(span, end_ns, batch);
    ++emitted;
  }
  for (auto& [id, op] : open_ops_) {
    NoteThread(op.tid, batch);
    EmitOp(id, op, end_ns, batch);
    ++emitted;
  }
  ResetOpen();
  return emitted;
}

void EventConverter::ResetOpen() {
  open_ops_.clear();
  open_inputs_.clear();
  open_dims_.clear();
  open_steps_.clear();
  open_spans_.clear();
}

void EventConverter::Reset() {
  ResetOpen();
  threads_reported_.clear();
  ++stream_epoch_;  // Every signature is defined again on the new stream.
}

}  // namespace vllm_profiler::probe
