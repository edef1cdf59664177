// Fuzzes TraceTimeShifter: any bytes, fed in any chunking, must give an
// error or output, never a crash, and the output must not depend on where
// the chunks were cut. The first byte picks the cut and the shift.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "collector/trace_time_shift.h"

namespace {

absl::Status Shift(absl::string_view in, size_t cut, int64_t shift,
                   std::string* out) {
  vllm_profiler::collector::TraceTimeShifter shifter(shift);
  cut = cut < in.size() ? cut : in.size();
  absl::Status s = shifter.Feed(in.substr(0, cut), out);
  if (s.ok()) s = shifter.Feed(in.substr(cut), out);
  if (s.ok()) s = shifter.Finish(out);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t cut = data[0];
  const int64_t shift = static_cast<int64_t>(data[0]) * 1234567;
  absl::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string whole;
  std::string split;
  absl::Status a = Shift(input, input.size(), shift, &whole);
  absl::Status b = Shift(input, cut, shift, &split);
  if (a.ok() != b.ok()) abort();
  if (a.ok() && whole != split) abort();
  return 0;
}
