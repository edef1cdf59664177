// Cost per ended step of the trigger rules with the factor rule on (the
// rolling median over --trigger_window steps), one process.
//   bazel run -c opt //collector:trigger_evaluator_benchmark
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "collector/trigger_evaluator.h"

namespace vllm_profiler::collector {
namespace {

void BM_OnStepWithFactor(benchmark::State& state) {
  TriggerEvaluator::Options o;
  o.factor = 3;
  o.window = static_cast<uint32_t>(state.range(0));
  TriggerEvaluator e(o);
  std::mt19937 rng(1);
  std::lognormal_distribution<double> ms(3.0, 0.2);  // ~20 ms steps.
  std::vector<double> durations(4096);
  for (double& d : durations) d = ms(rng);
  const absl::Time now = absl::FromUnixSeconds(1700000000);
  StepSample s;
  int64_t i = 0;
  for (auto _ : state) {
    s.step = ++i;
    s.duration_ms = durations[i & 4095];
    benchmark::DoNotOptimize(e.OnStep(1, s, now));
  }
}
BENCHMARK(BM_OnStepWithFactor)->Arg(50)->Arg(500)->Arg(5000);

}  // namespace
}  // namespace vllm_profiler::collector
