// Streaming gzip (RFC 1952) compression and decompression over zlib.
//
// Shared by the collector (traces stored as .json.gz, conversion between
// stored and requested encodings) and the HTTP server (gzip on the fly).
//
// Thread safety: none; one object per stream. Errors: corrupt input to
// GzipDecompressor returns DATA_LOSS naming zlib's message.
#ifndef VLLM_PROFILER_COMMON_GZIP_H_
#define VLLM_PROFILER_COMMON_GZIP_H_

#include <cstddef>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vllm_profiler {

class GzipCompressor {
 public:
  // `level`: zlib level, 1 (fast, the default: traces compress well anyway)
  // to 9.
  explicit GzipCompressor(int level = 1);
  ~GzipCompressor();
  GzipCompressor(const GzipCompressor&) = delete;
  GzipCompressor& operator=(const GzipCompressor&) = delete;

  // Compresses `in`, appending output to `out`. With `finish` the gzip
  // trailer is written; no call may follow.
  absl::Status Compress(absl::string_view in, bool finish, std::string* out);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

class GzipDecompressor {
 public:
  GzipDecompressor();
  ~GzipDecompressor();
  GzipDecompressor(const GzipDecompressor&) = delete;
  GzipDecompressor& operator=(const GzipDecompressor&) = delete;

  // Appends the decompressed bytes of `in` to `out`.
  absl::Status Decompress(absl::string_view in, std::string* out);
  // True once the gzip trailer was seen.
  bool done() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Decompresses a whole gzip stream. DATA_LOSS when `data` is corrupt or ends
// before the gzip trailer; RESOURCE_EXHAUSTED when the output would exceed
// `max_out` bytes (a bound for untrusted input).
absl::StatusOr<std::string> Gunzip(
    absl::string_view data,
    size_t max_out = std::numeric_limits<size_t>::max());

// True when `data` starts with the gzip magic bytes (1f 8b).
bool LooksGzipped(absl::string_view data);

}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COMMON_GZIP_H_
