#include "collector/capture_origin.h"

namespace vllm_profiler::collector {

std::string OriginName(v1::CaptureOrigin origin) {
  switch (origin) {
    case v1::CAPTURE_ORIGIN_WINDOW:
      return "window";
    case v1::CAPTURE_ORIGIN_COMMAND:
      return "command";
    case v1::CAPTURE_ORIGIN_TRIGGER:
      return "trigger";
    default:
      return "";
  }
}

v1::CaptureOrigin OriginFromName(absl::string_view name) {
  if (name == "window") return v1::CAPTURE_ORIGIN_WINDOW;
  if (name == "command") return v1::CAPTURE_ORIGIN_COMMAND;
  if (name == "trigger") return v1::CAPTURE_ORIGIN_TRIGGER;
  return v1::CAPTURE_ORIGIN_UNSPECIFIED;
}

}  // namespace vllm_profiler::collector
