// Fuzzes `vpctl merge`: the input is split at the first NUL into two trace
// files (any file a user names is merged: the bytes are untrusted).
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/vpctl/merge.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  std::vector<vllm_profiler::collector::vpctl::MergeInput> inputs = {
      {"a.json", in.substr(0, nul)},
      {"b.json", nul == std::string::npos ? in : in.substr(nul + 1)}};
  vllm_profiler::collector::vpctl::MergeOptions options;
  options.force = size % 2 == 0;
  static_cast<void>(
      vllm_profiler::collector::vpctl::MergeTraceJson(inputs, options));
  return 0;
}
