// The sender's share of an operator's cost: converting its two records
// into a wire Event, and serializing the batch (what gRPC then writes).
// Items are operators (begin + end pairs), with two [64,256] float inputs.
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "google/protobuf/arena.h"
#include "probe/core/event_converter.h"
#include "probe/core/recorder.h"

namespace vllm_profiler::probe {
namespace {

constexpr int kOpsPerRound = 1000;

// Records kOpsPerRound operators into chunks and returns them.
std::deque<QueueItem> RecordRound(Recorder& r, uint64_t gen) {
  r.Begin(gen);
  const int64_t a[2] = {64, 256};
  const int64_t b[2] = {256, 768};
  InputArg in[2] = {{a, 2, "float"}, {b, 2, "float"}};
  for (int i = 0; i < kOpsPerRound; ++i) {
    r.OpEnd(r.OpBegin(i % 2 ? "aten::mm" : "aten::add", 12, in, 2));
  }
  r.End(nullptr, gen);
  return r.TakeQueued(absl::ZeroDuration());
}

void Convert(benchmark::State& state, bool serialize) {
  Recorder r(Recorder::Options{}, RealClock::Get());
  StringTable strings;
  EventConverter::Options co;
  co.thread_name = [](uint32_t) { return std::string("MainThread"); };
  EventConverter converter(co, &strings);
  std::string wire;
  uint64_t gen = 0;
  // As the sender: the batch's arena starts in one reused 512 KiB block.
  std::unique_ptr<char[]> block(new char[512 << 10]);
  google::protobuf::ArenaOptions ao;
  ao.initial_block = block.get();
  ao.initial_block_size = 512 << 10;
  ao.start_block_size = 64 << 10;
  ao.max_block_size = 1 << 20;
  for (auto _ : state) {
    state.PauseTiming();
    std::deque<QueueItem> items = RecordRound(r, ++gen);
    state.ResumeTiming();
    google::protobuf::Arena arena(ao);
    auto* batch =
        google::protobuf::Arena::CreateMessage<v1::EventBatch>(&arena);
    for (QueueItem& i : items) {
      if (i.chunk == nullptr) continue;
      converter.Convert(*i.chunk, batch);
    }
    if (serialize) {
      wire.clear();
      batch->SerializeToString(&wire);
      benchmark::DoNotOptimize(wire.data());
    }
    state.PauseTiming();
    for (QueueItem& i : items) {
      if (i.chunk != nullptr) r.Release(i.chunk);
    }
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kOpsPerRound);
}

void BM_ConvertOps(benchmark::State& state) { Convert(state, false); }
BENCHMARK(BM_ConvertOps);
void BM_ConvertAndSerializeOps(benchmark::State& state) {
  Convert(state, true);
}
BENCHMARK(BM_ConvertAndSerializeOps);

}  // namespace
}  // namespace vllm_profiler::probe

BENCHMARK_MAIN();
