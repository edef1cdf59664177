// Fuzzes ProbeStream over a sequence of serialized ProbeMessages, framed as
// [2-byte little-endian length][bytes]... The first error ends the stream,
// as ProbeService does. Accepted batches are also resolved through the
// accessors the capture writer uses.
#include <cstddef>
#include <cstdint>

#include "collector/probe_stream.h"
#include "proto/profiler.pb.h"

using vllm_profiler::collector::ProbeStream;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ProbeStream::Options options;
  options.max_batch_bytes = 4096;
  options.max_string_bytes = 1 << 16;
  ProbeStream stream(options);
  vllm_profiler::v1::ProbeMessage message;
  size_t pos = 0;
  while (pos + 2 <= size) {
    size_t len = data[pos] | (static_cast<size_t>(data[pos + 1]) << 8);
    pos += 2;
    if (len > size - pos) len = size - pos;
    absl::string_view bytes(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    if (!vllm_profiler::collector::ParseProbeMessage(bytes, &message).ok()) {
      return 0;
    }
    if (!stream.Accept(message, len).ok()) return 0;
    if (message.has_batch()) {
      uint64_t sum = 0;
      for (const auto& e : message.batch().events()) {
        sum += stream.String(e.name_id()).size();
        sum += static_cast<uint64_t>(stream.ToWallNs(e.start_ns()));
        sum += stream.ThreadName(e.tid()).size();
      }
      if (sum == 1) return 0;  // Keep the loop.
    }
  }
  return 0;
}
