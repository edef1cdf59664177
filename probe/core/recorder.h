// The probe's record path: what every instrumented call goes through.
//
// Recorder turns operator/step/instant/counter calls into compact POD records
// appended to a per-thread chunk (64 KiB by default) and hands full chunks to
// the sender through a queue. Memory is bounded: chunks come from a budget
// (Options::max_bytes, VLLM_PROFILER_MAX_BUFFER_MB); when it is used up a
// record is dropped and counted, never waited for.
//
// Cost model: when no capture runs every record call is one relaxed atomic
// load. While capturing: one thread-local lookup, an uncontended atomic
// exchange and a release store on the thread's own slot, a clock read in
// ticks (Clock::NowTicks, an rdtsc where the TSC is invariant; the sender
// converts), a memcpy of the name (and shapes), and a write prefetch of the
// chunk's next lines (they come back cold from the sender's core). An
// operator's end right after its begin (a leaf) extends the begin record by
// its end tick instead of appending a record (kOpLeaf).
// The mutex is taken only to hand a full chunk over.
//
// Threads: Begin/End are called by the capture controller (one thread at a
// time); the record functions from any thread; TakeQueued/Release by the
// sender. Each thread's slot is written by its thread; End() steals the
// chunk of every slot with an atomic exchange, so a thread that is in the
// middle of an append keeps its chunk (its records of that capture, at most
// the ones racing with the stop, are dropped by the sender as stale).
//
// Released chunks are pooled (a few) and reused before new memory is taken.
//
// Thread slots live as long as the Recorder (threads that exit keep their
// slot; vLLM has a handful of threads).
#ifndef VLLM_PROFILER_PROBE_CORE_RECORDER_H_
#define VLLM_PROFILER_PROBE_CORE_RECORDER_H_

#include <atomic>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"
#include "probe/core/clock.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

enum class RecordType : uint16_t {
  kOpBegin = 1,
  kOpEnd = 2,
  kStepBegin = 3,
  kStepEnd = 4,
  kStepArgs = 5,
  kInstant = 6,
  kCounter = 7,
  kThreadName = 8,
  kSpanBegin = 9,  // A named span of the thread (id from the op counter).
  kSpanEnd = 10,
  kStepArgInt = 11,  // name: key; arg: value.
  kStepArgStr = 12,  // name: key '\0' value.
  kStepError = 13,   // name: error text; ends nothing by itself.
  kOpComplete = 14,  // A timed operator from another source (end_ns, tid).
  // An operator whose end came right after its begin on its thread: the
  // kOpBegin record, extended in place by its end tick (its last 8 bytes,
  // RecordView::end_ns). Saves a 32-byte end record and the sender's
  // open-operator bookkeeping for most operators (leaves).
  kOpLeaf = 15,
};

// Fixed part of every record; records are 8-byte aligned in a chunk.
struct RecordHeader {
  uint16_t type;
  uint16_t name_len;
  uint32_t size;  // Whole record including this header, multiple of 8.
  int64_t ts_ns;  // Clock::NowTicks() (kOpComplete: MonotonicNs()).
  uint64_t id;    // Op/span id (kOp*, kSpan*) or step number (kStep*).
  int64_t arg;    // Sequence number (kOpBegin); value bits (kCounter).
};
static_assert(sizeof(RecordHeader) == 32, "compact header");

// One operator input as recorded (a view into the chunk).
struct InputMeta {
  int32_t ndim = -1;  // -1: not a tensor.
  const int64_t* dims = nullptr;
  std::string_view dtype;
};

// A decoded record (views into the chunk; valid while the chunk is).
struct RecordView {
  RecordType type;
  int64_t ts_ns;
  uint64_t id;
  int64_t arg;
  std::string_view name;
  // kOpBegin/kOpLeaf/kOpComplete with shapes on, when decoded with_inputs.
  std::vector<InputMeta> inputs;
  // The same inputs as recorded, byte for byte: equal blocks are equal
  // inputs (the sender's signature key). Empty without inputs.
  std::string_view inputs_block;
  int64_t end_ns = 0;   // kOpComplete (ns); kOpLeaf (ticks, as ts_ns).
  uint32_t op_tid = 0;  // kOpComplete.
  int64_t step_args[4] = {-1, -1, -1, -1};  // kStepArgs.
};

struct Chunk {
  uint64_t generation = 0;  // The capture it belongs to.
  uint32_t tid = 0;
  uint32_t num_records = 0;
  size_t used = 0;
  size_t capacity = 0;
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};

// Calls `fn(const RecordView&)` for each record of `chunk`. Stops at the
// first malformed record (internal invariant; returns false then).
// Without `with_inputs` a record's inputs stay in `inputs_block`
// (DecodeInputs parses them): the sender needs them only for inputs it has
// not seen before.
template <typename Fn>
bool ForEachRecord(const Chunk& chunk, Fn fn, bool with_inputs = true);
bool DecodeRecord(const char* p, size_t avail, RecordView* out,
                  size_t* consumed, bool with_inputs = true);
// Parses an inputs block (RecordView::inputs_block) into `out`; false, with
// `out` empty, when it is malformed.
bool DecodeInputs(std::string_view block, std::vector<InputMeta>* out);

// An operator input as the C ABI passes it.
struct InputArg {
  const int64_t* dims;
  int32_t ndim;
  const char* dtype;
};

// What the queue carries to the sender: a chunk or a control message (a
// CaptureStarted / CaptureFinished to send in order with the chunks).
struct QueueItem {
  Chunk* chunk = nullptr;
  std::unique_ptr<v1::ProbeMessage> message;
  uint64_t generation = 0;  // The capture a message belongs to.
};

class Recorder {
 public:
  struct Options {
    uint64_t max_bytes = 64ull << 20;  // Total chunk memory.
    size_t chunk_bytes = 64 << 10;     // One chunk's payload.
  };
  // Limits applied to one operator record.
  static constexpr size_t kMaxNameBytes = 512;
  static constexpr size_t kMaxArgValueBytes = 8192;  // A string step arg.
  static constexpr int32_t kMaxInputs = 32;
  static constexpr int32_t kMaxDims = 12;
  static constexpr size_t kMaxDtypeBytes = 24;

  Recorder(Options options, const Clock* clock);
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // Controller: starts recording into capture `generation` (non-zero).
  void Begin(uint64_t generation);
  // Controller: stops recording; every thread's partial chunk is queued
  // (in order before `finished`, which is queued last when not null).
  void End(std::unique_ptr<v1::ProbeMessage> finished, uint64_t generation);
  // Queues a control message after everything handed over so far.
  void QueueMessage(std::unique_ptr<v1::ProbeMessage> message,
                    uint64_t generation);
  // Disables recording without queueing anything (probe disabled itself).
  void ForceOff() { generation_.store(0, std::memory_order_relaxed); }

  // Cheap "capturing?" check.
  bool capturing() const {
    // Relaxed: a stale answer only records or skips one more event at the
    // capture's edges; chunk contents are published by the slot exchange.
    return generation_.load(std::memory_order_relaxed) != 0;
  }
  uint64_t generation() const {
    return generation_.load(std::memory_order_relaxed);  // As capturing().
  }

  // Record path (any thread). OpBegin returns the op id (0: not capturing).
  uint64_t OpBegin(const char* name, int64_t sequence_nr,
                   const InputArg* inputs, int32_t num_inputs);
  void OpEnd(uint64_t op_id);
  void StepBegin(int64_t step);
  void StepEnd(int64_t step);
  void StepArgs(int64_t step, const int64_t args[4]);
  void StepArgInt(int64_t step, const char* key, int64_t value);
  void StepArgStr(int64_t step, const char* key, const char* value);
  void StepError(int64_t step, const char* error);
  // An operator timed by another source (the torch-profiler fallback),
  // recorded into capture `generation` even after End() (the capture's
  // finish waits for it); `tid` is the thread it ran on.
  void OpComplete(uint64_t generation, const char* name, int64_t sequence_nr,
                  int64_t start_ns, int64_t end_ns, uint32_t tid,
                  const InputArg* inputs, int32_t num_inputs);
  // Queues the calling thread's chunk (whatever its generation).
  void HandOverLocal();
  // Returns the span id for SpanEnd (0: not capturing).
  uint64_t SpanBegin(const char* name);
  void SpanEnd(uint64_t span_id);
  void Instant(const char* name);
  void Counter(const char* name, double value);
  void ThreadName(const char* name);

  // Sender: takes everything queued (waits up to `timeout` when empty).
  std::deque<QueueItem> TakeQueued(absl::Duration timeout);
  // Sender: returns a chunk's memory to the budget. While a capture runs
  // the chunk is pooled (up to the budget) for the record path to reuse.
  void Release(Chunk* chunk);
  // Sender, at a capture's start: pools up to `chunks` chunks (within the
  // budget) with their pages touched, so the record path's first chunks
  // take no page faults on the step thread.
  void Prefill(int64_t chunks);
  // Sender, at a capture's finish: frees pooled chunks beyond the idle pool.
  void TrimPool();
  // Wakes a TakeQueued waiter.
  void Wake();

  // Records dropped because the budget was used up (since the last Take).
  uint64_t TakeDroppedBufferFull();
  uint64_t bytes_in_use() const;
  // Released chunks kept for reuse (counted in the budget).
  int64_t pooled_chunks() const {
    return pooled_chunks_.load(std::memory_order_relaxed);
  }
  uint64_t peak_bytes_in_use() const;

  // In a fork child, on the forking thread: forgets the thread-local caches
  // (tid, slot) copied from the parent.
  static void ResetThreadCacheAfterFork();

  // The calling thread's OS thread id (cached).
  static uint32_t CurrentTid();

 private:
  struct Slot {
    std::atomic<Chunk*> chunk{nullptr};
    uint32_t tid = 0;
    uint64_t next_op = 1;  // Only the owning thread touches it.
    // Owning thread only: the operator whose begin is the thread's last
    // published record (0: none; every Publish clears it), and that
    // record's offset in the chunk. Its OpEnd can extend it into a kOpLeaf.
    uint64_t leaf_id = 0;
    size_t leaf_offset = 0;
  };

  Slot* LocalSlot();
  Slot* RegisterSlot();
  // Reserves `bytes` in the thread's chunk for `generation`; returns the
  // write pointer and the slot/chunk to publish, or nullptr (dropped).
  char* Reserve(Slot* slot, uint64_t generation, size_t bytes, Chunk** chunk);
  void Publish(Slot* slot, Chunk* chunk, size_t bytes);
  // OpEnd's fast path, when the ending operator's begin is the thread's
  // last record: extends it into a kOpLeaf. False when the chunk is no
  // longer the thread's or has no room (a kOpEnd record then).
  bool EndAsLeaf(Slot* slot, uint64_t generation);
  // Prefetches, for writing, the chunk's lines a little ahead of the
  // record of `bytes` at `p`.
  static void PrefetchForWrite(const Chunk* chunk, const char* p, size_t bytes);
  void Handover(Chunk* chunk);
  Chunk* AllocateChunk(uint64_t generation, uint32_t tid);
  void AppendSimple(RecordType type, uint64_t id, int64_t arg, const char* name,
                    const int64_t* extra, int n_extra);
  // Bytes and layout of an operator's inputs block (kOpBegin/kOpComplete).
  // InputsBytes measures each dtype name once into `dtype_lens` (n
  // entries), which WriteInputs then writes by: the record's size and its
  // contents cannot disagree, and strnlen runs once per input.
  static size_t InputsBytes(const InputArg* inputs, int32_t n,
                            uint8_t* dtype_lens);
  static char* WriteInputs(char* q, const InputArg* inputs, int32_t n,
                           const uint8_t* dtype_lens);
  // As AppendSimple, with an explicit name length (may hold a '\0').
  void AppendNamed(RecordType type, uint64_t id, int64_t arg, const char* name,
                   size_t name_len, const int64_t* extra = nullptr,
                   int n_extra = 0);

  const Options options_;
  const Clock* const clock_;
  const uint64_t instance_id_;
  const int64_t max_chunks_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> chunks_in_use_{0};
  std::atomic<int64_t> peak_chunks_{0};
  std::atomic<uint64_t> dropped_buffer_full_{0};

  Mutex mu_;
  CondVar cv_;
  std::vector<std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<QueueItem> queue_ ABSL_GUARDED_BY(mu_);
  // Released chunks kept for reuse (they count in the memory budget like
  // chunks in use). Saves a malloc and, more, the page faults of touching a
  // fresh 64 KiB per chunk on the recording thread (16 faults; on a
  // virtualized host, where each costs microseconds, they were about an
  // eighth of the probe's own per-operator time): while capturing the pool
  // may grow to the budget; between captures it keeps kMaxPooledChunks.
  static constexpr size_t kMaxPooledChunks = 8;
  std::vector<Chunk*> pool_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> pooled_chunks_{0};
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
};

template <typename Fn>
bool ForEachRecord(const Chunk& chunk, Fn fn, bool with_inputs) {
  size_t off = 0;
  RecordView view;
  while (off < chunk.used) {
    size_t consumed = 0;
    if (!DecodeRecord(chunk.data() + off, chunk.used - off, &view, &consumed,
                      with_inputs)) {
      return false;
    }
    fn(static_cast<const RecordView&>(view));
    off += consumed;
  }
  return true;
}

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_RECORDER_H_
