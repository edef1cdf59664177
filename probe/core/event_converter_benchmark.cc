// The sender's share of an operator's cost: converting its two records
// into a wire Event, and serializing the batch (what gRPC then writes).
// Items are operators (begin + end pairs), with two [64,256] float inputs
// (first Arg 2) or none (0: shapes off); the second Arg 1 sends the inputs
// as input signatures (a collector that reads them), 0 inline.
// wire_bytes_per_op: the serialized batch over its operators.
//
// The batch's events are reused from round to round, as the sender reuses
// them, so a case's figure depends on where the heap put them: the cases
// that run after others read up to 1.7x higher. Compare builds one family
// at a time (--benchmark_filter=ConvertAndSerialize).
#include <string>

#include "benchmark/benchmark.h"
#include "probe/core/event_converter.h"
#include "probe/core/recorder.h"

namespace vllm_profiler::probe {
namespace {

constexpr int kOpsPerRound = 1000;

// Records kOpsPerRound operators into chunks and returns them.
std::deque<QueueItem> RecordRound(Recorder& r, uint64_t gen, int inputs) {
  r.Begin(gen);
  const int64_t a[2] = {64, 256};
  const int64_t b[2] = {256, 768};
  InputArg in[2] = {{a, 2, "float"}, {b, 2, "float"}};
  for (int i = 0; i < kOpsPerRound; ++i) {
    r.OpEnd(r.OpBegin(i % 2 ? "aten::mm" : "aten::add", 12, in, inputs));
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
  converter.set_input_signatures(state.range(1) != 0);
  std::string wire;
  uint64_t gen = 0;
  // As the sender (ProbeRuntime::ProcessAll): one batch message kept from
  // batch to batch, cleared after each send, so its events are reused.
  v1::EventBatch reused;
  v1::EventBatch* const batch = &reused;
  for (auto _ : state) {
    state.PauseTiming();
    std::deque<QueueItem> items =
        RecordRound(r, ++gen, static_cast<int>(state.range(0)));
    state.ResumeTiming();
    batch->Clear();
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
  if (serialize) {
    state.counters["wire_bytes_per_op"] =
        static_cast<double>(wire.size()) / kOpsPerRound;
  }
}

void BM_ConvertOps(benchmark::State& state) { Convert(state, false); }
BENCHMARK(BM_ConvertOps)->Args({0, 0})->Args({2, 0})->Args({2, 1});
void BM_ConvertAndSerializeOps(benchmark::State& state) {
  Convert(state, true);
}
BENCHMARK(BM_ConvertAndSerializeOps)->Args({0, 0})->Args({2, 0})->Args({2, 1});

}  // namespace
}  // namespace vllm_profiler::probe

BENCHMARK_MAIN();
