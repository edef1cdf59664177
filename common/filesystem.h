// A small filesystem seam: the collector's trace directory, the webhook's
// certificates and port file.
//
// Code that writes files goes through Filesystem, so tests can inject the
// faults that matter in production (a full disk, a directory that is not
// writable) without root or a tiny tmpfs, and every file that must never be
// seen half-written uses the one atomic write here. Default() is the real
// POSIX implementation; filesystem_testing.h has a faulty one.
//
// Thread safety: Filesystem methods may be called from any thread. A
// WritableFile / ReadableFile is used by one thread at a time.
// Errors: every method returns an absl::Status whose message names the
// operation, the path and strerror(errno), e.g.
//   "write /traces/.trace-1.tmp: No space left on device".
#ifndef VLLM_PROFILER_COMMON_FILESYSTEM_H_
#define VLLM_PROFILER_COMMON_FILESYSTEM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vllm_profiler {

// Maps an errno value to a Status: "<what>: strerror(err)". ENOSPC and
// EDQUOT become RESOURCE_EXHAUSTED, EACCES/EPERM/EROFS PERMISSION_DENIED,
// ENOENT NOT_FOUND, everything else INTERNAL.
absl::Status ErrnoStatus(int err, absl::string_view what);

// A file opened for writing. Append() may buffer; Close() writes what is
// left, fsyncs and closes. The destructor closes without fsync.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  virtual absl::Status Close() = 0;
};

// A file opened for sequential reading.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `n` bytes into `buf`; returns 0 at end of file.
  virtual absl::StatusOr<size_t> Read(char* buf, size_t n) = 0;
};

struct FileStat {
  uint64_t size = 0;
  int64_t mtime_unix_ms = 0;
  bool is_dir = false;
  // A regular file (not a directory, symlink, device, FIFO...).
  bool is_regular = false;
};

class Filesystem {
 public:
  virtual ~Filesystem() = default;

  // Creates or truncates `path` (mode 0644).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  virtual absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(
      const std::string& path) = 0;
  // rename(2), then fsync of the containing directory.
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  virtual absl::Status Remove(const std::string& path) = 0;
  // mkdir -p.
  virtual absl::Status CreateDirs(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, without "." and "..".
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  virtual absl::StatusOr<FileStat> Stat(const std::string& path) = 0;
  // chmod(2): sets `mode` exactly (the umask does not apply).
  virtual absl::Status SetMode(const std::string& path, uint32_t mode) = 0;

  // Whole small file (sidecars); fails beyond `max_bytes`.
  absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                            size_t max_bytes);
  // Writes `data` to `path` atomically: `path`.tmp is written, fsynced and
  // renamed over `path` (the directory fsynced), so a reader sees the old
  // file or the new one, never part of one. On failure the temp file is
  // removed and `path` is untouched. The file gets mode 0644 minus the
  // umask, or exactly `mode` when given (set before any byte is written, so
  // a private key is never readable by others).
  absl::Status WriteFileAtomically(const std::string& path,
                                   absl::string_view data);
  absl::Status WriteFileAtomically(const std::string& path,
                                   absl::string_view data, uint32_t mode);

  // The real POSIX filesystem (a process-wide singleton).
  static Filesystem* Default();

 private:
  absl::Status WriteAtomically(const std::string& path, absl::string_view data,
                               std::optional<uint32_t> mode);
};

}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COMMON_FILESYSTEM_H_
