// Groups probe captures into traces and finalizes them.
//
// Grouping (see the contracts in README):
//   * WINDOW captures (the probe's env-configured step window) from
//     different processes that start while a window capture is open join
//     it. The trace is finalized when every joined process has sent
//     CaptureFinished or disconnected, and no new process joined for
//     Options::window_linger.
//   * COMMAND captures are grouped by capture_id. CreateCommandCapture()
//     registers the probes a StartCapture selected; the trace is finalized
//     once each of them has joined and finished, or disconnected (or
//     command_start_timeout passed without them joining).
// Finalizing (on a background thread, right after the last process is
// done) closes the Capture and commits its temp file to the TraceStore;
// failures (disk full, unwritable directory) become the capture's error, the
// store's last_error and a log line.
//
// Thread safety: all methods may be called from any thread. Lock order:
// CaptureManager::mu_ before Capture::mu_ and TraceStore::mu_; nothing
// calls back into the manager.
#ifndef VLLM_PROFILER_COLLECTOR_CAPTURE_MANAGER_H_
#define VLLM_PROFILER_COLLECTOR_CAPTURE_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/time/time.h"
#include "collector/capture.h"
#include "collector/probe_stream.h"
#include "collector/trace_store.h"
#include "common/mutex.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

class CaptureManager {
 public:
  struct Options {
    // --window_linger_ms. Default 2 s.
    absl::Duration window_linger = absl::Seconds(2);
    // How long a command capture waits for a selected probe that has not
    // started it yet (the probe starts at its next step). Default 10 min.
    absl::Duration command_start_timeout = absl::Minutes(10);
    // Finished captures kept for GetStatus and Wait. Default 32.
    size_t max_recent = 32;
    // A capture a probe starts on its own (not registered by StartCapture)
    // is refused when keeping its trace would make retention delete a trace
    // younger than this: any process in the pod can reach the probe socket,
    // and must not be able to flush the stored traces with junk captures.
    // Default 10 min.
    absl::Duration probe_eviction_min_age = absl::Minutes(10);
    Capture::Options capture;
  };

  // `store` must outlive the manager. Starts the finalizer thread.
  CaptureManager(Options options, TraceStore* store);
  ~CaptureManager();
  CaptureManager(const CaptureManager&) = delete;
  CaptureManager& operator=(const CaptureManager&) = delete;

  // The process of `stream` started capture `started` (already accepted by
  // the stream). Returns the Capture its batches go to, or nullptr when a
  // new capture is refused (see probe_eviction_min_age; counted in
  // captures_refused()); the stream's batches for it are then ignored.
  std::shared_ptr<Capture> Join(const ProbeStream& stream,
                                const v1::CaptureStarted& started);
  // `uid`: the process's Hello.process_uid (0 = not set).
  void Finish(const std::shared_ptr<Capture>& capture, int64_t pid,
              const v1::CaptureFinished& finished, uint64_t uid = 0);
  void Disconnect(const std::shared_ptr<Capture>& capture, int64_t pid,
                  absl::string_view reason, uint64_t uid = 0);
  // A probe's stream ended (whether or not it was capturing): command
  // captures stop waiting for it.
  void ProbeGone(int64_t pid);

  // Registers a command capture for `pids` and returns its id. A non-empty
  // `trigger_reason` makes it a flight-recorder trigger's capture: its
  // origin is TRIGGER (in its status, its trace's metadata and TraceInfo),
  // with that reason; probes start it as a COMMAND capture.
  std::string CreateCommandCapture(const std::vector<int64_t>& pids,
                                   const v1::CaptureConfig& config,
                                   const std::string& trigger_reason = "");
  // Waits until capture `capture_id` is finalized (returns its TraceInfo;
  // id empty and error set when no trace was written) or `deadline` passes
  // (nullopt).
  std::optional<v1::TraceInfo> Wait(const std::string& capture_id,
                                    absl::Time deadline);

  // In-progress captures, then recently finished ones (newest first).
  std::vector<v1::CaptureStatus> Status() const;

  // Finalizes every open capture now (marked incomplete) and stops the
  // finalizer thread. Idempotent; the destructor calls it.
  void Shutdown(absl::string_view reason);

  uint64_t traces_written() const { return traces_written_.load(); }
  uint64_t trace_bytes_written() const { return trace_bytes_written_.load(); }
  uint64_t captures_failed() const { return captures_failed_.load(); }
  uint64_t captures_refused() const { return captures_refused_.load(); }

 private:
  struct Entry {
    std::shared_ptr<Capture> capture;
    std::string temp_path;
    absl::flat_hash_set<int64_t> expected;  // Command: not joined yet.
    std::string trigger_reason;             // Origin TRIGGER: why.
    absl::Time created;
  };
  struct Recent {
    v1::CaptureStatus status;
    v1::TraceInfo trace;
  };

  void FinalizerLoop();
  bool ReadyLocked(const Entry& e, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Finalize(Entry entry);
  void EnsureOutputLocked(Entry& e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  TraceStore* const store_;
  std::atomic<uint64_t> traces_written_{0};
  std::atomic<uint64_t> trace_bytes_written_{0};
  std::atomic<uint64_t> captures_failed_{0};
  std::atomic<uint64_t> captures_refused_{0};

  mutable Mutex mu_;
  CondVar wake_;      // Finalizer: something may be ready.
  CondVar finished_;  // Waiters: a capture was finalized.
  std::vector<Entry> active_ ABSL_GUARDED_BY(mu_);
  std::deque<Recent> recent_ ABSL_GUARDED_BY(mu_);
  uint64_t command_counter_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int finalizing_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_CAPTURE_MANAGER_H_
