// The names of capture origins, as trace files, their sidecar TraceInfo JSON
// and GET /traces spell them.
#ifndef VLLM_PROFILER_COLLECTOR_CAPTURE_ORIGIN_H_
#define VLLM_PROFILER_COLLECTOR_CAPTURE_ORIGIN_H_

#include <string>

#include "absl/strings/string_view.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

// "window", "command", "trigger"; "" for UNSPECIFIED (and values this build
// does not know).
std::string OriginName(v1::CaptureOrigin origin);
// The inverse; UNSPECIFIED for any other name.
v1::CaptureOrigin OriginFromName(absl::string_view name);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_CAPTURE_ORIGIN_H_
