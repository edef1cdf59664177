// The record path: one operator begin/end into the thread-local buffer.
#include <atomic>
#include <thread>

#include "benchmark/benchmark.h"
#include "probe/core/recorder.h"

namespace vllm_profiler::probe {
namespace {

void BM_OpBeginEnd_NotCapturing(benchmark::State& state) {
  Recorder r(Recorder::Options{}, RealClock::Get());
  for (auto _ : state) {
    r.OpEnd(r.OpBegin("aten::mm", 12, nullptr, 0));
  }
}
BENCHMARK(BM_OpBeginEnd_NotCapturing);

// Capturing; a sender-like drain releases chunks so the budget never fills.
void BM_OpBeginEnd_Capturing(benchmark::State& state) {
  Recorder r(Recorder::Options{}, RealClock::Get());
  r.Begin(1);
  int64_t n = 0;
  for (auto _ : state) {
    r.OpEnd(r.OpBegin("aten::mm", 12, nullptr, 0));
    if ((++n & 4095) == 0) {
      state.PauseTiming();
      for (QueueItem& i : r.TakeQueued(absl::ZeroDuration()))
        r.Release(i.chunk);
      state.ResumeTiming();
    }
  }
  r.End(nullptr, 1);
  for (QueueItem& i : r.TakeQueued(absl::ZeroDuration())) r.Release(i.chunk);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OpBeginEnd_Capturing);

// Arg: operators between two drains. 1024 is a sender that keeps up
// (two 64 KiB chunks in flight); 32768, about 70 chunks, is the sender's
// 20 ms linger under an operator-dense loop (op_bench.py's mm), where chunks
// beyond the pool used to come fresh from malloc and fault on first touch.
void BM_OpBeginEnd_CapturingShapes(benchmark::State& state) {
  Recorder r(Recorder::Options{}, RealClock::Get());
  r.Begin(1);
  const int64_t a[2] = {64, 256};
  const int64_t b[2] = {256, 768};
  InputArg in[2] = {{a, 2, "float"}, {b, 2, "float"}};
  const int64_t drain_every = state.range(0);
  int64_t n = 0;
  for (auto _ : state) {
    r.OpEnd(r.OpBegin("aten::mm", 12, in, 2));
    if (++n % drain_every == 0) {
      state.PauseTiming();
      for (QueueItem& i : r.TakeQueued(absl::ZeroDuration()))
        r.Release(i.chunk);
      state.ResumeTiming();
    }
  }
  r.End(nullptr, 1);
  for (QueueItem& i : r.TakeQueued(absl::ZeroDuration())) r.Release(i.chunk);
}
BENCHMARK(BM_OpBeginEnd_CapturingShapes)->Arg(1024)->Arg(32768);

// As a step thread sees it: a real sender thread on another core takes the
// chunks, decodes every record (reading its lines into that core's cache)
// and releases them to the pool, while this thread records and, between
// operators, does a little work with locked instructions, as torch's
// refcounting does. The chunks' lines come back cold to this thread; the
// figure includes what their misses cost the record stores and the locked
// instructions after them. Arg 1: the sender decodes each chunk, as the
// probe's does; 0: it releases chunks unread (the lines stay here), which
// isolates the cost of the transfers. "dropped" must stay 0 (the sender
// keeps up).
void BM_OpBeginEnd_ConcurrentSender(benchmark::State& state) {
  Recorder r(Recorder::Options{}, RealClock::Get());
  r.Begin(1);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> decoded{0};
  const bool decode = state.range(0) != 0;
  std::thread sender([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      for (QueueItem& i : r.TakeQueued(absl::Milliseconds(1))) {
        if (i.chunk == nullptr) continue;
        if (decode) {
          int64_t n = 0;
          ForEachRecord(*i.chunk, [&](const RecordView&) { ++n; });
          decoded.fetch_add(n, std::memory_order_relaxed);
        }
        r.Release(i.chunk);
      }
    }
  });
  const int64_t a[2] = {64, 256};
  const int64_t b[2] = {256, 768};
  InputArg in[2] = {{a, 2, "float"}, {b, 2, "float"}};
  std::atomic<int64_t> refcount{1};  // A tensor's, as torch bumps it.
  for (auto _ : state) {
    refcount.fetch_add(1, std::memory_order_relaxed);
    const uint64_t id = r.OpBegin("aten::mm", 12, in, 2);
    refcount.fetch_sub(1, std::memory_order_acq_rel);
    r.OpEnd(id);
    refcount.fetch_add(1, std::memory_order_relaxed);
    refcount.fetch_sub(1, std::memory_order_acq_rel);
  }
  r.End(nullptr, 1);
  stop.store(true);
  r.Wake();
  sender.join();
  for (QueueItem& i : r.TakeQueued(absl::ZeroDuration())) r.Release(i.chunk);
  state.counters["dropped"] = static_cast<double>(r.TakeDroppedBufferFull());
}
BENCHMARK(BM_OpBeginEnd_ConcurrentSender)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
}  // namespace vllm_profiler::probe

BENCHMARK_MAIN();
