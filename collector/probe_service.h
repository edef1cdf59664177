// ProbeService.Connect: the gRPC endpoint the in-process probes stream to.
//
// Registered as a hand-written grpc::Service whose Connect method exchanges
// raw ByteBuffers (same method path as the generated service, so probes use
// the generated stub and reflection still describes it): the collector
// parses each ProbeMessage itself, so a malformed message ends the stream
// with INVALID_ARGUMENT "malformed ProbeMessage of N bytes: ..." instead of
// gRPC's generic parse failure. Every message goes through a ProbeStream
// (validation), then to the CaptureManager / Capture (trace writing). The
// first error ends that stream only, with INVALID_ARGUMENT and the
// ProbeStream's message; other probes are unaffected. Open captures of a
// stream that ends early are marked incomplete.
//
// It also keeps the registry of connected probes: their Hello and counters
// for GetStatus, and the streams StartCapture sends commands on.
//
// Bounds: at most `Options::max_streams` streams are served at once; one more
// is answered RESOURCE_EXHAUSTED at once (streams_refused()). A stream that
// has not sent its Hello within `Options::hello_timeout` is cancelled
// (hello_timeouts()). Both are logged once per 100. When streams end, freed
// heap is returned to the system (malloc_trim, at most once a second and
// whenever the last stream ends).
//
// Threading: gRPC's sync server runs each stream on its own thread; the
// server's thread quota (CollectorServer) bounds them to about max_streams,
// so a flood of streams costs bounded threads, and the Hello deadline frees
// the threads of streams that never speak. A watchdog thread owned by the
// service enforces the deadline. Commands are written from TraceService
// threads under a per-connection mutex, never concurrently with another
// write.
#ifndef VLLM_PROFILER_COLLECTOR_PROBE_SERVICE_H_
#define VLLM_PROFILER_COLLECTOR_PROBE_SERVICE_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/service_type.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/sync_stream.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "collector/capture_manager.h"
#include "collector/flight_recorder.h"
#include "collector/probe_stream.h"
#include "common/mutex.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::collector {

class ProbeServiceImpl : public grpc::Service {
 public:
  struct Options {
    ProbeStream::Options stream;
    std::string collector_version = "0.1.0";
    // Streams served at once; more are refused with RESOURCE_EXHAUSTED.
    int max_streams = 256;
    // A stream must send its Hello within this long, or it is cancelled.
    absl::Duration hello_timeout = absl::Seconds(5);
    // Receives the probes' step summaries; null = ignored.
    FlightRecorder* flight = nullptr;
  };

  // `manager` must outlive the service.
  ProbeServiceImpl(Options options, CaptureManager* manager);
  ~ProbeServiceImpl() override;
  ProbeServiceImpl(const ProbeServiceImpl&) = delete;
  ProbeServiceImpl& operator=(const ProbeServiceImpl&) = delete;

  // Connected probes (those that sent a valid Hello).
  std::vector<v1::ProbeStatus> Probes() const;
  std::vector<int64_t> ConnectedPids() const;
  // Sends `command` to the probes with these pids; returns those it reached.
  std::vector<int64_t> SendCommand(const std::vector<int64_t>& pids,
                                   const v1::CollectorCommand& command);

  // The collector is stopping: streams that end from now on are reported
  // as ended by the shutdown (in the traces' errors).
  void BeginShutdown() { shutting_down_.store(true); }

  uint64_t events_received() const { return events_received_.load(); }
  uint64_t batches_received() const { return batches_received_.load(); }
  uint64_t events_dropped() const { return events_dropped_.load(); }
  uint64_t streams_rejected() const { return streams_rejected_.load(); }
  // Streams refused because max_streams were open.
  uint64_t streams_refused() const { return streams_refused_.load(); }
  // Streams cancelled for sending no Hello within hello_timeout.
  uint64_t hello_timeouts() const { return hello_timeouts_.load(); }
  // Streams being served now.
  int active_streams() const { return active_streams_.load(); }
  size_t probes_connected() const;

 private:
  struct Connection;
  struct Session;

  grpc::Status Connect(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream);
  // Connect's steps: refuse a stream over max_streams; read, validate and
  // dispatch messages until the stream ends or one is invalid (returned);
  // tell captures and the registry that the stream ended, and answer it.
  grpc::Status Refuse(const std::string& peer);
  absl::Status ReadMessages(
      Session& s,
      grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream);
  grpc::Status EndStream(Session& s, grpc::ServerContext* context,
                         const absl::Status& error);
  // An accepted message, by payload.
  void Dispatch(Session& s, const v1::ProbeMessage& message);
  void OnHello(Session& s);
  void OnCaptureStarted(Session& s, const v1::CaptureStarted& started);
  void OnBatch(Session& s, const v1::EventBatch& batch);
  void OnCaptureFinished(Session& s, const v1::CaptureFinished& finished);
  void OnStepSummaries(Session& s, const v1::StepSummaries& summaries);
  bool Write(Connection& c, const v1::CollectorCommand& command);
  // The Hello deadline of a stream: armed when it starts, disarmed by its
  // Hello or its end (after which the watchdog never touches `context`).
  void ArmHelloDeadline(Connection* c, grpc::ServerContext* context);
  void DisarmHelloDeadline(Connection* c);
  void WatchdogLoop();
  // A stream ended: give freed heap back to the system now and then.
  void StreamEnded();

  const Options options_;
  CaptureManager* const manager_;
  std::atomic<uint64_t> events_received_{0};
  std::atomic<uint64_t> batches_received_{0};
  std::atomic<uint64_t> events_dropped_{0};
  std::atomic<uint64_t> streams_rejected_{0};
  std::atomic<uint64_t> streams_refused_{0};
  std::atomic<uint64_t> hello_timeouts_{0};
  std::atomic<int> active_streams_{0};
  std::atomic<int64_t> last_trim_ns_{0};
  std::atomic<uint64_t> next_connection_id_{1};
  std::atomic<bool> shutting_down_{false};

  mutable Mutex mu_;
  std::map<uint64_t, std::shared_ptr<Connection>> connections_
      ABSL_GUARDED_BY(mu_);

  struct Pending {
    absl::Time deadline;
    grpc::ServerContext* context;
    Connection* connection;
  };
  Mutex wd_mu_;
  CondVar wd_cv_;
  std::map<uint64_t, Pending> awaiting_hello_ ABSL_GUARDED_BY(wd_mu_);
  bool wd_stop_ ABSL_GUARDED_BY(wd_mu_) = false;
  std::thread watchdog_;
};

}  // namespace vllm_profiler::collector

#endif  // VLLM_PROFILER_COLLECTOR_PROBE_SERVICE_H_
