#include "probe/core/recorder.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace vllm_profiler::probe {
namespace {

constexpr size_t Pad8(size_t n) { return (n + 7) & ~size_t{7}; }

// How far ahead of the write pointer Reserve() prefetches (bytes): a few
// operators' records, so the lines arrive before the stores need them.
constexpr size_t kPrefetchAhead = 384;
constexpr size_t kLine = 64;

#if defined(__x86_64__)
// PREFETCHW (fetch a line for writing) where the CPU has it: x86-64 CPUs
// since about 2014 (Intel Broadwell, every AMD Zen); others ignore it or
// lack it, so it is asked of CPUID once.
bool CpuHasPrefetchw() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000001, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & bit_PRFCHW) != 0;
}
const bool g_has_prefetchw = CpuHasPrefetchw();

inline void PrefetchLineForWrite(const char* p) {
  if (g_has_prefetchw) {
    asm volatile("prefetchw %0" : : "m"(*p));
  } else {
    __builtin_prefetch(p, 1, 3);
  }
}
#else
// Elsewhere (aarch64: PRFM PSTL1KEEP) the builtin's write hint is the
// instruction.
inline void PrefetchLineForWrite(const char* p) { __builtin_prefetch(p, 1, 3); }
#endif

std::atomic<uint64_t> g_next_instance{1};

struct LocalCache {
  uint64_t instance = 0;
  void* slot = nullptr;
};
thread_local LocalCache t_cache;
thread_local uint32_t t_tid = 0;

// Copies n bytes with a few fixed-size moves, which may overlap, for the
// short variable lengths of an operator record (its name, dtypes and dims).
// For those GCC emits `rep movsq` or a call to memcpy, whose start-up costs
// more than such a copy: in process, the instructions after WriteInputs'
// two `rep movsq` were its hottest.
inline void CopyShort(char* d, const char* s, size_t n) {
  if (n > 96) {
    std::memcpy(d, s, n);
  } else if (n >= 32) {
    std::memcpy(d, s, 32);
    if (n > 64) std::memcpy(d + 32, s + 32, 32);
    std::memcpy(d + n - 32, s + n - 32, 32);
  } else if (n >= 16) {
    std::memcpy(d, s, 16);
    std::memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(d, s, 8);
    std::memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(d, s, 4);
    std::memcpy(d + n - 4, s + n - 4, 4);
  } else if (n > 0) {
    d[0] = s[0];
    if (n > 1) std::memcpy(d + n - 2, s + n - 2, 2);
  }
}

size_t BoundedLen(const char* s, size_t max) {
  if (s == nullptr) return 0;
  return strnlen(s, max);
}

}  // namespace

uint32_t Recorder::CurrentTid() {
  if (t_tid == 0) t_tid = static_cast<uint32_t>(syscall(SYS_gettid));
  return t_tid;
}

Recorder::Recorder(Options options, const Clock* clock)
    : options_(options),
      clock_(clock),
      instance_id_(g_next_instance.fetch_add(1)),
      max_chunks_(std::max<int64_t>(
          1, static_cast<int64_t>(options.max_bytes /
                                  (options.chunk_bytes + sizeof(Chunk))))) {}

Recorder::~Recorder() {
  MutexLock lock(&mu_);
  for (auto& slot : slots_) {
    std::free(slot->chunk.exchange(nullptr));
  }
  for (QueueItem& item : queue_) std::free(item.chunk);
  queue_.clear();
  for (Chunk* c : pool_) std::free(c);
  pool_.clear();
  // Threads that recorded into this instance keep a stale cache entry whose
  // instance id no longer matches any live Recorder.
}

void Recorder::Begin(uint64_t generation) {
  // Relaxed: see capturing(); counters reset per capture.
  dropped_buffer_full_.store(0, std::memory_order_relaxed);
  generation_.store(generation, std::memory_order_relaxed);
}

void Recorder::End(std::unique_ptr<v1::ProbeMessage> finished,
                   uint64_t generation) {
  generation_.store(0, std::memory_order_relaxed);  // As capturing().
  std::vector<Chunk*> stolen;
  {
    MutexLock lock(&mu_);
    for (auto& slot : slots_) {
      // acq_rel: acquires the owner's writes published by its release
      // store; a null result means the owner is mid-append (kept by it).
      Chunk* c = slot->chunk.exchange(nullptr, std::memory_order_acq_rel);
      if (c != nullptr) stolen.push_back(c);
    }
    for (Chunk* c : stolen) {
      if (c->used == 0) {
        std::free(c);
        chunks_in_use_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      queue_.push_back(QueueItem{c, nullptr, c->generation});
    }
    if (finished != nullptr) {
      queue_.push_back(QueueItem{nullptr, std::move(finished), generation});
    }
    cv_.Signal();
  }
}

void Recorder::QueueMessage(std::unique_ptr<v1::ProbeMessage> message,
                            uint64_t generation) {
  MutexLock lock(&mu_);
  queue_.push_back(QueueItem{nullptr, std::move(message), generation});
  cv_.Signal();
}

Recorder::Slot* Recorder::LocalSlot() {
  if (t_cache.instance == instance_id_) {
    return static_cast<Slot*>(t_cache.slot);
  }
  return RegisterSlot();
}

Recorder::Slot* Recorder::RegisterSlot() {
  auto slot = std::make_unique<Slot>();
  slot->tid = CurrentTid();
  Slot* raw = slot.get();
  {
    MutexLock lock(&mu_);
    slots_.push_back(std::move(slot));
  }
  t_cache.instance = instance_id_;
  t_cache.slot = raw;
  return raw;
}

Chunk* Recorder::AllocateChunk(uint64_t generation, uint32_t tid) {
  Chunk* c = nullptr;
  // Relaxed: a hint; the pool itself is read under mu_.
  if (pooled_chunks_.load(std::memory_order_relaxed) > 0) {
    MutexLock lock(&mu_);
    if (!pool_.empty()) {
      c = pool_.back();
      pool_.pop_back();
      pooled_chunks_.fetch_sub(1, std::memory_order_relaxed);
      // Moves from the pool to in use: the budget total is unchanged.
      chunks_in_use_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (c == nullptr) {
    // Relaxed: the budget is a counter; a transient overshoot by the number
    // of racing threads is corrected by the fetch_sub below.
    const int64_t in_use =
        chunks_in_use_.fetch_add(1, std::memory_order_relaxed);
    if (in_use + pooled_chunks_.load(std::memory_order_relaxed) >=
        max_chunks_) {
      chunks_in_use_.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    void* mem = std::malloc(sizeof(Chunk) + options_.chunk_bytes);
    if (mem == nullptr) {
      chunks_in_use_.fetch_sub(1, std::memory_order_relaxed);
      return nullptr;
    }
    c = static_cast<Chunk*>(mem);
  }
  const int64_t total = chunks_in_use_.load(std::memory_order_relaxed) +
                        pooled_chunks_.load(std::memory_order_relaxed);
  int64_t peak = peak_chunks_.load(std::memory_order_relaxed);
  while (total > peak && !peak_chunks_.compare_exchange_weak(
                             peak, total, std::memory_order_relaxed)) {
  }
  c = new (c) Chunk();
  c->generation = generation;
  c->tid = tid;
  c->capacity = options_.chunk_bytes;
  return c;
}

void Recorder::Release(Chunk* chunk) {
  if (chunk == nullptr) return;
  const size_t max_pooled =
      capturing() ? static_cast<size_t>(max_chunks_) : kMaxPooledChunks;
  {
    MutexLock lock(&mu_);
    if (pool_.size() < max_pooled) {
      pool_.push_back(chunk);
      // Relaxed: as AllocateChunk (in use -> pooled).
      pooled_chunks_.fetch_add(1, std::memory_order_relaxed);
      chunks_in_use_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
  }
  std::free(chunk);
  chunks_in_use_.fetch_sub(1, std::memory_order_relaxed);  // As Allocate.
}

void Recorder::Prefill(int64_t chunks) {
  const size_t bytes = sizeof(Chunk) + options_.chunk_bytes;
  for (int64_t i = 0; i < chunks; ++i) {
    {
      MutexLock lock(&mu_);
      // Relaxed: as AllocateChunk; half the budget stays for the threads.
      if (static_cast<int64_t>(pool_.size()) >= chunks ||
          2 * (chunks_in_use_.load(std::memory_order_relaxed) +
               pooled_chunks_.load(std::memory_order_relaxed) + 1) >
              max_chunks_) {
        return;
      }
    }
    void* mem = std::malloc(bytes);
    if (mem == nullptr) return;
    std::memset(mem, 0, bytes);  // Takes the page faults here.
    MutexLock lock(&mu_);
    pool_.push_back(static_cast<Chunk*>(mem));
    pooled_chunks_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Recorder::TrimPool() {
  std::vector<Chunk*> extra;
  {
    MutexLock lock(&mu_);
    while (pool_.size() > kMaxPooledChunks) {
      extra.push_back(pool_.back());
      pool_.pop_back();
      pooled_chunks_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  for (Chunk* c : extra) std::free(c);
}

void Recorder::Handover(Chunk* chunk) {
  MutexLock lock(&mu_);
  queue_.push_back(QueueItem{chunk, nullptr, chunk->generation});
  cv_.Signal();
}

char* Recorder::Reserve(Slot* slot, uint64_t generation, size_t bytes,
                        Chunk** out) {
  // Acquire pairs with End()'s exchange (it may have taken the chunk).
  Chunk* c = slot->chunk.exchange(nullptr, std::memory_order_acquire);
  if (c != nullptr &&
      (c->generation != generation || c->used + bytes > c->capacity)) {
    if (c->used > 0) {
      Handover(c);
    } else {
      Release(c);
    }
    c = nullptr;
  }
  if (c == nullptr) {
    c = AllocateChunk(generation, slot->tid);
    if (c == nullptr || bytes > c->capacity) {
      if (c != nullptr) Release(c);
      // Relaxed: a statistic.
      dropped_buffer_full_.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
  }
  *out = c;
  char* p = c->data() + c->used;
  PrefetchForWrite(c, p, bytes);
  return p;
}

void Recorder::PrefetchForWrite(const Chunk* chunk, const char* p,
                                size_t bytes) {
  // The chunk's lines are cold here: the sender last read them, on another
  // core. Stores that miss are not the cost by themselves; the next locked
  // instruction of this thread (our slot exchange, torch's refcounts) waits
  // for them to complete. recorder_benchmark's ConcurrentSender/1 measured
  // 243 -> 104 ns per operator when the two cores were far apart (the same
  // VM, another hour, read 101 both ways: the cost is the transfer's). A
  // plain prefetch fetches lines shared, which does not help: the store
  // still has to take the line from the other core.
  // Each record asks for the lines of the same span kPrefetchAhead bytes
  // further on, so consecutive records cover every line ahead.
  const char* data = chunk->data();
  const size_t from = static_cast<size_t>(p - data) + kPrefetchAhead;
  const size_t to = std::min(from + bytes + kLine, chunk->capacity);
  for (size_t at = from; at < to; at += kLine) PrefetchLineForWrite(data + at);
}

void Recorder::Publish(Slot* slot, Chunk* chunk, size_t bytes) {
  chunk->used += bytes;
  chunk->num_records++;
  slot->leaf_id = 0;  // OpBegin sets it again after its own Publish.
  // Release: End() (acquire) sees the record's bytes when it steals.
  slot->chunk.store(chunk, std::memory_order_release);
}

uint64_t Recorder::OpBegin(const char* name, int64_t sequence_nr,
                           const InputArg* inputs, int32_t num_inputs) {
  const uint64_t gen = generation();
  if (gen == 0) return 0;
  Slot* slot = LocalSlot();
  const uint64_t id = (static_cast<uint64_t>(slot->tid) << 32) |
                      (slot->next_op++ & 0xffffffffu);
  const size_t name_len = BoundedLen(name, kMaxNameBytes);
  const int32_t n = inputs != nullptr && num_inputs > 0
                        ? std::min(num_inputs, kMaxInputs)
                        : 0;
  uint8_t dtype_lens[kMaxInputs];
  const size_t bytes = sizeof(RecordHeader) + Pad8(name_len) +
                       InputsBytes(inputs, n, dtype_lens);
  Chunk* chunk = nullptr;
  char* p = Reserve(slot, gen, bytes, &chunk);
  if (p == nullptr) return id;
  RecordHeader h{static_cast<uint16_t>(RecordType::kOpBegin),
                 static_cast<uint16_t>(name_len),
                 static_cast<uint32_t>(bytes),
                 clock_->NowTicks(),
                 id,
                 sequence_nr};
  std::memcpy(p, &h, sizeof(h));
  char* q = p + sizeof(h);
  CopyShort(q, name, name_len);
  q += Pad8(name_len);
  WriteInputs(q, inputs, n, dtype_lens);
  slot->leaf_offset = static_cast<size_t>(p - chunk->data());
  Publish(slot, chunk, bytes);
  slot->leaf_id = id;
  return id;
}

size_t Recorder::InputsBytes(const InputArg* inputs, int32_t n,
                             uint8_t* dtype_lens) {
  if (n <= 0) return 0;
  size_t bytes = 8;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t nd = std::min(inputs[i].ndim, kMaxDims);
    dtype_lens[i] =
        static_cast<uint8_t>(BoundedLen(inputs[i].dtype, kMaxDtypeBytes));
    bytes += 8 + Pad8(dtype_lens[i]) + 8 * static_cast<size_t>(std::max(nd, 0));
  }
  return bytes;
}

char* Recorder::WriteInputs(char* q, const InputArg* inputs, int32_t n,
                            const uint8_t* dtype_lens) {
  if (n <= 0) return q;
  const uint32_t header[2] = {static_cast<uint32_t>(n), 0};
  std::memcpy(q, header, 8);
  q += 8;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t nd = std::min(inputs[i].ndim, kMaxDims);
    const uint32_t dl = dtype_lens[i];
    std::memcpy(q, &nd, 4);
    std::memcpy(q + 4, &dl, 4);
    q += 8;
    if (dl > 0) {
      // Zeroed padding: equal inputs are equal bytes (the sender keys input
      // signatures on them).
      const uint64_t zero = 0;
      std::memcpy(q + Pad8(dl) - 8, &zero, 8);
      CopyShort(q, inputs[i].dtype, dl);
    }
    q += Pad8(dl);
    if (nd > 0) {
      CopyShort(q, reinterpret_cast<const char*>(inputs[i].dims),
                8 * static_cast<size_t>(nd));
      q += 8 * static_cast<size_t>(nd);
    }
  }
  return q;
}

void Recorder::OpComplete(uint64_t generation, const char* name,
                          int64_t sequence_nr, int64_t start_ns, int64_t end_ns,
                          uint32_t tid, const InputArg* inputs,
                          int32_t num_inputs) {
  if (generation == 0) return;
  Slot* slot = LocalSlot();
  // Ids in the op tid's space, above the shim's (bit 31 of the counter).
  const uint64_t id = (static_cast<uint64_t>(tid) << 32) |
                      (0x80000000u | (slot->next_op++ & 0x7fffffffu));
  const size_t name_len = BoundedLen(name, kMaxNameBytes);
  const int32_t n = inputs != nullptr && num_inputs > 0
                        ? std::min(num_inputs, kMaxInputs)
                        : 0;
  uint8_t dtype_lens[kMaxInputs];
  const size_t bytes = sizeof(RecordHeader) + Pad8(name_len) + 16 +
                       InputsBytes(inputs, n, dtype_lens);
  Chunk* chunk = nullptr;
  char* p = Reserve(slot, generation, bytes, &chunk);
  if (p == nullptr) return;
  RecordHeader h{static_cast<uint16_t>(RecordType::kOpComplete),
                 static_cast<uint16_t>(name_len),
                 static_cast<uint32_t>(bytes),
                 start_ns,
                 id,
                 sequence_nr};
  std::memcpy(p, &h, sizeof(h));
  char* q = p + sizeof(h);
  CopyShort(q, name, name_len);
  q += Pad8(name_len);
  const int64_t tail[2] = {end_ns, static_cast<int64_t>(tid)};
  std::memcpy(q, tail, 16);
  WriteInputs(q + 16, inputs, n, dtype_lens);
  Publish(slot, chunk, bytes);
}

void Recorder::HandOverLocal() {
  Slot* slot = LocalSlot();
  Chunk* c = slot->chunk.exchange(nullptr, std::memory_order_acquire);
  if (c == nullptr) return;
  if (c->used > 0) {
    Handover(c);
  } else {
    Release(c);
  }
}

void Recorder::AppendSimple(RecordType type, uint64_t id, int64_t arg,
                            const char* name, const int64_t* extra,
                            int n_extra) {
  AppendNamed(type, id, arg, name, BoundedLen(name, kMaxNameBytes), extra,
              n_extra);
}

void Recorder::OpEnd(uint64_t op_id) {
  const uint64_t gen = generation();
  if (op_id == 0 || gen == 0) return;  // As the cost model promises.
  Slot* slot = LocalSlot();
  if (slot->leaf_id == op_id && EndAsLeaf(slot, gen)) {
    return;
  }
  AppendSimple(RecordType::kOpEnd, op_id, 0, nullptr, nullptr, 0);
}

bool Recorder::EndAsLeaf(Slot* slot, uint64_t gen) {
  // Nothing was published on this thread since the begin, so a chunk in the
  // slot is the begin's chunk with the begin as its last record (the slot
  // changes chunks only by appending, or to null by End()/HandOverLocal()).
  // Acquire, as Reserve.
  Chunk* c = slot->chunk.exchange(nullptr, std::memory_order_acquire);
  if (c == nullptr) return false;
  if (c->generation != gen || c->used + 8 > c->capacity) {
    slot->chunk.store(c, std::memory_order_release);
    return false;
  }
  char* rec = c->data() + slot->leaf_offset;
  RecordHeader h;
  std::memcpy(&h, rec, sizeof(h));
  const int64_t end = clock_->NowTicks();
  std::memcpy(c->data() + c->used, &end, 8);
  h.type = static_cast<uint16_t>(RecordType::kOpLeaf);
  h.size += 8;
  std::memcpy(rec, &h, 8);  // type, name_len, size.
  c->used += 8;
  slot->leaf_id = 0;
  // Release: as Publish.
  slot->chunk.store(c, std::memory_order_release);
  return true;
}

void Recorder::StepBegin(int64_t step) {
  AppendSimple(RecordType::kStepBegin, static_cast<uint64_t>(step), 0, nullptr,
               nullptr, 0);
}

void Recorder::StepEnd(int64_t step) {
  AppendSimple(RecordType::kStepEnd, static_cast<uint64_t>(step), 0, nullptr,
               nullptr, 0);
}

void Recorder::StepArgs(int64_t step, const int64_t args[4]) {
  AppendSimple(RecordType::kStepArgs, static_cast<uint64_t>(step), 0, nullptr,
               args, 4);
}

void Recorder::StepArgInt(int64_t step, const char* key, int64_t value) {
  AppendSimple(RecordType::kStepArgInt, static_cast<uint64_t>(step), value, key,
               nullptr, 0);
}

void Recorder::StepArgStr(int64_t step, const char* key, const char* value) {
  if (generation() == 0 || key == nullptr) return;
  // "key\0value", each part bounded, so one record carries both.
  char buf[kMaxNameBytes + 1 + kMaxArgValueBytes];
  const size_t kl = BoundedLen(key, kMaxNameBytes);
  const size_t vl = BoundedLen(value, kMaxArgValueBytes);
  std::memcpy(buf, key, kl);
  buf[kl] = '\0';
  if (vl > 0) std::memcpy(buf + kl + 1, value, vl);
  AppendNamed(RecordType::kStepArgStr, static_cast<uint64_t>(step), 0, buf,
              kl + 1 + vl);
}

void Recorder::StepError(int64_t step, const char* error) {
  AppendSimple(RecordType::kStepError, static_cast<uint64_t>(step), 0,
               error == nullptr ? "error" : error, nullptr, 0);
}

uint64_t Recorder::SpanBegin(const char* name) {
  if (generation() == 0) return 0;
  Slot* slot = LocalSlot();
  const uint64_t id = (static_cast<uint64_t>(slot->tid) << 32) |
                      (slot->next_op++ & 0xffffffffu);
  AppendSimple(RecordType::kSpanBegin, id, 0, name, nullptr, 0);
  return id;
}

void Recorder::SpanEnd(uint64_t span_id) {
  if (span_id == 0) return;
  AppendSimple(RecordType::kSpanEnd, span_id, 0, nullptr, nullptr, 0);
}

void Recorder::AppendNamed(RecordType type, uint64_t id, int64_t arg,
                           const char* name, size_t name_len,
                           const int64_t* extra, int n_extra) {
  const uint64_t gen = generation();
  if (gen == 0) return;
  Slot* slot = LocalSlot();
  const size_t bytes =
      sizeof(RecordHeader) + Pad8(name_len) + 8 * static_cast<size_t>(n_extra);
  Chunk* chunk = nullptr;
  char* p = Reserve(slot, gen, bytes, &chunk);
  if (p == nullptr) return;
  RecordHeader h{static_cast<uint16_t>(type),
                 static_cast<uint16_t>(name_len),
                 static_cast<uint32_t>(bytes),
                 clock_->NowTicks(),
                 id,
                 arg};
  std::memcpy(p, &h, sizeof(h));
  if (name_len > 0) std::memcpy(p + sizeof(h), name, name_len);
  if (n_extra > 0) {
    std::memcpy(p + sizeof(h) + Pad8(name_len), extra,
                8 * static_cast<size_t>(n_extra));
  }
  Publish(slot, chunk, bytes);
}

void Recorder::Instant(const char* name) {
  AppendSimple(RecordType::kInstant, 0, 0, name, nullptr, 0);
}

void Recorder::Counter(const char* name, double value) {
  int64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  AppendSimple(RecordType::kCounter, 0, bits, name, nullptr, 0);
}

void Recorder::ThreadName(const char* name) {
  AppendSimple(RecordType::kThreadName, 0, 0, name, nullptr, 0);
}

std::deque<QueueItem> Recorder::TakeQueued(absl::Duration timeout) {
  MutexLock lock(&mu_);
  if (queue_.empty() && !wake_) cv_.WaitWithTimeout(&mu_, timeout);
  wake_ = false;
  std::deque<QueueItem> out;
  out.swap(queue_);
  return out;
}

void Recorder::Wake() {
  MutexLock lock(&mu_);
  wake_ = true;
  cv_.Signal();
}

uint64_t Recorder::TakeDroppedBufferFull() {
  return dropped_buffer_full_.exchange(0, std::memory_order_relaxed);
}

uint64_t Recorder::bytes_in_use() const {
  return static_cast<uint64_t>(chunks_in_use_.load(std::memory_order_relaxed)) *
         (options_.chunk_bytes + sizeof(Chunk));
}

uint64_t Recorder::peak_bytes_in_use() const {
  return static_cast<uint64_t>(peak_chunks_.load(std::memory_order_relaxed)) *
         (options_.chunk_bytes + sizeof(Chunk));
}

void Recorder::ResetThreadCacheAfterFork() {
  t_cache = LocalCache{};
  t_tid = 0;
}

bool DecodeInputs(std::string_view block, std::vector<InputMeta>* out) {
  out->clear();
  if (block.empty()) return true;
  const char* q = block.data();
  const char* const end = q + block.size();
  if (end - q < 8) return false;
  uint32_t n;
  std::memcpy(&n, q, 4);
  q += 8;
  for (uint32_t i = 0; i < n; ++i) {
    if (end - q < 8) break;
    int32_t nd;
    uint32_t dl;
    std::memcpy(&nd, q, 4);
    std::memcpy(&dl, q + 4, 4);
    q += 8;
    if (static_cast<size_t>(end - q) < Pad8(dl)) break;
    InputMeta m;
    m.ndim = nd;
    m.dtype = std::string_view(q, dl);
    q += Pad8(dl);
    if (nd > 0) {
      if (static_cast<size_t>(end - q) < 8 * static_cast<size_t>(nd)) break;
      m.dims = reinterpret_cast<const int64_t*>(q);  // 8-aligned.
      q += 8 * static_cast<size_t>(nd);
    }
    out->push_back(m);
  }
  if (out->size() == n) return true;
  out->clear();
  return false;
}

bool DecodeRecord(const char* p, size_t avail, RecordView* out,
                  size_t* consumed, bool with_inputs) {
  if (avail < sizeof(RecordHeader)) return false;
  RecordHeader h;
  std::memcpy(&h, p, sizeof(h));
  if (h.size < sizeof(RecordHeader) || h.size > avail || h.size % 8 != 0) {
    return false;
  }
  const size_t name_end = sizeof(RecordHeader) + Pad8(h.name_len);
  if (name_end > h.size) return false;
  out->type = static_cast<RecordType>(h.type);
  out->ts_ns = h.ts_ns;
  out->id = h.id;
  out->arg = h.arg;
  out->name = std::string_view(p + sizeof(RecordHeader), h.name_len);
  out->inputs.clear();
  out->inputs_block = std::string_view();
  const char* q = p + name_end;
  const char* end = p + h.size;
  if (out->type == RecordType::kOpComplete) {
    if (end - q < 16) return false;
    int64_t tail[2];
    std::memcpy(tail, q, 16);
    out->end_ns = tail[0];
    out->op_tid = static_cast<uint32_t>(tail[1]);
    q += 16;
  }
  if (out->type == RecordType::kOpLeaf) {
    if (end - q < 8) return false;
    end -= 8;
    std::memcpy(&out->end_ns, end, 8);
  }
  if ((out->type == RecordType::kOpBegin ||
       out->type == RecordType::kOpComplete ||
       out->type == RecordType::kOpLeaf) &&
      q < end) {
    out->inputs_block = std::string_view(q, static_cast<size_t>(end - q));
    if (with_inputs && !DecodeInputs(out->inputs_block, &out->inputs)) {
      return false;
    }
  } else if (out->type == RecordType::kStepArgs) {
    if (end - q < 32) return false;
    std::memcpy(out->step_args, q, 32);
  }
  *consumed = h.size;
  return true;
}

}  // namespace vllm_profiler::probe
