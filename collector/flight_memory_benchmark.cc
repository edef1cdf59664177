// Collector memory held by the flight recorder per ringed step: feeds
// 10,000 step summaries per process (all within the last minute, so every
// one stays in `vpctl top`'s window: the worst case) through StepHealth and
// TriggerEvaluator, and prints the heap in use before and after
// (mallinfo2). Usage: flight_memory_benchmark [processes] [steps]
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "collector/step_health.h"
#include "collector/trigger_evaluator.h"

int main(int argc, char** argv) {
  using namespace vllm_profiler::collector;
  const int processes = argc > 1 ? std::atoi(argv[1]) : 1;
  const int steps = argc > 2 ? std::atoi(argv[2]) : 10000;
  const size_t before = mallinfo2().uordblks;
  {
    StepHealth health;
    TriggerEvaluator::Options o;
    o.factor = 3;
    o.window = 500;
    TriggerEvaluator eval(o);
    const absl::Time t0 = absl::Now();
    for (int p = 1; p <= processes; ++p) {
      std::vector<StepHealth::Sample> batch;
      for (int i = 1; i <= steps; ++i) {
        StepHealth::Sample s;
        s.step = i;
        s.duration_ms = 10 + (i % 7);
        s.tokens = 256;
        s.requests = 32;
        s.end = t0 + absl::Milliseconds(i * 5);
        batch.push_back(s);
        StepSample t;
        t.step = i;
        t.duration_ms = s.duration_ms;
        eval.OnStep(p, t, t0);
        if (batch.size() == 200) {  // One summary a second at 200 steps/s.
          health.OnSteps(p, {p, p - 1, "worker"}, batch, 0);
          batch.clear();
        }
      }
      health.OnSteps(p, {p, p - 1, "worker"}, batch, 0);
    }
    const size_t after = mallinfo2().uordblks;
    std::printf(
        "%d process(es) x %d steps: %zu bytes held, %.1f bytes per step\n",
        processes, steps, after - before,
        double(after - before) / (double(processes) * steps));
  }
  return 0;
}
