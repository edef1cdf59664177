// Fuzzes the env parser: the input is a sequence of NAME=VALUE lines.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "probe/core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> env;
  std::string text(reinterpret_cast<const char*>(data), size);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string line = text.substr(pos, nl - pos);
    size_t eq = line.find('=');
    if (eq != std::string::npos) {
      env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    pos = nl + 1;
  }
  std::vector<std::string> problems;
  vllm_profiler::probe::ProbeConfig c = vllm_profiler::probe::ParseProbeConfig(
      [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      &problems);
  if (c.start_step == 0 || c.max_buffer_bytes == 0) __builtin_trap();
  // Level gpu only with a GPU ring of at least 64 KiB within the bound.
  if (c.flight == vllm_profiler::probe::FlightLevel::kGpu &&
      (!c.gpu ||
       c.flight_gpu_bytes < vllm_profiler::probe::kMinFlightGpuBytes ||
       c.flight_gpu_bytes +
               c.flight_steps * vllm_profiler::probe::kFlightStepBytes >
           c.max_buffer_bytes)) {
    __builtin_trap();
  }
  for (const std::string& p : problems) {
    if (p.find('\n') != std::string::npos) __builtin_trap();  // One line.
  }
  return 0;
}
