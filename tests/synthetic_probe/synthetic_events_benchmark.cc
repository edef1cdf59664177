// How fast the synthetic probe can produce batches (generation and proto
// serialization), so the end-to-end benchmark knows its load generator is
// not the bottleneck.
#include <string>

#include "benchmark/benchmark.h"
#include "tests/synthetic_probe/synthetic_events.h"

namespace vllm_profiler::synthetic_probe {
namespace {

void BM_GenerateAndSerialize(benchmark::State& state) {
  SyntheticEvents::Options o;
  o.total_events = 1ull << 62;
  o.batch_events = static_cast<uint32_t>(state.range(0));
  SyntheticEvents gen(o);
  v1::ProbeMessage message;
  std::string bytes;
  uint64_t events = 0, total_bytes = 0;
  for (auto _ : state) {
    gen.NextBatch(message.mutable_batch());
    message.SerializeToString(&bytes);
    events += message.batch().events_size();
    total_bytes += bytes.size();
  }
  state.counters["events/s"] = benchmark::Counter(static_cast<double>(events),
                                                  benchmark::Counter::kIsRate);
  state.counters["bytes/event"] =
      static_cast<double>(total_bytes) / static_cast<double>(events);
}
BENCHMARK(BM_GenerateAndSerialize)->Arg(500)->Arg(2000)->Arg(8000);

}  // namespace
}  // namespace vllm_profiler::synthetic_probe
