// Google Benchmark of the webhook's request path without the network:
//   BM_Review/<pod>        Admitter::Review (parse, checks, patch, base64,
//                          response serialisation)
//   BM_Handler/<pod>       the same through WebhookHandler (content-type
//                          check, metrics, logging at WARNING)
//   BM_JsonBaseline/<pod>  nlohmann::json parse + dump of the same body: the
//                          floor for any handler built on this parser
// Pods: the golden reviews plain (1 container, injected), several (3
// containers, injected), skip (label not matched).
#include <fstream>
#include <sstream>
#include <string>

#include "benchmark/benchmark.h"
#include "common/logging.h"
#include "nlohmann/json.hpp"
#include "webhook/admission.h"
#include "webhook/handler.h"

namespace vllm_profiler::webhook {
namespace {

std::string Read(const char* name) {
  std::ifstream in(std::string("webhook/testdata/golden/") + name +
                   ".review.json");
  std::stringstream s;
  s << in.rdbuf();
  if (s.str().empty()) std::abort();
  return s.str();
}

const char* kPods[] = {"01_plain_vllm", "02_several_containers",
                       "13_label_missing"};

void BM_Review(benchmark::State& state) {
  const std::string body = Read(kPods[state.range(0)]);
  Admitter admitter{InjectionConfig{}};
  for (auto _ : state) {
    AdmissionResult r = admitter.Review(body);
    benchmark::DoNotOptimize(r.body.data());
  }
  state.SetBytesProcessed(state.iterations() * body.size());
  state.SetLabel(kPods[state.range(0)]);
}
BENCHMARK(BM_Review)->DenseRange(0, 2);

void BM_Handler(benchmark::State& state) {
  SetMinLogLevel(LogLevel::kWarning);
  Admitter admitter{InjectionConfig{}};
  WebhookMetrics metrics;
  WebhookHandler handler(&admitter, &metrics, {});
  http::Request req;
  req.method = "POST";
  req.path = "/mutate";
  req.headers["content-type"] = "application/json";
  req.body = Read(kPods[state.range(0)]);
  for (auto _ : state) {
    http::Response r = handler.Handle(req);
    benchmark::DoNotOptimize(r.body.data());
  }
  state.SetLabel(kPods[state.range(0)]);
}
BENCHMARK(BM_Handler)->DenseRange(0, 2);

void BM_JsonBaseline(benchmark::State& state) {
  const std::string body = Read(kPods[state.range(0)]);
  for (auto _ : state) {
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    std::string out = j.dump();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * body.size());
  state.SetLabel(kPods[state.range(0)]);
}
BENCHMARK(BM_JsonBaseline)->DenseRange(0, 2);

}  // namespace
}  // namespace vllm_profiler::webhook

BENCHMARK_MAIN();
