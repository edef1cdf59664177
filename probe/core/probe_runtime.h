// ProbeRuntime: the probe of one process. It owns the capture controller,
// the Recorder (record path and bounded chunk memory), the GPU tracer, and
// the sender thread that converts chunks into EventBatches and streams them
// to the collector over ProbeService.Connect, plus a reader thread for the
// collector's commands.
//
// Ownership and lifetime: the C ABI (c_api.cc) creates one ProbeRuntime
// lazily on the first step and never destroys it (threads may still run at
// process exit; Shutdown() stops them). Tests create and destroy their own.
// After fork() the child abandons the parent's instance (its threads do not
// exist there) and creates a fresh one.
//
// Threads:
//   * application threads: StepBegin/StepEnd/StepAnnotate and the Recorder
//     record calls; never blocked by the network (chunks are queued, the
//     queue is bounded by the Recorder's memory budget).
//   * sender thread: connects with backoff, sends Hello, converts and sends,
//     applies the time bound (OnTick).
//   * reader thread (one per stream): reads Welcome and commands.
// Lock order: control_mu_ -> Recorder::mu_; control_mu_ -> gpu_mu_;
// stream_mu_ is a leaf. control_mu_ is held across the capture listener
// (torch add/removeCallback) and GpuTracer Start/Stop: neither calls back
// into control_mu_ (the tracer's Stop calls the sink, which takes gpu_mu_).
//
// Failure: the collector absent or gone is normal (logged once per outage,
// "vllm-profiler: collector not reachable at ... (will retry)"); a capture
// whose stream is gone is dropped and counted.
#ifndef VLLM_PROFILER_PROBE_CORE_PROBE_RUNTIME_H_
#define VLLM_PROFILER_PROBE_CORE_PROBE_RUNTIME_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "google/protobuf/arena.h"
#include "probe/core/capture_controller.h"
#include "probe/core/clock.h"
#include "probe/core/config.h"
#include "probe/core/event_converter.h"
#include "probe/core/gpu_ring.h"
#include "probe/core/gpu_tracer.h"
#include "probe/core/recorder.h"
#include "probe/core/step_ring.h"
#include "probe/core/string_table.h"
#include "probe/core/transport.h"

namespace vllm_profiler::probe {

inline constexpr char kProbeVersion[] = "0.1.0";

class ProbeRuntime final : public GpuEventSink {
 public:
  using CaptureListener = void (*)(int32_t capturing, int32_t record_shapes,
                                   void* user);
  struct Options {
    ProbeConfig config;
    // Default RealClock::Get() (GetMonotonicOnly() with config.tsc_clock off).
    const Clock* clock = nullptr;
    // Default NewGrpcTransport(config.Target()).
    std::unique_ptr<ProbeTransport> transport;
    // Default: none (no GPU activity). c_api.cc passes NewCuptiTracer().
    std::unique_ptr<GpuTracer> gpu_tracer;
    absl::Duration connect_timeout = absl::Seconds(1);
    absl::Duration initial_backoff = absl::Milliseconds(250);
    absl::Duration max_backoff = absl::Seconds(10);
    absl::Duration tick = absl::Milliseconds(50);
    // While records stream in, the sender waits this long between small
    // batches so that more records share one message.
    absl::Duration batch_linger = absl::Milliseconds(20);
    // Flight recorder: how often step summaries go out (at most).
    absl::Duration summary_interval = absl::Seconds(1);
    size_t chunk_bytes = 64 << 10;
    // Identity for the Hello (defaults: getpid/getppid, /proc/self/comm).
    int64_t pid = 0;
    std::string process_name;
    std::string python_version;
    std::string torch_version;
  };

  explicit ProbeRuntime(Options options);
  ~ProbeRuntime() override;  // Shutdown(1 s).
  ProbeRuntime(const ProbeRuntime&) = delete;
  ProbeRuntime& operator=(const ProbeRuntime&) = delete;

  // Application thread API (see probe.h).
  int64_t StepBegin();
  void StepEnd();
  // Ends the open step with an "error" arg (exception type).
  void StepEndError(const char* error);
  void StepArgInt(const char* key, int64_t value);
  void StepArgStr(const char* key, const char* value);
  void StepAnnotate(int64_t num_requests, int64_t num_tokens,
                    int64_t num_prefill, int64_t num_decode);
  // Spans of the calling thread (vp_span_begin/end): recorded by a running
  // capture and, as the open step's child spans, by the flight recorder.
  // Returns 0 when neither records it.
  uint64_t SpanBegin(const char* name);
  void SpanEnd(uint64_t span_id);
  // The flight recorder keeps steps here (probe_runtime_flight.cc).
  bool flight_on() const { return ring_ != nullptr; }
  // Level gpu: the GPU ring (null at other levels, or without a tracer).
  const GpuRing* gpu_ring() const { return gpu_ring_.get(); }
  // The ring's committed steps, oldest first (tests).
  std::vector<FlightStep> FlightStepsForTest() const;
  // vp_step_batch: requests, tokens, prefill, decode, new, resumed,
  // finished (-1 = unknown); into the ring and, when capturing, the step's
  // args.
  void StepBatch(const int64_t batch[7], const char* request_ids,
                 int64_t request_ids_total);
  // vp_step_mark: 1 = execute_model returned, 2 = sample_tokens entered.
  void StepMark(int32_t mark);
  // vp_step_mark at given CLOCK_MONOTONIC times (0 = no such mark), then
  // StepEnd, or StepEndError when `error` is not null: the flight
  // recorder's step end in one C call.
  void StepEndMarked(int64_t execute_end_ns, int64_t sample_begin_ns,
                     const char* error = nullptr);
  bool RequestCapture(uint32_t num_steps, uint32_t duration_ms,
                      bool record_shapes);
  void SetCaptureListener(CaptureListener listener, void* user);
  // See vp_gpu_gate in probe.h.
  using GpuGate = int32_t (*)(char* reason, int32_t reason_len);
  void SetGpuGate(GpuGate gate);
  void SetStepName(std::string name);
  void SetNames(std::string process_name, std::string python_version,
                std::string torch_version);

  // Operators from another source (the torch-profiler fallback), see
  // vp_external_ops_expect in probe.h. Any thread.
  uint64_t ExpectExternalOps();
  void ExternalOpsDone(uint64_t generation);

  // ProbeState (sent after the Hello and whenever it changes, in order
  // before the next CaptureStarted). Any thread.
  void SetIdentity(int32_t rank, int32_t local_rank, int32_t world_size);
  void SetIdleReason(std::string reason);
  void SetOpSource(std::string source, std::string detail);
  void AddWrappedTarget(std::string target);
  v1::ProbeState state() const;

  Recorder& recorder() { return recorder_; }
  bool record_shapes() const {
    // Relaxed: read by the torch shim at capture start, written before the
    // listener is called under control_mu_.
    return record_shapes_.load(std::memory_order_relaxed);
  }
  bool gpu_active() const {
    // Relaxed: a stale value skips or adds one correlation push at the
    // capture's edges; the tracer ignores pushes when not started.
    return gpu_active_.load(std::memory_order_relaxed);
  }
  GpuTracer* gpu_tracer() { return gpu_tracer_.get(); }

  // Stops a running capture, sends what is queued, closes the stream and
  // joins the threads; waits at most `timeout` (then leaves them running).
  void Shutdown(absl::Duration timeout);

  struct Stats {
    uint64_t events_recorded = 0;
    uint64_t events_dropped_buffer_full = 0;
    uint64_t events_dropped_send = 0;
    uint64_t captures_started = 0;
    uint64_t captures_finished = 0;
    uint64_t batches_sent = 0;
    bool connected = false;
    uint64_t peak_buffer_bytes = 0;
  };
  Stats stats() const;

  // GpuEventSink.
  uint32_t InternString(std::string_view value) override;
  void AddEvent(v1::Event event) override;
  void AddTracerDrops(uint64_t records_dropped,
                      uint64_t buffers_dropped) override;

  // Helpers exposed for tests.
  v1::Hello BuildHello() const;

 private:
  struct CaptureState {
    std::string capture_id;
    uint64_t generation = 0;
    int64_t last_step = 0;
    std::string gpu_note;
    bool cpu_ops = true;
    bool external_ops = false;  // Its finish waits for ExternalOpsDone.
  };
  // A finished capture waiting for its external operators.
  struct DeferredFinish {
    std::unique_ptr<v1::ProbeMessage> message;
    uint64_t generation = 0;
    int64_t deadline_ns = 0;
  };
  // Per-stream sending state (sender thread only).
  struct SendState {
    uint64_t generation = 0;  // Capture whose CaptureStarted went out.
    std::string capture_id;
    uint64_t events_sent = 0;
    uint64_t dropped_send = 0;
  };

  void StartLocked(const CaptureSpec& spec, int64_t step)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  void StopLocked(const CaptureSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  void Apply(const CaptureController::Decision& d, int64_t step)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // Queues the deferred CaptureFinished (with `error` when not empty).
  void ReleaseDeferredLocked(const std::string& error)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);

  void SenderLoop();
  void ReaderLoop(ProbeStream* stream);
  // config.start_at_unix_ns of `command` on the monotonic clock (0: none).
  int64_t NotBeforeNs(const v1::StartCaptureCommand& command) const;
  bool TryConnect();
  void CloseStream(bool graceful);
  // Sends what the recorder handed over, in order; runs of chunks are
  // coalesced into batches.
  // Returns the record bytes converted.
  size_t ProcessAll(std::deque<QueueItem>& items);
  // A control message (CaptureStarted/Finished, ...).
  void Process(QueueItem& item);
  // Converts a chunk's records into msg's batch (or counts them dropped)
  // and releases the chunk.
  void ConvertChunk(Chunk* chunk, v1::ProbeMessage* msg);
  bool Send(const v1::ProbeMessage& message);
  // Sends msg's batch (with the strings not sent yet) and clears it.
  void SendBatch(v1::ProbeMessage* msg);
  void DrainGpuEvents(v1::ProbeMessage* msg);
  // Flight recorder (probe_runtime_flight.cc).
  // A StartCaptureCommand with a FlightDump: remembered until it starts.
  void NoteFlightDumpLocked(const v1::StartCaptureCommand& cmd)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // At a capture's start: copies the ring's steps it asked for.
  void SnapshotRingLocked(const CaptureSpec& spec, uint64_t generation)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // Sender: the snapshot of capture `generation` as events (and marker).
  void SendRingDump(uint64_t generation);
  // Sender: the steps ended since the last summary, once per interval.
  void MaybeSendStepSummaries();
  // Level gpu, at each step's start: starts the tracer's flight recording
  // when no capture holds it, or lets CUPTI go while the GPU gate says
  // another profiler runs.
  void FlightGpuLocked(int64_t now_ns)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // Stops the flight recording (flushing the tracer into the GPU ring).
  void StopFlightGpuLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(control_mu_);
  // Sends the ProbeState when it changed since the last one sent (or
  // always when `force`, after a Hello).
  void SendStateIfChanged(bool force);

  Options options_;
  uint64_t process_uid_ = 0;  // Hello.process_uid, set at construction.
  const Clock* const clock_;
  Recorder recorder_;
  StringTable strings_;
  std::unique_ptr<ProbeTransport> transport_;
  std::unique_ptr<GpuTracer> gpu_tracer_;

  std::atomic<bool> record_shapes_{false};
  std::atomic<bool> gpu_active_{false};
  std::atomic<int64_t> last_step_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> stream_broken_{false};
  std::atomic<bool> connected_{false};
  std::atomic<uint32_t> max_batch_bytes_{4u << 20};
  // The stream's collector reads input signatures (its Welcome said so).
  std::atomic<bool> collector_signatures_{false};
  std::atomic<uint64_t> events_sent_total_{0};
  std::atomic<uint64_t> dropped_send_total_{0};
  std::atomic<uint64_t> dropped_full_total_{0};
  std::atomic<uint64_t> captures_started_{0};
  std::atomic<uint64_t> captures_finished_{0};
  std::atomic<uint64_t> batches_sent_{0};

  mutable Mutex control_mu_;
  CaptureController controller_ ABSL_GUARDED_BY(control_mu_);
  CaptureState capture_ ABSL_GUARDED_BY(control_mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(control_mu_) = 0;
  CaptureListener listener_ ABSL_GUARDED_BY(control_mu_) = nullptr;
  void* listener_user_ ABSL_GUARDED_BY(control_mu_) = nullptr;
  GpuGate gpu_gate_ ABSL_GUARDED_BY(control_mu_) = nullptr;
  DeferredFinish deferred_ ABSL_GUARDED_BY(control_mu_);
  // Flight recorder: null when VLLM_PROFILER_FLIGHT=off. Begin/End and the
  // readers under control_mu_ (see step_ring.h).
  const std::unique_ptr<StepRing> ring_;
  struct RingDump {
    uint64_t generation = 0;
    v1::FlightDump dump;
    std::vector<FlightStep> steps;
  };
  std::string dump_capture_id_ ABSL_GUARDED_BY(control_mu_);
  v1::FlightDump pending_dump_ ABSL_GUARDED_BY(control_mu_);
  RingDump ring_dump_ ABSL_GUARDED_BY(control_mu_);
  uint64_t summary_cursor_ ABSL_GUARDED_BY(control_mu_) = 0;
  // Level gpu (VLLM_PROFILER_FLIGHT=gpu with a tracer), else null: the GPU
  // ring, filled by the tracer's flight recording through flight_sink_.
  // The tracer runs in flight mode while flight_gpu_on_; a capture with GPU
  // activity stops it first (see FlightGpuLocked).
  // The tracer's sink at level gpu: events into the GPU ring, names into
  // the process's string table (so the ring's events are ready to send).
  class FlightGpuSink final : public GpuEventSink {
   public:
    FlightGpuSink(StringTable* strings, GpuRing* ring)
        : strings_(strings), ring_(ring) {}
    uint32_t InternString(std::string_view value) override {
      return strings_->Intern(value);
    }
    void AddEvent(v1::Event event) override { ring_->Add(event); }
    void AddTracerDrops(uint64_t records_dropped,
                        uint64_t buffers_dropped) override {
      // Relaxed: statistics for the dump's log line.
      records_dropped_.fetch_add(records_dropped, std::memory_order_relaxed);
      buffers_dropped_.fetch_add(buffers_dropped, std::memory_order_relaxed);
    }
    uint64_t records_dropped() const {
      return records_dropped_.load(std::memory_order_relaxed);
    }

   private:
    StringTable* const strings_;
    GpuRing* const ring_;
    std::atomic<uint64_t> records_dropped_{0};
    std::atomic<uint64_t> buffers_dropped_{0};
  };
  const std::unique_ptr<GpuRing> gpu_ring_;
  const std::unique_ptr<FlightGpuSink> flight_sink_;
  bool flight_gpu_on_ ABSL_GUARDED_BY(control_mu_) = false;
  int64_t flight_gpu_retry_ns_ ABSL_GUARDED_BY(control_mu_) = 0;
  bool flight_gpu_yielded_ ABSL_GUARDED_BY(control_mu_) = false;
  int64_t next_summary_ns_ = 0;  // Sender thread only.
  std::string requested_name_ ABSL_GUARDED_BY(control_mu_);
  bool shut_down_ ABSL_GUARDED_BY(control_mu_) = false;

  mutable Mutex names_mu_;
  std::string process_name_ ABSL_GUARDED_BY(names_mu_);
  std::string python_version_ ABSL_GUARDED_BY(names_mu_);
  std::string torch_version_ ABSL_GUARDED_BY(names_mu_);
  std::string step_name_ ABSL_GUARDED_BY(names_mu_) = "execute_model";
  bool step_name_changed_ ABSL_GUARDED_BY(names_mu_) = false;
  v1::ProbeState state_ ABSL_GUARDED_BY(names_mu_);
  uint64_t state_version_ ABSL_GUARDED_BY(names_mu_) = 0;
  uint64_t state_version_sent_ = 0;  // Sender thread only.

  Mutex gpu_mu_;
  std::vector<v1::Event> gpu_events_ ABSL_GUARDED_BY(gpu_mu_);
  size_t max_gpu_events_;
  uint64_t gpu_dropped_ ABSL_GUARDED_BY(gpu_mu_) = 0;
  uint64_t tracer_records_dropped_ ABSL_GUARDED_BY(gpu_mu_) = 0;
  uint64_t tracer_buffers_dropped_ ABSL_GUARDED_BY(gpu_mu_) = 0;

  // Sender-thread state.
  std::unique_ptr<ProbeStream> stream_;
  std::thread reader_;
  std::atomic<bool> reader_done_{true};
  TickConverter ticks_;  // Sender thread only.
  EventConverter converter_;
  // Record bytes converted into one batch at most.
  static constexpr size_t kMaxBatchRecordBytes = 1 << 20;
  // Chunks pooled, pages touched, at each capture's start: what the record
  // path fills before the sender's first batch returns chunks (1 MiB).
  static constexpr int64_t kPrefillChunks = 16;
  // The message chunks are converted into, kept from batch to batch while
  // a capture runs (sender thread only): Clear() keeps its events and
  // their shapes allocated, so the next batch fills them again instead of
  // constructing every message (the sender's largest cost per operator
  // with a fresh batch). Freed when the capture finishes.
  std::unique_ptr<v1::ProbeMessage> chunk_batch_;
  SendState send_;
  uint32_t strings_watermark_ = 0;
  uint64_t batch_sequence_ = 0;
  absl::Time next_connect_ = absl::InfinitePast();
  absl::Duration backoff_;
  bool outage_logged_ = false;

  Mutex thread_mu_;
  CondVar thread_cv_;
  bool sender_exited_ ABSL_GUARDED_BY(thread_mu_) = false;
  std::thread sender_;
};

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_PROBE_RUNTIME_H_
