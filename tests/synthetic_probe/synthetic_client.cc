#include "tests/synthetic_probe/synthetic_client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "proto/profiler.grpc.pb.h"
#include "tests/synthetic_probe/synthetic_events.h"

namespace vllm_profiler::synthetic_probe {
namespace {

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      s.error_message());
}

// One process's Connect stream. The calling thread writes; a reader thread
// keeps what the collector sends (Welcome, the first StartCaptureCommand)
// until the collector ends the stream. Every path ends with Finish() or
// Abort().
class ProbeStream {
 public:
  explicit ProbeStream(v1::ProbeService::Stub* stub)
      : stream_(stub->Connect(&context_)), reader_([this] { Read(); }) {}
  ~ProbeStream() {
    if (reader_.joinable()) Abort();
  }
  ProbeStream(const ProbeStream&) = delete;
  ProbeStream& operator=(const ProbeStream&) = delete;

  bool Write(const v1::ProbeMessage& m) { return stream_->Write(m); }

  // The collector's StartCaptureCommand, or nullopt when none came within
  // `timeout` or the stream closed first (then *closed is true).
  std::optional<v1::StartCaptureCommand> WaitForStart(absl::Duration timeout,
                                                      bool* closed) {
    MutexLock lock(&mu_);
    changed_.WaitFor(&mu_, timeout, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      // mu_ is held by WaitFor.
      return start_.has_value() || closed_;
    });
    *closed = closed_;
    return start_;
  }

  void Cancel() { context_.TryCancel(); }

  // Half-closes and waits for the collector to end the stream. Returns
  // `status` when it is an error, else the stream's final status.
  absl::Status Finish(absl::Status status, uint32_t* max_batch_bytes) {
    // gRPC wants every message read before Finish(): the collector ends the
    // stream once it sees our half-close, which ends the reader.
    stream_->WritesDone();
    reader_.join();
    {
      // After the reader ended: the Welcome, sent first, has been read (no
      // race with a fast stream on a loaded machine).
      MutexLock lock(&mu_);
      *max_batch_bytes = max_batch_bytes_;
    }
    grpc::Status final_status = stream_->Finish();
    return status.ok() ? FromGrpc(final_status) : status;
  }

  // Vanishes like a crashed process.
  void Abort() {
    // Give the transport a moment to put the last batch on the wire (a real
    // crash loses what is still buffered; tests want exact counts).
    absl::SleepFor(absl::Milliseconds(200));
    context_.TryCancel();
    reader_.join();
    stream_->Finish().ok();  // CANCELLED, as intended.
  }

 private:
  void Read() {
    v1::CollectorCommand command;
    while (stream_->Read(&command)) {
      MutexLock lock(&mu_);
      changed_.SignalAll();
      if (command.has_welcome()) {
        max_batch_bytes_ = command.welcome().max_batch_bytes();
      } else if (command.has_start_capture() && !start_) {
        start_ = command.start_capture();
      }
    }
    MutexLock lock(&mu_);
    closed_ = true;
    changed_.SignalAll();
  }

  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ProbeMessage, v1::CollectorCommand>>
      stream_;
  Mutex mu_;
  CondVar changed_;
  uint32_t max_batch_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<v1::StartCaptureCommand> start_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reader_;  // Last: starts once the rest is constructed.
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectChannel(
    const ClientOptions& options) {
  const std::string target =
      options.address.empty() ? "unix:" + options.socket : options.address;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + options.connect_timeout))) {
    return absl::UnavailableError(
        absl::StrCat("cannot connect to the collector at ", target));
  }
  return channel;
}

// Process `index`'s generator: its pid, rank, capture id and time base.
SyntheticEvents::Options GeneratorOptions(const ClientOptions& options,
                                          int index, int64_t pid) {
  SyntheticEvents::Options gen;
  gen.pid = pid;
  gen.process_uid =
      options.process_uid_base != 0 ? options.process_uid_base + index : 0;
  gen.rank = options.processes > 1 ? index : -1;
  gen.world_size = options.processes > 1 ? options.processes : -1;
  gen.total_events = options.events;
  gen.batch_events = options.batch_events;
  gen.origin = options.origin;
  gen.requested_name = options.requested_name;
  gen.capture_id = !options.capture_id.empty() ? options.capture_id
                   : options.origin == v1::CAPTURE_ORIGIN_COMMAND
                       ? "synthetic-cmd"
                       : absl::StrCat("synthetic-", pid);
  // Processes of one run share a time base, as processes on one host do.
  struct timespec mono, real;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  gen.start_ns = mono.tv_sec * 1000000000ll + mono.tv_nsec;
  gen.realtime_ns = real.tv_sec * 1000000000ll + real.tv_nsec;
  return gen;
}

enum class Sent { kAll, kStreamBroke, kCrashed };

// Streams the capture's batches. With disconnect_after_events, sends only
// that many events and then aborts the stream like a crashed process.
Sent SendBatches(const ClientOptions& options, SyntheticEvents* events,
                 ProbeStream* stream, ProcessResult* result) {
  v1::ProbeMessage message;
  v1::EventBatch* batch = message.mutable_batch();
  while (events->NextBatch(batch)) {
    if (options.disconnect_after_events != 0 &&
        result->events_sent + batch->events_size() >
            options.disconnect_after_events) {
      const int keep = static_cast<int>(options.disconnect_after_events -
                                        result->events_sent);
      batch->mutable_events()->DeleteSubrange(keep,
                                              batch->events_size() - keep);
      if (keep > 0 && stream->Write(message)) {
        result->events_sent += keep;
        ++result->batches_sent;
      }
      stream->Abort();
      return Sent::kCrashed;
    }
    if (!stream->Write(message)) return Sent::kStreamBroke;
    result->events_sent += batch->events_size();
    ++result->batches_sent;
  }
  return Sent::kAll;
}

// Hello; with wait_for_command, the collector's StartCaptureCommand; then
// the capture. Returns the status to finish the stream with (a broken
// stream is OK here: Finish() reports why), or nullopt after a crash.
std::optional<absl::Status> SendCapture(const ClientOptions& options,
                                        SyntheticEvents::Options gen,
                                        ProbeStream* stream,
                                        ProcessResult* result) {
  if (!stream->Write(SyntheticEvents(gen).Hello())) return absl::OkStatus();
  if (options.wait_for_command) {
    bool closed = false;
    std::optional<v1::StartCaptureCommand> start =
        stream->WaitForStart(options.command_timeout, &closed);
    if (!start) {
      stream->Cancel();
      if (closed) return absl::OkStatus();
      return absl::DeadlineExceededError(
          "no StartCaptureCommand from the collector in time");
    }
    gen.capture_id = start->capture_id();
    gen.origin = v1::CAPTURE_ORIGIN_COMMAND;
  }
  result->capture_id = gen.capture_id;
  SyntheticEvents events(gen);
  if (!stream->Write(events.CaptureStarted())) return absl::OkStatus();
  switch (SendBatches(options, &events, stream, result)) {
    case Sent::kCrashed:
      return std::nullopt;
    case Sent::kStreamBroke:
      return absl::OkStatus();
    case Sent::kAll:
      break;
  }
  stream->Write(events.CaptureFinished(options.dropped));
  return absl::OkStatus();
}

ProcessResult RunProcess(const ClientOptions& options, int index) {
  ProcessResult result;
  result.pid = (options.pid_base != 0 ? options.pid_base : ::getpid()) +
               (options.same_pid ? 0 : index);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ConnectChannel(options);
  if (!channel.ok()) {
    result.status = channel.status();
    return result;
  }
  std::unique_ptr<v1::ProbeService::Stub> stub =
      v1::ProbeService::NewStub(*channel);
  ProbeStream stream(stub.get());
  std::optional<absl::Status> status = SendCapture(
      options, GeneratorOptions(options, index, result.pid), &stream, &result);
  result.status = status.has_value()
                      ? stream.Finish(*status, &result.max_batch_bytes)
                      : absl::OkStatus();
  return result;
}

}  // namespace

RunResult RunSyntheticProbe(const ClientOptions& options) {
  RunResult run;
  const int n = std::max(1, options.processes);
  run.processes.resize(n);
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back(
        [&run, &options, i] { run.processes[i] = RunProcess(options, i); });
  }
  for (auto& t : threads) t.join();
  run.elapsed = absl::Now() - start;
  for (const ProcessResult& p : run.processes) {
    run.events_sent += p.events_sent;
    if (run.status.ok() && !p.status.ok()) {
      run.status = absl::Status(
          p.status.code(),
          absl::StrCat("process ", p.pid, ": ", p.status.message()));
    }
  }
  return run;
}

}  // namespace vllm_profiler::synthetic_probe
