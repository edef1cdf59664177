// The record path: one operator begin/end into the thread-local buffer.
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

}  // namespace
}  // namespace vllm_profiler::probe

BENCHMARK_MAIN();
