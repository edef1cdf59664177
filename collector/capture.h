// One capture: the Chrome trace of one or more probe processes.
//
// A Capture owns the TraceWriter of one trace file and keeps the capture's
// bookkeeping: which processes joined (identified by pid and
// Hello.process_uid) and whether they finished, the time base (the wall
// time of the first CaptureStarted; probes' clocks are mapped to wall time
// with their clock pairs), event counts and errors. Events are converted as
// batches arrive (nothing is buffered beyond the writer's buffer) by a
// ChromeTraceMapper, which chrome_trace_mapper.h describes: how processes,
// threads, events and flows look in the trace. Finish() writes the
// top-level "metadata" object (capture id, origin, config, processes with
// their Hello and drop counters, completeness, errors) and closes the file.
//
// Thread safety: every method may be called from any thread (one mutex);
// the probe streams of several processes write into one Capture.
// Failure: a file error (disk full) is sticky; later events are counted but
// not written, and Finish() reports the error.
#ifndef VLLM_PROFILER_COLLECTOR_CAPTURE_H_
#define VLLM_PROFILER_COLLECTOR_CAPTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/chrome_trace_mapper.h"
#include "collector/probe_stream.h"
#include "collector/trace_writer.h"
#include "common/filesystem.h"
#include "common/mutex.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

// What a finished capture produced.
struct CaptureResult {
  std::string capture_id;
  v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_UNSPECIFIED;
  std::vector<int64_t> pids;  // Sorted ascending.
  std::string requested_name;
  bool complete = false;
  uint64_t events_written = 0;
  uint64_t bytes_written = 0;  // Uncompressed JSON.
  absl::Status status;         // The file's status (e.g. disk full).
  std::vector<std::string> errors;
  bool has_file = false;
  // When some event was written with a negative ts (it predates the time
  // base fixed at the first join): the amount every event's ts must grow
  // by, through TraceTimeShifter, to match the metadata's
  // base_time_unix_ns, which already names the earliest event. 0: none.
  int64_t ts_shift_ns = 0;
};

class Capture {
 public:
  struct Options {
    // Operators remembered per process for the operator -> GPU link.
    // Default 65536.
    size_t max_remembered_ops = 65536;
    // GPU events (with an external id) remembered per process while their
    // operator has not arrived yet. Default 65536.
    size_t max_pending_gpu_events = 65536;
    // Written into the metadata.
    std::string collector_version = "0.1.0";
  };

  Capture(std::string capture_id, v1::CaptureOrigin origin,
          v1::CaptureConfig config, Options options);
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  const std::string& id() const { return id_; }
  v1::CaptureOrigin origin() const { return origin_; }

  // Sets the output (the first process's join does it). A failed open is
  // kept as the capture's error; events are then counted and dropped.
  void SetFile(absl::StatusOr<std::unique_ptr<WritableFile>> file);
  bool has_output() const;

  // A process of `stream` starts this capture (stream's CaptureStarted was
  // accepted). Writes its process metadata.
  void Join(const ProbeStream& stream, const v1::CaptureStarted& started,
            absl::Time now);
  // Processes are identified by (pid, Hello.process_uid); uid 0 = not set.
  bool HasProcess(int64_t pid, uint64_t uid = 0) const;

  // Writes a batch that `stream` accepted.
  void WriteBatch(const ProbeStream& stream, const v1::EventBatch& batch);

  void FinishProcess(int64_t pid, const v1::CaptureFinished& finished,
                     uint64_t uid = 0);
  // The process's stream ended before CaptureFinished: the capture becomes
  // incomplete.
  void DisconnectProcess(int64_t pid, absl::string_view reason,
                         uint64_t uid = 0);
  // An error that is not a process's (e.g. shutdown).
  void AddError(absl::string_view error);

  // True when at least one process joined and all joined processes have
  // finished or disconnected.
  bool AllProcessesDone() const;
  int num_processes() const;
  absl::Time last_join() const;
  uint64_t events_written() const;
  std::vector<int64_t> pids() const;
  v1::CaptureStatus Status() const;

  // Writes the metadata and closes the file. Call once.
  CaptureResult Finish();

 private:
  // What the trace shows of a process (TraceProcess), and how its stream
  // has gone.
  struct Process : TraceProcess {
    std::string disconnect_reason;
    // The stream's count of missing batches (ProbeStream::sequence_gaps)
    // when this process joined, and batches missed since.
    uint64_t gaps_at_join = 0;
    uint64_t gaps = 0;
  };

  Process* FindLocked(int64_t pid, uint64_t uid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Process* FindLocked(int64_t pid, uint64_t uid) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t TracePidLocked(int64_t pid) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends to errors_ each reason the capture is incomplete that only the
  // end can tell (missing batches, events the probe sent that did not all
  // arrive, drops, events not written). Called once, by Finish().
  void AddCompletenessErrorsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the top-level "metadata" key and its value through the mapper.
  void WriteMetadataLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CompleteLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_;
  const v1::CaptureOrigin origin_;
  const v1::CaptureConfig config_;
  const Options options_;

  mutable Mutex mu_;
  std::unique_ptr<TraceWriter> writer_ ABSL_GUARDED_BY(mu_);
  // Writes into writer_; set and reset with it.
  std::unique_ptr<ChromeTraceMapper> mapper_ ABSL_GUARDED_BY(mu_);
  absl::Status file_status_ ABSL_GUARDED_BY(mu_);
  bool file_set_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool have_base_ ABSL_GUARDED_BY(mu_) = false;
  int64_t base_wall_ns_ ABSL_GUARDED_BY(mu_) = 0;
  std::string requested_name_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Process>> processes_ ABSL_GUARDED_BY(mu_);
  absl::Time last_join_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t events_received_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t events_not_written_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t final_events_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_CAPTURE_H_
