#include "common/filesystem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace vllm_profiler {

absl::Status ErrnoStatus(int err, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOENT:
      return absl::NotFoundError(message);
    default:
      return absl::InternalError(message);
  }
}

namespace {

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }
  PosixWritableFile(const PosixWritableFile&) = delete;
  PosixWritableFile& operator=(const PosixWritableFile&) = delete;

  absl::Status Append(absl::string_view data) override {
    if (fd_ < 0) return absl::FailedPreconditionError("file closed");
    const char* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, absl::StrCat("write ", path_));
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    return absl::OkStatus();
  }

  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    int fd = fd_;
    fd_ = -1;
    if (::fsync(fd) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus(err, absl::StrCat("fsync ", path_));
    }
    if (::close(fd) != 0) {
      return ErrnoStatus(errno, absl::StrCat("close ", path_));
    }
    return absl::OkStatus();
  }

 private:
  const std::string path_;
  int fd_;
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }
  PosixReadableFile(const PosixReadableFile&) = delete;
  PosixReadableFile& operator=(const PosixReadableFile&) = delete;

  absl::StatusOr<size_t> Read(char* buf, size_t n) override {
    while (true) {
      ssize_t r = ::read(fd_, buf, n);
      if (r >= 0) return static_cast<size_t>(r);
      if (errno != EINTR)
        return ErrnoStatus(errno, absl::StrCat("read ", path_));
    }
  }

 private:
  const std::string path_;
  const int fd_;
};

class PosixFilesystem : public Filesystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) override {
    int fd =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", path));
    return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
  }

  absl::StatusOr<std::unique_ptr<ReadableFile>> OpenForRead(
      const std::string& path) override {
    // Only regular files, never through a symlink: what is read is what
    // the collector wrote, not what someone linked into its directory.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat("open ", path, ": not a regular file"));
    }
    return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, fd));
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("rename ", from, " to ", to));
    }
    std::string dir = DirName(to);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);  // Best effort: the rename itself already happened.
      ::close(dfd);
    }
    return absl::OkStatus();
  }

  absl::Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) {
      return ErrnoStatus(errno, absl::StrCat("remove ", path));
    }
    return absl::OkStatus();
  }

  absl::Status CreateDirs(const std::string& path) override {
    if (path.empty()) return absl::InvalidArgumentError("empty directory path");
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return absl::OkStatus();
      return absl::FailedPreconditionError(
          absl::StrCat("mkdir ", path, ": exists and is not a directory"));
    }
    std::string parent = DirName(path);
    if (parent != path && parent != "/" && parent != ".") {
      absl::Status s = CreateDirs(parent);
      if (!s.ok()) return s;
    }
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("mkdir ", path));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus(errno, absl::StrCat("opendir ", dir));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  absl::StatusOr<FileStat> Stat(const std::string& path) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      return ErrnoStatus(errno, absl::StrCat("stat ", path));
    }
    FileStat out;
    out.size = static_cast<uint64_t>(st.st_size);
    out.mtime_unix_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 +
                        st.st_mtim.tv_nsec / 1000000;
    out.is_dir = S_ISDIR(st.st_mode);
    out.is_regular = S_ISREG(st.st_mode);
    return out;
  }

  absl::Status SetMode(const std::string& path, uint32_t mode) override {
    if (::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
      return ErrnoStatus(errno, absl::StrCat("chmod ", path));
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::string> Filesystem::ReadSmallFile(const std::string& path,
                                                      size_t max_bytes) {
  absl::StatusOr<std::unique_ptr<ReadableFile>> file = OpenForRead(path);
  if (!file.ok()) return file.status();
  std::string out;
  char buf[4096];
  while (true) {
    absl::StatusOr<size_t> n = (*file)->Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    out.append(buf, *n);
    if (out.size() > max_bytes) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
    }
  }
  return out;
}

absl::Status Filesystem::WriteFileAtomically(const std::string& path,
                                             absl::string_view data) {
  return WriteAtomically(path, data, std::nullopt);
}

absl::Status Filesystem::WriteFileAtomically(const std::string& path,
                                             absl::string_view data,
                                             uint32_t mode) {
  return WriteAtomically(path, data, mode);
}

absl::Status Filesystem::WriteAtomically(const std::string& path,
                                         absl::string_view data,
                                         std::optional<uint32_t> mode) {
  std::string tmp = path + ".tmp";
  absl::StatusOr<std::unique_ptr<WritableFile>> file = NewWritableFile(tmp);
  if (!file.ok()) return file.status();
  absl::Status s = mode ? SetMode(tmp, *mode) : absl::OkStatus();
  if (s.ok()) s = (*file)->Append(data);
  if (s.ok()) s = (*file)->Close();
  if (s.ok()) s = Rename(tmp, path);
  if (!s.ok()) Remove(tmp).IgnoreError();
  return s;
}

Filesystem* Filesystem::Default() {
  static Filesystem* fs = new PosixFilesystem();
  return fs;
}

}  // namespace vllm_profiler
