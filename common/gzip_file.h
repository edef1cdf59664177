// gzip over the Filesystem seam: a WritableFile that gzips as it writes
// (traces stored as .json.gz). The codec itself is common/gzip.h.
#ifndef VLLM_PROFILER_COMMON_GZIP_FILE_H_
#define VLLM_PROFILER_COMMON_GZIP_FILE_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/filesystem.h"
#include "common/gzip.h"

namespace vllm_profiler {

// A WritableFile that gzips into `inner`. Close() finishes the stream and
// closes `inner`.
std::unique_ptr<WritableFile> NewGzipWritableFile(
    std::unique_ptr<WritableFile> inner, int level = 1);

}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COMMON_GZIP_FILE_H_
