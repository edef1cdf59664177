// Fuzzes the pod selection: `kubectl get pods -o json`'s answer is whatever
// the program called kubectl prints.
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/vpctl/pods.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  static_cast<void>(vllm_profiler::collector::vpctl::ParsePods(in, {}));
  static_cast<void>(vllm_profiler::collector::vpctl::ParsePods(in, {"a", "b"}));
  return 0;
}
