// The probe's seam to the collector: one bidirectional ProbeService.Connect
// stream at a time. GrpcTransport is the real one (Unix socket or TCP); tests
// use FakeTransport (fake_transport.h) or a real in-process fake server.
//
// Threads: the sender thread calls Connect/Write/Finish; the reader thread
// blocks in Read; Cancel may be called from any thread to unblock both.
#ifndef VLLM_PROFILER_PROBE_CORE_TRANSPORT_H_
#define VLLM_PROFILER_PROBE_CORE_TRANSPORT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/profiler.pb.h"

namespace vllm_profiler::probe {

class ProbeStream {
 public:
  virtual ~ProbeStream() = default;
  // False when the stream is broken (then only Cancel/Finish make sense).
  virtual bool Write(const v1::ProbeMessage& message) = 0;
  // Blocks for the next command; false at end of stream.
  virtual bool Read(v1::CollectorCommand* command) = 0;
  // Half-closes: tells the collector nothing more comes.
  virtual void WritesDone() = 0;
  // Aborts the stream; Read/Write return false soon after. Any thread.
  virtual void Cancel() = 0;
  // Collects the final status; call once, after Read returned false.
  virtual void Finish() = 0;
};

class ProbeTransport {
 public:
  virtual ~ProbeTransport() = default;
  // Opens a stream, waiting at most `timeout` for the connection.
  // UNAVAILABLE with the target and reason when the collector is not there.
  virtual absl::StatusOr<std::unique_ptr<ProbeStream>> Connect(
      absl::Duration timeout) = 0;
  // "unix:/path" or "host:port", for log lines.
  virtual std::string target() const = 0;
};

// gRPC client for `target` ("unix:/path" or "host:port"); insecure channel
// (the socket lives in the pod's shared volume).
std::unique_ptr<ProbeTransport> NewGrpcTransport(std::string target);

}  // namespace vllm_profiler::probe

#endif  // VLLM_PROFILER_PROBE_CORE_TRANSPORT_H_
