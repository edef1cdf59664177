// Test doubles for the Filesystem seam: FaultyFilesystem, the real POSIX
// filesystem with injectable faults (ENOSPC after N bytes written, EACCES on
// create), and StringFile, a WritableFile into a string.
//
// Thread safety: the fault knobs are atomics; set them from the test thread
// while the collector runs.
#ifndef VLLM_PROFILER_COMMON_FILESYSTEM_TESTING_H_
#define VLLM_PROFILER_COMMON_FILESYSTEM_TESTING_H_

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/filesystem.h"

namespace vllm_profiler {

class FaultyFilesystem : public Filesystem {
 public:
  FaultyFilesystem() = default;
  FaultyFilesystem(const FaultyFilesystem&) = delete;
  FaultyFilesystem& operator=(const FaultyFilesystem&) = delete;

  // Every write fails with ENOSPC once this many bytes were written to
  // files created after the call (-1: never).
  void FailWritesAfter(int64_t bytes) {
    written_.store(0);
    fail_after_.store(bytes);
  }
  // Creating files fails with EACCES while set.
  void FailCreate(bool fail) { fail_create_.store(fail); }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(
      const std::string& path) override {
    return Filesystem::Default()->OpenForRead(path);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return Filesystem::Default()->Rename(from, to);
  }
  absl::Status Remove(const std::string& path) override {
    return Filesystem::Default()->Remove(path);
  }
  absl::Status CreateDirs(const std::string& path) override {
    return Filesystem::Default()->CreateDirs(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    return Filesystem::Default()->ListDir(dir);
  }
  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    return Filesystem::Default()->Stat(path);
  }
  absl::Status SetMode(const std::string& path, uint32_t mode) override {
    return Filesystem::Default()->SetMode(path, mode);
  }

 private:
  friend class FaultyWritableFile;
  std::atomic<int64_t> fail_after_{-1};
  std::atomic<int64_t> written_{0};
  std::atomic<bool> fail_create_{false};
};

class FaultyWritableFile : public WritableFile {
 public:
  FaultyWritableFile(FaultyFilesystem* fs, std::string path,
                     std::unique_ptr<WritableFile> real)
      : fs_(fs), path_(std::move(path)), real_(std::move(real)) {}
  absl::Status Append(absl::string_view data) override {
    int64_t limit = fs_->fail_after_.load();
    if (limit >= 0 &&
        fs_->written_.fetch_add(static_cast<int64_t>(data.size())) +
                static_cast<int64_t>(data.size()) >
            limit) {
      return ErrnoStatus(ENOSPC, "write " + path_);
    }
    return real_->Append(data);
  }
  absl::Status Close() override { return real_->Close(); }

 private:
  FaultyFilesystem* fs_;
  std::string path_;
  std::unique_ptr<WritableFile> real_;
};

inline absl::StatusOr<std::unique_ptr<WritableFile>>
FaultyFilesystem::NewWritableFile(const std::string& path) {
  if (fail_create_.load()) return ErrnoStatus(EACCES, "create " + path);
  absl::StatusOr<std::unique_ptr<WritableFile>> real =
      Filesystem::Default()->NewWritableFile(path);
  if (!real.ok()) return real.status();
  return std::unique_ptr<WritableFile>(
      new FaultyWritableFile(this, path, std::move(*real)));
}

// A WritableFile that appends to a caller-owned string (what a writer
// produced, without a disk). Counts appends and records Close().
class StringFile : public WritableFile {
 public:
  explicit StringFile(std::string* out) : out_(out) {}
  absl::Status Append(absl::string_view data) override {
    out_->append(data.data(), data.size());
    ++appends;
    return absl::OkStatus();
  }
  absl::Status Close() override {
    closed = true;
    return absl::OkStatus();
  }
  int appends = 0;
  bool closed = false;

 private:
  std::string* out_;
};

}  // namespace vllm_profiler

#endif  // VLLM_PROFILER_COMMON_FILESYSTEM_TESTING_H_
