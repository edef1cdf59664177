// Fuzzes the trace summary (vpctl run parses the trace JSON it downloaded;
// the bytes come from a collector, which may be broken or not ours).
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/vpctl/summary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  vllm_profiler::collector::vpctl::SummaryOptions options;
  options.top_n = 3;
  static_cast<void>(
      vllm_profiler::collector::vpctl::SummarizeTraceJson(in, options));
  return 0;
}
