#include "tests/synthetic_probe/synthetic_client.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <thread>

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

// What the reader thread saw from the collector.
struct Inbox {
  Mutex mu;
  CondVar changed;
  uint32_t max_batch_bytes ABSL_GUARDED_BY(mu) = 0;
  std::optional<v1::StartCaptureCommand> start ABSL_GUARDED_BY(mu);
  bool closed ABSL_GUARDED_BY(mu) = false;
};

ProcessResult RunProcess(const ClientOptions& options, int index) {
  ProcessResult result;
  result.pid = (options.pid_base != 0 ? options.pid_base : ::getpid()) +
               (options.same_pid ? 0 : index);
  const std::string target =
      options.address.empty() ? "unix:" + options.socket : options.address;
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(
          absl::ToChronoTime(absl::Now() + options.connect_timeout))) {
    result.status = absl::UnavailableError(
        absl::StrCat("cannot connect to the collector at ", target));
    return result;
  }
  std::unique_ptr<v1::ProbeService::Stub> stub =
      v1::ProbeService::NewStub(channel);
  grpc::ClientContext context;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::ProbeMessage, v1::CollectorCommand>>
      stream = stub->Connect(&context);

  Inbox inbox;
  std::thread reader([&] {
    v1::CollectorCommand command;
    while (stream->Read(&command)) {
      MutexLock lock(&inbox.mu);
      inbox.changed.SignalAll();
      if (command.has_welcome()) {
        inbox.max_batch_bytes = command.welcome().max_batch_bytes();
      } else if (command.has_start_capture() && !inbox.start) {
        inbox.start = command.start_capture();
      }
    }
    MutexLock lock(&inbox.mu);
    inbox.closed = true;
    inbox.changed.SignalAll();
  });

  SyntheticEvents::Options gen;
  gen.pid = result.pid;
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
                       : absl::StrCat("synthetic-", result.pid);
  // Processes of one run share a time base, as processes on one host do.
  struct timespec mono, real;
  clock_gettime(CLOCK_MONOTONIC, &mono);
  clock_gettime(CLOCK_REALTIME, &real);
  gen.start_ns = mono.tv_sec * 1000000000ll + mono.tv_nsec;
  gen.realtime_ns = real.tv_sec * 1000000000ll + real.tv_nsec;

  auto finish = [&](absl::Status status) {
    // gRPC wants every message read before Finish(): the collector ends the
    // stream once it sees our half-close, which ends the reader.
    stream->WritesDone();
    reader.join();
    {
      // After the reader ended: the Welcome, sent first, has been read (no
      // race with a fast stream on a loaded machine).
      MutexLock lock(&inbox.mu);
      result.max_batch_bytes = inbox.max_batch_bytes;
    }
    grpc::Status final_status = stream->Finish();
    result.status = status.ok() ? FromGrpc(final_status) : status;
    return result;
  };

  std::unique_ptr<SyntheticEvents> events;
  {
    // Hello goes first, always.
    SyntheticEvents hello_gen(gen);
    if (!stream->Write(hello_gen.Hello())) {
      return finish(absl::OkStatus());  // Finish() reports why.
    }
  }
  if (options.wait_for_command) {
    std::optional<v1::StartCaptureCommand> start;
    bool closed = false;
    {
      MutexLock lock(&inbox.mu);
      inbox.changed.WaitFor(&inbox.mu, options.command_timeout,
                            [&inbox]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
                              // inbox.mu is held by WaitFor.
                              return inbox.start.has_value() || inbox.closed;
                            });
      start = inbox.start;
      closed = inbox.closed;
    }
    if (!start) {
      context.TryCancel();
      return finish(closed ? absl::OkStatus()
                           : absl::DeadlineExceededError(
                                 "no StartCaptureCommand from the collector "
                                 "in time"));
    }
    gen.capture_id = start->capture_id();
    gen.origin = v1::CAPTURE_ORIGIN_COMMAND;
  }
  result.capture_id = gen.capture_id;
  events = std::make_unique<SyntheticEvents>(gen);

  if (!stream->Write(events->CaptureStarted())) return finish(absl::OkStatus());
  v1::ProbeMessage message;
  v1::EventBatch* batch = message.mutable_batch();
  while (events->NextBatch(batch)) {
    if (options.disconnect_after_events != 0 &&
        result.events_sent + batch->events_size() >
            options.disconnect_after_events) {
      // Send only what fits, then vanish like a crashed process.
      const int keep = static_cast<int>(options.disconnect_after_events -
                                        result.events_sent);
      batch->mutable_events()->DeleteSubrange(keep,
                                              batch->events_size() - keep);
      if (keep > 0 && stream->Write(message)) {
        result.events_sent += keep;
        ++result.batches_sent;
      }
      // Give the transport a moment to put the last batch on the wire (a
      // real crash loses what is still buffered; tests want exact counts).
      absl::SleepFor(absl::Milliseconds(200));
      context.TryCancel();
      reader.join();
      stream->Finish().ok();  // CANCELLED, as intended.
      result.status = absl::OkStatus();
      return result;
    }
    if (!stream->Write(message)) return finish(absl::OkStatus());
    result.events_sent += batch->events_size();
    ++result.batches_sent;
  }
  if (!stream->Write(events->CaptureFinished(options.dropped))) {
    return finish(absl::OkStatus());
  }
  return finish(absl::OkStatus());
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
