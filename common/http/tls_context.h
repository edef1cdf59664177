// Server-side TLS configuration that follows certificate rotation on disk.
//
// TlsContext owns an OpenSSL server context (TLS 1.2 minimum, Mozilla
// "intermediate" ECDHE+AEAD ciphers for TLS 1.2, OpenSSL's TLS 1.3 suites)
// built from a PEM certificate chain file and a PEM private key file. A
// background thread polls both files (stat(2), which follows the symlink
// swaps that Kubernetes Secret volumes and cert-manager use in `..data`)
// every `Options::poll_interval`; when either changed it builds a new context
// from the new pair. A pair that fails to load (missing file, half-written
// file, key not matching the certificate) is logged once per change and the
// previous context stays in use.
//
// Current() hands out the context for a new handshake. Connections hold a
// shared_ptr to the context they started with, so a reload never touches
// established connections.
//
// Thread safety: Current(), generation() and ReloadIfChanged() may be called
// from any thread. Destruction stops the poll thread.
#ifndef VLLM_PROFILER_COMMON_HTTP_TLS_CONTEXT_H_
#define VLLM_PROFILER_COMMON_HTTP_TLS_CONTEXT_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "boost/asio/ssl/context.hpp"
#include "common/mutex.h"

namespace vllm_profiler::http {

class TlsContext {
 public:
  struct Options {
    // PEM certificate chain (leaf first). Required.
    std::string cert_file;
    // PEM private key matching the leaf certificate. Required.
    std::string key_file;
    // How often the files are checked for changes; zero disables reloading.
    absl::Duration poll_interval = absl::Seconds(1);
  };

  // Loads the pair once; fails with INVALID_ARGUMENT (bad or mismatched PEM)
  // or NOT_FOUND (missing file) naming the file, so a misconfigured server
  // does not start.
  static absl::StatusOr<std::unique_ptr<TlsContext>> Create(Options options);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // The context new handshakes should use.
  std::shared_ptr<boost::asio::ssl::context> Current() const;

  // Number of successful loads so far (1 after Create()).
  int64_t generation() const;
  // Number of changed pairs that failed to load (and were not installed).
  int64_t rejected() const;

  // Checks the files now and reloads when they changed (the poll thread calls
  // this). Returns the load error when a changed pair is broken, OK
  // otherwise (including "nothing changed").
  absl::Status ReloadIfChanged();

  // Builds a context from the files without installing it.
  static absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> Load(
      const std::string& cert_file, const std::string& key_file);

 private:
  // Identity of a file's current content as far as stat(2) tells.
  struct FileStamp {
    dev_t dev = 0;
    ino_t ino = 0;
    int64_t mtime_ns = 0;
    int64_t size = -1;
    bool operator==(const FileStamp& o) const {
      return dev == o.dev && ino == o.ino && mtime_ns == o.mtime_ns &&
             size == o.size;
    }
    bool operator!=(const FileStamp& o) const { return !(*this == o); }
  };
  static FileStamp Stamp(const std::string& path);

  explicit TlsContext(Options options);
  void PollLoop();

  const Options options_;
  mutable Mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
  // Stamps of the pair last tried (loaded or rejected), so a broken pair is
  // reported once, not every poll.
  FileStamp cert_stamp_ ABSL_GUARDED_BY(mu_);
  FileStamp key_stamp_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread poller_;
};

}  // namespace vllm_profiler::http

#endif  // VLLM_PROFILER_COMMON_HTTP_TLS_CONTEXT_H_
