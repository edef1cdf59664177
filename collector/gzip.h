// Traces stored as .json.gz: a WritableFile that gzips as it writes. The
// compressor itself (and the decompressor the download paths use) is
// common/gzip.h.
#ifndef VLLM_PROFILER_COLLECTOR_GZIP_H_
#define VLLM_PROFILER_COLLECTOR_GZIP_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "collector/filesystem.h"
#include "common/gzip.h"

namespace vllm_profiler::collector {

// A WritableFile that gzips into `inner`. Close() finishes the stream and
// closes `inner`.
std::unique_ptr<WritableFile> NewGzipWritableFile(
    std::unique_ptr<WritableFile> inner, int level = 1);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_GZIP_H_
