// Maps probe events to Chrome Trace Event Format.
//
// ChromeTraceMapper decides how a capture's processes, threads, events and
// metadata look in the trace and writes them through a TraceWriter. The
// Capture that owns both keeps the bookkeeping (which processes joined, the
// time base, counts, completeness) and calls the mapper as messages arrive:
//   * pid = the process's trace pid; process_name ("VllmWorker-0 · rank 0 ·
//     pod x"), process_sort_index (the rank) and process_labels when the
//     process joins;
//   * CPU events on their OS thread (thread_name from ThreadInfo), GPU work
//     on one pseudo-thread per device+stream ("GPU 0 stream 7", tid
//     1000000000 + device * 1000000 + stream, sorted after CPU threads);
//     synchronisation and overhead events without a thread go there too;
//   * spans as "X" events, instants "i", counters "C";
//   * a flow (cat "ac2g") from each CUDA runtime/driver call to the GPU
//     activity with the same correlation id, and a flow (cat "op2g") from the
//     torch operator with the GPU activity's external id to that activity.
//     The probe sends GPU events and CPU chunks in no fixed order, so the
//     op2g pair is drawn whichever side arrives second (viewers accept flow
//     events in any file order). Every GPU activity carries its
//     "External id" in args; "op" (the operator's name) is added only when
//     the operator arrived first: an event already written cannot be
//     amended. Both waiting sides are bounded (Options); what falls out is
//     counted in the metadata (op2g_unmatched_*);
//   * timestamps in microseconds with three decimals, relative to the
//     capture's time base, which the metadata states;
//   * the top-level "metadata" object: capture id, origin, config,
//     completeness, errors, and per process its Hello, capture markers and
//     drop counters.
//
// Thread safety: none; the owner (a Capture) serialises calls. The writer
// must outlive the mapper. Writer errors are sticky in the writer (see
// trace_writer.h); the mapper writes on regardless.
#ifndef VLLM_PROFILER_COLLECTOR_CHROME_TRACE_MAPPER_H_
#define VLLM_PROFILER_COLLECTOR_CHROME_TRACE_MAPPER_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "collector/probe_stream.h"
#include "collector/trace_writer.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

// The mapping state of one process's events: which thread names were
// written, its GPU tracks, and the operators and GPU events waiting for each
// other (op2g). Only ChromeTraceMapper changes it.
struct ProcessTracks {
  // An operator seen on a stream; name_id is valid for `stream` only (the
  // map is cleared when the process joins again on a new stream).
  struct OpRef {
    const ProbeStream* stream;
    uint32_t tid;
    uint32_t name_id;
    int64_t ts_ns;  // Relative to the time base.
  };
  // A GPU event written before its operator arrived: where the op2g flow
  // ends. seq orders the eviction queue.
  struct PendingGpu {
    uint64_t seq;
    uint32_t tid;
    int64_t ts_ns;  // Relative to the time base.
  };

  // The process continues on a new stream: its operators are forgotten
  // (their name ids belonged to the old stream) and GPU events still waiting
  // for one are counted as unmatched.
  void StartNewStream();
  // GPU events waiting for their operator now.
  uint64_t unmatched_waiting() const;

  absl::flat_hash_map<uint32_t, std::string> thread_names;  // written
  absl::flat_hash_map<uint64_t, uint32_t> gpu_tracks;       // device<<32|stream
  uint32_t next_overflow_track = 0;
  absl::flat_hash_map<uint64_t, OpRef> ops;  // external id -> op
  std::deque<uint64_t> op_order;
  // external id -> GPU events waiting for their operator, oldest first.
  absl::flat_hash_map<uint64_t, std::vector<PendingGpu>> pending_gpu;
  std::deque<std::pair<uint64_t, uint64_t>> pending_order;  // (id, seq)
  uint64_t next_pending_seq = 0;
  // GPU events evicted from pending_gpu (cap reached) or dropped on a new
  // stream without their operator.
  uint64_t op2g_unmatched_evicted = 0;
};

// One process of a capture as its trace shows it. The Capture fills in and
// updates everything but `tracks`, which belongs to the mapper.
struct TraceProcess {
  // The pid in the trace's events: the real pid, unless another process of
  // the capture already uses it (pids collide across containers).
  int64_t pid = 0;
  int64_t real_pid = 0;
  uint64_t uid = 0;  // Hello.process_uid; 0 = not set.
  int index = 0;     // Join order: namespaces flow ids.
  v1::Hello hello;
  v1::ProbeState state;
  v1::CaptureStarted started;
  v1::CaptureFinished finished_msg;
  bool finished = false;
  bool disconnected = false;
  uint64_t events = 0;          // Received.
  int64_t clock_offset_ns = 0;  // wall - monotonic
  ProcessTracks tracks;
};

// The capture-wide part of the trace's metadata.
struct TraceMetadata {
  std::string collector_version;
  std::string capture_id;
  v1::CaptureOrigin origin = v1::CAPTURE_ORIGIN_UNSPECIFIED;
  v1::CaptureConfig config;
  int64_t base_time_unix_ns = 0;
  bool complete = false;
  uint64_t events_received = 0;
  std::vector<std::string> errors;
};

class ChromeTraceMapper {
 public:
  struct Options {
    // Operators remembered per process for the operator -> GPU link.
    // Default 65536.
    size_t max_remembered_ops = 65536;
    // GPU events (with an external id) remembered per process while their
    // operator has not arrived yet. Default 65536.
    size_t max_pending_gpu_events = 65536;
  };

  ChromeTraceMapper(TraceWriter* writer, Options options);
  ChromeTraceMapper(const ChromeTraceMapper&) = delete;
  ChromeTraceMapper& operator=(const ChromeTraceMapper&) = delete;

  // The process_name, process_sort_index and process_labels events.
  void WriteProcessMetadata(const TraceProcess& p);
  // A thread_name event for each thread whose name is new or changed.
  void WriteThreadNames(
      TraceProcess& p, const ProbeStream& stream,
      const google::protobuf::RepeatedPtrField<v1::ThreadInfo>& threads);
  // `e` (accepted by `stream`) at `ts_ns` relative to the time base, with
  // its flows; a new GPU track gets its thread name first.
  void WriteEvent(TraceProcess& p, const ProbeStream& stream,
                  const v1::Event& e, int64_t ts_ns);
  // The value of the top-level "metadata" key (after TraceWriter::EndEvents).
  void WriteMetadata(const TraceMetadata& m,
                     const std::vector<const TraceProcess*>& processes);

  // The earliest ts written (relative to the time base); 0 if none was
  // earlier.
  int64_t min_ts_ns() const { return min_ts_ns_; }

 private:
  void WriteThreadName(int64_t pid, uint32_t tid, absl::string_view name,
                       int64_t sort_index);
  uint32_t GpuTrack(TraceProcess& p, uint32_t device, uint32_t stream);
  void WriteEventHead(const TraceProcess& p, const ProbeStream& stream,
                      const v1::Event& e, uint32_t tid, int64_t ts_ns);
  // Writes the "ts" key and value, noting the earliest.
  void WriteTs(int64_t ts_ns);
  // An operator arrived: remember it, and draw the op2g flows of the GPU
  // events that were waiting for it.
  void LinkOperator(TraceProcess& p, const ProbeStream& stream,
                    const v1::Event& e, int64_t ts_ns);
  void WriteFlow(char phase, uint64_t id, const char* cat, int64_t pid,
                 uint32_t tid, int64_t ts_ns);
  void WriteOpFlow(const TraceProcess& p, uint32_t op_tid, int64_t op_ts,
                   uint32_t gpu_tid, int64_t gpu_ts);
  void AddPendingGpu(TraceProcess& p, uint64_t external_id, uint32_t tid,
                     int64_t ts_ns);
  void WriteProcessSummary(const TraceProcess& p);

  TraceWriter* const writer_;
  const Options options_;
  int64_t min_ts_ns_ = 0;
  uint64_t op_flow_counter_ = 0;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_CHROME_TRACE_MAPPER_H_
