// The trace directory: naming, atomic finalize, retention, listing, lookup.
//
// Layout of --trace_dir:
//   trace1234.json            a finished trace (or .json.gz when stored
//                             compressed); the trace id is the file name
//                             without extension
//   .trace1234.meta           its TraceInfo as JSON (sidecar, hidden)
//   .inprogress-<n>.tmp       a trace being written; one left by a collector
//                             that was killed is recovered at start-up: cut
//                             after its last complete event, closed into
//                             valid JSON marked complete:false with the
//                             error "collector stopped while writing
//                             (recovered at start)", and listed as
//                             recovered[-N] (gzip or unreadable ones are
//                             removed, with a log line)
// Naming:
//   one process               trace<pid>, then trace<pid>-2, -3 ... if taken
//   several processes         trace<pid1>_<pid2>_..., pids ascending, at most
//                             4 listed, then _and<N>more
//   requested name            the base name of CaptureStarted.requested_name
//                             (VLLM_TORCH_PROFILE) without .json/.json.gz,
//                             characters outside [A-Za-z0-9._-] replaced by _
// Finalize is atomic: the writer fills a temp file, which Commit() fsyncs
// (on Close) and renames into place, so a listed trace is always complete
// JSON. Retention: after each commit the oldest traces are deleted until at
// most max_traces remain and their total size is at most max_bytes (the
// trace just committed is never deleted).
//
// Lookup is safe against untrusted ids: only ids matching
// [A-Za-z0-9_-][A-Za-z0-9._-]* that are in the index are served; anything
// else (a "/", "..", a hidden file) is NOT_FOUND, so nothing outside the
// directory can be reached.
//
// Failure: errors creating, writing or renaming files are returned, logged
// and kept as last_error (GetStatus shows it); existing traces stay
// listed and downloadable.
// Thread safety: all methods may be called from any thread.
#ifndef VLLM_PROFILER_COLLECTOR_TRACE_STORE_H_
#define VLLM_PROFILER_COLLECTOR_TRACE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/filesystem.h"
#include "common/mutex.h"
#include "nlohmann/json.hpp"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

class TraceStore {
 public:
  struct Options {
    std::string dir = "/var/lib/vllm-profiler/traces";
    uint32_t max_traces = 20;
    uint64_t max_bytes = 4294967296ull;  // 4 GiB
    bool gzip = false;                   // Store .json.gz.
  };

  // What a finished capture hands over with its temp file.
  struct CommitRequest {
    std::string capture_id;
    std::vector<int64_t> pids;
    std::string requested_name;
    bool complete = false;
    uint64_t num_events = 0;
    std::string error;
    v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_UNSPECIFIED;
    std::string reason;  // Why a TRIGGER capture was taken.
  };

  // A temp file being written.
  struct TempFile {
    std::string path;
    std::unique_ptr<WritableFile> file;  // gzip-wrapped when gzip is on
  };

  // `fs` must outlive the store.
  TraceStore(Options options, Filesystem* fs);
  TraceStore(const TraceStore&) = delete;
  TraceStore& operator=(const TraceStore&) = delete;

  // Creates the directory, recovers partial traces (see above), indexes the
  // traces there and applies retention. An error is also kept as last_error;
  // the store still works for whatever is possible.
  absl::Status Init();

  absl::StatusOr<TempFile> CreateTempFile();
  // Names and moves a finished temp file into place.
  absl::StatusOr<v1::TraceInfo> Commit(const std::string& temp_path,
                                       const CommitRequest& request);
  // Rewrites a finished temp file with every event's ts grown by
  // `shift_ns` (trace_time_shift.h). On failure the file is unchanged and
  // the error is returned (and logged); it is still a valid trace.
  absl::Status ShiftTimes(const std::string& temp_path, int64_t shift_ns);
  // Removes a temp file that will not be committed; records `error`.
  void Abandon(const std::string& temp_path, const absl::Status& error);
  // Records an error for GetStatus (and logs it).
  void RecordError(const absl::Status& error);

  // Newest first.
  std::vector<v1::TraceInfo> List() const;
  absl::StatusOr<v1::TraceInfo> Find(const std::string& id) const;
  // Opens a trace for download; NOT_FOUND for unknown or invalid ids.
  absl::StatusOr<std::unique_ptr<ReadableFile>> Open(const std::string& id,
                                                     v1::TraceInfo* info) const;
  absl::Status Delete(const std::string& id);
  v1::DiskStatus Disk() const;
  // Whether one more trace, after `pending` others still being written, can
  // be kept while retention deletes only traces at least `min_age` old.
  bool RoomForNewTrace(size_t pending, absl::Duration min_age) const;
  const Options& options() const { return options_; }

  // Exposed for tests.
  static bool IsValidId(const std::string& id);
  static std::string SanitizeRequestedName(const std::string& requested);
  static std::string BaseName(const std::vector<int64_t>& pids);

 private:
  std::string PathOf(const std::string& file_name) const;
  std::string MetaPathOf(const std::string& id) const;
  std::string UniqueIdLocked(const std::string& base) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyRetentionLocked(const std::string& keep)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recovers `temp_name` into a listed trace; returns its id, or "" when it
  // was removed instead.
  std::string RecoverLocked(const std::string& temp_name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetErrorLocked(const absl::Status& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  Filesystem* const fs_;
  mutable Mutex mu_;
  std::map<std::string, v1::TraceInfo> traces_ ABSL_GUARDED_BY(mu_);
  uint64_t temp_counter_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_created_ms_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
};

// TraceInfo as the JSON object of the sidecar file and of GET /traces (keys
// in the order of the proto's fields).
nlohmann::ordered_json TraceInfoToJsonValue(const v1::TraceInfo& info);
// The same, serialized (compact; invalid UTF-8 replaced by U+FFFD).
std::string TraceInfoToJson(const v1::TraceInfo& info);

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_TRACE_STORE_H_
