// Fuzzes the probe decoding and trace writing chain: a sequence of
// serialized ProbeMessages, framed as [2-byte little-endian length][bytes],
// goes through ProbeStream (validation) and, when accepted, into a Capture
// writing Chrome JSON to memory, as ProbeService does. The first error ends
// the stream. The trace must always be valid JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "collector/capture.h"
#include "collector/probe_stream.h"
#include "common/filesystem_testing.h"
#include "nlohmann/json.hpp"
#include "proto/profiler.pb.h"

namespace {

using vllm_profiler::StringFile;
using vllm_profiler::WritableFile;
using vllm_profiler::collector::Capture;
using vllm_profiler::collector::ProbeStream;
namespace v1 = vllm_profiler::v1;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ProbeStream::Options options;
  options.max_batch_bytes = 4096;
  options.max_string_bytes = 1 << 16;
  ProbeStream stream(options);
  std::string out;
  Capture::Options capture_options;
  capture_options.max_remembered_ops = 4;
  Capture capture("fuzz", v1::CAPTURE_ORIGIN_WINDOW, {}, capture_options);
  capture.SetFile(std::unique_ptr<WritableFile>(new StringFile(&out)));
  v1::ProbeMessage message;
  size_t pos = 0;
  while (pos + 2 <= size) {
    size_t len = data[pos] | (static_cast<size_t>(data[pos + 1]) << 8);
    pos += 2;
    if (len > size - pos) len = size - pos;
    absl::string_view bytes(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    if (!vllm_profiler::collector::ParseProbeMessage(bytes, &message).ok()) {
      break;
    }
    if (!stream.Accept(message, len).ok()) break;
    switch (message.payload_case()) {
      case v1::ProbeMessage::kCaptureStarted:
        capture.Join(stream, message.capture_started(), absl::UnixEpoch());
        break;
      case v1::ProbeMessage::kBatch:
        capture.WriteBatch(stream, message.batch());
        break;
      case v1::ProbeMessage::kCaptureFinished:
        capture.FinishProcess(stream.pid(), message.capture_finished());
        break;
      default:
        break;
    }
  }
  if (stream.has_hello()) capture.DisconnectProcess(stream.pid(), "end");
  capture.Finish();
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) std::abort();
  return 0;
}
